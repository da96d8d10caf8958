"""`drctl restore` end to end: stack outputs naming the archive bucket, the real archive behind
them, a local MariaDB target, the tables export, and a corrupted object refused by name."""

from __future__ import annotations

import base64
import contextlib
import json
from datetime import UTC, datetime

import pytest

from drctl import cli
from drctl.drill import orders
from tests.support import runbook_support
from tests.support.archive_setup import gtid_pos
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


def outputs_with_archive(archive, tmp_path) -> str:
    doc = runbook_support.outputs_doc(runbook_support.paper_servers(tmp_path))
    access = archive.bucket.access
    doc["drctl"]["backups"] = {
        "region": "eu-west", "storageRegion": "eu-west", "bucket": access.bucket, "endpoint": access.endpoint,
        "accessKey": access.access_key, "secretKey": access.secret_key,
        "archiveKey": base64.b64encode(archive.key).decode(), "backupRpoSeconds": 300, "baseEveryHours": 24,
        "retentionDays": 14,
    }
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(doc))
    return str(path)


@pytest.fixture
def archived_orders(archive):
    """Orders 1-30, each its own transaction, archived; returns the moment after order 20."""
    base = archive.base_backup()
    archiver = archive.start_archiver(base.gtid_pos)
    with contextlib.closing(archive.primary.connect()) as conn:
        for seq in range(1, 21):
            orders.insert_order(conn, seq, "us-east")
        twentieth = archive.primary.query("SELECT UNIX_TIMESTAMP(written_at) FROM drctl_drill.orders WHERE seq = 20")
        cutoff = int(twentieth[0][0])
        wait_until(lambda: datetime.now(UTC).timestamp() >= cutoff + 1, 5, "the next second")
        for seq in range(21, 31):
            orders.insert_order(conn, seq, "us-east")
    wait_until(lambda: all(archiver.archived.includes(g) for g in gtid_pos(archive.primary).last.values()), 30,
               "the archive to hold every order")
    return datetime.fromtimestamp(cutoff, UTC)


def test_dry_run_names_the_base_and_the_pieces_and_restores_nothing(archive, archived_orders, tmp_path, capsys):
    outputs = outputs_with_archive(archive, tmp_path)
    code = cli.main(["restore", "--outputs", outputs, "--to-time", archived_orders.isoformat(), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0
    assert "base backup " in out and "binlog binlog.0" in out and "<- stops in here" in out
    assert "starting a MariaDB server" not in out


def test_restore_to_a_local_server_reports_what_it_restored(archive, archived_orders, tmp_path, capsys):
    outputs = outputs_with_archive(archive, tmp_path)
    target = tmp_path / "restored"
    code = cli.main(["restore", "--outputs", outputs, "--to-time", archived_orders.strftime("%Y-%m-%d %H:%M:%S"),
                     "--target", f"local:{target}", "-o", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out)
    assert report["rowCounts"]["drctl_drill.orders"] == 20
    assert report["lastTransactionTime"] <= archived_orders.isoformat().replace("+00:00", "Z")
    assert (target / "restored" / "data").is_dir()  # kept for inspection
    assert archive.key.hex() not in captured.out + captured.err


def test_tables_are_exported_as_they_were(archive, archived_orders, tmp_path, capsys):
    outputs = outputs_with_archive(archive, tmp_path)
    export = tmp_path / "orders.sql"
    code = cli.main(["restore", "--outputs", outputs, "--to-time", archived_orders.isoformat(),
                     "--tables", "orders", "--export", str(export)])
    assert code == 0, capsys.readouterr().err
    sql = export.read_text()
    assert "CREATE TABLE `orders`" in sql
    assert "(20,'us-east'" in sql and "(21,'us-east'" not in sql


def test_a_corrupted_object_stops_the_restore_naming_it(archive, archived_orders, tmp_path, capsys):
    outputs = outputs_with_archive(archive, tmp_path)
    victim = next(n for n in archive.store.keys(archive.bucket.access.bucket, "binlog/") if n.endswith(".seg"))
    data = bytearray(archive.store.read(archive.bucket.access.bucket, victim))
    data[-1] ^= 0x01
    archive.store.client().put_object(Bucket=archive.bucket.access.bucket, Key=victim, Body=bytes(data))
    code = cli.main(["restore", "--outputs", outputs, "--to-time", archived_orders.isoformat(),
                     "--target", f"local:{tmp_path / 'restored'}"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"drctl restore: checksum mismatch for object {victim}" in err
    assert "Traceback" not in err


def test_a_missing_object_stops_the_restore_naming_it(archive, archived_orders, tmp_path, capsys):
    outputs = outputs_with_archive(archive, tmp_path)
    victim = next(n for n in archive.store.keys(archive.bucket.access.bucket, "binlog/") if n.endswith(".seg"))
    archive.store.client().delete_object(Bucket=archive.bucket.access.bucket, Key=victim)
    code = cli.main(["restore", "--outputs", outputs, "--to-time", archived_orders.isoformat(),
                     "--target", f"local:{tmp_path / 'restored'}"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"drctl restore: download {victim}: no such object in bucket " in err
    assert "Traceback" not in err
