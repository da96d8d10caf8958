"""`drctl drill --restore` against real servers: orders to the primary, the archive (a real
archiver to the loopback S3 server), a restore to the moment between two bursts of orders onto a
scratch server, the check, the report rows."""

from __future__ import annotations

import base64
import json

import pytest

from drctl import cli
from drctl.backup import restore_drill
from tests.support import runbook_support

pytestmark = pytest.mark.integration


@pytest.fixture
def drill_outputs(archive, tmp_path, monkeypatch):
    path = outputs_of(archive, tmp_path, monkeypatch)
    base = archive.base_backup()
    archive.start_archiver(base.gtid_pos)
    return path


def outputs_of(archive, tmp_path, monkeypatch) -> str:
    monkeypatch.setenv("DRCTL_STATE_DIR", str(tmp_path / "state"))
    for server in (archive.primary, archive.replica):
        runbook_support.add_accounts(server)
    doc = runbook_support.outputs_doc({"us-east": archive.primary, "eu-west": archive.replica})
    access = archive.bucket.access
    doc["drctl"]["backups"] = {
        "region": "eu-west", "storageRegion": "eu-west", "bucket": access.bucket, "endpoint": access.endpoint,
        "accessKey": access.access_key, "secretKey": access.secret_key,
        "archiveKey": base64.b64encode(archive.key).decode(), "backupRpoSeconds": 30, "baseEveryHours": 24,
        "retentionDays": 14}
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_the_restore_drill_finds_every_order_before_the_point_and_none_after(drill_outputs, capsys):
    code = cli.main(["drill", "--restore", "--outputs", drill_outputs, "--yes", "--settle", "2",
                     "--writer-rate", "40", "--restore-on", "local", "-o", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert result["passed"] and result["missing"] == [] and result["extra"] == []
    rows = dict(result["rows"])
    assert rows["restore time"].endswith("binlog files)")
    assert rows["backup RPO (last order -> archived)"].endswith("(objective 30 s)")


def test_the_restore_drill_wants_yes(drill_outputs, capsys):
    assert cli.main(["drill", "--restore", "--outputs", drill_outputs]) == 2
    assert "pass --yes to act, or --dry-run" in capsys.readouterr().err


# --- onto a scratch Linode (the default; the Linode API fake's Linodes are local MariaDB servers) -------

DRILL_LABEL = "drctl-restore-runbook-test-drill"


def linode_drill(outputs: str, *extra: str) -> list[str]:
    return ["drill", "--restore", "--outputs", outputs, "--yes", "--settle", "2", "--writer-rate", "40",
            "--allow-from", "127.0.0.1/32", "--scratch-timeout", "120", *extra]


def assert_nothing_left(fake) -> None:
    assert fake.instances == {} and fake.firewalls == {}
    assert fake.deleted_instances == [DRILL_LABEL]
    assert all(m.server is None for m in fake.machines.booted)  # the machine is gone with it


def test_the_restore_drill_restores_onto_a_scratch_linode_and_deletes_it(drill_outputs, scratch_cloud, capsys):
    code = cli.main(linode_drill(drill_outputs, "-o", "json"))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert result["passed"] and result["missing"] == [] and result["extra"] == []
    (machine,) = scratch_cloud.machines.booted
    assert dict(result["rows"])["scratch server"].startswith(f"scratch Linode {DRILL_LABEL} ({machine.address})")
    assert_nothing_left(scratch_cloud)


def test_the_scratch_linode_is_deleted_when_the_check_fails(drill_outputs, scratch_cloud, capsys, monkeypatch):
    monkeypatch.setattr(restore_drill.orders, "orders_present", lambda conn, seqs: set())
    code = cli.main(linode_drill(drill_outputs))
    assert code == 1
    assert "FAILED" in capsys.readouterr().out
    assert_nothing_left(scratch_cloud)


def test_the_scratch_linode_is_deleted_when_the_drill_is_interrupted(drill_outputs, scratch_cloud, capsys,
                                                                      monkeypatch):
    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(restore_drill, "apply_restore", ctrl_c)
    assert cli.main(linode_drill(drill_outputs)) == 130
    assert "drctl: interrupted" in capsys.readouterr().err
    assert_nothing_left(scratch_cloud)


def test_keep_scratch_keeps_it_for_inspection(drill_outputs, scratch_cloud, capsys):
    assert cli.main(linode_drill(drill_outputs, "--keep-scratch")) == 0, capsys.readouterr().err
    assert [i["label"] for i in scratch_cloud.instances.values()] == [DRILL_LABEL]
    assert scratch_cloud.deleted_instances == []


def test_the_drill_dry_run_names_the_linode_and_creates_nothing(drill_outputs, scratch_cloud, capsys):
    assert cli.main(["drill", "--restore", "--outputs", drill_outputs, "--dry-run", "--allow-from",
                     "127.0.0.1/32"]) == 0
    out = capsys.readouterr().out
    assert f"would create Linode {DRILL_LABEL} (g6-standard-2, eu-west, linode/ubuntu24.04, the archive's server " \
           "family)" in out
    assert "deleted afterwards, even on failure or Ctrl-C" in out
    assert scratch_cloud.writes() == []


# --- the archive's server family -------------------------------------------------------------------

MYSQL_STATUS = {"archivedPos": "93e95066-a2f4-11ec-9b69-9657f0ae95e2:1-5", "flavour": "mysql",
                "lastTransactionTime": 1647193306, "updatedAt": 1647193306}


@pytest.fixture
def mysql_archive_outputs(archive, tmp_path, monkeypatch):
    """The stack's bucket says it holds a MySQL 8 binlog (as a MySQL archiver writes status.json)."""
    path = outputs_of(archive, tmp_path, monkeypatch)
    archive.bucket.put_json("status.json", MYSQL_STATUS)
    return path


def drill_orders(archive) -> int:
    return int(archive.primary.query("SELECT COUNT(*) FROM drctl_drill.orders")[0][0])


@pytest.mark.parametrize("act", ["--yes", "--dry-run"])
def test_a_mysql_archive_on_this_machine_is_refused_before_anything_starts(archive, mysql_archive_outputs, capsys,
                                                                            act):
    code = cli.main(["drill", "--restore", "--outputs", mysql_archive_outputs, act, "--restore-on", "local"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "--restore-on local: the archive in wcdr-test-binlogs-" in err
    assert "holds a MySQL 8 binlog, but the scratch server on this machine is MariaDB" in err
    assert "Traceback" not in err
    assert drill_orders(archive) == 0


def test_an_archive_of_the_other_family_than_the_primary_is_refused_before_any_order(archive, mysql_archive_outputs,
                                                                                    scratch_cloud, capsys):
    code = cli.main(linode_drill(mysql_archive_outputs))
    err = capsys.readouterr().err
    assert code == 1, err
    assert "holds a mysql binlog but the stack's primary is a mariadb server" in err
    assert drill_orders(archive) == 0
    assert scratch_cloud.writes() == []
