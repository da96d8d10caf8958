"""Point-in-time restore: the newest base backup before the target, then the archived binlog from
that base's GTID position up to the target moment or transaction, onto a fresh server.

`plan_restore` reads only manifests and decides everything (which base, which pieces of which
binlog files, where to stop), refusing a target the archive cannot reach or a timeline with a
gap; `--dry-run` prints the plan. `apply_restore` downloads each object, checks its checksum
before opening it (a corrupted object is refused by name), loads the base and replays the binlog
with the real mariadb-binlog into the real mariadb client:

    mariadb-binlog --start-position=<position so far> [--stop-datetime=T+1s | --stop-position=G] FILE | mariadb

`--start-position` makes pieces read twice (a session that overlapped the one before) harmless,
and mariadb-binlog itself refuses a file that starts after the position reached (a gap).

Times are whole seconds in UTC, the binlog's own resolution: `--to-time T` restores every
transaction whose binlog time is at or before T, in the order they committed, and stops at the first
one after it.

An archive of a MySQL 8 primary (its manifests say "flavour": "mysql") is restored with MySQL's
own tools onto a MySQL 8 server (`apply_mysql_restore`): the base (mysqldump's, which sets
gtid_purged to its GTID set), then each binlog file through

    mysqlbinlog --exclude-gtids=<GTID set reached> FILE | mysql

where the file of the target is first cut just before the first transaction after the target time
(by its original commit time) or just after the target GTID, so where it stops is decided by the
same reading of the binlog as the manifests. `check_restore_tools` refuses, before anything is
downloaded or started, when the tools here cannot replay the archive's flavour.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from drctl.backup import sealing
from drctl.backup.binlog_events import (
    Flavour,
    Gtid,
    GtidPos,
    MysqlGtid,
    MysqlGtidPos,
    flavour_of_gtid,
    scan,
    scan_mysql,
)
from drctl.backup.manifest import BaseBackup, Piece, iso, load_bases, load_pieces
from drctl.backup.server_position import binlog_position

# Row counts in the restore report: the tables an operator checks first (any table prefix).
KEY_TABLE_SUFFIXES = ("wc_orders", "wc_order_items", "woocommerce_order_items", "posts", "users")
KEY_TABLES = (("drctl_drill", "orders"),)


class RestoreError(Exception):
    """The restore cannot be done as asked; the message says why and what would work."""


@dataclass(frozen=True)
class Target:
    """Where to restore: how the mariadb client reaches the server, and a PyMySQL connection to it."""

    client_args: tuple[str, ...]  # e.g. ("--socket=/x/mysqld.sock", "--user=root")
    connect: Callable[[], object]
    describe: str


@dataclass(frozen=True)
class BinlogFile:
    session: str
    file: str
    pieces: tuple[Piece, ...]
    stop_here: bool  # the target lies in this file: replay it with the stop option, and nothing after

    @property
    def size(self) -> int:
        return sum(p.size for p in self.pieces)


@dataclass(frozen=True)
class RestorePlan:
    base: BaseBackup
    files: tuple[BinlogFile, ...]
    to_time: datetime | None
    to_gtid: Gtid | MysqlGtid | None
    archive_end_time: int | None
    archive_end_pos: GtidPos | MysqlGtidPos

    @property
    def flavour(self) -> Flavour:
        return self.base.flavour

    def lines(self) -> list[str]:
        target = f"time {self.to_time:%Y-%m-%d %H:%M:%S} UTC" if self.to_time else f"GTID {self.to_gtid}"
        out = [f"restore to {target}",
               f"base backup {self.base.stamp} (finished {iso(self.base.taken_at)}, GTID position "
               f"{self.base.gtid_pos}, {self.base.size} bytes)"]
        if not self.files:
            out.append("binlog: none needed (the base already ends at the target)")
        for f in self.files:
            first, last = f.pieces[0], f.pieces[-1]
            out.append(f"binlog {f.file} of session {f.session}: pieces {first.number}..{last.number} "
                       f"({len(f.pieces)} objects, {f.size} bytes)" + ("  <- stops in here" if f.stop_here else ""))
        out.append(f"archive holds up to {iso(self.archive_end_time) if self.archive_end_time else '(nothing)'}"
                   f" (GTID position {self.archive_end_pos})")
        return out


@dataclass
class RestoreReport:
    target: str
    base: str
    gtid_pos: str
    last_transaction_time: str | None
    row_counts: dict[str, int] = field(default_factory=dict)
    objects: int = 0
    seconds: float = 0.0

    def lines(self) -> list[str]:
        out = [f"restored onto {self.target} from base {self.base} and {self.objects} archive objects "
               f"in {self.seconds:.1f} s",
               f"position reached: {self.gtid_pos or '(base only)'}",
               f"last transaction: {self.last_transaction_time or '(none after the base)'}"]
        out += [f"rows in {table}: {count}" for table, count in sorted(self.row_counts.items())]
        return out


# --- planning ---------------------------------------------------------------------------------------

def plan_restore(bucket, *, to_time: datetime | None = None, to_gtid: Gtid | MysqlGtid | None = None) -> RestorePlan:
    if (to_time is None) == (to_gtid is None):
        raise RestoreError("give exactly one of a time and a GTID to restore to")
    bases = load_bases(bucket)
    if not bases:
        raise RestoreError(f"no base backup in {bucket.where}: the archive cannot be restored yet")
    pieces = load_pieces(bucket)
    flavour = check_flavours(bucket, bases, pieces, to_gtid)
    end_pos, end_time = (MysqlGtidPos() if flavour is Flavour.MYSQL else GtidPos()), None
    for p in pieces:
        for g in p.last.values():
            end_pos = end_pos.after(g) if not end_pos.includes(g) else end_pos
        end_time = p.last_time if p.last_time is not None else end_time
    if to_time is not None:
        # Whole seconds: a base finished within second T holds nothing committed after second T.
        limit = int(to_time.timestamp()) + 1
        usable = [b for b in bases if b.taken_at < limit]
        if not usable:
            raise RestoreError(f"no base backup finished before {to_time:%Y-%m-%d %H:%M:%S} UTC: the oldest "
                               f"finished at {iso(bases[0].taken_at)} (allowed: a time after it)")
        if (end_time is None or end_time < limit - 1) and limit - 1 > usable[-1].taken_at:
            held = iso(end_time) if end_time else "no transaction yet"
            raise RestoreError(f"the archive does not reach {to_time:%Y-%m-%d %H:%M:%S} UTC: its newest transaction is "
                               f"at {held} (allowed: a time up to it)")
    else:
        usable = [b for b in bases if not _past(b.gtid_pos, to_gtid)]
        if not usable:
            raise RestoreError(f"every base backup is past GTID {to_gtid}: the oldest ends at {bases[0].gtid_pos}")
        if not end_pos.includes(to_gtid) and not usable[-1].gtid_pos.includes(to_gtid):
            raise RestoreError(f"the archive does not hold GTID {to_gtid}: it ends at {end_pos or '(nothing)'}")
    base = usable[-1]
    files = _choose_files(base, pieces, to_time, to_gtid)
    return RestorePlan(base, files, to_time, to_gtid, end_time, end_pos)


def _past(pos: GtidPos, gtid: Gtid) -> bool:
    mine = pos.last.get(gtid.domain)
    return mine is not None and mine.seq > gtid.seq


def _choose_files(base: BaseBackup, pieces: Sequence[Piece], to_time: datetime | None,
                  to_gtid: Gtid | None) -> tuple[BinlogFile, ...]:
    groups: dict[tuple[str, str], list[Piece]] = {}
    for p in pieces:
        groups.setdefault((p.session, p.file), []).append(p)
    stop_after = int(to_time.timestamp()) if to_time else None
    running, chosen = base.gtid_pos, []
    for (session, file), group in groups.items():
        group.sort(key=lambda p: p.offset)
        _check_contiguous(session, file, group)
        needed = [p for p in group if any(not running.includes(g) for g in p.last.values())]
        if not needed:
            continue
        taken: list[Piece] = []
        stop_here = False
        for p in group:
            taken.append(p)
            if stop_after is not None and p.last_time is not None and p.last_time > stop_after:
                stop_here = True
                break
            if to_gtid is not None and to_gtid.domain in p.last and p.last[to_gtid.domain].seq >= to_gtid.seq:
                stop_here = True
                break
        for p in taken:
            for domain, first in p.first.items():
                if not running.includes(first) and not running.next_missing(first):
                    raise RestoreError(f"the archive has a gap: piece {p.name} starts at {first} but the timeline "
                                       f"before it ends at {running.last.get(domain)}; cannot restore past it")
                if not running.includes(p.last[domain]):
                    running = running.after(p.last[domain])
        chosen.append(BinlogFile(session, file, tuple(taken), stop_here))
        if stop_here:
            break
    return tuple(chosen)


def _check_contiguous(session: str, file: str, group: Sequence[Piece]) -> None:
    at = 0
    for p in group:
        if p.offset != at:
            raise RestoreError(f"the archive lacks bytes {at}..{p.offset} of binlog {file} in session {session} "
                               f"(before piece {p.name})")
        at = p.offset + p.size


# --- applying --------------------------------------------------------------------------------------

def apply_restore(bucket, key: bytes, plan: RestorePlan, target: Target, *, mariadb: str = "mariadb",
                  mariadb_binlog: str = "mariadb-binlog", work_dir: Path | None = None,
                  say: Callable[[str], None] = print) -> RestoreReport:
    if plan.flavour is Flavour.MYSQL:
        return apply_mysql_restore(bucket, key, plan, target, work_dir=work_dir, say=say)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="wcdr-restore-") as tmp:
        files, objects = _load_base_and_fetch(bucket, key, plan, target, mariadb, Path(tmp), "loading the base backup",
                                              say)
        running = plan.base.gtid_pos
        for i, (f, path) in enumerate(zip(plan.files, files, strict=True)):
            stop: list[str] = []
            if f.stop_here and plan.to_time is not None:
                # mariadb-binlog stops at the first event at or after this moment, read in TZ (UTC here).
                stop = [f"--stop-datetime={plan.to_time.replace(microsecond=0) + timedelta(seconds=1):%Y-%m-%d %H:%M:%S}"]
            elif f.stop_here and plan.to_gtid is not None:
                stop = [f"--stop-position={plan.to_gtid}"]
            _replay(mariadb_binlog, mariadb, path, running, stop, target)
            running = _merge(running, _target_pos(target))
            say(f"replayed binlog {f.file} ({i + 1}/{len(plan.files)}), position {running}")
        last_time = _last_time(files, running)
    return RestoreReport(target.describe, plan.base.stamp, str(running), iso(last_time) if last_time else None,
                         row_counts(target), objects, time.monotonic() - started)


def _load_base_and_fetch(bucket, key: bytes, plan: RestorePlan, target: Target, client: str, work: Path,
                         loading: str, say: Callable[[str], None],
                         fetched: Callable[[BinlogFile, Path], None] | None = None) -> tuple[list[Path], int]:
    """Both families' first half: download, check and load the base into `target` with `client`,
    then reassemble each binlog file of the plan from its pieces under `work` (`fetched` sees each
    file before it is reported). Returns the files and how many objects were used."""
    say(f"downloading base backup {plan.base.stamp} ({plan.base.size} bytes)")
    base_path = _download(bucket, plan.base.name, plan.base.sha256_sealed, work / "base.seg")
    objects = 1
    say(loading)
    _load_base(key, plan.base, base_path, target, client)
    base_path.unlink()
    files: list[Path] = []
    for i, f in enumerate(plan.files):
        path = work / f"{i:05d}-{f.file}"
        with open(path, "wb") as out:
            for p in f.pieces:
                sealed = _download(bucket, p.name, p.sha256_sealed, work / "piece.seg")
                sealing.open_to(key, p.name, sealed, out, p.sha256_plain)
                objects += 1
        if fetched is not None:
            fetched(f, path)
        files.append(path)
        say(f"fetched binlog {f.file} ({i + 1}/{len(plan.files)} files, {objects} objects)")
    return files, objects


def _download(bucket, name: str, sha256_sealed: str, path: Path) -> Path:
    bucket.get_file(name, path)
    sealing.check_sealed(path, name, sha256_sealed)
    return path


def _load_base(key: bytes, base: BaseBackup, path: Path, target: Target, mariadb: str) -> None:
    # The base goes in without binary logging: the target's own binlog then holds only the
    # replayed transactions, with their original GTIDs, so its position is the archive's.
    with tempfile.TemporaryFile() as err, subprocess.Popen([mariadb, *target.client_args, "--binary-mode"],
                                                           stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                                           stderr=err) as client:
        try:
            client.stdin.write(b"SET SESSION sql_log_bin=0;\n")
            sealing.open_to(key, base.name, path, client.stdin, base.sha256_plain)
        except BrokenPipeError:
            pass
        finally:
            with contextlib.suppress(BrokenPipeError):
                client.stdin.close()
        code = client.wait()
        if code != 0:
            err.seek(0)
            raise RestoreError(f"loading base backup {base.stamp} into {target.describe} failed: "
                               f"{_tail(err.read())}")


def _replay(mariadb_binlog: str, mariadb: str, path: Path, start: GtidPos, stop: list[str], target: Target) -> None:
    start_arg = [f"--start-position={start}"] if start.last else []
    _replay_argv([mariadb_binlog, *start_arg, *stop, str(path)], mariadb, path, target)


def _tail(data: bytes) -> str:
    lines = data.decode(errors="replace").strip().splitlines()
    return " / ".join(lines[-3:]) or "(nothing)"


def _target_pos(target: Target) -> GtidPos:
    with contextlib.closing(target.connect()) as conn:
        return binlog_position(conn, Flavour.MARIADB)


def _merge(a: GtidPos, b: GtidPos) -> GtidPos:
    out = a
    for g in b.last.values():
        if not out.includes(g):
            out = out.after(g)
    return out


def _last_time(files: Sequence[Path], pos: GtidPos) -> int | None:
    """The binlog time of the newest transaction the target now holds."""
    found = None
    for path in files:
        for t in scan(path.read_bytes()).transactions:
            if pos.includes(t.gtid):
                found = t.timestamp
    return found


def row_counts(target: Target) -> dict[str, int]:
    conn = target.connect()
    counts: dict[str, int] = {}
    with contextlib.closing(conn), conn.cursor() as cur:
        cur.execute("SELECT table_schema, table_name FROM information_schema.tables WHERE table_type='BASE TABLE' "
                    "AND table_schema NOT IN ('mysql','information_schema','performance_schema','sys')")
        for schema, table in cur.fetchall():
            if (schema, table) in KEY_TABLES or any(table.endswith(s) for s in KEY_TABLE_SUFFIXES):
                cur.execute(f"SELECT COUNT(*) FROM `{schema}`.`{table}`")  # noqa: S608 -- names from the server itself
                counts[f"{schema}.{table}"] = int(cur.fetchone()[0])
    return counts


def export_tables(target: Target, tables: Sequence[tuple[str, str]], out: Path, dump_tool: str = "mariadb-dump") -> None:
    """`--tables`: the restored rows of `tables` ((schema, table) pairs) as a SQL file an operator
    can load into the live shop."""
    by_schema: dict[str, list[str]] = {}
    for schema, table in tables:
        by_schema.setdefault(schema, []).append(table)
    with open(out, "wb") as sql:
        for schema, names in by_schema.items():
            done = subprocess.run([dump_tool, *target.client_args, "--single-transaction", "--skip-triggers",
                                   "--hex-blob", schema, *names], stdout=sql, stderr=subprocess.PIPE, check=False)
            if done.returncode != 0:
                raise RestoreError(f"exporting {schema}.{','.join(names)} failed: {_tail(done.stderr)}")


# --- MySQL 8 archives ---------------------------------------------------------------------------------

def check_flavours(bucket, bases: Sequence[BaseBackup], pieces: Sequence[Piece],
                   to_gtid: Gtid | MysqlGtid | None = None) -> Flavour:
    """The flavour of the archive: every manifest must agree, and so must a --to-gtid."""
    flavours = {b.flavour for b in bases} | {p.flavour for p in pieces}
    if len(flavours) > 1:
        raise RestoreError(f"{bucket.where} mixes MariaDB and MySQL manifests: an archive holds one kind of "
                           "server's binlog; cannot restore from it")
    flavour = flavours.pop() if flavours else Flavour.MARIADB
    if to_gtid is not None and flavour_of_gtid(to_gtid) is not flavour:
        allowed = ("a MySQL GTID server_uuid:number" if flavour is Flavour.MYSQL
                   else "a MariaDB GTID domain-server-sequence")
        raise RestoreError(f"--to-gtid: {to_gtid} is not a GTID of this archive, which holds a {flavour.value} "
                           f"binlog (allowed: {allowed})")
    return flavour


@dataclass(frozen=True)
class ToolFound:
    path: str | None
    flavour: Flavour | None  # None: not found, or its --version not understood
    version: str


def tool_flavour(name: str) -> ToolFound:
    """Whose client `name` is, from its --version: Debian links mysqlbinlog and mysql to MariaDB's
    tools, so the name alone does not tell."""
    path = shutil.which(name)
    if path is None:
        return ToolFound(None, None, "")
    try:
        said = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ToolFound(path, None, "")
    return ToolFound(path, version_flavour(said), said.strip())


def version_flavour(text: str) -> Flavour | None:
    """Whose tool printed this --version: MYSQL for MySQL 8 and later ('mysqlbinlog  Ver 8.0.28 for
    Linux on x86_64', 'mysql  Ver 8.0.40-0ubuntu0.24.04.1 for Linux on x86_64 ((Ubuntu))'), MARIADB
    when it names MariaDB ('mysql  Ver 15.1 Distrib 10.11.6-MariaDB, ...'), None otherwise: MariaDB's
    mysqlbinlog says only 'Ver 3.5 for debian-linux-gnu', as MySQL 5.7's said 'Ver 3.4'."""
    if "mariadb" in text.lower():
        return Flavour.MARIADB
    match = re.search(r"\bVer (\d+)\.(\d+)\.(\d+)", text)
    if match and int(match[1]) >= 8:
        return Flavour.MYSQL
    return None


MYSQL_TOOLS_INSTALL = ("install MySQL 8's client tools (Ubuntu 24.04: apt-get install mysql-client-8.0; elsewhere "
                       "MySQL's own APT/YUM repository, package mysql-community-client); MariaDB's mysqlbinlog cannot "
                       "read a MySQL 8 binlog, and Ubuntu does not install MariaDB's client beside MySQL's")
MARIADB_TOOLS_INSTALL = "install MariaDB's client tools (Debian/Ubuntu: apt-get install mariadb-client)"


def check_restore_tools(plan: RestorePlan, *, local_target: bool = False, mysql: str = "mysql",
                        mysqlbinlog: str = "mysqlbinlog") -> None:
    """Refuse, with what to install, when this machine cannot replay the plan's archive (call it
    before anything is downloaded or started). `local_target`: the restore goes onto a server drctl
    starts here, which is MariaDB (drctl/local)."""
    if plan.flavour is Flavour.MARIADB:
        missing = [n for n in ("mariadb-binlog", "mariadb") if shutil.which(n) is None]
        if missing:
            raise RestoreError(f"cannot restore this MariaDB archive here: {', '.join(missing)} not found; "
                               f"{MARIADB_TOOLS_INSTALL}")
        return
    found = {name: tool_flavour(name) for name in (mysqlbinlog, mysql)}
    wrong = [f"{name} not found" if t.path is None else
             f"{name} is not MySQL 8's ({(t.version.splitlines() or ['its --version says nothing'])[0]})"
             for name, t in found.items() if t.flavour is not Flavour.MYSQL]
    if wrong:
        raise RestoreError(f"cannot restore this MySQL 8 archive here: {'; '.join(wrong)}; {MYSQL_TOOLS_INSTALL}")
    if local_target:
        raise RestoreError("cannot restore this MySQL 8 archive onto a local target: drctl starts a MariaDB server "
                           "there, which cannot apply MySQL's binlog (GTID_NEXT, its row events); restore onto a "
                           "MySQL 8 server with gtid_mode=ON")


def mysql_replay_argv(mysqlbinlog: str, path: Path, reached: MysqlGtidPos) -> list[str]:
    """mysqlbinlog for one (cut) binlog file: every transaction not reached yet, with its own GTID."""
    exclude = [f"--exclude-gtids={reached}"] if reached else []
    return [mysqlbinlog, *exclude, str(path)]


def mysql_cut(data: bytes, to_time: datetime | None, to_gtid: MysqlGtid | None) -> tuple[int, bool]:
    """Where a MySQL binlog file is cut for the target: (offset, whether the target lies inside).
    Before the first transaction committed after `to_time` (its original commit second, as the
    manifests count it), or just after transaction `to_gtid`; the whole file when neither is in it."""
    found = scan_mysql(data)
    for t in found.transactions:
        if to_time is not None and t.timestamp > int(to_time.timestamp()):
            return t.start, True
        if to_gtid is not None and t.gtid == to_gtid:
            return t.end, True
    return found.safe_end, False


def apply_mysql_restore(bucket, key: bytes, plan: RestorePlan, target: Target, *, mysql: str = "mysql",
                        mysqlbinlog: str = "mysqlbinlog", work_dir: Path | None = None,
                        say: Callable[[str], None] = print) -> RestoreReport:
    """`apply_restore` for a MySQL 8 archive onto a MySQL 8 server (gtid_mode=ON, empty)."""
    check_restore_tools(plan, mysql=mysql, mysqlbinlog=mysqlbinlog)
    started = time.monotonic()

    def cut_at_target(f: BinlogFile, path: Path) -> None:
        if f.stop_here:
            data = path.read_bytes()
            cut, inside = mysql_cut(data, plan.to_time, plan.to_gtid)
            path.write_bytes(data[:cut])
            if inside:
                say(f"binlog {f.file} cut at byte {cut}: the target ends there")

    with tempfile.TemporaryDirectory(dir=work_dir, prefix="wcdr-restore-") as tmp:
        files, objects = _load_base_and_fetch(
            bucket, key, plan, target, mysql, Path(tmp),
            "loading the base backup (its GTID set becomes the server's gtid_purged)", say, fetched=cut_at_target)
        reached = plan.base.gtid_pos
        assert isinstance(reached, MysqlGtidPos)
        for i, (f, path) in enumerate(zip(plan.files, files, strict=True)):
            _replay_argv(mysql_replay_argv(mysqlbinlog, path, reached), mysql, path, target)
            reached = reached.union(_mysql_target_set(target))
            say(f"replayed binlog {f.file} ({i + 1}/{len(plan.files)}), GTID set {reached}")
        last_time = None
        for path in files:
            for t in scan_mysql(path.read_bytes()).transactions:
                if reached.includes(t.gtid):
                    last_time = t.timestamp
    return RestoreReport(target.describe, plan.base.stamp, str(reached), iso(last_time) if last_time else None,
                         row_counts(target), objects, time.monotonic() - started)


def _replay_argv(reader_argv: list[str], client: str, path: Path, target: Target) -> None:
    with tempfile.TemporaryFile() as err1, tempfile.TemporaryFile() as err2:
        reader = subprocess.Popen(reader_argv, stdout=subprocess.PIPE, stderr=err1, env={**os.environ, "TZ": "UTC"})
        client_process = subprocess.Popen([client, *target.client_args, "--binary-mode"], stdin=reader.stdout,
                                          stdout=subprocess.DEVNULL, stderr=err2)
        reader.stdout.close()
        code_client, code_reader = client_process.wait(), reader.wait()
        if code_reader != 0 or code_client != 0:
            err1.seek(0)
            err2.seek(0)
            raise RestoreError(f"replaying {path.name} failed: {Path(reader_argv[0]).name} said {_tail(err1.read())}; "
                               f"the {Path(client).name} client said {_tail(err2.read())}")


def _mysql_target_set(target: Target) -> MysqlGtidPos:
    with contextlib.closing(target.connect()) as conn:
        return binlog_position(conn, Flavour.MYSQL)
