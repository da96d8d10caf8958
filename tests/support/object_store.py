"""A real S3-compatible server on loopback for anything that keeps files in Linode Object Storage
(the shop's media now, the binlog archive later), and per-region endpoints in front of it that a
test can take down.

`ObjectStore` runs moto's S3 server (PyPI `moto[server]`, pinned in requirements-dev.txt) in a
thread, bound to port 0 by itself. Linode Object Storage is one endpoint per region; here every
region gets a `RegionEndpoint`, a TCP relay with its own port in front of the one server, so
`endpoint.down()` makes that region's Object Storage refuse connections (as an outage does) while
the other regions' keep answering and no object is lost. `bucket(name)` creates a bucket and
`rclone_config(...)` writes a config for the real rclone, like the one the web nodes get.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

from drctl.local.ports import PortReservation
from tests.support.waiting import wait_until

ACCESS_KEY = "TESTACCESSKEY"
SECRET_KEY = "test-secret-key-never-logged"


class RegionEndpoint:
    """A TCP relay on its own loopback port to the S3 server; `down()` refuses new connections
    and cuts open ones, `up()` serves again. The listening socket stays bound throughout, so the
    port is never free for anyone else to take."""

    def __init__(self, region: str, target: tuple[str, int]):
        self.region = region
        self.target = target
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._available = True
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name=f"s3-{region}").start()

    @property
    def available(self) -> bool:
        return self._available

    def down(self) -> None:
        self._available = False
        with self._lock:
            for s in list(self._open):
                _close(s)
            self._open.clear()

    def up(self) -> None:
        self._available = True

    def close(self) -> None:
        self._closed = True
        self.down()
        _close(self._listener)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._available:
                # RST, not FIN: a client sees "connection reset", as from a dead endpoint.
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(source)
                self._open.discard(sink)
            _close(source)
            _close(sink)


def _close(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.close()


@dataclass
class ObjectStore:
    """moto's S3 server plus one endpoint per region. Use as a context manager. `own_process`: run
    the server as a child process instead of a thread, so it does not share the GIL with a caller
    that keeps busy (the benchmark's polling)."""

    regions: tuple[str, ...] = ()
    own_process: bool = False
    server: ThreadedMotoServer | None = None
    endpoints: dict[str, RegionEndpoint] = field(default_factory=dict)

    def __enter__(self) -> ObjectStore:
        if self.own_process:
            host, port = self._start_process()
        else:
            self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            self.server.start()
            host, port = self.server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        # moto keeps its buckets per process, not per server: start from none, whatever ran before.
        reset = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")  # noqa: S310 - http, loopback
        urllib.request.urlopen(reset, timeout=10).close()  # noqa: S310
        for region in self.regions:
            self.endpoints[region] = RegionEndpoint(region, (host, port))
        return self

    def __exit__(self, *exc: object) -> None:
        for endpoint in self.endpoints.values():
            endpoint.close()
        if self.server is not None:
            self.server.stop()
        if getattr(self, "_process", None) is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._reservation.release()

    def _start_process(self) -> tuple[str, int]:
        # The port is held by a reservation until the server is gone (werkzeug binds with SO_REUSEADDR).
        self._reservation = PortReservation()
        port = self._reservation.port
        self._process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def answers() -> bool:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=2).close()
                return True
            except OSError:
                return self._process.poll() is not None  # died: stop waiting, fail below

        wait_until(answers, timeout=30, what="the moto S3 server process")
        if self._process.poll() is not None:
            raise RuntimeError(f"the moto S3 server exited with {self._process.returncode}")
        return "127.0.0.1", port

    def client(self):
        """A boto3 S3 client straight to the server (for checks behind the endpoints' backs)."""
        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> set[str]:
        paginator = self.client().get_paginator("list_objects_v2")
        return {o["Key"] for page in paginator.paginate(Bucket=bucket, Prefix=prefix) for o in page.get("Contents", [])}

    def read(self, bucket: str, key: str) -> bytes:
        return self.client().get_object(Bucket=bucket, Key=key)["Body"].read()


@dataclass(frozen=True)
class RcloneRemote:
    name: str  # the rclone remote name
    endpoint: str  # URL


def rclone_config(path: Path, remotes: list[RcloneRemote]) -> Path:
    """An rclone config with one S3 remote per entry (path-style, the test key)."""
    sections = [
        f"[{r.name}]\ntype = s3\nprovider = Other\nenv_auth = false\naccess_key_id = {ACCESS_KEY}\n"
        f"secret_access_key = {SECRET_KEY}\nendpoint = {r.endpoint}\nregion = us-east-1\nacl = private\n"
        for r in remotes
    ]
    path.write_text("\n".join(sections))
    path.chmod(0o600)
    return path
