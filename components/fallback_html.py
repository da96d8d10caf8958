"""The maintenance page from an HTML file in the repository (`traffic.fallbackPage.htmlFile`):
where it may live, what it may hold, and reading it.

The file is embedded in the Worker script when the program runs (`pulumi preview`/`up`), so a
mistake in it must surface there, as one config error, never as a broken page during an outage:

- a path relative to the project directory (where Pulumi.yaml is), resolving inside it (symlinks
  followed), to a regular, readable file: the page must be in the repository that deploys it;
- UTF-8 text, not empty, at most MAX_BYTES: the page travels inside the Worker script as a JSON
  string of ASCII escapes, which makes a page up to three times its size (an emoji's 4 bytes
  become a 12-character surrogate pair), and a Worker script must stay below Cloudflare's upload
  limit (3 MB on Workers Free, 10 MB on Paid, both after compression; 1 MB on Free until late 2024).
  256 KiB keeps even the worst case below 1 MiB, far above any maintenance page;
- well-formed HTML as the WHATWG parser (html5lib, the algorithm browsers implement) sees it: no
  parse error at all, a doctype included, so what the author wrote is what every browser shows;
- a non-empty <title>: browser tabs, `curl` and the drill's report tell the page by it.
"""

from __future__ import annotations

from pathlib import Path

import html5lib
from html5lib.constants import E as PARSE_ERRORS

# The directory holding Pulumi.yaml: `pulumi` runs the program from there, and drctl plan too.
PROJECT_DIR = Path(__file__).resolve().parents[1]
MAX_BYTES = 256 * 1024
ALLOWED = (f"a path relative to the project directory of a well-formed UTF-8 HTML page with a <title>, "
           f"at most {MAX_BYTES // 1024} KiB, such as docs/fallback-page.example.html")


class PageFileError(Exception):
    """What is wrong with the file, in a few words (the config error names the key and the path)."""


def resolve(relative: str, project_dir: Path = PROJECT_DIR) -> Path:
    """The file `relative` names, checked to be a regular file inside `project_dir`."""
    if Path(relative).is_absolute() or relative.startswith("~"):
        raise PageFileError("not a relative path: name the file relative to the project directory")
    root = project_dir.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise PageFileError(f"resolves outside the project directory {root}")
    if not path.exists():
        raise PageFileError(f"no such file in the project directory {root}")
    if not path.is_file():
        raise PageFileError("not a regular file")
    return path


def read_page(relative: str, project_dir: Path = PROJECT_DIR) -> str:
    """The page's text, once every rule in the module docstring holds; PageFileError otherwise."""
    path = resolve(relative, project_dir)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise PageFileError(f"{size:,} bytes, over the {MAX_BYTES:,}-byte limit of a page embedded in the "
                                "Worker script")
        data = path.read_bytes()
    except PermissionError:
        raise PageFileError("not readable by this user") from None
    if len(data) > MAX_BYTES:  # grew between stat and read
        raise PageFileError(f"over the {MAX_BYTES:,}-byte limit of a page embedded in the Worker script")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise PageFileError(f"not UTF-8 text: byte 0x{data[err.start]:02x} on line {line}") from None
    if not text.strip():
        raise PageFileError("empty")
    problem = html_problem(text)
    if problem:
        raise PageFileError(problem)
    return text


def html_problem(text: str) -> str | None:
    """The first reason `text` is not a well-formed page with a title, or None."""
    parser = html5lib.HTMLParser(namespaceHTMLElements=False)
    document = parser.parse(text)
    if parser.errors:
        (line, column), code, data = parser.errors[0]
        more = len(parser.errors) - 1
        return (f"not well-formed HTML: line {line}, column {column}: {PARSE_ERRORS.get(code, code) % (data or {})}"
                + (f" (and {more} more parse error{'s' if more > 1 else ''})" if more else ""))
    title = document.find("head/title")
    if title is None or not "".join(title.itertext()).strip():
        return "no <title> (or an empty one) in its <head>: browser tabs and the drill report tell the page by it"
    return None

