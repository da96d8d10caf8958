"""The project's replication code against real MariaDB 10.11 servers (tests/support/mariadb.py): GTID
replication over verified TLS, fencing, the privilege check, heartbeat lag and GTID comparison."""

import contextlib
import time

import pymysql
import pytest

from drctl.mysql import replication as r
from drctl.mysql.gtid import compare_gtids
from tests.support.mariadb import replicate
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration
MARIADB = r.Dialect.MARIADB


def setup_shop(primary):
    primary.create_user("repl", "repl-pw", "REPLICATION SLAVE ON *.*")
    primary.execute("CREATE DATABASE shop", "CREATE TABLE shop.orders (id INT PRIMARY KEY, total INT)")


def wait_caught_up(primary, replica, timeout=10):
    with contextlib.closing(primary.connect()) as p, contextlib.closing(replica.connect()) as s:
        assert r.wait_for_gtids(s, MARIADB, r.executed_gtids(p, MARIADB), timeout)


def test_dialect_is_detected_from_the_server(mariadb_server):
    with contextlib.closing(mariadb_server.connect()) as conn:
        version = r.server_version(conn)
    assert version.dialect is MARIADB and version.numbers >= (10, 5, 0)


def test_a_row_written_on_the_primary_appears_on_the_replica(mariadb_pair):
    primary, replica = mariadb_pair
    setup_shop(primary)
    status = replicate(replica, primary)
    assert status.replicating and status.auto_position and status.ssl_verify_server_cert
    assert status.ssl_allowed == "Yes" and status.source_port == primary.port

    primary.execute("INSERT INTO shop.orders VALUES (1, 4200)")
    wait_caught_up(primary, replica)
    assert replica.query("SELECT id, total FROM shop.orders") == [(1, 4200)]


def test_a_fenced_replica_refuses_application_writes(mariadb_pair):
    primary, replica = mariadb_pair
    setup_shop(primary)
    # On the primary, so it replicates: an account made on the replica itself would be an errant
    # transaction, and strict GTID mode would stop replication at the next one from the primary.
    primary.create_user("app", "app-pw", "ALL PRIVILEGES ON shop.*")
    replicate(replica, primary)
    wait_caught_up(primary, replica)
    with contextlib.closing(replica.connect()) as conn:
        state = r.set_read_only(conn, MARIADB, True)
    assert state.fenced and state.super_read_only is None  # MariaDB 10.11 has no super_read_only

    with (contextlib.closing(replica.connect("app", "app-pw")) as app, app.cursor() as cur,
          pytest.raises(pymysql.err.OperationalError) as refused):
        cur.execute("INSERT INTO shop.orders VALUES (2, 1)")
    assert refused.value.args[0] == 1290  # ER_OPTION_PREVENTS_STATEMENT: --read-only

    primary.execute("INSERT INTO shop.orders VALUES (3, 300)")  # replication still applies
    wait_caught_up(primary, replica)
    assert replica.query("SELECT id FROM shop.orders") == [(3,)]


def test_opening_a_fenced_server_again(mariadb_server):
    with contextlib.closing(mariadb_server.connect()) as conn:
        r.set_read_only(conn, MARIADB, True)
        state = r.set_read_only(conn, MARIADB, False)
    assert not state.read_only and not state.fenced


def test_grants_check_names_the_missing_privilege(mariadb_server):
    mariadb_server.create_user("half", "half-pw", "REPLICATION SLAVE ON *.*")
    mariadb_server.create_user("full", "full-pw", "REPLICATION SLAVE, REPLICATION CLIENT ON *.*")
    with contextlib.closing(mariadb_server.connect("half", "half-pw")) as conn:
        assert r.check_grants(conn) == ("REPLICATION CLIENT",)
    with contextlib.closing(mariadb_server.connect("full", "full-pw")) as conn:
        assert r.check_grants(conn) == ()


def test_heartbeat_lag_is_measured_from_replicated_data(mariadb_pair):
    primary, replica = mariadb_pair
    setup_shop(primary)
    with contextlib.closing(primary.connect()) as conn:
        r.install_heartbeat(conn, with_event=True)  # the test servers run the event scheduler
    replicate(replica, primary)
    with contextlib.closing(replica.connect()) as conn:
        wait_until(lambda: r.heartbeat_lag(conn) is not None, what="a heartbeat reaching the replica")
        lag = r.heartbeat_lag(conn)
        assert 0 <= lag < 5  # a beat a second, replicated at once: seconds at most, even on a loaded machine
        r.stop_replica(conn, MARIADB)
        time.sleep(1.5)
        assert r.heartbeat_lag(conn) >= 1.5  # a stalled replica ages while the primary beats on


def test_no_heartbeat_table_reads_as_no_lag_known(mariadb_server):
    with contextlib.closing(mariadb_server.connect()) as conn:
        assert r.heartbeat_lag(conn) is None


def test_gtid_comparison_counts_what_a_stopped_replica_misses(mariadb_pair):
    primary, replica = mariadb_pair
    setup_shop(primary)
    replicate(replica, primary)
    wait_caught_up(primary, replica)
    with contextlib.closing(replica.connect()) as conn:
        r.stop_replica(conn, MARIADB)
    primary.execute("INSERT INTO shop.orders VALUES (1, 1)", "INSERT INTO shop.orders VALUES (2, 2)")
    with contextlib.closing(primary.connect()) as p, contextlib.closing(replica.connect()) as s:
        comparison = compare_gtids(r.executed_gtids(p, MARIADB), r.executed_gtids(s, MARIADB))
    assert comparison.missing_count == 2 and comparison.errant_count == 0


def test_status_of_a_server_that_is_no_replica_is_none(mariadb_server):
    with contextlib.closing(mariadb_server.connect()) as conn:
        assert r.replica_status(conn, MARIADB) is None


def test_a_failed_change_source_never_shows_the_password(mariadb_server):
    with contextlib.closing(mariadb_server.connect()) as conn:
        source = r.Source("127.0.0.1", 3306, "repl", "pw-that-must-not-leak", "/nonexistent/ca.pem",
                          heartbeat_period=99999999)  # beyond the server's limit: the statement fails
        with pytest.raises(r.ReplicationError) as failed:
            r.change_source(conn, MARIADB, source)
    assert "pw-that-must-not-leak" not in str(failed.value)
