"""The web tier for real (tests/support/web_stack.py): the files a web node is given, served by
nginx + PHP-FPM + WordPress against the database tier's MariaDB over TLS."""

import pytest

pytestmark = pytest.mark.integration


def test_the_primary_regions_node_answers_healthz_as_primary(web_primary):
    response = web_primary.get("/healthz")
    assert response.status == 200, response.body
    assert response.json()["db_role"] == "primary"


def test_the_shop_is_served_by_wordpress_over_tls(web_primary):
    response = web_primary.get("/", https=True)
    assert response.status == 200, web_primary.log("nginx-error.log")
    assert "Web stack test shop" in response.body


def test_plain_http_redirects_to_https_except_healthz(web_primary):
    response = web_primary.get("/shop/")
    assert response.status == 301
    assert response.headers["location"] == "https://dr-test.shop.example.com/shop/"


def test_the_dr_regions_node_serves_the_replicated_shop(web_replica):
    health = web_replica.get("/healthz")
    assert health.status == 200, health.body
    assert health.json()["db_role"] == "replica"
    page = web_replica.get("/", https=True)
    assert page.status == 200
    assert "Web stack test shop" in page.body
