"""`drctl drill` itself, with its real order path (straight into the databases of the stack
outputs), run against the rehearsal topology's stand-ins for Cloudflare and the Linode API."""

from __future__ import annotations

import json

import pytest

from drctl.cli import build_parser
from drctl.drill.command import run
from drctl.rehearsal.command import local_runbook
from drctl.rehearsal.topology import LocalTopology, RehearsalSpec
from tests.support.binaries import need
from tests.support.runbook_support import Cloud, Shop

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def topology(mariadb_template):
    need("mariadbd", "mariadb-install-db", "mariadb", "mariadb-dump", "haproxy", "openssl")
    with LocalTopology(RehearsalSpec.from_stack("dr-test"), template=mariadb_template) as topo:
        yield topo


def drill(topology, capsys, *flags):
    args = build_parser().parse_args(["drill", "--outputs", "unused.json", *flags])
    code = run(args, runbook_factory=lambda _args, say: local_runbook(topology, say),
               origin_port=topology.regions["us-east"].nb_port)
    return code, capsys.readouterr()


def test_a_drill_needs_yes_or_dry_run(topology, capsys):
    code, out = drill(topology, capsys)
    assert code == 2 and "pass --yes to act, or --dry-run" in out.err


def test_dry_run_prints_the_plan_and_the_health_and_changes_nothing(topology, capsys):
    code, out = drill(topology, capsys, "--dry-run", "--fault", "firewall-blackhole")
    assert code == 0
    assert "preflight now: healthy" in out.out
    assert "2. after 30 s, fault firewall-blackhole in us-east" in out.out
    assert "4. drctl promote --region eu-west" in out.out
    assert topology.traffic.state().serving == "us-east"
    assert not topology.regions["us-east"].database.query("SELECT COUNT(*) FROM drctl_drill.orders")[0][0]


def test_a_drill_writes_through_the_databases_and_reports_pass(topology, capsys, tmp_path):
    code, out = drill(topology, capsys, "--yes", "--fault", "pool-disable", "--settle", "0.5", "--poll", "0.05",
                      "--writer-rate", "100", "--report-dir", str(tmp_path), "-o", "json")
    doc = json.loads(out.out)
    assert code == 0, json.dumps(doc, indent=1)
    assert doc["outcome"] == "passed" and doc["measured"]["ordersLost"] == 0
    assert doc["measured"]["firstWriteNewPrimary"]["server"] == "eu-west database"
    assert doc["restored"] == ["pool us-east enabled again"]
    assert (tmp_path / "report.md").read_text().startswith("# DR drill of `dr-test-rehearsal`: PASSED")
    assert topology.traffic.state().serving == "us-east"


def test_preflight_refuses_a_stack_whose_replica_is_not_replicating(topology, capsys, tmp_path):
    topology.regions["eu-west"].database.execute("STOP SLAVE")
    try:
        code, _ = drill(topology, capsys, "--yes", "--report-dir", str(tmp_path))
    finally:
        topology.regions["eu-west"].database.execute("START SLAVE")
    assert code == 1
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["outcome"] == "aborted" and doc["aborted"].startswith("preflight refused: ")
    assert "eu-west: database IO thread No" in doc["aborted"]
    assert doc["restored"] == [] and [s["step"] for s in doc["steps"]] == ["preflight"]
    assert topology.traffic.state().serving == "us-east"


def test_a_drill_through_the_cloudflare_load_balancer_and_the_linode_api(mariadb_pair, tmp_path, capsys):
    """The real backends (Cloudflare SDK, linode_api4) against the API fakes, the runbook's own test
    shop for databases: the drill takes the pool out, promotes, puts the pool back, fails back."""
    regions = ("us-east", "eu-west")
    with Cloud(regions) as cloud:
        shop = Shop.build(list(mariadb_pair), tmp_path, cloud.linode)
        rb = shop.runbook(cloud.load_balancer())
        args = build_parser().parse_args([
            "drill", "--outputs", str(shop.outputs_file), "--yes", "--fault", "pool-disable", "--settle", "0.5",
            "--poll", "0.05", "--writer-rate", "50", "--report-dir", str(tmp_path / "report"), "-o", "json"])
        code = run(args, runbook_factory=lambda _args, _say: rb, origin_port=None)
        doc = json.loads(capsys.readouterr().out)
        assert code == 0, json.dumps(doc, indent=1)
        assert doc["measured"]["ordersLost"] == 0
        assert doc["restored"] == ["pool us-east enabled again"]
        assert cloud.serving() == "us-east"
        pools = {p["id"]: all(o["enabled"] for o in p["origins"]) for p in cloud.cloudflare.pools.values()}
        assert pools == {"pool-us-east": True, "pool-eu-west": True}
        assert {seq for (seq,) in shop["us-east"].query("SELECT seq FROM drctl_drill.orders")} >= {1, 2, 3}
