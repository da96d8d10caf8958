"""The shopper's probe through the edge: what it reads off an answer (status, Retry-After,
Cache-Control, the Worker's marker, the page's title), and how it tells the page from the shop."""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from components.fallback_worker import TEMPLATE
from drctl.cloud.edge_probe import FALLBACK_MARKER, EdgeAnswer, EdgeProbe, page_title
from drctl.local.ports import PortReservation


def test_the_marker_is_the_one_the_worker_sets():
    assert re.search(r'export const MARKER = "([^"]+)";', TEMPLATE.read_text())[1] == FALLBACK_MARKER


@pytest.mark.parametrize("html, title", [
    ("<!doctype html><title>We&#x27;ll be right back</title>", "We'll be right back"),
    ("<html><head><TITLE>\n  Acme &amp;\n Co </TITLE></head>", "Acme & Co"),
    ("<p>no title</p><title></title>", None),
    ("<title>first</title><title>second</title>", "first"),
    ("<svg><title>icon</title></svg>", "icon"),
])
def test_the_title_is_read_as_a_browser_tab_shows_it(html, title):
    assert page_title(html) == title


def answer(status, marker=None):
    return EdgeAnswer(0.0, 0.0, status=status, marker=marker)


@pytest.mark.parametrize("got, page, shop", [
    (answer(503, "origin unreachable"), True, False),
    (answer(503), False, False),  # a 503 of the shop's own (WordPress maintenance): neither
    (answer(200), False, True),
    (answer(301), False, True),
    (answer(404), False, False),
    (answer(521), False, False),
    (EdgeAnswer(0.0, 0.0, error="no answer"), False, False),
])
def test_the_page_and_the_shop_are_told_apart(got, page, shop):
    assert (got.is_fallback, got.is_shop) == (page, shop)


@pytest.fixture
def edge():
    """A local server answering what the test sets, recording the Host header it got."""
    state = {"status": 200, "headers": {}, "body": b"", "hosts": []}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            state["hosts"].append(self.headers["Host"])
            self.send_response(state["status"])
            for k, v in state["headers"].items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(state["body"])))
            self.end_headers()
            self.wfile.write(state["body"])

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state, EdgeProbe("shop.example.com", timeout=5, address="127.0.0.1", port=server.server_address[1],
                           tls=False)
    server.shutdown()
    server.server_close()


def test_the_page_is_read_off_the_answer(edge):
    state, probe = edge
    state.update(status=503, body=b"<!doctype html><title>Back soon</title>",
                 headers={"Content-Type": "text/html; charset=utf-8", "Retry-After": "300",
                          "Cache-Control": "no-store", FALLBACK_MARKER: "origin answered 521"})
    got = probe("/cart/")
    assert (got.status, got.retry_after, got.cache_control, got.marker, got.title) == \
        (503, "300", "no-store", "origin answered 521", "Back soon")
    assert got.is_fallback and state["hosts"] == ["shop.example.com"]
    assert got.describe() == "the fallback page (HTTP 503, x-woocommerce-dr-fallback: origin answered 521)"


def test_a_body_that_is_not_html_has_no_title(edge):
    state, probe = edge
    state.update(status=200, body=b"<title>not a page</title>", headers={"Content-Type": "application/json"})
    assert probe("/").title is None


def test_no_edge_at_all_is_an_answer_with_an_error():
    with PortReservation() as held:  # bound, never listening: connections are refused
        got = EdgeProbe("shop.example.com", timeout=2, address="127.0.0.1", port=held.port, tls=False)("/")
    assert got.status is None and got.error.startswith("no answer from the edge (ConnectionRefusedError")
    assert not got.is_fallback and not got.is_shop
