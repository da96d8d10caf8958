"""A local fake of the few Linode API v4 endpoints drctl uses, for the official `linode_api4` SDK
pointed at it through `base_url`. Only tests use it.

The public price endpoints (`GET /linode/types`, `/nodebalancers/types`, `/databases/types`,
`/object-storage/types`) answer without a token, as Linode's do, in the real API's JSON shape and
pages; a request that brings a wrong token is refused there too. Their figures (`prices`) are the
fake's own, for tests, not Linode's.

Linodes and Cloud Firewalls can be created, listed, read and deleted (`POST/GET/DELETE
/linode/instances`, `/networking/firewalls`), with the real API's refusals for a label already
taken and a type a region does not offer (`region_types`). A created Linode is played by
`machines` when given (tests/support/scratch_machines.py: a real local MariaDB standing in for the
new machine, booted from the user data drctl sent, its address reported as the Linode's IPv4);
deleting the Linode stops it.

State is plain dicts the test can read and change; faults are queued per method and path pattern
(status, headers, how many times), answers can be lost (`losses`: the request is carried out and
the connection closes without an answer), and every request is logged.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

PRICE_PATHS = ("/linode/types", "/nodebalancers/types", "/databases/types", "/object-storage/types")


def _region_prices(monthly: float) -> list[dict[str, Any]]:
    """Jakarta +20%, São Paulo +40%, as the real endpoints list them."""
    return [{"id": "id-cgk", "hourly": round(monthly * 1.2 / 730, 4), "monthly": round(monthly * 1.2, 2)},
            {"id": "br-gru", "hourly": round(monthly * 1.4 / 730, 4), "monthly": round(monthly * 1.4, 2)}]


def _linode_type(type_id: str, label: str, cls: str, monthly: float, transfer: int, backups: float) -> dict[str, Any]:
    return {
        "id": type_id, "label": label, "class": cls, "disk": 81920, "memory": 4096, "vcpus": 2, "gpus": 0,
        "network_out": 4000, "transfer": transfer, "successor": None,
        "price": {"hourly": round(monthly / 730, 4), "monthly": monthly}, "region_prices": _region_prices(monthly),
        "addons": {"backups": {"price": {"hourly": round(backups / 730, 4), "monthly": backups},
                               "region_prices": _region_prices(backups)}},
    }


def _database_type(type_id: str, label: str, by_nodes: dict[int, float]) -> dict[str, Any]:
    sizes = [{"quantity": n, "price": {"hourly": round(m / 730, 4), "monthly": m}} for n, m in by_nodes.items()]
    return {"id": type_id, "label": label, "class": "dedicated", "deprecated": False, "disk": 81920,
            "memory": 4096, "vcpus": 2, "engines": {"mysql": sizes, "postgresql": sizes}}


def default_prices() -> dict[str, list[dict[str, Any]]]:
    return {
        "/linode/types": [
            _linode_type("g6-nanode-1", "Nanode 1GB", "nanode", 5.0, 1000, 2.0),
            _linode_type("g6-standard-1", "Linode 2GB", "standard", 12.0, 2000, 2.5),
            _linode_type("g6-standard-2", "Linode 4GB", "standard", 26.0, 4000, 5.0),
            _linode_type("g6-dedicated-2", "Dedicated 4GB", "dedicated", 36.0, 4000, 5.0),
            _linode_type("g6-standard-4", "Linode 8GB", "standard", 48.0, 5000, 10.0),
            # The public endpoint lists some plans at 0: a price it does not publish, not a free plan.
            {**_linode_type("g1-gpu-rtx6000-1", "Dedicated 32GB + RTX6000 GPU x1", "gpu", 0.0, 16000, 0.0),
             "region_prices": []},
        ],
        "/nodebalancers/types": [
            {"id": "nodebalancer", "label": "NodeBalancer", "transfer": 0,
             "price": {"hourly": 0.015, "monthly": 10.0}, "region_prices": _region_prices(10.0)},
        ],
        "/databases/types": [
            _database_type("g6-nanode-1", "DBaaS - Nanode 1GB", {1: 15.0, 3: 35.0}),
            _database_type("g6-dedicated-2", "DBaaS - Dedicated 4GB", {1: 68.0, 2: 136.0, 3: 204.0}),
        ],
        "/object-storage/types": [
            {"id": "objectstorage", "label": "Object Storage", "transfer": 1000,
             "price": {"hourly": 0.0075, "monthly": 5.0}, "region_prices": []},
        ],
    }


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
    def __init__(self, token: str = "test-linode-token", machines: Any = None):
        self.token = token
        self.machines = machines  # .boot(instance_id, user_data_text) -> machine (.address, .ready, .stop())
        self.instances: dict[int, dict[str, Any]] = {}
        self.machine_of: dict[int, Any] = {}
        self.deleted_instances: list[str] = []  # labels, in order
        self.region_types: dict[str, set[str]] = {}  # region -> the only types it offers (absent: every type)
        self.instance_limit: int | None = None  # the account's Linode quota
        self._next_id = 1000
        self.nodebalancers: dict[int, dict[int, dict[str, Any]]] = {}  # nb -> config -> {port, nodes}
        self.firewalls: dict[int, dict[str, Any]] = {}
        self.databases: dict[int, dict[str, Any]] = {}
        self.prices: dict[str, list[dict[str, Any]]] = default_prices()  # public price endpoint -> items
        self.price_page_size: int | None = None  # smaller than the asked page size: forces several pages
        self.headers_seen: list[tuple[str, str, dict[str, str]]] = []  # (method, path, request headers)
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
        for machine in self.machine_of.values():
            machine.stop()
        self.machine_of.clear()

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
                path, _, query = self.path.partition("?")
                path = path.removeprefix("/v4")
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                with fake._lock:
                    fake.requests.append((method, path, body))
                    fake.headers_seen.append((method, path, dict(self.headers)))
                    public = method == "GET" and path in PRICE_PATHS
                    token = self.headers.get("Authorization")
                    if (token or not public) and token != f"Bearer {fake.token}":
                        return self._reply(401, {"errors": [{"reason": "Invalid Token"}]})
                    if public and not any(f.times > 0 and re.fullmatch(f.path, path) for f in fake.faults):
                        return self._reply(200, fake._price_page(path, parse_qs(query)))
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

            def do_POST(self) -> None:
                self._dispatch("POST")

            def do_DELETE(self) -> None:
                self._dispatch("DELETE")

        return Handler

    def _price_page(self, path: str, query: dict[str, list[str]]) -> dict[str, Any]:
        items = self.prices.get(path, [])
        size = min(int(query.get("page_size", ["100"])[0]), self.price_page_size or 500)
        page = int(query.get("page", ["1"])[0])
        pages = max(1, -(-len(items) // size))
        return {"data": items[(page - 1) * size: page * size], "page": page, "pages": pages, "results": len(items)}

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _instances(self, method: str, path: str, body: Any) -> tuple[int, Any] | None:
        if path == "/linode/instances" and method == "GET":
            return 200, _page([self._instance_view(i) for i in self.instances.values()])
        if path == "/linode/instances" and method == "POST":
            return self._create_instance(body)
        if m := re.fullmatch(r"/linode/instances/(\d+)", path):
            instance = self.instances.get(int(m[1]))
            if instance is None:
                return 404, {"errors": [{"reason": "Not found"}]}
            if method == "DELETE":
                del self.instances[instance["id"]]
                self.deleted_instances.append(instance["label"])
                machine = self.machine_of.pop(instance["id"], None)
                if machine is not None:
                    machine.stop()
                return 200, {}
            return 200, self._instance_view(instance)
        return None

    def _create_instance(self, body: dict[str, Any]) -> tuple[int, Any]:
        label, region, kind = body.get("label"), body.get("region"), body.get("type")
        if any(i["label"] == label for i in self.instances.values()):
            return 400, {"errors": [{"field": "label", "reason": "Label must be unique among your Linodes"}]}
        if self.instance_limit is not None and len(self.instances) >= self.instance_limit:
            return 400, {"errors": [{"reason": "Account Limit reached. Please open a Support ticket."}]}
        if region in self.region_types and kind not in self.region_types[region]:
            return 400, {"errors": [{"field": "type", "reason": f"Linode type {kind} is not available in {region}"}]}
        firewall_id = body.get("firewall_id")
        if firewall_id is not None and firewall_id not in self.firewalls:
            return 400, {"errors": [{"field": "firewall_id", "reason": "Not found"}]}
        instance_id = self._new_id()
        instance = {"id": instance_id, "label": label, "region": region, "type": kind, "image": body.get("image"),
                    "tags": list(body.get("tags") or []), "status": "provisioning", "ipv4": ["192.0.2.10"],
                    "ipv6": "2001:db8::10/128", "body": body}
        if firewall_id is not None:
            self.firewalls[firewall_id].setdefault("devices", []).append(instance_id)
        self.instances[instance_id] = instance
        if self.machines is not None:
            user_data = base64.b64decode(body["metadata"]["user_data"]).decode()
            machine = self.machines.boot(instance_id, user_data)
            self.machine_of[instance_id] = machine
            instance["ipv4"] = [machine.address]
        return 200, self._instance_view(instance)

    def _instance_view(self, instance: dict[str, Any]) -> dict[str, Any]:
        machine = self.machine_of.get(instance["id"])
        if instance["status"] == "provisioning" and machine is not None and machine.failure is not None:
            instance["status"] = "offline"  # it never came up
        elif instance["status"] == "provisioning" and (machine is None or machine.booted):
            instance["status"] = "running"  # the next read after the boot: as the real one, later than created
        return {k: v for k, v in instance.items() if k != "body"}

    def _firewall_crud(self, method: str, path: str, body: Any) -> tuple[int, Any] | None:
        if path == "/networking/firewalls" and method == "GET":
            return 200, _page([{"id": fid, **{k: v for k, v in fw.items() if k != "rules_doc"}}
                               for fid, fw in self.firewalls.items()])
        if path == "/networking/firewalls" and method == "POST":
            if any(fw.get("label") == body.get("label") for fw in self.firewalls.values()):
                return 400, {"errors": [{"field": "label", "reason": "Label must be unique"}]}
            if len(body.get("label", "")) > 32:
                return 400, {"errors": [{"field": "label", "reason": "Label must be 3-32 characters"}]}
            fw_id = self._new_id()
            rules = body.get("rules", {})
            self.firewalls[fw_id] = {**rules, "label": body["label"], "tags": body.get("tags", []), "devices": []}
            return 200, {"id": fw_id, "label": body["label"], "rules": rules, "status": "enabled"}
        if m := re.fullmatch(r"/networking/firewalls/(\d+)", path):
            fw = self.firewalls.get(int(m[1]))
            if fw is None:
                return 404, {"errors": [{"reason": "Not found"}]}
            if method == "DELETE":
                del self.firewalls[int(m[1])]
                return 200, {}
            return 200, {"id": int(m[1]), **fw}
        return None

    def _route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        for part in (self._instances, self._firewall_crud):
            answer = part(method, path, body)
            if answer is not None:
                return answer
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
                kept = {k: v for k, v in self.firewalls[fw_id].items() if k in ("label", "tags", "devices")}
                self.firewalls[fw_id] = {**body, **kept}
            rules = {k: v for k, v in self.firewalls[fw_id].items() if k not in ("label", "tags", "devices")}
            return 200, {**rules, "fingerprint": f"fp{fw_id}", "version": 1}
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
