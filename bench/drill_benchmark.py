"""The drill under sustained order load, on this machine: one run, one table.

    ./venv/bin/python bench/drill_benchmark.py [--stack dr-test] [--load-seconds 5] [--threads 4]

Two rehearsals of the stack (drctl/rehearsal/command.py: real MariaDB, HAProxy and shop processes, health
checks scaled by --time-scale), each with the order writer running as fast as the front door takes
orders: a planned failover (the primary's NodeBalancer nodes reject; its database stays reachable)
and an unplanned one (the primary's database and origins killed). Before each fault, for
--load-seconds under that load, the primary's heartbeat row is rewritten every 10 ms and the
replica's copy of it is read every 10 ms: its age is the replication lag as the data sees it (the
stack's own heartbeat, once a second, cannot resolve less than a second).

Measured per run: orders/s acknowledged under load, replication lag p50/p99, orders lost (exact,
by sequence number; a planned failover must lose none), RTO and its detection / promotion /
traffic-switch parts.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drctl.local.mariadb import make_template
from drctl.mysql import replication
from drctl.rehearsal.command import RehearsalResult, rehearse
from drctl.rehearsal.topology import DEFAULT_TIME_SCALE, LocalTopology, RehearsalSpec

HEARTBEAT_PERIOD = 0.01


def sample_lag(topo: LocalTopology, seconds: float) -> list[float]:
    """Rewrite the primary's heartbeat every 10 ms and read the replica's age of it every 10 ms."""
    primary, replica = (topo.regions[r].database for r in topo.spec.regions[:2])
    stop = threading.Event()

    def beat() -> None:
        with contextlib.closing(primary.connect()) as conn:
            while not stop.wait(HEARTBEAT_PERIOD):
                replication.write_heartbeat(conn)

    writer = threading.Thread(target=beat, daemon=True)
    writer.start()
    samples = []
    try:
        time.sleep(0.2)  # the first fast beats reach the replica
        deadline = time.monotonic() + seconds
        with contextlib.closing(replica.connect()) as conn:
            while time.monotonic() < deadline:
                lag = replication.heartbeat_lag(conn)
                if lag is not None:
                    samples.append(max(0.0, lag))
                time.sleep(HEARTBEAT_PERIOD)
    finally:
        stop.set()
        writer.join()
    return samples


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def run_one(spec: RehearsalSpec, template: Path, unplanned: bool, load_seconds: float,
            threads: int) -> tuple[RehearsalResult, list[float], float]:
    lag: list[float] = []
    window: dict[str, float] = {}

    def before_fault(topo: LocalTopology) -> None:
        window["from"] = time.time()
        lag.extend(sample_lag(topo, load_seconds))
        window["to"] = time.time()

    # No media path: this measures the databases under load, and the lag sampling before the fault
    # would stretch the media step's figure past its objective (bench/rehearsal_media.py measures it).
    result = rehearse(spec, unplanned=unplanned, template=template, say=lambda _: None, writer_rate=None,
                      writer_threads=threads, hooks={"before-fault": before_fault}, media=False)
    in_window = [w for w in result.writes if w.ok and window["from"] <= w.finished <= window["to"]]
    return result, lag, len(in_window) / (window["to"] - window["from"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", default="dr-test")
    parser.add_argument("--time-scale", type=float, default=DEFAULT_TIME_SCALE)
    parser.add_argument("--load-seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=4, help="order writer threads (default 4)")
    args = parser.parse_args()

    spec = RehearsalSpec.from_stack(args.stack, time_scale=args.time_scale)
    base = Path(tempfile.mkdtemp(prefix="wcdr-bench-"))
    started = time.monotonic()
    try:
        template = make_template(base)
        runs = {name: run_one(spec, template, unplanned, args.load_seconds, args.threads)
                for name, unplanned in (("planned", False), ("unplanned", True))}
    finally:
        shutil.rmtree(base, ignore_errors=True)

    def row(label: str, value) -> str:
        return f"| {label} | " + " | ".join(value(*runs[name]) for name in runs) + " |"

    def measured(key: str, unit: str = " s"):
        return lambda result, _lag, _rate: (f"{result.report.measured[key]:.3f}{unit}"
                                            if result.report.measured.get(key) is not None else "n/a")

    print(f"drctl drill benchmark: stack {spec.stack} ({' -> '.join(spec.regions)}), checks x{spec.time_scale:g}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, {args.threads} writer threads, "
          f"{args.load_seconds:g} s of load before each fault; {time.monotonic() - started:.0f} s in all\n")
    print("| | planned failover (nodes reject) | unplanned failover (region killed) |")
    print("|---|---|---|")
    print(row("orders/s acknowledged under load", lambda _r, _l, rate: f"{rate:.0f}"))
    print(row("replication lag p50 (heartbeat every 10 ms)", lambda _r, lag, _x: f"{percentile(lag, 50) * 1000:.1f} ms"))
    print(row("replication lag p99", lambda _r, lag, _x: f"{percentile(lag, 99) * 1000:.1f} ms"))
    print(row("lag samples", lambda _r, lag, _x: str(len(lag))))
    print(row("orders lost (acknowledged, missing after promotion)",
              lambda r, _l, _x: f"{r.report.measured.get('ordersLost')} of {r.report.measured.get('ordersAcknowledgedByOldPrimary')}"))
    print(row("RTO (last order in old primary to first in new)", measured("rtoSeconds")))
    print(row("  detection (fault to traffic leaving the region)", measured("detectionSeconds")))
    print(row("  promotion (promote started to new primary writable)", measured("promotionSeconds")))
    print(row("  traffic switch (writable to first order there)", measured("trafficSwitchSeconds")))
    print(row("drill verdict", lambda r, _l, _x: r.report.outcome))
    print("\nheartbeat lag mean: " + ", ".join(f"{name} {statistics.fmean(lag) * 1000:.1f} ms"
                                                for name, (_r, lag, _x) in runs.items()))
    for name, (result, _lag, _rate) in runs.items():
        if result.report.aborted:
            print(f"{name}: stopped early: {result.report.aborted}")
        for check in result.report.checks:
            if not check.passed:
                print(f"{name}: FAILED check {check.name}: {check.detail}")
    planned_lost = runs["planned"][0].report.measured.get("ordersLost")
    if planned_lost != 0:
        print(f"FAIL: the planned failover lost {planned_lost} orders", file=sys.stderr)
        return 1
    return 0 if all(r.report.outcome == "passed" for r, _l, _x in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
