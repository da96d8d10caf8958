"""Throwaway MariaDB 10.11 servers on loopback ports, for tests that need real replication.

    def test_something(mariadb_pair):
        primary, replica = mariadb_pair
        with primary.connect() as conn: ...

Each `MariaDBServer` gets its own data directory under one private temp directory, a free
127.0.0.1 port, binary logging in ROW format with GTIDs (`log_slave_updates`, strict mode), a
server id, and TLS with a certificate for 127.0.0.1 signed by a per-session test CA (`TestCA`), so
replication is set up exactly as in production: verified TLS, GTID auto-positioning. `root` logs in
through the socket without a password; `create_user` makes TCP accounts.

Lifecycle: `start()` (waits until the server answers), `stop()` (clean shutdown), `kill()` (SIGKILL,
for crash tests), `start()` again reuses the data. Fixtures stop every server and remove every file,
also when a test fails. Servers start with `--user=root` when the tests run as root (CI does).

Fixtures: `mariadb_ca` and `mariadb_template` (session: the test CA, one installed data directory
that every server copies), `mariadb_server`, `mariadb_pair`, `mariadb_trio` (fresh servers, server
ids 1, 2, 3; nothing replicates until a test sets it up, e.g. with `replicate()`), and
`mariadb_cluster` for servers with custom options (`cluster.add(extra_args=("--read-only",))`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pymysql
import pytest

from drctl import replication
from tests.binaries import need

HOST = "127.0.0.1"


@dataclass(frozen=True)
class TestCA:
    """A CA and one server certificate for 127.0.0.1 (and 'localhost'), made with openssl."""

    __test__ = False  # not a pytest test class

    ca: str
    cert: str
    key: str

    @classmethod
    def create(cls, directory: Path) -> TestCA:
        openssl = need("openssl")["openssl"]
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)

        def run(*args: str) -> None:
            subprocess.run([openssl, *args], check=True, capture_output=True, cwd=d)

        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        run("req", "-x509", *ec, "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=woocommerce-dr test CA")
        run("req", *ec, "-keyout", "server-key.pem", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
        (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
        run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
            "-out", "server-cert.pem", "-days", "2", "-extfile", "san.ext")
        return cls(ca=str(d / "ca.pem"), cert=str(d / "server-cert.pem"), key=str(d / "server-key.pem"))


def install_datadir(install_db: str, datadir: Path) -> None:
    subprocess.run(
        [install_db, "--no-defaults", f"--datadir={datadir}", "--auth-root-authentication-method=normal",
         "--skip-test-db", "--innodb-log-file-size=16M", *(["--user=root"] if os.geteuid() == 0 else [])],
        check=True, capture_output=True, timeout=60,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class MariaDBServer:
    """One mariadbd process with its own data directory below `base`."""

    def __init__(self, base: Path, server_id: int, tls: TestCA, *, name: str | None = None,
                 extra_args: tuple[str, ...] = (), template: Path | None = None):
        self.binaries = need("mariadbd", "mariadb-install-db")
        self.server_id = server_id
        self.name = name or f"s{server_id}"
        self.dir = Path(base) / self.name
        self.datadir = self.dir / "data"
        self.socket = str(self.dir / "mysqld.sock")  # short path: unix sockets allow 107 bytes
        self.error_log = self.dir / "error.log"
        self.port = free_port()
        self.host = HOST
        self.tls = tls
        self.extra_args = extra_args
        self.template = template
        self.process: subprocess.Popen | None = None

    def __repr__(self) -> str:
        return f"MariaDBServer({self.name}, port={self.port}, server_id={self.server_id})"

    # --- lifecycle -----------------------------------------------------------------------------
    def install(self) -> None:
        """A fresh data directory: a copy of `template` when given (a tenth of the time), else
        mariadb-install-db."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.template is not None:
            shutil.copytree(self.template, self.datadir, symlinks=True)
        else:
            install_datadir(self.binaries["mariadb-install-db"], self.datadir)

    def start(self, timeout: float = 30) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        if not self.datadir.exists():
            self.install()
        argv = [
            self.binaries["mariadbd"], "--no-defaults", f"--datadir={self.datadir}", f"--port={self.port}",
            f"--socket={self.socket}", f"--pid-file={self.dir / 'mysqld.pid'}", f"--log-error={self.error_log}",
            f"--bind-address={HOST}", f"--server-id={self.server_id}",
            f"--log-bin={self.dir / 'binlog'}", f"--relay-log={self.dir / 'relay'}", "--binlog-format=ROW",
            "--log-slave-updates", "--gtid-strict-mode=ON", "--skip-name-resolve",
            f"--ssl-ca={self.tls.ca}", f"--ssl-cert={self.tls.cert}", f"--ssl-key={self.tls.key}",
            "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M", "--innodb-flush-log-at-trx-commit=2",
            "--slave-net-timeout=10", "--event-scheduler=ON",
            *(["--user=root"] if os.geteuid() == 0 else []),
            *self.extra_args,
        ]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self} exited with {self.process.returncode} while starting:\n{self.log_tail()}")
            try:
                self.connect().close()
                return
            except pymysql.err.OperationalError:
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(f"{self} did not answer within {timeout} s:\n{self.log_tail()}") from None
                time.sleep(0.05)

    def stop(self, timeout: float = 30) -> None:
        """Clean shutdown (SIGTERM); SIGKILL if it does not exit within `timeout`."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """Crash the server (SIGKILL): what a dead region looks like to its peers."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.error_log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no error log)"

    # --- access --------------------------------------------------------------------------------
    def connect(self, user: str = "root", password: str = "", database: str | None = None,
                tls: bool | None = None, timeout: float = 5):
        """root: through the socket. Anyone else: TCP to 127.0.0.1, TLS verified against the test CA
        unless `tls=False`."""
        if user == "root" and tls is None:
            return replication.connect(user="root", unix_socket=self.socket, database=database,
                                       connect_timeout=timeout)
        return replication.connect(self.host, self.port, user, password, database=database,
                                   ssl_ca=self.tls.ca if tls is not False else None, connect_timeout=timeout)

    def execute(self, *statements: str) -> None:
        """Run statements as root."""
        with contextlib.closing(self.connect()) as conn, conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)

    def query(self, sql: str, user: str = "root", password: str = "") -> list[tuple]:
        with contextlib.closing(self.connect(user, password)) as conn, conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())

    def create_user(self, name: str, password: str, privileges: str = "ALL PRIVILEGES ON *.*",
                    host: str = HOST) -> None:
        """A TCP account from 127.0.0.1 that must use TLS."""
        with contextlib.closing(self.connect()) as conn, conn.cursor() as cur:
            cur.execute("CREATE USER %s@%s IDENTIFIED BY %s REQUIRE SSL", (name, host, password))
            cur.execute(f"GRANT {privileges} TO %s@%s", (name, host))


def replicate(replica: MariaDBServer, source: MariaDBServer, user: str = "repl", password: str = "repl-pw",
              timeout: float = 20) -> replication.ReplicaStatus:
    """Point `replica` at `source` with the project's replication code (verified TLS, GTID) and wait
    until both threads run. The account must exist on `source` (see `create_user`)."""
    with contextlib.closing(replica.connect()) as conn:
        dialect = replication.detect_dialect(conn)
        replication.change_source(conn, dialect, replication.Source(
            host=source.host, port=source.port, user=user, password=password, ssl_ca=source.tls.ca,
            connect_retry=1, heartbeat_period=1,
        ))
        replication.start_replica(conn, dialect)
        return replication.wait_until_replicating(conn, dialect, timeout=timeout)


class MariaDBCluster:
    """Servers sharing one private temp directory; `close()` stops them and removes everything."""

    def __init__(self, tls: TestCA, template: Path | None = None):
        self.tls = tls
        self.template = template
        # Not pytest's tmp_path: its long paths overflow the unix-socket limit.
        self.base = Path(tempfile.mkdtemp(prefix="wcdr-mdb-"))
        self.servers: list[MariaDBServer] = []

    def add(self, server_id: int | None = None, **kwargs) -> MariaDBServer:
        kwargs.setdefault("template", self.template)
        server = MariaDBServer(self.base, server_id or len(self.servers) + 1, self.tls, **kwargs)
        self.servers.append(server)
        server.start()
        return server

    def close(self) -> None:
        for server in self.servers:
            try:
                server.stop(timeout=10)
            finally:
                server.kill()
        shutil.rmtree(self.base, ignore_errors=True)


@contextlib.contextmanager
def cluster(tls: TestCA, count: int, template: Path | None = None) -> Iterator[list[MariaDBServer]]:
    group = MariaDBCluster(tls, template)
    try:
        yield [group.add() for _ in range(count)]
    finally:
        group.close()


@pytest.fixture(scope="session")
def mariadb_ca(tmp_path_factory) -> TestCA:
    need("mariadbd", "mariadb-install-db", "openssl")
    return TestCA.create(tmp_path_factory.mktemp("mariadb-ca"))


@pytest.fixture(scope="session")
def mariadb_template(tmp_path_factory) -> Path:
    """One freshly installed data directory per session; every server starts from a copy."""
    install_db = need("mariadb-install-db")["mariadb-install-db"]
    datadir = tmp_path_factory.mktemp("mariadb-template") / "data"
    install_datadir(install_db, datadir)
    return datadir


@pytest.fixture
def mariadb_cluster(mariadb_ca, mariadb_template) -> Iterator[MariaDBCluster]:
    """An empty cluster: `add(server_id=..., extra_args=(...))` starts servers with custom options."""
    group = MariaDBCluster(mariadb_ca, mariadb_template)
    try:
        yield group
    finally:
        group.close()


@pytest.fixture
def mariadb_server(mariadb_ca, mariadb_template) -> Iterator[MariaDBServer]:
    with cluster(mariadb_ca, 1, mariadb_template) as (server,):
        yield server


@pytest.fixture
def mariadb_pair(mariadb_ca, mariadb_template) -> Iterator[tuple[MariaDBServer, MariaDBServer]]:
    """(primary, replica): server ids 1 and 2, not yet replicating."""
    with cluster(mariadb_ca, 2, mariadb_template) as (primary, replica):
        yield primary, replica


@pytest.fixture
def mariadb_trio(mariadb_ca, mariadb_template) -> Iterator[tuple[MariaDBServer, MariaDBServer, MariaDBServer]]:
    with cluster(mariadb_ca, 3, mariadb_template) as (a, b, c):
        yield a, b, c


@pytest.fixture
def primary_and_read_only_replica(mariadb_cluster) -> tuple[MariaDBServer, MariaDBServer]:
    """Two servers, the second started read-only as a replica's my.cnf has it; nothing replicates
    until a test runs the replica's bootstrap (drctl.server_bootstrap)."""
    return mariadb_cluster.add(), mariadb_cluster.add(extra_args=("--read-only",))
