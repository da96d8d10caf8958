"""`drctl watch`: the DNS-failover watchdog for stacks in traffic mode dns-failover.

Probes every region's NodeBalancer over HTTPS (SNI and Host = the shop's domain) in failover
order; a region is down after --fall failed probes in a row and up after --rise good ones. When the
DNS record points at a region that is down and a later region is up, it repoints the A and AAAA
records there, in one write, and only then. Every region down: the record stays (fail-static) and
an alert goes out. Failback is manual unless --auto-failback. One watchdog writes at a time (the
lease, see --lease). Runs until stopped (SIGTERM/SIGINT), or once with --once (cron).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from drctl.cloud.cloudflare import CloudflareApi, CloudflareConfigError
from drctl.cloud.deadline import api_budget
from drctl.cloud.dns_records import DnsFailover, require_dns_mode
from drctl.cloud.origin_probe import HttpsProbe, valid_expected_codes
from drctl.stack.command_line import (
    DAY,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    add_output_argument,
    add_stack_arguments,
    fail,
    number,
    positive_seconds,
    program,
    readable_file,
    seconds,
    source_flag,
    stack_source,
    tcp_port,
)
from drctl.stack.outputs import OutputsError, StackOutputs, load_outputs
from drctl.watch.alerts import Alerter
from drctl.watch.lease import CloudflareLease, FileLease, Lease, NoLease
from drctl.watch.loop import CycleReport, EventLog, Watchdog, WatchSettings
from drctl.watch.metrics import MetricsEndpoint, WatchMetrics

DEFAULT_STABILITY_WINDOW = 300.0
DEFAULT_RECORD_REFRESH = 300.0
MIN_LEASE_TTL = 60.0
MAX_PROBE_SECONDS = 3600.0  # Cloudflare's own monitors probe at least hourly
MAX_PROBES = 100
MAX_ALERT_SECONDS = 300.0


def http_url(text: str) -> str:
    """An --alert-webhook value: an http:// or https:// URL."""
    if not text.startswith(("https://", "http://")):
        raise argparse.ArgumentTypeError(f"must be an http:// or https:// URL (got {text[:40]!r})")
    return text


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "watch", help="DNS-failover watchdog: repoint the DNS record when a region goes down",
        description=__doc__.split("\n\n")[1],
    )
    add_stack_arguments(p)
    pos = number(float, 0, above=True, maximum=MAX_PROBE_SECONDS, unit="s")
    p.add_argument("--interval", type=pos, metavar="S", help="seconds between probe rounds (default: the stack's monitor interval; above 0, at most 3600)")
    p.add_argument("--fast-interval", type=pos, metavar="S", help="fast confirm: after a region's first failed probe, probe every S seconds until --fall is reached (default: the stack's traffic.monitor.fastInterval, at most --interval; above 0, at most 3600 and at most --interval)")
    p.add_argument("--timeout", type=pos, metavar="S", help="seconds per probe, below --interval (default: the stack's monitor timeout; above 0, at most 3600)")
    p.add_argument("--fall", type=number(int, 1, maximum=MAX_PROBES), metavar="N", help="failed probes in a row before a region is down (default: monitor consecutiveDown; 1 to 100)")
    p.add_argument("--rise", type=number(int, 1, maximum=MAX_PROBES), metavar="N", help="good probes in a row before a region is up (default: monitor consecutiveUp; 1 to 100)")
    p.add_argument("--expected-codes", metavar="CODES", help='healthy HTTP status codes, e.g. "200" or "2xx" (default: the monitor\'s)')
    p.add_argument("--origin-port", type=tcp_port(1), default=443, metavar="PORT", help="HTTPS port of the NodeBalancers (default 443; 1 to 65535)")
    p.add_argument("--ca-file", type=readable_file, metavar="PATH", help="CA bundle to verify origin certificates with (e.g. Cloudflare's Origin CA root); without it the certificate is not verified (SNI is still sent)")
    p.add_argument("--once", action="store_true", help="probe until every region has a state (at most max(fall, rise) rounds), act once, exit: 0 traffic on a healthy region, 1 otherwise")
    p.add_argument("--dry-run", action="store_true", help="decide and log, but write nothing (no DNS change, no lease, no alert)")
    p.add_argument("--auto-failback", action="store_true", help="move traffic back to an earlier region once it has been up for --stability-window")
    p.add_argument("--stability-window", type=seconds, default=DEFAULT_STABILITY_WINDOW, metavar="S", help="seconds an earlier region must stay up before an automatic failback (default 300; 0 to 86400)")
    p.add_argument("--lease", choices=("cloudflare", "file", "none"), default="cloudflare", help="single-writer lease: a TXT record _drctl-watch.<domain> (works across hosts), a lock file (one host), or none")
    p.add_argument("--lease-file", metavar="PATH", help="lock file for --lease file (default /run/drctl-watch/<stack>.lock)")
    p.add_argument("--lease-ttl", type=number(float, MIN_LEASE_TTL, maximum=DAY, unit="s"), metavar="S", help="seconds a lease lasts unless renewed; a dead holder is replaced after this (default max(600, 4 x interval); 60 to 86400)")
    p.add_argument("--holder-id", metavar="ID", help="this watchdog's name in the lease, unique per running process (default HOST:PID)")
    p.add_argument("--record-refresh", type=positive_seconds, default=DEFAULT_RECORD_REFRESH, metavar="S", help="seconds between re-reads of the DNS records when nothing happens (default 300; above 0, at most 86400)")
    p.add_argument("--metrics-port", type=tcp_port(0), metavar="PORT", help="serve Prometheus metrics on this port (0: any free port; 0 to 65535)")
    p.add_argument("--metrics-address", default="127.0.0.1", metavar="ADDR", help="address for --metrics-port (default 127.0.0.1)")
    p.add_argument("--alert-webhook", type=http_url, metavar="URL", help="POST a JSON event here on every switch and when every region is down")
    p.add_argument("--alert-command", type=program, metavar="CMD", help="run this command (event JSON on stdin, DRCTL_ALERT_* variables) on the same events")
    p.add_argument("--alert-timeout", type=number(float, 0, above=True, maximum=MAX_ALERT_SECONDS, unit="s"), default=5.0, metavar="S", help="seconds an alert hook may take (default 5; above 0, at most 300: the watchdog waits for it)")
    add_output_argument(p, "--once summary format")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    stop = threading.Event()
    try:
        watchdog = build(args)
    except (UsageError, OutputsError, CloudflareConfigError) as err:
        fail("watch", str(err))
        return EXIT_USAGE
    try:
        if args.once:
            return _once(watchdog, args)
        stop_on_signals(stop)
        watchdog.run(stop)
        return EXIT_OK
    finally:
        watchdog.close()
        if watchdog.metrics:
            watchdog.metrics.close()


def build(args: argparse.Namespace, *, log_stream=None, wall: Callable[[], float] = time.time) -> Watchdog:
    """Everything the flags and stack outputs say, checked; raises UsageError naming the flag."""
    if args.once and args.auto_failback:
        raise UsageError("--auto-failback needs a stability window watched over time: run the loop, not --once")
    outputs = _dns_outputs(args)
    settings, timeout, expected = _settings(args, outputs)
    api = CloudflareApi.from_env(budget=api_budget(outputs.objectives.rto_seconds))
    dns = DnsFailover.from_outputs(outputs, api)
    probe = HttpsProbe(outputs.domain, outputs.health_path, timeout, expected, args.origin_port, args.ca_file)
    log = EventLog(log_stream or sys.stderr, wall, {"stack": outputs.stack})
    lease = _lease(args, outputs, api, settings, wall)
    metrics = WatchMetrics([r.region for r in outputs.regions])
    serve_metrics(metrics, args, log)
    if not args.ca_file:
        log.emit("tls", verify=False, note="origin certificates not verified (no --ca-file); SNI and Host are "
                 f"{outputs.domain}")
    return Watchdog(
        stack=outputs.stack, domain=outputs.domain, regions=dns.regions, dns=dns, probe=probe, lease=lease,
        settings=settings, log=log, metrics=metrics,
        alerter=Alerter(args.alert_webhook, args.alert_command, args.alert_timeout), wall=wall,
    )


def _dns_outputs(args: argparse.Namespace) -> StackOutputs:
    """The stack outputs, of a stack whose traffic the watchdog can move (dns-failover mode)."""
    outputs = load_outputs(*stack_source(args))
    try:
        require_dns_mode(outputs)
    except OutputsError as err:
        raise UsageError(f"{source_flag(args)}: {err}") from None
    return outputs


def _settings(args: argparse.Namespace, outputs: StackOutputs) -> tuple[WatchSettings, float, str]:
    m = outputs.monitor
    interval = args.interval if args.interval is not None else float(m.interval)
    timeout = args.timeout if args.timeout is not None else float(m.timeout)
    if timeout >= interval:
        given = f"--timeout {timeout:g}" if args.timeout is not None else f"the stack's monitor timeout {timeout:g}"
        of = f"--interval {interval:g}" if args.interval is not None else f"the stack's monitor interval {interval:g} s"
        raise UsageError(f"--timeout: must be below {of} (got {given}; allowed: above 0 and below the interval)")
    # The stack's fast interval never slows a shorter --interval down; a given one must fit.
    fast = args.fast_interval if args.fast_interval is not None else min(interval, outputs_fast_interval(outputs))
    if fast > interval:
        raise UsageError(f"--fast-interval: must be at most the interval {interval:g} s (got {fast:g}; allowed: above "
                         "0, at most the interval)")
    expected = args.expected_codes or m.expected_codes
    if not valid_expected_codes(expected):
        raise UsageError(f'--expected-codes: use codes like "200" or "2xx", separated by commas (got {expected!r})')
    settings = WatchSettings(
        interval=interval,
        fall=args.fall or m.fall,
        rise=args.rise or m.rise,
        auto_failback=args.auto_failback,
        stability_window=args.stability_window,
        dry_run=args.dry_run,
        record_refresh=args.record_refresh,
        fast_interval=fast,
    )
    return settings, timeout, expected


def outputs_fast_interval(outputs: StackOutputs) -> float:
    """The stack's fast-confirm interval (traffic.monitor.fastInterval; 5 s for an older stack)."""
    return float(outputs.automation.fast_interval)


def _lease(args: argparse.Namespace, outputs: StackOutputs, api: CloudflareApi, settings: WatchSettings,
           wall: Callable[[], float]) -> Lease:
    holder = args.holder_id or f"{socket.gethostname()}:{os.getpid()}"
    if not holder or any(c.isspace() or c == '"' for c in holder):
        raise UsageError(f"--holder-id: no spaces or quotes (got {holder!r}; allowed: a name like HOST:PID)")
    if args.lease_file is not None and args.lease != "file":
        raise UsageError(f"--lease-file: applies to --lease file only (got {args.lease_file} with --lease {args.lease})")
    if args.lease_ttl is not None and args.lease != "cloudflare":
        raise UsageError(f"--lease-ttl: applies to --lease cloudflare only (got {args.lease_ttl:g} with --lease "
                         f"{args.lease})")
    if args.dry_run or args.lease == "none":
        return NoLease(holder)
    if args.lease == "file":
        path = args.lease_file or f"/run/drctl-watch/{outputs.stack}.lock"
        lease = FileLease(holder, path)
        try:
            lease.refresh()
        except OSError as err:
            raise UsageError(f"--lease-file: cannot open it, {(err.strerror or str(err)).lower()} (got {path}; "
                             "allowed: a file in a directory drctl can write)") from None
        return lease
    ttl = args.lease_ttl or max(600.0, 4 * settings.interval)
    if ttl < 4 * settings.interval:
        raise UsageError(f"--lease-ttl: must be at least 4 x the interval {settings.interval:g} s, "
                         f"{4 * settings.interval:g} s, so the holder renews it in time (got {ttl:g}; allowed: "
                         f"{max(MIN_LEASE_TTL, 4 * settings.interval):g} to {DAY:g})")
    return CloudflareLease(api, outputs.cloudflare.zone_id, outputs.domain, holder, ttl, wall)


def stop_on_signals(stop: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())


def _once(watchdog: Watchdog, args: argparse.Namespace) -> int:
    rounds = max(watchdog.settings.fall, watchdog.settings.rise)
    probes = watchdog.probe_round()
    for _ in range(rounds - 1):
        if watchdog.settled:
            break
        time.sleep(watchdog.next_delay())  # fast confirm: a failing region is settled sooner
        probes = watchdog.probe_round()
    report = watchdog.act(probes)
    healthy = _healthy(report, watchdog.settings.dry_run)
    if args.output == "json":
        json.dump(_summary(watchdog, report, healthy), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(_table(watchdog, report, healthy))
    return EXIT_OK if healthy else EXIT_FAILED


def _healthy(report: CycleReport, dry_run: bool) -> bool:
    """Traffic ends up (or, in a dry run, would end up) on a region that is not down."""
    d = report.decision
    if d is None:
        return False
    return d.action == "stay" or report.switched or (dry_run and d.switch)


def _verdict(report: CycleReport, dry_run: bool) -> str:
    d = report.decision
    if d is None:
        return "could not read the DNS records: " + "; ".join(report.errors)
    if report.switched:
        return f"switched the DNS records to {d.target} ({d.reason})"
    if d.switch:
        if dry_run:
            return f"dry run: would switch the DNS records to {d.target} ({d.reason})"
        return f"switch to {d.target} not made: " + ("; ".join(report.errors) or "another watchdog holds the lease")
    return d.reason


def _summary(watchdog: Watchdog, report: CycleReport, healthy: bool) -> dict[str, Any]:
    return {
        "stack": watchdog.stack,
        "domain": watchdog.domain,
        "regions": [
            {"region": r.region, "address": r.ipv4, "state": report.states[r.region],
             "probe": report.probes[r.region].describe(), "probeOk": report.probes[r.region].ok}
            for r in watchdog.regions
        ],
        "record": {"region": report.record_region, "byType": report.records.by_type() if report.records else None},
        "decision": None if report.decision is None else {
            "action": report.decision.action, "target": report.decision.target, "kind": report.decision.kind,
            "reason": report.decision.reason},
        "switched": report.switched,
        "dryRun": watchdog.settings.dry_run,
        "healthy": healthy,
        "verdict": _verdict(report, watchdog.settings.dry_run),
        "errors": report.errors,
    }


def _table(watchdog: Watchdog, report: CycleReport, healthy: bool) -> str:
    doc = _summary(watchdog, report, healthy)
    rows = [("REGION", "ADDRESS", "STATE", "LAST PROBE", "RECORD")]
    for r in doc["regions"]:
        here = [t for t, region in (doc["record"]["byType"] or {}).items() if region == r["region"]]
        rows.append((r["region"], r["address"], r["state"], r["probe"], ", ".join(here)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.append("")
    lines.append(f"{'ok' if healthy else 'FAILED'}: {doc['verdict']}")
    return "\n".join(lines) + "\n"


def serve_metrics(metrics: MetricsEndpoint, args: argparse.Namespace, log: EventLog) -> None:
    """Start /metrics when --metrics-port asks for it (drctl watch and drctl guard); a port that
    cannot be bound is the flag's mistake, said as a usage error."""
    if args.metrics_port is None:
        return
    try:
        port = metrics.serve(args.metrics_port, args.metrics_address)
    except OSError as err:
        raise UsageError(f"--metrics-port: cannot listen on {args.metrics_address}:{args.metrics_port} "
                         f"({err.strerror})") from None
    log.emit("metrics", address=args.metrics_address, port=port)
