"""Throwaway MariaDB 10.11 servers on loopback ports: the databases of `drctl rehearse`, and of the
tests (tests/support/mariadb.py wraps this module in pytest fixtures).

Each `MariaDBServer` gets its own data directory below a private temp directory, a 127.0.0.1 port
reserved for its whole life (drctl/local/ports.py), binary logging in ROW format with GTIDs
(`log_slave_updates`, strict mode), a server id, and TLS with a certificate for 127.0.0.1 signed by
a throwaway CA (`LocalCA`), so replication is set up exactly as in production: verified TLS, GTID auto-positioning, through drctl/mysql/replication.py. `root`
logs in through the socket without a password; `create_user` makes TCP accounts that must use TLS.

Lifecycle: `start()` (waits until the server answers), `stop()` (clean shutdown), `kill()` (SIGKILL,
what a dead region looks like), `start()` again reuses the data. `MariaDBCluster.close()` stops every
server and removes every file. Servers run with `--user=root` when started as root (CI is root).

A missing binary raises `binaries.MissingBinary`, naming the Debian package to install.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pymysql

from drctl.local import binaries, processes
from drctl.local.ports import HOST, PortReservation
from drctl.mysql import replication

FindBinaries = Callable[..., dict[str, str]]


class LocalServerError(Exception):
    """A local server would not start or answer; the message ends with its log's last lines."""


def _as_root() -> list[str]:
    # mariadbd refuses to run as root unless told to; CI and the rehearsal on a laptop both may be root.
    return ["--user=root"] if os.geteuid() == 0 else []


@dataclass(frozen=True)
class LocalCA:
    """A CA and one server certificate for 127.0.0.1 (and 'localhost'), made with openssl."""

    ca: str
    cert: str
    key: str

    find_binaries = staticmethod(binaries.find)  # tests swap in their skip-or-fail lookup

    @classmethod
    def create(cls, directory: Path) -> LocalCA:
        openssl = cls.find_binaries("openssl")["openssl"]
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)

        def run(*args: str) -> None:
            subprocess.run([openssl, *args], check=True, capture_output=True, cwd=d)

        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        run("req", "-x509", *ec, "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=woocommerce-dr local CA")
        run("req", *ec, "-keyout", "server-key.pem", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
        (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
        run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
            "-out", "server-cert.pem", "-days", "2", "-extfile", "san.ext")
        return cls(ca=str(d / "ca.pem"), cert=str(d / "server-cert.pem"), key=str(d / "server-key.pem"))


def install_datadir(install_db: str, datadir: Path) -> None:
    # Its own temporary directory: with the default /tmp, the bootstrap's temporary tables were seen
    # vanishing under it ("Could not remove temporary table ... error: 2", then "Unknown table
    # 'mysql.tmp_user_sys'") while other suites ran on the machine.
    tmpdir = Path(datadir).parent / "tmp"
    tmpdir.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [install_db, "--no-defaults", f"--datadir={datadir}", "--auth-root-authentication-method=normal",
         "--skip-test-db", "--innodb-log-file-size=16M", f"--tmpdir={tmpdir}", *_as_root()],
        check=False, capture_output=True, text=True, timeout=60,
    )
    if done.returncode != 0:  # say why: its own words are all there is to go on
        said = "\n".join((done.stderr or done.stdout or "(nothing)").strip().splitlines()[-20:])
        raise LocalServerError(f"mariadb-install-db exited with {done.returncode} for {datadir}:\n{said}")


def make_template(directory: Path, find_binaries: FindBinaries = binaries.find) -> Path:
    """One freshly installed data directory that servers copy instead of installing their own (a
    copy takes a tenth of the time of mariadb-install-db)."""
    datadir = Path(directory) / "data"
    install_datadir(find_binaries("mariadb-install-db")["mariadb-install-db"], datadir)
    return datadir


class MariaDBServer:
    """One mariadbd process with its own data directory below `base`."""

    find_binaries = staticmethod(binaries.find)

    def __init__(self, base: Path, server_id: int, tls: LocalCA, *, name: str | None = None,
                 extra_args: tuple[str, ...] = (), template: Path | None = None):
        self.binaries = self.find_binaries("mariadbd", "mariadb-install-db")
        self.server_id = server_id
        self.name = name or f"s{server_id}"
        self.dir = Path(base) / self.name
        self.datadir = self.dir / "data"
        self.socket = str(self.dir / "mysqld.sock")  # short path: unix sockets allow 107 bytes
        self.error_log = self.dir / "error.log"
        # Held for the server's whole life, restarts included (a killed region comes back on its port).
        self._port = PortReservation()
        self.port = self._port.port
        self.host = HOST
        self.tls = tls
        self.extra_args = extra_args
        self.template = template
        self.process: subprocess.Popen | None = None

    def __repr__(self) -> str:
        return f"MariaDBServer({self.name}, port={self.port}, server_id={self.server_id})"

    # --- lifecycle -----------------------------------------------------------------------------
    def install(self) -> None:
        """A fresh data directory: a copy of `template` when given, else mariadb-install-db."""
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
            *_as_root(),
            *self.extra_args,
        ]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.wait_until_ready(self.process, self._answers, timeout, repr(self), self.error_log,
                                         LocalServerError)

    def _answers(self) -> bool:
        try:
            self.connect().close()
            return True
        except pymysql.err.OperationalError:
            return False

    def stop(self, timeout: float = 30) -> None:
        """Clean shutdown (SIGTERM); SIGKILL if it does not exit within `timeout`."""
        processes.terminate(self.process, timeout)
        self.process = None

    def kill(self) -> None:
        """Crash the server (SIGKILL): what a dead region looks like to its peers."""
        processes.kill(self.process)
        self.process = None

    def release(self) -> None:
        """Stop for good: kill the server if it still runs and give its port back."""
        self.kill()
        self._port.release()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        return processes.log_tail(self.error_log, lines)

    # --- access --------------------------------------------------------------------------------
    def connect(self, user: str = "root", password: str = "", database: str | None = None,
                tls: bool | None = None, timeout: float = 5):
        """root: through the socket. Anyone else: TCP to 127.0.0.1, TLS verified against the CA
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


def replicate(replica: MariaDBServer, source: MariaDBServer, user: str = "repl", password: str = "repl-pw",  # noqa: S107 -- a throwaway local server
              timeout: float = 20, *, port: int | None = None) -> replication.ReplicaStatus:
    """Point `replica` at `source` with the project's replication code (verified TLS, GTID) and wait
    until both threads run. The account must exist on `source` (see `create_user`). `port`: reach
    the source through another port (a proxy in front of it) instead of its own."""
    with contextlib.closing(replica.connect()) as conn:
        dialect = replication.detect_dialect(conn)
        replication.change_source(conn, dialect, replication.Source(
            host=source.host, port=port or source.port, user=user, password=password, ssl_ca=source.tls.ca,
            connect_retry=1, heartbeat_period=1,
        ))
        replication.start_replica(conn, dialect)
        return replication.wait_until_replicating(conn, dialect, timeout=timeout)


class MariaDBCluster:
    """Servers sharing one private temp directory; `close()` stops them and removes everything."""

    server_class = MariaDBServer

    def __init__(self, tls: LocalCA, template: Path | None = None, base: Path | None = None):
        self.tls = tls
        self.template = template
        # A short path of its own (not pytest's tmp_path): long paths overflow the unix-socket limit.
        self.base = Path(base) if base is not None else Path(tempfile.mkdtemp(prefix="wcdr-mdb-"))
        self.servers: list[MariaDBServer] = []

    def add(self, server_id: int | None = None, **kwargs) -> MariaDBServer:
        kwargs.setdefault("template", self.template)
        server = self.server_class(self.base, server_id or len(self.servers) + 1, self.tls, **kwargs)
        self.servers.append(server)
        server.start()
        return server

    def close(self) -> None:
        for server in self.servers:
            try:
                server.stop(timeout=10)
            finally:
                server.release()
        shutil.rmtree(self.base, ignore_errors=True)


@contextlib.contextmanager
def cluster(tls: LocalCA, count: int, template: Path | None = None,
            group_class: type[MariaDBCluster] = MariaDBCluster) -> Iterator[list[MariaDBServer]]:
    group = group_class(tls, template)
    try:
        yield [group.add() for _ in range(count)]
    finally:
        group.close()
