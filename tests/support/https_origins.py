"""Real HTTPS origins for probe and watchdog tests, standing in for the regions' NodeBalancers.

Each origin listens on its own loopback address (127.0.0.2, 127.0.0.3, ...: the whole 127/8 is
local on Linux) on a port shared by all of them, like NodeBalancers that all serve 443. Their
certificate is issued by a test CA (like Cloudflare's Origin CA: trusted by nobody by default) for
the shop's domain, generated with the openssl CLI. Tests turn origins up and down, or give them a
script of answers (flapping), and read back the SNI and Host each request carried.
"""

from __future__ import annotations

import errno
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DOMAIN = "shop.example.test"
HEALTH_PATH = "/healthz"


@dataclass(frozen=True)
class Certificates:
    ca: Path  # what --ca-file gets
    cert: Path  # the origins' certificate, for DOMAIN and *.DOMAIN
    key: Path
    other_ca: Path  # a CA that did not issue it


def make_certificates(directory: Path, domain: str = DOMAIN) -> Certificates:
    openssl = shutil.which("openssl")
    assert openssl, "the openssl CLI is needed to make test certificates"

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, cwd=directory)

    for ca in ("ca", "other-ca"):
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=drctl test {ca}",
            "-keyout", f"{ca}.key", "-out", f"{ca}.pem")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={domain}", "-keyout", "origin.key", "-out", "origin.csr")
    (directory / "san.cnf").write_text(f"subjectAltName=DNS:{domain},DNS:*.{domain}\n")
    run("x509", "-req", "-in", "origin.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
        "-extfile", "san.cnf", "-out", "origin.pem")
    return Certificates(directory / "ca.pem", directory / "origin.pem", directory / "origin.key",
                        directory / "other-ca.pem")


@dataclass
class Origin:
    """One HTTPS origin. `healthy` toggles 200/503; `script` (if set) gives the next answers
    (True healthy, False 503) and falls back to `healthy` when used up; `hang` never answers."""

    address: str
    healthy: bool = True
    hang: bool = False
    script: list[bool] = field(default_factory=list)
    seen: list[tuple[str | None, str | None, str]] = field(default_factory=list)  # (sni, host, path)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _release: threading.Event = field(default_factory=threading.Event)

    def answer(self) -> bool:
        with self._lock:
            return self.script.pop(0) if self.script else self.healthy


def _handler(origin: Origin, sni_by_socket: dict[int, str | None]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            origin.seen.append((sni_by_socket.get(id(self.connection)), self.headers.get("Host"), self.path))
            if origin.hang:
                origin._release.wait(30)
                return
            ok = origin.answer()
            body = b'{"db_reachable":true}' if ok else b'{"db_reachable":false}'
            self.send_response(200 if ok else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@dataclass
class Origins:
    """Start one origin per address; `port` is shared by all of them."""

    certs: Certificates
    addresses: list[str]
    port: int = 0
    by_address: dict[str, Origin] = field(default_factory=dict)

    def __enter__(self) -> Origins:
        # The servers bind the port themselves: the first takes one the kernel picks, the others the
        # same one on their own address (a number found free and handed over later could be taken
        # in between). Should another address have it already, start again.
        for _ in range(50):
            try:
                self._start_all()
                return self
            except OSError as err:
                if err.errno != errno.EADDRINUSE:
                    raise
                self.__exit__()
                self.by_address.clear()
        raise RuntimeError("no port free on every test address")

    def _start_all(self) -> None:
        self.port = 0
        for address in self.addresses:
            origin = Origin(address)
            sni: dict[int, str | None] = {}
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.certs.cert, self.certs.key)
            context.sni_callback = lambda sock, name, _ctx, sni=sni: sni.__setitem__(id(sock), name)
            server = _TLSServer((address, self.port), _handler(origin, sni), context, sni)
            self.port = server.server_address[1]
            origin._server = server
            self.by_address[address] = origin
            threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()

    def __exit__(self, *exc: object) -> None:
        for origin in self.by_address.values():
            origin._release.set()
            if origin._server:
                origin._server.shutdown()
                origin._server.server_close()

    def __getitem__(self, address: str) -> Origin:
        return self.by_address[address]

    def __iter__(self) -> Iterator[Origin]:
        return iter(self.by_address.values())


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], context: ssl.SSLContext,
                 sni: dict[int, str | None]):
        self.context, self.sni = context, sni
        super().__init__(address, handler)

    def get_request(self):
        sock, addr = super().get_request()
        sock.settimeout(5)
        try:
            # The handshake runs here; the SNI callback files the name under this SSLSocket's id.
            return self.context.wrap_socket(sock, server_side=True), addr
        except OSError:  # ssl.SSLError included: a client that rejects our certificate
            sock.close()
            raise
