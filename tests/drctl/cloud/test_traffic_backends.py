"""The traffic backends against the Cloudflare fake, through the official SDK: where traffic goes,
moving it, taking a region out, and the error policy (429 waits, 403 names the permission)."""

import cloudflare
import pytest

from drctl.cloud.cloudflare import CloudflareApi
from drctl.cloud.traffic import CloudflareDns, TrafficBackend, TrafficError, wait_until_serving
from drctl.stack.outputs import parse_outputs
from tests.support.runbook_support import LB, REGIONS, ZONE, outputs_doc, paper_servers


def test_both_cloudflare_backends_implement_the_protocol(cloud):
    assert isinstance(cloud.load_balancer(), TrafficBackend)
    assert isinstance(CloudflareDns(failover=None), TrafficBackend)


def test_state_reads_pool_order_health_and_the_serving_region(cloud):
    cloud.cloudflare.set_pool_health("pool-us-east", False)
    state = cloud.load_balancer().state()
    assert state.order == REGIONS
    assert state.serving == "eu-west" == cloud.serving()
    assert state.regions["us-east"].healthy is False
    assert state.regions["eu-west"].healthy is True and state.regions["eu-west"].enabled is True
    assert "unhealthy from Ashburn, VA, Frankfurt, DE" in state.regions["us-east"].detail


def test_route_to_puts_the_region_first_and_makes_it_the_fallback(cloud):
    change = cloud.load_balancer().route_to("eu-west")
    lb = cloud.cloudflare.load_balancers[LB]
    assert lb["default_pools"] == ["pool-eu-west", "pool-us-east", "pool-ap-south"]
    assert lb["fallback_pool"] == "pool-eu-west"
    assert change.changed and cloud.serving() == "eu-west"
    assert cloud.load_balancer().route_to("eu-west").changed is False  # idempotent: no second write
    assert len(cloud.cloudflare.log(method="PATCH")) == 1


def test_route_to_enables_a_region_taken_out_before(cloud):
    backend = cloud.load_balancer()
    backend.set_region_enabled("eu-west", False)
    backend.route_to("eu-west")
    assert all(o["enabled"] for o in cloud.cloudflare.pools["pool-eu-west"]["origins"])
    assert backend.state().serving == "eu-west"


def test_disabling_a_region_disables_its_origins_and_keeps_their_other_fields(cloud):
    change = cloud.load_balancer().set_region_enabled("us-east", False)
    origin = cloud.cloudflare.pools["pool-us-east"]["origins"][0]
    assert change.changed and origin["enabled"] is False and origin["weight"] == 1
    assert cloud.serving() == "eu-west"
    assert cloud.load_balancer().state().regions["us-east"].enabled is False


def test_rate_limit_is_waited_out_then_the_switch_succeeds(cloud):
    cloud.cloudflare.fail(429, path="/load_balancers/lb$", method="PATCH", retry_after="1")
    slept = []
    backend = cloud.load_balancer()
    backend.api.sleep = slept.append
    backend.route_to("ap-south")
    assert slept == [1.0]
    assert cloud.serving() == "ap-south"


def test_forbidden_pool_write_names_the_account_permission(cloud):
    cloud.cloudflare.fail(403, method="PATCH", path="/pools/")
    with pytest.raises(TrafficError) as err:
        cloud.load_balancer().set_region_enabled("us-east", False)
    assert str(err.value) == (
        'disable the origins of pool pool-us-east: the API token lacks the account "Load Balancing: Monitors and '
        'Pools Write" permission for this account (403, Cloudflare error 10000); edit the token in the Cloudflare '
        "dashboard to add it"
    )
    assert cloud.cloudflare.token not in str(err.value)


def test_waiting_for_traffic_names_what_is_in_the_way(cloud):
    cloud.cloudflare.set_pool_health("pool-eu-west", False)
    backend = cloud.load_balancer()
    backend.route_to("eu-west")
    with pytest.raises(TrafficError, match=r"traffic still goes to us-east after 0 s, not eu-west \(eu-west: pool "
                                           r"eu-west: unhealthy from"):
        wait_until_serving(backend, "eu-west", timeout=0, sleep=lambda _: None)


def test_dns_records_move_to_the_region_in_one_batch(tmp_path, cloud):
    record = cloud.cloudflare.add_record(ZONE, "A", "shop.example.com", "192.0.2.10", proxied=True)
    doc = outputs_doc(paper_servers(tmp_path), traffic_mode="dns-failover")
    doc["drctl"]["cloudflare"]["dnsRecordIds"] = [record["id"]]
    api = CloudflareApi(cloudflare.Cloudflare(api_token=cloud.cloudflare.token, base_url=cloud.cloudflare.base_url,
                                              max_retries=0))
    backend = CloudflareDns.from_outputs(parse_outputs(doc, "test"), api)
    assert backend.state().serving == "us-east"
    with pytest.raises(TrafficError, match="no per-region switch and the records point at us-east"):
        backend.set_region_enabled("us-east", False)

    assert backend.route_to("eu-west").changed
    assert cloud.cloudflare.record(record["id"])["content"] == "192.0.2.11"
    assert backend.state().serving == "eu-west"
    assert backend.set_region_enabled("us-east", False).changed is False  # the records no longer point there
