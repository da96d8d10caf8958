"""`drctl rehearse`: the drill, end to end, on this machine, before anyone touches a real stack.

    drctl rehearse [-s dr-test] [--planned | --unplanned | --automatic] [--fault F] [--time-scale 0.02]
                   [--report-dir DIR] [-o text|json]
    drctl rehearse --fault all-regions-down [-s dr-test] ...
    drctl rehearse --restore [-s dr-test] ...

Builds the local topology of drctl/rehearsal/topology.py from the stack file (real MariaDB,
HAProxy and shop processes, health-check periods scaled by --time-scale), then runs the very drill
`drctl drill` runs (drctl/drill/drill.py) against it: the runbook's promote and failback through the
HAProxy stand-ins of Cloudflare and the Linode API, orders written through the front door.

- `--planned` (default): the primary region's web tier fails (`--fault`, default nodes-reject) while
  its database stays reachable, so the promotion is the planned switchover: no order may be lost.
- `--fault all-regions-down`: no failover: every region's NodeBalancer nodes are rejected at once,
  and shoppers' requests (through the edge: the fallback page's Worker under Node, the script the
  program uploads) must get the maintenance page until the primary region returns; the report
  shows the page and the recovery time (drctl/drill/outage.py).
- `--unplanned`: the primary region dies: its database and shop origins are killed (SIGKILL). The
  promotion is the runbook's unplanned path; the orders lost are counted exactly, and failback
  discards what the dead primary had written that the DR region never got (a rehearsal passes
  --accept-data-loss and --discard-errant, and says so).
- `--automatic`: nobody calls promote. Two guards (drctl guard, each with its own HAProxy path to
  each region) watch the primary region; it dies, and they must detect, agree and promote, once.
  Then, in a fresh topology, one guard is cut off from the primary while Cloudflare's stand-in and
  the other guard still see it: nothing may be promoted. Reports RTO by phase
  (drctl/rehearsal/automatic.py).
- `--restore`: no failover: point-in-time recovery. The archiver of `drctl archive` ships the
  primary's binlog (after a first base backup from the replica) to a real S3 server on loopback
  (rclone serve s3), and the drill of `drctl drill --restore` writes orders around a restore point,
  restores the archive to it onto a scratch MariaDB server and checks the orders; the report has
  its restore-time and backup-RPO rows (drctl/rehearsal/restore.py).

Prints the report (text, or JSON with -o json); with --report-dir also writes report.json and
report.md there. Every process is stopped and every file removed afterwards, also on Ctrl-C.
Exit 0 when the drill passed, 1 when it failed or was stopped, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from drctl.cloud.origin_probe import HttpsProbe
from drctl.drill.drill import Drill, DrillOptions
from drctl.drill.faults import ALL_REGIONS_DOWN, FAULTS, FaultInjector
from drctl.drill.orders import OrderSink, Write
from drctl.drill.outage import OutageDrill
from drctl.drill.report import DrillReport
from drctl.drill.runbook_adapter import RunbookAdapter
from drctl.local.binaries import MissingBinary
from drctl.local.edge import EdgeError
from drctl.rehearsal import automatic, restore
from drctl.rehearsal.media import MIN_MEDIA_RPO_SECONDS, RehearsalMediaProbe
from drctl.rehearsal.topology import DEFAULT_TIME_SCALE, LocalTopology, RehearsalSpec, TopologyError
from drctl.runbook.context import ChangeOptions, Runbook
from drctl.stack.command_line import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    add_output_argument,
    fail,
    number,
    printer,
    writable_dir,
)
from drctl.stack.files import StackFileError

REGION_DOWN = "region-down"
MAX_SECONDS = 110.0  # the whole rehearsal, setup included, must stay under two minutes


@dataclass
class RehearsalResult:
    report: DrillReport
    writes: list[Write]


def rehearse(spec: RehearsalSpec, *, unplanned: bool = False, fault: str = "nodes-reject",
             template: Path | None = None, say: Callable[[str], None] = print, settle_seconds: float = 1.0,
             writer_rate: float | None = 200.0, writer_threads: int = 2, max_write_outage: float | None = None,
             sink_wrapper: Callable[[OrderSink], OrderSink] | None = None,
             hooks: dict[str, Callable[[LocalTopology], None]] | None = None,
             export_dir: Path | None = None, media: bool = True) -> RehearsalResult:
    """Build the topology, run the drill on it, tear everything down; `hooks` (tests, benchmark)
    get the topology at the drill's hook points, and at "after-drill" (the drill done, the topology
    still up), `sink_wrapper` may wrap the order path.
    `export_dir`: where failback exports the dead primary's discarded transactions (default: the
    topology's own directory, removed with it). `media`: with the shop's media path and the drill's
    media step (drctl/rehearsal/media.py). `fault` all-regions-down runs `rehearse_outage`."""
    if fault == ALL_REGIONS_DOWN and not unplanned:
        return rehearse_outage(spec, template=template, say=say, settle_seconds=settle_seconds, hooks=hooks)
    if media:
        settle_seconds = max(settle_seconds, spec.media.settle_seconds)  # drctl/rehearsal/media.py: timing
    with LocalTopology(spec, template=template, media=media) as topo:
        rb = local_runbook(topo, say)
        outputs = rb.outputs
        runbook = RunbookAdapter(rb, ChangeOptions(catch_up_timeout=30.0, traffic_timeout=30.0),
                                 accept_data_loss=unplanned, discard_errant=unplanned,
                                 export_dir=export_dir or topo.dir / "errant")
        faults = FaultInjector(outputs, topo.traffic, topo.linode, extra={REGION_DOWN: topo.region_down})
        primary = spec.regions[0]
        probe = HttpsProbe(spec.domain, spec.health_path, timeout=spec.monitor_timeout_ms / 1000,
                           expected_codes=spec.expected_codes, port=topo.regions[primary].nb_port)
        sink = topo.order_sink()
        options = DrillOptions(
            fault=REGION_DOWN if unplanned else fault, max_duration=MAX_SECONDS, max_write_outage=max_write_outage,
            settle_seconds=settle_seconds, poll_seconds=0.05, writer_rate=writer_rate,
            writer_threads=writer_threads,
        )
        drill = Drill(outputs, runbook, topo.traffic, faults, sink_wrapper(sink) if sink_wrapper else sink, options,
                      kind="rehearsal", objectives_note=objectives_note(spec, unplanned, media=media), say=say,
                      hooks={name: (lambda fn=fn: fn(topo)) for name, fn in (hooks or {}).items()},
                      origin_probe=lambda: probe("127.0.0.1"),
                      media=RehearsalMediaProbe(outputs, {r: topo.regions[r].nb_port for r in spec.regions})
                      if topo.media is not None else None)
        drill.report.options.update(timeScale=spec.time_scale, mode="unplanned" if unplanned else "planned",
                                    acceptDataLoss=unplanned, discardErrant=unplanned)
        report = drill.run()
        if hooks and "after-drill" in hooks:
            hooks["after-drill"](topo)
        return RehearsalResult(report, drill.writer.snapshot() if drill.writer else [])


def rehearse_outage(spec: RehearsalSpec, *, template: Path | None = None, say: Callable[[str], None] = print,
                    settle_seconds: float = 1.0,
                    hooks: dict[str, Callable[[LocalTopology], None]] | None = None) -> RehearsalResult:
    """Every region down at once, with the edge running: the fallback page's Worker under Node in
    front of the `cloudflare` proxy, so shoppers' requests meet the very script Cloudflare runs.
    drctl/drill/outage.py's drill, the faults through the HAProxy stand-in of the Linode API."""
    with LocalTopology(spec, template=template, edge=True) as topo:
        rb = local_runbook(topo, say)
        outputs = rb.outputs
        runbook = RunbookAdapter(rb, ChangeOptions(catch_up_timeout=30.0, traffic_timeout=30.0))
        options = DrillOptions(fault=ALL_REGIONS_DOWN, max_duration=MAX_SECONDS, settle_seconds=settle_seconds,
                               poll_seconds=0.05)
        drill = OutageDrill(outputs, runbook, topo.traffic, FaultInjector(outputs, topo.traffic, topo.linode),
                            topo.edge_probe(), options, kind="rehearsal", say=say,
                            objectives_note=objectives_note(spec, unplanned=False, outage=True),
                            hooks={name: (lambda fn=fn: fn(topo)) for name, fn in (hooks or {}).items()})
        drill.report.options.update(timeScale=spec.time_scale, mode=ALL_REGIONS_DOWN)
        return RehearsalResult(drill.run(), [])


def local_runbook(topo: LocalTopology, say: Callable[[str], None]) -> Runbook:
    """The runbook on the topology: its stack outputs, its HAProxy stand-ins for Cloudflare and the
    Linode API, journals in its own directory."""
    return Runbook(outputs=topo.outputs(), state_dir=topo.dir / "state", say=lambda line: say(f"      {line.strip()}"),
                   traffic_factory=lambda: topo.traffic, linode_factory=lambda: topo.linode)


def objectives_note(spec: RehearsalSpec, unplanned: bool, outage: bool = False, media: bool = False) -> str:
    note = (f"Rehearsal of `{spec.stack}` on this machine: health-check periods and the RTO objective are the "
            f"stack's multiplied by {spec.time_scale:g}; the RPO objective is the stack's (replication runs at "
            "its real speed).")
    if media:
        m = spec.media
        note += (f" Media: real S3 servers (rclone serve s3), the nodes' media agent, rclone serve and nginx; the media "
                 f"objective is the stack's scaled, at least {MIN_MEDIA_RPO_SECONDS} s (the drill looks after the "
                 f"switch), the DR copy every {m.copy_period_seconds:g} s, orders settle {m.settle_seconds:g} s "
                 "before the fault.")
    if outage:
        note += (" The edge is the fallback page's Worker, the script the program uploads, run under Node in front of "
                 "HAProxy (which answers Cloudflare's 520/521/524 when it reaches no region); its wait for a "
                 "region is scaled too.")
    if unplanned:
        note += " Unplanned: promotion accepted data loss and failback discarded the dead primary's own writes."
    return note


# --- command line -----------------------------------------------------------------------------------


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("rehearse", help="run the DR drill on this machine (MariaDB, HAProxy, shop origins)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-s", "--stack", default="dr-test", help="stack file whose settings to use (default dr-test)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--planned", dest="unplanned", action="store_false", default=False,
                      help="the web tier fails, the database stays reachable (default)")
    mode.add_argument("--unplanned", dest="unplanned", action="store_true",
                      help="the primary region dies: its database and origins are killed")
    mode.add_argument("--automatic", action="store_true",
                      help="nobody calls promote: two guards must detect the primary region's death and promote, "
                           "and a guard cut off from it must not")
    mode.add_argument("--restore", action="store_true",
                      help="no failover: archive the primary's binlog to a local S3 server and restore it to a point "
                           "between two bursts of orders onto a scratch server, as `drctl drill --restore` does")
    p.add_argument("--fault", choices=FAULTS, default="nodes-reject",
                   help="planned: how the web tier fails; all-regions-down: every region at once, no failover: "
                        "shoppers must get the fallback page from the edge (the Worker under Node; needs nodejs) "
                        "until the primary region returns")
    p.add_argument("--time-scale", type=number(float, 0, above=True, maximum=1), default=DEFAULT_TIME_SCALE,
                   help=f"multiply health-check periods and the RTO objective (default {DEFAULT_TIME_SCALE}; above 0, "
                        "at most 1)")
    p.add_argument("--report-dir", type=writable_dir, help="also write report.json and report.md here (a writable "
                                                            "directory, or a new one in a writable directory)")
    add_output_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    say = printer(args)
    if args.automatic and args.fault != "nodes-reject":
        fail("rehearse", f"--fault: applies to --planned only, --automatic kills the whole region (got {args.fault} "
                         "with --automatic)")
        return EXIT_USAGE
    if args.restore and args.fault != "nodes-reject":
        fail("rehearse", f"--fault: applies to --planned only, --restore fails nothing (got {args.fault} with "
                         "--restore)")
        return EXIT_USAGE
    if args.unplanned and args.fault != "nodes-reject":
        fail("rehearse", f"--fault: applies to --planned only, --unplanned kills the whole region (got {args.fault} "
                         "with --unplanned)")
        return EXIT_USAGE
    try:
        spec = RehearsalSpec.from_stack(args.stack, time_scale=args.time_scale)
    except (StackFileError, TopologyError) as err:
        fail("rehearse", str(err))
        return EXIT_USAGE
    if args.automatic:
        return run_automatic(spec, args, say)
    if args.restore:
        return run_restore(spec, args, say)
    if args.fault == ALL_REGIONS_DOWN:
        say(f"rehearsing a full outage of {spec.stack} (every region down: {', '.join(spec.regions)}) on this machine")
    else:
        say(f"rehearsing {'an unplanned' if args.unplanned else 'a planned'} failover of {spec.stack} "
            f"({' -> '.join(spec.regions)}) on this machine")
    try:
        result = rehearse(spec, unplanned=args.unplanned, fault=args.fault, say=say,
                          export_dir=args.report_dir / "errant" if args.report_dir else None)
    except (MissingBinary, TopologyError, EdgeError) as err:
        fail("rehearse", str(err))
        return EXIT_FAILED
    report = result.report
    if args.report_dir:
        paths = report.write(args.report_dir)
        say(f"report: {paths[0]} and {paths[1]}")
    if args.output == "json":
        print(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        print(report.markdown())
    return EXIT_OK if report.passed else EXIT_FAILED



def run_automatic(spec: RehearsalSpec, args: argparse.Namespace, say: Callable[[str], None]) -> int:
    say(f"rehearsing automatic failover of {spec.stack} ({' -> '.join(spec.regions)}) on this machine: two guards, "
        "nobody calls promote")
    results = []
    try:
        for name, scenario in (("region-down", automatic.region_down), ("partition", automatic.partition)):
            say(f"scenario {name}")
            results.append(scenario(spec, say=say))
    except (MissingBinary, TopologyError, TimeoutError) as err:
        fail("rehearse", str(err))
        return EXIT_FAILED
    note = objectives_note(spec, unplanned=False).split(";")[0] + "."
    if args.report_dir:
        args.report_dir.mkdir(parents=True, exist_ok=True)
        (args.report_dir / "automatic.json").write_text(json.dumps([r.as_dict() for r in results], indent=2))
        (args.report_dir / "automatic.md").write_text("\n".join([note, "", *(r.markdown() for r in results)]))
        say(f"report: {args.report_dir / 'automatic.json'} and {args.report_dir / 'automatic.md'}")
    if args.output == "json":
        print(json.dumps({"note": note, "scenarios": [r.as_dict() for r in results]}, indent=2))
    else:
        print("\n".join([f"## Automatic failover rehearsal of `{spec.stack}`", "", note, "",
                         *(r.markdown() for r in results)]))
    return EXIT_OK if all(r.passed for r in results) else EXIT_FAILED


def run_restore(spec: RehearsalSpec, args: argparse.Namespace, say: Callable[[str], None]) -> int:
    say(f"rehearsing point-in-time recovery of {spec.stack} on this machine: binlog archive to a local S3 server, "
        "restore to a point between two bursts of orders, check")
    try:
        settings = restore.BackupSettings.from_stack(args.stack)
        result = restore.rehearse_restore(spec, say=say)
    except (MissingBinary, TopologyError, StackFileError) as err:
        fail("rehearse", str(err))
        return EXIT_FAILED
    note = restore.objectives_note(spec, settings)
    markdown = result.markdown(spec, note)
    if args.report_dir:
        args.report_dir.mkdir(parents=True, exist_ok=True)
        (args.report_dir / "restore.json").write_text(json.dumps({"note": note, **result.as_dict()}, indent=2))
        (args.report_dir / "restore.md").write_text(markdown)
        say(f"report: {args.report_dir / 'restore.json'} and {args.report_dir / 'restore.md'}")
    if args.output == "json":
        print(json.dumps({"note": note, **result.as_dict()}, indent=2))
    else:
        print(markdown)
    return EXIT_OK if result.passed else EXIT_FAILED
