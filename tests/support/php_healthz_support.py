"""PHP's built-in web server running the web node's healthz.php exactly as cloud-init installs it,
for the /healthz tests (the MariaDB behind it comes from tests/support/mariadb.py)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from drctl.local.ports import PortReservation
from tests.support.binaries import require

TEMPLATES = Path(__file__).resolve().parents[2] / "components" / "templates" / "web-node"


def _wait_for(predicate, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not come up within {timeout} s")


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> dict:
        return json.loads(self.body)


class Healthz:
    """healthz.php served by `php -S` with its settings folder at `etc` (WOOCOMMERCE_DR_ETC)."""

    def __init__(self, etc: Path):
        php = require("php")
        self._port = PortReservation()  # held until stop(): php -S binds it with SO_REUSEADDR
        self.port = self._port.port
        env = {**os.environ, "WOOCOMMERCE_DR_ETC": str(etc)}
        self.process = subprocess.Popen(
            [php, "-S", f"127.0.0.1:{self.port}", str(TEMPLATES / "healthz.php")],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        _wait_for(self._listening, f"php -S on port {self.port}")

    def _listening(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def get(self, path: str = "/healthz") -> Response:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode())
        finally:
            connection.close()

    def stop(self) -> str:
        """Stop the server; what it logged (PHP's error_log lands here)."""
        self.process.terminate()
        _, stderr = self.process.communicate(timeout=10)
        self._port.release()
        return stderr
