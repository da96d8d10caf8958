"""drctl status and the binlog archive: its lag and last base backup in the table and the JSON
document, and an archive behind the backup RPO counted as a problem. A real archiver runs against
the shop's primary, writing to the loopback S3 server."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from drctl import cli
from drctl.backup.archiver import Archiver, Source
from drctl.backup.base_backup import schemas_to_dump, take_base_backup
from drctl.cloud.s3_bucket import Bucket, BucketAccess
from tests.support.binaries import need
from tests.support.runbook_support import ADMIN_PASSWORD, ADMIN_USER, Shop, wait_caught_up
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def archived_shop(mariadb_trio, tmp_path, cloud, monkeypatch):
    from tests.support.object_store import ACCESS_KEY, SECRET_KEY, ObjectStore

    for key, value in {**cloud.env(), "DRCTL_STATE_DIR": str(tmp_path / "state")}.items():
        monkeypatch.setenv(key, value)
    shop = Shop.build(list(mariadb_trio), tmp_path, cloud.linode)
    wait_caught_up(shop["us-east"], shop["eu-west"], shop["ap-south"])
    with ObjectStore(regions=("eu-west",)) as store:
        name = store.bucket(f"wcdr-status-binlogs-{os.urandom(4).hex()}")
        endpoint = store.endpoints["eu-west"].url
        bucket = Bucket(BucketAccess(endpoint, name, ACCESS_KEY, SECRET_KEY), timeout=2)
        key = os.urandom(32)
        replica = shop["eu-west"]
        base = take_base_backup(bucket, key, (f"--socket={replica.socket}", "--user=root"),
                                schemas_to_dump(replica.connect), work_dir=tmp_path, say=lambda _: None)
        servers = list(shop.servers.values())
        archiver = Archiver(bucket, key, tmp_path / "spool",
                            lambda: [Source(s.host, s.port, ADMIN_USER, ADMIN_PASSWORD, s.tls.ca) for s in servers],
                            base.gtid_pos, segment_seconds=0.5, binlog_tool=need("mariadb-binlog")["mariadb-binlog"],
                            say=lambda _: None)
        stop = threading.Event()
        thread = threading.Thread(target=archiver.run, args=(stop.is_set, 0.1), daemon=True)
        thread.start()
        doc = json.loads(shop.outputs_file.read_text())
        doc["drctl"]["backups"] = {
            "region": "eu-west", "storageRegion": "eu-west", "bucket": name, "endpoint": endpoint,
            "accessKey": ACCESS_KEY, "secretKey": SECRET_KEY, "archiveKey": "unused-by-status",
            "backupRpoSeconds": 300, "baseEveryHours": 24, "retentionDays": 14}
        shop.outputs_file.write_text(json.dumps(doc))
        try:
            yield shop, archiver, stop, thread
        finally:
            stop.set()
            thread.join(timeout=30)


def status_json(shop, capsys):
    code = cli.main(["status", "--outputs", str(shop.outputs_file), "-o", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_status_shows_the_archive_lag_and_the_last_base_backup(archived_shop, capsys):
    shop, archiver, _, _ = archived_shop
    wait_until(lambda: archiver.archived_time is not None, 20, "the heartbeat to reach the archive")
    code, doc = status_json(shop, capsys)
    archive = doc["archive"]
    assert archive["lagSeconds"] < 300 and archive["lastBase"]["gtidPos"]
    assert archive["flavour"] == "mariadb"
    assert not [p for p in doc["verdict"]["problems"] if "archive" in p], doc["verdict"]
    assert code == 0, doc["verdict"]
    cli.main(["status", "--outputs", str(shop.outputs_file)])
    out = capsys.readouterr().out
    assert "binlog archive (wcdr-status-binlogs-" in out and "): MariaDB binlog, lag " in out


def test_an_archive_behind_the_backup_rpo_is_a_problem(archived_shop, capsys):
    shop, archiver, stop, thread = archived_shop
    wait_until(lambda: archiver.archived_time is not None, 20, "the heartbeat to reach the archive")
    stop.set()
    thread.join(timeout=30)
    doc = json.loads(shop.outputs_file.read_text())
    doc["drctl"]["backups"]["backupRpoSeconds"] = 1
    shop.outputs_file.write_text(json.dumps(doc))
    last = archiver.archived_time
    wait_until(lambda: time.time() > last + 2.5, 10, "the archive to fall 2 s behind")
    code, doc = status_json(shop, capsys)
    assert code == 1
    assert any(p.startswith("binlog archive: newest archived transaction is ") and
               "beyond the backup recovery point objective (1 s, objectives.backupRpoSeconds)" in p
               for p in doc["verdict"]["problems"]), doc["verdict"]


def test_an_archive_of_another_family_than_the_stacks_database_is_a_problem(archived_shop, capsys):
    shop, archiver, stop, thread = archived_shop
    wait_until(lambda: archiver.archived_time is not None, 20, "the heartbeat to reach the archive")
    stop.set()
    thread.join(timeout=30)
    status = archiver.bucket.get_json("status.json")
    archiver.bucket.put_json("status.json", {**status, "flavour": "mysql",
                                             "archivedPos": "93e95066-a2f4-11ec-9b69-9657f0ae95e2:1-5"})
    code, doc = status_json(shop, capsys)
    assert code == 1
    assert doc["archive"]["flavour"] == "mysql"
    assert any(p.startswith("binlog archive in wcdr-status-binlogs-") and
               "holds a mysql binlog but the stack's database is mariadb" in p
               for p in doc["verdict"]["problems"]), doc["verdict"]
