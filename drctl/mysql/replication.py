"""MySQL/MariaDB replication: the one implementation of its SQL and of reading replica status.

Used in three places, so they cannot drift apart: on the database Linodes (cloud-init ships this file
to set up each replica), by `drctl` (status, promote, failback) and by the tests. It therefore imports
nothing but the standard library, PyMySQL, which Ubuntu packages as `python3-pymysql`, and the two
modules shipped with it: `dialect` and `gtid` (the arithmetic on the GTID histories read here). Keep
it compatible with PyMySQL 1.0 (Ubuntu 24.04) and Python 3.11.

Functions take an open PyMySQL connection (autocommit, see `connect`) and the server's `Dialect`
(`detect_dialect`). Three dialects are spoken:

- MySQL 8.0.23 to 8.1: `CHANGE REPLICATION SOURCE TO`, `START REPLICA`, `SHOW REPLICA STATUS`,
  `RESET MASTER`;
- MySQL 8.2 and later (8.4 LTS, 9.x): the same, but `RESET BINARY LOGS AND GTIDS` and
  `SHOW BINARY LOG STATUS` (the MASTER forms are gone in 8.4);
- MariaDB 10.5 and later (10.11 LTS): `CHANGE MASTER TO ... MASTER_USE_GTID = slave_pos`,
  `START SLAVE`, `SHOW SLAVE STATUS`, domain-server-sequence GTIDs, and `read_only` without
  `super_read_only`.

Secrets (passwords) travel as statement parameters, never inside the SQL text, and server errors that
could echo a statement back are redacted before they are raised.
"""

from __future__ import annotations

import contextlib
import re
import ssl
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from drctl.mysql import gtid
from drctl.mysql.dialect import Dialect

# --- servers and dialects -------------------------------------------------------------------------


class ReplicationError(Exception):
    """A replication step failed; the message is for people and never contains a password."""


class UnsupportedServer(ReplicationError):
    """A server version this module cannot drive safely."""


@dataclass(frozen=True)
class ServerVersion:
    text: str  # as SELECT VERSION() answered
    dialect: Dialect
    numbers: tuple[int, int, int]


_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)")


def parse_version(text: str) -> ServerVersion:
    """'8.0.36-0ubuntu0.24.04.1', '8.4.3', '10.11.6-MariaDB-0+deb12u1-log' -> ServerVersion."""
    match = _VERSION.match(text.strip())
    if not match:
        raise UnsupportedServer(f"cannot read the server version {text!r}")
    numbers = (int(match[1]), int(match[2]), int(match[3]))
    if "mariadb" in text.lower():
        # 10.5 renamed REPLICATION CLIENT to BINLOG MONITOR and added the REPLICA syntax used here.
        if numbers < (10, 5, 0):
            raise UnsupportedServer(f"MariaDB {text} is too old: 10.5 or later is needed (10.11 LTS is tested)")
        return ServerVersion(text, Dialect.MARIADB, numbers)
    if numbers < (8, 0, 23):
        # CHANGE REPLICATION SOURCE TO and its SOURCE_* options arrived in 8.0.23.
        raise UnsupportedServer(f"MySQL {text} is too old: 8.0.23 or later is needed")
    if numbers < (8, 2, 0):
        return ServerVersion(text, Dialect.MYSQL_80, numbers)
    return ServerVersion(text, Dialect.MYSQL_84, numbers)


def server_version(conn) -> ServerVersion:
    return parse_version(str(scalar(conn, "SELECT VERSION()")))


def detect_dialect(conn) -> Dialect:
    return server_version(conn).dialect


def server_id(conn) -> int:
    return int(scalar(conn, "SELECT @@GLOBAL.server_id"))


def connect(
    host: str | None = None,
    port: int = 3306,
    user: str = "root",
    password: str = "",
    *,
    ssl_ca: str | None = None,
    unix_socket: str | None = None,
    database: str | None = None,
    connect_timeout: float = 10,
    ssl_ca_pem: str | None = None,
    tls_name: str | None = None,
    read_timeout: float | None = None,
):
    """An autocommit PyMySQL connection. With `ssl_ca` (a file) or `ssl_ca_pem` (the PEM text), TLS
    is required and the server's certificate must chain to that CA *and* name `host` (or `tls_name`
    when the server is reached by an address its certificate does not carry): the same verification
    the replicas use."""
    import pymysql

    kwargs: dict[str, Any] = {
        "user": user,
        "password": password,
        "autocommit": True,
        "connect_timeout": connect_timeout,
        "charset": "utf8mb4",
        "database": database,
    }
    if unix_socket:
        kwargs["unix_socket"] = unix_socket
    else:
        kwargs.update(host=host, port=port)
    if read_timeout is not None:
        kwargs["read_timeout"] = read_timeout
    if ssl_ca_pem or tls_name:
        kwargs["ssl"] = tls_context(ssl_ca_pem, ssl_ca, tls_name)
    elif ssl_ca:
        kwargs.update(ssl_ca=ssl_ca, ssl_verify_cert=True, ssl_verify_identity=True)
    return pymysql.connect(**kwargs)


class _NamedTLSContext(ssl.SSLContext):
    """Checks the certificate against `expected_name` whatever address the socket was opened to
    (MySQL's own --ssl-verify-server-cert cannot; drctl reaches a server at the address in the
    stack outputs while its peers reach it by name)."""

    expected_name: str | None = None

    def wrap_socket(self, sock, *args: Any, server_hostname: str | None = None, **kwargs: Any):
        return super().wrap_socket(sock, *args, server_hostname=self.expected_name or server_hostname, **kwargs)


def tls_context(ca_pem: str | None, ca_file: str | None = None, name: str | None = None) -> ssl.SSLContext:
    """A client context that requires a certificate chaining to the CA (PEM text or file) and naming
    `name` (or the host connected to)."""
    if not ca_pem and not ca_file:
        raise ValueError("a CA (PEM text or file) is needed to verify the server")
    ctx = _NamedTLSContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.expected_name = name
    if ca_pem:
        ctx.load_verify_locations(cadata=ca_pem)
    else:
        ctx.load_verify_locations(cafile=ca_file)
    ctx.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)  # as PyMySQL does on Python 3.13
    return ctx


# --- statements and running them ------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    """SQL text with `%s` placeholders and the values PyMySQL quotes into them. Secrets live in
    `params` only, so the text can be logged and compared in tests."""

    sql: str
    params: tuple[Any, ...] = ()
    secret_params: frozenset[int] = frozenset()  # indexes into params that must never be shown

    def redact(self, message: str) -> str:
        for i in self.secret_params:
            value = str(self.params[i])
            if value:
                message = message.replace(value, "********")
        return message


_LITERAL_ESCAPES = {"\\": "\\\\", "'": "\\'", "\0": "\\0", "\n": "\\n", "\r": "\\r", "\x1a": "\\Z"}


def sql_literal(value: Any) -> str:
    """`value` as a MySQL literal: numbers as they are, everything else a quoted, escaped string."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "'" + "".join(_LITERAL_ESCAPES.get(c, c) for c in str(value)) + "'"
    return str(value)


def script(statements: Iterable[Statement]) -> str:
    """Statements as one script for the `mysql` client, values written in as literals. It holds the
    secret values too: whoever writes it keeps it from everyone but the account that runs it."""
    return "".join(f"{s.sql % tuple(sql_literal(v) for v in s.params)};\n" for s in statements)


def execute(conn, statement: Statement) -> None:
    """Run one statement; a failure of a statement with secrets is re-raised with them blanked."""
    try:
        with conn.cursor() as cur:
            cur.execute(statement.sql, statement.params or None)
    except Exception as err:
        if not statement.secret_params:
            raise
        # The server may quote the statement back ("near '...'"): never let a password through.
        raise ReplicationError(statement.redact(f"{statement.sql.split(' TO ')[0]} failed: {err}")) from None


def scalar(conn, sql: str, params: Sequence[Any] | None = None) -> Any:
    """The first column of the first row (None when there is no row)."""
    with conn.cursor() as cur:
        cur.execute(sql, params)
        row = cur.fetchone()
    return row[0] if row else None


def quote_name(name: str) -> str:
    """A schema or object name as an SQL identifier (names cannot be statement parameters)."""
    return "`" + name.replace("`", "``") + "`"


@dataclass(frozen=True)
class Source:
    """Where a replica replicates from. TLS is not optional: the replica checks the source's
    certificate against `ssl_ca` and the certificate must name `host`."""

    host: str
    port: int
    user: str
    password: str
    ssl_ca: str  # path of the CA certificate file on the replica
    connect_retry: int = 10  # seconds between reconnection attempts
    retry_count: int = 86400  # attempts before the IO thread gives up: ten days at 10 s
    heartbeat_period: float = 2.0  # the source sends a heartbeat when idle this long

    def __repr__(self) -> str:  # dataclass repr would print the password
        return f"Source(host={self.host!r}, port={self.port}, user={self.user!r}, ssl_ca={self.ssl_ca!r})"


def change_source_statement(dialect: Dialect, source: Source) -> Statement:
    """The statement that points a replica at `source` with GTID auto-positioning over verified TLS."""
    _check_port(source.port)
    if dialect.is_mariadb:
        # MariaDB has no MASTER_RETRY_COUNT in CHANGE MASTER (it is the master_retry_count option).
        sql = (
            "CHANGE MASTER TO MASTER_HOST = %s, MASTER_PORT = {port}, MASTER_USER = %s, "
            "MASTER_PASSWORD = %s, MASTER_SSL = 1, MASTER_SSL_CA = %s, "
            "MASTER_SSL_VERIFY_SERVER_CERT = 1, MASTER_USE_GTID = slave_pos, "
            "MASTER_CONNECT_RETRY = {retry}, MASTER_HEARTBEAT_PERIOD = {heartbeat}"
        )
    else:
        sql = (
            "CHANGE REPLICATION SOURCE TO SOURCE_HOST = %s, SOURCE_PORT = {port}, SOURCE_USER = %s, "
            "SOURCE_PASSWORD = %s, SOURCE_SSL = 1, SOURCE_SSL_CA = %s, "
            "SOURCE_SSL_VERIFY_SERVER_CERT = 1, SOURCE_AUTO_POSITION = 1, "
            "SOURCE_CONNECT_RETRY = {retry}, SOURCE_RETRY_COUNT = {count}, "
            "SOURCE_HEARTBEAT_PERIOD = {heartbeat}"
        )
    sql = sql.format(
        port=int(source.port),
        retry=int(source.connect_retry),
        count=int(source.retry_count),
        heartbeat=_decimal(source.heartbeat_period),
    )
    return Statement(sql, (source.host, source.user, source.password, source.ssl_ca), frozenset({2}))


def start_replica_sql(dialect: Dialect) -> str:
    return "START SLAVE" if dialect.is_mariadb else "START REPLICA"


def stop_replica_sql(dialect: Dialect) -> str:
    return "STOP SLAVE" if dialect.is_mariadb else "STOP REPLICA"


def reset_replica_sql(dialect: Dialect) -> str:
    """Forget the source entirely (used when promoting): RESET ... ALL."""
    return "RESET SLAVE ALL" if dialect.is_mariadb else "RESET REPLICA ALL"


def replica_monitor_privilege(dialect: Dialect) -> str:
    """The privilege that reads SHOW REPLICA STATUS and nothing more (no STOP, no CHANGE): what
    /healthz needs to judge a replica. MariaDB 10.5.9 split it out of REPLICATION CLIENT."""
    return "SLAVE MONITOR" if dialect.is_mariadb else "REPLICATION CLIENT"


def replica_status_sql(dialect: Dialect) -> str:
    return "SHOW SLAVE STATUS" if dialect.is_mariadb else "SHOW REPLICA STATUS"


def reset_gtids_sql(dialect: Dialect) -> tuple[str, ...]:
    """Empty the binary logs and the executed-GTID history, so a seed can install the source's.
    Only ever on a fresh replica: it discards the server's own transaction history."""
    if dialect is Dialect.MYSQL_84:
        return ("RESET BINARY LOGS AND GTIDS",)
    if dialect is Dialect.MYSQL_80:
        return ("RESET MASTER",)
    return ("RESET MASTER", "SET GLOBAL gtid_slave_pos = ''")


def binary_log_status_sql(dialect: Dialect) -> str:
    return "SHOW BINARY LOG STATUS" if dialect is Dialect.MYSQL_84 else "SHOW MASTER STATUS"


def change_source(conn, dialect: Dialect, source: Source) -> None:
    execute(conn, change_source_statement(dialect, source))


def start_replica(conn, dialect: Dialect) -> None:
    execute(conn, Statement(start_replica_sql(dialect)))


def stop_replica(conn, dialect: Dialect) -> None:
    execute(conn, Statement(stop_replica_sql(dialect)))


def reset_gtids(conn, dialect: Dialect) -> None:
    for sql in reset_gtids_sql(dialect):
        execute(conn, Statement(sql))


# --- replica status -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplicaStatus:
    """One row of SHOW REPLICA STATUS / SHOW SLAVE STATUS, read by column name.

    `io_thread` is 'Yes', 'No' or 'Connecting'. GTID fields are text as the server printed them:
    MySQL's `Retrieved_Gtid_Set`/`Executed_Gtid_Set` (uuid:interval sets), MariaDB's `Gtid_IO_Pos`
    (domain-server-sequence; MariaDB has no executed set in the row, see `executed_gtids`)."""

    dialect: Dialect
    io_thread: str
    sql_thread: str
    source_host: str
    source_port: int
    source_user: str
    source_server_id: int | None
    seconds_behind: int | None  # the server's own estimate; lag from the heartbeat is the truth
    last_io_errno: int
    last_io_error: str
    last_sql_errno: int
    last_sql_error: str
    retrieved_gtids: str
    executed_gtids: str | None
    auto_position: bool  # MySQL Auto_Position=1, MariaDB Using_Gtid=Slave_Pos
    ssl_allowed: str
    ssl_verify_server_cert: bool
    io_state: str
    sql_state: str

    @property
    def io_running(self) -> bool:
        return self.io_thread == "Yes"

    @property
    def sql_running(self) -> bool:
        return self.sql_thread == "Yes"

    @property
    def replicating(self) -> bool:
        return self.io_running and self.sql_running

    def problems(self) -> list[str]:
        """Why this replica is not replicating, one line each (empty when it is)."""
        found = []
        if not self.io_running:
            detail = f": error {self.last_io_errno}: {self.last_io_error}" if self.last_io_errno else ""
            found.append(f"IO thread {self.io_thread}{detail}")
        if not self.sql_running:
            detail = f": error {self.last_sql_errno}: {self.last_sql_error}" if self.last_sql_errno else ""
            found.append(f"SQL thread {self.sql_thread}{detail}")
        return found

    def as_dict(self) -> dict[str, Any]:
        return {
            "ioRunning": self.io_thread,
            "sqlRunning": self.sql_thread,
            "sourceHost": self.source_host,
            "sourcePort": self.source_port,
            "secondsBehindSource": self.seconds_behind,
            "lastIoError": self.last_io_error,
            "lastSqlError": self.last_sql_error,
            "retrievedGtids": self.retrieved_gtids,
            "executedGtids": self.executed_gtids,
            "autoPosition": self.auto_position,
        }


# Column names per dialect: MySQL 8.0.22+ says Source/Replica, MariaDB keeps Master/Slave.
_COLUMNS = {
    "mysql": {
        "io_thread": "Replica_IO_Running",
        "sql_thread": "Replica_SQL_Running",
        "source_host": "Source_Host",
        "source_port": "Source_Port",
        "source_user": "Source_User",
        "source_server_id": "Source_Server_Id",
        "seconds_behind": "Seconds_Behind_Source",
        "ssl_allowed": "Source_SSL_Allowed",
        "ssl_verify_server_cert": "Source_SSL_Verify_Server_Cert",
        "io_state": "Replica_IO_State",
        "sql_state": "Replica_SQL_Running_State",
        "retrieved_gtids": "Retrieved_Gtid_Set",
    },
    "mariadb": {
        "io_thread": "Slave_IO_Running",
        "sql_thread": "Slave_SQL_Running",
        "source_host": "Master_Host",
        "source_port": "Master_Port",
        "source_user": "Master_User",
        "source_server_id": "Master_Server_Id",
        "seconds_behind": "Seconds_Behind_Master",
        "ssl_allowed": "Master_SSL_Allowed",
        "ssl_verify_server_cert": "Master_SSL_Verify_Server_Cert",
        "io_state": "Slave_IO_State",
        "sql_state": "Slave_SQL_Running_State",
        "retrieved_gtids": "Gtid_IO_Pos",
    },
}


def parse_replica_status(dialect: Dialect, row: Mapping[str, Any]) -> ReplicaStatus:
    """Parse one status row given as {column name: value}; unknown columns are ignored, so a server
    adding columns does not break it, and a missing one it needs fails loudly."""
    names = _COLUMNS["mariadb" if dialect.is_mariadb else "mysql"]

    def col(key: str) -> Any:
        column = names[key]
        if column not in row:
            raise ReplicationError(f"replica status has no column {column!r} (is this a {dialect.value} server?)")
        return row[column]

    if dialect.is_mariadb:
        auto_position = str(row.get("Using_Gtid", "No")).lower() in ("slave_pos", "current_pos")
        executed = None
    else:
        auto_position = _int(row.get("Auto_Position")) == 1
        executed = _gtid_text(row.get("Executed_Gtid_Set"))
    return ReplicaStatus(
        dialect=dialect,
        io_thread=str(col("io_thread")),
        sql_thread=str(col("sql_thread")),
        source_host=str(col("source_host") or ""),
        source_port=_int(col("source_port")) or 0,
        source_user=str(col("source_user") or ""),
        source_server_id=_int(col("source_server_id")),
        seconds_behind=_int(col("seconds_behind")),
        last_io_errno=_int(row.get("Last_IO_Errno")) or 0,
        last_io_error=str(row.get("Last_IO_Error") or ""),
        last_sql_errno=_int(row.get("Last_SQL_Errno")) or 0,
        last_sql_error=str(row.get("Last_SQL_Error") or ""),
        retrieved_gtids=_gtid_text(col("retrieved_gtids")),
        executed_gtids=executed,
        auto_position=auto_position,
        ssl_allowed=str(col("ssl_allowed") or ""),
        ssl_verify_server_cert=str(col("ssl_verify_server_cert")) in ("Yes", "1"),
        io_state=str(col("io_state") or ""),
        sql_state=str(col("sql_state") or ""),
    )


def replica_status(conn, dialect: Dialect) -> ReplicaStatus | None:
    """The server's replica status, or None when it is not configured as a replica."""
    rows = _dict_rows(conn, replica_status_sql(dialect))
    return parse_replica_status(dialect, rows[0]) if rows else None


def wait_until_replicating(conn, dialect: Dialect, timeout: float = 60, poll: float = 0.25) -> ReplicaStatus:
    """Wait until both replication threads run; raise ReplicationError with the server's own errors
    when they do not within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        status = replica_status(conn, dialect)
        if status is None:
            raise ReplicationError("the server is not configured as a replica")
        if status.replicating:
            return status
        # A thread that stopped with an error will not recover by itself; a connecting one may.
        if time.monotonic() >= deadline or status.last_sql_errno or (
            status.io_thread == "No" and status.last_io_errno
        ):
            raise ReplicationError("replication is not running: " + "; ".join(status.problems()))
        time.sleep(poll)


# --- GTIDs as the servers have them ---------------------------------------------------------------


def executed_gtids(conn, dialect: Dialect) -> gtid.Gtids:
    """Every transaction this server has applied or written: MySQL @@gtid_executed; MariaDB
    @@gtid_current_pos (its own binlog on a primary, the replicated position on a replica)."""
    variable = "@@GLOBAL.gtid_current_pos" if dialect.is_mariadb else "@@GLOBAL.gtid_executed"
    return gtid.parse_gtids(dialect, str(scalar(conn, f"SELECT {variable}") or ""))


def binlog_state(conn) -> gtid.MariaDBGtidState:
    return gtid.MariaDBGtidState.parse(str(scalar(conn, "SELECT @@GLOBAL.gtid_binlog_state") or ""))


def replica_position(conn) -> gtid.MariaDBGtidPos:
    """MariaDB's @@gtid_slave_pos: the last GTID per domain this server applied as a replica (or a
    copy of its source's data installed)."""
    return gtid.MariaDBGtidPos.parse(str(scalar(conn, "SELECT @@GLOBAL.gtid_slave_pos") or ""))


def compare_servers(source_conn, replica_conn, dialect: Dialect) -> gtid.GtidComparison:
    """`gtid.compare_histories` of two servers, read from them."""
    def history(conn) -> tuple[str, str]:
        return str(executed_gtids(conn, dialect)), str(binlog_state(conn)) if dialect.is_mariadb else ""

    (source, source_state), (replica, replica_state) = history(source_conn), history(replica_conn)
    replica_id = server_id(replica_conn)
    return gtid.compare_histories(dialect, source, replica, source_state, replica_state, replica_id)


def retrieved_not_applied(conn, dialect: Dialect, status: ReplicaStatus | None = None) -> tuple[gtid.Gtids, int]:
    """What the replica has received from its source (relay log) but not applied yet, and how many
    transactions that is. MySQL: Retrieved_Gtid_Set minus gtid_executed. MariaDB: Gtid_IO_Pos beyond
    gtid_slave_pos, per domain."""
    status = status or replica_status(conn, dialect)
    if status is None:
        return gtid.parse_gtids(dialect, ""), 0
    retrieved = gtid.parse_gtids(dialect, status.retrieved_gtids)
    if dialect.is_mariadb:
        applied = replica_position(conn)
        assert isinstance(retrieved, gtid.MariaDBGtidPos)
        return retrieved, retrieved.transactions_beyond(applied)
    executed = executed_gtids(conn, dialect)
    assert isinstance(retrieved, gtid.GtidSet) and isinstance(executed, gtid.GtidSet)
    return retrieved, len(retrieved - executed)


def wait_for_gtids(conn, dialect: Dialect, gtids: gtid.Gtids, timeout: float) -> bool:
    """Block until this server has applied `gtids` (True) or `timeout` seconds passed (False)."""
    if dialect.is_mariadb:
        result = scalar(conn, "SELECT MASTER_GTID_WAIT(%s, %s)", (str(gtids), float(timeout)))
        return result == 0
    result = scalar(conn, "SELECT WAIT_FOR_EXECUTED_GTID_SET(%s, %s)", (str(gtids), float(timeout)))
    return result == 0


# --- privileges -----------------------------------------------------------------------------------

REPLICATION_PRIVILEGES = ("REPLICATION SLAVE", "REPLICATION CLIENT")

# MariaDB 10.5+ shows some privileges under new names.
_SYNONYMS = {
    "REPLICATION REPLICA": "REPLICATION SLAVE",
    "BINLOG MONITOR": "REPLICATION CLIENT",
}
_GLOBAL_GRANT = re.compile(r"^GRANT\s+(?P<privs>.+?)\s+ON\s+\*\.\*\s+TO\s", re.IGNORECASE | re.DOTALL)


def global_privileges(grants: Iterable[str]) -> set[str]:
    """Global privileges (ON *.*) named in SHOW GRANTS lines, upper-case, synonyms resolved;
    'ALL PRIVILEGES' stays as such."""
    found: set[str] = set()
    for line in grants:
        match = _GLOBAL_GRANT.match(line.strip())
        if not match:
            continue
        for priv in match["privs"].split(","):
            name = " ".join(priv.split()).upper()
            found.add(_SYNONYMS.get(name, name))
    return found


def missing_privileges(grants: Iterable[str], required: Sequence[str] = REPLICATION_PRIVILEGES) -> tuple[str, ...]:
    """The `required` global privileges the SHOW GRANTS lines do not give, in `required`'s order."""
    have = global_privileges(grants)
    if "ALL PRIVILEGES" in have or "ALL" in have:
        return ()
    return tuple(p for p in required if _SYNONYMS.get(p.upper(), p.upper()) not in have)


def show_grants(conn) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("SHOW GRANTS")
        return [str(row[0]) for row in cur.fetchall()]


def check_grants(conn, required: Sequence[str] = REPLICATION_PRIVILEGES) -> tuple[str, ...]:
    """Which of `required` the connected user lacks (empty: all present)."""
    return missing_privileges(show_grants(conn), required)


# --- read-only fencing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadOnlyState:
    read_only: bool
    super_read_only: bool | None  # None: the server has no such setting (MariaDB)

    @property
    def fenced(self) -> bool:
        """No application write can land: on MySQL even accounts with SUPER are held off."""
        return self.read_only and self.super_read_only is not False


def read_only_state(conn, dialect: Dialect) -> ReadOnlyState:
    if dialect.is_mariadb:
        return ReadOnlyState(bool(_int(scalar(conn, "SELECT @@GLOBAL.read_only"))), None)
    with conn.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.read_only, @@GLOBAL.super_read_only")
        ro, sro = cur.fetchone()
    return ReadOnlyState(bool(_int(ro)), bool(_int(sro)))


def set_read_only(conn, dialect: Dialect, on: bool) -> ReadOnlyState:
    """Fence (on) or open (off) a server, then read the state back and raise if it did not stick."""
    if dialect.is_mariadb:
        statements = [f"SET GLOBAL read_only = {'ON' if on else 'OFF'}"]
    elif on:
        # super_read_only=ON implies read_only=ON and also stops accounts with SUPER.
        statements = ["SET GLOBAL super_read_only = ON"]
    else:
        statements = ["SET GLOBAL super_read_only = OFF", "SET GLOBAL read_only = OFF"]
    for sql in statements:
        execute(conn, Statement(sql))
    state = read_only_state(conn, dialect)
    if state.fenced != on or (not on and state.read_only):
        raise ReplicationError(f"read-only state did not change as asked (now {state})")
    return state


def set_super_read_only(conn, dialect: Dialect, on: bool) -> None:
    """Lift or restore only super_read_only (no-op on MariaDB), leaving read_only as it is: how an
    administrator writes locally on a replica while applications stay locked out."""
    if not dialect.is_mariadb:
        execute(conn, Statement(f"SET GLOBAL super_read_only = {'ON' if on else 'OFF'}"))


@contextlib.contextmanager
def lifted_super_read_only(conn, dialect: Dialect):
    """Let this administrator session write on a replica while read_only keeps applications out."""
    set_super_read_only(conn, dialect, False)
    try:
        yield
    finally:
        set_super_read_only(conn, dialect, True)


# --- heartbeat ------------------------------------------------------------------------------------
#
# One row, rewritten every second on the primary and replicated like any order. On a replica,
# now() minus the row's time is the lag as the data sees it, which stays true when
# Seconds_Behind_Source does not (it reads 0 while the IO thread is silently stalled). The web tier's
# /healthz reads the same table: keep the schema. Both ends need synchronised clocks (NTP).

HEARTBEAT_SCHEMA = "drctl"
# Each server's own state (a replica's bootstrap outcome, which its region's /healthz reads): written
# outside the binary log, so never replicated, and never copied to another server.
LOCAL_SCHEMA = "drctl_local"
HEARTBEAT_TABLE = "drctl.drctl_heartbeat"
HEARTBEAT_EVENT = "drctl.drctl_heartbeat_writer"

HEARTBEAT_DDL = (
    "CREATE DATABASE IF NOT EXISTS drctl",
    "CREATE TABLE IF NOT EXISTS drctl.drctl_heartbeat "
    "(id TINYINT NOT NULL PRIMARY KEY, ts TIMESTAMP(6) NOT NULL) ENGINE=InnoDB",
)
HEARTBEAT_WRITE = "INSERT INTO drctl.drctl_heartbeat (id, ts) VALUES (1, NOW(6)) ON DUPLICATE KEY UPDATE ts = NOW(6)"
# UNIX_TIMESTAMP of a TIMESTAMP column reads its UTC value directly: no time-zone or DST ambiguity.
HEARTBEAT_LAG = "SELECT UNIX_TIMESTAMP(NOW(6)) - UNIX_TIMESTAMP(ts) FROM drctl.drctl_heartbeat WHERE id = 1"
HEARTBEAT_EVENT_DDL = (
    f"CREATE EVENT IF NOT EXISTS {HEARTBEAT_EVENT} ON SCHEDULE EVERY 1 SECOND "
    f"ON COMPLETION PRESERVE ENABLE DO {HEARTBEAT_WRITE}"
)


def enabled_events(conn) -> list[tuple[str, str]]:
    """(schema, name) of every event that would run on this server."""
    with conn.cursor() as cur:
        cur.execute("SELECT EVENT_SCHEMA, EVENT_NAME FROM information_schema.EVENTS WHERE STATUS = 'ENABLED' "
                    "ORDER BY EVENT_SCHEMA, EVENT_NAME")
        return [(str(a), str(b)) for a, b in cur.fetchall()]


def disable_event_on_replica_sql(dialect: Dialect, schema: str, name: str) -> str:
    """The state replication itself gives events that arrive from a source: present, not running.
    (A dump creates them enabled; on a replica they would write transactions of its own.)"""
    keyword = "SLAVE" if dialect.is_mariadb else "REPLICA"
    return f"ALTER EVENT {quote_name(schema)}.{quote_name(name)} DISABLE ON {keyword}"


def disable_events_on_replica(conn, dialect: Dialect) -> None:
    """Every enabled event of this server disabled as on a replica, outside the binary log: after a
    copy of a source's data, whose dump creates the source's events enabled."""
    with without_binlog(conn):
        for schema, name in enabled_events(conn):
            execute(conn, Statement(disable_event_on_replica_sql(dialect, schema, name)))


def set_event_scheduler(conn, on: bool) -> None:
    execute(conn, Statement(f"SET GLOBAL event_scheduler = {'ON' if on else 'OFF'}"))


def create_heartbeat_table(conn) -> None:
    """The heartbeat schema and table, empty (idempotent)."""
    for sql in HEARTBEAT_DDL:
        execute(conn, Statement(sql))


def install_heartbeat(conn, with_event: bool) -> None:
    """Create the heartbeat table (idempotent) and, with `with_event`, the event that writes it every
    second (the server's event_scheduler must be ON). Run on the primary only: replicas get both
    through replication, the event arriving disabled there, as a replica's events are."""
    create_heartbeat_table(conn)
    write_heartbeat(conn)
    if with_event:
        execute(conn, Statement(HEARTBEAT_EVENT_DDL))


def write_heartbeat(conn) -> None:
    execute(conn, Statement(HEARTBEAT_WRITE))


def heartbeat_lag(conn) -> float | None:
    """Seconds since the primary last wrote the heartbeat, as this server has it; None when it has
    no heartbeat row yet."""
    try:
        value = scalar(conn, HEARTBEAT_LAG)
    except Exception as err:  # a missing table means "no heartbeat yet"
        if _errno(err) in (1146, 1049):  # no such table / database
            return None
        raise
    return None if value is None else float(value)


def heartbeat_writer_state(conn) -> str | None:
    """The heartbeat event's status on this server: 'ENABLED' (it writes here: a primary),
    'SLAVESIDE_DISABLED' / 'DISABLED' (it does not), or None when the server has no such event."""
    schema, name = HEARTBEAT_EVENT.split(".")
    with conn.cursor() as cur:
        cur.execute("SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s AND EVENT_NAME = %s",
                    (schema, name))
        row = cur.fetchone()
    return None if row is None else str(row[0])


def stop_heartbeat_writer(conn, dialect: Dialect) -> bool:
    """Stop this server writing the heartbeat, outside the binary log (no GTID of its own: a fenced or
    rejoining server must not grow transactions its new source lacks). Run before read_only goes on:
    MySQL's super_read_only refuses the ALTER. True when an enabled writer was stopped."""
    if heartbeat_writer_state(conn) != "ENABLED":
        return False
    schema, name = HEARTBEAT_EVENT.split(".")
    with without_binlog(conn):
        execute(conn, Statement(disable_event_on_replica_sql(dialect, schema, name)))
    return True


def start_heartbeat_writer(conn, dialect: Dialect) -> None:
    """On a (new) primary: the heartbeat table, its event enabled, and the event scheduler on."""
    install_heartbeat(conn, with_event=True)
    execute(conn, Statement(f"ALTER EVENT {HEARTBEAT_EVENT} ENABLE"))
    set_event_scheduler(conn, True)


def stop_io_thread_sql(dialect: Dialect) -> str:
    return "STOP SLAVE IO_THREAD" if dialect.is_mariadb else "STOP REPLICA IO_THREAD"


def stop_io_thread(conn, dialect: Dialect) -> None:
    """Stop receiving from the source and keep applying what arrived (the relay log)."""
    execute(conn, Statement(stop_io_thread_sql(dialect)))


def promote_sql(dialect: Dialect, was_replica: bool) -> tuple[str, ...]:
    """What turns a caught-up replica into a primary, before read_only goes off."""
    if not was_replica:
        return ()
    return (stop_replica_sql(dialect), reset_replica_sql(dialect))


def promote_to_primary(conn, dialect: Dialect, heartbeat_event: bool) -> ReadOnlyState:
    """Make this server the primary: forget its source (STOP + RESET ... ALL), open it for writes
    (verified), and with `heartbeat_event` start writing the heartbeat here. Idempotent. The caller
    has made sure it applied every transaction it is meant to have."""
    for sql in promote_sql(dialect, replica_status(conn, dialect) is not None):
        execute(conn, Statement(sql))
    state = set_read_only(conn, dialect, False)
    if heartbeat_event:
        start_heartbeat_writer(conn, dialect)
    return state


def rejoin_sql(dialect: Dialect) -> tuple[str, ...]:
    """Before pointing a server that may have been a primary at a new source: MariaDB starts a
    replica from gtid_slave_pos, which does not include what the server wrote itself; take its
    current position (its own binlog included). MySQL's auto-position uses gtid_executed already."""
    if dialect.is_mariadb:
        return ("SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_current_pos",)
    return ()


def repoint(conn, dialect: Dialect, source: Source, timeout: float = 60) -> ReplicaStatus:
    """Make this server a replica of `source` (GTID auto-position, verified TLS) and wait until both
    threads run. Works for a replica of another source and for a former primary. The caller has
    made sure its relay log was applied: changing the source discards it."""
    if replica_status(conn, dialect) is not None:
        stop_replica(conn, dialect)
    for sql in rejoin_sql(dialect):
        execute(conn, Statement(sql))
    change_source(conn, dialect, source)
    start_replica(conn, dialect)
    return wait_until_replicating(conn, dialect, timeout=timeout)


def rewind_gtid_history_sql(dialect: Dialect, history: gtid.Gtids | gtid.MariaDBGtidState) -> list[Statement]:
    """Statements that replace a server's GTID history with `history` (what it should have had),
    deleting its binary logs. For dropping errant transactions that changed nothing worth keeping
    (heartbeats): the data stays, the server forgets it ever wrote them."""
    statements = [Statement(sql) for sql in reset_gtids_sql(dialect)]
    if dialect.is_mariadb:
        if not isinstance(history, gtid.MariaDBGtidState):
            raise TypeError("MariaDB needs the binlog state to rewind to")
        statements += [Statement("SET GLOBAL gtid_binlog_state = %s", (str(history),)),
                       Statement("SET GLOBAL gtid_slave_pos = %s", (str(history.position()),))]
    else:
        statements.append(Statement("SET GLOBAL gtid_purged = %s", (str(history),)))
    return statements


def rewind_gtid_history(conn, dialect: Dialect, history: gtid.Gtids | gtid.MariaDBGtidState) -> None:
    if replica_status(conn, dialect) is not None:
        stop_replica(conn, dialect)
    for statement in rewind_gtid_history_sql(dialect, history):
        execute(conn, statement)


@contextlib.contextmanager
def without_binlog(conn):
    """This session's statements stay out of the binary log (and so never become GTIDs)."""
    execute(conn, Statement("SET SESSION sql_log_bin = 0"))
    try:
        yield
    finally:
        execute(conn, Statement("SET SESSION sql_log_bin = 1"))


# --- binary log events ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BinlogEvent:
    file: str
    pos: int
    end_pos: int
    type: str
    server_id: int
    info: str


_MARIADB_GTID_EVENT = re.compile(r"^(?:BEGIN\s+)?GTID\s+(\d+)-(\d+)-(\d+)")
_MYSQL_GTID_EVENT = re.compile(r"GTID_NEXT\s*=\s*'([^']+)'", re.IGNORECASE)


def gtid_of_event(dialect: Dialect, event: BinlogEvent) -> str | None:
    """The GTID a transaction-starting event announces ('0-1-101' or 'uuid:101'), else None."""
    if event.type != "Gtid":
        return None
    if dialect.is_mariadb:
        match = _MARIADB_GTID_EVENT.match(event.info.strip())
        return "-".join(match.groups()) if match else None
    match = _MYSQL_GTID_EVENT.search(event.info)
    return match[1] if match else None


def binlog_files(conn) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("SHOW BINARY LOGS")
        return [str(row[0]) for row in cur.fetchall()]


def binlog_events(conn, file: str, limit: int | None = None) -> list[BinlogEvent]:
    """SHOW BINLOG EVENTS of one file: over SQL, so no access to the server's files is needed."""
    sql = "SHOW BINLOG EVENTS IN %s" + (f" LIMIT {int(limit)}" if limit else "")
    with conn.cursor() as cur:
        cur.execute(sql, (file,))
        rows = cur.fetchall()
    return [BinlogEvent(str(r[0]), int(r[1]), int(r[4]), str(r[2]), int(r[3]), str(r[5] or "")) for r in rows]


# --- helpers --------------------------------------------------------------------------------------


def _dict_rows(conn, sql: str) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bytes):
        value = value.decode()
    return int(value)


def _gtid_text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode()
    return str(value or "").replace("\n", "")


def _decimal(value: float) -> str:
    return f"{float(value):.3f}".rstrip("0").rstrip(".")


def _check_port(port: int) -> None:
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"not a TCP port: {port}")


def _errno(err: Exception) -> int | None:
    args = getattr(err, "args", ())
    return args[0] if args and isinstance(args[0], int) else None
