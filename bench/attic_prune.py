"""Benchmark: pruning a media bucket's attic (media.atticRetentionDays), on this machine's real parts.

The web node's media agent (components/templates/web-node/media-agent.py, `prune_attic`) and the
rclone on PATH (Debian's, as on the nodes) against a real S3 server on loopback (moto, in its own
process, tests/support/object_store.py). The attic holds FOLDERS folders of OBJECTS small objects
each, half of them older than the retention; the bucket's uploads/ holds as many live objects.
Printed: how long one prune takes (the hourly pass on the region's first node), and a second pass
with nothing left to remove (the listing alone).

Run: ./venv/bin/python bench/attic_prune.py [--folders 20] [--objects 100]
"""

from __future__ import annotations

import argparse
import calendar
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.machinery import SourceFileLoader
from importlib.util import module_from_spec, spec_from_loader
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components import media_storage
from components.media_storage import BucketAccess
from tests.support.object_store import ACCESS_KEY, SECRET_KEY, ObjectStore

NOW = calendar.timegm((2026, 11, 29, 12, 0, 0, 0, 0, 0))


def load_agent():
    loader = SourceFileLoader("media_agent", str(media_storage.TEMPLATES / "media-agent.py"))
    module = module_from_spec(spec_from_loader("media_agent", loader))
    loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folders", type=int, default=20)
    parser.add_argument("--objects", type=int, default=100, help="objects per attic folder")
    args = parser.parse_args()
    agent = load_agent()
    with ObjectStore(regions=("us-east",), own_process=True) as store, tempfile.TemporaryDirectory() as work:
        name = store.bucket("wcdr-bench-media-us-east")
        config = Path(work, "media-rclone.conf")
        config.write_text(media_storage.rclone_config(
            (BucketAccess("us-east", "us-east", name, store.endpoints["us-east"].url),), ACCESS_KEY, SECRET_KEY))
        keys = [f"attic/{agent.attic_stamp(NOW - (10 + 5 * f) * 86400)}/2026/{f % 12 + 1:02d}/img-{o}.jpg"
                for f in range(args.folders) for o in range(args.objects)]
        keys += [f"uploads/2026/{o % 12 + 1:02d}/live-{o}.jpg" for o in range(args.folders * args.objects // 2)]
        client = store.client()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda k: client.put_object(Bucket=name, Key=k, Body=b"x" * 1024), keys))
        attic = len(store.keys(name, "attic/"))
        rclone = agent.Rclone("rclone", str(config))
        started = time.monotonic()
        first = agent.prune_attic(rclone, f"media-us-east:{name}", 30, NOW, Path(work))
        first_s = time.monotonic() - started
        left = len(store.keys(name, "attic/"))
        started = time.monotonic()
        agent.prune_attic(rclone, f"media-us-east:{name}", 30, NOW, Path(work))
        second_s = time.monotonic() - started
        assert store.keys(name, "uploads/") and len(store.keys(name, "uploads/")) == args.folders * args.objects // 2
    print(f"attic prune: {args.folders} folders of {args.objects} objects (1 KB), one every 5 days from 10 days old, "
          f"retention 30 days; rclone on PATH against a loopback S3 server (own process)")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end")
    print(f"{'pass':<28}{'attic before':>14}{'removed':>10}{'left':>8}{'seconds':>10}")
    print(f"{'first (removes expired)':<28}{attic:>14}{attic - left:>10}{left:>8}{first_s:>10.2f}")
    print(f"{'second (nothing to do)':<28}{left:>14}{0:>10}{left:>8}{second_s:>10.2f}")
    print(f"folders removed {first['removed_folders']}, kept {first['kept_folders']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
