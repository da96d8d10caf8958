"""/healthz's verdict live, through the web-stack tier (tests/support/web_stack.py): the primary
region's node against the primary, the DR region's node against its replica. The whole decision
table is tested case by case in test_healthz_verdict.py; here the states a real server reaches."""

import contextlib

import pytest

from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def executed(server, statement: str, undo: str):
    server.execute(statement)
    try:
        yield
    finally:
        server.execute(undo)


def verdict(stack) -> tuple[int, str]:
    response = stack.get("/healthz")
    return response.status, response.json()["reason"]


def test_a_writable_primary_answers_200(web_primary):
    assert verdict(web_primary) == (200, "primary-writable")


def test_a_read_only_primary_answers_503_so_its_pool_stops_taking_orders(web_primary, web_stack_databases):
    with executed(web_stack_databases.primary, "SET GLOBAL read_only = 1", "SET GLOBAL read_only = 0"):
        assert verdict(web_primary) == (503, "read-only")
    assert verdict(web_primary) == (200, "primary-writable")


def test_a_replicating_replica_within_the_rpo_answers_200(web_replica):
    wait_until(lambda: verdict(web_replica) == (200, "replica-current"), what="the replica current")
    assert web_replica.get("/healthz").json()["replica_lag_seconds"] < 15


def test_a_replica_whose_sql_thread_stopped_answers_503(web_replica, web_stack_databases):
    replica = web_stack_databases.replica
    with executed(replica, "STOP SLAVE SQL_THREAD", "START SLAVE SQL_THREAD"):
        assert verdict(web_replica) == (503, "replica-sql-stopped")
    wait_until(lambda: verdict(web_replica) == (200, "replica-current"), what="the replica current again")


def test_a_replica_cut_off_from_its_source_answers_200_once_all_it_received_is_applied(
        web_replica, web_stack_databases):
    # The IO thread stopped is what a replica sees of a dead primary: no lag can be measured any
    # more, and the DR pool must stay healthy for Cloudflare to fail over to it.
    replica = web_stack_databases.replica
    with executed(replica, "STOP SLAVE IO_THREAD", "START SLAVE IO_THREAD"):
        wait_until(lambda: verdict(web_replica) == (200, "replica-source-gone-all-applied"),
                   what="the replica judged on what it received")
