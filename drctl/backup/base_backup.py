"""Base backups: one consistent snapshot of the shop's schemas, sealed and uploaded with the GTID
position it ends at, so a restore knows exactly where the binlog archive takes over.

Taken on the archiver's host from its own replica (never loading the primary), with
`mariadb-dump --single-transaction --gtid --master-data=2`: InnoDB's consistent snapshot, and the
binlog position of that same snapshot as a GTID position (the replica writes the primary's GTIDs to
its own binlog, log_slave_updates). The system schemas are left out: a restore target keeps its
own accounts.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from drctl.backup import sealing
from drctl.backup.binlog_events import GtidPos
from drctl.backup.manifest import BaseBackup, stamp

SYSTEM_SCHEMAS = frozenset({"mysql", "information_schema", "performance_schema", "sys"})
_GTID_LINE = re.compile(rb"SET GLOBAL gtid_slave_pos\s*=\s*'([0-9,\-\s]*)'")


class BaseBackupError(Exception):
    pass


class _Ends:
    """Passes a stream through and keeps its first and last bytes: mariadb-dump writes the GTID
    position near the top, or (10.11 with --single-transaction) at the very end of the dump."""

    def __init__(self, stream: BinaryIO, keep: int = 1 << 16):
        self.stream, self.keep, self.head, self.tail = stream, keep, b"", b""

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        if len(self.head) < self.keep:
            self.head += data[: self.keep - len(self.head)]
        self.tail = (self.tail + data)[-self.keep:]
        return data


def schemas_to_dump(connect: Callable[[], object]) -> list[str]:
    conn = connect()
    with contextlib.closing(conn), conn.cursor() as cur:
        cur.execute("SHOW DATABASES")
        return sorted(r[0] for r in cur.fetchall() if r[0] not in SYSTEM_SCHEMAS)


def schemas_to_dump_with_client(client_args: Sequence[str], client_tool: str = "mariadb-dump") -> list[str]:
    """The schemas to dump, asked with the mariadb client through the same `client_args` as the dump."""
    client = shutil.which("mariadb", path=str(Path(shutil.which(client_tool) or client_tool).parent)) or "mariadb"
    done = subprocess.run([client, *client_args, "--batch", "--skip-column-names", "-e", "SHOW DATABASES"],
                          capture_output=True, text=True, check=False, timeout=60)
    if done.returncode != 0:
        raise BaseBackupError(f"cannot list the schemas: {done.stderr.strip()[-300:] or done.returncode}")
    return sorted(n for n in done.stdout.split() if n not in SYSTEM_SCHEMAS)


def take_base_backup(bucket, key: bytes, client_args: Sequence[str], schemas: Sequence[str], *,
                     dump_tool: str = "mariadb-dump", work_dir: Path | None = None,
                     say: Callable[[str], None] = print) -> BaseBackup:
    """Dump `schemas` with `client_args` (how mariadb-dump reaches the server: --socket=... or
    --defaults-extra-file=... --host=...), seal, upload; the manifest is written last."""
    if not schemas:
        raise BaseBackupError("nothing to back up: the server has no schema besides the system ones")
    started = datetime.now(UTC)
    label = stamp(started)
    name = f"base/{label}/dump.sql.seg"
    argv = [dump_tool, *client_args, "--single-transaction", "--gtid", "--master-data=2", "--routines",
            "--events", "--triggers", "--hex-blob", "--databases", *schemas]
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="wcdr-base-") as tmp:
        sealed_path = Path(tmp) / "dump.seg"
        errors = Path(tmp) / "stderr"
        with open(errors, "wb") as err, subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err) as dump:
            ends = _Ends(dump.stdout)
            with open(sealed_path, "wb") as out:
                sealed = sealing.seal_stream(key, name, ends, out)
            code = dump.wait()
        if code != 0:
            said = errors.read_text(errors="replace").strip().splitlines()[-5:]
            raise BaseBackupError(f"mariadb-dump exited with {code}: {' / '.join(said) or '(nothing)'}")
        found = _GTID_LINE.search(ends.head) or _GTID_LINE.search(ends.tail)
        if found is None:
            raise BaseBackupError("mariadb-dump wrote no GTID position (is binary logging on, with GTIDs?)")
        finished = time.time()
        base = BaseBackup(stamp=label, gtid_pos=GtidPos.parse(found.group(1).decode()), taken_at=finished,
                          size=sealed.size, sha256_plain=sealed.sha256_plain,
                          sha256_sealed=sealing.sha256_file(sealed_path), schemas=tuple(schemas))
        bucket.put_file(base.name, sealed_path)
    bucket.put_json(base.manifest_name, base.to_json())
    say(f"base backup {label}: {len(schemas)} schemas, {base.size} bytes, GTID position {base.gtid_pos}")
    return base
