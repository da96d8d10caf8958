"""A local fake of the few Linode API v4 endpoints drctl uses, for the official `linode_api4` SDK
pointed at it through `base_url`. Only tests use it.

State is plain dicts the test can read and change; faults are queued per method and path pattern
(status, headers, how many times), answers can be lost (`losses`: the request is carried out and
the connection closes without an answer), and every request is logged.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Fault:
    method: str
    path: str  # regular expression matched against the path after /v4
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1


@dataclass
class AnswerLoss:
    method: str
    path: str  # regular expression matched against the path after /v4
    times: int = 1


class FakeLinode:
    def __init__(self, token: str = "test-linode-token"):
        self.token = token
        self.nodebalancers: dict[int, dict[int, dict[str, Any]]] = {}  # nb -> config -> {port, nodes}
        self.firewalls: dict[int, dict[str, Any]] = {}
        self.databases: dict[int, dict[str, Any]] = {}
        self.faults: list[Fault] = []
        self.losses: list[AnswerLoss] = []
        self.requests: list[tuple[str, str, Any]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v4"

    def __enter__(self) -> FakeLinode:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- state helpers for tests ----------------------------------------------------------------
    def add_nodebalancer(self, nb_id: int, ports: tuple[int, ...], nodes: list[tuple[str, str]]) -> None:
        """One config per port, each with the same (label, address-without-port) nodes, all UP."""
        configs = {}
        for i, port in enumerate(ports):
            config_id = nb_id * 10 + i
            configs[config_id] = {
                "port": port,
                "nodes": {config_id * 100 + j: {"label": label, "address": f"{ip}:{port}", "status": "UP",
                                                "mode": "accept"} for j, (label, ip) in enumerate(nodes)},
            }
        self.nodebalancers[nb_id] = configs

    def add_firewall(self, fw_id: int, rules: dict[str, Any]) -> None:
        self.firewalls[fw_id] = rules

    def writes(self) -> list[tuple[str, str, Any]]:
        return [r for r in self.requests if r[0] != "GET"]

    # --- HTTP -----------------------------------------------------------------------------------
    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body if body is not None else {}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _dispatch(self, method: str) -> None:
                path = self.path.split("?", 1)[0].removeprefix("/v4")
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                with fake._lock:
                    fake.requests.append((method, path, body))
                    if self.headers.get("Authorization") != f"Bearer {fake.token}":
                        return self._reply(401, {"errors": [{"reason": "Invalid Token"}]})
                    for fault in fake.faults:
                        if fault.times > 0 and fault.method == method and re.fullmatch(fault.path, path):
                            fault.times -= 1
                            return self._reply(fault.status, {"errors": [{"reason": "injected fault"}]},
                                               fault.headers)
                    status, reply = fake._route(method, path, body)
                    for loss in fake.losses:
                        if loss.times > 0 and loss.method == method and re.fullmatch(loss.path, path):
                            loss.times -= 1
                            self.close_connection = True  # carried out; the answer never leaves
                            return None
                return self._reply(status, reply)

            def do_GET(self) -> None:
                self._dispatch("GET")

            def do_PUT(self) -> None:
                self._dispatch("PUT")

        return Handler

    def _route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if m := re.fullmatch(r"/nodebalancers/(\d+)/configs", path):
            configs = self.nodebalancers.get(int(m[1]))
            if configs is None:
                return 404, {"errors": [{"reason": "Not found"}]}
            return 200, _page([{"id": cid, "port": c["port"], "nodebalancer_id": int(m[1])}
                               for cid, c in configs.items()])
        if m := re.fullmatch(r"/nodebalancers/(\d+)/configs/(\d+)/nodes", path):
            config = self.nodebalancers.get(int(m[1]), {}).get(int(m[2]))
            if config is None:
                return 404, {"errors": [{"reason": "Not found"}]}
            return 200, _page([{"id": nid, **n} for nid, n in config["nodes"].items()])
        if m := re.fullmatch(r"/nodebalancers/(\d+)/configs/(\d+)/nodes/(\d+)", path):
            node = self.nodebalancers.get(int(m[1]), {}).get(int(m[2]), {}).get("nodes", {}).get(int(m[3]))
            if node is None:
                return 404, {"errors": [{"reason": "Not found"}]}
            if method == "PUT":
                node.update({k: v for k, v in body.items() if k in ("mode", "weight", "label")})
            return 200, {"id": int(m[3]), **node}
        if m := re.fullmatch(r"/networking/firewalls/(\d+)/rules", path):
            fw_id = int(m[1])
            if fw_id not in self.firewalls:
                return 404, {"errors": [{"reason": "Not found"}]}
            if method == "PUT":
                read_only = sorted(set(body) & {"fingerprint", "version"})
                if read_only:  # as the real endpoint: what GET adds cannot be PUT back
                    return 400, {"errors": [{"field": f, "reason": "not allowed"} for f in read_only]}
                self.firewalls[fw_id] = body
            return 200, {**self.firewalls[fw_id], "fingerprint": f"fp{fw_id}", "version": 1}
        if m := re.fullmatch(r"/databases/mysql/instances/(\d+)", path):
            db = self.databases.get(int(m[1]))
            if db is None:
                return 404, {"errors": [{"reason": "Not found"}]}
            if method == "PUT":
                db.update(body)
            return 200, {"id": int(m[1]), **db}
        return 404, {"errors": [{"reason": f"the fake has no {method} {path}"}]}


def _page(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"data": items, "page": 1, "pages": 1, "results": len(items)}
