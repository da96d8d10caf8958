"""The replication SQL for each dialect, exactly; status rows recorded from MySQL 8.0, 8.4 and MariaDB
10.11 parsed by column name; the privilege check. (MySQL has no server package here: its syntax is
proved by these, MariaDB's also for real in test_replication_mariadb.py.)"""

import json
from pathlib import Path

import pytest

from drctl.mysql import replication as r

FIXTURES = Path(__file__).parent / "fixtures" / "replica_status"
SOURCE = r.Source(host="a1.akamaidb.net", port=11876, user="akmadmin", password="s3cr'et",
                  ssl_ca="/etc/mysql/woocommerce-dr/source-ca.pem")


def fixture(name: str) -> tuple[r.Dialect, dict]:
    doc = json.loads((FIXTURES / name).read_text())
    return r.parse_version(doc["version"]).dialect, doc["row"]


@pytest.mark.parametrize(("version", "dialect"), [
    ("8.0.23", r.Dialect.MYSQL_80),
    ("8.0.40-0ubuntu0.24.04.1", r.Dialect.MYSQL_80),
    ("8.4.3", r.Dialect.MYSQL_84),
    ("9.1.0-commercial", r.Dialect.MYSQL_84),
    ("10.11.19-MariaDB-0+deb12u1-log", r.Dialect.MARIADB),
    ("11.4.2-MariaDB", r.Dialect.MARIADB),
])
def test_dialect_comes_from_the_version_string(version, dialect):
    assert r.parse_version(version).dialect is dialect


@pytest.mark.parametrize(("version", "needed"), [("8.0.22", "8.0.23"), ("5.7.44-log", "8.0.23"),
                                                  ("10.4.32-MariaDB", "10.5")])
def test_versions_without_the_syntax_used_are_refused_by_name(version, needed):
    with pytest.raises(r.UnsupportedServer, match=needed):
        r.parse_version(version)


@pytest.mark.parametrize("dialect", [r.Dialect.MYSQL_80, r.Dialect.MYSQL_84])
def test_mysql_change_source_uses_gtid_auto_position_over_verified_tls(dialect):
    statement = r.change_source_statement(dialect, SOURCE)
    assert statement.sql == (
        "CHANGE REPLICATION SOURCE TO SOURCE_HOST = %s, SOURCE_PORT = 11876, SOURCE_USER = %s, "
        "SOURCE_PASSWORD = %s, SOURCE_SSL = 1, SOURCE_SSL_CA = %s, SOURCE_SSL_VERIFY_SERVER_CERT = 1, "
        "SOURCE_AUTO_POSITION = 1, SOURCE_CONNECT_RETRY = 10, SOURCE_RETRY_COUNT = 86400, "
        "SOURCE_HEARTBEAT_PERIOD = 2"
    )
    assert statement.params == ("a1.akamaidb.net", "akmadmin", "s3cr'et", "/etc/mysql/woocommerce-dr/source-ca.pem")


def test_mariadb_change_master_uses_slave_pos_over_verified_tls():
    statement = r.change_source_statement(r.Dialect.MARIADB, SOURCE)
    assert statement.sql == (
        "CHANGE MASTER TO MASTER_HOST = %s, MASTER_PORT = 11876, MASTER_USER = %s, MASTER_PASSWORD = %s, "
        "MASTER_SSL = 1, MASTER_SSL_CA = %s, MASTER_SSL_VERIFY_SERVER_CERT = 1, MASTER_USE_GTID = slave_pos, "
        "MASTER_CONNECT_RETRY = 10, MASTER_HEARTBEAT_PERIOD = 2"
    )


def test_the_password_is_a_parameter_never_part_of_the_text_or_repr():
    statement = r.change_source_statement(r.Dialect.MYSQL_80, SOURCE)
    assert "s3cr'et" not in statement.sql
    assert "s3cr'et" not in repr(SOURCE)
    assert statement.redact("near 's3cr'et' at line 1") == "near '********' at line 1"


def test_heartbeat_period_keeps_fractions():
    source = r.Source("h", 3306, "u", "p", "/ca.pem", heartbeat_period=0.5)
    assert r.change_source_statement(r.Dialect.MYSQL_84, source).sql.endswith("SOURCE_HEARTBEAT_PERIOD = 0.5")


@pytest.mark.parametrize(("dialect", "start", "stop", "status", "reset", "binlog"), [
    (r.Dialect.MYSQL_80, "START REPLICA", "STOP REPLICA", "SHOW REPLICA STATUS", ("RESET MASTER",),
     "SHOW MASTER STATUS"),
    (r.Dialect.MYSQL_84, "START REPLICA", "STOP REPLICA", "SHOW REPLICA STATUS", ("RESET BINARY LOGS AND GTIDS",),
     "SHOW BINARY LOG STATUS"),
    (r.Dialect.MARIADB, "START SLAVE", "STOP SLAVE", "SHOW SLAVE STATUS",
     ("RESET MASTER", "SET GLOBAL gtid_slave_pos = ''"), "SHOW MASTER STATUS"),
])
def test_statements_per_dialect(dialect, start, stop, status, reset, binlog):
    assert r.start_replica_sql(dialect) == start
    assert r.stop_replica_sql(dialect) == stop
    assert r.replica_status_sql(dialect) == status
    assert r.reset_gtids_sql(dialect) == reset
    assert r.binary_log_status_sql(dialect) == binlog


def test_mysql_80_status_of_a_healthy_lagging_replica():
    dialect, row = fixture("mysql-8.0-replicating.json")
    status = r.parse_replica_status(dialect, row)
    assert status.replicating and status.problems() == []
    assert (status.source_host, status.source_port, status.source_user) == (
        "a123456-akamai-prod-1234-default.g2a.akamaidb.net", 11876, "akmadmin")
    assert status.seconds_behind == 2
    assert status.auto_position and status.ssl_verify_server_cert
    assert status.retrieved_gtids == "4f1d3b2a-8c6e-11ee-9b5f-f23c94a1b2c3:10412-58871"
    # The server wraps long sets over lines; the parsed text is one line.
    assert status.executed_gtids == (
        "4f1d3b2a-8c6e-11ee-9b5f-f23c94a1b2c3:1-58866,9a0c7e55-8c6f-11ee-a1d2-f23c94d4e5f6:1-3")


def test_mysql_84_status_of_a_replica_that_cannot_verify_the_source():
    dialect, row = fixture("mysql-8.4-io-error.json")
    status = r.parse_replica_status(dialect, row)
    assert dialect is r.Dialect.MYSQL_84
    assert status.io_thread == "Connecting" and not status.io_running and status.sql_running
    assert status.seconds_behind is None
    assert status.last_io_errno == 2026
    assert status.problems() == [
        "IO thread Connecting: error 2026: " + row["Last_IO_Error"],
    ]
    assert "certificate verify failed" in status.problems()[0]


def test_mariadb_status_of_a_healthy_replica():
    dialect, row = fixture("mariadb-10.11-replicating.json")
    status = r.parse_replica_status(dialect, row)
    assert dialect is r.Dialect.MARIADB
    assert status.replicating
    assert status.auto_position  # Using_Gtid: Slave_Pos
    assert status.retrieved_gtids == "0-1-5"
    assert status.executed_gtids is None  # MariaDB: read gtid_current_pos instead
    assert status.source_server_id == 1 and status.ssl_verify_server_cert


def test_mariadb_status_of_a_replica_stopped_by_an_errant_transaction():
    dialect, row = fixture("mariadb-10.11-sql-error.json")
    status = r.parse_replica_status(dialect, row)
    assert status.io_running and not status.sql_running
    assert status.last_sql_errno == 1950
    assert status.problems() == ["SQL thread No: error 1950: " + row["Last_SQL_Error"]]


def test_columns_are_read_by_name_so_their_order_does_not_matter():
    dialect, row = fixture("mysql-8.0-replicating.json")
    reordered = dict(reversed(list(row.items())))
    assert r.parse_replica_status(dialect, reordered) == r.parse_replica_status(dialect, row)


def test_a_row_of_the_other_dialect_fails_loudly():
    _, row = fixture("mariadb-10.11-replicating.json")
    with pytest.raises(r.ReplicationError, match="no column 'Replica_IO_Running'"):
        r.parse_replica_status(r.Dialect.MYSQL_80, row)


# --- privileges -----------------------------------------------------------------------------------

def test_grants_with_both_replication_privileges_pass():
    grants = ["GRANT SELECT, INSERT, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `akmadmin`@`%`"]
    assert r.missing_privileges(grants) == ()


def test_the_missing_privilege_is_named():
    grants = ["GRANT SELECT, RELOAD, PROCESS, REPLICATION SLAVE ON *.* TO `akmadmin`@`%` WITH GRANT OPTION",
              "GRANT REPLICATION CLIENT ON `mysql`.* TO `akmadmin`@`%`"]  # not global: does not count
    assert r.missing_privileges(grants) == ("REPLICATION CLIENT",)


def test_all_privileges_covers_everything():
    assert r.missing_privileges(["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION"]) == ()


def test_mariadb_names_for_the_same_privileges_count():
    grants = ["GRANT REPLICATION REPLICA, BINLOG MONITOR ON *.* TO `repl`@`%` IDENTIFIED BY PASSWORD '*AB12'"]
    assert r.missing_privileges(grants) == ()


def test_only_usage_means_both_are_missing():
    assert r.missing_privileges(["GRANT USAGE ON *.* TO `app`@`%`"]) == ("REPLICATION SLAVE", "REPLICATION CLIENT")


def test_fenced_means_super_read_only_where_the_server_has_it():
    assert r.ReadOnlyState(read_only=True, super_read_only=True).fenced
    assert not r.ReadOnlyState(read_only=True, super_read_only=False).fenced
    assert r.ReadOnlyState(read_only=True, super_read_only=None).fenced  # MariaDB: read_only is all there is
    assert not r.ReadOnlyState(read_only=False, super_read_only=None).fenced


def test_heartbeat_table_keeps_the_schema_the_web_tier_reads():
    assert r.HEARTBEAT_DDL[1] == ("CREATE TABLE IF NOT EXISTS drctl.drctl_heartbeat "
                                  "(id TINYINT NOT NULL PRIMARY KEY, ts TIMESTAMP(6) NOT NULL) ENGINE=InnoDB")
    assert r.HEARTBEAT_EVENT_DDL.startswith(
        "CREATE EVENT IF NOT EXISTS drctl.drctl_heartbeat_writer ON SCHEDULE EVERY 1 SECOND")
    assert r.HEARTBEAT_EVENT_DDL.endswith(r.HEARTBEAT_WRITE)


def test_replication_module_imports_no_pulumi():
    source = Path(r.__file__).read_text()
    assert "pulumi" not in source.replace("PyMySQL", "")


@pytest.mark.parametrize(("dialect", "sql"), [
    (r.Dialect.MYSQL_80, "ALTER EVENT `drctl`.`drctl_heartbeat_writer` DISABLE ON REPLICA"),
    (r.Dialect.MARIADB, "ALTER EVENT `drctl`.`drctl_heartbeat_writer` DISABLE ON SLAVE"),
])
def test_events_copied_by_a_dump_are_disabled_as_replication_would(dialect, sql):
    assert r.disable_event_on_replica_sql(dialect, "drctl", "drctl_heartbeat_writer") == sql


@pytest.mark.parametrize(("dialect", "privilege"), [
    (r.Dialect.MYSQL_80, "REPLICATION CLIENT"), (r.Dialect.MYSQL_84, "REPLICATION CLIENT"),
    (r.Dialect.MARIADB, "SLAVE MONITOR"),
])
def test_healthz_reads_replication_status_with_the_monitor_privilege_alone(dialect, privilege):
    assert r.replica_monitor_privilege(dialect) == privilege


def test_a_script_writes_values_as_escaped_literals():
    statement = r.Statement("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", ("shop", "%", "it's a \\ pw\n"),
                            frozenset({2}))
    assert r.script([statement, r.Statement("SELECT %s", (3,))]) == (
        "CREATE USER IF NOT EXISTS 'shop'@'%' IDENTIFIED BY 'it\\'s a \\\\ pw\\n';\nSELECT 3;\n")
