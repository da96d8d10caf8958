"""A MySQL 8 archive in the loopback S3 server: pieces of a real MySQL 8.0.28 binlog (fixtures/)
sealed with their manifests as the archiver writes them, then planned and refused the way `drctl
restore` plans and refuses; and a MySQL archive pointed at a real MariaDB server, which it must not
read from."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drctl import cli
from drctl.backup import sealing
from drctl.backup.archiver import Archiver
from drctl.backup.base_backup import BaseBackupError, schemas_to_dump, take_base_backup
from drctl.backup.binlog_events import Flavour, Gtid, MysqlGtid, MysqlGtidPos, scan_mysql
from drctl.backup.manifest import BaseBackup, Piece, load_bases, load_pieces
from drctl.backup.restore import RestoreError, Target, apply_restore, check_restore_tools, plan_restore
from drctl.backup.service import ArchiveFlavourError, archived_position
from drctl.cloud.s3_bucket import Bucket, BucketAccess
from tests.support import runbook_support

pytestmark = pytest.mark.integration

FIXTURE = (Path(__file__).parent / "fixtures" / "mysql80-gtid.000001").read_bytes()
SERVER = "93e95066-a2f4-11ec-9b69-9657f0ae95e2"
SESSION = "20220313T173900.000000Z-mysql-us-east-3306"
BASE_TAKEN = datetime(2022, 3, 13, 17, 40, 0, tzinfo=UTC).timestamp()  # after transaction 1, before 2


@pytest.fixture
def store():
    from tests.support.object_store import ObjectStore

    with ObjectStore(regions=("dr",)) as s:
        yield s


@pytest.fixture
def bucket(store) -> Bucket:
    from tests.support.object_store import ACCESS_KEY, SECRET_KEY

    name = store.bucket(f"wcdr-test-mysql-{os.urandom(4).hex()}")
    return Bucket(BucketAccess(store.endpoints["dr"].url, name, ACCESS_KEY, SECRET_KEY), timeout=2)


KEY = os.urandom(32)


def put_piece(bucket: Bucket, number: int, start: int, end: int, session: str = SESSION,
              data: bytes = FIXTURE) -> Piece:
    """Bytes [start, end) of the binlog as one piece, sealed, with the manifest the archiver writes."""
    chunk = data[start:end]
    txns = scan_mysql(chunk, file_start=start == 0, checksums=None if start == 0 else True).transactions
    first: dict = {}
    last: dict = {}
    for t in txns:
        first.setdefault(t.gtid.domain, t.gtid)
        last[t.gtid.domain] = t.gtid
    probe = Piece(session, number, "mysql-us-east:3306", "binlog.000001", start, len(chunk), first, last, None, None,
                  0, "", "", 0, Flavour.MYSQL)
    sealed_bytes, sealed = sealing.seal_bytes(KEY, probe.name, chunk)
    piece = Piece(session, number, "mysql-us-east:3306", "binlog.000001", start, len(chunk), first, last,
                  txns[0].timestamp if txns else None, txns[-1].timestamp if txns else None, len(txns),
                  sealed.sha256_plain, sealing.sha256_bytes(sealed_bytes), 0.0, Flavour.MYSQL)
    bucket.put_bytes(piece.name, sealed_bytes)
    bucket.put_json(piece.manifest_name, piece.to_json())
    return piece


def put_base(bucket: Bucket, gtids: str = f"{SERVER}:1", flavour: Flavour = Flavour.MYSQL,
             taken_at: float = BASE_TAKEN) -> BaseBackup:
    stamp = datetime.fromtimestamp(taken_at, UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    dump = f"SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '{gtids}';\n".encode()
    probe = BaseBackup(stamp, MysqlGtidPos.parse(gtids), taken_at, 0, "", "", (), flavour)
    sealed_bytes, sealed = sealing.seal_bytes(KEY, probe.name, dump)
    base = BaseBackup(stamp, probe.gtid_pos, taken_at, len(sealed_bytes), sealed.sha256_plain,
                      sealing.sha256_bytes(sealed_bytes), ("wordpress",), flavour)
    bucket.put_bytes(base.name, sealed_bytes)
    doc = base.to_json()
    if flavour is Flavour.MARIADB:
        doc["gtidPos"] = "0-1-100"
    bucket.put_json(base.manifest_name, doc)
    return base


@pytest.fixture
def mysql_archive(bucket):
    """A base after transaction 1 and the whole file in three pieces: [0, 791) holds 1-2, [791, 2659)
    3-4, [2659, 3331) 5."""
    put_base(bucket)
    for n, (start, end) in enumerate([(0, 791), (791, 2659), (2659, 3331)]):
        put_piece(bucket, n, start, end)
    return bucket


def test_mysql_manifests_keep_their_flavour_and_gtid_sets(mysql_archive):
    pieces = load_pieces(mysql_archive)
    assert [p.flavour for p in pieces] == [Flavour.MYSQL] * 3
    assert pieces[1].first == {SERVER: MysqlGtid(SERVER, 3)} and pieces[1].last == {SERVER: MysqlGtid(SERVER, 4)}
    assert [(p.first_time, p.last_time) for p in pieces] == [(1647193191, 1647193214), (1647193281, 1647193297),
                                                            (1647193306, 1647193306)]
    doc = mysql_archive.get_json(pieces[1].manifest_name)
    assert doc["flavour"] == "mysql" and doc["first"] == {SERVER: f"{SERVER}:3"}
    (base,) = load_bases(mysql_archive)
    assert base.flavour is Flavour.MYSQL and str(base.gtid_pos) == f"{SERVER}:1"


def test_a_mysql_archive_is_planned_to_a_time_from_the_base_up_to_the_piece_holding_it(mysql_archive):
    plan = plan_restore(mysql_archive, to_time=datetime(2022, 3, 13, 17, 41, 30, tzinfo=UTC))
    assert plan.flavour is Flavour.MYSQL
    (f,) = plan.files
    assert [p.number for p in f.pieces] == [0, 1] and f.stop_here
    assert str(plan.archive_end_pos) == f"{SERVER}:1-5"
    assert any(f"GTID position {SERVER}:1" in line for line in plan.lines())


def test_a_mysql_archive_is_planned_to_a_gtid(mysql_archive):
    plan = plan_restore(mysql_archive, to_gtid=MysqlGtid(SERVER, 4))
    assert [p.number for p in plan.files[0].pieces] == [0, 1] and plan.files[0].stop_here
    with pytest.raises(RestoreError, match=f"the archive does not hold GTID {SERVER}:6"):
        plan_restore(mysql_archive, to_gtid=MysqlGtid(SERVER, 6))


def test_a_mariadb_gtid_for_a_mysql_archive_is_refused_saying_what_is_allowed(mysql_archive):
    with pytest.raises(RestoreError, match="--to-gtid: 0-1-5 is not a GTID of this archive, which holds a mysql "
                                           "binlog \\(allowed: a MySQL GTID server_uuid:number\\)"):
        plan_restore(mysql_archive, to_gtid=Gtid(0, 1, 5))


def test_a_session_that_starts_past_the_next_transaction_is_a_gap_named_by_its_piece(bucket):
    put_base(bucket)
    put_piece(bucket, 0, 0, 791)  # transactions 1-2
    # A second session (another primary's binlog, the same GTIDs) whose first piece holds transaction 4:
    # 3 is missing.
    gap = FIXTURE[:157] + FIXTURE[1560:2659]
    put_piece(bucket, 0, 0, len(gap), session="20220313T174500.000000Z-mysql-dr-3306", data=gap)
    with pytest.raises(RestoreError, match=f"the archive has a gap: piece .*mysql-dr-3306/00000000.seg starts at "
                                           f"{SERVER}:4 but the timeline before it ends at {SERVER}:2"):
        plan_restore(bucket, to_time=datetime(2022, 3, 13, 17, 41, 37, tzinfo=UTC))


def test_an_archive_mixing_flavours_is_refused(mysql_archive):
    put_base(mysql_archive, flavour=Flavour.MARIADB, taken_at=BASE_TAKEN - 60)
    with pytest.raises(RestoreError, match="mixes MariaDB and MySQL manifests"):
        plan_restore(mysql_archive, to_gtid=MysqlGtid(SERVER, 4))


def test_a_mysql_archive_is_refused_here_before_anything_is_fetched_naming_what_to_install(mysql_archive, tmp_path):
    # This machine has MariaDB's mysqlbinlog and mysql (Debian): they cannot replay a MySQL 8 binlog.
    plan = plan_restore(mysql_archive, to_gtid=MysqlGtid(SERVER, 4))

    def never(*_):
        raise AssertionError("the target must not be touched")

    target = Target(("--host=203.0.113.9",), never, "a MySQL 8 server")
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(RestoreError) as refused:
        apply_restore(mysql_archive, KEY, plan, target, work_dir=work, say=lambda _: None)
    said = str(refused.value)
    assert said.startswith("cannot restore this MySQL 8 archive here: mysqlbinlog is not MySQL 8's "
                           "(/usr/bin/mysqlbinlog Ver 3.5 for debian-linux-gnu")
    assert "mysql is not MySQL 8's (/usr/bin/mysql  Ver 15.1 Distrib 10.11" in said
    assert "apt-get install mysql-client-8.0" in said
    assert list(work.iterdir()) == []  # nothing downloaded
    with pytest.raises(RestoreError, match="cannot restore this MySQL 8 archive here: mysqlbinlog is not MySQL 8's"):
        check_restore_tools(plan, local_target=True)


def test_drctl_restore_plans_a_mysql_archive_and_refuses_to_restore_it_here(mysql_archive, tmp_path, capsys):
    doc = runbook_support.outputs_doc(runbook_support.paper_servers(tmp_path))
    access = mysql_archive.access
    doc["drctl"]["backups"] = {
        "region": "eu-west", "storageRegion": "eu-west", "bucket": access.bucket, "endpoint": access.endpoint,
        "accessKey": access.access_key, "secretKey": access.secret_key,
        "archiveKey": base64.b64encode(KEY).decode(), "backupRpoSeconds": 300, "baseEveryHours": 24,
        "retentionDays": 14,
    }
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(doc))
    code = cli.main(["restore", "--outputs", str(outputs), "--to-gtid", f"{SERVER}:4", "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0 and f"restore to GTID {SERVER}:4" in out and "<- stops in here" in out

    code = cli.main(["restore", "--outputs", str(outputs), "--to-gtid", f"{SERVER}:4",
                     "--target", f"local:{tmp_path / 'restored'}"])
    captured = capsys.readouterr()
    assert code == 1
    assert "drctl restore: cannot restore this MySQL 8 archive here: mysqlbinlog is not MySQL 8's" in captured.err
    assert "starting a MariaDB server" not in captured.out + captured.err
    assert not (tmp_path / "restored").exists() or not any((tmp_path / "restored").iterdir())
    assert "Traceback" not in captured.err


def test_a_mysql_archive_never_streams_from_a_mariadb_server(archive):
    said: list[str] = []
    archiver = Archiver(archive.bucket, archive.key, archive.spool,
                        lambda: [archive.source(archive.primary)], MysqlGtidPos.parse(f"{SERVER}:1-5"),
                        say=said.append)
    try:
        archiver.tick()
        assert archiver.source_error is not None
        assert archiver.sessions == [] and archiver.sessions_started == 0
        assert said == [f"archive: {archive.primary.host}:{archive.primary.port} is a mariadb server but this archive "
                        f"holds a mysql binlog (GTID position {SERVER}:1-5): not archiving it"]
        archiver.tick()
        assert len(said) == 1  # said once, not every round
    finally:
        archiver.close()


def test_a_mysql_base_backup_with_mariadbs_dump_tool_is_refused_and_nothing_is_published(archive):
    client = (f"--socket={archive.replica.socket}", "--user=root")
    with pytest.raises(BaseBackupError, match=r"mariadb-dump exited with .*set-gtid-purged"):
        take_base_backup(archive.bucket, archive.key, client, schemas_to_dump(archive.replica.connect),
                         dump_tool="mariadb-dump", work_dir=archive.tmp, say=archive.said.append,
                         flavour=Flavour.MYSQL)
    assert load_bases(archive.bucket) == []


def test_an_archive_of_the_other_flavour_is_not_continued(bucket):
    bucket.put_json("status.json", {"archivedPos": "0-1-100", "lastTransactionTime": 1647193191})  # MariaDB's, before flavours
    assert str(archived_position(bucket, Flavour.MARIADB)) == "0-1-100"
    with pytest.raises(ArchiveFlavourError, match="holds a mariadb binlog but the settings say flavour 'mysql'"):
        archived_position(bucket, Flavour.MYSQL)
    bucket.put_json("status.json", {"archivedPos": f"{SERVER}:1-5", "flavour": "mysql"})
    assert archived_position(bucket, Flavour.MYSQL) == MysqlGtidPos.parse(f"{SERVER}:1-5")
