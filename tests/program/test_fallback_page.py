"""The maintenance page's Worker: created in both traffic modes on the shop's whole hostname, its
script carrying the page text escaped and the health path let through, no secret anywhere near it,
and its name and route in the drctl output. The script's behaviour runs under Node in tests/program/test_fallback_worker.py."""

import json
from functools import cache

import pytest

from components import fallback_html
from components.config import ConfigError, validate_stack_config
from components.fallback_page import COMPATIBILITY_DATE, MAIN_MODULE
from components.fallback_worker import render_worker
from drctl.plan.engine import Secret, unwrap
from drctl.stack.files import REPO_ROOT
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


# --- the page from an HTML file in the repository ---------------------------------------------------

EXAMPLE = "docs/fallback-page.example.html"


def test_an_html_file_is_embedded_in_the_script_exactly_as_written():
    run = run_with_page(htmlFile=EXAMPLE, retryAfterSeconds=600)
    content = worker(run)[0].inputs["content"]
    page = (REPO_ROOT / EXAMPLE).read_text(encoding="utf-8")
    [literal] = [line.removeprefix("const PAGE = ").removesuffix(";") for line in content.splitlines()
                 if line.startswith("const PAGE = ")]
    assert json.loads(literal) == page
    assert literal.isascii()  # no character of the file can end the string or the script
    assert "We&#x27;ll be right back" not in content  # the built-in page is not there beside it
    assert "const RETRY_AFTER_SECONDS = 600;" in content


def test_the_example_page_is_a_page_the_config_accepts():
    assert fallback_html.read_page(EXAMPLE) == (REPO_ROOT / EXAMPLE).read_text(encoding="utf-8")


def project(tmp_path, name: str, data: bytes) -> str:
    (tmp_path / name).write_bytes(data)
    return name


GOOD = b"<!doctype html><html><head><title>Closed</title></head><body><p>%s</p></body></html>"


def test_a_page_at_the_size_limit_is_taken_and_one_byte_more_is_refused(tmp_path):
    filler = b"x" * (fallback_html.MAX_BYTES - len(GOOD % b""))
    assert len(fallback_html.read_page(project(tmp_path, "max.html", GOOD % filler), tmp_path)) == \
        fallback_html.MAX_BYTES
    with pytest.raises(fallback_html.PageFileError, match=r"^262,145 bytes, over the 262,144-byte limit"):
        fallback_html.read_page(project(tmp_path, "big.html", GOOD % (filler + b"x")), tmp_path)


def test_the_size_limit_keeps_the_worst_case_script_below_one_mebibyte():
    # Every character a 4-byte emoji: 12 ASCII characters each in the script's string literal.
    page = "<!doctype html><title>x</title>" + "\U0001f6d2" * ((fallback_html.MAX_BYTES - 40) // 4)
    script = render_worker(page=page, health_path="/healthz", retry_after_seconds=300, origin_timeout_ms=1000)
    assert len(page.encode()) <= fallback_html.MAX_BYTES and len(script.encode()) < 1024 * 1024


@pytest.mark.parametrize("data, problem", [
    (b"", "empty"),
    (b" \n\t\n", "empty"),
    (GOOD.replace(b"<!doctype html>", b"") % b"hi", "not well-formed HTML: line 1, column 6: Unexpected start tag "
                                                     "(html). Expected DOCTYPE."),
    (GOOD % b"caf\xc3", "not UTF-8 text: byte 0xc3 on line 1"),
    (GOOD.replace(b"Closed", b"  ") % b"hi", "no <title> (or an empty one) in its <head>"),
    (GOOD % b"<b>a</i></b><i>", "not well-formed HTML: line 1, column 72: Unexpected end tag (i). Ignored. "
                                "(and 1 more parse error)"),
])
def test_a_broken_page_file_is_refused_with_the_reason(tmp_path, data, problem):
    with pytest.raises(fallback_html.PageFileError) as err:
        fallback_html.read_page(project(tmp_path, "page.html", data), tmp_path)
    assert str(err.value).startswith(problem)


def test_a_symlink_out_of_the_project_is_refused(tmp_path):
    inside, outside = tmp_path / "project", tmp_path / "elsewhere.html"
    inside.mkdir()
    outside.write_bytes(GOOD % b"hi")
    (inside / "page.html").symlink_to(outside)
    with pytest.raises(fallback_html.PageFileError, match="resolves outside the project directory"):
        fallback_html.read_page("page.html", inside)


def test_a_symlink_within_the_project_is_followed(tmp_path):
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "real.html").write_bytes(GOOD % b"hi")
    (tmp_path / "page.html").symlink_to(tmp_path / "pages" / "real.html")
    assert "hi" in fallback_html.read_page("page.html", tmp_path)


def test_the_rehearsals_edge_runs_the_programs_worker_with_only_its_wait_scaled(dr_test_run):
    from drctl.rehearsal.topology import RehearsalSpec

    script, _ = worker(dr_test_run)
    spec = RehearsalSpec.from_stack("dr-test")  # time scale 0.02: 90 s becomes 1.8 s
    assert "const ORIGIN_TIMEOUT_MS = 90000;" in script.inputs["content"]
    assert spec.edge_worker == script.inputs["content"].replace("const ORIGIN_TIMEOUT_MS = 90000;",
                                                                "const ORIGIN_TIMEOUT_MS = 1800;")
    assert spec.fallback_script_name == script.inputs["scriptName"]
