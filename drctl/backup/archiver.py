"""The binlog archiver: reads the primary's binary log as a replica does and ships it, sealed, to
the archive bucket in another region, in pieces that end on transaction boundaries.

    mariadb-binlog --read-from-remote-server --raw --stop-never --start-position=<GTID position>

runs as a child process logged in with the replication account over verified TLS, writing the
binlog files it receives into a spool directory, one directory per session (one connection). Every
`segment_seconds` (and at every rotation) the new complete transactions of each file are sealed and
uploaded with their manifest (drctl/backup/manifest.py). Starting by GTID position rather than by
file name needs no privilege beyond REPLICATION SLAVE and needs no file names: after a restart, a
lost connection or `drctl promote` a new session starts exactly after the newest transaction the
spool holds, on whichever server is now the writable primary (log_slave_updates keeps the same
GTIDs there), so the timeline has no gap, and the first transaction of each session is checked
against the last one before it.

When the object store does not answer, pieces wait in the spool and are shipped, in order, when it
answers again; meanwhile `health()` reports the lag growing and `behind` once it exceeds the backup
RPO, and the status object in the bucket keeps the last good position for `drctl status`.

A MySQL 8 primary (the archive's flavour follows its start position: a GTID set, MysqlGtidPos) is
read with MySQL's own client the same way, by GTID set rather than position (`mysql_reader_argv`):

    mysqlbinlog --read-from-remote-source=BINLOG-DUMP-GTIDS --exclude-gtids=<GTID set archived> --raw --stop-never

The server sends every transaction not in the set, from the first binlog file that holds one, as
it does for a replica with SOURCE_AUTO_POSITION=1. Whichever flavour, the server's own dialect is
checked before a session starts: an archive is never continued from the other kind of server.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from drctl.backup import sealing
from drctl.backup.binlog_events import BinlogFormatError, Flavour, Gtid, GtidPos, MysqlGtidPos, Scan, scan
from drctl.backup.manifest import Piece, iso, stamp
from drctl.cloud.archive_status import STATUS
from drctl.cloud.s3_bucket import StoreUnavailable
from drctl.mysql import replication


@dataclass(frozen=True)
class Source:
    """A database server the archiver may read from, with the replication account."""

    host: str
    port: int
    user: str
    password: str
    ssl_ca: str  # a file
    tls_name: str | None = None  # the name its certificate carries, when `host` is an address

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"Source({self})"

    def flavour(self, timeout: float = 3) -> Flavour | None:
        """Whose server this is (from its version), or None when it does not answer or is not supported."""
        try:
            conn = replication.connect(self.host, self.port, self.user, self.password, ssl_ca=self.ssl_ca,
                                       tls_name=self.tls_name, connect_timeout=timeout, read_timeout=timeout)
        except Exception:  # not answering: the caller tries again on its next round
            return None
        with contextlib.closing(conn):
            try:
                return Flavour.of(replication.detect_dialect(conn))
            except replication.UnsupportedServer:
                return None

    def is_writable_primary(self, timeout: float = 3) -> bool:
        """Whether this server answers and accepts writes (any account may read @@read_only)."""
        try:
            conn = replication.connect(self.host, self.port, self.user, self.password, ssl_ca=self.ssl_ca,
                                       tls_name=self.tls_name, connect_timeout=timeout, read_timeout=timeout)
        except Exception:  # any failure means "not this one": the next candidate is tried
            return False
        with contextlib.closing(conn), conn.cursor() as cur:
            cur.execute("SELECT @@global.read_only")
            return not int(cur.fetchone()[0])


@dataclass(frozen=True)
class Health:
    streaming_from: str | None
    archived_pos: str
    archived_time: int | None  # binlog time of the newest archived transaction
    lag_seconds: float  # age of the oldest transaction received and not yet archived (0: caught up)
    behind: bool  # lag above the backup RPO, or the store refusing
    store_error: str | None
    gap: str | None  # a seam that did not line up (never expected; an alert when it happens)


@dataclass
class _Session:
    name: str
    source: Source
    directory: Path
    process: subprocess.Popen | None
    offsets: dict[str, int] = field(default_factory=dict)  # file -> bytes shipped
    last_ship: dict[str, float] = field(default_factory=dict)
    first_checked: bool = False
    checksums: dict[str, bool | None] = field(default_factory=dict)  # MySQL: file -> events carry a CRC32

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Archiver:
    def __init__(self, bucket, key: bytes, spool: Path, sources: Callable[[], Sequence[Source]],
                 start: GtidPos | MysqlGtidPos, *,
                 segment_seconds: float = 10, rpo_seconds: float = 300, recheck_seconds: float = 5,
                 binlog_tool: str = "mariadb-binlog", mysql_binlog_tool: str = "mysqlbinlog",
                 client_server_id: int = 4_000_000_001, clock: Callable[[], float] = time.time,
                 say: Callable[[str], None] = print, alert: Callable[[dict], list[str]] | None = None):
        """`alert`: called with an event when the archive falls behind, catches up or shows a gap
        (drctl.watch.alerts.Alerter.send: a webhook and/or a command); returns what failed.
        `start` decides the flavour: a GtidPos archives a MariaDB primary with `binlog_tool`, a
        MysqlGtidPos (a GTID set) a MySQL 8 primary with `mysql_binlog_tool`."""
        self.bucket, self.key, self.spool = bucket, key, Path(spool)
        self.sources, self.segment_seconds, self.rpo_seconds = sources, segment_seconds, rpo_seconds
        self.recheck_seconds, self.last_recheck = recheck_seconds, 0.0
        self.binlog_tool, self.client_server_id, self.clock, self.say = binlog_tool, client_server_id, clock, say
        self.flavour = Flavour.MYSQL if isinstance(start, MysqlGtidPos) else Flavour.MARIADB
        self.mysql_binlog_tool = mysql_binlog_tool
        self.source_error: str | None = None  # a source of the other flavour: said once, never streamed from
        self.spool.mkdir(parents=True, exist_ok=True)
        self.sessions: list[_Session] = []
        self.received = start  # after the newest complete transaction in the spool
        self.archived = start  # after the newest transaction in the bucket
        self.archived_time: int | None = None
        self.piece_number = 0
        self.sessions_started = 0
        self.store_error: str | None = None
        self.gap: str | None = None
        self.pending_since: int | None = None  # binlog time of the oldest transaction received, not yet archived
        self._pending: int | None = None
        self.was_behind = False  # ever behind since started: what the tests and the drill report read
        self.alert, self._alerted_behind, self._alerted_gap = alert, False, None

    # --- the loop ----------------------------------------------------------------------------------
    def tick(self) -> None:
        """One round: keep a stream running, ship what is ready, publish the status."""
        self._follow_primary()
        if not any(s.running for s in self.sessions):
            self._connect()
        shipped = self._ship()
        if shipped:
            self._publish()
        health = self.health()
        if health.behind:
            self.was_behind = True
        self._raise_alerts(health)

    def _raise_alerts(self, health: Health) -> None:
        events = []
        if health.behind != self._alerted_behind:
            self._alerted_behind = health.behind
            events.append({"event": "archive-behind" if health.behind else "archive-caught-up",
                           "lagSeconds": round(health.lag_seconds, 1), "rpoSeconds": self.rpo_seconds,
                           "storeError": health.store_error, "archivedPos": health.archived_pos})
        if health.gap and health.gap != self._alerted_gap:
            self._alerted_gap = health.gap
            events.append({"event": "archive-gap", "gap": health.gap, "archivedPos": health.archived_pos})
        for event in events:
            self.say(f"archive: {event['event']}" + (f" ({health.store_error})" if health.store_error else ""))
            if self.alert is not None:
                for failure in self.alert(event):
                    self.say(f"archive: alert not delivered: {failure}")

    def run(self, stop: Callable[[], bool], interval: float = 1.0) -> None:
        try:
            while not stop():
                self.tick()
                time.sleep(interval)
            self.tick()
        finally:
            self.close()

    def close(self) -> None:
        for session in self.sessions:
            if session.running:
                self._stop_process(session)
            (self.spool / f".{session.name}.cnf").unlink(missing_ok=True)  # the password leaves with us

    # --- streaming ---------------------------------------------------------------------------------
    def _follow_primary(self) -> None:
        """After a switchover the old primary lives on, read-only, and its stream simply goes quiet:
        every `recheck_seconds` make sure the stream still comes from the writable primary, and end
        it when it does not (what it delivered is still shipped; the next session starts after it)."""
        if self.clock() - self.last_recheck < self.recheck_seconds:
            return
        self.last_recheck = self.clock()
        for session in self.sessions:
            if session.running and not session.source.is_writable_primary():
                self.say(f"archive: {session.source} is no longer the writable primary; ending its stream")
                self._stop_process(session)

    @staticmethod
    def _stop_process(session: _Session) -> None:
        session.process.terminate()
        try:
            session.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            session.process.kill()
            session.process.wait()

    def _connect(self) -> None:
        source = next((s for s in self.sources() if s.is_writable_primary()), None)
        if source is None:
            return
        found = source.flavour()
        if found is not self.flavour:
            error = (f"{source} is a {found.value} server but this archive holds a {self.flavour.value} binlog "
                     f"(GTID position {self.received}): not archiving it" if found is not None else
                     f"cannot tell what kind of server {source} is (it stopped answering, or its version is not "
                     "supported: MySQL 8.0.23+ or MariaDB 10.5+); retrying")
            if error != self.source_error:
                self.say(f"archive: {error}")
            self.source_error = error
            return
        self.source_error = None
        name = f"{stamp(datetime.now(UTC))}-{source.host}-{source.port}"
        directory = self.spool / name
        directory.mkdir(parents=True)
        # The password goes in a file only this user reads, never on the command line (ps shows that).
        defaults = directory.parent / f".{name}.cnf"
        defaults.touch(mode=0o600)
        defaults.write_text(f"[client]\npassword={source.password}\n")
        if self.flavour is Flavour.MYSQL:
            argv = mysql_reader_argv(self.mysql_binlog_tool, defaults, source, self.received, self.client_server_id,
                                     directory)
        else:
            argv = [self.binlog_tool, f"--defaults-extra-file={defaults}", "--read-from-remote-server", "--raw",
                    "--stop-never", f"--stop-never-slave-server-id={self.client_server_id}",
                    f"--host={source.host}", f"--port={source.port}", f"--user={source.user}",
                    f"--ssl-ca={source.ssl_ca}", "--ssl-verify-server-cert",
                    f"--start-position={self.received}", f"--result-file={directory}/",
                    "",  # no file name: the GTID position says where to start
                    ]
        log = open(directory.parent / f".{name}.log", "wb")  # noqa: SIM115 -- the child writes it for its life
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, cwd=directory)
        log.close()
        self.sessions.append(_Session(name, source, directory, process))
        self.sessions_started += 1
        self.say(f"archiving the binlog of {source} from GTID position {self.received or '(start)'}")

    # --- shipping ----------------------------------------------------------------------------------
    def _ship(self) -> bool:
        shipped = False
        self._pending = None
        for session in list(self.sessions):
            ended = not session.running  # read before the files: whatever it wrote is there now
            files = sorted(p.name for p in session.directory.iterdir() if p.is_file())
            progress = False
            for i, file in enumerate(files):
                closed = i < len(files) - 1 or ended
                try:
                    progress |= self._ship_file(session, file, closed)
                except StoreUnavailable as err:
                    if self.store_error is None:
                        self.say(f"archive: {err}; keeping pieces in {self.spool} and retrying")
                    self.store_error = str(err)
                    self.pending_since = self._pending
                    return shipped
            shipped |= progress
            if ended and not progress:
                # Everything whole is shipped; a transaction cut off by the lost connection is read
                # again, whole, by the next session, which starts right after the last one received.
                self._retire(session)
        self.pending_since = self._pending
        if shipped and self.store_error is not None:
            self.say("archive: the object store answers again; the spool is shipped")
            self.store_error = None
        return shipped

    def _ship_file(self, session: _Session, file: str, closed: bool) -> bool:
        path = session.directory / file
        offset = session.offsets.get(file, 0)
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
        found = self._scan(session, file, data, offset)
        for txn in found.transactions:
            self._receive(session, txn.gtid)
        if found.transactions and self._pending is None:
            self._pending = found.transactions[0].timestamp  # waiting, until this piece is uploaded
        cut = found.safe_end
        if cut == 0:
            return False
        due = self.clock() - session.last_ship.get(file, 0) >= self.segment_seconds
        if not found.transactions and not (closed and cut == len(data)):
            return False
        if not (due or closed):
            return False
        piece_bytes = data[:cut]
        txns = found.transactions
        first: dict[int, Gtid] = {}
        last: dict[int, Gtid] = {}
        for t in txns:
            first.setdefault(t.gtid.domain, t.gtid)
            last[t.gtid.domain] = t.gtid
        name_probe = Piece(session.name, self.piece_number, str(session.source), file, offset, cut, first, last,
                           None, None, 0, "", "", 0, self.flavour)
        sealed_bytes, sealed = sealing.seal_bytes(self.key, name_probe.name, piece_bytes)
        piece = Piece(session.name, self.piece_number, str(session.source), file, offset, cut, first, last,
                      txns[0].timestamp if txns else None, txns[-1].timestamp if txns else None, len(txns),
                      sealed.sha256_plain, sealing.sha256_bytes(sealed_bytes), self.clock(), self.flavour)
        self.bucket.put_bytes(piece.name, sealed_bytes)
        self.bucket.put_json(piece.manifest_name, piece.to_json())
        if self._pending == (txns[0].timestamp if txns else None):
            self._pending = None
        self.piece_number += 1
        session.offsets[file] = offset + cut
        session.last_ship[file] = self.clock()
        for t in txns:
            self.archived = self.archived.after(t.gtid)
        if txns:
            self.archived_time = txns[-1].timestamp
        return True

    def _scan(self, session: _Session, file: str, data: bytes, offset: int) -> Scan:
        if self.flavour is not Flavour.MYSQL:
            return scan(data, file_start=offset == 0)
        found = scan(data, file_start=offset == 0, flavour=Flavour.MYSQL, checksums=session.checksums.get(file))
        if found.checksums is not None:
            session.checksums[file] = found.checksums
        if found.anonymous:
            raise BinlogFormatError(f"binlog {file} from {session.source} holds transactions without a GTID "
                                    "(ANONYMOUS_GTID): the archive needs gtid_mode=ON and enforce_gtid_consistency=ON "
                                    "on every server that may be primary")
        return found

    def _receive(self, session: _Session, gtid: Gtid) -> None:
        if self.received.includes(gtid):
            return
        if not session.first_checked:
            session.first_checked = True
            if not self.received.next_missing(gtid):
                self.gap = (f"session {session.name} from {session.source} starts at {gtid}, "
                            f"but the archive ends at {self.received}: transactions in between are missing")
                self.say(f"archive: GAP: {self.gap}")
            elif self.sessions_started > 1:
                self.say(f"archive: {session.source} continues at {gtid} right after {self.received}: no gap")
        self.received = self.received.after(gtid)

    def _retire(self, session: _Session) -> None:
        self.sessions.remove(session)
        shutil.rmtree(session.directory, ignore_errors=True)
        for leftover in (self.spool / f".{session.name}.cnf",):
            leftover.unlink(missing_ok=True)

    # --- status ------------------------------------------------------------------------------------
    def health(self) -> Health:
        # How much a disaster now would lose: how long the oldest transaction received and not yet in
        # the bucket has waited (0 when everything received is archived).
        lag = 0.0 if self.pending_since is None else max(0.0, self.clock() - self.pending_since)
        streaming = next((str(s.source) for s in self.sessions if s.running), None)
        behind = self.store_error is not None or lag > self.rpo_seconds
        return Health(streaming, str(self.archived), self.archived_time, lag, behind, self.store_error, self.gap)

    def _publish(self) -> None:
        health = self.health()
        doc = {"archivedPos": health.archived_pos, "lastTransactionTime": health.archived_time,
               "lastTransactionAt": iso(health.archived_time) if health.archived_time else None,
               "updatedAt": self.clock(), "streamingFrom": health.streaming_from, "gap": health.gap,
               "flavour": self.flavour.value}
        with contextlib.suppress(StoreUnavailable):
            self.bucket.put_json(STATUS, doc)
        (self.spool / "health.json").write_text(json.dumps(doc))


def tool_path() -> str:
    return shutil.which("mariadb-binlog") or "mariadb-binlog"


def mysql_reader_argv(tool: str, defaults: Path, source: Source, archived: MysqlGtidPos, client_server_id: int,
                      directory: Path) -> list[str]:
    """MySQL 8's mysqlbinlog as a replica of `source` (8.0.26+ option names; Ubuntu 24.04 ships
    8.0.4x): the GTID dump protocol with the archived set excluded, raw events into `directory`,
    never stopping, verified TLS (the certificate must name the host). The password is in the
    `defaults` file."""
    exclude = [f"--exclude-gtids={archived}"] if archived else []  # empty: from the oldest binlog the server has
    return [tool, f"--defaults-extra-file={defaults}", "--read-from-remote-source=BINLOG-DUMP-GTIDS",
            *exclude, "--raw", "--stop-never", f"--connection-server-id={client_server_id}",
            f"--host={source.host}", f"--port={source.port}", f"--user={source.user}",
            "--ssl-mode=VERIFY_IDENTITY", f"--ssl-ca={source.ssl_ca}",
            f"--result-file={directory}/",
            "",  # no file name: the server starts at the first file holding a transaction not in the set
            ]
