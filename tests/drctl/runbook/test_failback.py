"""drctl failback against real MariaDB servers: the old primary rejoins as a replica of the current
one, errant transactions are exported and refused (or discarded by rebuilding it), then a planned
switchover returns the primary role and the traffic."""

import contextlib
import dataclasses
import json
import stat
from pathlib import Path

import pytest

from drctl.mysql import replication as r
from drctl.runbook.context import Refused
from drctl.runbook.failback import FailbackOptions, failback, reseed
from drctl.runbook.promote import PromoteOptions, promote
from drctl.runbook.status import collect
from tests.support.cutting_proxy import CuttingProxy
from tests.support.runbook_support import ADMIN_PASSWORD, Shop, app_insert, order_ids, wait_caught_up
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration
MARIADB = r.Dialect.MARIADB


def binlog_position(server) -> str:
    """What the server has written to its binary log (MariaDB's gtid_binlog_pos)."""
    return server.query("SELECT @@GLOBAL.gtid_binlog_pos")[0][0]


def lose_the_primary(shop, cloud, lost_orders=()):
    """The link to us-east breaks, us-east commits `lost_orders`, dies; eu-west is promoted; us-east
    comes back (writable, as a restarted primary does, its heartbeat event running)."""
    primary, replica = shop["us-east"], shop["eu-west"]
    for i in range(1, 4):
        app_insert(primary, i)
    wait_caught_up(primary, replica)
    if lost_orders:
        with contextlib.closing(replica.connect()) as conn:
            r.stop_io_thread(conn, MARIADB)
        for i in lost_orders:
            app_insert(primary, i)
    primary.kill()
    rb = shop.runbook(cloud.load_balancer())
    result = promote(rb, PromoteOptions(region="eu-west", yes=True, accept_data_loss=True))
    assert result.outcome == "done", result.message
    app_insert(replica, 100)  # the shop goes on in eu-west
    primary.start()
    written = binlog_position(primary)
    # Its heartbeat event writes at least once: transactions eu-west never sees.
    wait_until(lambda: binlog_position(primary) != written, what="a heartbeat on the restarted us-east")
    return rb


def test_failback_refuses_errant_orders_and_the_export_names_each_one(mariadb_pair, tmp_path, cloud):
    shop = Shop.build(list(mariadb_pair), tmp_path, cloud.linode)
    rb = lose_the_primary(shop, cloud, lost_orders=(4, 5))

    result = failback(rb, FailbackOptions(to="us-east", yes=True))

    assert result.outcome == "refused"
    assert "us-east has" in result.message and "(2 changed shop data)" in result.message
    assert "--discard-errant" in result.message
    export = json.loads(Path(result.export).read_text())
    # customers' rows: the operator's eyes only
    assert stat.S_IMODE(Path(result.export).stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(result.export).parent.stat().st_mode) == 0o700
    data = [t for t in export["transactions"] if not t["drctlOnly"]]
    assert [t["statements"] for t in data] == [["INSERT INTO shop.orders (id, total) VALUES (4, 40)"],
                                               ["INSERT INTO shop.orders (id, total) VALUES (5, 50)"]]
    assert all(t["tables"] == ["shop.orders"] for t in data)
    assert "### INSERT INTO `shop`.`orders`" in data[0]["rows"] and "###   @1=4" in data[0]["rows"]
    assert export["complete"] and export["dataTransactions"] == 2
    assert ADMIN_PASSWORD not in Path(result.export).read_text()
    assert {t["gtid"] for t in data} <= set(_expand(export["errantGtids"]))
    with contextlib.closing(shop["us-east"].connect()) as conn:  # fenced while it waits for a decision
        assert r.read_only_state(conn, MARIADB).read_only
    assert cloud.serving() == "eu-west"


def test_discarding_errant_orders_rebuilds_the_old_primary_and_brings_it_back(mariadb_pair, tmp_path, cloud):
    shop = Shop.build(list(mariadb_pair), tmp_path, cloud.linode)
    rb = lose_the_primary(shop, cloud, lost_orders=(4, 5))
    assert failback(rb, FailbackOptions(to="us-east", yes=True)).outcome == "refused"

    result = failback(rb, FailbackOptions(to="us-east", yes=True, discard_errant=True))

    assert result.outcome == "done", result.message
    assert order_ids(shop["us-east"]) == {1, 2, 3, 100}  # the errant orders are gone, eu-west's are there
    app_insert(shop["us-east"], 200)
    wait_caught_up(shop["us-east"], shop["eu-west"])
    assert order_ids(shop["eu-west"]) == {1, 2, 3, 100, 200}
    assert cloud.serving() == "us-east"
    assert cloud.linode.firewalls[301]["inbound"]  # the network fence was lifted
    status = collect(shop.runbook(cloud.load_balancer()))
    assert status["verdict"] == {"healthy": True, "problems": [], "summary": status["verdict"]["summary"]}
    assert status["primary"] == "us-east"


def test_a_rebuild_whose_source_drops_the_dump_connection_copies_again(mariadb_pair, tmp_path, cloud):
    # Once seen under load: the current primary closed the dump's connection just after its
    # snapshot began (TLS EOF, then "Server has gone away"), and the rebuild failed.
    shop = Shop.build(list(mariadb_pair), tmp_path, cloud.linode)
    rb = lose_the_primary(shop, cloud, lost_orders=(4, 5))
    source = rb.server("eu-west")

    # Each copy: drctl reads the source (connection 1, 3), then the dump client reads it (2, 4).
    with CuttingProxy(source.host, source.port, cut_connections=(2,)) as link:
        reseed(rb, rb.server("us-east"), dataclasses.replace(source, port=link.port))

    assert link.cut == 1 and link.accepted == 4
    assert any("closed the copy's connection" in line and "copying again" in line for line in shop.said)
    assert order_ids(shop["us-east"]) == {1, 2, 3, 100}


def test_a_rebuild_copies_at_most_twice_and_then_says_why_it_failed(mariadb_pair, tmp_path, cloud):
    shop = Shop.build(list(mariadb_pair), tmp_path, cloud.linode)
    rb = lose_the_primary(shop, cloud, lost_orders=(4, 5))
    source = rb.server("eu-west")

    with CuttingProxy(source.host, source.port, cut_connections=(2, 4, 6)) as link, \
            pytest.raises(r.ReplicationError, match=r"mariadb-dump failed \(exit 2\): .*(gone away|unexpected eof|Lost connection)"):
        reseed(rb, rb.server("us-east"), dataclasses.replace(source, port=link.port))

    assert link.cut == 2 and link.accepted == 4
    assert sum("copying again" in line for line in shop.said) == 1


def test_heartbeats_written_by_a_restarted_primary_are_dropped_without_asking(mariadb_pair, tmp_path, cloud):
    shop = Shop.build(list(mariadb_pair), tmp_path, cloud.linode)
    rb = lose_the_primary(shop, cloud)  # it lost no order, but wrote heartbeats after coming back

    result = failback(rb, FailbackOptions(to="us-east", yes=True))

    assert result.outcome == "done", result.message
    export = json.loads(Path(result.export).read_text())
    assert export["count"] >= 1 and export["dataTransactions"] == 0
    assert any("only touched drctl's heartbeat" in line for line in shop.said)
    assert order_ids(shop["us-east"]) == {1, 2, 3, 100}
    assert collect(shop.runbook(cloud.load_balancer()))["verdict"]["healthy"]


def test_failback_after_a_planned_promote_needs_no_rejoin(mariadb_trio, tmp_path, cloud):
    shop = Shop.build(list(mariadb_trio), tmp_path, cloud.linode)
    rb = shop.runbook(cloud.load_balancer())
    promote(rb, PromoteOptions(region="eu-west", yes=True))
    app_insert(shop["eu-west"], 1)

    result = failback(rb, FailbackOptions(to="us-east", yes=True))

    assert result.outcome == "done", result.message
    steps = {s["name"]: s["status"] for s in result.steps}
    assert "lift-network-fence" not in steps and steps["rejoin"] == "done"
    assert order_ids(shop["us-east"]) == {1}
    wait_caught_up(shop["us-east"], shop["eu-west"], shop["ap-south"])
    assert cloud.serving() == "us-east"
    assert collect(rb)["verdict"]["healthy"]


def test_failback_dry_run_warns_of_errant_transactions_and_changes_nothing(mariadb_pair, tmp_path, cloud):
    shop = Shop.build(list(mariadb_pair), tmp_path, cloud.linode)
    rb = lose_the_primary(shop, cloud, lost_orders=(4,))
    cloud.linode.firewalls[301] = {"inbound": [], "inbound_policy": "DROP"}  # as the fence left it
    writes = len(cloud.linode.writes())

    result = failback(rb, FailbackOptions(to="us-east", dry_run=True))

    assert result.outcome == "dry-run"
    assert [s["name"] for s in result.steps][:4] == ["lift-network-fence", "fence-rejoining", "check-errant", "rejoin"]
    assert "failback will export them and refuse unless --discard-errant" in result.message
    assert len(cloud.linode.writes()) == writes and cloud.serving() == "eu-west"


def test_failback_dry_run_says_when_it_could_not_check_for_errant_transactions(mariadb_pair, tmp_path, cloud):
    shop = Shop.build(list(mariadb_pair), tmp_path, cloud.linode)
    rb = lose_the_primary(shop, cloud, lost_orders=(4,))
    shop["us-east"].kill()  # down again: nothing can be read from it

    result = failback(rb, FailbackOptions(to="us-east", dry_run=True))

    assert result.outcome == "dry-run"
    [warning] = [w for w in result.warnings if "errant" in w]
    assert warning.startswith("could not check us-east for errant transactions (")
    assert warning.endswith("the real run checks again and refuses if it finds any")
    assert ADMIN_PASSWORD not in warning


def _expand(ranges: str) -> list[str]:
    found = []
    for part in ranges.split(","):
        first, _, last = part.partition("..")
        d, s, a = first.split("-")
        b = last.split("-")[2] if last else a
        found += [f"{d}-{s}-{n}" for n in range(int(a), int(b) + 1)]
    return found


def test_a_server_whose_account_may_not_follow_a_source_is_refused_up_front(mariadb_pair, tmp_path, cloud):
    shop = Shop.build(list(mariadb_pair), tmp_path, cloud.linode)
    rb = shop.runbook(cloud.load_balancer())
    promote(rb, PromoteOptions(region="eu-west", yes=True))
    with contextlib.closing(shop["us-east"].connect()) as conn, r.without_binlog(conn), conn.cursor() as cur:
        cur.execute("REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'drctl'@'127.0.0.1'")
        # Reads everything, changes no replication: like a managed database's admin account.
        cur.execute("GRANT SELECT, RELOAD, PROCESS, BINLOG MONITOR, SLAVE MONITOR ON *.* TO 'drctl'@'127.0.0.1'")

    with pytest.raises(Refused, match=r"'drctl' on the server in us-east may not make it a replica \(it needs "
                                      r"REPLICATION_SLAVE_ADMIN or SUPER\)"):
        failback(rb, FailbackOptions(to="us-east", yes=True))
    assert cloud.serving() == "eu-west"
