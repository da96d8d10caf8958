"""Authenticated Origin Pulls through real nginx + PHP-FPM + WordPress (tests/support/web_stack.py),
with a test CA in the place of the stack's origin-pull CA: the shop answers only a client presenting
the zone's certificate, CF-Connecting-IP counts only on such a connection, and the health checks
(the NodeBalancer's TCP connect, Cloudflare's monitor and `drctl watch` on /healthz) need none."""

import socket

import pytest

from drctl.cloud.origin_probe import HttpsProbe
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

# The stimulus: WordPress says which address it sees the visitor at.
REMOTE_ADDR_PLUGIN = """<?php
header('X-Test-Remote-Addr: ' . $_SERVER['REMOTE_ADDR']);
"""
VISITOR = "203.0.113.9"


def access_log(shop) -> list[str]:
    """The shop's access log (nginx-site.conf's woocommerce_dr format: visitor address first)."""
    return shop.path("/var/log/nginx/access.log").read_text().splitlines()


def logged(shop, path: str) -> str:
    """The access log's line for the one request of `path`: nginx writes it after the answer is sent."""
    def lines() -> list[str]:
        return [line for line in access_log(shop) if f"GET {path} " in line]

    wait_until(lines, 10, f"the access log's line for {path}")
    [line] = lines()
    return line


@pytest.fixture(scope="module")
def shop(web_primary):
    web_primary.add_mu_plugin("test-remote-addr", REMOTE_ADDR_PLUGIN)
    return web_primary


def test_cloudflare_pulling_for_our_zone_gets_the_shop(shop):
    response = shop.get("/", https=True, client="zone")
    assert response.status == 200, shop.log("nginx-error.log")
    assert "Web stack test shop" in response.body


@pytest.mark.parametrize("client", [None, "stranger"])
# Uploads too: only the drill's own text objects (drctl-drill/<name>.txt) are served without the
# certificate (tests/drctl/drill/test_drill_media_origin.py), nothing beside or beyond them.
@pytest.mark.parametrize("path", ["/", "/wp-login.php", "/?p=1", "/wp-admin/", "/wp-content/uploads/2026/11/x.jpg",
                                  "/wp-content/uploads/drctl-drill/x.php", "/wp-content/uploads/drctl-drill/a/b.txt",
                                  "/wp-content/uploads/drctl-drill/../../../wp-config.php",
                                  "/wp-content/uploads/drctl-drill/x.txt/../../2026/11/x.jpg"])
def test_anyone_else_is_refused_the_shop(shop, client, path):
    response = shop.get(path, https=True, client=client)
    assert response.status == 403
    assert "Cloudflare only" in response.body and response.headers["content-type"] == "text/plain"
    assert "Web stack test shop" not in response.body


@pytest.mark.parametrize("client", [None, "stranger", "zone"])
def test_healthz_answers_every_client_over_https(shop, client):
    response = shop.get("/healthz", https=True, client=client)
    assert response.status == 200, response.body
    assert response.json()["db_role"] == "primary"


def test_drctl_watchs_probe_passes_without_a_client_certificate(shop):
    probe = HttpsProbe(domain="dr-test.shop.example.com", path="/healthz", timeout=10, port=shop.https_port)
    result = probe("127.0.0.1")
    assert result.ok, result.describe()


def test_the_nodebalancers_tcp_check_connects_on_both_ports(shop):
    for port in (shop.https_port, shop.http_port):
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass


def test_cf_connecting_ip_is_the_visitor_on_a_verified_connection(shop):
    response = shop.get("/?verified=1", https=True, client="zone", headers={"CF-Connecting-IP": VISITOR})
    assert response.headers["x-test-remote-addr"] == VISITOR
    line = logged(shop, "/?verified=1")
    assert line.startswith(f"{VISITOR} ") and "client_cert=SUCCESS" in line


def test_a_cf_connecting_ip_that_is_not_an_address_is_ignored(shop):
    response = shop.get("/", https=True, client="zone", headers={"CF-Connecting-IP": "1.2.3.4, evil"})
    assert response.headers["x-test-remote-addr"] == "127.0.0.1"


@pytest.mark.parametrize(("client", "verdict"), [(None, "NONE"), ("stranger", "FAILED:")])
def test_cf_connecting_ip_is_ignored_without_the_zones_certificate(shop, client, verdict):
    spoofed = "198.51.100.66"
    path = f"/?unverified={verdict.rstrip(':')}"
    assert shop.get(path, https=True, client=client, headers={"CF-Connecting-IP": spoofed}).status == 403
    line = logged(shop, path)
    assert line.startswith("127.0.0.1 ") and f"client_cert={verdict}" in line
    assert spoofed not in line


def test_plain_http_still_answers_healthz_and_never_trusts_the_header(shop):
    response = shop.get("/healthz", headers={"CF-Connecting-IP": VISITOR})
    assert response.status == 200
    response = shop.get("/wp-login.php", headers={"CF-Connecting-IP": VISITOR})
    assert response.status == 301
