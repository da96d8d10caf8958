"""What drctl runs against MySQL 8 (DESIGN.md section 4: no MySQL 8 server here, so every command
line and every parse of MySQL's output is checked as text): the archiver's mysqlbinlog, the base
backup's mysqldump and the GTID set it writes, the restore's replay and where it cuts a binlog."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drctl import cli
from drctl.backup.archive_config import ArchiveConfigError, load_settings
from drctl.backup.archiver import Source, mysql_reader_argv
from drctl.backup.base_backup import dump_argv, dump_position
from drctl.backup.binlog_events import Flavour, Gtid, GtidPos, MysqlGtid, MysqlGtidPos
from drctl.backup.manifest import Piece
from drctl.backup.restore import mysql_cut, mysql_replay_argv, version_flavour

FIXTURES = Path(__file__).parent / "fixtures"
SERVER = "93e95066-a2f4-11ec-9b69-9657f0ae95e2"
PRIMARY = Source("mysql-us-east.db.shop.example.com", 3306, "replicator", "s3cret-never-on-argv",
                 "/etc/mysql/woocommerce-dr/source-ca.pem")


def test_the_archiver_reads_a_mysql_primary_by_gtid_set_as_a_replica_over_verified_tls(tmp_path):
    archived = MysqlGtidPos.parse(f"{SERVER}:1-41,3e11fa47-71ca-11e1-9e33-c80aa9429562:1-7")
    argv = mysql_reader_argv("/usr/bin/mysqlbinlog", tmp_path / ".s.cnf", PRIMARY, archived, 4_000_000_001,
                             tmp_path / "s")
    assert argv == [
        "/usr/bin/mysqlbinlog", f"--defaults-extra-file={tmp_path}/.s.cnf",
        "--read-from-remote-source=BINLOG-DUMP-GTIDS",
        f"--exclude-gtids=3e11fa47-71ca-11e1-9e33-c80aa9429562:1-7,{SERVER}:1-41",
        "--raw", "--stop-never", "--connection-server-id=4000000001",
        "--host=mysql-us-east.db.shop.example.com", "--port=3306", "--user=replicator",
        "--ssl-mode=VERIFY_IDENTITY", "--ssl-ca=/etc/mysql/woocommerce-dr/source-ca.pem",
        f"--result-file={tmp_path}/s/", "",
    ]
    assert not any("s3cret" in a for a in argv)
    fresh = mysql_reader_argv("mysqlbinlog", tmp_path / ".s.cnf", PRIMARY, MysqlGtidPos(), 7, tmp_path / "s")
    assert not any(a.startswith("--exclude-gtids") for a in fresh)
    # MariaDB-only or pre-8.0.26 spellings would make MySQL 8's mysqlbinlog refuse or warn.
    assert not any(a.startswith(("--start-position", "--ssl-verify-server-cert", "--stop-never-slave-server-id",
                                 "--read-from-remote-master")) for a in argv)


def test_a_mysql_base_backup_is_mysqldumps_snapshot_with_its_gtid_set():
    argv = dump_argv(Flavour.MYSQL, "mysqldump", ("--socket=/var/run/mysqld/mysqld.sock", "--user=root"),
                     ["wordpress", "drctl_drill"])
    assert argv == ["mysqldump", "--socket=/var/run/mysqld/mysqld.sock", "--user=root", "--single-transaction",
                    "--set-gtid-purged=ON", "--source-data=2", "--routines", "--events", "--triggers", "--hex-blob",
                    "--databases", "wordpress", "drctl_drill"]
    assert "--gtid" not in argv and "--master-data=2" not in argv  # MariaDB's spellings
    assert dump_argv(Flavour.MARIADB, "mariadb-dump", ("--socket=s",), ["wordpress"])[2:5] == [
        "--single-transaction", "--gtid", "--master-data=2"]


MYSQLDUMP_HEAD = b"""-- MySQL dump 10.13  Distrib 8.0.40, for Linux (x86_64)
--
-- Host: localhost    Database: wordpress
-- ------------------------------------------------------
-- Server version\t8.0.40-0ubuntu0.24.04.1

/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
SET @MYSQLDUMP_TEMP_LOG_BIN = @@SESSION.SQL_LOG_BIN;
SET @@SESSION.SQL_LOG_BIN= 0;

--
-- GTID state at the beginning of the backup
--

SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-7,
93e95066-a2f4-11ec-9b69-9657f0ae95e2:1-48211';

--
-- Position to start replication or point-in-time recovery from
--

-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='binlog.000042', SOURCE_LOG_POS=157;
"""


def test_the_gtid_set_of_a_mysql_dump_is_read_from_its_gtid_purged_line_over_several_lines():
    pos = dump_position(Flavour.MYSQL, MYSQLDUMP_HEAD, b"")
    assert isinstance(pos, MysqlGtidPos)
    assert str(pos) == f"3e11fa47-71ca-11e1-9e33-c80aa9429562:1-7,{SERVER}:1-48211"
    assert pos.includes(MysqlGtid(SERVER, 48211)) and not pos.includes(MysqlGtid(SERVER, 48212))


def test_a_commented_gtid_purged_line_is_no_position():
    commented = MYSQLDUMP_HEAD.replace(b"SET @@GLOBAL.GTID_PURGED", b"-- SET @@GLOBAL.GTID_PURGED")
    assert dump_position(Flavour.MYSQL, commented, b"") is None
    assert dump_position(Flavour.MARIADB, b"-- SET GLOBAL gtid_slave_pos='0-1-42';\n", b"") == GtidPos.parse("0-1-42")


def test_a_mysql_binlog_is_replayed_without_what_the_target_already_has():
    reached = MysqlGtidPos.parse(f"{SERVER}:1-48211")
    assert mysql_replay_argv("mysqlbinlog", Path("/w/00001-binlog.000042"), reached) == [
        "mysqlbinlog", f"--exclude-gtids={SERVER}:1-48211", "/w/00001-binlog.000042"]
    assert mysql_replay_argv("mysqlbinlog", Path("/w/f"), MysqlGtidPos()) == ["mysqlbinlog", "/w/f"]


def test_the_file_of_the_target_is_cut_before_the_first_transaction_after_the_time():
    data = (FIXTURES / "mysql80-gtid.000001").read_bytes()
    # Transactions 3 and 4 committed at 17:41:21.67 and 17:41:37.44 UTC.
    assert mysql_cut(data, datetime(2022, 3, 13, 17, 41, 30, tzinfo=UTC), None) == (1560, True)
    assert mysql_cut(data, datetime(2022, 3, 13, 17, 41, 21, tzinfo=UTC), None) == (1560, True)  # whole seconds
    assert mysql_cut(data, datetime(2022, 3, 13, 17, 41, 20, tzinfo=UTC), None) == (791, True)
    assert mysql_cut(data, datetime(2022, 3, 13, 18, 0, 0, tzinfo=UTC), None) == (3331, False)


def test_the_file_of_the_target_gtid_is_cut_right_after_that_transaction():
    data = (FIXTURES / "mysql80-gtid.000001").read_bytes()
    assert mysql_cut(data, None, MysqlGtid(SERVER, 4)) == (2659, True)
    assert mysql_cut(data, None, MysqlGtid(SERVER, 9)) == (3331, False)


def test_mysql_8_tools_are_told_from_mariadbs_by_their_version():
    assert version_flavour("mysqlbinlog  Ver 8.0.28 for Linux on x86_64") is Flavour.MYSQL
    assert version_flavour("mysql  Ver 8.0.40-0ubuntu0.24.10.1 for Linux on x86_64 ((Ubuntu))") is Flavour.MYSQL
    assert version_flavour("mysql  Ver 8.0.28 for Linux on x86_64 (MySQL Community Server - GPL)") is Flavour.MYSQL
    # Debian's mysqlbinlog and mysql are MariaDB's, under MySQL's names.
    assert version_flavour("mysqlbinlog Ver 3.5 for debian-linux-gnu at x86_64") is None
    assert version_flavour("mysql  Ver 15.1 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64) using  "
                           "EditLine wrapper") is Flavour.MARIADB


def test_the_archivers_settings_name_the_flavour_of_their_servers(tmp_path):
    settings = {"bucket": {"endpoint": "http://127.0.0.1:9", "bucket": "b", "accessKey": "a", "secretKey": "s"},
                "archiveKey": "k", "sources": [{"host": "db", "user": "replicator", "password": "pw", "caFile": "/ca"}],
                "baseClient": ["--socket=/run/mysqld/mysqld.sock"], "spool": str(tmp_path / "spool")}
    path = tmp_path / "archive.json"
    path.write_text(json.dumps(settings))
    assert load_settings(path).flavour == "mariadb"  # settings written before MySQL was archived
    path.write_text(json.dumps({**settings, "flavour": "mysql"}))
    assert load_settings(path).flavour == "mysql"
    path.write_text(json.dumps({**settings, "flavour": "postgres"}))
    with pytest.raises(ArchiveConfigError, match=f"--config {path}: flavour: Input should be 'mariadb' or 'mysql' "
                                                 "\\(got 'postgres'\\)"):
        load_settings(path)


def test_drctl_archive_with_mysql_settings_refuses_mariadbs_tools_before_touching_anything(tmp_path, capsys):
    # Debian's mysqlbinlog and mysqldump are MariaDB's: a MySQL archive cannot be kept with them.
    settings = {"bucket": {"endpoint": "http://127.0.0.1:9", "bucket": "b", "accessKey": "a", "secretKey": "s"},
                "archiveKey": base64.b64encode(bytes(32)).decode(),
                "sources": [{"host": "db", "user": "replicator", "password": "pw", "caFile": "/ca"}],
                "baseClient": ["--socket=/run/mysqld/mysqld.sock"], "spool": str(tmp_path / "spool"),
                "flavour": "mysql"}
    path = tmp_path / "archive.json"
    path.write_text(json.dumps(settings))
    code = cli.main(["archive", "--config", str(path)])
    err = capsys.readouterr().err
    assert code == 1
    assert "drctl archive: the settings say flavour 'mysql' but mysqlbinlog is not MySQL 8's (" in err
    assert "mysqldump is not MySQL 8's (" in err and "apt-get install mysql-client-8.0" in err
    assert not (tmp_path / "spool").exists() and "Traceback" not in err


def test_manifests_written_before_flavours_are_mariadbs():
    doc = {"session": "s", "number": 3, "source": "db:3306", "file": "binlog.000002", "offset": 4, "size": 10,
           "first": {"0": "0-1-5"}, "last": {"0": "0-1-9"}, "firstTime": 1, "lastTime": 2, "transactions": 5,
           "sha256Plain": "p", "sha256Sealed": "s", "archivedAt": 3.0}
    piece = Piece.from_json(doc)
    assert piece.flavour is Flavour.MARIADB and piece.last == {0: Gtid(0, 1, 9)}
    assert Piece.from_json(piece.to_json()) == piece
    mysql = Piece.from_json({**doc, "flavour": "mysql", "first": {SERVER: f"{SERVER}:5"},
                             "last": {SERVER: f"{SERVER}:9"}})
    assert mysql.last == {SERVER: MysqlGtid(SERVER, 9)} and Piece.from_json(mysql.to_json()) == mysql
