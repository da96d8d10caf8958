"""Cloudflare's edge for drill tests against the API fakes: the fallback page's real Worker under Node
(drctl/local/edge.py), whose origin fetches reach `CloudflareNetwork`, a stand-in for what
lies behind the Worker on Cloudflare: the load balancer and the NodeBalancers.

`CloudflareNetwork` answers from the fakes' state, the way Cloudflare would: the request goes to the
pool the load balancer serves (FakeCloudflare.serving_pool), and that region's NodeBalancer
(FakeLinode) answers the shop's page while one of its nodes accepts, or nothing, which Cloudflare
reports as its 521. Its monitor thread plays Cloudflare's health monitor: a pool is healthy while its
NodeBalancer has a node that accepts. So a drill that rejects nodes through the Linode API sees,
through the edge, what shoppers would.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from components.fallback_worker import page_html, render_worker
from drctl.cloud.edge_probe import EdgeProbe
from drctl.local.edge import EdgeWorker
from drctl.local.ports import PortPool
from tests.support.fake_cloudflare import FakeCloudflare
from tests.support.fake_linode import FakeLinode

HOST = "127.0.0.1"
PAGE_TITLE = "Acme is back in a moment"


class CloudflareNetwork:
    def __init__(self, cloudflare: FakeCloudflare, linode: FakeLinode, lb_id: str, nodebalancers: dict[str, int],
                 monitor_interval: float = 0.02):
        """`nodebalancers`: region -> NodeBalancer id; pools are named `pool-<region>`."""
        self.cloudflare, self.linode, self.lb_id = cloudflare, linode, lb_id
        self.nodebalancers = nodebalancers
        self.monitor_interval = monitor_interval
        self.requests: list[tuple[str, str]] = []  # (path, region that answered or 'none')
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer((HOST, 0), self._handler())
        self._threads = [threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                          daemon=True),
                         threading.Thread(target=self._monitor, daemon=True)]

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def __enter__(self) -> CloudflareNetwork:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(5)

    def region_answers(self, region: str) -> bool:
        nodes = [n for config in self.linode.nodebalancers[self.nodebalancers[region]].values()
                 for n in config["nodes"].values()]
        return any(n["mode"] == "accept" for n in nodes)

    def _monitor(self) -> None:
        while not self._stop.wait(self.monitor_interval):
            for region in self.nodebalancers:
                self.cloudflare.set_pool_health(f"pool-{region}", self.region_answers(region))

    def _handler(self):
        network = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                pool = network.cloudflare.serving_pool(network.lb_id)
                region = pool.removeprefix("pool-") if pool else None
                if region is None or not network.region_answers(region):
                    network.requests.append((self.path, "none"))
                    return self._send(521, "text/plain", b"error code: 521\n")
                network.requests.append((self.path, region))
                self._send(200, "text/html; charset=utf-8",
                           f"<!doctype html><title>Shop ({region})</title><p>{self.path}</p>".encode())

            def _send(self, status: int, kind: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


class Edge:
    """The real Worker under Node in front of `upstream_port`, with a page titled PAGE_TITLE."""

    def __init__(self, directory: Path, upstream_port: int, domain: str = "shop.example.com"):
        self.domain = domain
        self._ports = PortPool()
        script = render_worker(page=page_html(PAGE_TITLE, "Back soon.", domain), health_path="/healthz",
                               retry_after_seconds=300, origin_timeout_ms=2000)
        self.worker = EdgeWorker(directory, script, HOST, self._ports.port(), upstream_port)

    def __enter__(self) -> Edge:
        try:
            self.worker.start()
        except BaseException:
            self._ports.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.worker.stop()
        self._ports.release()

    def probe(self, _outputs: Any = None) -> EdgeProbe:
        return EdgeProbe(self.domain, timeout=10.0, address=HOST, port=self.worker.port, tls=False)
