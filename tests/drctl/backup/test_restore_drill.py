"""`drctl drill --restore` against real servers: orders to the primary, the archive (a real
archiver to the loopback S3 server), a restore to the moment between two bursts of orders onto a
scratch server, the check, the report rows."""

from __future__ import annotations

import base64
import json

import pytest

from drctl import cli
from tests.support import runbook_support

pytestmark = pytest.mark.integration


@pytest.fixture
def drill_outputs(archive, tmp_path, monkeypatch):
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
    base = archive.base_backup()
    archive.start_archiver(base.gtid_pos)
    return str(path)


def test_the_restore_drill_finds_every_order_before_the_point_and_none_after(drill_outputs, capsys):
    code = cli.main(["drill", "--restore", "--outputs", drill_outputs, "--yes", "--settle", "2",
                     "--writer-rate", "40", "-o", "json"])
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
