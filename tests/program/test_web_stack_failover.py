"""The DR region's /healthz when the primary region dies, through the web-stack tier
(tests/support/web_stack.py): the primary's database is killed, its region's node answers 503, and
the DR region's node stays 200 however old the heartbeat grows — Cloudflare must have a healthy
pool to fail over to (docs/health.md)."""

import pytest

from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

RPO = 15  # dr-test's objectives.rpoSeconds


def test_a_dead_primary_leaves_the_dr_region_healthy_once_it_applied_all_it_received(
        web_primary, web_replica, web_stack_databases):
    wait_until(lambda: web_replica.get("/healthz").json()["reason"] == "replica-current", what="the replica current")
    web_stack_databases.primary.kill()

    assert web_primary.get("/healthz").status == 503
    seen = []

    def healthy_with_a_heartbeat_older_than_the_rpo() -> bool:
        response = web_replica.get("/healthz")
        body = response.json()
        seen.append((response.status, body["reason"]))
        return body["replica_lag_seconds"] > RPO and response.status == 200

    wait_until(healthy_with_a_heartbeat_older_than_the_rpo, timeout=RPO + 45,
               what="the DR region healthy with a heartbeat older than the RPO")
    # Never unhealthy on the way: current until the replica noticed, then judged on what it received.
    assert set(seen) <= {(200, "replica-current"), (200, "replica-source-gone-all-applied")}, seen
    assert seen[-1] == (200, "replica-source-gone-all-applied")
