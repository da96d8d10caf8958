"""`drctl drill --fault all-regions-down` on a stack reached the real way: the Linode API
(linode_api4) and Cloudflare's load balancer (the cloudflare SDK) against the API fakes, real MariaDB
for the databases, and shoppers' requests through the real fallback Worker under Node, whose origin
answers from the fakes' state (tests/support/cloudflare_edge.py)."""

from __future__ import annotations

import json

import pytest

from drctl.cli import build_parser
from drctl.drill.command import run
from drctl.drill.drill import DrillOptions
from drctl.drill.faults import ALL_REGIONS_DOWN, FaultInjector
from drctl.drill.outage import OutageDrill
from drctl.drill.runbook_adapter import RunbookAdapter
from tests.support.binaries import need
from tests.support.cloudflare_edge import PAGE_TITLE, CloudflareNetwork, Edge
from tests.support.runbook_support import LB, Cloud, Shop

pytestmark = pytest.mark.integration
REGIONS = ("us-east", "eu-west")


@pytest.fixture
def stack(mariadb_pair, tmp_path):
    """(cloud, shop, runbook, edge): a two-region stack with its fallback page, every node accepting."""
    need("node")
    with Cloud(REGIONS) as cloud:
        shop = Shop.build(list(mariadb_pair), tmp_path, cloud.linode)
        doc = json.loads(shop.outputs_file.read_text())
        doc["drctl"]["fallbackPage"] = {"scriptName": "woocommerce-dr-runbook-test-fallback",
                                        "routePattern": "shop.example.com/*"}
        shop.outputs_file.write_text(json.dumps(doc))
        network = CloudflareNetwork(cloud.cloudflare, cloud.linode, LB, {"us-east": 100, "eu-west": 101})
        with network, Edge(tmp_path / "edge", network.port) as edge:
            yield cloud, shop, shop.runbook(cloud.load_balancer()), edge


def node_modes(cloud) -> dict[int, list[str]]:
    return {nb: [n["mode"] for config in configs.values() for n in config["nodes"].values()]
            for nb, configs in cloud.linode.nodebalancers.items()}


def drill(stack, capsys, *flags):
    _cloud, _shop, rb, edge = stack
    args = build_parser().parse_args(["drill", "--outputs", "unused.json", "--fault", ALL_REGIONS_DOWN, *flags])
    code = run(args, runbook_factory=lambda _args, _say: rb, origin_port=None, edge_factory=edge.probe)
    return code, capsys.readouterr()


def test_every_region_down_serves_the_page_and_the_shop_returns_with_the_primary(stack, capsys, tmp_path):
    cloud = stack[0]
    code, out = drill(stack, capsys, "--yes", "--settle", "0.3", "--poll", "0.05", "--report-dir",
                      str(tmp_path / "report"), "-o", "json")
    doc = json.loads(out.out)
    assert code == 0, json.dumps(doc, indent=1)
    m = doc["measured"]
    page = m["fallbackPage"]
    assert (page["status"], page["retryAfter"], page["cacheControl"]) == (503, "300", "no-store")
    assert (page["marker"], page["title"]) == ("origin answered 521", PAGE_TITLE)
    assert m["outagePageAnswers"] == m["outageRequests"] >= 2
    assert m["healthPath"]["status"] == 521 and not m["healthPath"]["answeredByThePage"]
    assert m["recoverySeconds"] >= 0 and m["firstShopAnswer"]["title"] == "Shop (us-east)"
    assert {c["check"]: c["passed"] for c in doc["checks"]} == {
        "fallback page served while every region was down": True, "the page asks clients to come back later": True,
        "health path never answered by the page": True, "recovery within objective": True,
        "traffic back in the primary region": True, "replication healthy after the outage": True}
    # us-east came back on its own first, then eu-west: every node that was rejected accepts again
    assert doc["restored"] == [f"{region}: node web-{n} back to accept" for region in REGIONS for n in (1, 0, 1, 0)]
    assert node_modes(cloud) == {100: ["accept"] * 4, 101: ["accept"] * 4}
    rejected = [body for method, _path, body in cloud.linode.writes() if body == {"mode": "reject"}]
    assert len(rejected) == 8  # both ports' configs of both NodeBalancers, each node once
    assert cloud.serving() == "us-east"
    md = (tmp_path / "report" / "report.md").read_text()
    assert md.startswith("# DR drill of `runbook-test`: PASSED") and "\n## The fallback page\n" in md


def test_the_real_fault_goes_through_the_linode_api_and_touches_no_pool_or_database(stack, capsys, tmp_path):
    cloud, shop = stack[0], stack[1]
    code, _ = drill(stack, capsys, "--yes", "--settle", "0", "--poll", "0.05", "--report-dir", str(tmp_path))
    assert code == 0
    paths = {path for _method, path, _body in cloud.linode.writes()}
    assert paths and all(path.startswith(("/nodebalancers/100/configs/", "/nodebalancers/101/configs/"))
                         for path in paths)
    assert not [r for r in cloud.cloudflare.writes()]  # no pool, no load balancer change: the LB sees for itself
    assert shop["us-east"].query("SELECT @@global.read_only")[0][0] == 0  # the primary stayed the primary


def test_dry_run_shows_the_plan_and_changes_nothing(stack, capsys):
    cloud = stack[0]
    code, out = drill(stack, capsys, "--dry-run")
    assert code == 0, out.out + out.err
    assert "preflight now: healthy" in out.out
    assert "2. fault all-regions-down: every node of every NodeBalancer (us-east, eu-west) set to reject" in out.out
    assert "5. put us-east's nodes back" in out.out
    assert cloud.linode.writes() == [] and cloud.cloudflare.writes() == []


def test_a_stack_without_a_fallback_page_is_refused_before_any_change(stack, capsys, tmp_path):
    cloud, shop = stack[0], stack[1]
    doc = json.loads(shop.outputs_file.read_text())
    doc["drctl"]["fallbackPage"] = None
    shop.outputs_file.write_text(json.dumps(doc))
    rb = shop.runbook(cloud.load_balancer())
    args = build_parser().parse_args(["drill", "--outputs", "unused.json", "--fault", ALL_REGIONS_DOWN, "--yes",
                                      "--force", "--report-dir", str(tmp_path)])
    code = run(args, runbook_factory=lambda _a, _s: rb, origin_port=None, edge_factory=stack[3].probe)
    report = json.loads((tmp_path / "report.json").read_text())
    assert code == 1 and report["outcome"] == "aborted"
    assert "the stack has no fallback page" in report["aborted"] and "--force" not in report["aborted"]
    assert cloud.linode.writes() == []


def test_ctrl_c_during_the_outage_brings_every_region_back(stack):
    cloud, _shop, rb, edge = stack

    def interrupt():
        raise KeyboardInterrupt

    runbook, traffic = RunbookAdapter(rb), rb.traffic()
    faults = FaultInjector(rb.outputs, traffic, rb.try_linode()[0])
    report = OutageDrill(rb.outputs, runbook, traffic, faults, edge.probe(),
                         DrillOptions(fault=ALL_REGIONS_DOWN, settle_seconds=0.2, poll_seconds=0.05),
                         say=lambda _: None, hooks={"during-outage": interrupt}).run()
    assert report.aborted == "interrupted (Ctrl-C)"
    assert len(report.restored) == 8 and not faults.pending
    assert node_modes(cloud) == {100: ["accept"] * 4, 101: ["accept"] * 4}
    checks = {c.name: c.passed for c in report.checks}
    assert checks == {"traffic back in the primary region": True, "replication healthy after the outage": True}
    assert edge.probe()("/").is_shop


def test_a_region_that_cannot_be_restored_stops_the_drill_and_stays_remembered(stack):
    cloud, _shop, rb, edge = stack
    runbook, traffic = RunbookAdapter(rb), rb.traffic()
    faults = FaultInjector(rb.outputs, traffic, rb.try_linode()[0])

    def break_the_api():
        from tests.support.fake_linode import Fault
        cloud.linode.faults.append(Fault("PUT", r"/nodebalancers/100/configs/\d+/nodes/\d+", 500, times=50))

    report = OutageDrill(rb.outputs, runbook, traffic, faults, edge.probe(),
                         DrillOptions(fault=ALL_REGIONS_DOWN, settle_seconds=0, poll_seconds=0.05),
                         say=lambda _: None, hooks={"during-outage": break_the_api}).run()
    assert report.outcome == "aborted" and report.aborted.startswith("us-east could not be brought back")
    assert any(line.startswith("NOT restored: us-east: node") for line in report.restored)
    assert faults.pending and all(line.startswith("us-east: ") for line in faults.pending)
    assert node_modes(cloud)[101] == ["accept"] * 4  # eu-west came back all the same
    # said at once, without waiting for a region that cannot come back
    assert {c.name: c.passed for c in report.checks}["traffic back in the primary region"] is False
    cloud.linode.faults.clear()
    assert len(faults.restore()) == 4 and node_modes(cloud)[100] == ["accept"] * 4
