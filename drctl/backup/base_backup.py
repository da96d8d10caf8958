"""Base backups: one consistent snapshot of the shop's schemas, sealed and uploaded with the GTID
position it ends at, so a restore knows exactly where the binlog archive takes over.

Taken on the archiver's host from its own replica (never loading the primary), with
`mariadb-dump --single-transaction --gtid --master-data=2`: InnoDB's consistent snapshot, and the
binlog position of that same snapshot as a GTID position (the replica writes the primary's GTIDs to
its own binlog, log_slave_updates). The system schemas are left out: a restore target keeps its
own accounts.

From a MySQL 8 replica (`flavour=Flavour.MYSQL`) the dump is MySQL's own:

    mysqldump --single-transaction --set-gtid-purged=ON --source-data=2 ...

and its position is the GTID set of the snapshot, from the dump's
`SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '<set>';`. mysqldump 8.0.32 and later read that set under
a brief FLUSH TABLES WITH READ LOCK taken with the snapshot (before, a commit in between could put
a transaction in the set but not in the data: MySQL bug 33630199), so the dump needs 8.0.32+ and
the RELOAD privilege, which the local root account has.
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
from drctl.backup.binlog_events import Flavour, GtidPos, MysqlGtidPos
from drctl.backup.manifest import BaseBackup, stamp

SYSTEM_SCHEMAS = frozenset({"mysql", "information_schema", "performance_schema", "sys"})
_GTID_LINE = re.compile(rb"SET GLOBAL gtid_slave_pos\s*=\s*'([0-9,\-\s]*)'")
# mysqldump 8.0: the '+' (add to gtid_purged) is in a version comment; a set of several servers
# continues over lines ("uuid1:1-5,\nuuid2:1-9"). Anchored at a line start: a commented-out line
# (--set-gtid-purged=COMMENTED) is no position.
_MYSQL_GTID_LINE = re.compile(rb"^SET @@GLOBAL\.GTID_PURGED\s*=\s*(?:/\*!80000 '\+'\*/\s*)?'([0-9a-fA-F:,\-\s]*)'",
                              re.MULTILINE)


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


def schemas_to_dump_with_client(client_args: Sequence[str], client_tool: str = "mariadb-dump",
                                client_name: str = "mariadb") -> list[str]:
    """The schemas to dump, asked with the mariadb (MySQL: `client_name="mysql"`) client beside the
    dump tool, through the same `client_args` as the dump."""
    client = shutil.which(client_name, path=str(Path(shutil.which(client_tool) or client_tool).parent)) or client_name
    done = subprocess.run([client, *client_args, "--batch", "--skip-column-names", "-e", "SHOW DATABASES"],
                          capture_output=True, text=True, check=False, timeout=60)
    if done.returncode != 0:
        raise BaseBackupError(f"cannot list the schemas: {done.stderr.strip()[-300:] or done.returncode}")
    return sorted(n for n in done.stdout.split() if n not in SYSTEM_SCHEMAS)


def dump_argv(flavour: Flavour, dump_tool: str, client_args: Sequence[str], schemas: Sequence[str]) -> list[str]:
    """The dump's command line: one consistent InnoDB snapshot with its GTID position, and the
    routines, events and triggers of `schemas`."""
    if flavour is Flavour.MYSQL:
        return [dump_tool, *client_args, "--single-transaction", "--set-gtid-purged=ON", "--source-data=2",
                "--routines", "--events", "--triggers", "--hex-blob", "--databases", *schemas]
    return [dump_tool, *client_args, "--single-transaction", "--gtid", "--master-data=2", "--routines",
            "--events", "--triggers", "--hex-blob", "--databases", *schemas]


def dump_position(flavour: Flavour, head: bytes, tail: bytes) -> GtidPos | MysqlGtidPos | None:
    """The GTID position a dump's text states (near its top, or at its end), None when it has none."""
    if flavour is Flavour.MYSQL:
        found = _MYSQL_GTID_LINE.search(head) or _MYSQL_GTID_LINE.search(tail)
        return None if found is None else MysqlGtidPos.parse(found.group(1).decode())
    found = _GTID_LINE.search(head) or _GTID_LINE.search(tail)
    return None if found is None else GtidPos.parse(found.group(1).decode())


def take_base_backup(bucket, key: bytes, client_args: Sequence[str], schemas: Sequence[str], *,
                     dump_tool: str = "mariadb-dump", work_dir: Path | None = None,
                     say: Callable[[str], None] = print, flavour: Flavour = Flavour.MARIADB) -> BaseBackup:
    """Dump `schemas` with `client_args` (how mariadb-dump reaches the server: --socket=... or
    --defaults-extra-file=... --host=...), seal, upload; the manifest is written last. A MySQL 8
    server (`flavour`) is dumped with `dump_tool` mysqldump."""
    if not schemas:
        raise BaseBackupError("nothing to back up: the server has no schema besides the system ones")
    started = datetime.now(UTC)
    label = stamp(started)
    name = f"base/{label}/dump.sql.seg"
    argv = dump_argv(flavour, dump_tool, client_args, schemas)
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
            raise BaseBackupError(f"{Path(dump_tool).name} exited with {code}: {' / '.join(said) or '(nothing)'}")
        position = dump_position(flavour, ends.head, ends.tail)
        if position is None:
            raise BaseBackupError(f"{Path(dump_tool).name} wrote no GTID position (is binary logging on, with GTIDs?)")
        if flavour is Flavour.MYSQL and not position:
            raise BaseBackupError(f"{Path(dump_tool).name} wrote an empty GTID set (gtid_mode must be ON on the "
                                  "server the base backup is taken from)")
        finished = time.time()
        base = BaseBackup(stamp=label, gtid_pos=position, taken_at=finished,
                          size=sealed.size, sha256_plain=sealed.sha256_plain,
                          sha256_sealed=sealing.sha256_file(sealed_path), schemas=tuple(schemas), flavour=flavour)
        bucket.put_file(base.name, sealed_path)
    bucket.put_json(base.manifest_name, base.to_json())
    say(f"base backup {label}: {len(schemas)} schemas, {base.size} bytes, GTID position {base.gtid_pos}")
    return base
