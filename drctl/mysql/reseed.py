"""A stack's database server rebuilt from a consistent copy of another, made through this machine.

`drctl failback --discard-errant` drops what an old primary wrote that its successor never received:
the dump client here reads the current primary, the command-line client here loads the old primary,
both over verified TLS as drctl reaches the servers (at the addresses in the stack outputs). The SQL
around the copy is the one a new replica runs (`seeding`).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from drctl.mysql import gtid, seeding
from drctl.mysql import replication as r
from drctl.mysql.topology import DbServer, session


def clients(dialect: r.Dialect) -> tuple[str, str]:
    """The dump client and the command-line client of `dialect`'s family."""
    return ("mariadb-dump", "mariadb") if dialect.is_mariadb else ("mysqldump", "mysql")


def missing_clients(dialect: r.Dialect) -> list[str]:
    """Which of `clients` this machine lacks (a copy needs both)."""
    return [client for client in clients(dialect) if shutil.which(client) is None]


def copy_server(source: DbServer, target: DbServer, dialect: r.Dialect, databases: Sequence[str],
                source_history: gtid.MariaDBGtidState | None) -> None:
    """Replace `target`'s application databases and GTID history with a copy of `source`'s
    `databases` (see `seeding.prepare_source`). MariaDB needs `source_history`, the source's binlog
    state read before the copy. Raises seeding.SeedError when a client fails."""
    assert source_history is not None or not dialect.is_mariadb
    with tempfile.TemporaryDirectory(prefix="drctl-reseed-") as tmp, session(target) as conn:
        source_ca = _write_ca(Path(tmp) / "source-ca.pem", source)
        target_ca = _write_ca(Path(tmp) / "target-ca.pem", target)
        dump = by_address(seeding.dump_command(dialect, source.host, source.port, source.user, source_ca, databases),
                          source)
        load = load_command(dialect, target, target_ca)
        seeding.seed(conn, dialect, dump, load, source.password or "", target.password or "", replace=True,
                     source_history=source_history)


def load_command(dialect: r.Dialect, server: DbServer, ca_file: str) -> list[str]:
    """The command-line client loading a dump into `server` over verified TLS, outside its binary log."""
    common = [f"--host={server.host}", f"--port={server.port}", f"--user={server.user}",
              "--init-command=SET SESSION sql_log_bin = 0", f"--ssl-ca={ca_file}"]
    if dialect.is_mariadb:
        return ["mariadb", *common, "--ssl", "--ssl-verify-server-cert"]
    return by_address(["mysql", *common, "--ssl-mode=VERIFY_IDENTITY"], server)


def by_address(argv: list[str], server: DbServer) -> list[str]:
    """MySQL's clients check a certificate's name against --host; a server reached by an address its
    certificate does not carry (drctl reaches our Linodes at the address in the outputs) is checked
    against the stack's own CA instead, which signs nothing but the stack's database servers."""
    if not server.tls_name:
        return argv
    return ["--ssl-mode=VERIFY_CA" if a == "--ssl-mode=VERIFY_IDENTITY" else a for a in argv]


def _write_ca(path: Path, server: DbServer) -> str:
    path.write_text(server.ca_pem or "", encoding="utf-8")
    return str(path)
