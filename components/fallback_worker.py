"""The fallback page's Worker script as text: the page (built from title and message, or read from
`htmlFile`) and the script's constants rendered into components/templates/fallback-worker.js.

No Pulumi here: the local rehearsal (drctl/rehearsal/) renders the very same script and runs it
under Node as its edge, without loading the providers. components/fallback_page.py uploads it.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from components import fallback_html
from components.config import StackConfig

TEMPLATE = Path(__file__).with_name("templates") / "fallback-worker.js"

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 0; min-height: 100vh; display: flex;
       align-items: center; justify-content: center; background: #f6f7f7; color: #1d2327; }}
main {{ max-width: 36rem; padding: 2rem; text-align: center; }}
h1 {{ font-size: 1.75rem; margin: 0 0 1rem; }}
p {{ line-height: 1.5; margin: 0 0 1rem; }}
.domain {{ color: #646970; font-size: .9rem; }}
</style>
</head>
<body>
<main>
<h1>{title}</h1>
{paragraphs}
<p class="domain">{domain}</p>
</main>
</body>
</html>
"""


def page_html(title: str, message: str, domain: str) -> str:
    """The page, every piece of config text escaped; blank-line-separated parts of the message
    become paragraphs, single line breaks <br>."""
    parts = [p.strip() for p in re.split(r"\n\s*\n", message) if p.strip()]
    paragraphs = "\n".join(
        "<p>" + "<br>\n".join(html.escape(line.strip()) for line in part.splitlines()) + "</p>" for part in parts
    )
    return _PAGE.format(title=html.escape(title), paragraphs=paragraphs, domain=html.escape(domain))


def render_worker(*, page: str, health_path: str, retry_after_seconds: int, origin_timeout_ms: int) -> str:
    """The Worker module with its constants filled in, each as a JavaScript literal (JSON is one)."""
    values = {
        "__HEALTH_PATH__": json.dumps(health_path),
        "__ORIGIN_TIMEOUT_MS__": str(int(origin_timeout_ms)),
        "__RETRY_AFTER_SECONDS__": str(int(retry_after_seconds)),
        # ensure_ascii: the page travels as pure ASCII escapes, so no character in the config
        # text can end the string literal or the script.
        "__PAGE_HTML__": json.dumps(page, ensure_ascii=True),
    }
    script = TEMPLATE.read_text(encoding="utf-8")
    for placeholder, literal in values.items():
        script = script.replace(placeholder, literal)
    return script


def page_for(config: StackConfig) -> str:
    """The page the edge answers: the file `htmlFile` names, exactly as written (the config model
    has checked it), or the built-in page with the configured title and message."""
    fp = config.traffic.fallback_page
    if fp.html_file is not None:
        return fallback_html.read_page(fp.html_file)
    return page_html(fp.title, fp.message, config.domain)


def worker_for(config: StackConfig, *, origin_timeout_ms: int | None = None) -> str:
    """The Worker for this stack; `origin_timeout_ms` replaces the configured wait for a region
    (the local rehearsal scales it with its health-check periods)."""
    fp = config.traffic.fallback_page
    return render_worker(
        page=page_for(config),
        health_path=config.traffic.monitor.path,
        retry_after_seconds=fp.retry_after_seconds,
        origin_timeout_ms=fp.origin_timeout_seconds * 1000 if origin_timeout_ms is None else origin_timeout_ms,
    )


def script_name(project: str, stack: str) -> str:
    """A Worker name Cloudflare accepts (lower-case letters, digits, dashes; 63 at most)."""
    name = re.sub(r"[^a-z0-9-]+", "-", f"{project}-{stack}-fallback".lower()).strip("-")
    return name[:63].rstrip("-")


def route_pattern(domain: str) -> str:
    """Every path of the shop's hostname (the health path is let through by the script itself)."""
    return f"{domain}/*"
