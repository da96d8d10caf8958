"""`drctl drill --restore`: prove the archive restores, on the stack itself, without touching it.

    drctl drill -s dr-test --restore --yes [--settle 30] [--writer-rate 20] [-o json]

Sequence-numbered orders (drctl/drill/orders.py) go to the writable primary for --settle seconds,
then, from the next whole second on, for --settle seconds more: the restore point T is the last
second of the first half. The drill waits until the archive holds the last order (the time that
took is the measured backup RPO), restores the archive to T onto a scratch server, checks that
every order committed at or before T is there and none after, and deletes the scratch server. The
scratch server is a database Linode made through the Linode API (`--restore-on linode`, the
default; drctl/backup/scratch_linode.py), deleted even when the check fails or the drill is
interrupted unless `--keep-scratch`; a run that finds the scratch Linode of a killed run carries on
with it. `--restore-on local` restores onto a MariaDB server on this machine instead (a MariaDB
archive only: a MySQL 8 archive is refused before anything starts). Either family works: the drill
reads the primary's own position in its dialect (drctl/backup/server_position.py) and waits until
the archive's position contains it (MySQL: GTID-set containment). The report's rows: restore time
and backup RPO beside the orders checked.
Exit 0 when the check holds, 1 when it does not, 2 for a bad command line or a stack without an
archive. Nothing is changed on the stack but the drill's own orders table.

This module adds `--restore` to the `drill` command (the drill package itself never imports the
archive: the command line wires the two together, drctl/cli.py).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drctl.backup import scratch_command, sealing
from drctl.backup import scratch_linode as scratch
from drctl.backup.binlog_events import Flavour, GtidPos, MysqlGtidPos, parse_position
from drctl.backup.command import scratch_server
from drctl.backup.restore import RestoreError, apply_restore, plan_restore
from drctl.backup.server_position import binlog_position, server_flavour
from drctl.cloud.archive_status import STATUS, archive_bucket
from drctl.cloud.linode import LinodeAPIError
from drctl.cloud.s3_bucket import ObjectMissing, StoreUnavailable
from drctl.drill import orders
from drctl.drill.command import DEFAULT_WRITER_RATE
from drctl.mysql.topology import connect
from drctl.runbook.context import runbook_from_args
from drctl.stack.command_line import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, fail, printer
from drctl.stack.outputs import OutputsError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add --restore to the drill command, which drctl/drill/command.py declared."""
    p = subparsers.choices["drill"]
    p.add_argument("--restore", action="store_true",
                   help="instead of a failover: restore the archive to a moment inside a burst of orders, onto a "
                        "scratch server (--restore-on), and check them (docs/backups.md); uses --settle, "
                        "--writer-rate, --yes/--dry-run")
    p.add_argument("--restore-on", choices=("linode", "local"), default="linode",
                   help="with --restore: the scratch server, a database Linode of the archive's server family "
                        "made for the drill (default) or a MariaDB server on this machine (MariaDB archives only)")
    scratch_command.add_scratch_arguments(p, keep_flag=True)
    failover = p.get_default("func")
    p.set_defaults(func=lambda args: run(args) if args.restore else refuse_scratch_flags(args) or failover(args))


def refuse_scratch_flags(args: argparse.Namespace) -> int | None:
    """The failover drill makes no scratch server: a scratch flag without --restore is a mistake
    (EXIT_USAGE), not something to ignore."""
    defaults = (("--restore-on", args.restore_on, "linode"), ("--scratch-type", args.scratch_type, scratch.DEFAULT_TYPE),
                ("--allow-from", args.allow_from, []), ("--keep-scratch", args.keep_scratch, False),
                ("--scratch-timeout", args.scratch_timeout, scratch_command.DEFAULT_TIMEOUT))
    given = [flag for flag, value, default in defaults if value != default]
    if not given:
        return None
    fail("drill", f"{given[0]} is for drill --restore (the failover drill makes no scratch server): add --restore "
                  f"or leave out {given[0]}")
    return EXIT_USAGE


class _Writer:
    """One thread of sequence-numbered orders at `rate`/s into the first database that takes them."""

    def __init__(self, sink: orders.DatabaseOrderSink, first_seq: int, rate: float):
        self.sink, self.seq, self.rate = sink, first_seq, rate
        self.acknowledged: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="restore-drill-orders")

    def _run(self) -> None:
        while not self._stop.wait(1 / self.rate):
            try:
                self.sink.write(self.seq)
            except orders.OrderRejected:
                continue
            self.acknowledged.append(self.seq)
            self.seq += 1

    def __enter__(self) -> _Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.sink.close()


def run(args: argparse.Namespace) -> int:
    say = printer(args)
    rate = DEFAULT_WRITER_RATE if args.writer_rate is None else args.writer_rate  # the failover drill's default too
    try:
        if not args.dry_run and not args.yes:
            raise UsageError("a restore drill writes orders to the stack's primary: pass --yes to act, or --dry-run "
                             "to see the plan")
        rb = runbook_from_args(args, say)
        backups = rb.outputs.backups
        if backups is None:
            raise OutputsError(f"stack {rb.outputs.stack!r} has no binlog archive (backups.enabled is false, or it "
                               "was deployed before point-in-time recovery existed)")
        key = sealing.parse_key(backups.archive_key.get_secret_value())
        request = linode_request(args, rb.outputs) if args.restore_on == "linode" else None
        api = scratch_command.linode_api() if request is not None and not args.dry_run else None
        if request is None and (why := local_refusal(archive_flavour(archive_bucket(backups)), backups.bucket)):
            raise UsageError(why)
    except (UsageError, OutputsError, sealing.ArchiveKeyError, scratch.ScratchError) as err:
        fail("drill", str(err))
        return EXIT_USAGE
    if args.dry_run:
        where = "a scratch Linode" if request is not None else "a scratch server on this machine"
        say(f"would write orders for {args.settle:g} s at {rate:g}/s, pick a restore point, write "
            f"{args.settle:g} s more, wait for the archive in {backups.bucket}, restore to the point on {where}, "
            "check the orders, delete the server")
        if request is not None:
            for line in scratch_command.plan_lines(request, keep=args.keep_scratch):
                say(line.replace(scratch.FAMILIES[request.family]["name"], "the archive's server family"))
        return EXIT_OK
    linode = None
    if request is not None and api is not None:
        def linode(plan, say):
            family = plan.flavour.value
            return scratch.scratch_linode(api, dataclasses.replace(request, family=family), say,
                                          timeout=args.scratch_timeout, keep=args.keep_scratch)
    try:
        result = drill(rb, backups, key, args.settle, rate, say, scratch=linode)
    except (RestoreError, sealing.ChecksumError, StoreUnavailable, ObjectMissing, TimeoutError, LinodeAPIError) as err:
        fail("drill", str(err))
        return EXIT_FAILED
    if args.output == "json":
        print(json.dumps(result, indent=2))
    else:
        for name, value in result["rows"]:
            say(f"  {name:<34} {value}")
        say("PASSED" if result["passed"] else "FAILED")
    return EXIT_OK if result["passed"] else EXIT_FAILED


def archive_flavour(bucket) -> Flavour | None:
    """The server family whose binlog the archive holds, as its status.json says; None when unknown:
    before the archiver has shipped anything, or while the store does not answer (the drill waits for
    the store anyway, and then checks the family of every status it reads, `archive_holds`)."""
    try:
        return Flavour.parse(bucket.get_json(STATUS).get("flavour"))
    except (ObjectMissing, StoreUnavailable):
        return None


def local_refusal(flavour: Flavour | None, where: str) -> str | None:
    """Why an archive of `flavour` cannot be drilled on this machine: the scratch server here is
    MariaDB (drctl/local), and a MySQL 8 binlog replays only into MySQL 8, which the drill makes on a
    scratch Linode."""
    if flavour is not Flavour.MYSQL:
        return None
    return (f"--restore-on local: the archive in {where} holds a MySQL 8 binlog, but the scratch server on this "
            "machine is MariaDB, which cannot replay it: use --restore-on linode (the default), which makes a "
            "MySQL 8 scratch Linode")


def linode_request(args: argparse.Namespace, outputs) -> scratch.ScratchRequest:
    """The drill's scratch Linode: one label per stack, so a run after a killed one finds it."""
    return scratch.ScratchRequest(outputs.stack, scratch.scratch_label(outputs.stack, "drill"), outputs.backups.region,
                                  args.scratch_type, "mariadb", scratch_command.sources(outputs, args.allow_from))


def drill(rb, backups, key: bytes, settle: float, rate: float, say, scratch=None,
          archive_wait: float | None = None) -> dict[str, Any]:
    """`scratch(plan, say)`: a context manager yielding (server, restore Target), the scratch server
    to restore onto; default a MariaDB server on this machine. `archive_wait`: how long the archive
    may take to hold the last order (default: three backup RPOs, at least 120 s; the rehearsal,
    whose archiver runs beside it, waits less)."""
    servers = list(rb.servers.items())
    targets = [(region, lambda s=server: connect(s, timeout=2.0)) for region, server in servers]
    primary = _writable(targets)
    bucket = archive_bucket(backups)
    with contextlib.closing(primary()) as conn:
        flavour = server_flavour(conn)
    _check_family(archive_flavour(bucket), flavour, backups.bucket)
    if scratch is None and (why := local_refusal(flavour, backups.bucket)):
        raise RestoreError(why)  # nothing written yet
    with contextlib.closing(primary()) as conn:
        orders.create_schema(conn)
        with conn.cursor() as cur:
            cur.execute("SELECT COALESCE(MAX(seq), 0) FROM drctl_drill.orders")
            first = int(cur.fetchone()[0]) + 1
    say(f"writing orders from #{first} for {settle:g} s, a restore point, then {settle:g} s more")
    with _Writer(orders.DatabaseOrderSink(targets), first, rate) as writer:
        _sleep_until(time.time() + settle)
        point = int(time.time())
        _sleep_until(point + 1)  # orders of the second half are all in later seconds
        _sleep_until(time.time() + settle)
    written = _written(primary, writer.acknowledged)
    last_commit = max(written.values())
    say(f"{len(written)} orders written; waiting for the archive in {backups.bucket} to hold them")
    target_pos = _position(primary, flavour)
    deadline = time.time() + (archive_wait if archive_wait is not None else max(120.0, 3.0 * backups.backup_rpo_seconds))
    while True:
        # No status yet (an archiver that has not shipped its first piece) is waited for too.
        with contextlib.suppress(StoreUnavailable, ObjectMissing, KeyError, ValueError):
            if archive_holds(bucket.get_json(STATUS), flavour, target_pos, backups.bucket):
                break
        if time.time() > deadline:
            raise TimeoutError(f"the archive did not reach the drill's last order within {deadline - last_commit:.0f} s")
        time.sleep(1)
    backup_rpo = time.time() - last_commit
    started = time.monotonic()
    plan = plan_restore(bucket, to_time=datetime.fromtimestamp(point, UTC))
    with tempfile.TemporaryDirectory(prefix="wcdr-restore-drill-") as tmp, contextlib.ExitStack() as scratch_stack:
        making = time.monotonic()
        _server, target = scratch_stack.enter_context(
            scratch(plan, say) if scratch is not None else scratch_server(Path(tmp) / "server", False, say))
        scratch_seconds = time.monotonic() - making
        started += scratch_seconds  # making the scratch server is not part of the restore
        apply_restore(bucket, key, plan, target, work_dir=Path(tmp), say=say)
        restore_seconds = time.monotonic() - started  # deleting the scratch server is not either
        with contextlib.closing(target.connect()) as conn:
            present = orders.orders_present(conn, written)
    before = {seq for seq, at in written.items() if int(at) <= point}
    after = set(written) - before
    missing, extra = sorted(before - present), sorted(after & present)
    passed = not missing and not extra and bool(before) and bool(after)
    at = datetime.fromtimestamp(point, UTC).isoformat().replace("+00:00", "Z")
    rows = [
        ("restore point", at),
        ("orders written", f"{len(written)} (#{min(written)}..#{max(written)})"),
        ("orders at or before the point", f"{len(before)}, restored {len(before) - len(missing)}"
                                          + (f", MISSING {missing[:10]}" if missing else "")),
        ("orders after the point", f"{len(after)}, restored {len(extra)}" + (" (must be 0)" if extra else "")),
        ("restore time", f"{restore_seconds:.1f} s (base {plan.base.stamp}, {len(plan.files)} binlog files)"),
        ("backup RPO (last order -> archived)", f"{backup_rpo:.1f} s (objective {backups.backup_rpo_seconds} s)"),
        ("scratch server", f"{target.describe}, ready in {scratch_seconds:.1f} s"),
    ]
    return {"passed": passed, "restorePoint": at, "restoreSeconds": round(restore_seconds, 1),
            "backupRpoSeconds": round(backup_rpo, 1), "missing": missing, "extra": extra, "rows": rows}


def _writable(targets):
    for _region, connect_to in targets:
        with contextlib.suppress(Exception), contextlib.closing(connect_to()) as conn, conn.cursor() as cur:
            cur.execute("SELECT @@global.read_only")
            if not int(cur.fetchone()[0]):
                return connect_to
    raise RestoreError("no database of the stack accepts writes: the drill needs a writable primary")


def _written(primary, seqs: list[int]) -> dict[int, float]:
    with contextlib.closing(primary()) as conn, conn.cursor() as cur:
        found: dict[int, float] = {}
        for i in range(0, len(seqs), 5000):
            chunk = seqs[i:i + 5000]
            marks = ", ".join(["%s"] * len(chunk))
            cur.execute(f"SELECT seq, UNIX_TIMESTAMP(written_at) FROM drctl_drill.orders WHERE seq IN ({marks})",  # noqa: S608
                        chunk)
            found.update({int(s): float(t) for s, t in cur.fetchall()})
    return found


def _position(primary, flavour: Flavour) -> GtidPos | MysqlGtidPos:
    """The primary's own binlog position after the drill's orders (MySQL: its gtid_executed set)."""
    with contextlib.closing(primary()) as conn:
        return binlog_position(conn, flavour)


def archive_holds(status: dict[str, Any], flavour: Flavour, target: GtidPos | MysqlGtidPos, where: str) -> bool:
    """Whether the archive's status.json says it holds every transaction of `target`, the primary's
    position: per domain for MariaDB, GTID-set containment for MySQL. An archive of the other family
    never will: refused."""
    _check_family(Flavour.parse(status.get("flavour")), flavour, where)
    return parse_position(flavour, status["archivedPos"]).holds_all(target)


def _check_family(held: Flavour | None, flavour: Flavour, where: str) -> None:
    if held is not None and held is not flavour:
        raise RestoreError(f"the archive in {where} holds a {held.value} binlog but the stack's primary is a "
                           f"{flavour.value} server: it cannot hold the drill's orders (backups.bucket of another "
                           "stack, or an archive from before the database changed family)")


def _sleep_until(moment: float) -> None:
    while (left := moment - time.time()) > 0:
        time.sleep(min(left, 0.5))
