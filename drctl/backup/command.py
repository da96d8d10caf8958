"""`drctl restore`: point-in-time recovery from the cross-region binlog archive.

    drctl restore -s prod --to-time '2026-11-29 14:03:00' --target local:./restored
    drctl restore -s prod --to-gtid 0-1-48211 --target local:./restored
    drctl restore -s prod --to-time 2026-11-29T14:03:00Z --tables wp_wc_orders,wp_wc_order_items --export orders.sql
    drctl restore -s prod --to-time 2026-11-29T14:03:00Z --dry-run
    drctl restore -s prod --to-time 2026-11-29T14:03:00Z --target linode --allow-from 203.0.113.7/32 --yes
    drctl restore -s prod --list-scratch
    drctl restore -s prod --delete-scratch drctl-restore-prod-20261129T140300Z --yes

Times are UTC (a time without an offset is read as UTC) and whole seconds: every transaction whose
binlog time is at or before it is restored. `--target local:DIR` starts a MariaDB server in DIR
(which must be new or empty), restores into it, stops it and prints how to start it again for
inspection. `--target linode[:REGION]` creates a scratch database Linode through the Linode API
(default region: the archive's; `--scratch-type`; MySQL 3306 open to access.operatorCidrs and
`--allow-from` only), restores into it over verified TLS and keeps it, printing how to connect
(`--yes`: it is a state change that costs money; `--list-scratch`, `--delete-scratch LABEL`).
`--tables` restores into a throwaway local server and writes just those tables, as
they were at the target, to the `--export` file, to load into the live shop. `--dry-run` reads the
manifests only and prints which base backup and which binlog pieces would be used. Nothing is
written to the archive or to the live shop, ever. docs/backups.md has the whole story.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from drctl.backup import scratch_command, sealing
from drctl.backup import scratch_linode as scratch
from drctl.backup.binlog_events import Gtid, MysqlGtid, parse_any_gtid
from drctl.backup.restore import RestoreError, Target, apply_restore, check_restore_tools, export_tables, plan_restore
from drctl.cloud import archive_status
from drctl.cloud.linode import LinodeAPIError
from drctl.cloud.s3_bucket import Bucket, ObjectMissing, StoreUnavailable
from drctl.stack.command_line import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    add_output_argument,
    add_stack_arguments,
    fail,
    printer,
    source_flag,
    stack_source,
    writable_dir,
)
from drctl.stack.outputs import OutputsError, StackOutputs, load_outputs

RESTORED_SERVER_ID = 4_000_000_002  # never a shop server's id: a restored binlog keeps the originals


def utc_time(text: str) -> datetime:
    """An argparse type: an ISO 8601 time, UTC unless it carries an offset."""
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time (got {text!r}; allowed: an ISO 8601 time such as 2026-11-29T14:03:00Z, UTC unless "
            "it has an offset)") from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def gtid(text: str) -> Gtid | MysqlGtid:
    try:
        return parse_any_gtid(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a GTID (got {text!r}; allowed: a MariaDB GTID domain-server-sequence such as 0-1-48211, or a "
            "MySQL GTID server_uuid:number such as 3e11fa47-71ca-11e1-9e33-c80aa9429562:48211)") from None


TARGETS = "local:DIR (a new or empty directory) or linode[:REGION]"


@dataclasses.dataclass(frozen=True)
class LinodeTarget:
    """`--target linode[:REGION]`: a scratch Linode (drctl/backup/scratch_linode.py)."""

    region: str | None  # None: the archive's region


def restore_target(text: str) -> Path | LinodeTarget:
    if text == "linode" or text.startswith("linode:"):
        region = text[len("linode:"):] if text.startswith("linode:") else None
        try:
            return LinodeTarget(scratch.region_id(region) if region is not None else None)
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"{err}; allowed targets: {TARGETS}") from None
    return local_target(text)


def local_target(text: str) -> Path:
    if not text.startswith("local:") or not text[len("local:"):]:
        raise argparse.ArgumentTypeError(f"unknown target (got {text!r}; allowed: {TARGETS})")
    path = Path(text[len("local:"):])
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise argparse.ArgumentTypeError(f"{path} exists and is not an empty directory (got {text!r}; allowed: "
                                         "local:DIR, a new or empty directory)")
    writable_dir(str(path))
    return path


def table_list(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(","))
    bad = [n for n in names if not n or any(not (c.isalnum() or c in "_$.") for c in n) or n.count(".") > 1]
    if bad:
        raise argparse.ArgumentTypeError(f"not a table name: {bad[0]!r} (got {text!r}; allowed: TABLE or SCHEMA.TABLE, "
                                         "comma-separated)")
    return names


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("restore", help="point-in-time recovery from the cross-region binlog archive",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stack_arguments(p)
    to = p.add_mutually_exclusive_group()
    to.add_argument("--to-time", type=utc_time, metavar="TIME",
                    help="restore every transaction at or before TIME (ISO 8601, UTC unless it has an offset)")
    to.add_argument("--to-gtid", type=gtid, metavar="GTID", help="restore up to and including this transaction")
    p.add_argument("--target", type=restore_target, metavar="local:DIR|linode[:REGION]",
                   help="local:DIR starts a MariaDB server in DIR (new or empty) and restores into it; linode[:REGION] "
                        "creates a scratch database Linode (default region: the archive's) and restores into it")
    p.add_argument("--tables", type=table_list, metavar="T1,T2",
                   help="export only these tables (TABLE or SCHEMA.TABLE) as they were, to --export FILE")
    p.add_argument("--export", type=Path, metavar="FILE", help="with --tables: the SQL file to write (must not exist)")
    p.add_argument("--work-dir", type=writable_dir, metavar="DIR",
                   help="where downloads are kept while restoring (default: the system's temp directory)")
    p.add_argument("--dry-run", action="store_true", help="print the base backup and binlog pieces it would use")
    scratch_command.add_scratch_arguments(p, keep_flag=False)
    p.add_argument("--yes", action="store_true", help="with --target linode: create the scratch Linode (it costs "
                                                      "money while it exists); with --delete-scratch: delete it")
    admin = p.add_mutually_exclusive_group()
    admin.add_argument("--list-scratch", action="store_true", help="list this stack's scratch Linodes")
    admin.add_argument("--delete-scratch", metavar="LABEL",
                       help="delete this scratch Linode, its firewall and its credentials on this machine (--yes)")
    add_output_argument(p)
    p.set_defaults(func=run)


def check_flags(args: argparse.Namespace) -> None:
    stack_source(args)
    if args.list_scratch or args.delete_scratch:
        given = [f for f, v in (("--to-time", args.to_time), ("--to-gtid", args.to_gtid), ("--target", args.target),
                                ("--tables", args.tables)) if v]
        if given:
            raise UsageError(f"{'--list-scratch' if args.list_scratch else '--delete-scratch'} restores nothing: leave "
                             f"out {', '.join(given)}")
        return
    if args.to_time is None and args.to_gtid is None:
        raise UsageError("one of the arguments --to-time --to-gtid is required")
    if args.tables and args.export is None:
        raise UsageError("--tables needs --export FILE (where the tables' SQL goes)")
    if args.export is not None and not args.tables:
        raise UsageError("--export needs --tables T1,T2 (which tables to export)")
    if args.export is not None and args.export.exists():
        raise UsageError(f"--export: {args.export} exists (allowed: a new file; drctl never overwrites one)")
    if args.export is not None and not args.export.parent.is_dir():
        raise UsageError(f"--export: no directory {args.export.parent} (got {args.export}; allowed: a new file in "
                         "an existing directory)")
    if args.tables and args.target is not None:
        raise UsageError("--tables restores into a throwaway server: leave out --target")
    if not args.dry_run and not args.tables and args.target is None:
        raise UsageError("give --target local:DIR or --target linode[:REGION] (where to restore), --tables with "
                         "--export, or --dry-run")
    if isinstance(args.target, LinodeTarget) and not args.dry_run and not args.yes:
        raise UsageError("--target linode creates a Linode, which costs money while it exists: pass --yes to create "
                         "it, or --dry-run to see the plan")


def archive_bucket(outputs: StackOutputs, flag: str) -> tuple[Bucket, bytes]:
    backups = outputs.backups
    if backups is None:
        raise OutputsError(f"{flag}: stack {outputs.stack!r} has no binlog archive (backups.enabled is false, or "
                           "it was deployed before point-in-time recovery existed)")
    return archive_status.archive_bucket(backups), sealing.parse_key(backups.archive_key.get_secret_value())


def run(args: argparse.Namespace) -> int:
    say = printer(args)
    try:
        check_flags(args)
        stack, outputs_file = stack_source(args)
        outputs = load_outputs(stack, outputs_file)
        if args.list_scratch or args.delete_scratch:
            return scratch_command.list_and_delete(args, outputs, say)
        bucket, key = archive_bucket(outputs, source_flag(args))
        request = linode_request(args, outputs) if isinstance(args.target, LinodeTarget) else None
    except (UsageError, OutputsError, sealing.ArchiveKeyError, scratch.ScratchError) as err:
        fail("restore", str(err))
        return EXIT_USAGE
    try:
        plan = plan_restore(bucket, to_time=args.to_time, to_gtid=args.to_gtid)
    except (RestoreError, StoreUnavailable, ObjectMissing) as err:
        fail("restore", str(err))
        return EXIT_FAILED
    if request is not None:
        request = dataclasses.replace(request, family=plan.flavour.value)
    lines = plan.lines() + (scratch_command.plan_lines(request, keep=True) if request is not None else [])
    if args.dry_run:
        if args.output == "json":
            print(json.dumps({"plan": lines}, indent=2))
        else:
            for line in lines:
                say(line)
        return EXIT_OK
    for line in plan.lines():
        say(line)
    try:
        check_restore_tools(plan, local_target=request is None)  # before any server is started or object fetched
        if request is not None:
            report = restore_to_linode(args, request, bucket, key, plan, say)
        else:
            report = restore_locally(args, bucket, key, plan, say)
    except (RestoreError, sealing.ChecksumError, StoreUnavailable, ObjectMissing, LinodeAPIError) as err:
        kept = ""
        if request is not None and scratch.scratch_dir(request.stack, request.label).exists():
            kept = (f" (scratch Linode {request.label} is kept: run the same command again to carry on with it, or "
                    f"delete it with `drctl restore {source_flag(args)} --delete-scratch {request.label} --yes`)")
        fail("restore", f"{err}{kept}")
        return EXIT_FAILED
    if args.output == "json":
        print(json.dumps(report, indent=2))
    return EXIT_OK


def linode_request(args: argparse.Namespace, outputs: StackOutputs) -> scratch.ScratchRequest:
    """The scratch Linode `--target linode[:REGION]` asks for; its family is the archive's, known
    once the plan is read."""
    assert outputs.backups is not None
    moment = scratch.moment_label(args.to_time, args.to_gtid)
    return scratch.ScratchRequest(outputs.stack, scratch.scratch_label(outputs.stack, moment),
                                  args.target.region or outputs.backups.region, args.scratch_type, "mariadb",
                                  scratch_command.sources(outputs, args.allow_from))


def restore_to_linode(args: argparse.Namespace, request: scratch.ScratchRequest, bucket: Bucket, key: bytes, plan,
                      say) -> dict:
    api = scratch_command.linode_api()
    with scratch.scratch_linode(api, request, say, timeout=args.scratch_timeout, keep=True) as (server, target):
        report = apply_restore(bucket, key, plan, target, work_dir=args.work_dir, say=say)
        for line in report.lines():
            say(line)
        say(server.how_to_connect())
        say(f"it costs money while it exists: delete it with `drctl restore {source_flag(args)} --delete-scratch "
            f"{server.label} --yes`")
        return {"target": report.target, "base": report.base, "gtidPos": report.gtid_pos,
                "lastTransactionTime": report.last_transaction_time, "rowCounts": report.row_counts,
                "objects": report.objects, "seconds": round(report.seconds, 1),
                "scratch": {"label": server.label, "linodeId": server.instance_id, "address": server.address,
                            "port": scratch.PORT, "user": scratch.USER, "clientFile": str(server.client_file),
                            "caFile": str(server.ca_file), "connect": list(server.client_args())}}


def restore_locally(args: argparse.Namespace, bucket: Bucket, key: bytes, plan, say) -> dict:
    keep = args.target is not None
    base = args.target if keep else Path(tempfile.mkdtemp(prefix="wcdr-restore-target-", dir=args.work_dir))
    with scratch_server(base, keep, say) as (server, target):
        report = apply_restore(bucket, key, plan, target, work_dir=args.work_dir, say=say)
        for line in report.lines():
            say(line)
        doc = {"target": report.target, "base": report.base, "gtidPos": report.gtid_pos,
               "lastTransactionTime": report.last_transaction_time, "rowCounts": report.row_counts,
               "objects": report.objects, "seconds": round(report.seconds, 1)}
        if args.tables:
            tables = resolve_tables(server, args.tables)
            export_tables(target, tables, args.export)
            say(f"wrote {', '.join(f'{s}.{t}' for s, t in tables)} as of the target to {args.export}")
            doc["export"] = str(args.export)
        if keep:
            say(f"stopped the server; start it again with: mariadbd --no-defaults --datadir={server.datadir} "
                f"--socket={server.socket} --skip-networking, then: mariadb --socket={server.socket} -u root")
        return doc


@contextlib.contextmanager
def scratch_server(base: Path, keep: bool, say):
    """A MariaDB server of its own in `base` (drctl/local), stopped on the way out, and
    its files removed unless `keep`: yields (server, restore Target)."""
    from drctl.local import mariadb as local

    base.mkdir(parents=True, exist_ok=True)
    server = None
    try:
        say(f"starting a MariaDB server in {base}")
        tls = local.LocalCA.create(base / "tls")
        server = local.MariaDBServer(base, RESTORED_SERVER_ID, tls, name="restored")
        server.start(timeout=120)
        yield server, Target((f"--socket={server.socket}", "--user=root"), server.connect, f"local server in {base}")
    finally:
        if server is not None:
            server.stop()
            server.release()
        if not keep:
            shutil.rmtree(base, ignore_errors=True)


def resolve_tables(server, names: tuple[str, ...]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    with contextlib.closing(server.connect()) as conn, conn.cursor() as cur:
        for name in names:
            schema, _, table = name.rpartition(".")
            if schema:
                cur.execute("SELECT table_schema, table_name FROM information_schema.tables "
                            "WHERE table_schema = %s AND table_name = %s", (schema, table))
            else:
                cur.execute("SELECT table_schema, table_name FROM information_schema.tables WHERE table_name = %s "
                            "AND table_schema NOT IN ('mysql','information_schema','performance_schema','sys')", (table,))
            rows = list(cur.fetchall())
            if not rows:
                raise RestoreError(f"--tables: no table {name!r} in the restored data")
            if len(rows) > 1:
                raise RestoreError(f"--tables: {name!r} is in several schemas ({', '.join(r[0] for r in rows)}): "
                                   "name it SCHEMA.TABLE")
            found.append((rows[0][0], rows[0][1]))
    return found
