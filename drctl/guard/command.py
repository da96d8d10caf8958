"""`drctl guard`: automatic, split-brain-safe failover of the whole shop (docs/guard.md).

Probes the primary region's NodeBalancer /healthz and its database, reads Cloudflare's view of the
primary's pool, votes with the other guards (TXT records beside a single-writer lease in the shop's
zone) and, when every signal has agreed for automation.confirmSeconds, runs the unplanned promote
of `drctl promote` (fencing, RPO gate, traffic, journal). Never with --accept-data-loss (beyond
objectives.rpoSeconds it alerts and waits for a person), never a failback, never within the
anti-flapping block period, never beside another operation's open journal. Runs until stopped
(SIGTERM/SIGINT); --dry-run decides and logs what it would do, and does nothing.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from drctl.cloud.cloudflare import CloudflareApi, CloudflareConfigError
from drctl.cloud.deadline import api_budget
from drctl.cloud.origin_probe import HttpsProbe, ProbeResult, valid_expected_codes
from drctl.guard.loop import Guard, GuardSettings, cloudflare_view_from
from drctl.guard.metrics import GuardMetrics
from drctl.guard.probes import DatabaseProbe
from drctl.guard.votes import CloudflareVotes, FileVotes, VoteBoard
from drctl.runbook.context import DEFAULT_BLOCK_SECONDS, Runbook, runbook_from_args
from drctl.runbook.promote import MAX_BLOCK_SECONDS
from drctl.stack.command_line import (
    DAY,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    add_stack_arguments,
    fail,
    number,
    program,
    readable_file,
    tcp_port,
)
from drctl.stack.outputs import OutputsError
from drctl.watch.alerts import Alerter
from drctl.watch.command import (
    MAX_ALERT_SECONDS,
    MAX_PROBE_SECONDS,
    MAX_PROBES,
    http_url,
    serve_metrics,
    stop_on_signals,
)
from drctl.watch.lease import CloudflareLease, FileLease, Lease, NoLease
from drctl.watch.loop import EventLog

GUARD_LEASE_PREFIX = "_drctl-guard"
MIN_LEASE_TTL = 60.0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("guard", help="automatic failover: promote the DR region when every signal says the "
                                            "primary region is lost", description=__doc__.split("\n\n")[1])
    add_stack_arguments(p)
    pos = number(float, 0, above=True, maximum=MAX_PROBE_SECONDS, unit="s")
    p.add_argument("--interval", type=pos, metavar="S", help="seconds between probes of the primary (default: the "
                   "stack's monitor interval; above 0, at most 3600)")
    p.add_argument("--fast-interval", type=pos, metavar="S", help="fast confirm: seconds between probes after a "
                   "failed one until --fall (default: traffic.monitor.fastInterval, at most --interval; above 0, at "
                   "most 3600 and at most --interval)")
    p.add_argument("--timeout", type=pos, metavar="S", help="seconds per probe, below --interval (default: the "
                   "stack's monitor timeout; above 0, at most 3600)")
    p.add_argument("--fall", type=number(int, 1, maximum=MAX_PROBES), metavar="N", help="failed probes in a row "
                   "before a signal is down (default: monitor consecutiveDown; 1 to 100)")
    p.add_argument("--rise", type=number(int, 1, maximum=MAX_PROBES), metavar="N", help="good probes in a row before "
                   "it is up (default: monitor consecutiveUp; 1 to 100)")
    p.add_argument("--confirm-seconds", type=number(float, 0, maximum=DAY, unit="s"), metavar="S",
                   help="seconds every signal must agree before promoting (default: automation.confirmSeconds; 0 to "
                        "86400)")
    p.add_argument("--block-seconds", type=number(int, 0, maximum=MAX_BLOCK_SECONDS, unit="s"),
                   default=DEFAULT_BLOCK_SECONDS, metavar="S", help="anti-flapping block period after a promotion "
                   f"(default {DEFAULT_BLOCK_SECONDS}; 0 to {MAX_BLOCK_SECONDS})")
    p.add_argument("--apply-timeout", type=number(float, 0, above=True, maximum=DAY, unit="s"), default=60.0,
                   metavar="S", help="promote's longest wait for the replica's relay log (default 60; above 0, at "
                                     "most 86400)")
    p.add_argument("--expected-codes", metavar="CODES", help='healthy HTTP status codes (default: the monitor\'s)')
    p.add_argument("--origin-port", type=tcp_port(1), default=443, metavar="PORT",
                   help="HTTPS port of the NodeBalancers (default 443; 1 to 65535)")
    p.add_argument("--ca-file", type=readable_file, metavar="PATH", help="CA bundle to verify origin certificates "
                   "with; without it the certificate is not verified (SNI is still sent)")
    p.add_argument("--dry-run", action="store_true", help="decide and log what it would do; no vote, no lease, no "
                   "promotion, no alert")
    p.add_argument("--lease", choices=("cloudflare", "file"), default="cloudflare", help="where the single-writer "
                   "lease and the votes are kept: TXT records in the shop's zone (across hosts), or files in "
                   "--state-dir (guards on one host)")
    p.add_argument("--lease-ttl", type=number(float, MIN_LEASE_TTL, maximum=DAY, unit="s"), metavar="S",
                   help="seconds the lease lasts unless renewed (default max(600, 4 x interval); 60 to 86400)")
    p.add_argument("--shared-dir", metavar="DIR", help="with --lease file: the directory holding the lease and votes")
    p.add_argument("--holder-id", metavar="ID", help="this guard's name in the lease and votes, unique per guard "
                   "(default HOST:PID)")
    p.add_argument("--metrics-port", type=tcp_port(0), metavar="PORT", help="serve Prometheus metrics on this port "
                   "(0: any free port; 0 to 65535)")
    p.add_argument("--metrics-address", default="127.0.0.1", metavar="ADDR", help="address for --metrics-port "
                   "(default 127.0.0.1)")
    p.add_argument("--alert-webhook", type=http_url, metavar="URL", help="POST a JSON event here on what needs a "
                   "person (docs/guard.md)")
    p.add_argument("--alert-command", type=program, metavar="CMD", help="run this command on the same events")
    p.add_argument("--alert-timeout", type=number(float, 0, above=True, maximum=MAX_ALERT_SECONDS, unit="s"),
                   default=5.0, metavar="S", help="seconds an alert hook may take (default 5; above 0, at most 300)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    stop = threading.Event()
    log = EventLog(sys.stderr)
    try:
        guard, metrics = build(args, log)
    except (UsageError, OutputsError, CloudflareConfigError) as err:
        fail("guard", str(err))
        return EXIT_USAGE
    try:
        stop_on_signals(stop)
        guard.run(stop)
        return EXIT_OK
    finally:
        guard.close()
        metrics.close()


def build(args: argparse.Namespace, log: EventLog, wall: Callable[[], float] = time.time) -> tuple[Guard, GuardMetrics]:
    """Everything the flags and stack outputs say, checked; UsageError naming the flag otherwise."""
    rb = runbook_from_args(args, say=lambda line: log.emit("runbook", line=line.strip()))
    outputs = rb.outputs
    log.context["stack"] = outputs.stack
    automation = outputs.automation
    if automation.promote != "automatic" and not args.dry_run:
        raise UsageError(f"{'--outputs' if args.outputs else '--stack'}: stack {outputs.stack!r} has automation.promote "
                         f"{automation.promote!r}: a person promotes (got automation.promote {automation.promote}; "
                         "allowed: automatic, or run with --dry-run to see what the guard would decide)")
    settings, timeout, expected = _settings(args, rb)
    holder = args.holder_id or f"{socket.gethostname()}:{os.getpid()}"
    if not holder or any(c.isspace() or c in "\"/" for c in holder):
        raise UsageError(f"--holder-id: no spaces, quotes or slashes (got {holder!r}; allowed: a name like HOST:PID)")
    lease, votes = _lease_and_votes(args, rb, settings, holder, wall)
    healthz_probe = HttpsProbe(outputs.domain, outputs.health_path, timeout, expected, args.origin_port, args.ca_file)

    def healthz(region: str) -> ProbeResult:
        return healthz_probe(outputs.region(region).node_balancer.ipv4)

    metrics = GuardMetrics()
    serve_metrics(metrics, args, log)
    guard = Guard(guard_id=holder, rb=rb, healthz=healthz, database=DatabaseProbe(rb.servers, timeout),
                  cloudflare_view=cloudflare_view_from(rb), votes=votes, lease=lease, settings=settings, log=log,
                  metrics=metrics, alerter=Alerter(args.alert_webhook, args.alert_command, args.alert_timeout),
                  wall=wall)
    return guard, metrics


def _settings(args: argparse.Namespace, rb: Runbook) -> tuple[GuardSettings, float, str]:
    m, automation = rb.outputs.monitor, rb.outputs.automation
    interval = args.interval if args.interval is not None else float(m.interval)
    timeout = args.timeout if args.timeout is not None else float(m.timeout)
    if timeout >= interval:
        raise UsageError(f"--timeout: must be below the interval {interval:g} s (got {timeout:g}; allowed: above 0 "
                         "and below the interval)")
    fast = args.fast_interval if args.fast_interval is not None else min(interval, float(automation.fast_interval))
    if fast > interval:
        raise UsageError(f"--fast-interval: must be at most the interval {interval:g} s (got {fast:g}; allowed: "
                         "above 0, at most the interval)")
    expected = args.expected_codes or m.expected_codes
    if not valid_expected_codes(expected):
        raise UsageError(f'--expected-codes: use codes like "200" or "2xx", separated by commas (got {expected!r})')
    confirm = args.confirm_seconds if args.confirm_seconds is not None else float(automation.confirm_seconds)
    settings = GuardSettings(
        interval=interval, fast_interval=fast, fall=args.fall or m.fall, rise=args.rise or m.rise,
        confirm_seconds=confirm, block_seconds=args.block_seconds,
        # A vote lives three intervals: a guard that misses two cycles in a row no longer counts.
        vote_ttl=3 * interval, dry_run=args.dry_run, apply_timeout=args.apply_timeout,
    )
    return settings, timeout, expected


def _lease_and_votes(args: argparse.Namespace, rb: Runbook, settings: GuardSettings, holder: str,
                     wall: Callable[[], float]) -> tuple[Lease, VoteBoard]:
    if args.shared_dir is not None and args.lease != "file":
        raise UsageError(f"--shared-dir: applies to --lease file only (got {args.shared_dir} with --lease {args.lease})")
    if args.lease_ttl is not None and args.lease != "cloudflare":
        raise UsageError(f"--lease-ttl: applies to --lease cloudflare only (got {args.lease_ttl:g} with --lease "
                         f"{args.lease})")
    if args.lease == "file":
        shared = Path(args.shared_dir or rb.state_dir / "guards")
        try:
            shared.mkdir(parents=True, exist_ok=True)
            lease: Lease = NoLease(holder) if args.dry_run else FileLease(holder, str(shared / "lease"))
            lease.refresh()
        except OSError as err:
            raise UsageError(f"--shared-dir: cannot use it, {(err.strerror or str(err)).lower()} (got {shared}; "
                             "allowed: a directory drctl can write)") from None
        return lease, FileVotes(shared / "votes", holder, wall)
    outputs = rb.outputs
    ttl = args.lease_ttl or max(600.0, 4 * settings.interval)
    if ttl < 4 * settings.interval:
        raise UsageError(f"--lease-ttl: must be at least 4 x the interval {settings.interval:g} s, "
                         f"{4 * settings.interval:g} s, so the holder renews it in time (got {ttl:g}; allowed: "
                         f"{max(MIN_LEASE_TTL, 4 * settings.interval):g} to {DAY:g})")
    api = CloudflareApi.from_env(budget=api_budget(outputs.objectives.rto_seconds))
    zone = outputs.cloudflare.zone_id
    votes = CloudflareVotes(api, zone, outputs.domain, holder, refresh=settings.interval, wall=wall)
    if args.dry_run:
        return NoLease(holder), votes
    return CloudflareLease(api, zone, outputs.domain, holder, ttl, wall, prefix=GUARD_LEASE_PREFIX,
                           service="drctl-guard"), votes
