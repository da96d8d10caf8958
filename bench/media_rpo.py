"""Benchmark: media RPO, upload -> served, on this machine's real parts.

Two regions of two web nodes each (tests/support/media_nodes.py): real nginx with the program's
uploads snippet, real rclone serving each region's bucket, the real media agent on every node,
and a real S3 server (moto) on loopback standing in for Linode Object Storage. N uploads of SIZE
bytes are written on the primary region's first node as WordPress writes them, one every GAP
seconds; each is then fetched until served (whole and byte-identical) by
- the other node of the same region (through the region's bucket: the <= 5 s promise), and
- a node of the DR region (through the replicated bucket: bounded by objectives.mediaRpoSeconds).

The agents run with the program's settings for `--media-rpo` (the replicator copies every quarter
of it); the S3 server runs in its own process. Loopback has no WAN: on Linode
the cross-region copy adds transfer time per byte; the copy interval dominates either way.

Run: ./venv/bin/python bench/media_rpo.py [--uploads 100] [--size-mb 1] [--media-rpo 60]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.media_storage import PUSH_INTERVAL_SECONDS, replicate_interval
from tests.support.media_nodes import MediaShop


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=100)
    parser.add_argument("--size-mb", type=float, default=1.0)
    parser.add_argument("--gap", type=float, default=0.1, help="seconds between uploads")
    parser.add_argument("--media-rpo", type=int, default=60, help="objectives.mediaRpoSeconds of the agents")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    size = int(args.size_mb * 1024 * 1024)
    with tempfile.TemporaryDirectory(prefix="media-bench-") as root:
        shop = MediaShop(Path(root), media_rpo_seconds=args.media_rpo, store_in_own_process=True,
                         reconcile_interval_seconds=None)
        try:
            a, b = shop["us-east"].nodes
            dr = shop["eu-west"].nodes[1]
            contents, uploaded = {}, {}
            results: dict[str, dict[str, float]] = {"same region (node B)": {}, "DR region (eu-west)": {}}
            deadline = time.monotonic() + args.timeout

            # HEAD while polling, 8 at a time, from the moment of each upload (a 1 MB body per poll
            # would skew the clock of the files behind it); every body is compared at the end.
            def poll(job: tuple[dict, object, str]) -> None:
                done, node, path = job
                answer = node.get(f"/wp-content/uploads/{path}", method="HEAD")
                if answer.status == 200 and answer.headers.get("content-length") == str(size):
                    done[path] = time.monotonic() - uploaded[path]

            def poller() -> None:
                with ThreadPoolExecutor(8) as pool:
                    while time.monotonic() < deadline and any(len(r) < args.uploads for r in results.values()):
                        jobs = [(done, node, path) for done, node in zip(results.values(), (b, dr), strict=True)
                                for path in list(uploaded) if path not in done]
                        list(pool.map(poll, jobs))
                        time.sleep(0.05)

            polling = threading.Thread(target=poller)
            for i in range(args.uploads):
                path = f"2026/11/bench-{i:04d}.jpg"
                contents[path] = os.urandom(size)
                a.upload(path, contents[path])
                uploaded[path] = time.monotonic()
                if i == 0:
                    polling.start()
                time.sleep(args.gap)
            polling.join()
            for name, node in (("same region (node B)", b), ("DR region (eu-west)", dr)):
                for path in list(results[name]):
                    answer = node.get(f"/wp-content/uploads/{path}")
                    if answer.truncated or answer.body != contents[path]:
                        print(f"{name}: {path} served with the wrong content", file=sys.stderr)
                        del results[name][path]
        finally:
            shop.close()
    print(f"media RPO: {args.uploads} uploads of {args.size_mb:g} MB, one every {args.gap:g} s; agent push every "
          f"{PUSH_INTERVAL_SECONDS} s, DR copy every {replicate_interval(args.media_rpo)} s "
          f"(objectives.mediaRpoSeconds {args.media_rpo})")
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.1f} at the end (other work on the machine slows "
          "every figure)")
    print(f"{'served by':<24}{'served':>8}{'p50 s':>9}{'p99 s':>9}{'max s':>9}{'objective s':>13}")
    for (name, done), objective in zip(results.items(), (5, args.media_rpo), strict=True):
        latencies = list(done.values())
        if latencies:
            print(f"{name:<24}{len(latencies):>8}{statistics.median(latencies):>9.2f}"
                  f"{percentile(latencies, 99):>9.2f}{max(latencies):>9.2f}{objective:>13}")
        else:
            print(f"{name:<24}{0:>8}{'-':>9}{'-':>9}{'-':>9}{objective:>13}")
    missing = sum(args.uploads - len(done) for done in results.values())
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
