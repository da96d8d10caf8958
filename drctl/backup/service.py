"""The archiver as a long-running service (`drctl archive`): resume where the archive ends, take a
base backup when one is due (in a thread of its own, so pieces keep flowing meanwhile), prune what
retention no longer needs, and keep the binlog streaming.

Where it resumes: `status.json` in the bucket says the archived GTID position; a fresh archive
starts with a base backup and streams from that base's position, so base and binlog meet exactly.

Pruning keeps every base backup of the last `retentionDays`, plus the newest one before that
window (the oldest moment one can restore to is the window's start), and every binlog file that
holds a transaction after the oldest base kept; whole files only, since a restore reassembles a
file from its first byte.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from drctl.backup import sealing
from drctl.backup.archive_config import ArchiveSettings
from drctl.backup.archiver import Archiver, Source
from drctl.backup.base_backup import BaseBackupError, schemas_to_dump_with_client, take_base_backup
from drctl.backup.binlog_events import Flavour, GtidPos, MysqlGtidPos, parse_position
from drctl.backup.manifest import BaseBackup, load_bases, load_pieces
from drctl.backup.restore import MYSQL_TOOLS_INSTALL, tool_flavour
from drctl.cloud.archive_status import STATUS
from drctl.cloud.s3_bucket import Bucket, BucketAccess, ObjectMissing


def settings_bucket(settings: ArchiveSettings, timeout: float = 10) -> Bucket:
    b = settings.bucket
    return Bucket(BucketAccess(b.endpoint, b.bucket, b.access_key.get_secret_value(), b.secret_key.get_secret_value(),
                               b.region), timeout=timeout)


def archived_position(bucket: Bucket, flavour: Flavour = Flavour.MARIADB) -> GtidPos | MysqlGtidPos | None:
    """Where the archive ends, as status.json says; refused when it holds the other flavour's binlog."""
    try:
        doc = bucket.get_json(STATUS)
    except ObjectMissing:
        return None
    held = Flavour.parse(doc.get("flavour"))
    if held is not flavour:
        raise ArchiveFlavourError(f"the archive in {bucket.where} holds a {held.value} binlog but the settings say "
                                  f"flavour {flavour.value!r}: one archive (bucket) per kind of database server")
    return parse_position(flavour, doc["archivedPos"])


class ArchiveFlavourError(Exception):
    """The settings and the archive disagree on whose binlog it holds."""


def base_due(bases: list[BaseBackup], every_hours: int, now: float) -> bool:
    return not bases or now - bases[-1].taken_at >= every_hours * 3600


def prune(bucket: Bucket, retention_days: int, now: float, say: Callable[[str], None] = print) -> list[str]:
    """Delete what no restore within the retention window needs; the names deleted."""
    bases = load_bases(bucket)
    window = now - retention_days * 86400
    before = [b for b in bases if b.taken_at < window]
    if len(before) <= 1:
        return []
    keep_from = before[-1]  # the newest base before the window: restoring to the window's start needs it
    doomed = [n for b in before[:-1] for n in (b.name, b.manifest_name)]
    groups: dict[tuple[str, str], list] = {}
    for piece in load_pieces(bucket):
        groups.setdefault((piece.session, piece.file), []).append(piece)
    for group in groups.values():
        if all(keep_from.gtid_pos.includes(g) for p in group for g in p.last.values()):
            doomed += [n for p in group for n in (p.name, p.manifest_name)]
    if doomed:
        bucket.delete(doomed)
        say(f"retention: deleted {len(doomed)} objects older than {retention_days} days' need")
    return doomed


class ArchiveService:
    def __init__(self, settings: ArchiveSettings, *, binlog_tool: str = "mariadb-binlog",
                 dump_tool: str = "mariadb-dump", mysql_binlog_tool: str = "mysqlbinlog",
                 mysql_dump_tool: str = "mysqldump", say: Callable[[str], None] = print,
                 alert: Callable[[dict], list[str]] | None = None, clock: Callable[[], float] = time.time):
        self.settings, self.say, self.clock, self.alert = settings, say, clock, alert
        self.binlog_tool, self.dump_tool = binlog_tool, dump_tool
        self.mysql_binlog_tool, self.mysql_dump_tool = mysql_binlog_tool, mysql_dump_tool
        self.flavour = Flavour(settings.flavour)
        self.bucket = settings_bucket(settings)
        self.key = sealing.parse_key(settings.archive_key.get_secret_value())
        self.base_thread: threading.Thread | None = None
        self.base_error: str | None = None
        self.archiver: Archiver | None = None

    def sources(self) -> list[Source]:
        return [Source(s.host, s.port, s.user, s.password.get_secret_value(), s.ca_file, s.tls_name)
                for s in self.settings.sources]

    def take_base(self) -> BaseBackup:
        client = self.settings.base_client
        if self.flavour is Flavour.MYSQL:
            schemas = schemas_to_dump_with_client(client, self.mysql_dump_tool, client_name="mysql")
            return take_base_backup(self.bucket, self.key, client, schemas, dump_tool=self.mysql_dump_tool,
                                    work_dir=self.settings.spool, say=self.say, flavour=Flavour.MYSQL)
        schemas = schemas_to_dump_with_client(client, self.dump_tool)
        return take_base_backup(self.bucket, self.key, client, schemas, dump_tool=self.dump_tool,
                                work_dir=self.settings.spool, say=self.say)

    def check_tools(self) -> None:
        """A MySQL archive needs MySQL 8's mysqlbinlog and mysqldump: Debian and a MariaDB host install
        MariaDB's under the same names, which would fail on every session and every base backup."""
        if self.flavour is not Flavour.MYSQL:
            return
        wrong = []
        for name in (self.mysql_binlog_tool, self.mysql_dump_tool):
            found = tool_flavour(name)
            if found.flavour is not Flavour.MYSQL:
                wrong.append(f"{name} not found" if found.path is None else
                             f"{name} is not MySQL 8's ({(found.version.splitlines() or ['no version'])[0]})")
        if wrong:
            raise ArchiveFlavourError(f"the settings say flavour 'mysql' but {'; '.join(wrong)}; {MYSQL_TOOLS_INSTALL}")

    def start(self) -> Archiver:
        self.check_tools()
        self.settings.spool.mkdir(parents=True, exist_ok=True)
        start = archived_position(self.bucket, self.flavour)
        if start is None:
            self.say("archive: empty; taking the first base backup, the binlog follows from its position")
            start = self.take_base().gtid_pos
        self.archiver = Archiver(
            self.bucket, self.key, self.settings.spool, self.sources, start,
            segment_seconds=self.settings.segment_seconds, rpo_seconds=self.settings.backup_rpo_seconds,
            binlog_tool=self.binlog_tool, mysql_binlog_tool=self.mysql_binlog_tool, clock=self.clock, say=self.say,
            alert=self.alert)
        return self.archiver

    def housekeeping(self) -> None:
        """Start a base backup when one is due (unless one runs), prune after it."""
        if self.base_thread is not None and self.base_thread.is_alive():
            return
        if not base_due(load_bases(self.bucket), self.settings.base_every_hours, self.clock()):
            return

        def work() -> None:
            try:
                self.take_base()
                prune(self.bucket, self.settings.retention_days, self.clock(), self.say)
                self.base_error = None
            except (BaseBackupError, OSError) as err:
                self.base_error = str(err)
                self.say(f"base backup failed: {err}")
        self.base_thread = threading.Thread(target=work, daemon=True, name="base-backup")
        self.base_thread.start()

    def run(self, stop: Callable[[], bool], interval: float = 1.0, housekeeping_every: float = 60.0) -> None:
        archiver = self.archiver or self.start()
        last_housekeeping = 0.0
        try:
            while not stop():
                archiver.tick()
                if time.monotonic() - last_housekeeping >= housekeeping_every:
                    last_housekeeping = time.monotonic()
                    try:
                        self.housekeeping()
                    except Exception as err:  # the bucket unreachable: the archiver says so; retry later
                        self.say(f"housekeeping skipped: {err}")
                time.sleep(interval)
            archiver.tick()
        finally:
            archiver.close()
            if self.base_thread is not None:
                self.base_thread.join()
