"""The rehearsal's edge: the program's fallback Worker under Node (drctl/local/edge.py and
edge_runner.mjs) in front of an upstream standing in for the load balancer. What reaches the
upstream is the shopper's request (method, path, Host, body); what comes back is the upstream's
answer, or the Worker's page when there is no upstream, or Cloudflare's 520/521/524 from it."""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from components.fallback_worker import page_html, render_worker
from drctl.cloud.edge_probe import EdgeProbe
from drctl.local.edge import EdgeError, EdgeWorker
from drctl.local.ports import PortPool
from tests.support.binaries import need

HOST, DOMAIN = "127.0.0.1", "shop.example.com"


class Upstream:
    """Answers `status` (default 200) with a JSON echo of what it received."""

    def __init__(self):
        self.status = 200
        self.seen: list[dict] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                seen = {"method": self.command, "path": self.path, "host": self.headers["Host"],
                        "body": self.rfile.read(length).decode(), "cookie": self.headers.get("Cookie")}
                upstream.seen.append(seen)
                body = json.dumps(seen).encode()
                self.send_response(upstream.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Set-Cookie", "wp_session=abc; Path=/")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def edge(tmp_path):
    need("node")
    upstream = Upstream()
    ports = PortPool()
    script = render_worker(page=page_html("Closed for a moment", "Back soon.", DOMAIN), health_path="/healthz",
                           retry_after_seconds=120, origin_timeout_ms=2000)
    worker = EdgeWorker(tmp_path, script, HOST, ports.port(), upstream.port)
    worker.start()
    try:
        yield worker, upstream
    finally:
        worker.stop()
        upstream.close()
        ports.release()


def request(worker, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection(HOST, worker.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers={"Host": DOMAIN, **(headers or {})})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        conn.close()


def test_a_shoppers_request_reaches_the_upstream_as_sent(edge):
    worker, upstream = edge
    status, headers, body = request(worker, "POST", "/checkout/?step=2", body=b"total=12",
                                    headers={"Content-Type": "application/x-www-form-urlencoded",
                                             "Cookie": "cart=1"})
    assert status == 200
    assert upstream.seen == [json.loads(body)] == [{"method": "POST", "path": "/checkout/?step=2", "host": DOMAIN,
                                                    "body": "total=12", "cookie": "cart=1"}]
    assert headers["set-cookie"] == "wp_session=abc; Path=/" and "x-woocommerce-dr-fallback" not in headers


@pytest.mark.parametrize("status, reason", [(520, "origin answered 520"), (521, "origin answered 521"),
                                            (524, "origin answered 524")])
def test_cloudflares_no_origin_codes_from_the_upstream_get_the_page(edge, status, reason):
    worker, upstream = edge
    upstream.status = status
    answer = EdgeProbe(DOMAIN, address=HOST, port=worker.port, tls=False)("/")
    assert (answer.status, answer.marker, answer.title, answer.retry_after) == (503, reason, "Closed for a moment",
                                                                                 "120")
    assert answer.is_fallback and not answer.is_shop


def test_the_shops_own_errors_pass_through(edge):
    worker, upstream = edge
    upstream.status = 500
    assert request(worker, "GET", "/")[0] == 500


def test_no_upstream_at_all_gets_the_page_and_the_health_path_an_error(edge):
    worker, upstream = edge
    upstream.close()
    probe = EdgeProbe(DOMAIN, address=HOST, port=worker.port, tls=False)
    assert probe("/").marker == "origin unreachable"
    # The Worker lets the health path's fetch fail: Cloudflare answers a Worker that threw with 500 (1101).
    health = probe("/healthz")
    assert health.status == 500 and not health.is_fallback
    assert "worker threw: TypeError: fetch failed" in worker.log_tail()


def test_a_worker_that_does_not_load_fails_the_start_with_its_log(tmp_path):
    need("node")
    with PortPool() as ports:
        worker = EdgeWorker(tmp_path, "export default {;", HOST, ports.port(), 9)
        with pytest.raises(EdgeError, match="SyntaxError"):
            worker.start(timeout=15)
        assert worker.process.poll() is not None
