"""Point-in-time recovery on this machine: archive lag under order load, and restore time for a
generated shop. One run, tables printed.

    ./venv/bin/python bench/pitr_benchmark.py lag [--rate 200] [--seconds 60] [--segment 10 1]
    ./venv/bin/python bench/pitr_benchmark.py restore [--size-gb 1] [--orders 20000]

Real parts throughout: a MariaDB primary and replica (drctl/local), a real S3 server on loopback
(drctl/local/s3_server.py: `rclone serve s3` over a directory, in a process of its own), the real
mariadb-binlog and mariadb-dump, the archiver and the restore of drctl/backup.

lag: one writer commits sequence-numbered orders at --rate per second for --seconds while the
archiver ships pieces every --segment seconds. An order's archive lag is the moment the piece
holding it was uploaded (its manifest's archivedAt) minus the order's own commit time (NOW(6)),
exact to the microsecond: one writer, one transaction per order, so order k is GTID base+k.

restore: a table of 1 KiB rows of random text filled to --size-gb on the primary, a base backup
from the replica, then --orders orders archived as binlog; then a restore to the last order onto a
fresh server, timed per phase: download (fetch + checksum of the base), load (decrypt + load the
base), replay (fetch, check, decrypt and replay every binlog piece).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drctl.backup.archiver import Archiver, Source
from drctl.backup.base_backup import schemas_to_dump, take_base_backup
from drctl.backup.manifest import load_pieces
from drctl.backup.restore import Target, apply_restore, plan_restore
from drctl.cloud.s3_bucket import Bucket, BucketAccess
from drctl.drill import orders
from drctl.local import mariadb as local
from drctl.local import s3_server

REPL = ("repl", "repl-pw")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


@contextlib.contextmanager
def setup(workdir: Path):
    ca = local.LocalCA.create(workdir / "ca")
    template = local.make_template(workdir / "template")
    group = local.MariaDBCluster(ca, template)
    try:
        primary = group.add()
        replica = group.add(extra_args=("--read-only",))
        primary.create_user(*REPL, "REPLICATION SLAVE ON *.*")
        with contextlib.closing(primary.connect()) as conn:
            orders.create_schema(conn)
        local.replicate(replica, primary, *REPL)
        with s3_server.start(workdir / "s3", workdir / "s3.log") as store:
            name = store.create_bucket(f"bench-{os.urandom(4).hex()}")
            # Long timeouts: the loopback server shares this loaded machine with MariaDB.
            bucket = Bucket(BucketAccess(store.endpoint, name, store.access_key, store.secret_key, store.region),
                            timeout=300)
            yield group, primary, replica, bucket
    finally:
        group.close()


def base_backup(bucket, key, replica, workdir):
    return take_base_backup(bucket, key, (f"--socket={replica.socket}", "--user=root"),
                            schemas_to_dump(replica.connect), work_dir=workdir, say=lambda _: None)


def start_archiver(bucket, key, primary, start, spool: Path, segment: float):
    archiver = Archiver(bucket, key, spool, lambda: [Source(primary.host, primary.port, *REPL, primary.tls.ca)],
                        start, segment_seconds=segment, say=lambda _: None)
    stop = threading.Event()
    thread = threading.Thread(target=archiver.run, args=(stop.is_set, 0.1), daemon=True)
    thread.start()
    return archiver, stop, thread


def write_orders(server, first: int, count: int, rate: float | None) -> None:
    with contextlib.closing(server.connect()) as conn:
        started = time.monotonic()
        for i in range(count):
            if rate:
                delay = started + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            orders.insert_order(conn, first + i, "us-east")


def measure_lag(rate: float, seconds: float, segment: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="wcdr-bench-") as tmp:
        work = Path(tmp)
        with setup(work) as (_, primary, replica, bucket):
            key = os.urandom(32)
            base = base_backup(bucket, key, replica, work)
            archiver, stop, thread = start_archiver(bucket, key, primary, base.gtid_pos, work / "spool", segment)
            count = int(rate * seconds)
            began = time.monotonic()
            write_orders(primary, 1, count, rate)
            achieved = count / (time.monotonic() - began)
            final = primary.query("SELECT @@gtid_binlog_pos")[0][0]
            last_seq = int(final.split("-")[-1])
            deadline = time.monotonic() + 120
            while archiver.archived.last.get(0) is None or archiver.archived.last[0].seq < last_seq:
                if time.monotonic() > deadline:
                    raise SystemExit("the archive did not catch up within 120 s")
                time.sleep(0.2)
            stop.set()
            thread.join(timeout=30)
            written = dict(primary.query("SELECT seq, UNIX_TIMESTAMP(written_at) FROM drctl_drill.orders"))
            first_gtid = base.gtid_pos.last[0].seq + 1  # order k is GTID first_gtid + k - 1
            lags = []
            for piece in load_pieces(bucket):
                if 0 not in piece.first:
                    continue
                for gseq in range(piece.first[0].seq, piece.last[0].seq + 1):
                    order = gseq - first_gtid + 1
                    if order in written:
                        lags.append(piece.archived_at - float(written[order]))
            assert len(lags) == count, (len(lags), count)
            return {"segment": segment, "rate": achieved, "orders": count, "p50": percentile(lags, 50),
                    "p99": percentile(lags, 99), "max": max(lags), "pieces": len(load_pieces(bucket))}


def fill(server, size_gb: float) -> int:
    """A table of ~1 KiB rows of random text until it holds size_gb of row data."""
    rows_wanted = int(size_gb * 1024 * 1024)
    server.execute(
        "CREATE DATABASE IF NOT EXISTS shop",
        "CREATE TABLE shop.wp_posts (id BIGINT AUTO_INCREMENT PRIMARY KEY, post_content TEXT NOT NULL) ENGINE=InnoDB",
        "INSERT INTO shop.wp_posts (post_content) SELECT REPEAT(MD5(RAND()), 32) FROM shop.seq_1_to_1000")
    rows = 1000
    with contextlib.closing(server.connect()) as conn, conn.cursor() as cur:
        while rows < rows_wanted:
            batch = min(rows, rows_wanted - rows, 100000)
            cur.execute(f"INSERT INTO shop.wp_posts (post_content) SELECT REPEAT(MD5(RAND()), 32) "  # noqa: S608
                        f"FROM shop.seq_1_to_{batch}")
            rows += batch
    return rows


def measure_restore(size_gb: float, order_count: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="wcdr-bench-", dir=os.environ.get("BENCH_DIR")) as tmp:
        work = Path(tmp)
        with setup(work) as (group, primary, replica, bucket):
            key = os.urandom(32)
            t = time.monotonic()
            rows = fill(primary, size_gb)
            replica_caught = primary.query("SELECT @@gtid_binlog_pos")[0][0]
            while replica.query("SELECT @@gtid_slave_pos")[0][0] != replica_caught:
                time.sleep(0.5)
            generate = time.monotonic() - t
            t = time.monotonic()
            base = base_backup(bucket, key, replica, work)
            backup = time.monotonic() - t
            archiver, stop, thread = start_archiver(bucket, key, primary, base.gtid_pos, work / "spool", 2)
            write_orders(primary, 1, order_count, None)
            last_seq = int(primary.query("SELECT @@gtid_binlog_pos")[0][0].split("-")[-1])
            while archiver.archived.last.get(0) is None or archiver.archived.last[0].seq < last_seq:
                time.sleep(0.2)
            stop.set()
            thread.join(timeout=30)
            last_time = primary.query("SELECT MAX(UNIX_TIMESTAMP(written_at)) FROM drctl_drill.orders")[0][0]
            target = group.add(extra_args=("--innodb-buffer-pool-size=512M",))
            stamps: dict[str, float] = {}

            def say(line: str) -> None:  # the restore's progress lines mark its phases
                for prefix, phase in (("downloading base", "start"), ("loading the base", "loading"),
                                      ("fetched binlog", "binlog")):
                    if line.startswith(prefix):
                        stamps.setdefault(phase, time.monotonic())

            plan = plan_restore(bucket, to_time=datetime.fromtimestamp(float(last_time), UTC))
            report = apply_restore(bucket, key, plan, Target((f"--socket={target.socket}", "--user=root"),
                                                             target.connect, "bench target"), work_dir=work, say=say)
            done = time.monotonic()
            total = done - stamps["start"]
            phases = {"download": stamps["loading"] - stamps["start"],
                      "load": stamps.get("binlog", done) - stamps["loading"],
                      "replay": done - stamps.get("binlog", done)}
            restored = target.query("SELECT COUNT(*) FROM drctl_drill.orders")[0][0]
            assert restored == order_count, (restored, order_count)
            assert target.query("SELECT COUNT(*) FROM shop.wp_posts")[0][0] == rows
            return {"size_gb": size_gb, "rows": rows, "dump_bytes": base.size, "generate": generate,
                    "backup": backup, "restore": total, **phases,
                    "binlog_objects": report.objects - 1, "orders": order_count}


class LoadSampler:
    """The 1-minute load average every few seconds while a row is measured: the machine is shared,
    and a figure means little without what else ran."""

    def __init__(self, every: float = 5.0):
        self.every, self.samples = every, [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="load")

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def line(self) -> str:
        return (f"  (load average during the row: {min(self.samples):.1f} to {max(self.samples):.1f}, "
                f"median {percentile(self.samples, 50):.1f})")


def machine() -> str:
    return f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="part", required=True)
    lag = sub.add_parser("lag")
    lag.add_argument("--rate", type=float, default=200)
    lag.add_argument("--seconds", type=float, default=60)
    lag.add_argument("--segment", type=float, nargs="+", default=[10, 1])
    restore = sub.add_parser("restore")
    restore.add_argument("--size-gb", type=float, nargs="+", default=[1])
    restore.add_argument("--orders", type=int, default=20000)
    args = parser.parse_args()
    print(machine())
    print(f"object store: rclone serve s3 ({s3_server.rclone_binary()}) on loopback; started {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    if args.part == "lag":
        print(f"{'segment s':>9} {'orders/s':>9} {'orders':>7} {'pieces':>6} {'lag p50 s':>9} {'lag p99 s':>9} "
              f"{'lag max s':>9}")
        for segment in args.segment:
            with LoadSampler() as load:
                r = measure_lag(args.rate, args.seconds, segment)
            print(f"{r['segment']:>9g} {r['rate']:>9.1f} {r['orders']:>7} {r['pieces']:>6} {r['p50']:>9.2f} "
                  f"{r['p99']:>9.2f} {r['max']:>9.2f}", flush=True)
            print(load.line(), flush=True)
    else:
        print(f"{'size GB':>7} {'rows':>9} {'dump MB':>8} {'generate s':>10} {'base backup s':>13} "
              f"{'restore s':>9} {'download s':>10} {'load base s':>11} {'replay s':>8} {'binlog objs':>11} "
              f"{'orders':>7}")
        for size in args.size_gb:
            with LoadSampler() as load:
                r = measure_restore(size, args.orders)
            print(f"{r['size_gb']:>7g} {r['rows']:>9} {r['dump_bytes'] / 1e6:>8.0f} {r['generate']:>10.1f} "
                  f"{r['backup']:>13.1f} {r['restore']:>9.1f} {r['download']:>10.1f} {r['load']:>11.1f} "
                  f"{r['replay']:>8.1f} {r['binlog_objects']:>11} {r['orders']:>7}", flush=True)
            print(load.line(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
