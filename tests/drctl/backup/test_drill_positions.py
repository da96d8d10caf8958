"""The restore drill on either server family, without a server: which query reads the primary's
position (the dialect's), how the answer is parsed, and "the archive holds the drill's last order"
as per-domain comparison (MariaDB) or GTID-set containment (MySQL 8). No MySQL 8 server is
installable here (DESIGN.md section 4): its answers are rows in the form MySQL 8.0 gives them (the
server uuid and transactions are those of the recorded MySQL 8.0.28 binlog in fixtures/, whose
README says what it holds); MariaDB's are also read for real in test_restore_drill.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from drctl.backup import restore_drill
from drctl.backup.binlog_events import Flavour, GtidPos, MysqlGtidPos, scan_mysql
from drctl.backup.restore import RestoreError
from drctl.backup.server_position import binlog_position, server_flavour
from drctl.mysql.dialect import Dialect, binlog_position_sql

FIXTURES = Path(__file__).parent / "fixtures"
UUID = "93e95066-a2f4-11ec-9b69-9657f0ae95e2"  # the server of fixtures/mysql80-gtid.000001
OTHER = "3e11fa47-71ca-11e1-9e33-c80aa9429562"  # a former primary's transactions, carried in gtid_executed

# SELECT answers as a MySQL 8.0 primary on Ubuntu 24.04 gives them: gtid_executed lists one member per
# server uuid, comma and newline between them.
MYSQL_ROWS = {"SELECT VERSION()": ("8.0.40-0ubuntu0.24.04.1",),
              "SELECT @@GLOBAL.gtid_executed": (f"{OTHER}:1-1207,\n{UUID}:1-5",)}
MARIADB_ROWS = {"SELECT VERSION()": ("10.11.14-MariaDB-0+deb12u2-log",),
                "SELECT @@GLOBAL.gtid_binlog_pos": ("0-1-48211",)}


class RecordedConnection:
    """A PyMySQL connection that answers each query with its recorded row and logs what it was asked."""

    def __init__(self, rows: dict[str, tuple]):
        self.rows, self.asked, self.closed = rows, [], False

    def cursor(self):
        return RecordedCursor(self)

    def close(self) -> None:
        self.closed = True


class RecordedCursor:
    def __init__(self, conn: RecordedConnection):
        self.conn, self.row = conn, None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, sql, params=None):
        self.conn.asked.append(sql)
        if sql not in self.conn.rows:
            raise AssertionError(f"a query the recorded server was not asked before: {sql!r}")
        self.row = self.conn.rows[sql]

    def fetchone(self):
        return self.row


def test_the_drill_reads_a_mysql_primarys_gtid_executed_as_a_gtid_set():
    conn = RecordedConnection(MYSQL_ROWS)
    flavour = server_flavour(conn)
    position = restore_drill._position(lambda: conn, flavour)
    assert flavour is Flavour.MYSQL
    assert isinstance(position, MysqlGtidPos)
    assert str(position) == f"{OTHER}:1-1207,{UUID}:1-5"
    assert conn.asked == ["SELECT VERSION()", "SELECT @@GLOBAL.gtid_executed"]
    assert conn.closed


def test_the_drill_reads_a_mariadb_primarys_binlog_position():
    conn = RecordedConnection(MARIADB_ROWS)
    position = restore_drill._position(lambda: conn, server_flavour(conn))
    assert position == GtidPos.parse("0-1-48211")
    assert conn.asked == ["SELECT VERSION()", "SELECT @@GLOBAL.gtid_binlog_pos"]


def test_an_empty_gtid_executed_is_an_empty_position():
    conn = RecordedConnection({"SELECT @@GLOBAL.gtid_executed": ("",)})
    assert not binlog_position(conn, Flavour.MYSQL)


@pytest.mark.parametrize(("dialect", "sql"), [
    (Dialect.MYSQL_80, "SELECT @@GLOBAL.gtid_executed"),
    (Dialect.MYSQL_84, "SELECT @@GLOBAL.gtid_executed"),
    (Dialect.MARIADB, "SELECT @@GLOBAL.gtid_binlog_pos"),
])
def test_each_dialect_names_its_binlog_position_query(dialect, sql):
    assert binlog_position_sql(dialect.family) == sql
    assert Flavour.of(dialect).value == dialect.family  # an archive's flavour is its server's family


def test_a_family_that_is_neither_is_refused_by_name():
    with pytest.raises(ValueError, match=r"not a database server family: 'postgres' \(allowed: mariadb, mysql\)"):
        binlog_position_sql("postgres")


def archived_from_recorded_binlog() -> MysqlGtidPos:
    """The archive's position as the archiver builds it: the base's set, then each shipped transaction."""
    archived = MysqlGtidPos.parse(f"{OTHER}:1-1207")
    for txn in scan_mysql((FIXTURES / "mysql80-gtid.000001").read_bytes()).transactions:
        archived = archived.after(txn.gtid)
    return archived


def test_a_mysql_archive_holds_the_drill_once_it_contains_the_primarys_gtid_set():
    primary = MysqlGtidPos.parse(MYSQL_ROWS["SELECT @@GLOBAL.gtid_executed"][0])
    status = {"archivedPos": str(archived_from_recorded_binlog()), "flavour": "mysql"}
    assert restore_drill.archive_holds(status, Flavour.MYSQL, primary, "bucket b")
    one_more = MysqlGtidPos.parse(f"{OTHER}:1-1207,{UUID}:1-6")
    assert not restore_drill.archive_holds(status, Flavour.MYSQL, one_more, "bucket b")
    another_server = MysqlGtidPos.parse(f"{OTHER}:1-1207,{UUID}:1-5,4a2b8c1d-0000-11ef-8000-0242ac120002:1")
    assert not restore_drill.archive_holds(status, Flavour.MYSQL, another_server, "bucket b")


def test_a_hole_in_the_mysql_archive_is_not_held_whatever_its_highest_numbers_say():
    primary = MysqlGtidPos.parse(f"{UUID}:1-48211")
    holed = {"archivedPos": f"{UUID}:1-100:102-48211", "flavour": "mysql"}
    assert all(MysqlGtidPos.parse(holed["archivedPos"]).includes(g) for g in primary.last.values())
    assert not restore_drill.archive_holds(holed, Flavour.MYSQL, primary, "bucket b")


def test_a_mariadb_archive_holds_the_drill_per_domain():
    primary = GtidPos.parse("0-1-48211,1-2-7")
    assert restore_drill.archive_holds({"archivedPos": "0-1-48300,1-2-7"}, Flavour.MARIADB, primary, "b")
    assert not restore_drill.archive_holds({"archivedPos": "0-1-48300"}, Flavour.MARIADB, primary, "b")


def test_an_archive_of_the_other_family_is_refused_not_waited_for():
    primary = MysqlGtidPos.parse(f"{UUID}:1-5")
    with pytest.raises(RestoreError, match="the archive in bucket b holds a mariadb binlog but the stack's primary "
                                           "is a mysql server"):
        restore_drill.archive_holds({"archivedPos": "0-1-5"}, Flavour.MYSQL, primary, "bucket b")


def test_a_mysql_archive_cannot_be_drilled_on_this_machine():
    why = restore_drill.local_refusal(Flavour.MYSQL, "wcdr-binlogs")
    assert why.startswith("--restore-on local: the archive in wcdr-binlogs holds a MySQL 8 binlog")
    assert why.endswith("use --restore-on linode (the default), which makes a MySQL 8 scratch Linode")
    assert restore_drill.local_refusal(Flavour.MARIADB, "b") is None
    assert restore_drill.local_refusal(None, "b") is None
