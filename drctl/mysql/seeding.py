"""Seeding a server with a consistent copy of another's data and GTID history.

The dump client reads the source in one transaction and writes the snapshot's GTID position into the
dump; the command-line client loads it into the target outside the target's binary log (the rows are
the source's transactions, not new ones of the target). Around the load, on the target: its GTID
history emptied so it takes the copy's, the event scheduler off (the dump creates the source's events
enabled, and each run would be a transaction of the target's own), and the copied events left
disabled, as replication leaves a source's events on a replica.

Used by a replica's first boot (`bootstrap`, which ships with this module to the database Linodes)
and by `drctl failback --discard-errant` (`reseed`). Standard library and PyMySQL only.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from drctl.mysql import gtid
from drctl.mysql import replication as r

# What a copy leaves out: the server's own schemas and drctl's per-server state.
SYSTEM_SCHEMAS = frozenset({"mysql", "sys", "information_schema", "performance_schema", r.LOCAL_SCHEMA})


class SeedError(Exception):
    """The dump or the load failed; the message ends with the failing client's last output lines.
    `lost_connection`: the dump client's server closed the connection under it (a dropped link, a
    server restart), where a new copy may well succeed; anything else would fail again."""

    def __init__(self, message: str, *, lost_connection: bool = False):
        super().__init__(message)
        self.lost_connection = lost_connection


# How MariaDB's and MySQL's clients say the server closed the connection (errors 2006, 2013 and,
# over TLS, 2026 with OpenSSL 3's wording for a peer that closed without a TLS goodbye).
LOST_CONNECTION_MESSAGES = ("Server has gone away", "MySQL server has gone away", "Lost connection to",
                            "unexpected eof while reading")


def application_databases(conn) -> list[str]:
    """The databases a copy carries, sorted: every one but SYSTEM_SCHEMAS."""
    with conn.cursor() as cur:
        cur.execute("SHOW DATABASES")
        names = sorted(str(row[0]) for row in cur.fetchall())
    return [name for name in names if name not in SYSTEM_SCHEMAS]


def prepare_source(conn) -> list[str]:
    """The databases to copy from this source. The heartbeat schema is made sure of first: a dump
    carries the GTID position only with a database in it."""
    r.create_heartbeat_table(conn)
    return application_databases(conn)


def dump_command(dialect: r.Dialect, host: str, port: int, user: str, ca_file: str,
                 databases: Sequence[str]) -> list[str]:
    """The dump client's command line (without credentials, which go in a defaults file). The client
    tools come with the target's server, so `dialect` is the target's own."""
    common = [
        f"--host={host}", f"--port={port}", f"--user={user}",
        f"--ssl-ca={ca_file}", "--single-transaction", "--routines", "--triggers", "--events",
        "--hex-blob", "--default-character-set=utf8mb4",
    ]
    if dialect.is_mariadb:
        # --gtid with --master-data=1 makes the dump set gtid_slave_pos to the snapshot's position.
        return ["mariadb-dump", *common, "--ssl", "--ssl-verify-server-cert", "--gtid", "--master-data=1",
                "--databases", *databases]
    # --set-gtid-purged=ON carries the snapshot's GTID set; --no-tablespaces avoids needing PROCESS,
    # which the managed admin account may not have.
    return ["mysqldump", *common, "--ssl-mode=VERIFY_IDENTITY", "--set-gtid-purged=ON", "--no-tablespaces",
            "--databases", *databases]


def load_command(dialect: r.Dialect, socket: str, user: str) -> list[str]:
    """The command-line client loading a dump into the server on this machine, by its socket."""
    client = "mariadb" if dialect.is_mariadb else "mysql"
    # sql_log_bin=0: the loaded rows are the source's transactions, not new ones of this server.
    return [client, f"--socket={socket}", f"--user={user}", "--init-command=SET SESSION sql_log_bin = 0"]


def seed(conn, dialect: r.Dialect, dump: list[str], load: list[str], source_password: str,
         target_password: str = "", *, replace: bool = False,
         source_history: gtid.MariaDBGtidState | None = None) -> None:
    """Give the server behind `conn` (the one `load` writes to) the copy `dump` | `load` makes: its GTID
    history replaced, and with `replace` its application databases dropped first. With
    `source_history` (MariaDB: the source's binlog state, read before the dump) its binary-log state
    becomes the source's per-server history up to the copy, so errant checks against this server
    still know every server's transactions. On failure, replication stays stopped and the event
    scheduler off: the copied events must not run."""
    if r.replica_status(conn, dialect) is not None:
        r.stop_replica(conn, dialect)
    r.set_event_scheduler(conn, False)
    with r.lifted_super_read_only(conn, dialect):
        if replace:
            _drop_application_databases(conn)
        r.reset_gtids(conn, dialect)
        _pipe(dump, load, source_password, target_password)
        if source_history is not None:
            _keep_source_history(conn, dialect, source_history)
        r.disable_events_on_replica(conn, dialect)
    r.set_event_scheduler(conn, True)


def _drop_application_databases(conn) -> None:
    """Outside the binary log: the drops are no transactions of this server's to replicate."""
    with r.without_binlog(conn):
        for name in application_databases(conn):
            r.execute(conn, r.Statement(f"DROP DATABASE {r.quote_name(name)}"))


def _keep_source_history(conn, dialect: r.Dialect, source_history: gtid.MariaDBGtidState) -> None:
    """After a MariaDB copy, which set gtid_slave_pos only: the binary-log state becomes the source's
    per-server history up to the copy, so servers that later replicate from this one find their
    position in its binary log, and errant checks against it know every server's transactions."""
    # The values are read and sent back: SET GLOBAL gtid_binlog_state = @@GLOBAL.gtid_slave_pos hangs
    # MariaDB 10.11.
    copied = r.replica_position(conn)
    r.rewind_gtid_history(conn, dialect, source_history.until(copied))


def _pipe(dump: list[str], load: list[str], source_password: str, target_password: str) -> None:
    """dump | load, with passwords in private defaults files rather than on the command line."""
    with tempfile.TemporaryDirectory(prefix="drctl-seed-") as tmp:
        dump_cnf = _defaults_file(tmp, "dump.cnf", source_password)
        load_cnf = _defaults_file(tmp, "load.cnf", target_password)
        dump_argv = [dump[0], f"--defaults-extra-file={dump_cnf}", *dump[1:]]
        load_argv = [load[0], f"--defaults-extra-file={load_cnf}", *load[1:]]
        with subprocess.Popen(dump_argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as dumper:
            loader = subprocess.run(load_argv, stdin=dumper.stdout, capture_output=True, check=False)
            assert dumper.stdout is not None
            dumper.stdout.close()
            dump_err = dumper.stderr.read().decode(errors="replace") if dumper.stderr else ""
            dumper.wait()
        if dumper.returncode != 0:
            raise SeedError(f"{dump[0]} failed (exit {dumper.returncode}): {_last_lines(dump_err)}",
                            lost_connection=any(m in dump_err for m in LOST_CONNECTION_MESSAGES))
        if loader.returncode != 0:
            raise SeedError(f"{load[0]} failed (exit {loader.returncode}): "
                            f"{_last_lines(loader.stderr.decode(errors='replace'))}")


def _defaults_file(directory: str, name: str, password: str) -> str:
    path = Path(directory) / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        escaped = password.replace("\\", "\\\\").replace('"', '\\"')
        f.write(f'[client]\npassword="{escaped}"\n' if password else "[client]\n")
    return str(path)


def _last_lines(text: str, n: int = 5) -> str:
    return " | ".join(text.strip().splitlines()[-n:]) or "(no output)"
