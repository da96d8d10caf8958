"""`drctl prices`: the list shown with its age, what no source confirms and every source; and
`--refresh` against a local fake of Linode's public price endpoints, through the official SDK,
as an operator runs it (DRCTL_LINODE_BASE_URL, no token)."""

from __future__ import annotations

import datetime
import json
import shutil
import socket

import pytest

from drctl.cli import main
from drctl.plan import prices as price_module
from drctl.plan.cost import cost_of, stack_regions
from drctl.plan.prices import PRICE_LIST, load_price_list
from tests.support import harness
from tests.support.fake_linode import FakeLinode, Fault

DAY = datetime.date(2026, 12, 3)


@pytest.fixture(autouse=True)
def fixed_day(monkeypatch):
    monkeypatch.setattr(price_module, "today", lambda: DAY)


@pytest.fixture
def linode(monkeypatch):
    with FakeLinode() as fake:
        monkeypatch.setenv("DRCTL_LINODE_BASE_URL", fake.base_url)
        monkeypatch.setenv("LINODE_TOKEN", fake.token)  # set, as on an operator's laptop: it must not be sent
        yield fake


@pytest.fixture
def copy(tmp_path):
    path = tmp_path / "prices.json"
    shutil.copy(PRICE_LIST, path)
    return path


def prices(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["prices", *argv])
    out, err = capsys.readouterr()
    return code, out, err


# --- showing the list -------------------------------------------------------------------------------


def test_shows_the_lists_age_what_no_source_confirms_and_every_source(capsys):
    code, out, _ = prices(capsys)
    listed = load_price_list()
    assert code == 0
    assert out.startswith(f"Price list drctl/plan/prices.json: price list of {listed.date.isoformat()} "
                          f"({(DAY - listed.date).days} days old)")
    assert "    linode.managed_mysql.g6-dedicated-2 (3 nodes): 206.00: the newest stored response" in out
    assert "    cloudflare.load_balancing.check_regions.per_region: no figure: " in out
    assert "    cloudflare.load_balancing.base: 5.00: " in out
    assert "    linode:index/firewall:Firewall: Cloud Firewall is available at no additional charge" in out
    for source in listed.sources.values():
        assert source.found in out


def test_the_json_has_the_whole_list_and_its_age(capsys):
    _, out, _ = prices(capsys, "-o", "json")
    doc = json.loads(out)
    assert doc["ageDays"] == (DAY - load_price_list().date).days and doc["stale"] is False
    assert doc["prices"]["linode"]["instance_types"]["g6-standard-2"]["monthly"] == 24.0
    assert {"where": "cloudflare.load_balancing.check_regions.per_region", "figure": "no figure"}.items() <= \
        next(u for u in doc["unconfirmed"] if "check_regions" in u["where"]).items()


def test_warns_when_the_list_is_stale(capsys, monkeypatch):
    monkeypatch.setattr(price_module, "today", lambda: load_price_list().date + datetime.timedelta(days=91))
    _, out, _ = prices(capsys)
    assert "Warning: the price list is 91 days old (more than 90)" in out


def test_dry_run_without_refresh_is_a_usage_error(capsys):
    code, out, err = prices(capsys, "--dry-run")
    assert code == 2 and out == ""
    assert err.startswith("drctl prices: --dry-run: only with --refresh")


# --- refreshing from the API --------------------------------------------------------------------------


def test_refresh_rewrites_the_linode_part_from_the_public_endpoints(capsys, linode, copy):
    code, _, err = prices(capsys, "--refresh", "--file", str(copy))
    assert code == 0, err
    new, old = load_price_list(copy), load_price_list()
    standard = new.linode.instance_types["g6-standard-2"]
    assert (standard.monthly, standard.region_monthly) == (26.0, {"id-cgk": 31.2, "br-gru": 36.4})
    assert standard.transfer_gb == 4000 and standard.backups.monthly == 5.0
    assert new.linode.nodebalancer.in_region("br-gru") == 14
    assert new.linode.managed_mysql["g6-dedicated-2"].cluster_monthly == {1: 68.0, 2: 136.0, 3: 204.0}
    assert new.linode.checked == DAY
    assert new.sources["linode-api-linode-types"].url == f"{linode.base_url}/linode/types"
    assert new.cloudflare == old.cloudflare  # no price API: kept as it was
    assert new.linode.object_storage.included == old.linode.object_storage.included


def test_refresh_says_what_changed(capsys, linode, copy):
    _, out, _ = prices(capsys, "--refresh", "--file", str(copy))
    assert f"Read Linode's prices from {linode.base_url} (6 Linode types, 2 managed MySQL plans); wrote" in out
    assert "    changed: Linode g6-standard-2: 24.00 -> 26.00" in out
    assert "    changed: managed MySQL g6-dedicated-2 x 3: 206.00 -> 204.00" in out
    assert "    new: Linode g1-gpu-rtx6000-1, Linode g6-standard-4" in out
    assert "The Cloudflare part is unchanged" in out


def test_a_plan_at_0_is_a_price_the_api_does_not_publish_not_a_free_plan(capsys, linode, copy):
    prices(capsys, "--refresh", "--file", str(copy))
    gpu = load_price_list(copy).linode.instance_types["g1-gpu-rtx6000-1"]
    assert gpu.monthly is None and gpu.unconfirmed == "the API gave no monthly price"


def test_refresh_sends_no_token(capsys, linode, copy):
    prices(capsys, "--refresh", "--file", str(copy))
    price_requests = [h for m, p, h in linode.headers_seen if p.endswith("/types")]
    assert len(price_requests) == 4
    assert all("Authorization" not in h for h in price_requests)


def test_refresh_reads_every_page(capsys, linode, copy):
    linode.price_page_size = 2
    prices(capsys, "--refresh", "--file", str(copy))
    assert len(load_price_list(copy).linode.instance_types) == 6
    assert sum(1 for _, path, _ in linode.requests if path == "/linode/types") == 3


def test_sources_nothing_names_any_more_are_dropped_the_rest_kept(capsys, linode, copy):
    prices(capsys, "--refresh", "--file", str(copy))
    sources = load_price_list(copy).sources
    assert "linode-guide-knative" not in sources  # its g6-standard-2 figure now comes from the API
    assert "linode-docs-object-storage" in sources  # the usage-priced overage still cites it
    assert "cloudflare-usage-billing" in sources


def test_a_refreshed_list_prices_the_managed_cluster(capsys, linode, copy):
    prices(capsys, "--refresh", "--file", str(copy))
    run = harness.run_ok("prod", preview=True)
    report = cost_of(run.resources, load_price_list(copy), regions=stack_regions(run.stack.config))
    db = next(c for c in report.lines if c.kind == "managed MySQL cluster")
    assert db.monthly == 204
    assert report.unknown == 1  # only Cloudflare's check regions are left without a figure


def test_dry_run_writes_nothing(capsys, linode, copy):
    before = copy.read_text()
    code, out, _ = prices(capsys, "--refresh", "--dry-run", "--file", str(copy))
    assert code == 0 and "would write" in out
    assert copy.read_text() == before


def test_an_api_error_changes_nothing_and_says_which_endpoint(capsys, linode, copy):
    before = copy.read_text()
    linode.faults.append(Fault("GET", "/databases/types", 503))
    code, out, err = prices(capsys, "--refresh", "--file", str(copy))
    assert code == 1 and out == ""
    assert f"GET {linode.base_url}/databases/types answered 503: injected fault" in err
    assert err.rstrip().endswith("the price list was not changed")
    assert copy.read_text() == before


def test_an_unreachable_api_is_one_clear_line(capsys, monkeypatch, copy):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        # Bound and not listening: connections are refused for as long as this test holds it.
        monkeypatch.setenv("DRCTL_LINODE_BASE_URL", f"http://127.0.0.1:{port}/v4")
        code, _, err = prices(capsys, "--refresh", "--file", str(copy))
    assert code == 1
    assert f"cannot reach http://127.0.0.1:{port}/v4 (ConnectionError)" in err
    assert "Traceback" not in err
