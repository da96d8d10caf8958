"""The monthly cost of a stack, computed from what the program registers under the mock engine:
both stacks and the variants the suite holds (DNS failover, three regions, self-managed database,
the priced regions), so a resource kind the program starts creating without a price, and without
a reason to be free, fails here instead of being silently free."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from drctl.plan.cost import ACCOUNT, CLOUDFLARE, PRICED_TYPES, cost_of, stack_regions
from drctl.plan.cost_table import render_cost
from drctl.plan.engine import unwrap
from drctl.plan.prices import STALE_AFTER_DAYS, load_price_list
from tests.support import harness

PRICES = load_price_list()


def _self_managed(stack: str):
    return harness.stack_file(stack, database={**harness.raw_config(stack)["database"], "mode": "self-managed"})


def _in_priced_regions():
    """prod moved to the two regions Linode prices higher (Jakarta +20%, São Paulo +40%)."""
    regions = [{"region": "id-cgk", "webNodes": 2, "instanceType": "g6-standard-2"},
               {"region": "br-gru", "webNodes": 1, "instanceType": "g6-standard-2"}]
    return harness.stack_file("prod", regions=regions)


VARIANTS = {
    "prod": lambda: harness.stack_file("prod"),
    "dr-test": lambda: harness.stack_file("dr-test"),
    "prod, dns-failover": lambda: harness.dns_failover("prod"),
    "dr-test, dns-failover": lambda: harness.dns_failover("dr-test"),
    "prod, three regions": lambda: harness.three_regions("prod"),
    "prod, self-managed database": lambda: _self_managed("prod"),
    "prod, Jakarta and São Paulo": _in_priced_regions,
}
_runs: dict[str, Any] = {}


def planned(name: str):
    """The variant as `drctl plan` runs it (preview), once per test session."""
    if name not in _runs:
        _runs[name] = harness.run_ok(VARIANTS[name](), preview=True)
    return _runs[name]


def cost(name: str):
    run = planned(name)
    return cost_of(run.resources, PRICES, regions=stack_regions(run.stack.config))


def line(report, region: str, kind: str, detail: str = ""):
    found = [c for c in report.lines if (c.region, c.kind) == (region, kind) and detail in c.detail]
    assert len(found) == 1, [c.key for c in report.lines]
    return found[0]


# --- nothing the program creates goes unpriced ------------------------------------------------------


@pytest.mark.parametrize("name", VARIANTS)
def test_every_resource_kind_the_program_creates_is_priced_or_free_for_a_reason(name):
    report = cost(name)
    assert report.unpriced == {}, (
        f"{name}: no price and no reason to be free for {report.unpriced}: add them to drctl/plan/prices.json "
        "(a price rule in drctl/plan/cost.py, or an entry under `free` saying why)")
    custom = [r for r in planned(name).resources if r.custom]
    assert {r.type for r in custom} <= PRICED_TYPES | set(PRICES.free)


def test_a_kind_with_neither_price_nor_reason_is_reported_not_silently_free():
    volume = _Registration("linode:index/volume:Volume", {"region": "us-east", "size": 20})
    report = cost_of([volume], PRICES)
    assert report.unpriced == {"linode:index/volume:Volume": 1}
    assert [(c.region, c.kind, c.monthly) for c in report.lines] == [("us-east", "no price", None)]
    assert report.unknown == 1


def test_no_kind_is_both_priced_and_free():
    assert PRICED_TYPES & set(PRICES.free) == set()


# --- what the stacks cost ---------------------------------------------------------------------------


def test_prod_web_tier_and_nodebalancers_per_region():
    report = cost("prod")
    for region in ("us-east", "eu-west"):
        web = line(report, region, "web Linodes")
        assert (web.detail, web.count, web.each, web.monthly) == ("g6-standard-2 (Linode 4GB)", 2, 24, 48)
        assert line(report, region, "NodeBalancer").monthly == 10
    assert line(report, "eu-west", "MySQL replica Linode").monthly == 24


def test_prod_managed_cluster_is_priced_by_its_size():
    db = line(cost("prod"), "us-east", "managed MySQL cluster")
    assert db.detail == "g6-dedicated-2 (DBaaS Dedicated 4GB), 3 nodes"
    # the cluster's own price, not three times a node's (one node is 68, three are 206)
    assert (db.count, db.each, db.monthly, db.unconfirmed) == (1, 206, 206, True)


def test_a_cluster_size_without_a_figure_is_shown_unknown_not_guessed():
    plans = dict(PRICES.linode.managed_mysql)
    plans["g6-dedicated-2"] = plans["g6-dedicated-2"].model_copy(
        update={"cluster_monthly": {**plans["g6-dedicated-2"].cluster_monthly, 3: None}})
    prices = PRICES.model_copy(update={"linode": PRICES.linode.model_copy(update={"managed_mysql": plans})})
    run = planned("prod")
    report = cost_of(run.resources, prices, regions=stack_regions(run.stack.config))
    db = line(report, "us-east", "managed MySQL cluster")
    assert db.each is None and db.monthly is None
    assert report.unknown == 2 and report.total == Decimal("155.00")  # with Object Storage 5


def test_prod_total_adds_the_known_prices_and_counts_the_unknown():
    report = cost("prod")
    # 4 web 96 + 2 NodeBalancers 20 + 3-node cluster 206 + replica 24 + Load Balancing 5 + Workers Paid 5
    # + the Object Storage subscription 5 (media buckets; once per account)
    assert report.total == Decimal("361.00")
    assert report.unknown == 1  # the health-check regions
    assert report.by_region() == {"us-east": (Decimal(264), 0), "eu-west": (Decimal(82), 0),
                                  CLOUDFLARE: (Decimal(10), 1), ACCOUNT: (Decimal(5), 0)}


def test_dr_test_prices_every_linode_it_creates():
    report = cost("dr-test")
    assert line(report, "us-east", "web Linodes").detail == "g6-nanode-1 (Nanode 1GB)"
    assert line(report, "us-east", "MySQL primary Linode").monthly == 12
    assert line(report, "eu-west", "MySQL replica Linode").monthly == 12
    # dr-test promotes automatically: a guard Linode and its reserved IPv4 in each guard region.
    for region in ("us-central", "eu-central"):
        assert line(report, region, "guard Linode").detail == "g6-nanode-1 (Nanode 1GB)"
        assert line(report, region, "guard reserved IPv4").monthly == 2
    # 2 x 5 + 2 x 10 + 2 x 12 + guards 2 x (5 + 2) + Load Balancing 5 + Workers 5 + Object Storage 5
    assert report.total == Decimal("83.00")
    assert report.unknown == 1


def test_a_stack_promoted_by_hand_has_no_guards_to_pay_for():
    report = cost("prod")
    assert not [x for x in report.lines if x.kind.startswith("guard")]


def test_regions_priced_higher_cost_more():
    report = cost("prod, Jakarta and São Paulo")
    assert line(report, "id-cgk", "web Linodes").each == Decimal("28.8")
    assert line(report, "br-gru", "web Linodes").each == Decimal("33.6")
    assert line(report, "id-cgk", "NodeBalancer").each == 12
    assert line(report, "br-gru", "NodeBalancer").each == 14
    assert report.regions[:2] == ["id-cgk", "br-gru"]  # the stack's failover order


def test_cloudflare_load_balancing_is_priced_once_with_its_origins_and_check_regions():
    report = cost("prod, three regions")
    plan = line(report, CLOUDFLARE, "Load Balancing plan")
    assert (plan.count, plan.monthly, plan.unconfirmed) == (1, 5, True)
    origins = line(report, CLOUDFLARE, "Load Balancing origins")
    assert origins.count == 1 and origins.monthly == 5  # 3 origins, 2 included
    assert origins.note == "3 in 3 pools"
    regions = line(report, CLOUDFLARE, "Load Balancing check regions")
    assert regions.note == "ENAM, SEAS, WEU" and regions.monthly is None


def test_dns_failover_has_no_load_balancing_to_pay_for():
    report = cost("prod, dns-failover")
    assert [c.kind for c in report.lines if c.region == CLOUDFLARE] == ["Workers plan"]
    assert "authoritative DNS queries" not in " ".join(u.what for u in report.usage)


@pytest.mark.parametrize("name", ["prod", "prod, dns-failover"])
def test_the_fallback_pages_worker_costs_the_workers_paid_plan_once(name):
    workers = line(cost(name), CLOUDFLARE, "Workers plan")
    assert (workers.count, workers.monthly, workers.detail) == (1, Decimal(5), "Workers Paid, for 1 script")
    assert workers.unconfirmed  # no Cloudflare pricing page among the stored sources
    usage = [u for u in cost(name).usage if "Worker" in u.what]
    assert len(usage) == 1 and "10 million a month" in usage[0].included and "100,000 a day" in usage[0].included


def test_a_price_list_without_a_workers_price_costs_the_worker_as_unknown():
    older = PRICES.model_copy(update={"cloudflare": PRICES.cloudflare.model_copy(update={"workers": None})})
    report = cost_of(planned("prod").resources, older)
    assert line(report, CLOUDFLARE, "Workers plan").monthly is None


def test_self_managed_database_is_two_linodes_instead_of_a_cluster():
    report = cost("prod, self-managed database")
    assert not [c for c in report.lines if c.kind == "managed MySQL cluster"]
    primary = line(report, "us-east", "MySQL primary Linode")
    assert (primary.detail, primary.monthly) == ("g6-dedicated-2 (Dedicated 4GB)", 36)  # database.type
    assert line(report, "eu-west", "MySQL replica Linode").monthly == 24  # database.replicaType


def test_usage_priced_charges_are_listed_with_their_allowance_not_summed():
    report = cost("prod")
    transfer = next(u for u in report.usage if "network transfer" in u.what)
    assert transfer.included.startswith("20,000 GB a month")  # 5 Linodes of 4,000 GB
    assert transfer.rate == "rate not in the price list" and transfer.unconfirmed
    dns = next(u for u in report.usage if "DNS queries" in u.what)
    assert dns.included == "the first 500,000 a month"


def test_object_storage_is_one_subscription_for_the_account_whatever_the_buckets():
    buckets = [_Registration("linode:index/objectStorageBucket:ObjectStorageBucket", {"region": r, "label": f"b{i}"})
               for i, r in enumerate(["us-east", "eu-west", "eu-west"])]
    report = cost_of(buckets, PRICES)
    (subscription,) = report.lines
    assert (subscription.region, subscription.count, subscription.monthly) == (ACCOUNT, 1, 5)
    assert subscription.detail == "subscription, 3 buckets"
    # what the subscription includes is said once, with the usage beyond it
    beyond = next(u for u in report.usage if u.what == "Object Storage beyond the included storage")
    assert beyond.included == "250 GB"


def test_backups_are_priced_when_a_linode_turns_them_on():
    web = _Registration("linode:index/instance:Instance", {"region": "us-east", "type": "g6-standard-2",
                                                           "tags": ["role:web"], "backupsEnabled": True})
    report = cost_of([web], PRICES)
    assert [(c.kind, c.monthly) for c in report.lines] == [("web Linodes", 24), ("web Linodes: backups", 5)]


def test_a_linode_type_missing_from_the_list_is_unknown_not_zero():
    web = _Registration("linode:index/instance:Instance", {"region": "us-east", "type": "g6-standard-8",
                                                           "tags": ["role:web"]})
    (only,) = cost_of([web], PRICES).lines
    assert only.detail == "g6-standard-8 (not in the price list)" and only.monthly is None


@pytest.mark.parametrize(("days", "warned"), [(0, False), (STALE_AFTER_DAYS, False), (STALE_AFTER_DAYS + 1, True)])
def test_the_cost_table_says_how_old_the_list_is_and_warns_past_90_days(days, warned):
    prices = load_price_list()
    on = prices.date + datetime.timedelta(days=days)
    text = "\n".join(render_cost(cost_of([], prices), prices, on))
    assert f"price list of {prices.date.isoformat()} ({days} day" in text
    assert ("Warning: the price list is" in text) is warned
    if warned:
        assert f"{days} days old (more than {STALE_AFTER_DAYS})" in text and "drctl prices --refresh" in text


@dataclass
class _Registration:
    """The parts of drctl.plan.engine.Registration the cost reads."""

    type: str
    inputs: dict[str, Any] = field(default_factory=dict)
    custom: bool = True

    def plain(self, key: str) -> Any:
        return unwrap(self.inputs.get(key))
