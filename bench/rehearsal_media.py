"""The rehearsal's media step, a few planned and unplanned failovers: one table of media RPO figures.

    ./venv/bin/python bench/rehearsal_media.py [--stack dr-test] [--runs 3] [--time-scale 0.02]

Each run is `drctl rehearse --planned` or `--unplanned` (drctl/rehearsal/command.py) with the media
path for real (S3 servers, the nodes' media agent, rclone serve, nginx: drctl/rehearsal/media.py).
Per run, two figures for the drill's media object:

- **in DR bucket**: from its upload into the primary's bucket to its copy in the DR region's bucket
  (both buckets are plain folders of `rclone serve s3`, watched every 20 ms): what the copy takes;
- **served in DR** (the report's media RPO row): from the upload to the DR region's NodeBalancer
  serving it when the drill first looks, after the switch, so it includes the drill's own schedule
  (settle, fault, detection, promotion).
"""

from __future__ import annotations

import argparse
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

from drctl.drill.media import PREFIX
from drctl.local.mariadb import make_template
from drctl.rehearsal.command import rehearse
from drctl.rehearsal.topology import DEFAULT_TIME_SCALE, LocalTopology, RehearsalSpec


class CopyWatch:
    """When the drill's object shows up in the primary's bucket, then in the DR region's."""

    def __init__(self, topo: LocalTopology, primary: str, dr: str):
        self.folders = {region: topo.media.bucket_dir(region) / "uploads" / PREFIX for region in (primary, dr)}
        self.primary, self.dr = primary, dr
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set() and len(self.seen) < 2:
            for region, folder in self.folders.items():
                if region not in self.seen and folder.is_dir() and any(folder.iterdir()):
                    self.seen[region] = time.time()
            time.sleep(0.02)

    def copy_seconds(self) -> float | None:
        self.stop.set()
        self.thread.join()
        if len(self.seen) < 2:
            return None
        return round(self.seen[self.dr] - self.seen[self.primary], 2)


def run_one(spec: RehearsalSpec, template: Path, unplanned: bool) -> tuple[str, float | None, float | None]:
    watch: dict[str, CopyWatch] = {}
    hooks = {"before-media-upload": lambda topo: watch.setdefault("w", CopyWatch(topo, spec.regions[0],
                                                                                 spec.regions[1]))}
    report = rehearse(spec, unplanned=unplanned, template=template, say=lambda _: None, hooks=hooks).report
    copied = watch["w"].copy_seconds() if "w" in watch else None
    return report.outcome, copied, report.measured.get("mediaServedSeconds")


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
        for mode in ("planned", "unplanned"):
            for run in range(1, args.runs + 1):
                rows.append((mode, run, *run_one(spec, template, mode == "unplanned")))
    finally:
        shutil.rmtree(template_dir, ignore_errors=True)
    m = spec.media
    print(f"Rehearsal media RPO: stack {spec.stack} ({' -> '.join(spec.regions)}), time scale {spec.time_scale:g}: "
          f"objective {m.rpo_seconds} s, agent pass {m.pass_seconds:g} s, DR copy every {m.copy_period_seconds:g} s, "
          f"settle {m.settle_seconds:g} s; {platform.node()}, {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.1f} at the end")
    header = ("mode", "run", "outcome", "in DR bucket s", "served in DR s (report)")
    table = [header, *[tuple("n/a" if v is None else str(v) for v in row) for row in rows]]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    for label, column in (("in DR bucket", 3), ("served in DR", 4)):
        values = [r[column] for r in rows if r[column] is not None]
        if values:
            print(f"{label}: median {statistics.median(values):.2f} s, max {max(values):.2f} s over {len(values)} runs")
    return 0 if all(r[2] == "passed" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
