"""The maintenance page shoppers see when no region can serve: a Cloudflare Worker on the shop's
route that passes every request to the origin and answers a branded 503 only when the origin fails.

Why a Worker and not Cloudflare's custom error pages: it works the same in both traffic modes, it
leaves the health path untouched, it sets the 503's `Retry-After` and `Cache-Control: no-store`
itself, and its logic runs for real in the tests (under Node). docs/fallback-page.md has the costs,
limits and token scopes.

The script is a real file (templates/fallback-worker.js) with four constants rendered in; the page
is either built here from the stack config's title and message (HTML-escaped here, once) or read
from the HTML file `htmlFile` names (components/fallback_html.py checks it), embedded as written.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pulumi
import pulumi_cloudflare as cloudflare

from components import fallback_html
from components.config import StackConfig

TEMPLATE = Path(__file__).with_name("templates") / "fallback-worker.js"
MAIN_MODULE = "fallback-worker.js"
# The Workers runtime behaviour the script was written and tested against.
COMPATIBILITY_DATE = "2024-09-23"

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


class FallbackPage(pulumi.ComponentResource):
    script_name: pulumi.Output[str]
    route_pattern: pulumi.Output[str]

    def __init__(self, name: str, config: StackConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("woocommerce-dr:index:FallbackPage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        t = config.traffic
        script = cloudflare.WorkersScript(
            f"{name}-script",
            account_id=t.account_id,
            script_name=script_name(pulumi.get_project(), pulumi.get_stack()),
            content=worker_for(config),
            main_module=MAIN_MODULE,
            compatibility_date=COMPATIBILITY_DATE,
            opts=child,
        )
        route = cloudflare.WorkersRoute(
            f"{name}-route",
            zone_id=t.zone_id,
            pattern=route_pattern(config.domain),
            script=script.script_name,
            opts=child,
        )
        self.script_name = script.script_name
        self.route_pattern = route.pattern
        self.register_outputs({"scriptName": self.script_name, "routePattern": self.route_pattern})
