"""Cloudflare failover traffic: pools follow the regions' computed NodeBalancer IPs in config order."""

import pytest

from tests.support import harness

MONITOR = "cloudflare:index/loadBalancerMonitor:LoadBalancerMonitor"
POOL = "cloudflare:index/loadBalancerPool:LoadBalancerPool"
LB = "cloudflare:index/loadBalancer:LoadBalancer"
DNS = "cloudflare:index/dnsRecord:DnsRecord"
NB = "linode:index/nodeBalancer:NodeBalancer"
POLICY = "cloudflare:index/notificationPolicy:NotificationPolicy"


def nodebalancer(run, region):
    [nb] = [r for r in run.of_type(NB) if r.inputs["region"] == region]
    return nb


def pools_in_order(run):
    """Pools by their region's place in the failover order (registration order is not creation order)."""
    order = {f"{run.stack.stack}-{r.region}": i for i, r in enumerate(harness.validate(run).regions)}
    return sorted(run.of_type(POOL), key=lambda p: order[p.inputs["name"]])


@pytest.fixture(scope="module")
def dns_run():
    return harness.run_ok(harness.dns_failover("prod"))


@pytest.mark.parametrize("fixture", ["prod_run", "dr_test_run", "three_region_run"])
def test_each_pool_origin_is_its_regions_computed_nodebalancer_ip(request, fixture):
    run = request.getfixturevalue(fixture)
    regions = [r.region for r in harness.validate(run).regions]
    pools = pools_in_order(run)
    assert [p.inputs["name"] for p in pools] == [f"{run.stack.stack}-{r}" for r in regions]
    for pool, region in zip(pools, regions, strict=True):
        [origin] = pool.inputs["origins"]
        assert origin["address"] == nodebalancer(run, region).outputs["ipv4"]
        assert origin["enabled"] is True and "port" not in origin
        assert pool.inputs["minimumOrigins"] == 1


def test_default_pools_follow_region_order_and_fallback_is_last(three_region_run):
    pools = pools_in_order(three_region_run)
    [lb] = three_region_run.of_type(LB)
    ids = [p.id for p in pools]
    assert lb.inputs["defaultPools"] == ids
    assert lb.inputs["fallbackPool"] == ids[-1]


def test_load_balancer_fails_over_instead_of_steering(prod_run):
    [lb] = prod_run.of_type(LB)
    assert lb.inputs["name"] == "shop.example.com"
    assert lb.inputs["steeringPolicy"] == "off"
    assert lb.inputs["proxied"] is True
    assert lb.inputs["sessionAffinity"] == "none"
    assert lb.inputs["adaptiveRouting"] == {"failoverAcrossPools": True}
    assert lb.inputs["zoneId"] == "0" * 32


def test_monitor_follows_config(prod_run):
    [monitor] = prod_run.of_type(MONITOR)
    i = monitor.inputs
    assert (i["type"], i["port"], i["path"], i["expectedCodes"]) == ("https", 443, "/healthz", "200")
    assert (i["interval"], i["timeout"], i["retries"], i["consecutiveDown"], i["consecutiveUp"]) == (60, 5, 2, 2, 2)
    assert i["header"] == {"Host": ["shop.example.com"]}
    assert i["followRedirects"] is False
    assert "woocommerce-dr" in i["description"] and "prod" in i["description"]
    for pool in prod_run.of_type(POOL):
        assert pool.inputs["monitor"] == monitor.id


def test_changed_monitor_settings_flow_through():
    traffic = harness.raw_config("prod")["traffic"]
    traffic["monitor"] = {**traffic["monitor"], "interval": 15, "consecutiveDown": 3, "path": "/up"}
    run = harness.run_ok(harness.stack_file("prod", traffic=traffic))
    [monitor] = run.of_type(MONITOR)
    assert (monitor.inputs["interval"], monitor.inputs["consecutiveDown"], monitor.inputs["path"]) == (15, 3, "/up")


def test_check_regions_default_to_the_nearest_cloudflare_region(prod_run):
    assert [p.inputs["checkRegions"] for p in pools_in_order(prod_run)] == [["ENAM"], ["WEU"]]


def test_configured_check_regions_apply_to_every_pool():
    traffic = {**harness.raw_config("prod")["traffic"], "checkRegions": ["WNAM", "ENAM"]}
    run = harness.run_ok(harness.stack_file("prod", traffic=traffic))
    assert {tuple(p.inputs["checkRegions"]) for p in run.of_type(POOL)} == {("WNAM", "ENAM")}


def shop_records(run):
    """The records of the shop's own name (the database servers' names live under db.<domain>)."""
    return [r for r in run.of_type(DNS) if r.inputs["name"] == harness.validate(run).domain]


@pytest.mark.parametrize("fixture", ["prod_run", "dr_test_run", "three_region_run"])
def test_no_dns_record_shares_the_load_balancers_name(request, fixture):
    # A load balancer hostname shadows a record of the same name. The only records beside it are
    # the database servers' names, DNS-only (tests/program/test_database_names.py).
    run = request.getfixturevalue(fixture)
    [lb] = run.of_type(LB)
    records = run.of_type(DNS)
    assert records and not [r for r in records if r.inputs["name"] == lb.inputs["name"]]
    domain = harness.validate(run).domain
    assert all(r.inputs["name"].endswith(f".db.{domain}") and r.inputs["proxied"] is False for r in records)


def test_dns_failover_points_a_and_aaaa_at_the_primary_nodebalancer(dns_run):
    records = {r.inputs["type"]: r for r in shop_records(dns_run)}
    primary = nodebalancer(dns_run, "us-east")
    assert set(records) == {"A", "AAAA"}
    assert records["A"].inputs["content"] == primary.outputs["ipv4"]
    assert records["AAAA"].inputs["content"] == primary.outputs["ipv6"]
    for record in records.values():
        assert record.inputs["name"] == "shop.example.com"
        assert record.inputs["proxied"] is True and record.inputs["ttl"] == 1
        assert "drctl" in record.inputs["comment"]
        assert record.ignore_changes == ("content",)


def test_dns_failover_creates_no_load_balancer(dns_run):
    assert dns_run.of_type(LB) == [] and dns_run.of_type(POOL) == [] and dns_run.of_type(MONITOR) == []


def test_no_alert_policy_unless_configured(prod_run):
    assert prod_run.of_type(POLICY) == []


def test_alerts_go_to_email_and_webhook_for_every_pool():
    traffic = {**harness.raw_config("prod")["traffic"],
               "alerts": {"email": "oncall@example.com", "webhookUrl": "https://hooks.example.com/lb"}}
    run = harness.run_ok(harness.stack_file("prod", traffic=traffic))
    [policy] = run.of_type(POLICY)
    [hook] = run.of_type("cloudflare:index/notificationPolicyWebhooks:NotificationPolicyWebhooks")
    assert policy.inputs["alertType"] == "load_balancing_health_alert"
    assert policy.inputs["mechanisms"] == {"emails": [{"id": "oncall@example.com"}],
                                           "webhooks": [{"id": hook.id}]}
    assert policy.inputs["filters"]["poolIds"] == [p.id for p in pools_in_order(run)]
    assert hook.inputs["url"] == "https://hooks.example.com/lb"
