"""`drctl drill`: a timed failover and failback of a real stack (dr-test), with an RTO/RPO report.

    drctl drill -s dr-test --fault nodes-reject|pool-disable|firewall-blackhole|all-regions-down --yes
                [--outputs FILE] [--target REGION] [--dry-run] [--force] [--max-duration S]
                [--max-write-outage S] [--settle S] [--poll S] [--writer-rate N] [--accept-data-loss]
                [--discard-errant] [--report-dir DIR] [-o text|json]
                [--pre-hook CMD] [--post-hook CMD] [--catch-up-timeout S] [--traffic-timeout S] ...

It changes production-like state (NodeBalancer nodes, Cloudflare pools, Cloud Firewalls, which
database is primary), so it needs --yes; --dry-run prints the plan, reads the stack's health and
changes nothing. The steps are drctl/drill/drill.py's; promote and failback are the runbook's own
(drctl/runbook/promote.py, drctl/runbook/failback.py), traffic is the stack's Cloudflare backend, faults go through
the Linode API. Synthetic orders go to `drctl_drill.orders` straight through the databases of the
stack outputs (the web tier has no synthetic-order endpoint), the first writable one in failover
order, which is where the shop's own orders land.

`--fault all-regions-down` is the other drill: every region down at once, no failover. It checks
that shoppers get the fallback page from Cloudflare's edge and measures how soon the shop is back
after the primary region returns (drctl/drill/outage.py).

Writes report.json and report.md to --report-dir (default drill-<stack>-<UTC time>/). Exit 0 when
the drill passed, 1 when it failed, was stopped or was refused, 2 on usage errors. Tokens come from
the environment (LINODE_TOKEN, CLOUDFLARE_API_TOKEN) and never appear in output or reports.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from drctl.cloud.edge_probe import FALLBACK_MARKER, EdgeAnswer, EdgeProbe
from drctl.cloud.origin_probe import HttpsProbe
from drctl.cloud.traffic import TrafficError
from drctl.drill.drill import Drill, DrillOptions
from drctl.drill.faults import ALL_REGIONS_DOWN, FAULTS, FaultInjector
from drctl.drill.media import StackMediaProbe
from drctl.drill.orders import DatabaseOrderSink
from drctl.drill.outage import OutageDrill
from drctl.drill.report import DrillReport
from drctl.drill.runbook_adapter import RunbookAdapter
from drctl.runbook.context import ChangeOptions, Runbook, add_common_arguments, runbook_from_args
from drctl.stack.command_line import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    HOUR,
    UsageError,
    fail,
    number,
    positive_seconds,
    printer,
    readable_file,
    writable_dir,
)
from drctl.stack.outputs import OutputsError, StackOutputs

MAX_WRITER_RATE = 10000.0  # orders per second: far above what a shop's database takes, never a typo's millions
DEFAULT_WRITER_RATE = 20.0
EDGE_TIMEOUT_SECONDS = 100  # Cloudflare's own limit for an answer: the Worker answers the page before it


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("drill", help="timed failover and failback of a stack, with an RTO/RPO report",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(p)
    p.add_argument("--fault", choices=FAULTS, default="nodes-reject",
                   help="how the primary region fails (default nodes-reject); all-regions-down: every region's "
                        "nodes set to reject at once, shoppers get the fallback page, the primary region returns "
                        "first (no promotion, no orders)")
    p.add_argument("--target", metavar="REGION", help="the region to promote (default: the second in failover order)")
    ChangeOptions.add_arguments(p)  # --dry-run, --yes, hooks, timeouts, --skip-traffic: passed to promote and failback
    p.add_argument("--force", action="store_true", help="drill although preflight finds problems (recorded)")
    p.add_argument("--max-duration", type=positive_seconds, default=1800.0, metavar="SECONDS",
                   help="stop and restore after this long (default 1800; above 0, at most 86400)")
    p.add_argument("--max-write-outage", type=positive_seconds, metavar="SECONDS",
                   help="stop and restore when orders fail for this long (default: twice objectives.rtoSeconds; "
                        "above 0, at most 86400)")
    p.add_argument("--settle", type=number(float, 0, maximum=HOUR, unit="s"), default=30.0, metavar="SECONDS",
                   help="orders written before the fault and watched after each switch; with all-regions-down, "
                        "how long every shopper must get the page (default 30; 0 to 3600, below --max-duration)")
    p.add_argument("--poll", type=number(float, 0, above=True, maximum=HOUR, unit="s"), default=5.0, metavar="SECONDS",
                   help="how often to read traffic state while waiting for detection (default 5: Cloudflare "
                        "allows 1200 API requests per 5 minutes; above 0, at most 3600)")
    p.add_argument("--writer-rate", type=number(float, 0, above=True, maximum=MAX_WRITER_RATE), default=None,
                   metavar="N", help="synthetic orders per second (default 20; above 0, at most 10000)")
    p.add_argument("--accept-data-loss", action="store_true", help="passed to promote (its RPO gate)")
    p.add_argument("--discard-errant", action="store_true", help="passed to failback")
    p.add_argument("--origin-ca-file", type=readable_file, metavar="FILE",
                   help="verify the NodeBalancers' origin certificates against FILE in the origin probe")
    p.add_argument("--report-dir", type=writable_dir,
                   help="where report.json and report.md go (default drill-<stack>-<UTC time>/); a writable "
                        "directory, or a new one in a writable directory")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, runbook_factory: Callable[[argparse.Namespace, Callable[[str], None]], Runbook]
        = runbook_from_args, origin_port: int | None = 443,
        edge_factory: Callable[[StackOutputs], Callable[[str], EdgeAnswer]] | None = None) -> int:
    """`runbook_factory`, `origin_port` and `edge_factory`: the real clients, HTTPS port and the
    shop's own URL by default; tests hand in a runbook wired to local stand-ins (and no port when
    their NodeBalancers exist on paper only), and a local edge."""
    say = printer(args)
    if not args.dry_run and not args.yes:
        what = ("takes every region of a stack down" if args.fault == ALL_REGIONS_DOWN
                else "fails over a stack and back")
        fail("drill", f"a drill {what}: pass --yes to act, or --dry-run to see the plan")
        return EXIT_USAGE
    try:
        check_flags(args)
        rb = runbook_factory(args, say)
        outputs = rb.outputs
        target = drill_target(outputs, args.target)
        rb.server(target, "--target")
    except (UsageError, OutputsError) as err:
        fail("drill", str(err))
        return EXIT_USAGE
    try:
        traffic = rb.traffic()
    except TrafficError as err:
        fail("drill", f"cannot reach the traffic backend: {err}")
        return EXIT_FAILED
    linode, linode_error = rb.try_linode()
    if linode is None and args.fault != "pool-disable":
        fail("drill", f"--fault {args.fault} needs the Linode API: {linode_error}")
        return EXIT_FAILED
    runbook = RunbookAdapter(rb, ChangeOptions.from_args(args), accept_data_loss=args.accept_data_loss,
                             discard_errant=args.discard_errant)
    if args.fault == ALL_REGIONS_DOWN:
        edge = (edge_factory or shoppers_edge)(outputs)
        return run_outage(args, outputs, runbook, traffic, FaultInjector(outputs, traffic, linode), edge, say)
    primary = outputs.regions[0]
    probe = HttpsProbe(outputs.domain, outputs.health_path, timeout=float(outputs.monitor.timeout),
                       expected_codes=outputs.monitor.expected_codes, port=origin_port or 443,
                       ca_file=args.origin_ca_file)
    options = DrillOptions(fault=args.fault, target=target, max_duration=args.max_duration,
                           max_write_outage=args.max_write_outage, settle_seconds=args.settle, force=args.force,
                           poll_seconds=args.poll,
                           writer_rate=DEFAULT_WRITER_RATE if args.writer_rate is None else args.writer_rate)
    drill = Drill(outputs, runbook, traffic, FaultInjector(outputs, traffic, linode),
                  DatabaseOrderSink(runbook.order_targets()), options, say=say,
                  origin_probe=(lambda: probe(primary.node_balancer.ipv4)) if origin_port else None,
                  media=StackMediaProbe(outputs, ca_file=args.origin_ca_file, port=origin_port or 443))
    if args.dry_run:
        return dry_run(drill, runbook, say)
    report_dir = args.report_dir or Path(f"drill-{outputs.stack}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    say(f"drill of {outputs.stack}: fault {args.fault} in {primary.region}, promote {target}, fail back "
        f"(stops and restores after {args.max_duration:.0f} s or on Ctrl-C)")
    return finish(args, drill.run(), report_dir, say)


def shoppers_edge(outputs: StackOutputs) -> Callable[[str], EdgeAnswer]:
    """`https://<domain>/...` as a shopper reaches it: DNS, Cloudflare's edge, its Worker."""
    return EdgeProbe(outputs.domain, timeout=float(EDGE_TIMEOUT_SECONDS))


def run_outage(args: argparse.Namespace, outputs: StackOutputs, runbook: RunbookAdapter, traffic, faults: FaultInjector,
               edge: Callable[[str], EdgeAnswer], say: Callable[[str], None]) -> int:
    """--fault all-regions-down: drctl/drill/outage.py's drill, its plan, its report."""
    options = DrillOptions(fault=ALL_REGIONS_DOWN, max_duration=args.max_duration, settle_seconds=args.settle,
                           force=args.force, poll_seconds=args.poll)
    drill = OutageDrill(outputs, runbook, traffic, faults, edge, options, say=say)
    if args.dry_run:
        return outage_dry_run(drill, runbook, say)
    report_dir = args.report_dir or Path(f"drill-{outputs.stack}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    say(f"drill of {outputs.stack}: every region down ({', '.join(r.region for r in outputs.regions)}), shoppers "
        f"should get the fallback page; {outputs.regions[0].region} comes back first (stops and restores after "
        f"{args.max_duration:.0f} s or on Ctrl-C)")
    return finish(args, drill.run(), report_dir, say)


def finish(args: argparse.Namespace, report: DrillReport, report_dir: Path, say: Callable[[str], None]) -> int:
    json_path, md_path = report.write(report_dir)
    if args.output == "json":
        print(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        print(report.markdown())
    say(f"report: {json_path} and {md_path}")
    return EXIT_OK if report.passed else EXIT_FAILED


def check_flags(args: argparse.Namespace) -> None:
    """What the flags say together, before anything runs: the drill's waits against its whole budget
    (a settle period as long as the drill stops it before the fault; a write outage longer than the
    drill is never seen), and a place for the report when --report-dir is not given."""
    if args.settle >= args.max_duration:
        raise UsageError(f"--settle: must be below --max-duration {args.max_duration:g} s (got {args.settle:g}; "
                         f"allowed: 0 to below {args.max_duration:g})")
    if args.max_write_outage is not None and args.max_write_outage > args.max_duration:
        raise UsageError(f"--max-write-outage: must be at most --max-duration {args.max_duration:g} s "
                         f"(got {args.max_write_outage:g}; allowed: above 0, at most {args.max_duration:g})")
    if args.fault == ALL_REGIONS_DOWN:
        # A full outage promotes nothing, writes no order and probes no origin: flags about those would be
        # ignored (the runbook's timeouts too, but their defaults cannot be told from a value given).
        ignored = [flag for flag, given in (("--target", args.target is not None),
                                            ("--writer-rate", args.writer_rate is not None),
                                            ("--max-write-outage", args.max_write_outage is not None),
                                            ("--accept-data-loss", args.accept_data_loss),
                                            ("--discard-errant", args.discard_errant),
                                            ("--origin-ca-file", args.origin_ca_file is not None),
                                            ("--pre-hook", bool(args.pre_hook)), ("--post-hook", bool(args.post_hook)),
                                            ("--skip-traffic", args.skip_traffic),
                                            ("--abandon-journal", args.abandon_journal)) if given]
        if ignored:
            raise UsageError(f"{ignored[0]}: does not apply to --fault {ALL_REGIONS_DOWN}, which promotes nothing, "
                             f"writes no order and probes no origin (got {ignored[0]}; allowed: --fault nodes-reject, pool-disable or "
                             f"firewall-blackhole with it)")
    if args.report_dir is None and not args.dry_run:
        try:
            writable_dir(".")
        except argparse.ArgumentTypeError as err:
            raise UsageError(f"--report-dir: not given, and the current directory cannot take the report: {err}") from None


def drill_target(outputs: StackOutputs, target: str | None) -> str:
    """The region the drill promotes: --target, a DR region of the stack (default: the second in
    failover order)."""
    primary = outputs.regions[0].region
    if target is None:
        return outputs.regions[1].region
    dr = ", ".join(r.region for r in outputs.regions[1:])
    if target == primary:
        raise UsageError(f"--target: must be a DR region, not the primary (got {target!r}; allowed: {dr})")
    if target not in {r.region for r in outputs.regions}:
        raise UsageError(f"--target: not a region of stack {outputs.stack!r} (got {target!r}; allowed: {dr})")
    return target


def outage_dry_run(drill: OutageDrill, runbook: RunbookAdapter, say: Callable[[str], None]) -> int:
    """The plan of a full-outage drill, and what preflight finds now; nothing changes."""
    o, primary, outputs = drill.options, drill.primary, drill.outputs
    try:
        health = runbook.health()
        found = "healthy" if health.healthy else "; ".join(health.problems)
        problems = drill.preflight_problems(health)
        refused = "; ".join(problems) if problems and (not o.force or outputs.fallback_page is None) else None
    except Exception as err:
        found, refused = f"could not read the servers ({err})", "preflight could not run"
    regions = ", ".join(r.region for r in outputs.regions)
    say(f"drctl drill {outputs.stack}: dry run, nothing changed\n"
        f"  preflight now: {found}"
        + (f"\n  preflight would refuse: {refused}" if refused else "") + "\n"
        f"  1. GET https://{outputs.domain}/ through the edge: the shop\n"
        f"  2. fault all-regions-down: every node of every NodeBalancer ({regions}) set to reject\n"
        f"  3. GET through the edge until the fallback page answers (503, Retry-After, {FALLBACK_MARKER})\n"
        f"  4. for {o.settle_seconds:g} s every GET must get the page; GET {outputs.health_path} must not\n"
        f"  5. put {primary}'s nodes back\n"
        f"  6. GET through the edge until the shop answers: the recovery time\n"
        f"  7. put the other regions' nodes back; traffic and replication as before\n"
        f"  stop conditions: {o.max_duration:.0f} s in all, Ctrl-C: each puts every region back")
    return EXIT_OK if refused is None else EXIT_FAILED


def dry_run(drill: Drill, runbook: RunbookAdapter, say: Callable[[str], None]) -> int:
    """The plan, and what preflight finds now; nothing changes."""
    o, primary, target = drill.options, drill.primary, drill.target
    try:
        health = runbook.health()
        found = "healthy" if health.healthy else "; ".join(health.problems)
        lag = f"{health.lag_seconds:.1f} s" if health.lag_seconds is not None else "unknown"
        problems = drill.preflight_problems(health)
        refused = "; ".join(problems) + " (pass --force to drill anyway)" if problems and not o.force else None
    except Exception as err:
        found, lag, refused = f"could not read the servers ({err})", "unknown", "preflight could not run"
    rate = f"{o.writer_rate:g}/s" if o.writer_rate else "as fast as possible"
    say(f"drctl drill {drill.outputs.stack}: dry run, nothing changed\n"
        f"  preflight now: {found}; replica lag {lag} (objective {drill.outputs.objectives.rpo_seconds} s)"
        + (f"\n  preflight would refuse: {refused}" if refused else "") + "\n"
        f"  1. start synthetic orders in drctl_drill.orders ({rate}), first writable database in failover order\n"
        f"  2. after {o.settle_seconds:g} s, fault {o.fault} in {primary}\n"
        f"  3. wait until traffic leaves {primary} (pool health / DNS), probing its NodeBalancer\n"
        f"  4. drctl promote --region {target} (the runbook's steps)\n"
        f"  5. verify orders land in {target}; count acknowledged orders it lacks (RPO)\n"
        f"  6. undo the fault\n"
        f"  7. drctl failback --to {primary}\n"
        f"  8. verify orders land in {primary}, every acknowledged order is accounted for, traffic and "
        f"replication are back\n"
        f"  stop conditions: {o.max_duration:.0f} s in all, orders failing for {drill.max_write_outage:.0f} s, "
        f"Ctrl-C: each undoes the fault and fails back")
    return EXIT_OK if refused is None else EXIT_FAILED
