"""`drctl restore` end to end: stack outputs naming the archive bucket, the real archive behind
them, a local MariaDB target, the tables export, and a corrupted object refused by name."""

from __future__ import annotations

import base64
import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pymysql
import pytest

from drctl import cli
from drctl.drill import orders
from drctl.mysql import replication
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


# --- onto a scratch Linode (the Linode API fake; its Linodes are local MariaDB servers) ----------------

def linode_restore(outputs: str, at: datetime, *extra: str) -> list[str]:
    return ["restore", "--outputs", outputs, "--to-time", at.isoformat(), "--target", "linode",
            "--allow-from", "127.0.0.1/32", "--scratch-timeout", "120", *extra]


def test_dry_run_shows_the_linode_it_would_create_and_its_price(archive, archived_orders, tmp_path, capsys,
                                                                   scratch_cloud):
    outputs = outputs_with_archive(archive, tmp_path)
    assert cli.main(linode_restore(outputs, archived_orders, "--dry-run")) == 0
    out = capsys.readouterr().out
    label = f"drctl-restore-runbook-test-{archived_orders:%Y%m%dT%H%M%SZ}"
    assert f"would create Linode {label} (g6-standard-2, eu-west, linode/ubuntu24.04, MariaDB 10.11)" in out
    assert "admitting MySQL 3306 from 127.0.0.1/32 only" in out
    assert "US$" in out and "/month" in out
    assert scratch_cloud.writes() == []


def test_restore_onto_a_scratch_linode_holds_every_order_before_the_time_and_none_after(
        archive, archived_orders, tmp_path, capsys, scratch_cloud):
    outputs = outputs_with_archive(archive, tmp_path)
    code = cli.main(linode_restore(outputs, archived_orders, "--yes", "-o", "json"))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out)
    (machine,) = scratch_cloud.machines.booted
    seqs = [row[0] for row in machine.server.query("SELECT seq FROM drctl_drill.orders ORDER BY seq")]
    assert seqs == list(range(1, 21))
    assert report["scratch"]["address"] == machine.address and report["scratch"]["user"] == "drctl_restore"
    assert report["rowCounts"]["drctl_drill.orders"] == 20
    client_file = report["scratch"]["clientFile"]
    password = next(line for line in Path(client_file).read_text().splitlines() if line.startswith("password="))[9:]
    assert password not in captured.out + captured.err
    with pytest.raises(pymysql.err.OperationalError):  # TLS is required: no way in without it
        pymysql.connect(host=machine.address, port=3306, user="drctl_restore", password=password, ssl_disabled=True,
                        connect_timeout=5)
    with pytest.raises(pymysql.err.OperationalError):  # drctl verifies: a certificate of another CA is refused
        replication.connect(machine.address, 3306, "drctl_restore", password, ssl_ca=archive.primary.tls.ca)
    assert f"connect with: mariadb --defaults-extra-file={client_file} --host={machine.address}" in captured.err
    assert "--delete-scratch drctl-restore-runbook-test-" in captured.err
    (instance,) = scratch_cloud.instances.values()
    assert instance["region"] == "eu-west"  # the archive's region


def test_a_second_run_restores_onto_the_same_scratch_linode_again(archive, archived_orders, tmp_path, capsys,
                                                                  scratch_cloud):
    outputs = outputs_with_archive(archive, tmp_path)
    assert cli.main(linode_restore(outputs, archived_orders, "--yes")) == 0
    (machine,) = scratch_cloud.machines.booted
    machine.server.execute("INSERT INTO drctl_drill.orders (seq, region, written_at) VALUES (999, 'stray', NOW(6))")
    capsys.readouterr()
    assert cli.main(linode_restore(outputs, archived_orders, "--yes")) == 0
    assert "from an earlier run: carrying on with it" in capsys.readouterr().out
    assert [p for m, p, _ in scratch_cloud.requests if m == "POST"].count("/linode/instances") == 1
    seqs = [row[0] for row in machine.server.query("SELECT seq FROM drctl_drill.orders ORDER BY seq")]
    assert seqs == list(range(1, 21))


def test_list_and_delete_scratch_linodes(archive, archived_orders, tmp_path, capsys, scratch_cloud):
    outputs = outputs_with_archive(archive, tmp_path)
    assert cli.main(linode_restore(outputs, archived_orders, "--yes")) == 0
    label = f"drctl-restore-runbook-test-{archived_orders:%Y%m%dT%H%M%SZ}"
    capsys.readouterr()
    assert cli.main(["restore", "--outputs", outputs, "--list-scratch", "-o", "json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)["scratch"]
    assert listed["label"] == label and listed["region"] == "eu-west"
    assert cli.main(["restore", "--outputs", outputs, "--delete-scratch", label, "--yes"]) == 0
    assert scratch_cloud.instances == {} and scratch_cloud.firewalls == {}
    assert scratch_cloud.deleted_instances == [label]


def test_a_linode_api_refusal_is_one_line_and_leaves_nothing(archive, archived_orders, tmp_path, capsys,
                                                             scratch_cloud):
    outputs = outputs_with_archive(archive, tmp_path)
    scratch_cloud.instance_limit = 0
    code = cli.main(linode_restore(outputs, archived_orders, "--yes"))
    err = capsys.readouterr().err
    assert code == 1
    assert err.splitlines()[-1].startswith(
        f"drctl restore: Linode API could not create Linode drctl-restore-runbook-test-{archived_orders:%Y%m%dT%H%M%SZ} "
        "(HTTP 400: Account Limit reached.")
    assert "is kept" not in err and "Traceback" not in err
    assert scratch_cloud.instances == {} and scratch_cloud.firewalls == {}
    assert scratch_cloud.machines.booted == []
