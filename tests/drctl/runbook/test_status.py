"""drctl status: the table, the JSON document and the exit code, for a healthy stack and for each
way it can be degraded; components that do not answer are reported, never a traceback."""

import contextlib
import json
import time

import pytest

from drctl import cli
from drctl.mysql import replication as r
from tests.support.runbook_support import REGIONS, Shop, wait_caught_up

pytestmark = pytest.mark.integration
MARIADB = r.Dialect.MARIADB


@pytest.fixture
def shop(mariadb_trio, tmp_path, cloud, monkeypatch):
    for key, value in {**cloud.env(), "DRCTL_STATE_DIR": str(tmp_path / "state")}.items():
        monkeypatch.setenv(key, value)
    built = Shop.build(list(mariadb_trio), tmp_path, cloud.linode)
    wait_caught_up(built["us-east"], built["eu-west"], built["ap-south"])
    return built


def status(shop, capsys, *extra):
    code = cli.main(["status", "--outputs", str(shop.outputs_file), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def status_json(shop, capsys):
    code, out, _ = status(shop, capsys, "-o", "json")
    return code, json.loads(out)


def test_a_healthy_stack_prints_the_table_and_exits_0(shop, capsys):
    code, out, err = status(shop, capsys)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[2].split() == ["REGION", "TRAFFIC", "NODEBALANCER", "DATABASE", "READ-ONLY", "IO/SQL", "LAG",
                                "MISSING", "ERRANT"]
    assert lines[3].split()[:7] == ["us-east", "serving,", "healthy", "4/4", "UP", "primary", "off"]
    assert lines[4].split()[:9] == ["eu-west", "standby,", "healthy", "4/4", "UP", "replica", "<-", "us-east", "on"]
    assert lines[4].split()[9] == "Yes/Yes" and lines[4].split()[-1] == "0"
    assert lines[-1].startswith("HEALTHY: primary us-east, traffic us-east, 2 replica(s) replicating, max lag ")
    assert err == ""


def test_the_json_document_carries_every_region(shop, capsys):
    code, doc = status_json(shop, capsys)
    assert code == 0
    assert doc["primary"] == "us-east" and doc["traffic"]["serving"] == "us-east"
    assert [g["region"] for g in doc["regions"]] == list(REGIONS)
    replica = doc["regions"][1]
    assert replica["database"]["replication"] == {"source": "us-east", "ioThread": "Yes", "sqlThread": "Yes",
                                                  "problems": []}
    assert replica["database"]["errant"] == {"count": 0, "gtids": ""}
    assert replica["nodeBalancer"]["up"] == replica["nodeBalancer"]["total"] == 4
    assert replica["traffic"] == {"serving": False, "enabled": True, "healthy": True,
                                  "detail": "pool eu-west: healthy from 2 data centre(s)"}
    assert doc["verdict"]["healthy"] is True
    assert "drctl-admin-pw" not in json.dumps(doc)


def test_a_stopped_replica_and_a_dead_one_make_it_degraded(shop, capsys):
    with contextlib.closing(shop["eu-west"].connect()) as conn:
        r.stop_replica(conn, MARIADB)
    shop["ap-south"].kill()
    time.sleep(1.5)
    code, doc = status_json(shop, capsys)
    assert code == 1
    problems = doc["verdict"]["problems"]
    assert "eu-west: database IO thread No" in problems and "eu-west: database SQL thread No" in problems
    dead = [p for p in problems if p.startswith("ap-south: database unreachable: database in ap-south")]
    assert dead and "Can't connect" in dead[0]
    assert doc["regions"][2]["database"]["role"] == "unreachable"
    assert doc["verdict"]["summary"] == f"DEGRADED: {len(problems)} problem(s)"


def test_lag_beyond_the_objective_is_a_problem(shop, capsys, tmp_path):
    doc = json.loads(shop.outputs_file.read_text())
    doc["drctl"]["objectives"]["rpoSeconds"] = 1
    shop.outputs_file.write_text(json.dumps(doc))
    with contextlib.closing(shop["eu-west"].connect()) as conn:
        r.stop_io_thread(conn, MARIADB)
    time.sleep(2.2)
    code, doc = status_json(shop, capsys)
    assert code == 1
    assert any(p.startswith("eu-west: database lag ") and "beyond the recovery point objective (1 s)" in p
               for p in doc["verdict"]["problems"])
    assert doc["regions"][1]["database"]["missing"]["count"] >= 2


def test_traffic_away_from_the_primary_and_a_down_node_are_problems(shop, capsys, cloud):
    cloud.cloudflare.set_pool_health("pool-us-east", False)
    node = next(iter(cloud.linode.nodebalancers[101][1010]["nodes"].values()))
    node["status"] = "DOWN"
    code, out, _ = status(shop, capsys)
    assert code == 1
    assert "  - traffic goes to eu-west but the primary database is in us-east" in out
    assert "  - us-east: Cloudflare sees its pool unhealthy (pool us-east: unhealthy from Ashburn, VA, Frankfurt, DE)" in out
    assert "  - eu-west: NodeBalancer nodes not UP: web-0:80 DOWN" in out


def test_a_replica_written_to_directly_shows_its_errant_transactions(shop, capsys):
    shop["ap-south"].execute("INSERT INTO shop.orders VALUES (666, 1)")  # root bypasses read_only on MariaDB
    code, doc = status_json(shop, capsys)
    assert code == 1
    errant = doc["regions"][2]["database"]["errant"]
    assert errant["count"] == 1 and errant["gtids"].startswith("0-3-")
    assert any("has 1 errant transaction(s) the primary lacks" in p for p in doc["verdict"]["problems"])


def test_two_writable_servers_are_a_split_brain(shop, capsys):
    with contextlib.closing(shop["eu-west"].connect()) as conn:
        r.promote_to_primary(conn, MARIADB, heartbeat_event=False)  # by hand, nobody fenced us-east
    code, doc = status_json(shop, capsys)
    assert code == 1 and doc["primary"] is None
    assert "split brain: us-east, eu-west all take writes" in doc["verdict"]["problems"]


def test_missing_api_tokens_are_reported_not_raised(shop, capsys, monkeypatch):
    monkeypatch.delenv("LINODE_TOKEN")
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN")
    code, out, err = status(shop, capsys)
    assert code == 1 and "Traceback" not in out + err
    assert "  - us-east: NodeBalancer 100: LINODE_TOKEN is not set: export a Linode personal access token" in out
    assert "  - traffic: CLOUDFLARE_API_TOKEN is not set" in out
    assert "us-east   unknown" in out


def test_no_stack_is_a_usage_error(capsys):
    assert cli.main(["status"]) == 2
    assert capsys.readouterr().err == "drctl status: give -s/--stack STACK or --outputs FILE\n"


def with_fallback_page(shop):
    doc = json.loads(shop.outputs_file.read_text())
    doc["drctl"]["fallbackPage"] = {"scriptName": "woocommerce-dr-prod-fallback", "routePattern": "shop.example.com/*"}
    shop.outputs_file.write_text(json.dumps(doc))


def test_the_fallback_page_is_armed_while_a_region_is_healthy(shop, capsys):
    with_fallback_page(shop)
    code, out, _ = status(shop, capsys)
    assert code == 0, out
    assert ("fallback page: armed (Worker woocommerce-dr-prod-fallback on shop.example.com/*): steps aside: "
            "ap-south, eu-west, us-east healthy") in out


def test_every_pool_down_means_the_fallback_page_is_serving(shop, capsys, cloud):
    with_fallback_page(shop)
    for region in REGIONS:
        cloud.cloudflare.set_pool_health(f"pool-{region}", False)
    code, doc = status_json(shop, capsys)
    assert code == 1
    assert doc["fallbackPage"]["state"] == "serving"
    assert "shoppers get the maintenance page: Cloudflare sees every region's pool unhealthy" in doc["verdict"]["problems"]


def test_a_stack_without_the_page_shows_it_off(shop, capsys):
    code, doc = status_json(shop, capsys)
    assert code == 0 and doc["fallbackPage"]["state"] == "off"
