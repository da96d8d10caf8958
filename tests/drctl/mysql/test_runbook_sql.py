"""The replication primitives promote and failback add, for every dialect: the SQL they send,
binary-log events as MySQL 8 and MariaDB print them, and TLS checked against a server's name when it
is reached by address. (The GTID arithmetic behind them is tested in test_gtid.py.)"""

import contextlib
from pathlib import Path

import pymysql
import pytest

from drctl.mysql import replication as r
from drctl.mysql.errant import ErrantTransaction, find_transactions
from drctl.mysql.gtid import GtidSet, MariaDBGtidState
from drctl.mysql.reseed import load_command
from drctl.mysql.topology import DbServer

UUID = "3e11fa47-71ca-11e1-9e33-c80aa9429562"


@pytest.mark.parametrize(("dialect", "sql"), [
    (r.Dialect.MYSQL_80, ("STOP REPLICA", "RESET REPLICA ALL")),
    (r.Dialect.MYSQL_84, ("STOP REPLICA", "RESET REPLICA ALL")),
    (r.Dialect.MARIADB, ("STOP SLAVE", "RESET SLAVE ALL")),
])
def test_promoting_a_replica_stops_and_forgets_replication(dialect, sql):
    assert r.promote_sql(dialect, was_replica=True) == sql
    assert r.promote_sql(dialect, was_replica=False) == ()


def test_stopping_only_the_receiving_thread():
    assert r.stop_io_thread_sql(r.Dialect.MYSQL_84) == "STOP REPLICA IO_THREAD"
    assert r.stop_io_thread_sql(r.Dialect.MARIADB) == "STOP SLAVE IO_THREAD"


def test_a_former_mariadb_primary_rejoins_from_its_current_position():
    assert r.rejoin_sql(r.Dialect.MARIADB) == ("SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_current_pos",)
    assert r.rejoin_sql(r.Dialect.MYSQL_80) == ()  # auto-position sends gtid_executed


@pytest.mark.parametrize(("dialect", "reset"), [
    (r.Dialect.MYSQL_80, ["RESET MASTER"]),
    (r.Dialect.MYSQL_84, ["RESET BINARY LOGS AND GTIDS"]),
])
def test_rewinding_mysql_gtid_history_purges_to_the_kept_set(dialect, reset):
    kept = GtidSet.parse(f"{UUID}:1-100")
    statements = r.rewind_gtid_history_sql(dialect, kept)
    assert [s.sql for s in statements] == [*reset, "SET GLOBAL gtid_purged = %s"]
    assert statements[-1].params == (f"{UUID}:1-100",)


def test_rewinding_mariadb_gtid_history_sets_binlog_state_and_position():
    state = MariaDBGtidState.parse("0-1-100,0-2-150,1-2-7")
    statements = r.rewind_gtid_history_sql(r.Dialect.MARIADB, state)
    assert [(s.sql, s.params) for s in statements] == [
        ("RESET MASTER", ()), ("SET GLOBAL gtid_slave_pos = ''", ()),
        ("SET GLOBAL gtid_binlog_state = %s", ("0-1-100,0-2-150,1-2-7",)),
        ("SET GLOBAL gtid_slave_pos = %s", ("0-2-150,1-2-7",)),
    ]



@pytest.mark.parametrize(("dialect", "info", "gtid"), [
    (r.Dialect.MARIADB, "BEGIN GTID 0-1-101", "0-1-101"),
    (r.Dialect.MARIADB, "GTID 0-1-102", "0-1-102"),  # DDL: no BEGIN
    (r.Dialect.MYSQL_80, f"SET @@SESSION.GTID_NEXT= '{UUID}:42'", f"{UUID}:42"),
])
def test_the_gtid_a_binlog_event_announces(dialect, info, gtid):
    assert r.gtid_of_event(dialect, r.BinlogEvent("binlog.000001", 4, 100, "Gtid", 1, info)) == gtid
    assert r.gtid_of_event(dialect, r.BinlogEvent("binlog.000001", 4, 100, "Query", 1, info)) is None


class RecordedBinlog:
    """A connection that answers SHOW BINARY LOGS / SHOW BINLOG EVENTS as a MySQL 8.4 server did."""

    def __init__(self, files):
        self.files = files

    @contextlib.contextmanager
    def cursor(self):
        conn = self

        class Cursor:
            def execute(self, sql, params=None):
                self.rows = [(f, 0) for f in conn.files] if sql == "SHOW BINARY LOGS" else conn.files[params[0]]

            def fetchall(self):
                return self.rows
        yield Cursor()


def mysql_transaction(file, pos, n, statement, table, rows_event="Write_rows"):
    return [
        (file, pos, "Gtid", 1, pos + 79, f"SET @@SESSION.GTID_NEXT= '{UUID}:{n}'"),
        (file, pos + 79, "Query", 1, pos + 160, "BEGIN"),
        (file, pos + 160, "Rows_query", 1, pos + 220, f"# {statement}"),
        (file, pos + 220, "Table_map", 1, pos + 280, f"table_id: 90 ({table})"),
        (file, pos + 280, rows_event, 1, pos + 330, "table_id: 90 flags: STMT_END_F"),
        (file, pos + 330, "Xid", 1, pos + 361, "COMMIT /* xid=77 */"),
    ]


def test_mysql_errant_transactions_are_found_with_their_tables_and_statements():
    conn = RecordedBinlog({
        "binlog.000001": mysql_transaction("binlog.000001", 4, 100, "INSERT INTO shop.orders VALUES (3, 30)",
                                           "shop.orders"),
        "binlog.000002": [
            *mysql_transaction("binlog.000002", 4, 101, "INSERT INTO shop.orders VALUES (4, 40)", "shop.orders"),
            *mysql_transaction("binlog.000002", 400, 102, "INSERT INTO drctl.drctl_heartbeat ...",
                               "drctl.drctl_heartbeat", "Update_rows"),
        ],
    })
    found, complete = find_transactions(conn, r.Dialect.MYSQL_84, f"{UUID}:101-102", 2)
    assert complete
    assert [(t.gtid, t.file, t.start, t.end) for t in found] == [
        (f"{UUID}:101", "binlog.000002", 4, 365), (f"{UUID}:102", "binlog.000002", 400, 761)]
    assert found[0].statements == ["INSERT INTO shop.orders VALUES (4, 40)"] and found[0].tables == ["shop.orders"]
    assert not found[0].drctl_only and found[1].drctl_only


def test_a_transaction_with_ddl_outside_drctl_is_shop_data():
    t = ErrantTransaction("0-1-5", "binlog.000001", 4, tables=[], statements=["ALTER TABLE shop.orders ADD x INT"])
    assert not t.drctl_only
    heartbeat_ddl = ErrantTransaction("0-1-6", "binlog.000001", 4, statements=["CREATE DATABASE IF NOT EXISTS drctl"])
    assert heartbeat_ddl.drctl_only


@pytest.mark.integration
def test_tls_is_checked_against_the_name_a_server_is_known_by(mariadb_server):
    mariadb_server.create_user("drctl", "pw")
    ca_pem = Path(mariadb_server.tls.ca).read_text()
    conn = r.connect("127.0.0.1", mariadb_server.port, "drctl", "pw", ssl_ca_pem=ca_pem, tls_name="localhost")
    with contextlib.closing(conn):
        assert r.scalar(conn, "SELECT 1") == 1
    with pytest.raises(pymysql.err.OperationalError, match=r"certificate verify failed"):
        r.connect("127.0.0.1", mariadb_server.port, "drctl", "pw", ssl_ca_pem=ca_pem, tls_name="mysql-eu.internal")


def test_mysql_clients_check_the_stack_ca_when_a_server_is_reached_by_address():
    by_ip = DbServer("eu-west", "replica", "203.0.113.7", 3306, "mysql-eu-west.db.shop.example.com",
                     "mysql-eu-west.db.shop.example.com", "drctl", "pw", "pem")
    by_name = DbServer("us-east", "primary", "a1.akamaidb.net", 11876, None, "a1.akamaidb.net", "akmadmin", "pw", "pem")
    assert "--ssl-mode=VERIFY_CA" in load_command(r.Dialect.MYSQL_84, by_ip, "/tmp/ca.pem")
    assert "--ssl-mode=VERIFY_IDENTITY" in load_command(r.Dialect.MYSQL_84, by_name, "/tmp/ca.pem")
    assert "pw" not in " ".join(load_command(r.Dialect.MYSQL_84, by_ip, "/tmp/ca.pem"))
