"""`drctl rehearse --restore`: the rehearsal's MariaDB primary and replica, the archiver of `drctl
archive` shipping to a real S3 server on loopback (rclone serve s3), and the restore drill of
`drctl drill --restore` onto a scratch server. Passes end to end with its restore-time and
backup-RPO rows; a corrupted archive object makes it report the failure and exit non-zero. Timings
are reported by the rehearsal, never asserted here."""

from __future__ import annotations

import json
import re

import pytest

from drctl import cli
from drctl.rehearsal import restore
from drctl.rehearsal.topology import RehearsalSpec
from tests.support.binaries import need

pytestmark = pytest.mark.integration

SECONDS = r"\d+\.\d s"


@pytest.fixture(scope="module")
def tools():
    need("mariadbd", "mariadb-install-db", "mariadb", "mariadb-dump", "mariadb-binlog", "haproxy", "openssl")
    restore.s3_server.rclone_binary()  # the pinned rclone (requirements.txt): MissingBinary names the pin


def test_the_restore_rehearsal_passes_with_its_restore_time_and_backup_rpo(tools, capsys, tmp_path):
    code = cli.main(["rehearse", "--restore", "-o", "json", "--report-dir", str(tmp_path / "report")])
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    report = json.loads(captured.out)
    assert report["outcome"] == "passed" and report["error"] is None
    assert report["missing"] == [] and report["extra"] == []
    rows = dict(report["rows"])
    assert re.fullmatch(rf"{SECONDS} \(base \d{{8}}T\d{{6}}\.\d{{6}}Z, [1-9]\d* binlog files\)", rows["restore time"]), \
        rows["restore time"]
    assert re.fullmatch(rf"{SECONDS} \(objective 300 s\)", rows["backup RPO (last order -> archived)"])
    before = re.fullmatch(r"(\d+), restored (\d+)", rows["orders at or before the point"])
    assert before and before[1] == before[2] and int(before[1]) > 0
    assert re.fullmatch(r"[1-9]\d*, restored 0", rows["orders after the point"])
    assert rows["archiver"].endswith("never behind, no gap")
    assert report["restoreSeconds"] > 0 and report["backupRpoSeconds"] >= 0
    assert report["archivePieces"] >= 1
    written = json.loads((tmp_path / "report" / "restore.json").read_text())
    assert written["rows"] == report["rows"]
    assert "| restore time |" in (tmp_path / "report" / "restore.md").read_text()
    # Secrets of the throwaway archive never reach the output.
    assert "archiveKey" not in captured.out and "secretKey" not in captured.out


def test_a_corrupted_base_backup_fails_the_rehearsal_naming_the_object(tools, monkeypatch, capsys):
    def corrupt_the_base(rehearsal: restore.RestoreRehearsal) -> None:
        # The S3 server keeps objects as plain files: flip one byte of the sealed base backup.
        bucket_dir = rehearsal.store.root / rehearsal.backups.bucket
        (dump,) = bucket_dir.glob("base/*/dump.sql.seg")
        data = bytearray(dump.read_bytes())
        data[len(data) // 2] ^= 0xFF
        dump.write_bytes(bytes(data))
        corrupted.append(dump.relative_to(bucket_dir).as_posix())

    corrupted: list[str] = []
    rehearse = restore.rehearse_restore
    monkeypatch.setattr(restore, "rehearse_restore",
                        lambda spec, **kw: rehearse(spec, **kw, hooks={"archiving": corrupt_the_base}))
    code = cli.main(["rehearse", "--restore"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "**outcome: FAILED**" in out
    stopped = next(line for line in out.splitlines() if line.startswith("The drill stopped:"))
    assert "checksum mismatch for object" in stopped and corrupted[0] in stopped


def test_a_stopped_archiver_fails_the_rehearsal(tools):
    said: list[str] = []
    result = restore.rehearse_restore(RehearsalSpec.from_stack("dr-test"), say=said.append,
                                      hooks={"archiving": restore.RestoreRehearsal.stop_archiver})
    assert not result.passed
    assert result.error is not None and "the archive did not reach the drill's last order" in result.error
    assert any(line.startswith("waiting for the archive") or "waiting for the archive" in line for line in said)


def test_restore_is_its_own_mode_on_the_command_line(capsys):
    with pytest.raises(SystemExit):
        cli.main(["rehearse", "--restore", "--unplanned"])
    assert "argument --unplanned: not allowed with argument --restore" in capsys.readouterr().err
