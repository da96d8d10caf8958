"""Fetching a page of the shop through its front door, as a shopper does, and telling the shop from
the fallback page (components/fallback_page.py, the Worker on Cloudflare's edge).

Where `origin_probe.HttpsProbe` goes around Cloudflare to one region's NodeBalancer, `EdgeProbe`
goes through it: on a real stack `https://<domain>/` resolved by DNS and verified against the
system's trust store (Cloudflare's edge certificate is a public one); in a rehearsal the local edge
(the same Worker under Node) over plain HTTP with the shop's Host header.

An answer is the fallback page when it is a 503 carrying the Worker's marker header; it is the
shop when it is a page or a redirect (2xx, 3xx) without that header, which is what a shopper would
call "the shop is back".
"""

from __future__ import annotations

import http.client
import ssl
import time
from dataclasses import dataclass
from html.parser import HTMLParser

# The header the Worker sets on the page, naming why it answered (components/templates/fallback-worker.js).
FALLBACK_MARKER = "x-woocommerce-dr-fallback"
MAX_BODY = 512 * 1024  # a page is at most 256 KiB (components/fallback_html.py); a shop page may be larger


@dataclass(frozen=True)
class EdgeAnswer:
    at: float  # wall-clock seconds (time.time) when the answer was complete
    latency: float
    status: int | None = None
    retry_after: str | None = None
    cache_control: str | None = None
    marker: str | None = None  # the fallback page's reason header
    title: str | None = None
    error: str | None = None  # no answer at all (refused, timed out, TLS)

    @property
    def is_fallback(self) -> bool:
        return self.status == 503 and self.marker is not None

    @property
    def is_shop(self) -> bool:
        """A good answer from the shop: a page (2xx) or a redirect (3xx), never the fallback page."""
        return self.status is not None and 200 <= self.status < 400 and self.marker is None

    def describe(self) -> str:
        if self.error:
            return self.error
        if self.is_fallback:
            return f"the fallback page (HTTP 503, {FALLBACK_MARKER}: {self.marker})"
        return f"HTTP {self.status}" + (f" {self.title!r}" if self.title else "")

    def as_dict(self) -> dict[str, object]:
        return {"status": self.status, "retryAfter": self.retry_after, "cacheControl": self.cache_control,
                "marker": self.marker, "title": self.title, "error": self.error,
                "latencySeconds": round(self.latency, 3)}


class _Title(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.inside, self.parts, self.done = False, [], False

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.inside = self.inside or (tag == "title" and not self.done)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self.inside:
            self.inside, self.done = False, True

    def handle_data(self, data: str) -> None:
        if self.inside:
            self.parts.append(data)


def page_title(html: str) -> str | None:
    """The text of the first <title>, whitespace collapsed; None without one."""
    parser = _Title()
    parser.feed(html)
    parser.close()
    return " ".join("".join(parser.parts).split()) or None


@dataclass(frozen=True)
class EdgeProbe:
    """GET `path` of the shop through the edge. `address`/`port`: where the edge listens (default:
    the domain itself on 443, over verified TLS); `tls=False` for a local edge."""

    domain: str
    timeout: float = 10.0
    address: str | None = None
    port: int = 443
    tls: bool = True

    def __call__(self, path: str = "/") -> EdgeAnswer:
        started = time.monotonic()
        host = self.address or self.domain
        if self.tls:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, self.port, timeout=self.timeout, context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(host, self.port, timeout=self.timeout)
        try:
            # A shopper's browser: the shop's name, no cache, a fresh connection each time (so a
            # kept-alive connection to a dead origin cannot hide the outage or the recovery).
            conn.request("GET", path, headers={"Host": self.domain, "User-Agent": "drctl-drill (shopper probe)",
                                               "Accept": "text/html", "Cache-Control": "no-cache",
                                               "Connection": "close"})
            response = conn.getresponse()
            body = response.read(MAX_BODY)
        except (OSError, http.client.HTTPException) as err:
            return EdgeAnswer(time.time(), time.monotonic() - started,
                              error=f"no answer from the edge ({type(err).__name__}: {err})"[:200])
        finally:
            conn.close()
        kind = (response.getheader("Content-Type") or "").lower()
        title = page_title(body.decode("utf-8", errors="replace")) if "html" in kind else None
        return EdgeAnswer(time.time(), time.monotonic() - started, status=response.status,
                          retry_after=response.getheader("Retry-After"),
                          cache_control=response.getheader("Cache-Control"),
                          marker=response.getheader(FALLBACK_MARKER), title=title)
