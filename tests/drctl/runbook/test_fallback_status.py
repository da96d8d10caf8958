"""`drctl status` on the fallback page: off when the stack has none, serving exactly when Cloudflare
sees every region's pool unhealthy, armed otherwise, and never a guess where nothing measures it."""

from types import SimpleNamespace

import pytest

from drctl.runbook.status import fallback_page_state
from drctl.stack.outputs import FallbackPageOut

PAGE = FallbackPageOut(script_name="woocommerce-dr-prod-fallback", route_pattern="shop.example.com/*")


def traffic(**health):
    return {"mode": "load-balancer", "serving": None,
            "regions": {region: {"region": region, "enabled": True, "healthy": h, "detail": ""}
                        for region, h in health.items()}}


def state(page, traffic_doc):
    return fallback_page_state(SimpleNamespace(fallback_page=page), traffic_doc)


def test_every_pool_unhealthy_means_shoppers_get_the_page():
    found = state(PAGE, traffic(**{"us-east": False, "eu-west": False}))
    assert found["state"] == "serving"
    assert (found["script"], found["route"]) == ("woocommerce-dr-prod-fallback", "shop.example.com/*")
    assert found["detail"] == "Cloudflare sees every region's pool unhealthy"


@pytest.mark.parametrize("health", [{"us-east": True, "eu-west": False}, {"us-east": False, "eu-west": True}])
def test_one_healthy_region_means_the_page_stands_aside(health):
    found = state(PAGE, traffic(**health))
    assert found["state"] == "armed"
    assert found["detail"] == f"steps aside: {next(r for r, h in health.items() if h)} healthy"


def test_without_pool_health_it_is_only_armed_and_says_how_to_look():
    found = state(PAGE, {"mode": "dns-failover", "serving": "us-east", "regions": {
        "us-east": {"healthy": None}, "eu-west": {"healthy": None}}})
    assert found["state"] == "armed"
    assert "curl -sI https://shop.example.com/" in found["detail"] and "x-woocommerce-dr-fallback" in found["detail"]


def test_unreadable_traffic_is_unknown_not_armed():
    found = state(PAGE, {"error": "CLOUDFLARE_API_TOKEN is not set"})
    assert found["state"] == "unknown" and "CLOUDFLARE_API_TOKEN" in found["detail"]


def test_a_stack_without_the_page_says_it_is_off():
    found = state(None, traffic(**{"us-east": False, "eu-west": False}))
    assert found["state"] == "off" and found["script"] is None
