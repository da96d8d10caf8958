"""The maintenance page's Worker: created in both traffic modes on the shop's whole hostname, its
script carrying the page text escaped and the health path let through, no secret anywhere near it,
and its name and route in the drctl output. The script's behaviour runs under Node in tests/program/test_fallback_worker.py."""

from functools import cache

import pytest

from components.config import ConfigError, validate_stack_config
from components.fallback_page import COMPATIBILITY_DATE, MAIN_MODULE
from drctl.plan.engine import Secret, unwrap
from drctl.stack.outputs import parse_outputs
from tests.support import harness

SCRIPT = "cloudflare:index/workersScript:WorkersScript"
ROUTE = "cloudflare:index/workersRoute:WorkersRoute"
COMPONENT = "woocommerce-dr:index:FallbackPage"


@cache
def dns_run(stack: str = "prod"):
    return harness.run_ok(harness.dns_failover(stack))


@cache
def run_with_page(**page):
    traffic = {**harness.raw_config("prod")["traffic"], "fallbackPage": page}
    return harness.run_ok(harness.stack_file("prod", traffic=traffic))


@pytest.fixture(params=["prod", "dr-test", "prod-dns-failover", "dr-test-dns-failover"])
def run(request):
    if request.param.endswith("-dns-failover"):
        return dns_run(request.param.removesuffix("-dns-failover"))
    return request.getfixturevalue({"prod": "prod_run", "dr-test": "dr_test_run"}[request.param])


def worker(run):
    [script] = run.of_type(SCRIPT)
    [route] = run.of_type(ROUTE)
    return script, route


def test_every_traffic_mode_gets_one_worker_on_the_shops_whole_hostname(run):
    script, route = worker(run)
    config = harness.validate(run)
    assert route.inputs["pattern"] == f"{config.domain}/*"
    assert route.inputs["zoneId"] == config.traffic.zone_id
    assert route.inputs["script"] == script.outputs["scriptName"]
    assert script.inputs["scriptName"] == f"woocommerce-dr-{run.stack.stack}-fallback"
    assert script.inputs["accountId"] == config.traffic.account_id
    assert (script.inputs["mainModule"], script.inputs["compatibilityDate"]) == (MAIN_MODULE, COMPATIBILITY_DATE)


def test_the_worker_is_a_child_of_the_traffic_component(prod_run):
    [component] = prod_run.of_type(COMPONENT)
    assert component.parent.endswith("woocommerce-dr:index:Traffic::traffic")
    script, route = worker(prod_run)
    assert script.parent == component.urn and route.parent == component.urn


def test_the_script_lets_the_monitors_health_path_through(run):
    script, _ = worker(run)
    content = script.inputs["content"]
    assert 'const HEALTH_PATH = "/healthz";' in content
    assert "if (isHealthPath(url.pathname)) {\n      return fetch(request);" in content


def test_a_changed_monitor_path_is_the_path_the_script_lets_through():
    traffic = harness.raw_config("prod")["traffic"]
    traffic = {**traffic, "monitor": {**traffic["monitor"], "path": "/up"}}
    run = harness.run_ok(harness.stack_file("prod", traffic=traffic))
    script, _ = worker(run)
    assert 'const HEALTH_PATH = "/up";' in script.inputs["content"]


def test_the_script_carries_the_configured_text_escaped_and_timings():
    run = run_with_page(title="Acme </script> Shop", message="Back at 10 & <b>soon</b>",
                        retryAfterSeconds=900, originTimeoutSeconds=20)
    content = worker(run)[0].inputs["content"]
    assert "Acme &lt;/script&gt; Shop" in content and "</script>" not in content
    assert "Back at 10 &amp; &lt;b&gt;soon&lt;/b&gt;" in content
    assert "const RETRY_AFTER_SECONDS = 900;" in content
    assert "const ORIGIN_TIMEOUT_MS = 20000;" in content


def test_the_default_page_text_is_used_when_none_is_configured(prod_run):
    content = worker(prod_run)[0].inputs["content"]
    assert "We&#x27;ll be right back" in content
    assert "const RETRY_AFTER_SECONDS = 300;" in content and "const ORIGIN_TIMEOUT_MS = 90000;" in content


def test_no_secret_goes_into_the_worker(run):
    for resource in worker(run):
        assert not [k for k, v in resource.inputs.items() if isinstance(v, Secret)]
        assert "bindings" not in resource.inputs  # no token, no password, no environment


def test_disabled_it_creates_nothing_and_the_output_says_so():
    run = run_with_page(enabled=False)
    assert not run.of_type(SCRIPT) and not run.of_type(ROUTE) and not run.of_type(COMPONENT)
    assert parse_outputs(unwrap(run.outputs["drctl"]), "prod").fallback_page is None


def test_the_drctl_output_names_the_worker_and_its_route(run):
    out = parse_outputs(unwrap(run.outputs["drctl"]), run.stack.stack)
    script, route = worker(run)
    assert out.fallback_page is not None
    assert out.fallback_page.script_name == script.outputs["scriptName"]
    assert out.fallback_page.route_pattern == route.outputs["pattern"]


@pytest.mark.parametrize("page, line", [
    ({"title": ""}, "woocommerce-dr:traffic.fallbackPage.title: must not be empty (got ''; "),
    ({"title": "two\nlines"}, "woocommerce-dr:traffic.fallbackPage.title: malformed value"),
    ({"message": "bell\x07"}, "woocommerce-dr:traffic.fallbackPage.message: malformed value"),
    ({"retryAfterSeconds": 5}, "woocommerce-dr:traffic.fallbackPage.retryAfterSeconds: out of range (got 5; "
                               "allowed: 30 to 86400)"),
    ({"originTimeoutSeconds": "30"}, "woocommerce-dr:traffic.fallbackPage.originTimeoutSeconds: not a whole number"),
    ({"titel": "Shop"}, "woocommerce-dr:traffic.fallbackPage.titel: unknown key; did you mean 'title'?"),
])
def test_bad_page_settings_are_refused_with_their_key(page, line):
    traffic = {**harness.raw_config("prod")["traffic"], "fallbackPage": page}
    with pytest.raises(ConfigError) as err:
        validate_stack_config(harness.raw_config("prod", traffic=traffic))
    assert line in str(err.value)
