"""Point-in-time recovery for real: a MariaDB primary and replica, the loopback S3 server, the real
mariadb-binlog and mariadb-dump, orders written all along."""

from __future__ import annotations

import contextlib
import json
import time
from datetime import UTC, datetime

import pytest

from drctl.backup.binlog_events import Gtid
from drctl.backup.manifest import iso
from drctl.backup.restore import RestoreError, apply_restore, plan_restore
from drctl.backup.sealing import ChecksumError
from drctl.drill import orders
from drctl.watch.alerts import Alerter
from tests.support.archive_setup import gtid_pos
from tests.support.object_store import ACCESS_KEY
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


def orders_by_time(server) -> dict[int, float]:
    rows = server.query("SELECT seq, UNIX_TIMESTAMP(written_at) FROM drctl_drill.orders")
    return {int(seq): float(at) for seq, at in rows}


def archived_everything(archiver, server) -> bool:
    return all(archiver.archived.includes(g) for g in gtid_pos(server).last.values())


def last_order_time(server) -> datetime:
    return datetime.fromtimestamp(max(orders_by_time(server).values()), UTC)


def restored_orders(server) -> set[int]:
    return {int(r[0]) for r in server.query("SELECT seq FROM drctl_drill.orders")}


def write_orders(server, seqs) -> None:
    """One transaction per order."""
    with contextlib.closing(server.connect()) as conn:
        for seq in seqs:
            orders.insert_order(conn, seq, server.name)


def wait_for_orders(load, count: int) -> None:
    start = len(load.acknowledged)
    wait_until(lambda: len(load.acknowledged) >= start + count, 30, f"{count} more orders")


def test_restore_to_just_before_a_bad_import_has_every_order_before_it_and_none_of_the_import(archive, mariadb_cluster):
    base = archive.base_backup()
    archiver = archive.start_archiver(base.gtid_pos)
    with archive.orders() as load:
        wait_for_orders(load, 200)
        # The bad import: a whole second after the restore point, so the second boundary splits them.
        restore_point = datetime.now(UTC)
        wait_until(lambda: int(time.time()) >= int(restore_point.timestamp()) + 1, 5, "the next second")
        archive.primary.execute(
            "CREATE TABLE drctl_drill.imported (id INT PRIMARY KEY)",
            "INSERT INTO drctl_drill.imported SELECT seq FROM drctl_drill.orders",
            "UPDATE drctl_drill.orders SET region = 'import-overwrote-me'")
        wait_for_orders(load, 100)
    wait_until(lambda: archived_everything(archiver, archive.primary), 30, "the archive to hold every transaction")

    written = orders_by_time(archive.primary)
    cutoff = int(restore_point.timestamp())
    before = {seq for seq, at in written.items() if int(at) <= cutoff}
    after = set(written) - before
    assert len(before) >= 200 and after  # the load ran on both sides of the restore point

    plan = plan_restore(archive.bucket, to_time=restore_point)
    assert plan.base.stamp == base.stamp and plan.files
    target = mariadb_cluster.add()
    report = apply_restore(archive.bucket, archive.key, plan, archive.target(target), work_dir=archive.tmp,
                           say=archive.said.append)

    assert restored_orders(target) == before
    assert target.query("SELECT COUNT(*) FROM drctl_drill.orders WHERE region = 'import-overwrote-me'") == [(0,)]
    assert target.query("SHOW TABLES IN drctl_drill LIKE 'imported'") == []
    assert report.row_counts["drctl_drill.orders"] == len(before)
    assert report.last_transaction_time == iso(max(int(written[seq]) for seq in before))


def test_restore_to_a_gtid_stops_right_after_that_transaction(archive, mariadb_cluster):
    base = archive.base_backup()
    archiver = archive.start_archiver(base.gtid_pos)
    write_orders(archive.primary, range(1, 21))
    wait_until(lambda: archived_everything(archiver, archive.primary), 30, "the archive to hold every transaction")
    twentieth = gtid_pos(archive.primary).last[0]
    target_gtid = Gtid(twentieth.domain, twentieth.server, twentieth.seq - 10)  # the 10th insert

    target = mariadb_cluster.add()
    plan = plan_restore(archive.bucket, to_gtid=target_gtid)
    report = apply_restore(archive.bucket, archive.key, plan, archive.target(target), work_dir=archive.tmp,
                           say=archive.said.append)
    assert restored_orders(target) == set(range(1, 11))
    assert report.gtid_pos == str(target_gtid)


def test_promotion_mid_archive_leaves_no_gap(archive, mariadb_cluster):
    base = archive.base_backup()
    archiver = archive.start_archiver(base.gtid_pos)
    with archive.orders() as load:
        wait_for_orders(load, 100)
        # A switchover: fence the old primary, let the replica catch up, make it the primary.
        archive.primary.execute("SET GLOBAL read_only = 1")
        wait_until(lambda: gtid_pos(archive.replica) == gtid_pos(archive.primary), 20, "the replica to catch up")
        archive.replica.execute("STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = 0")
        wait_for_orders(load, 100)
    wait_until(lambda: archived_everything(archiver, archive.replica), 30, "the archive to follow the new primary")
    assert archiver.gap is None
    assert any("continues at" in line and "no gap" in line for line in archive.said), archive.said

    target = mariadb_cluster.add()
    plan = plan_restore(archive.bucket, to_time=last_order_time(archive.replica))
    assert len({f.session for f in plan.files}) >= 2  # both primaries' binlogs are used
    apply_restore(archive.bucket, archive.key, plan, archive.target(target), work_dir=archive.tmp,
                  say=archive.said.append)
    assert restored_orders(target) == set(load.acknowledged)


def test_object_store_outage_is_caught_up_and_reported_as_behind(archive, mariadb_cluster, tmp_path):
    base = archive.base_backup()
    alerts = tmp_path / "alerts.jsonl"
    alerter = Alerter(command=f"sh -c 'cat >> {alerts}; echo >> {alerts}'")
    archiver = archive.start_archiver(base.gtid_pos, rpo_seconds=1, alert=alerter.send)
    endpoint = archive.store.endpoints["dr"]
    with archive.orders() as load:
        wait_for_orders(load, 50)
        endpoint.down()
        wait_until(lambda: archiver.health().behind and archiver.health().store_error, 30,
                   "the archiver to say it is behind")
        outage_started = len(load.acknowledged)
        # The same code path as a long outage: orders keep coming while nothing can be shipped. (The lag
        # may pass 2 s before the store error is even seen, on a busy machine: wait for new orders too.)
        wait_until(lambda: archiver.health().lag_seconds > 2 and len(load.acknowledged) > outage_started, 30,
                   "the lag to grow past the backup RPO while orders keep coming")
        assert archiver.health().store_error
        endpoint.up()
        wait_for_orders(load, 50)
    wait_until(lambda: archived_everything(archiver, archive.primary), 60, "the archive to catch up")
    assert archiver.was_behind
    wait_until(lambda: not archiver.health().behind, 30, "the archiver to say it has caught up")
    events = [json.loads(line) for line in alerts.read_text().splitlines() if line.strip()]
    assert [e["event"] for e in events][:2] == ["archive-behind", "archive-caught-up"]
    assert "did not answer" in events[0]["storeError"] and ACCESS_KEY not in alerts.read_text()

    target = mariadb_cluster.add()
    plan = plan_restore(archive.bucket, to_time=last_order_time(archive.primary))
    apply_restore(archive.bucket, archive.key, plan, archive.target(target), work_dir=archive.tmp,
                  say=archive.said.append)
    assert restored_orders(target) == set(load.acknowledged)


def test_a_corrupted_archive_object_is_refused_naming_it(archive, mariadb_cluster):
    base = archive.base_backup()
    archiver = archive.start_archiver(base.gtid_pos)
    write_orders(archive.primary, range(1, 6))
    wait_until(lambda: archived_everything(archiver, archive.primary), 30, "the archive to hold every transaction")
    plan = plan_restore(archive.bucket, to_time=last_order_time(archive.primary))
    victim = plan.files[0].pieces[-1].name
    client = archive.store.client()
    data = bytearray(archive.store.read(archive.bucket.access.bucket, victim))
    data[len(data) // 2] ^= 0xFF
    client.put_object(Bucket=archive.bucket.access.bucket, Key=victim, Body=bytes(data))

    target = mariadb_cluster.add()
    with pytest.raises(ChecksumError, match=f"checksum mismatch for object {victim}"):
        apply_restore(archive.bucket, archive.key, plan, archive.target(target), work_dir=archive.tmp,
                      say=archive.said.append)


def test_a_time_past_the_archive_is_refused(archive):
    archive.base_backup()
    with pytest.raises(RestoreError, match="does not reach"):
        plan_restore(archive.bucket, to_time=datetime.fromtimestamp(time.time() + 3600, UTC))
