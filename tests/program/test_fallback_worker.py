"""The fallback page's Worker, run for real under Node with a stubbed origin: it passes the shop
through while a region answers (its own 500s included), and answers the branded 503 only when the
origin is refused, hangs past the timeout, or Cloudflare reports it reached no origin (52x, 530). The health path always goes
to the origin, even when the origin is down: monitors must see the truth."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from components.fallback_html import read_page
from components.fallback_worker import page_html, render_worker
from drctl.stack.files import REPO_ROOT
from tests.support.binaries import require

HARNESS = Path(__file__).with_name("fallback_harness.mjs")
TIMEOUT_MS = 300  # the stubbed slow origin answers after 10 s
TITLE = 'Acme <Shop> & "Co"'
MESSAGE = "Back soon.\n\nYour basket is kept <script>alert(1)</script>"

SCENARIOS = [
    {"name": "up", "origin": "up", "path": "/product/mug"},
    {"name": "not-found", "origin": "notFound", "path": "/product/none"},
    {"name": "500", "origin": "error500", "path": "/"},
    {"name": "502", "origin": "error502", "path": "/cart/"},
    {"name": "521", "origin": "cloudflare521", "path": "/"},
    {"name": "522", "origin": "cloudflare522", "path": "/"},
    {"name": "530", "origin": "cloudflare530", "path": "/"},
    {"name": "refused", "origin": "refused", "path": "/checkout/", "method": "POST"},
    {"name": "slow", "origin": "slow", "path": "/"},
    {"name": "health-up", "origin": "up", "path": "/healthz"},
    {"name": "health-500", "origin": "error500", "path": "/healthz"},
    {"name": "health-521", "origin": "cloudflare521", "path": "/healthz"},
    {"name": "health-refused", "origin": "refused", "path": "/healthz"},
    {"name": "health-subpath-502", "origin": "error502", "path": "/healthz/db"},
    {"name": "lookalike-path-521", "origin": "cloudflare521", "path": "/healthzz"},
]


def run_worker(directory: Path, page: str, scenarios: list[dict]) -> dict[str, dict]:
    """Each scenario's result, from the Worker rendered with `page` and run under Node."""
    node = require("node")
    script = directory / "fallback-worker.mjs"
    script.write_text(render_worker(page=page, health_path="/healthz", retry_after_seconds=600,
                                    origin_timeout_ms=TIMEOUT_MS))
    done = subprocess.run([node, str(HARNESS), str(script), "https://shop.example.com", json.dumps(scenarios)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    found = {}
    for line in done.stdout.splitlines():
        doc = json.loads(line)
        found[doc["name"]] = doc
    assert set(found) == {s["name"] for s in scenarios}
    return found


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, dict]:
    return run_worker(tmp_path_factory.mktemp("worker"), page_html(TITLE, MESSAGE, "shop.example.com"), SCENARIOS)


def is_fallback(result: dict) -> bool:
    return result.get("status") == 503 and "x-woocommerce-dr-fallback" in result.get("headers", {})


def test_a_healthy_origin_is_passed_through_untouched(results):
    up = results["up"]
    assert (up["status"], up["body"]) == (200, "<html>shop</html>")
    assert "retry-after" not in up["headers"] and "x-woocommerce-dr-fallback" not in up["headers"]
    assert up["originCalls"] == [{"url": "https://shop.example.com/product/mug", "method": "GET", "signal": True}]


def test_an_origin_4xx_is_the_shops_own_answer(results):
    assert (results["not-found"]["status"], results["not-found"]["body"]) == (404, "no such product")


@pytest.mark.parametrize(("name", "status", "body"), [("500", 500, "fatal error"), ("502", 502, "bad gateway")])
def test_an_error_from_a_region_that_serves_is_the_shops_own_answer(results, name, status, body):
    # A broken product page on a healthy shop is not an outage: no maintenance page over it.
    r = results[name]
    assert (r["status"], r["body"]) == (status, body) and "x-woocommerce-dr-fallback" not in r["headers"]


@pytest.mark.parametrize("name, reason", [
    ("521", "origin answered 521"), ("522", "origin answered 522"), ("530", "origin answered 530"),
    ("refused", "origin unreachable"), ("slow", "origin timed out"),
])
def test_a_failing_origin_gets_the_maintenance_page(results, name, reason):
    r = results[name]
    assert r["status"] == 503
    assert r["headers"]["retry-after"] == "600"
    assert r["headers"]["cache-control"] == "no-store"
    assert r["headers"]["content-type"] == "text/html; charset=utf-8"
    assert r["headers"]["x-woocommerce-dr-fallback"] == reason
    assert len(r["originCalls"]) == 1  # it tried the origin first: it steps aside by itself


def test_a_hung_origin_is_given_up_on_at_the_timeout(results):
    assert TIMEOUT_MS <= results["slow"]["elapsedMs"] < 5000


def test_the_page_shows_the_configured_text_escaped(results):
    body = results["521"]["body"]
    assert "<title>Acme &lt;Shop&gt; &amp; &quot;Co&quot;</title>" in body
    assert "<h1>Acme &lt;Shop&gt; &amp; &quot;Co&quot;</h1>" in body
    assert "<p>Back soon.</p>" in body
    assert "<p>Your basket is kept &lt;script&gt;alert(1)&lt;/script&gt;</p>" in body
    assert "<script>" not in body and "shop.example.com" in body


@pytest.mark.parametrize("name, status, body", [
    ("health-up", 200, "<html>shop</html>"), ("health-500", 500, "fatal error"),
    ("health-521", 521, "web server is down"), ("health-subpath-502", 502, "bad gateway"),
])
def test_the_health_path_always_gets_the_origins_own_answer(results, name, status, body):
    r = results[name]
    assert (r["status"], r["body"]) == (status, body)
    assert not is_fallback(r)
    assert r["originCalls"][0]["signal"] is False  # no timeout of ours either: the origin's truth


def test_an_unreachable_origin_fails_the_health_path_instead_of_looking_healthy(results):
    assert "thrown" in results["health-refused"] and "ECONNREFUSED" in results["health-refused"]["thrown"]


def test_only_the_health_path_and_below_are_let_through(results):
    assert is_fallback(results["lookalike-path-521"])


# --- a page from an HTML file (traffic.fallbackPage.htmlFile): the shipped example, through the real Worker

EXAMPLE = "docs/fallback-page.example.html"
FILE_SCENARIOS = [
    {"name": "up", "origin": "up", "path": "/"},
    {"name": "refused", "origin": "refused", "path": "/shop/"},
    {"name": "530", "origin": "cloudflare530", "path": "/"},
    {"name": "health-521", "origin": "cloudflare521", "path": "/healthz"},
]


@pytest.fixture(scope="module")
def file_results(tmp_path_factory) -> dict[str, dict]:
    return run_worker(tmp_path_factory.mktemp("worker-file"), read_page(EXAMPLE), FILE_SCENARIOS)


@pytest.mark.parametrize("name", ["refused", "530"])
def test_the_example_html_file_is_served_byte_for_byte_with_the_503_headers(file_results, name):
    r = file_results[name]
    assert r["body"] == (REPO_ROOT / EXAMPLE).read_text(encoding="utf-8")
    assert r["status"] == 503 and r["headers"]["retry-after"] == "600"
    assert r["headers"]["cache-control"] == "no-store"
    assert r["headers"]["content-type"] == "text/html; charset=utf-8"
    assert "x-woocommerce-dr-fallback" in r["headers"]


def test_with_a_page_file_the_shop_and_the_health_path_still_pass_through(file_results):
    assert (file_results["up"]["status"], file_results["up"]["body"]) == (200, "<html>shop</html>")
    health = file_results["health-521"]
    assert (health["status"], health["body"]) == (521, "web server is down") and not is_fallback(health)
