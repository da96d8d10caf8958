"""The shop origin of `drctl rehearse`: a small WSGI application standing in for one WooCommerce web
node, so the rehearsal's traffic takes the real path (load balancer -> origin -> its region's
database) and fails the way the real one does.

    python -m drctl.rehearsal.shop SETTINGS.json

SETTINGS.json has the shape of a web node's /etc/woocommerce-dr/database.json plus the origin's
own name and port: {"origin", "port", "region", "host", "port_db", "user", "password", "ca_file"}.
The password lives in that file only (mode 0600), never on a command line where `ps` shows it.

- `GET /healthz` answers like components/templates/web-node/healthz.php: 200 with
  {"region", "db_role", "db_reachable", "replica_lag_seconds"} when the database answers, 503 with
  `db_reachable: false` when it does not. A read-only database is a healthy *replica*: the DR pool
  stays up, ready to be promoted, as in production.
- `GET /` is the shop's home page: 200 HTML naming the region and origin when the database answers
  (WordPress reads it for every page), 503 when it does not. A shopper's request through the
  rehearsal's edge lands here.
- `GET /wp-content/uploads/...` is handed to this node's nginx (`media_port` in SETTINGS.json),
  which runs the program's uploads snippet: the node's disk, then the region's bucket through
  `rclone serve` (drctl/rehearsal/media.py says why the stand-in, not nginx, is in front). Its
  answer goes back as it came (status, type, length, `X-Media-Source`); without `media_port`, 404.
- `POST /orders?seq=N` inserts order N into `drctl_drill.orders` on this region's database and
  answers 201 with the region and origin that took it; 503 when the database refuses (read-only,
  unreachable), which is what a customer's checkout sees during a failover.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import sys
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs, quote
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from drctl.drill import orders
from drctl.mysql import replication

CONNECT_TIMEOUT_SECONDS = 2  # healthz.php's
UPLOADS = "/wp-content/uploads/"
MEDIA_TIMEOUT_SECONDS = 30  # the snippet's proxy_read_timeout to the bucket server
PASSED_HEADERS = ("content-type", "content-length", "last-modified", "etag", "x-media-source")


def media(port: int, method: str, path: str, query: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """The node's nginx's answer to `method path?query`: (status line, headers to pass, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=MEDIA_TIMEOUT_SECONDS)
    try:
        # PATH_INFO arrives decoded (as latin-1, per PEP 3333): quoted again for the request line.
        connection.request(method, quote(path.encode("latin-1")) + (f"?{query}" if query else ""))
        answer = connection.getresponse()
        body = answer.read()
        headers = [(k, v) for k, v in answer.getheaders() if k.lower() in PASSED_HEADERS]
        return f"{answer.status} {answer.reason}", headers, body
    except (OSError, http.client.HTTPException) as err:
        # nginx is part of this node: a node whose nginx is gone serves no file at all.
        body = f"media server unreachable ({type(err).__name__})\n".encode()
        return "502 Bad Gateway", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))], body
    finally:
        connection.close()


class _Pool:
    """A few reusable connections: a TLS handshake per order would cap the rehearsal's order rate."""

    def __init__(self, settings: dict[str, Any], size: int = 4):
        self.settings, self.size = settings, size
        self._idle: list[Any] = []
        self._lock = threading.Lock()

    def run(self, fn: Callable[[Any], Any]) -> Any:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            s = self.settings
            conn = replication.connect(s["host"], s["port_db"], s["user"], s["password"], ssl_ca=s["ca_file"],
                                       connect_timeout=CONNECT_TIMEOUT_SECONDS)
        try:
            result = fn(conn)
        except Exception:
            conn.close()  # a connection that saw an error may be half-dead: never reuse it
            raise
        with self._lock:
            if len(self._idle) < self.size:
                self._idle.append(conn)
                return result
        conn.close()
        return result


def _health(conn) -> dict[str, Any]:
    # MySQL's super_read_only implies read_only, and MariaDB has only read_only: one answer for both.
    with conn.cursor() as cur:
        cur.execute("SELECT @@global.read_only")
        read_only = int(cur.fetchone()[0]) == 1
    return {"db_role": "replica" if read_only else "primary", "db_reachable": True,
            "replica_lag_seconds": round(max(0.0, replication.heartbeat_lag(conn) or 0.0), 3) if read_only else None}


def application(settings: dict[str, Any]) -> Callable[[dict[str, Any], Callable], Iterable[bytes]]:
    pool = _Pool(settings)
    region, origin = settings["region"], settings["origin"]

    def answer(start_response, status: str, body: dict[str, Any]) -> list[bytes]:
        data = (json.dumps(body) + "\n").encode()
        start_response(status, [("Content-Type", "application/json"), ("Cache-Control", "no-store"),
                                ("Content-Length", str(len(data)))])
        return [data]

    def app(environ: dict[str, Any], start_response) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        if path == "/healthz" and method in ("GET", "HEAD"):
            body: dict[str, Any] = {"region": region, "db_role": None, "db_reachable": False,
                                    "replica_lag_seconds": None}
            try:
                body.update(pool.run(_health))
            except Exception as err:  # the reason goes to the log, never to the caller (as healthz.php)
                print(f"{origin}: healthz: database check failed ({type(err).__name__})", file=sys.stderr)
                return answer(start_response, "503 Service Unavailable", body)
            return answer(start_response, "200 OK", body)
        if path == "/" and method in ("GET", "HEAD"):
            try:
                role = pool.run(_health)["db_role"]
            except Exception as err:
                print(f"{origin}: home page: database unusable ({type(err).__name__})", file=sys.stderr)
                return answer(start_response, "503 Service Unavailable", {"error": "database unusable"})
            page = (f"<!doctype html><html><head><title>Shop ({region})</title></head><body><p>Served by {origin}, "
                    f"database {role}.</p></body></html>\n").encode()
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store"),
                                      ("Content-Length", str(len(page)))])
            return [page]
        if path.startswith(UPLOADS) and method in ("GET", "HEAD") and settings.get("media_port"):
            status, headers, body = media(int(settings["media_port"]), method, path, environ.get("QUERY_STRING", ""))
            start_response(status, [*headers, ("Cache-Control", "no-store")])
            return [body] if method == "GET" else []
        if path == "/orders" and method == "POST":
            try:
                seq = int(parse_qs(environ.get("QUERY_STRING", ""))["seq"][0])
            except (KeyError, ValueError):
                return answer(start_response, "400 Bad Request", {"error": "seq must be an integer"})
            try:
                pool.run(lambda conn: orders.insert_order(conn, seq, region))
            except Exception as err:
                code = err.args[0] if err.args and isinstance(err.args[0], int) else None
                return answer(start_response, "503 Service Unavailable",
                              {"error": f"{type(err).__name__}{f' {code}' if code else ''}", "origin": origin})
            return answer(start_response, "201 Created", {"seq": seq, "region": region, "origin": origin})
        return answer(start_response, "404 Not Found", {"error": "not found"})

    return app


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 64


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # one line per request would swamp the log
        pass


def serve(settings: dict[str, Any]) -> None:
    server = make_server("127.0.0.1", int(settings["port"]), application(settings),
                         server_class=_Server, handler_class=_QuietHandler)
    server.serve_forever(poll_interval=0.1)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m drctl.rehearsal.shop SETTINGS.json", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as f:
        settings = json.load(f)
    with contextlib.suppress(KeyboardInterrupt):
        serve(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
