"""`drctl rehearse --restore`: the restore drill of `drctl drill --restore`, on this machine.

The rehearsal topology (drctl/rehearsal/topology.py: MariaDB primary and replica behind their
HAProxy "firewalls", the shop origins, the Cloudflare stand-in) gets what a deployed stack has for
point-in-time recovery (docs/backups.md):

- an archive bucket on a real S3 server on loopback (drctl/local/s3_server.py, `rclone serve s3`),
- the archiver service of `drctl archive` (drctl/backup/service.py) with its settings as the
  program would render them: every database server as a source, through its firewall proxy, with the
  replication account over verified TLS, base backups from the replica's socket. Its first round
  takes the base backup and streams the binlog from that base's position,
- the stack outputs' `backups` section pointing at that bucket with a fresh archive key.

Then the very drill `drctl drill --restore` runs (drctl/backup/restore_drill.py, not a copy):
sequence-numbered orders before and after a restore point, the wait for the archive to hold the
last one (the backup RPO), the restore to the point onto a scratch MariaDB server, the check that
every order up to the point is there and none after. The backup RPO objective is the stack's, not
scaled (the archiver ships at its real period, a tenth of it, at most 10 s).
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from drctl.backup import restore_drill, sealing
from drctl.backup.archive_config import ArchiveSettings
from drctl.backup.archiver import Archiver
from drctl.backup.base_backup import BaseBackupError
from drctl.backup.restore import RestoreError
from drctl.backup.service import ArchiveService
from drctl.cloud.s3_bucket import Bucket, ObjectMissing, StoreUnavailable
from drctl.local import binaries, s3_server
from drctl.local.ports import HOST
from drctl.local.s3_server import S3Server
from drctl.rehearsal.topology import LocalTopology, RehearsalSpec
from drctl.runbook.context import Runbook
from drctl.stack.files import REPO_ROOT, load_stack_file
from drctl.stack.outputs import BackupsOut

STORAGE_REGION = "us-east-1"  # what boto3 signs with; the local server accepts any
SETTLE_SECONDS = 2.0  # orders before the restore point, and as long after it
WRITER_RATE = 50.0  # orders per second
# What a failed restore drill raises (drctl drill --restore reports the same ones).
DRILL_ERRORS = (RestoreError, sealing.ChecksumError, StoreUnavailable, ObjectMissing, TimeoutError)


@dataclass(frozen=True)
class BackupSettings:
    """The stack's point-in-time-recovery settings, read as `pulumi up` reads them."""

    region: str  # the DR region whose bucket holds the archive
    backup_rpo_seconds: int
    base_every_hours: int
    retention_days: int

    @classmethod
    def from_stack(cls, stack: str, root=REPO_ROOT) -> BackupSettings:
        from components.config import validate_config_map

        stack_file = load_stack_file(stack, root=root)
        # RehearsalSpec.from_stack validated the same file first: this cannot fail differently.
        config = validate_config_map(stack_file.config, stack_file.secret_keys)
        return cls(config.backups.region or config.regions[1].region, config.objectives.backup_rpo_seconds,
                   config.backups.base_every_hours, config.backups.retention_days)


@dataclass
class RestoreRehearsal:
    """What the hooks see: the topology, the S3 server and the archive on it."""

    topology: LocalTopology
    store: S3Server
    bucket: Bucket
    backups: BackupsOut
    service: ArchiveService
    archiver: Archiver | None = None
    said: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def stop_archiver(self) -> None:
        """What `drctl archive` exiting looks like: the stream ends, nothing more is shipped."""
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=60)


@dataclass
class RestoreResult:
    passed: bool
    rows: list[tuple[str, str]]
    error: str | None
    measured: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"mode": "restore", "outcome": "passed" if self.passed else "failed", "error": self.error,
                "rows": [list(r) for r in self.rows], **self.measured}

    def markdown(self, spec: RehearsalSpec, note: str) -> str:
        lines = [f"## Restore rehearsal of `{spec.stack}`", "", note, "",
                 f"**outcome: {'passed' if self.passed else 'FAILED'}**", ""]
        if self.error:
            lines += [f"The drill stopped: {self.error}", ""]
        if self.rows:
            lines += ["| | |", "|---|---|", *(f"| {name} | {value} |" for name, value in self.rows), ""]
        return "\n".join(lines)


def archive_settings(topo: LocalTopology, store: S3Server, bucket: str, key: bytes,
                     settings: BackupSettings) -> ArchiveSettings:
    """The archiver's settings file as the program renders it for a stack (docs/backups.md): every
    server that may become primary, in failover order, reached through its firewall proxy with the
    replication account; base backups from the DR replica's own socket."""
    user, password = topo.replication_credentials()
    replica = topo.regions[settings.region].database
    return ArchiveSettings.model_validate({
        "bucket": {"endpoint": store.endpoint, "bucket": bucket, "accessKey": store.access_key,
                   "secretKey": store.secret_key, "region": store.region},
        "archiveKey": base64.b64encode(key).decode(),
        "sources": [{"host": HOST, "port": topo.regions[r].db_port, "user": user, "password": password,
                     "caFile": topo.ca.ca} for r in topo.spec.regions],
        "baseClient": [f"--socket={replica.socket}", "--user=root"],
        "spool": str(topo.dir / "archive-spool"),
        "backupRpoSeconds": settings.backup_rpo_seconds, "baseEveryHours": settings.base_every_hours,
        "retentionDays": settings.retention_days,
    })


def archive_wait(settings: ArchiveSettings) -> float:
    """How long the drill waits for the archive to hold its last order: the archiver beside it ships
    a piece every `segment_seconds`, so a few periods are plenty on a loaded machine, and a stopped
    archiver fails the rehearsal in a minute rather than in drill's three backup RPOs."""
    return 4 * settings.segment_seconds + 20


def rehearse_restore(spec: RehearsalSpec, *, say: Callable[[str], None] = print,
                     settle_seconds: float = SETTLE_SECONDS, writer_rate: float = WRITER_RATE,
                     hooks: dict[str, Callable[[RestoreRehearsal], None]] | None = None) -> RestoreResult:
    """Build the topology and its archive, run the restore drill, tear everything down.
    `hooks` (tests): "archiving" runs once the first base backup is in the bucket and the archiver
    streams, before any drill order."""
    settings = BackupSettings.from_stack(spec.stack)
    tools = binaries.find("mariadb-binlog", "mariadb-dump", "mariadb")
    hooks = hooks or {}
    with LocalTopology(spec) as topo, \
            s3_server.start(topo.dir / "object-storage", topo.dir / "object-storage.log") as store:
        name = store.create_bucket(f"wcdr-{spec.stack}-rehearsal-binlogs")
        key = os.urandom(32)
        archive = archive_settings(topo, store, name, key, settings)
        said: list[str] = []

        def archive_say(line: str) -> None:
            said.append(line)
            say(f"      archiver: {line}")
        service = ArchiveService(archive, binlog_tool=tools["mariadb-binlog"], dump_tool=tools["mariadb-dump"],
                                 say=archive_say)
        backups = BackupsOut.model_validate({
            "region": settings.region, "storageRegion": STORAGE_REGION, "bucket": name, "endpoint": store.endpoint,
            "accessKey": store.access_key, "secretKey": store.secret_key,
            "archiveKey": archive.archive_key.get_secret_value(), "backupRpoSeconds": settings.backup_rpo_seconds,
            "baseEveryHours": settings.base_every_hours, "retentionDays": settings.retention_days})
        outputs = topo.outputs().model_copy(update={"backups": backups})
        rb = Runbook(outputs=outputs, state_dir=topo.dir / "state", say=lambda line: say(f"      {line.strip()}"),
                     traffic_factory=lambda: topo.traffic, linode_factory=lambda: topo.linode)
        context = RestoreRehearsal(topo, store, service.bucket, backups, service, said=said)
        say(f"archiving {spec.regions[0]}'s binlog to {name} on {store.endpoint} (rclone serve s3): first base "
            f"backup from the {settings.region} replica")
        try:
            archiver = context.archiver = service.start()
        except (BaseBackupError, StoreUnavailable) as err:
            return RestoreResult(False, [], f"the archive could not start: {err}", {})
        context.thread = threading.Thread(target=service.run, args=(context.stop.is_set, 0.2), daemon=True,
                                          name="archiver")
        context.thread.start()
        try:
            if "archiving" in hooks:
                hooks["archiving"](context)
            try:
                result = restore_drill.drill(rb, backups, key, settle_seconds, writer_rate, say,
                                             archive_wait=archive_wait(archive))
                error = None
            except DRILL_ERRORS as err:
                result, error = {"passed": False, "rows": []}, str(err)
        finally:
            context.stop_archiver()
        health = archiver.health()
        rows = list(result["rows"])
        rows.append(("archiver", f"{archiver.sessions_started} session(s), {archiver.piece_number} pieces, "
                                 f"{'was behind at some point' if archiver.was_behind else 'never behind'}"
                                 + (f", GAP: {health.gap}" if health.gap else ", no gap")))
        passed = bool(result["passed"]) and error is None and health.gap is None
        measured = {k: v for k, v in result.items() if k not in ("passed", "rows")}
        measured.update(archivePieces=archiver.piece_number, archiverSessions=archiver.sessions_started,
                        archiveGap=health.gap, archiveWasBehind=archiver.was_behind)
        return RestoreResult(passed, rows, error, measured)


def objectives_note(spec: RehearsalSpec, settings: BackupSettings) -> str:
    return (f"Rehearsal of `{spec.stack}`'s point-in-time recovery on this machine: the archiver of `drctl archive` "
            f"ships the primary's binlog to a real S3 server on loopback (rclone serve s3), then `drctl drill "
            f"--restore`'s drill restores it onto a scratch MariaDB server. The backup RPO objective is the stack's "
            f"({settings.backup_rpo_seconds} s, not scaled).")

