"""The first-boot script of the database Linodes (drctl/mysql/bootstrap.py), run for real between
MariaDB servers: check first, then seed, replicate and report; refuse and change nothing when the
replication account lacks a privilege."""

import contextlib
import dataclasses
import json

import pymysql
import pytest

from drctl.mysql import bootstrap as boot
from drctl.mysql import replication as r
from drctl.mysql.gtid import compare_gtids
from tests.support.replica_setups import managed_like, replica_config
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration
MARIADB = r.Dialect.MARIADB


@pytest.fixture
def servers(primary_and_read_only_replica):
    return primary_and_read_only_replica


def status_file(config) -> dict:
    with open(config.status_file) as f:
        return json.load(f)


def test_replica_is_seeded_and_replicates_with_verified_tls(servers, tmp_path):
    primary, replica = servers
    config = managed_like(tmp_path, primary, replica)
    messages = []

    assert boot.run(config, log=messages.append) == boot.EXIT_OK, status_file(config)["problem"]

    assert replica.query("SELECT id, total FROM woocommerce.wp_wc_orders ORDER BY id") == [(1, 100), (2, 200)]
    primary.execute("INSERT INTO woocommerce.wp_wc_orders VALUES (3, 300)")
    with contextlib.closing(primary.connect()) as p, contextlib.closing(replica.connect()) as s:
        assert r.wait_for_gtids(s, MARIADB, r.executed_gtids(p, MARIADB), 10)
        status = r.replica_status(s, MARIADB)
        comparison = compare_gtids(r.executed_gtids(p, MARIADB), r.executed_gtids(s, MARIADB))
    assert replica.query("SELECT COUNT(*) FROM woocommerce.wp_wc_orders") == [(3,)]
    assert status.ssl_verify_server_cert and status.auto_position
    # Seeding, local accounts and the state table added nothing to the replica's own history.
    assert comparison.in_sync, comparison

    doc = status_file(config)
    assert doc["state"] == "replicating" and doc["problem"] == ""
    assert doc["replication"]["ioRunning"] == "Yes" and doc["replication"]["sqlRunning"] == "Yes"
    assert replica.query("SELECT state FROM drctl_local.replica_state") == [("replicating",)]
    assert not any("admin-pw" in m or "app-pw" in m for m in messages)


def test_the_local_application_account_reads_but_cannot_write(servers, tmp_path):
    primary, replica = servers
    config = managed_like(tmp_path, primary, replica)
    assert boot.run(config, log=lambda _m: None) == boot.EXIT_OK

    assert replica.query("SELECT COUNT(*) FROM woocommerce.wp_wc_orders", "woocommerce", "app-pw") == [(2,)]
    assert replica.query("SELECT state FROM drctl_local.replica_state", "woocommerce", "app-pw") == [("replicating",)]
    with (contextlib.closing(replica.connect("woocommerce", "app-pw")) as app, app.cursor() as cur,
          pytest.raises(pymysql.err.OperationalError, match="read-only")):
        cur.execute("INSERT INTO woocommerce.wp_wc_orders VALUES (9, 9)")


def test_missing_replication_client_is_reported_and_nothing_is_configured(servers, tmp_path):
    primary, replica = servers
    config = managed_like(tmp_path, primary, replica, "SELECT, REPLICATION SLAVE, CREATE, INSERT ON *.*")

    assert boot.run(config, log=lambda _m: None) == boot.EXIT_REFUSED

    doc = status_file(config)
    assert doc["state"] == "refused"
    assert doc["missingPrivileges"] == ["REPLICATION CLIENT"]
    assert "'akmadmin' lacks REPLICATION CLIENT" in doc["problem"]
    with contextlib.closing(replica.connect()) as conn:
        assert r.replica_status(conn, MARIADB) is None  # never half-configured
    assert ("woocommerce",) not in replica.query("SHOW DATABASES")
    assert replica.query("SELECT state, problem FROM drctl_local.replica_state") == [("refused", doc["problem"])]
    # The region's web nodes can still log in and read why (their /healthz says so).
    assert replica.query("SELECT state FROM drctl_local.replica_state", "woocommerce", "app-pw") == [("refused",)]


def test_no_password_reaches_the_recorded_problem(tmp_path, mariadb_server):
    config = replica_config(tmp_path, mariadb_server, mariadb_server)
    text = "dump failed: Access denied (using password admin-pw), drctl-pw, app-pw"
    assert config.redact(text) == "dump failed: Access denied (using password ********), ********, ********"


def test_a_colliding_server_id_is_refused(servers, tmp_path):
    primary, replica = servers
    primary.create_user("akmadmin", "admin-pw", "ALL PRIVILEGES ON *.*")
    config = replica_config(tmp_path, primary, replica, server_id=primary.server_id)
    assert boot.run(config, log=lambda _m: None) == boot.EXIT_REFUSED
    assert "server_id is 1, the same as this replica's" in status_file(config)["problem"]


def test_an_unreachable_source_fails_after_the_wait_with_the_reason(servers, tmp_path):
    primary, replica = servers
    config = replica_config(tmp_path, primary, replica)  # the admin account does not exist
    config = dataclasses.replace(config, wait_for_source_seconds=1)
    assert boot.run(config, log=lambda _m: None) == boot.EXIT_FAILED
    doc = status_file(config)
    assert doc["state"] == "failed" and "not reachable as 'akmadmin' after 1 s" in doc["problem"]
    assert "admin-pw" not in json.dumps(doc)


def test_running_again_when_replicating_changes_nothing(servers, tmp_path):
    primary, replica = servers
    config = managed_like(tmp_path, primary, replica)
    assert boot.run(config, log=lambda _m: None) == boot.EXIT_OK
    messages = []
    assert boot.run(config, log=messages.append) == boot.EXIT_OK
    assert messages == ["already replicating; nothing to do"]


def test_self_managed_primary_then_replica_with_a_replication_only_account(servers, tmp_path):
    primary, replica = servers
    primary_config = boot.BootstrapConfig.from_dict({
        "role": "primary", "region": "us-east", "serverId": 1,
        "statusFile": str(tmp_path / "primary-status.json"), "socket": primary.socket,
        "admin": {"name": "drctl", "password": "drctl-pw", "host": "127.0.0.1"},
        "app": {"name": "woocommerce", "password": "app-pw", "host": "127.0.0.1"},
        "replication": {"name": "replicator", "password": "repl-pw", "host": "127.0.0.1"},
        "heartbeatEvent": True,
    })
    assert boot.run(primary_config, log=lambda _m: None) == boot.EXIT_OK
    # What `wp core install` on the primary region's first web node does: tables in the shop's schema.
    with (contextlib.closing(primary.connect("woocommerce", "app-pw", database="woocommerce")) as app,
          app.cursor() as cur):
        cur.execute("CREATE TABLE wp_options (option_id BIGINT PRIMARY KEY, option_value LONGTEXT)")
        cur.execute("CREATE INDEX autoload ON wp_options (option_id)")
        cur.execute("INSERT INTO wp_options VALUES (1, 'https://shop.example.com')")
        cur.execute("SELECT COUNT(*) FROM drctl.drctl_heartbeat")
    grants = [row[0] for row in primary.query("SHOW GRANTS FOR replicator@127.0.0.1")]
    assert r.global_privileges(grants) == {"REPLICATION SLAVE"}  # that and nothing else
    assert "REQUIRE SSL" in " ".join(grants)

    config = boot.BootstrapConfig.from_dict({
        **{"role": "replica", "region": "eu-west", "serverId": 2, "socket": replica.socket,
           "statusFile": str(tmp_path / "replica-status.json")},
        "admin": {"name": "drctl", "password": "drctl-pw", "host": "127.0.0.1"},
        "app": {"name": "woocommerce", "password": "app-pw", "host": "127.0.0.1"},
        "source": {"host": primary.host, "port": primary.port, "caFile": primary.tls.ca,
                   "admin": {"name": "drctl", "password": "drctl-pw"},
                   "replication": {"name": "replicator", "password": "repl-pw"},
                   "requiredPrivileges": ["REPLICATION SLAVE"]},
        "waitForSourceSeconds": 5,
    })
    assert boot.run(config, log=lambda _m: None) == boot.EXIT_OK, status_file(config)["problem"]
    with contextlib.closing(primary.connect()) as p, contextlib.closing(replica.connect()) as s:
        # Heartbeats arrive from the primary; none may be written here.
        wait_until(lambda: r.heartbeat_lag(s) is not None, what="a heartbeat reaching the replica")
        status = r.replica_status(s, MARIADB)
        assert status.source_user == "replicator" and status.replicating
        assert compare_gtids(r.executed_gtids(p, MARIADB), r.executed_gtids(s, MARIADB)).errant_count == 0
        assert r.enabled_events(s) == []  # the dumped heartbeat event is present but does not run here
        assert r.enabled_events(p) == [("drctl", "drctl_heartbeat_writer")]


class _AnsweringConnection:
    """A stand-in for a MySQL 8 source (no MySQL server package exists here): canned answers."""

    def __init__(self, answers):
        self.answers = answers

    def cursor(self):
        conn = self

        class Cursor:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def execute(self, sql, params=None):
                self.rows = conn.answers[sql]

            def fetchone(self):
                return self.rows[0]

            def fetchall(self):
                return self.rows

        return Cursor()


def test_a_mysql_source_without_gtids_is_refused(tmp_path):
    source = _AnsweringConnection({
        "SELECT VERSION()": [("8.0.40",)],
        "SELECT @@GLOBAL.gtid_mode": [("OFF_PERMISSIVE",)],
    })
    config = boot.BootstrapConfig.from_dict({
        "role": "replica", "region": "eu-west", "serverId": 2, "statusFile": str(tmp_path / "s.json"),
        "socket": "/nonexistent", "admin": {"name": "drctl", "password": "x"}, "app": {"name": "w", "password": "y"},
        "source": {"host": "db", "port": 3306, "caFile": "/ca.pem", "admin": {"name": "a", "password": "b"},
                   "replication": {"name": "a", "password": "b"}},
    })
    with pytest.raises(boot.Refused, match="gtid_mode=OFF_PERMISSIVE"):
        boot.check_source(config, source, r.Dialect.MYSQL_80)


def test_the_managed_primarys_setup_script_creates_the_schema_the_accounts_and_the_heartbeat_table():
    sql = boot.managed_primary_setup_sql(boot.Account("woocommerce", "pw", "%"), "woocommerce",
                                         boot.Account("drctl_heartbeat", "hb", "%"))
    assert sql.splitlines() == [
        "CREATE DATABASE IF NOT EXISTS `woocommerce` CHARACTER SET utf8mb4;",
        "CREATE USER IF NOT EXISTS 'woocommerce'@'%' IDENTIFIED BY 'pw' REQUIRE SSL;",
        "ALTER USER 'woocommerce'@'%' IDENTIFIED BY 'pw' REQUIRE SSL;",
        "GRANT ALL PRIVILEGES ON `woocommerce`.* TO 'woocommerce'@'%';",
        "GRANT SELECT ON `drctl`.* TO 'woocommerce'@'%';",
        "GRANT SELECT ON `drctl_local`.* TO 'woocommerce'@'%';",
        *(f"{ddl};" for ddl in r.HEARTBEAT_DDL),
        "CREATE USER IF NOT EXISTS 'drctl_heartbeat'@'%' IDENTIFIED BY 'hb' REQUIRE SSL;",
        "ALTER USER 'drctl_heartbeat'@'%' IDENTIFIED BY 'hb' REQUIRE SSL;",
        "GRANT SELECT, INSERT, UPDATE ON `drctl`.`drctl_heartbeat` TO 'drctl_heartbeat'@'%';",
    ]
