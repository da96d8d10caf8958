"""Errant transactions: what an old primary committed that the current primary never received.

Before an old primary rejoins, drctl finds each errant transaction in its binary log over SQL
(SHOW BINLOG EVENTS: GTID, position, the tables it changed, and the statements when the server logs
them: MariaDB's annotate events, on by default, or MySQL's rows-query events), decodes the rows
with the server's binlog client when one is installed here (`mariadb-binlog` / `mysqlbinlog
--read-from-remote-server --verbose`), and writes everything to a JSON file for review. These are
orders that exist nowhere else: someone must decide whether to re-enter them.

Transactions that touched only drctl's own schema (the heartbeat a restarted primary keeps writing)
are marked `drctlOnly`: dropping them loses no shop data.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drctl.mysql import gtid
from drctl.mysql import replication as r
from drctl.mysql.topology import DbServer
from drctl.stack.state_files import write_private

MAX_EVENTS_SCANNED = 2_000_000  # stop reading binary logs after this many events
ROWS_LINES_PER_TRANSACTION = 200
_TABLE_MAP = re.compile(r"\(([^)]+)\)\s*$")
DRCTL_SCHEMAS = (r.HEARTBEAT_SCHEMA, r.LOCAL_SCHEMA)


@dataclass
class ErrantTransaction:
    gtid: str
    file: str
    start: int
    end: int = 0
    events: list[dict[str, str]] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)
    rows: str | None = None

    @property
    def drctl_only(self) -> bool:
        """Touched nothing but drctl's own schemas (heartbeat rows and their DDL)."""
        if not self.tables and not self.statements:
            return False
        return all(t.split(".")[0].strip("`") in DRCTL_SCHEMAS for t in self.tables) and all(
            "drctl" in s for s in self.statements)

    def as_dict(self) -> dict[str, Any]:
        return {"gtid": self.gtid, "binlogFile": self.file, "startPosition": self.start, "endPosition": self.end,
                "drctlOnly": self.drctl_only, "tables": self.tables, "statements": self.statements,
                "events": self.events, "rows": self.rows}


@dataclass
class ErrantReport:
    region: str
    primary_region: str
    dialect: str
    gtids: str  # as compared: MySQL set / MariaDB ranges
    count: int
    transactions: list[ErrantTransaction]
    complete: bool  # every errant GTID was found in the binary logs
    notes: list[str] = field(default_factory=list)

    @property
    def data_transactions(self) -> list[ErrantTransaction]:
        return [t for t in self.transactions if not t.drctl_only]

    @property
    def only_drctl(self) -> bool:
        """Safe to drop without review: every errant transaction was found, none touched shop data."""
        return self.complete and not self.data_transactions

    def as_dict(self) -> dict[str, Any]:
        return {
            "region": self.region, "currentPrimary": self.primary_region, "dialect": self.dialect,
            "errantGtids": self.gtids, "count": self.count, "complete": self.complete,
            "dataTransactions": len(self.data_transactions),
            "drctlOnlyTransactions": len(self.transactions) - len(self.data_transactions),
            "notes": self.notes, "transactions": [t.as_dict() for t in self.transactions],
        }


def in_errant(dialect: r.Dialect, errant: str) -> Any:
    """A predicate: is this GTID text one of the errant ones?"""
    if dialect.is_mariadb:
        ranges = gtid.parse_ranges(errant)

        def mariadb(text: str) -> bool:
            d, s, n = (int(x) for x in text.split("-"))
            return any((d, s, n) in rng for rng in ranges)
        return mariadb
    errant_set = gtid.GtidSet.parse(errant)

    def mysql(text: str) -> bool:
        return gtid.GtidSet.parse(text).issubset(errant_set)
    return mysql


def find_transactions(conn, dialect: r.Dialect, errant: str, count: int,
                      max_events: int = MAX_EVENTS_SCANNED) -> tuple[list[ErrantTransaction], bool]:
    """The errant transactions in this server's binary logs, newest file first (errant
    transactions are recent); (found, complete)."""
    wanted = in_errant(dialect, errant)
    found: dict[str, ErrantTransaction] = {}
    scanned = 0
    for file in reversed(r.binlog_files(conn)):
        current: ErrantTransaction | None = None
        events = r.binlog_events(conn, file)
        scanned += len(events)
        for event in events:
            started = r.gtid_of_event(dialect, event)
            if started is not None:
                current = ErrantTransaction(started, file, event.pos) if wanted(started) else None
                if current is not None:
                    found[started] = current
                continue
            if current is None:
                continue
            current.end = event.end_pos
            current.events.append({"type": event.type, "info": event.info})
            if event.type == "Table_map":
                match = _TABLE_MAP.search(event.info)
                if match and match[1] not in current.tables:
                    current.tables.append(match[1])
            elif event.type in ("Annotate_rows", "Rows_query") or (
                    event.type == "Query" and event.info.strip().upper() not in ("BEGIN", "COMMIT")):
                current.statements.append(event.info.strip().removeprefix("# "))
            if event.type in ("Xid", "XID") or (event.type == "Query" and event.info.strip().upper() == "COMMIT"):
                current = None
        if len(found) >= count or scanned >= max_events:
            break
    ordered = sorted(found.values(), key=lambda t: (t.file, t.start))
    return ordered, len(found) >= count


def decode_rows(server: DbServer, dialect: r.Dialect, transactions: list[ErrantTransaction]) -> str | None:
    """Fill in each transaction's rows with the binlog client's --verbose decoding, reading the
    server's binary log remotely. Returns why not, when it cannot (no client here, ...)."""
    client = shutil.which("mariadb-binlog" if dialect.is_mariadb else "mysqlbinlog")
    if client is None:
        return (f"rows not decoded: {'mariadb-binlog' if dialect.is_mariadb else 'mysqlbinlog'} is not installed "
                "here (statements and tables are listed from the server)")
    if server.tls_name and dialect.is_mariadb:
        return "rows not decoded: the server is reached by an address its certificate does not name"
    with tempfile.TemporaryDirectory(prefix="drctl-binlog-") as tmp:
        ca = Path(tmp) / "ca.pem"
        ca.write_text(server.ca_pem or "", encoding="utf-8")
        cnf = Path(tmp) / "client.cnf"
        fd = os.open(cnf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            escaped = (server.password or "").replace("\\", "\\\\").replace('"', '\\"')
            f.write(f'[client]\npassword="{escaped}"\n')
        # MySQL: by CA alone when reached by address (see reseed.by_address).
        tls = ["--ssl", f"--ssl-ca={ca}", "--ssl-verify-server-cert"] if dialect.is_mariadb else \
            [f"--ssl-ca={ca}", "--ssl-mode=VERIFY_CA" if server.tls_name else "--ssl-mode=VERIFY_IDENTITY"]
        for t in transactions:
            argv = [client, f"--defaults-extra-file={cnf}", "--read-from-remote-server", f"--host={server.host}",
                    f"--port={server.port}", f"--user={server.user}", *tls, f"--start-position={t.start}",
                    f"--stop-position={t.end}", "--base64-output=DECODE-ROWS", "--verbose", t.file]
            try:
                proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
            except (OSError, subprocess.TimeoutExpired) as err:
                return f"rows not decoded: {type(err).__name__}"
            if proc.returncode != 0:
                return f"rows not decoded: {client} exited {proc.returncode}: " + \
                    " | ".join(proc.stderr.strip().splitlines()[-2:]).replace(server.password or "\0", "********")
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("###")]
            t.rows = "\n".join(lines[:ROWS_LINES_PER_TRANSACTION]) + (
                f"\n### ... {len(lines) - ROWS_LINES_PER_TRANSACTION} more lines" if len(lines) > ROWS_LINES_PER_TRANSACTION
                else "")
    return None


def examine(conn, server: DbServer, dialect: r.Dialect, primary_region: str,
            diff: gtid.GtidComparison) -> ErrantReport:
    transactions, complete = find_transactions(conn, dialect, diff.errant, diff.errant_count)
    report = ErrantReport(server.region, primary_region, dialect.value, diff.errant,
                          max(diff.errant_count, len(transactions)), transactions, complete)
    if not complete:
        report.notes.append(f"only {len(transactions)} of {diff.errant_count} errant transaction(s) were found in "
                            "the binary logs (purged, or beyond the scan limit): treat the rest as shop data")
    if transactions:
        why_not = decode_rows(server, dialect, transactions)
        if why_not:
            report.notes.append(why_not)
    return report


def write_export(report: ErrantReport, directory: Path, clock: float | None = None) -> Path:
    # Customers' rows: readable by the operator only (0600 in a 0700 directory), written atomically.
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(clock or time.time()))
    path = Path(directory) / f"errant-{report.region}-{stamp}.json"
    return write_private(path, json.dumps(report.as_dict(), indent=2) + "\n")
