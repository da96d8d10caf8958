"""First-boot setup of the MySQL Linodes: `python3 -m drctl.mysql.bootstrap CONFIG.json`.

Cloud-init ships this file, with the drctl/mysql modules it imports (replication, seeding and theirs:
nothing outside drctl/mysql), to every database Linode and runs it once MySQL is up
(components/templates/db-setup.sh). Config comes from a JSON file that cloud-init wrote
(mode 0600, it holds passwords). Two roles:

- primary (self-managed mode only): create the shop's schema, the application, replication and admin
  accounts and the heartbeat table and event. The admin account is created last: a replica waits
  until it can log in with it, so by then everything else exists.
- replica: create this server's own accounts first, so the region's web nodes can read the outcome
  whatever it is. Then check, then act: wait for the source; refuse (exit 3) if the replication
  account lacks a privilege, naming it, or if the server ids collide; seed with a consistent dump
  (`seeding`); point the server at the source with GTID auto-positioning over verified TLS; start;
  check both threads run.

Every outcome is written to the status file (`/var/lib/drctl/replica-status.json` on replicas) and,
on replicas, to the local table `drctl_local.replica_state`, which the region's /healthz reads, with
every password of the config blanked out of the problem text. Local writes on a replica are kept out
of its binary log (`sql_log_bin=0`) so they never become errant transactions that would block a
later failback.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drctl.mysql import replication as r
from drctl.mysql import seeding

EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 3

LOCAL_STATE_DDL = (
    "CREATE DATABASE IF NOT EXISTS drctl_local",
    "CREATE TABLE IF NOT EXISTS drctl_local.replica_state (id TINYINT NOT NULL PRIMARY KEY, "
    "state VARCHAR(32) NOT NULL, problem TEXT NOT NULL, updated_at TIMESTAMP(6) NOT NULL) ENGINE=InnoDB",
)


@dataclass(frozen=True)
class Account:
    name: str
    password: str
    host: str = "%"

    def __repr__(self) -> str:
        return f"Account({self.name!r}@{self.host!r})"


@dataclass(frozen=True)
class SourceConfig:
    """The primary a replica follows. `admin` seeds (dump) and creates the heartbeat table there;
    `replication` is the account the replica's IO thread logs in with."""

    host: str
    port: int
    ca_file: str
    admin: Account
    replication: Account
    required_privileges: tuple[str, ...] = ("REPLICATION SLAVE",)


@dataclass(frozen=True)
class BootstrapConfig:
    role: str  # "primary" | "replica"
    region: str
    server_id: int
    status_file: str
    socket: str
    admin: Account  # this server's own administrator (drctl connects with it)
    app: Account  # what the web nodes connect with
    app_database: str = "woocommerce"
    local_user: str = "root"
    local_password: str = ""  # empty: the local account authenticates by socket peer
    source: SourceConfig | None = None  # replica only
    replication: Account | None = None  # primary only: the account replicas log in with
    heartbeat_event: bool = False  # primary only: write the heartbeat with the event scheduler
    wait_for_source_seconds: float = 1800
    replication_timeout_seconds: float = 120

    def redact(self, text: str) -> str:
        """`text` with every password of this config blanked: what reaches status files, logs and
        (through drctl_local.replica_state) the region's /healthz."""
        accounts = [self.admin, self.app, self.replication]
        if self.source is not None:
            accounts += [self.source.admin, self.source.replication]
        passwords = {a.password for a in accounts if a is not None} | {self.local_password}
        for password in sorted(filter(None, passwords), key=len, reverse=True):
            text = text.replace(password, "********")
        return text

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BootstrapConfig:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls.from_dict(doc)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> BootstrapConfig:
        def account(d: dict[str, Any] | None) -> Account | None:
            return None if d is None else Account(d["name"], d["password"], d.get("host", "%"))

        src = doc.get("source")
        source = None
        if src is not None:
            source = SourceConfig(
                host=src["host"], port=int(src["port"]), ca_file=src["caFile"],
                admin=account(src["admin"]), replication=account(src["replication"]),
                required_privileges=tuple(src.get("requiredPrivileges", ("REPLICATION SLAVE",))),
            )
        return cls(
            role=doc["role"], region=doc["region"], server_id=int(doc["serverId"]),
            status_file=doc["statusFile"], socket=doc["socket"],
            admin=account(doc["admin"]), app=account(doc["app"]),
            app_database=doc.get("appDatabase", "woocommerce"),
            local_user=doc.get("localUser", "root"), local_password=doc.get("localPassword", ""),
            source=source, replication=account(doc.get("replication")),
            heartbeat_event=bool(doc.get("heartbeatEvent", False)),
            wait_for_source_seconds=float(doc.get("waitForSourceSeconds", 1800)),
            replication_timeout_seconds=float(doc.get("replicationTimeoutSeconds", 120)),
        )


class Refused(Exception):
    """A check failed: nothing was changed, and the message says what an operator must do."""

    def __init__(self, message: str, missing_privileges: Sequence[str] = ()):
        super().__init__(message)
        self.missing_privileges = tuple(missing_privileges)


Log = Callable[[str], None]


def _print(message: str) -> None:
    print(f"woocommerce-dr bootstrap: {message}", flush=True)


# --- entry point ----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1:
        print("usage: python3 -m drctl.mysql.bootstrap CONFIG.json", file=sys.stderr)
        return 2
    config = BootstrapConfig.load(argv[0])
    return run(config)


def run(config: BootstrapConfig, log: Log = _print) -> int:
    if config.role == "primary":
        return bootstrap_primary(config, log)
    if config.role == "replica":
        return bootstrap_replica(config, log)
    log(f"unknown role {config.role!r} (allowed: primary, replica)")
    return 2


# --- primary --------------------------------------------------------------------------------------


def bootstrap_primary(config: BootstrapConfig, log: Log = _print) -> int:
    if config.replication is None:
        raise ValueError("a primary's config needs 'replication' (the account replicas log in with)")
    conn = _local(config)
    dialect = r.detect_dialect(conn)
    # `wp core install` on the primary region's first web node needs the schema to exist.
    r.execute(conn, r.Statement(
        f"CREATE DATABASE IF NOT EXISTS {r.quote_name(config.app_database)} CHARACTER SET utf8mb4"))
    ensure_app_account(conn, config)
    ensure_account(conn, config.replication, privileges="REPLICATION SLAVE ON *.*")
    r.install_heartbeat(conn, with_event=config.heartbeat_event)
    # Last, because replicas take a working admin login as "the primary is ready".
    ensure_account(conn, config.admin, privileges="ALL PRIVILEGES ON *.*", grant_option=True)
    state = r.read_only_state(conn, dialect)
    write_status(config.status_file, {
        "state": "primary-ready", "role": "primary", "region": config.region, "serverId": config.server_id,
        "readOnly": state.read_only, "heartbeat": "event" if config.heartbeat_event else "external writer",
    })
    log(f"primary ready ({r.server_version(conn).text}, server id {config.server_id})")
    return EXIT_OK


def ensure_app_account(conn, config: BootstrapConfig) -> None:
    """The web nodes' account, as `app_account_statements` says, with this server's privilege to
    read replication status."""
    monitor = r.replica_monitor_privilege(r.detect_dialect(conn))
    for statement in app_account_statements(config.app, config.app_database, monitor):
        r.execute(conn, statement)


def app_account_statements(app: Account, database: str, monitor_privilege: str | None) -> list[r.Statement]:
    """The web nodes' account: everything on the shop's schema (`wp core install` creates its
    tables), and reading what /healthz reports: the heartbeat, this server's replica state and (with
    `monitor_privilege`) its live replication status. Nothing else: no other schema, no mysql.*, no
    accounts, no replication changes. The same on every server, so a server that changes role
    later (failback) answers /healthz fully."""
    statements = account_statements(app, f"ALL PRIVILEGES ON {r.quote_name(database)}.*")
    for schema in (r.HEARTBEAT_SCHEMA, r.LOCAL_SCHEMA):
        statements.append(r.Statement(f"GRANT SELECT ON {r.quote_name(schema)}.* TO %s@%s", (app.name, app.host)))
    if monitor_privilege:
        statements.append(r.Statement(f"GRANT {monitor_privilege} ON *.* TO %s@%s", (app.name, app.host)))
    return statements


def managed_primary_setup_sql(app: Account, database: str, heartbeat: Account) -> str:
    """What a managed primary's admin account runs once (components/heartbeat.py, on one web node):
    the shop's schema, the shop's own account, the heartbeat table and the heartbeat writer's own
    account (that one row's table, nothing else). A managed database is never a replica, so its
    shop account needs no replication-status privilege (and the admin may not be allowed to grant
    one). Holds both accounts' passwords: keep the script root's alone."""
    statements = [
        r.Statement(f"CREATE DATABASE IF NOT EXISTS {r.quote_name(database)} CHARACTER SET utf8mb4"),
        *app_account_statements(app, database, monitor_privilege=None),
        *(r.Statement(sql) for sql in r.HEARTBEAT_DDL),
        # After the table: MySQL refuses a table-level grant on a table that does not exist.
        *account_statements(heartbeat, f"SELECT, INSERT, UPDATE ON {r.quote_name(r.HEARTBEAT_SCHEMA)}.`drctl_heartbeat`"),
    ]
    return r.script(statements)


def ensure_account(conn, account: Account, privileges: str, grant_option: bool = False) -> None:
    """Create or converge one account: TLS required, password as configured, exactly `privileges`
    added. Idempotent, so a re-run after a failure is safe."""
    for statement in account_statements(account, privileges, grant_option):
        r.execute(conn, statement)


def account_statements(account: Account, privileges: str, grant_option: bool = False) -> list[r.Statement]:
    ident = "%s@%s"
    params = (account.name, account.host)
    suffix = " WITH GRANT OPTION" if grant_option else ""
    return [
        r.Statement(f"CREATE USER IF NOT EXISTS {ident} IDENTIFIED BY %s REQUIRE SSL",
                    (*params, account.password), frozenset({2})),
        r.Statement(f"ALTER USER {ident} IDENTIFIED BY %s REQUIRE SSL", (*params, account.password), frozenset({2})),
        r.Statement(f"GRANT {privileges} TO {ident}{suffix}", params),
    ]


# --- replica --------------------------------------------------------------------------------------


def bootstrap_replica(config: BootstrapConfig, log: Log = _print) -> int:
    source = config.source
    if source is None:
        raise ValueError("a replica's config needs 'source'")
    reporter = _Reporter(config, log)
    local = _local(config)
    dialect = r.detect_dialect(local)
    # First, so the web nodes can log in and read whatever this run reports, a refusal included.
    ensure_local_accounts(config, local, dialect)
    reporter.attach(local, dialect)

    current = r.replica_status(local, dialect)
    if current is not None and current.replicating and current.source_host == source.host:
        reporter.report("replicating", "", status=current)
        log("already replicating; nothing to do")
        return EXIT_OK

    try:
        reporter.report("waiting-for-source", f"waiting for {source.host}:{source.port}")
        admin = wait_for_source(source, config.wait_for_source_seconds, log)
        source_dialect = check_source(config, admin, dialect)
        seed(config, local, dialect, admin, source_dialect, log, reporter)
        r.change_source(local, dialect, r.Source(
            host=source.host, port=source.port, user=source.replication.name,
            password=source.replication.password, ssl_ca=source.ca_file,
        ))
        r.start_replica(local, dialect)
        status = r.wait_until_replicating(local, dialect, timeout=config.replication_timeout_seconds)
    except Refused as refusal:
        problem = reporter.report("refused", str(refusal), missing_privileges=refusal.missing_privileges)
        log(f"refused: {problem}")
        return EXIT_REFUSED
    except (r.ReplicationError, seeding.SeedError, TimeoutError) as err:
        problem = reporter.report("failed", str(err))
        log(f"failed: {problem}")
        return EXIT_FAILED
    reporter.report("replicating", "", status=status)
    log(f"replicating from {source.host}:{source.port}")
    return EXIT_OK


def wait_for_source(source: SourceConfig, timeout: float, log: Log):
    """An admin connection to the source, retrying until `timeout`: the primary may still be
    installing. Raises TimeoutError naming the last error (never the password)."""
    poll = min(5.0, max(0.2, timeout / 10))
    deadline = time.monotonic() + timeout
    while True:
        try:
            return r.connect(source.host, source.port, source.admin.name, source.admin.password,
                             ssl_ca=source.ca_file)
        except Exception as err:  # every failure here means "not ready yet"
            last = str(err).replace(source.admin.password, "********") if source.admin.password else str(err)
            if time.monotonic() >= deadline:
                raise TimeoutError(f"source {source.host}:{source.port} not reachable as "
                                   f"{source.admin.name!r} after {timeout:.0f} s: {last}") from None
            log(f"source not ready yet ({last}); retrying")
            time.sleep(poll)


def check_source(config: BootstrapConfig, admin, local_dialect: r.Dialect) -> r.Dialect:
    """Every check before anything changes: dialect family, server ids, replication privileges."""
    source = config.source
    assert source is not None
    source_dialect = r.detect_dialect(admin)
    if source_dialect.is_mariadb != local_dialect.is_mariadb:
        raise Refused(f"the source runs {source_dialect.value} but this replica runs {local_dialect.value}")
    if not source_dialect.is_mariadb:
        gtid_mode = str(r.scalar(admin, "SELECT @@GLOBAL.gtid_mode"))
        if gtid_mode != "ON":
            raise Refused(f"the source runs with gtid_mode={gtid_mode}: auto-positioned replication needs ON")
    source_id = r.server_id(admin)
    if source_id == config.server_id:
        raise Refused(f"the source's server_id is {source_id}, the same as this replica's: events would be "
                      "skipped as this server's own; give the replica another server id")
    if source.replication.name == source.admin.name:
        grants_conn = admin
    else:
        try:
            grants_conn = r.connect(source.host, source.port, source.replication.name,
                                    source.replication.password, ssl_ca=source.ca_file)
        except Exception as err:
            raise Refused(f"cannot log in to the source as {source.replication.name!r}: {err}") from None
    missing = r.check_grants(grants_conn, source.required_privileges)
    if missing:
        raise Refused(
            f"the source account {source.replication.name!r} lacks {', '.join(missing)}: replication cannot "
            f"be set up. Grant it (GRANT {', '.join(source.required_privileges)} ON *.* TO ...) or use "
            "woocommerce-dr:database.mode self-managed",
            missing,
        )
    return source_dialect


def seed(config: BootstrapConfig, local, dialect: r.Dialect, admin, source_dialect: r.Dialect, log: Log,
         reporter: _Reporter) -> None:
    """Copy the source's data and its GTID history to this (fresh) replica in one consistent snapshot."""
    source = config.source
    assert source is not None
    databases = seeding.prepare_source(admin)
    reporter.report("seeding", f"copying {', '.join(databases)} from {source.host}:{source.port}")
    log(f"seeding {', '.join(databases)}")
    dump = seeding.dump_command(dialect, source.host, source.port, source.admin.name, source.ca_file, databases)
    load = seeding.load_command(dialect, config.socket, config.local_user)
    seeding.seed(local, dialect, dump, load, source.admin.password)


def ensure_local_accounts(config: BootstrapConfig, local, dialect: r.Dialect) -> None:
    """This replica's own admin and application accounts. Accounts are not in the dump (it copies
    application schemas only), and they must not enter the binary log (sql_log_bin=0): a replica's
    own transaction would be errant and block a later failback."""
    with r.lifted_super_read_only(local, dialect), r.without_binlog(local):
        ensure_app_account(local, config)
        ensure_account(local, config.admin, privileges="ALL PRIVILEGES ON *.*", grant_option=True)


# --- reporting ------------------------------------------------------------------------------------


class _Reporter:
    """Writes each state to the status file and, once the local server is reachable, to
    drctl_local.replica_state for /healthz."""

    def __init__(self, config: BootstrapConfig, log: Log):
        self.config, self.log = config, log
        self.conn = None
        self.dialect: r.Dialect | None = None

    def attach(self, conn, dialect: r.Dialect) -> None:
        self.conn, self.dialect = conn, dialect

    def report(self, state: str, problem: str, status: r.ReplicaStatus | None = None,
               missing_privileges: Sequence[str] = ()) -> str:
        """Record `state`; returns the problem text as recorded (passwords blanked)."""
        problem = self.config.redact(problem)
        source = self.config.source
        doc: dict[str, Any] = {
            "state": state, "role": "replica", "region": self.config.region, "serverId": self.config.server_id,
            "problem": problem, "missingPrivileges": list(missing_privileges),
            "source": {"host": source.host, "port": source.port} if source else None,
        }
        if status is not None:
            doc["replication"] = status.as_dict()
        write_status(self.config.status_file, doc)
        if self.conn is not None and self.dialect is not None:
            try:
                self._write_table(state, problem)
            except Exception as err:  # the file already says it; never hide the real state
                self.log(f"could not record the state in drctl_local.replica_state: {self.config.redact(str(err))}")
        return problem

    def _write_table(self, state: str, problem: str) -> None:
        with r.lifted_super_read_only(self.conn, self.dialect), r.without_binlog(self.conn):
            for sql in LOCAL_STATE_DDL:
                r.execute(self.conn, r.Statement(sql))
            r.execute(self.conn, r.Statement(
                "REPLACE INTO drctl_local.replica_state (id, state, problem, updated_at) VALUES (1, %s, %s, NOW(6))",
                (state, problem),
            ))


def write_status(path: str, doc: dict[str, Any]) -> None:
    """Atomically replace the status file (no secrets in it: world-readable)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    doc = {**doc, "checkedAt": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.chmod(0o644)
    tmp.replace(target)


# --- helpers --------------------------------------------------------------------------------------


def _local(config: BootstrapConfig):
    return r.connect(user=config.local_user, password=config.local_password, unix_socket=config.socket)


if __name__ == "__main__":
    sys.exit(main())
