"""Every region down, rehearsed on this machine a few times: one table of what shoppers got.

    ./venv/bin/python bench/outage_benchmark.py [--stack dr-test] [--runs 3] [--time-scale 0.02]

Each run is `drctl rehearse --fault all-regions-down` (drctl/rehearsal/command.py: real MariaDB,
HAProxy and shop processes, the fallback page's Worker under Node as the edge, health checks scaled
by --time-scale). Per run: seconds from the fault to the first fallback page through the edge,
shopper requests during the outage that got the page, what the health path got, seconds until the
load balancer (HAProxy's checks) saw every region down, and the recovery time: from the primary
region's nodes being back to the first shop page through the edge. The recovery is bounded below by
the scaled monitor (one check interval, `consecutiveUp` checks), so it says more about the stack's
monitor settings than about the Worker, which adds nothing to it.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drctl.drill.faults import ALL_REGIONS_DOWN
from drctl.local.mariadb import make_template
from drctl.rehearsal.command import rehearse
from drctl.rehearsal.topology import DEFAULT_TIME_SCALE, RehearsalSpec


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", default="dr-test")
    parser.add_argument("--runs", type=int, default=3, choices=range(1, 11), metavar="1-10")
    parser.add_argument("--time-scale", type=float, default=DEFAULT_TIME_SCALE)
    args = parser.parse_args()
    spec = RehearsalSpec.from_stack(args.stack, time_scale=args.time_scale)
    template_dir = Path(tempfile.mkdtemp(prefix="wcdr-bench-"))
    rows = []
    try:
        template = make_template(template_dir)
        for run in range(1, args.runs + 1):
            report = rehearse(spec, fault=ALL_REGIONS_DOWN, template=template, say=lambda _: None).report
            m = report.measured
            page, health = m.get("fallbackPage") or {}, m.get("healthPath") or {}
            rows.append((run, report.outcome, page.get("servedAfterSeconds"),
                         f"{m.get('outagePageAnswers')}/{m.get('outageRequests')}",
                         page.get("status"), page.get("retryAfter"), page.get("title"),
                         health.get("status"), m.get("balancerSawEveryRegionDownAfterSeconds"),
                         m.get("recoverySeconds"), m.get("pagesWhileRecovering")))
    finally:
        shutil.rmtree(template_dir, ignore_errors=True)
    print(f"Every region down, rehearsed: stack {spec.stack} ({', '.join(spec.regions)}), time scale "
          f"{spec.time_scale:g} (monitor interval {spec.monitor_interval_ms} ms, consecutiveUp {spec.monitor_rise}), "
          f"recovery objective {spec.rto_seconds} s; {platform.node()}, {platform.python_version()}")
    header = ("run", "outcome", "page after s", "pages/requests", "status", "Retry-After", "title", "health path",
              "LB saw all down s", "recovery s", "pages while recovering")
    table = [header, *[tuple("n/a" if v is None else str(v) for v in row) for row in rows]]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    recoveries = [r[9] for r in rows if r[9] is not None]
    if recoveries:
        print(f"recovery: median {statistics.median(recoveries):.3f} s, max {max(recoveries):.3f} s over "
              f"{len(recoveries)} run(s)")
    return 0 if all(r[1] == "passed" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
