"""A local fake of the few Cloudflare v4 endpoints drctl uses, reached through the official SDK's
`base_url` (drctl reads it from DRCTL_CLOUDFLARE_BASE_URL).

Endpoints: DNS records get / list (type, name, name.exact, paging) / create / patch / put / delete
and the batch endpoint (deletes, patches, puts, posts; all or nothing, like Cloudflare's single
database transaction); a zone's load balancer get / patch; an account's pools get / patch and their
health (`pop_health` keyed by data centre, set by the test with `set_pool_health`). Responses use
Cloudflare's envelope (`success`, `errors`, `messages`, `result`, `result_info`). Other endpoints
plug in with `add_route`. `serving_pool` says which pool Cloudflare would send traffic to.

Checks the bearer token (401 otherwise), logs every request (`requests`), and injects faults
(`fail`: a status with an error code, message and optional Retry-After, or a delay that outlasts the
client's timeout; `lose_answer`: the request is carried out but its answer never arrives;
`writes_denied`: a token without "DNS Write"). DNS record bodies are checked against the documented
field types (tests/support/api_fields.py) and refused as the API refuses them: a float TTL gets
400 with code 9208.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.api_fields import DNS_RECORD, problems

API_PREFIX = "/client/v4"
RECORD_MISSING = (81044, "Record does not exist.")
TTL_NOT_A_NUMBER = (9208, "ttl must be a number")
TTL_OUT_OF_RANGE = (9021, "Invalid TTL. Must be between 30 and 86400 seconds, or 1 for Automatic.")
DNS_VALIDATION = 1004  # "DNS Validation Error"


class ApiFailure(Exception):
    """Raised by a handler: answered as a Cloudflare error envelope."""

    def __init__(self, status: int, code: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


@dataclass
class Request:
    method: str
    path: str  # without the /client/v4 prefix
    query: dict[str, list[str]]
    body: Any
    at: float  # time.monotonic() when received
    status: int = 0

    @property
    def is_write(self) -> bool:
        return self.method != "GET"


@dataclass
class Fault:
    status: int
    times: int
    method: str | None
    path: str | None  # a regular expression searched in the path
    retry_after: str | None
    delay: float
    code: int
    message: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (self.path is None or re.search(self.path, path))


@dataclass
class AnswerLoss:
    """The request is carried out; its answer is dropped (the connection closes) or comes `late`."""

    times: int
    method: str | None
    path: str | None
    late: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (self.path is None or re.search(self.path, path))


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[..., tuple[int, Any] | Any]


@dataclass
class FakeCloudflare:
    token: str = "fake-cloudflare-token"
    records_by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    losses: list[AnswerLoss] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    writes_denied: bool = False
    load_balancers: dict[str, dict[str, Any]] = field(default_factory=dict)
    pools: dict[str, dict[str, Any]] = field(default_factory=dict)
    pool_healthy: dict[str, bool | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._ticks = itertools.count()
        self._server: ThreadingHTTPServer | None = None
        zone = r"/zones/(?P<zone_id>[^/]+)/dns_records"
        self.add_route("GET", zone, self._list)
        self.add_route("POST", zone, self._create)
        self.add_route("POST", zone + "/batch", self._batch)
        self.add_route("GET", zone + r"/(?P<record_id>[^/]+)", self._get)
        self.add_route("PATCH", zone + r"/(?P<record_id>[^/]+)", self._patch)
        self.add_route("PUT", zone + r"/(?P<record_id>[^/]+)", self._put)
        self.add_route("DELETE", zone + r"/(?P<record_id>[^/]+)", self._delete)
        lb = r"/zones/(?P<zone_id>[^/]+)/load_balancers/(?P<lb_id>[^/]+)"
        self.add_route("GET", lb, self._get_lb)
        self.add_route("PATCH", lb, self._patch_lb)
        pool = r"/accounts/(?P<account_id>[^/]+)/load_balancers/pools/(?P<pool_id>[^/]+)"
        self.add_route("GET", pool, self._get_pool)
        self.add_route("PATCH", pool, self._patch_pool)
        self.add_route("GET", pool + "/health", self._pool_health)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeCloudflare:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out separately: no 40 ms delayed-ACK stall

            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def _handle(self) -> None:
                fake._serve(self)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeCloudflare:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}{API_PREFIX}"

    # -- test helpers ----------------------------------------------------------------------------

    def add_route(self, method: str, pattern: str, handler: Callable[..., Any]) -> None:
        """`handler(query=..., body=..., **path_groups)` returns the `result` (or `(status, result)`,
        or `(status, result, result_info)`) or raises ApiFailure."""
        self.routes.append(Route(method, re.compile(f"^{pattern}$"), handler))

    def add_record(self, zone_id: str, type: str, name: str, content: str, *, proxied: bool | None = None,
                   ttl: int = 1, comment: str | None = None) -> dict[str, Any]:
        with self._lock:
            record = self._new_record(zone_id, {"type": type, "name": name, "content": content,
                                                "proxied": proxied, "ttl": ttl, "comment": comment})
            self.records_by_id[record["id"]] = record
            return dict(record)

    def record(self, record_id: str) -> dict[str, Any]:
        with self._lock:
            return dict(self.records_by_id[record_id])

    def find(self, *, name: str | None = None, type: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self.records_by_id.values()
                    if (name is None or r["name"] == name) and (type is None or r["type"] == type)]

    def fail(self, status: int, *, times: int = 1, method: str | None = None, path: str | None = None,
             retry_after: str | None = None, delay: float = 0.0, code: int = 10000, message: str | None = None) -> None:
        """The next `times` matching requests answer `status` (after `delay` seconds) with Cloudflare
        error `code` and `message` (default "injected HTTP <status>")."""
        with self._lock:
            self.faults.append(Fault(status, times, method, path, retry_after, delay, code, message))

    def lose_answer(self, *, times: int = 1, method: str | None = None, path: str | None = None,
                    late: float = 0.0) -> None:
        """The next `times` matching requests are carried out, but the client never gets the answer:
        the connection closes without one, or (with `late`) it is sent after `late` seconds, once
        the client has given up waiting."""
        with self._lock:
            self.losses.append(AnswerLoss(times, method, path, late))

    def log(self, *, method: str | None = None, path: str | None = None, ok: bool | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self.requests
                    if (method is None or r.method == method) and (path is None or re.search(path, r.path))
                    and (ok is None or (r.status < 400) == ok)]

    def record_writes(self, *record_ids: str) -> list[Request]:
        """Successful requests that changed any of these records (directly or in a batch)."""
        wanted = set(record_ids)
        return [r for r in self.log(ok=True) if r.is_write and wanted & _touched_ids(r)]

    def writes(self) -> list[Request]:
        return [r for r in self.log(ok=True) if r.is_write]

    def add_load_balancer(self, zone_id: str, lb_id: str, name: str, default_pools: list[str],
                          fallback_pool: str) -> None:
        with self._lock:
            self.load_balancers[lb_id] = {"id": lb_id, "zone_id": zone_id, "name": name, "enabled": True,
                                          "default_pools": list(default_pools), "fallback_pool": fallback_pool,
                                          "steering_policy": "off", "proxied": True}

    def add_pool(self, account_id: str, pool_id: str, name: str, origins: list[tuple[str, str]],
                 healthy: bool | None = True) -> None:
        with self._lock:
            self.pools[pool_id] = {
                "id": pool_id, "account_id": account_id, "name": name, "enabled": True, "minimum_origins": 1,
                "origins": [{"name": n, "address": a, "enabled": True, "weight": 1} for n, a in origins],
            }
            self.pool_healthy[pool_id] = healthy

    def set_pool_health(self, pool_id: str, healthy: bool | None) -> None:
        with self._lock:
            self.pool_healthy[pool_id] = healthy

    def serving_pool(self, lb_id: str) -> str | None:
        """Where Cloudflare sends traffic with steering "off": the first enabled, healthy pool with an
        enabled origin in default_pools order, else the fallback pool."""
        with self._lock:
            lb = self.load_balancers[lb_id]
            for pool_id in lb["default_pools"]:
                pool = self.pools[pool_id]
                if pool["enabled"] and any(o["enabled"] for o in pool["origins"]) \
                        and self.pool_healthy.get(pool_id) is not False:
                    return pool_id
            return lb["fallback_pool"]

    # -- load balancer and pools -----------------------------------------------------------------

    def _lb(self, zone_id: str, lb_id: str) -> dict[str, Any]:
        lb = self.load_balancers.get(lb_id)
        if lb is None or lb["zone_id"] != zone_id:
            raise ApiFailure(404, 1002, "Load balancer not found")
        return lb

    def _get_lb(self, zone_id: str, lb_id: str, query: Any, body: Any) -> dict[str, Any]:
        return json.loads(json.dumps(self._lb(zone_id, lb_id)))

    def _patch_lb(self, zone_id: str, lb_id: str, query: Any, body: dict[str, Any]) -> dict[str, Any]:
        lb = self._lb(zone_id, lb_id)
        for pool_id in [*body.get("default_pools", []), *([body["fallback_pool"]] if "fallback_pool" in body else [])]:
            if pool_id not in self.pools:
                raise ApiFailure(400, 1003, f"pool {pool_id} does not exist")
        lb.update({k: v for k, v in body.items() if k in ("default_pools", "fallback_pool", "enabled")})
        return json.loads(json.dumps(lb))

    def _pool(self, account_id: str, pool_id: str) -> dict[str, Any]:
        pool = self.pools.get(pool_id)
        if pool is None or pool["account_id"] != account_id:
            raise ApiFailure(404, 1002, "Pool not found")
        return pool

    def _get_pool(self, account_id: str, pool_id: str, query: Any, body: Any) -> dict[str, Any]:
        return json.loads(json.dumps(self._pool(account_id, pool_id)))

    def _patch_pool(self, account_id: str, pool_id: str, query: Any, body: dict[str, Any]) -> dict[str, Any]:
        pool = self._pool(account_id, pool_id)
        pool.update({k: v for k, v in body.items() if k in ("origins", "enabled", "minimum_origins")})
        return json.loads(json.dumps(pool))

    def _pool_health(self, account_id: str, pool_id: str, query: Any, body: Any) -> dict[str, Any]:
        pool = self._pool(account_id, pool_id)
        healthy = self.pool_healthy.get(pool_id)
        if healthy is None:
            return {"pool_id": pool_id, "pop_health": {}}
        origins = [{"ip": {"healthy": healthy, "failure_reason": "No failures" if healthy else "TCP timeout"}}
                   for _ in pool["origins"]]
        return {"pool_id": pool_id, "pop_health": {"Ashburn, VA": {"healthy": healthy, "origins": origins},
                                                   "Frankfurt, DE": {"healthy": healthy, "origins": origins}}}

    # -- request handling ------------------------------------------------------------------------

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        url = urlsplit(h.path)
        path = url.path.removeprefix(API_PREFIX)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        request = Request(h.command, path, parse_qs(url.query), body, time.monotonic())
        with self._lock:
            self.requests.append(request)
        loss = self._take_loss(request)
        status, payload, headers = self._respond(request, h.headers.get("Authorization", ""))
        request.status = status
        if loss is not None and not loss.late:
            h.close_connection = True  # carried out, and the connection closes without an answer
            return
        if loss is not None:
            time.sleep(loss.late)
        data = json.dumps(payload).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                h.send_header(key, value)
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # a late answer to a client that gave up
            h.close_connection = True

    def _respond(self, request: Request, authorization: str) -> tuple[int, Any, dict[str, str]]:
        fault = self._take_fault(request)
        if fault is not None:
            time.sleep(fault.delay)
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            message = fault.message or f"injected HTTP {fault.status}"
            return fault.status, _envelope(None, errors=[(fault.code, message)]), headers
        if authorization != f"Bearer {self.token}":
            return 401, _envelope(None, errors=[(10000, "Authentication error")]), {}
        if self.writes_denied and request.is_write:
            return 403, _envelope(None, errors=[(10000, "Authentication error")]), {}
        for route in self.routes:
            match = route.pattern.match(request.path)
            if route.method == request.method and match:
                try:
                    with self._lock:
                        out = route.handler(query=request.query, body=request.body, **match.groupdict())
                except ApiFailure as err:
                    return err.status, _envelope(None, errors=[(err.code, err.message)]), err.headers
                status, result, info = (*out, None)[:3] if isinstance(out, tuple) else (200, out, None)
                return status, _envelope(result, result_info=info), {}
        return 404, _envelope(None, errors=[(7003, f"No route for {request.method} {request.path}")]), {}

    def _take_loss(self, request: Request) -> AnswerLoss | None:
        with self._lock:
            for loss in self.losses:
                if loss.times > 0 and loss.matches(request.method, request.path):
                    loss.times -= 1
                    return loss
        return None

    def _take_fault(self, request: Request) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.matches(request.method, request.path):
                    fault.times -= 1
                    return fault
        return None

    # -- DNS records -------------------------------------------------------------------------------

    def _list(self, zone_id: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any, Any]:
        def first(key: str) -> str | None:
            return query.get(key, [None])[0]

        name = first("name.exact") or first("name")
        found = [r for r in self.records_by_id.values() if r["zone_id"] == zone_id
                 and (first("type") is None or r["type"] == first("type"))
                 and (name is None or r["name"].lower() == name.lower())]
        found.sort(key=lambda r: (r["created_on"], r["id"]))
        page, per_page = int(float(first("page") or 1)), int(float(first("per_page") or 100))
        chunk = found[(page - 1) * per_page: page * per_page]
        info = {"page": page, "per_page": per_page, "count": len(chunk), "total_count": len(found),
                "total_pages": max(1, -(-len(found) // per_page))}
        return 200, [dict(r) for r in chunk], info

    def _get(self, zone_id: str, record_id: str, query: Any, body: Any) -> dict[str, Any]:
        return dict(self._existing(zone_id, record_id))

    def _create(self, zone_id: str, query: Any, body: dict[str, Any]) -> dict[str, Any]:
        _check_record_body(body)
        record = self._new_record(zone_id, body)
        self.records_by_id[record["id"]] = record
        return dict(record)

    def _patch(self, zone_id: str, record_id: str, query: Any, body: dict[str, Any]) -> dict[str, Any]:
        _check_record_body(body)
        return dict(self._apply(self.records_by_id, zone_id, record_id, body, replace=False))

    def _put(self, zone_id: str, record_id: str, query: Any, body: dict[str, Any]) -> dict[str, Any]:
        _check_record_body(body)
        return dict(self._apply(self.records_by_id, zone_id, record_id, body, replace=True))

    def _delete(self, zone_id: str, record_id: str, query: Any, body: Any) -> dict[str, Any]:
        self._existing(zone_id, record_id)
        del self.records_by_id[record_id]
        return {"id": record_id}

    def _batch(self, zone_id: str, query: Any, body: dict[str, Any]) -> dict[str, Any]:
        # Work on a copy and commit only if every operation succeeded: one transaction.
        for key in ("patches", "puts", "posts"):
            for item in body.get(key) or []:
                _check_record_body(item)
        staged = {k: dict(v) for k, v in self.records_by_id.items()}
        result: dict[str, list[dict[str, Any]]] = {"deletes": [], "patches": [], "puts": [], "posts": []}
        for item in body.get("deletes") or []:
            result["deletes"].append(dict(self._existing(zone_id, item["id"], staged)))
            del staged[item["id"]]
        for key, replace in (("patches", False), ("puts", True)):
            for item in body.get(key) or []:
                fields = {k: v for k, v in item.items() if k != "id"}
                result[key].append(dict(self._apply(staged, zone_id, item["id"], fields, replace=replace)))
        for item in body.get("posts") or []:
            record = self._new_record(zone_id, item)
            staged[record["id"]] = record
            result["posts"].append(dict(record))
        self.records_by_id = staged
        return result

    def _existing(self, zone_id: str, record_id: str, records: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        record = (self.records_by_id if records is None else records).get(record_id)
        if record is None or record["zone_id"] != zone_id:
            raise ApiFailure(404, *RECORD_MISSING)
        return record

    def _apply(self, records: dict[str, dict[str, Any]], zone_id: str, record_id: str, fields: dict[str, Any],
               *, replace: bool) -> dict[str, Any]:
        record = self._existing(zone_id, record_id, records)
        if replace:
            for key in ("proxied", "comment"):
                record[key] = None
        record.update({k: v for k, v in fields.items() if k in ("type", "name", "content", "proxied", "ttl", "comment")})
        record["modified_on"] = self._timestamp()
        return record

    def _new_record(self, zone_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        now = self._timestamp()
        return {
            "id": uuid.uuid4().hex, "zone_id": zone_id, "type": fields["type"], "name": fields["name"],
            "content": fields["content"], "proxied": fields.get("proxied"), "proxiable": fields["type"] in ("A", "AAAA", "CNAME"),
            "ttl": fields.get("ttl", 1), "comment": fields.get("comment"), "tags": [], "settings": {}, "meta": {},
            "created_on": now, "modified_on": now,
        }

    def _timestamp(self) -> str:
        # Strictly increasing, so "oldest record" is well defined even within one microsecond.
        base = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(microseconds=next(self._ticks))
        return base.isoformat().replace("+00:00", "Z")


def _check_record_body(body: dict[str, Any]) -> None:
    """Refuse a record body as Cloudflare does: a TTL that is not an integer (`300.0`) gets 400
    with code 9208; any other field of the wrong type a DNS validation error."""
    ttl = body.get("ttl")
    if ttl is not None and type(ttl) is not int:
        raise ApiFailure(400, *TTL_NOT_A_NUMBER)
    if ttl is not None and not (ttl == 1 or 30 <= ttl <= 86400):
        raise ApiFailure(400, *TTL_OUT_OF_RANGE)
    found = problems(body, DNS_RECORD)
    if found:
        raise ApiFailure(400, DNS_VALIDATION, f"DNS Validation Error: {found[0]}")


def _touched_ids(request: Request) -> set[str]:
    match = re.search(r"/dns_records/([0-9a-f]{32})$", request.path)
    if match:
        return {match.group(1)}
    body = request.body or {}
    if not request.path.endswith("/batch"):
        return set()
    return {item["id"] for key in ("deletes", "patches", "puts") for item in body.get(key) or []}


def _envelope(result: Any, *, errors: list[tuple[int, str]] | None = None, result_info: Any = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "success": not errors, "errors": [{"code": c, "message": m} for c, m in errors or []],
        "messages": [], "result": result,
    }
    if result_info is not None:
        doc["result_info"] = result_info
    return doc
