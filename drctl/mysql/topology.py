"""The database servers of a stack and the roles they really have now.

The stack outputs say what was deployed (a primary in the first region, a replica in every other);
after a promotion the live roles differ, so every runbook command asks the servers themselves:
a writable server that replicates from nobody is a primary, one with a source is a replica, a
read-only server without a source is fenced (a demoted or isolated old primary).

Credentials come from the stack outputs and stay in `DbServer` (never printed: its repr hides them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from drctl.mysql import gtid
from drctl.mysql import replication as r
from drctl.stack.outputs import OutputsError, StackOutputs

CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 30.0


class DatabaseUnreachable(Exception):
    """drctl could not log in to a database server; the message names it and says why."""


@dataclass(frozen=True)
class DbServer:
    """One database server as drctl reaches it and as its peers replicate from it."""

    region: str
    deployed_role: str  # "primary" | "replica": as deployed, not necessarily now
    host: str  # what drctl connects to: the address in the outputs, so a DNS problem cannot misdirect drctl
    port: int
    tls_name: str | None  # the name its certificate carries, when `host` is an address it does not carry
    peer_host: str  # what its peers put in CHANGE REPLICATION SOURCE: its name, which the stack publishes in DNS
    user: str
    password: str | None = field(repr=False)
    ca_pem: str | None = field(repr=False)  # verifies it from drctl
    peer_ca_path: str = ""  # where its peers keep that CA (SOURCE_SSL_CA is a path on the replica)
    managed: bool = False  # a Linode Managed Database: no event of ours, no CHANGE REPLICATION SOURCE
    server_id: int | None = None
    instance_id: int | None = None
    firewall_id: int | None = None
    managed_database_id: int | None = None

    @property
    def label(self) -> str:
        return f"{self.region} ({self.host}:{self.port})"

    @property
    def writes_heartbeat_event(self) -> bool:
        """Whether, as primary, it writes the heartbeat with its own event (a managed database is
        written by a web node's timer instead)."""
        return not self.managed

    def as_source(self, connect_retry: int = 10, heartbeat_period: float = 2.0) -> r.Source:
        """How its peers replicate from it: its administrator account (the one account every server
        has; see the report in the README), verified TLS, GTID auto-positioning."""
        if not self.password:
            raise OutputsError(f"the stack outputs hold no admin password for the database in {self.region}")
        return r.Source(self.peer_host, self.port, self.user, self.password, self.peer_ca_path,
                        connect_retry=connect_retry, heartbeat_period=heartbeat_period)


def servers_from_outputs(outputs: StackOutputs) -> dict[str, DbServer]:
    """Region -> its database server, in the stack's region order (primary region first)."""
    db = outputs.database
    p = db.primary
    found = {
        p.region: DbServer(
            region=p.region, deployed_role="primary", host=p.address or p.host, port=p.port,
            tls_name=p.host if p.address and p.address != p.host else None, peer_host=p.host,
            user=p.admin_user, password=p.admin_password.get_secret_value(),
            ca_pem=p.ca_cert.get_secret_value(), peer_ca_path=p.ca_path,
            managed=db.mode == "managed", instance_id=p.instance_id, firewall_id=p.firewall_id,
            managed_database_id=p.managed_database_id,
        )
    }
    server_ca = db.server_ca_cert.get_secret_value() if db.server_ca_cert else None
    if server_ca is None and db.mode == "self-managed":
        server_ca = p.ca_cert.get_secret_value()  # one CA signs every server of a self-managed stack
    password = db.replica_admin_password.get_secret_value() if db.replica_admin_password else None
    for rep in db.replicas:
        found[rep.region] = DbServer(
            region=rep.region, deployed_role="replica", host=rep.public_ip, port=rep.port,
            tls_name=rep.host if rep.host and rep.host != rep.public_ip else None, peer_host=rep.host or rep.public_ip,
            user=db.replica_admin_user or "drctl", password=password, ca_pem=server_ca,
            peer_ca_path=db.server_ca_path, server_id=rep.server_id, instance_id=rep.instance_id,
            firewall_id=rep.firewall_id,
        )
    order = [reg.region for reg in outputs.regions]
    return dict(sorted(found.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))


def connect(server: DbServer, timeout: float = CONNECT_TIMEOUT_SECONDS, read_timeout: float | None = READ_TIMEOUT_SECONDS):
    """An admin connection to `server` over verified TLS, or DatabaseUnreachable saying why."""
    if not server.password:
        raise DatabaseUnreachable(f"database in {server.label}: the stack outputs hold no admin password for it")
    if not server.ca_pem:
        raise DatabaseUnreachable(f"database in {server.label}: the stack outputs hold no CA certificate for it")
    try:
        return r.connect(server.host, server.port, server.user, server.password, ssl_ca_pem=server.ca_pem,
                         tls_name=server.tls_name, connect_timeout=timeout, read_timeout=read_timeout)
    except Exception as err:
        raise DatabaseUnreachable(f"database in {server.label}: {_reason(err, server.password)}") from None


@contextlib.contextmanager
def session(server: DbServer, timeout: float = CONNECT_TIMEOUT_SECONDS) -> Iterator[Any]:
    conn = connect(server, timeout)
    try:
        yield conn
    finally:
        with contextlib.suppress(Exception):
            conn.close()


def _reason(err: Exception, password: str | None) -> str:
    args = getattr(err, "args", ())
    if len(args) >= 2 and isinstance(args[0], int):
        text = f"MySQL error {args[0]}: {args[1]}"
    else:
        text = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    return text.replace(password, "********") if password else text


# --- what each server is now ----------------------------------------------------------------------


@dataclass(frozen=True)
class ServerState:
    """One server as it answered (or did not)."""

    server: DbServer
    error: str | None = None
    version: str | None = None
    dialect: r.Dialect | None = None
    server_id: int | None = None
    read_only: r.ReadOnlyState | None = None
    replica: r.ReplicaStatus | None = None
    executed: str = ""
    binlog_state: str = ""  # MariaDB only
    heartbeat_lag: float | None = None
    heartbeat_writer: str | None = None

    @property
    def region(self) -> str:
        return self.server.region

    @property
    def reachable(self) -> bool:
        return self.error is None

    @property
    def role(self) -> str:
        """primary | replica | fenced | unreachable."""
        if not self.reachable:
            return "unreachable"
        if self.replica is not None:
            return "replica"
        return "fenced" if self.read_only and self.read_only.read_only else "primary"

    def gtids(self) -> gtid.Gtids:
        assert self.dialect is not None
        return gtid.parse_gtids(self.dialect, self.executed)


def probe(server: DbServer, timeout: float = CONNECT_TIMEOUT_SECONDS) -> ServerState:
    """Everything the runbook reads from one server, in one connection. Never raises for an
    unreachable or misbehaving server: the state says what went wrong."""
    try:
        with session(server, timeout) as conn:
            return read_state(server, conn)
    except DatabaseUnreachable as err:
        return ServerState(server, error=str(err))
    except Exception as err:  # a server that answers but errors mid-way: report it, do not crash
        return ServerState(server, error=f"database in {server.label}: {_reason(err, server.password)}")


def read_state(server: DbServer, conn) -> ServerState:
    version = r.server_version(conn)
    dialect = version.dialect
    return ServerState(
        server=server,
        version=version.text,
        dialect=dialect,
        server_id=r.server_id(conn),
        read_only=r.read_only_state(conn, dialect),
        replica=r.replica_status(conn, dialect),
        executed=str(r.executed_gtids(conn, dialect)),
        binlog_state=str(r.binlog_state(conn)) if dialect.is_mariadb else "",
        heartbeat_lag=r.heartbeat_lag(conn),
        heartbeat_writer=r.heartbeat_writer_state(conn),
    )


def compare(source: ServerState, replica: ServerState) -> gtid.GtidComparison | None:
    """What `replica` misses of `source` and what it has that `source` lacks; None when either did
    not answer or they speak different dialects."""
    if not (source.reachable and replica.reachable) or source.dialect is not replica.dialect:
        return None
    assert source.dialect is not None
    return gtid.compare_histories(source.dialect, source.executed, replica.executed,
                               source.binlog_state, replica.binlog_state, replica.server_id)


@dataclass(frozen=True)
class Topology:
    states: dict[str, ServerState]  # region -> state, in stack order

    @property
    def primaries(self) -> list[ServerState]:
        return [s for s in self.states.values() if s.role == "primary"]

    @property
    def primary(self) -> ServerState | None:
        """The one writable server without a source; None when there is none or more than one."""
        found = self.primaries
        return found[0] if len(found) == 1 else None

    def __getitem__(self, region: str) -> ServerState:
        return self.states[region]


def discover(servers: dict[str, DbServer], timeout: float = CONNECT_TIMEOUT_SECONDS) -> Topology:
    """Every server's state. Writable servers are read again last: their GTIDs only grow, so
    reading them after the replicas keeps "the replica has something the primary lacks" true only
    when it really has (a primary read first would look behind its busy replicas)."""
    states = {region: probe(server, timeout) for region, server in servers.items()}
    for region, state in states.items():
        if state.role == "primary":
            states[region] = probe(servers[region], timeout)
    return Topology(states)
