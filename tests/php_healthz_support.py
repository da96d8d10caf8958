"""Real servers for the /healthz tests: a throwaway MariaDB on loopback that requires TLS with a
certificate from a CA made by the test, and PHP's built-in web server running the web node's
healthz.php exactly as cloud-init installs it."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pymysql

from tests.binaries import require

TEMPLATES = Path(__file__).resolve().parent.parent / "components" / "templates" / "web-node"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(predicate, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not come up within {timeout} s")


@dataclass(frozen=True)
class CertificateAuthority:
    cert: Path
    key: Path

    @classmethod
    def create(cls, directory: Path, name: str) -> CertificateAuthority:
        openssl = require("openssl")
        cert, key = directory / f"{name}.pem", directory / f"{name}.key"
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}"],
            check=True, capture_output=True,
        )
        return cls(cert, key)

    def issue_server_certificate(self, directory: Path, ip: str) -> tuple[Path, Path]:
        """A server certificate for `ip` (as an IP subject alternative name), signed by this CA."""
        openssl = require("openssl")
        key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
        subprocess.run(
            [openssl, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={ip}"],
            check=True, capture_output=True,
        )
        extensions = directory / "san.cnf"
        extensions.write_text(f"subjectAltName = IP:{ip}\n")
        subprocess.run(
            [openssl, "x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
             "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(extensions)],
            check=True, capture_output=True,
        )
        return cert, key


class MariaDB:
    """A MariaDB server in `directory`, on a loopback port, TLS on with the given certificate."""

    def __init__(self, directory: Path, ca: CertificateAuthority, server_cert: Path, server_key: Path):
        self.directory = directory
        self.port = free_port()
        self.socket = directory / "mysqld.sock"
        self.process: subprocess.Popen | None = None
        install_db, mariadbd = require("mariadb-install-db"), require("mariadbd")
        data = directory / "data"
        subprocess.run(
            [install_db, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal",
             "--skip-test-db"],
            check=True, capture_output=True,
        )
        self._command = [
            mariadbd, "--no-defaults", f"--datadir={data}", f"--port={self.port}", f"--socket={self.socket}",
            "--bind-address=127.0.0.1", "--skip-name-resolve", "--user=root", f"--log-error={directory / 'error.log'}",
            f"--ssl-ca={ca.cert}", f"--ssl-cert={server_cert}", f"--ssl-key={server_key}",
        ]

    def start(self) -> MariaDB:
        self.process = subprocess.Popen(self._command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for(self._answers, f"MariaDB on port {self.port} (log: {self.directory / 'error.log'})")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def _answers(self) -> bool:
        try:
            self.sql("SELECT 1")
            return True
        except pymysql.MySQLError:
            return False

    def sql(self, *statements: str) -> list[tuple]:
        """Run statements as root over the unix socket; the rows of the last one."""
        connection = pymysql.connect(unix_socket=str(self.socket), user="root", autocommit=True)
        try:
            with connection.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
                return list(cursor.fetchall())
        finally:
            connection.close()


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
        self.port = free_port()
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
        return stderr
