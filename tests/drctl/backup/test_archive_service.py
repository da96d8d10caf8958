"""`drctl archive`, the archiver as a service: it starts an empty archive with a base backup,
resumes after a restart where the bucket ends, and retention deletes only what no restore in the
window needs. Real MariaDB, the loopback S3 server, the real tools."""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import threading
from datetime import UTC, datetime

import pytest

from drctl.backup import archive_command
from drctl.backup.manifest import load_bases, load_pieces
from drctl.backup.restore import apply_restore, plan_restore
from drctl.backup.service import prune
from drctl.drill import orders
from tests.support.archive_setup import REPL_PASSWORD, REPL_USER, gtid_pos
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


def settings_file(archive, tmp_path) -> str:
    access = archive.bucket.access
    doc = {
        "bucket": {"endpoint": access.endpoint, "bucket": access.bucket, "accessKey": access.access_key,
                   "secretKey": access.secret_key},
        "archiveKey": base64.b64encode(archive.key).decode(),
        "sources": [{"host": s.host, "port": s.port, "user": REPL_USER, "password": REPL_PASSWORD, "caFile": s.tls.ca}
                    for s in (archive.primary, archive.replica)],
        "baseClient": [f"--socket={archive.replica.socket}", "--user=root"],
        "spool": str(tmp_path / "spool"),
        "backupRpoSeconds": 30,
    }
    path = tmp_path / "archive.json"
    path.write_text(json.dumps(doc))
    path.chmod(0o600)
    return str(path)


@contextlib.contextmanager
def running_service(config: str):
    args = argparse.Namespace(config=config, alert_webhook=None, alert_command=None, alert_timeout=5.0)
    stop = threading.Event()
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(archive_command.run(args, stop)), daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join(timeout=60)
    assert result == [0]


def write_orders(server, seqs) -> None:
    with contextlib.closing(server.connect()) as conn:
        for seq in seqs:
            orders.insert_order(conn, seq, "us-east")


def archived(archive) -> bool:
    status = archive.store.read(archive.bucket.access.bucket, "status.json") if any(
        k == "status.json" for k in archive.store.keys(archive.bucket.access.bucket)) else None
    if status is None:
        return False
    pos = json.loads(status)["archivedPos"]
    return pos == str(gtid_pos(archive.primary))


def test_the_service_starts_with_a_base_and_resumes_after_a_restart_without_a_gap(archive, mariadb_cluster, tmp_path):
    config = settings_file(archive, tmp_path)
    with running_service(config):
        wait_until(lambda: load_bases(archive.bucket), 30, "the first base backup")
        write_orders(archive.primary, range(1, 51))
        wait_until(lambda: archived(archive), 30, "orders 1-50 in the archive")
    write_orders(archive.primary, range(51, 101))  # while the service is down
    with running_service(config):
        write_orders(archive.primary, range(101, 151))
        wait_until(lambda: archived(archive), 30, "orders 51-150 in the archive")
    assert not list((tmp_path / "spool").glob(".*.cnf"))  # no password left behind by a stopped service
    assert len(load_bases(archive.bucket)) == 1  # a fresh base is not due again
    assert len({p.session for p in load_pieces(archive.bucket)}) == 2

    last = archive.primary.query("SELECT MAX(UNIX_TIMESTAMP(written_at)) FROM drctl_drill.orders")[0][0]
    target = mariadb_cluster.add()
    plan = plan_restore(archive.bucket, to_time=datetime.fromtimestamp(float(last), UTC))
    apply_restore(archive.bucket, archive.key, plan, archive.target(target), work_dir=archive.tmp, say=lambda _: None)
    assert {r[0] for r in target.query("SELECT seq FROM drctl_drill.orders")} == set(range(1, 151))


def test_retention_keeps_the_newest_base_before_the_window_and_what_follows_it(archive, mariadb_cluster):
    first = archive.base_backup()
    archiver = archive.start_archiver(first.gtid_pos)
    write_orders(archive.primary, range(1, 21))
    wait_until(lambda: archiver.archived.includes(gtid_pos(archive.primary).last[0]), 30, "orders 1-20 archived")
    archive.stop_archivers()
    second = archive.base_backup()
    archiver = archive.start_archiver(second.gtid_pos)
    write_orders(archive.primary, range(21, 41))
    wait_until(lambda: archiver.archived.includes(gtid_pos(archive.primary).last[0]), 30, "orders 21-40 archived")
    archive.stop_archivers()
    first_session = sorted({p.session for p in load_pieces(archive.bucket)})[0]

    # Fifteen days on with 14 days' retention: both bases are before the window.
    deleted = prune(archive.bucket, 14, second.taken_at + 15 * 86400, say=lambda _: None)
    assert first.name in deleted and first.manifest_name in deleted
    assert [b.stamp for b in load_bases(archive.bucket)] == [second.stamp]
    assert all(p.session != first_session for p in load_pieces(archive.bucket))

    target = mariadb_cluster.add()
    last = archive.primary.query("SELECT MAX(UNIX_TIMESTAMP(written_at)) FROM drctl_drill.orders")[0][0]
    plan = plan_restore(archive.bucket, to_time=datetime.fromtimestamp(float(last), UTC))
    apply_restore(archive.bucket, archive.key, plan, archive.target(target), work_dir=archive.tmp, say=lambda _: None)
    assert {r[0] for r in target.query("SELECT seq FROM drctl_drill.orders")} == set(range(1, 41))


def test_nothing_is_pruned_inside_the_window(archive):
    base = archive.base_backup()
    assert prune(archive.bucket, 14, base.taken_at + 86400, say=lambda _: None) == []


def test_a_base_backup_larger_than_the_header_finds_its_position_at_the_end(archive):
    # mariadb-dump 10.11 with --single-transaction writes the GTID position after the data.
    archive.primary.execute("CREATE TABLE drctl_drill.pages (id INT PRIMARY KEY, body LONGTEXT)",
                            "INSERT INTO drctl_drill.pages SELECT seq, REPEAT(MD5(seq), 200) FROM drctl_drill.seq_1_to_100")
    wait_until(lambda: gtid_pos(archive.replica) == gtid_pos(archive.primary), 20, "the replica to catch up")
    base = archive.base_backup()
    assert base.size > 1 << 17
    assert base.gtid_pos == gtid_pos(archive.primary)
