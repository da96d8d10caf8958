"""Read-only DR mode through real nginx + PHP-FPM + WordPress (tests/support/web_stack.py): the DR
region's node on its read-only replica shows the catalogue with a notice and answers every write with
a 503 page, logs no failed write, and is a normal shop again, without a restart, once the database
takes writes (what `drctl promote` does to it: read_only off).

WooCommerce is not downloadable here: its cart, checkout, account and Store API requests are covered
by the WordPress-level paths and parameters they use (?add-to-cart=, ?wc-ajax=, /cart/, /checkout/,
/my-account/, /wp-json/wc/store/...), which the must-use plugin checks before WooCommerce would run."""

import urllib.parse

import pytest

from tests.support.waiting import wait_until
from tests.support.web_stack import ADMIN_PASSWORD, ADMIN_USER, WebStack

pytestmark = pytest.mark.integration

NOTICE = "Orders are paused for a few minutes"
PAUSED = "<h1>Orders are paused</h1>"
TEST_COOKIE = {"Cookie": "wordpress_test_cookie=WP%20Cookie%20check"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}

# The stimulus: a page view that stores a transient, as themes and plugins (WooCommerce included) do
# on ordinary page views; the header says whether WordPress thinks it was stored.
TRANSIENT_PLUGIN = """<?php
if (isset($_GET['test-transient'])) {
    header('X-Test-Transient: ' . var_export(set_transient('test_read_only', time(), 600), true));
}
"""


def login(node: WebStack):
    body = urllib.parse.urlencode({"log": ADMIN_USER, "pwd": ADMIN_PASSWORD, "wp-submit": "Log In",
                                   "testcookie": "1"})
    return node.request("POST", "/wp-login.php", body=body, headers={**FORM, **TEST_COOKIE})


def comment(node: WebStack, text: str):
    body = urllib.parse.urlencode({"comment_post_ID": "1", "author": "Reader", "email": "reader@example.com",
                                   "comment": text})
    return node.request("POST", "/wp-comments-post.php", body=body, headers=FORM)


def failed_writes(node: WebStack) -> list[str]:
    """Lines of the node's logs that tell of a failed write or any PHP error."""
    text = node.log("php-fpm.log") + node.log("nginx-error.log")
    words = ("database error", "read-only", "read_only", "PHP Fatal", "PHP Warning", "PHP Notice")
    return [line for line in text.splitlines() if any(word in line for word in words)]


@pytest.fixture(scope="module")
def replica_node(web_replica, web_stack_databases):
    web_replica.add_mu_plugin("test-transient", TRANSIENT_PLUGIN)
    assert web_stack_databases.replica.query("SELECT @@global.read_only") == [(1,)]
    return web_replica


def assert_paused(response, content_type: str = "text/html"):
    assert response.status == 503, response.body[:500]
    assert response.headers["retry-after"] == "300"
    assert response.headers["content-type"].startswith(content_type)
    assert response.headers["cache-control"] == "no-store"


def test_the_catalogue_is_served_with_a_notice_that_orders_are_paused(replica_node):
    for path in ("/", "/?p=1"):
        response = replica_node.get(path, https=True)
        assert response.status == 200, response.body[:500]
        assert "Web stack test shop" in response.body
        assert response.body.count(NOTICE) == 1


def test_a_login_answers_the_paused_page(replica_node):
    assert_paused(login(replica_node))
    assert PAUSED in login(replica_node).body
    assert_paused(replica_node.get("/wp-login.php", https=True))


def test_a_comment_post_answers_the_paused_page_not_500(replica_node):
    assert_paused(comment(replica_node, "Posted while read-only"))


@pytest.mark.parametrize("path", [
    "/?add-to-cart=1", "/?remove_item=abc", "/cart/", "/checkout/", "/my-account/", "/wp-admin/",
])
def test_cart_checkout_account_and_dashboard_answer_the_paused_page(replica_node, path):
    assert_paused(replica_node.get(path, https=True))


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/?wc-ajax=add_to_cart"), ("POST", "/wp-json/wc/store/v1/cart/add-item"),
    ("POST", "/wp-json/wc/store/v1/checkout"),
])
def test_woocommerce_ajax_and_store_api_writes_answer_json_503(replica_node, method, path):
    response = replica_node.request(method, path, body="{}" if method == "POST" else None,
                                    headers={"Content-Type": "application/json"})
    assert_paused(response, "application/json")


def test_page_views_skip_writes_quietly(replica_node):
    before = failed_writes(replica_node)
    response = replica_node.get("/?test-transient=1", https=True)
    assert response.status == 200
    assert response.headers["x-test-transient"] == "false"  # not stored, and nothing tried to store it
    for path in ("/", "/?p=1", "/?s=shirt"):
        assert replica_node.get(path, https=True).status == 200
    assert failed_writes(replica_node) == before


def test_the_shop_opens_by_itself_once_the_database_takes_writes_and_closes_again(replica_node,
                                                                                  web_stack_databases):
    replica = web_stack_databases.replica
    replica.execute("SET GLOBAL read_only = 0")  # what `drctl promote` does to the DR database
    try:
        # No restart, no cache to wait out: the next request finds the shop open.
        page = replica_node.get("/", https=True)
        assert page.status == 200 and NOTICE not in page.body
        assert replica_node.get("/?test-transient=1", https=True).headers["x-test-transient"] == "true"
        logged_in = login(replica_node)
        assert logged_in.status == 302, logged_in.body[:500]
        assert "wordpress_logged_in" in logged_in.headers.get("set-cookie", "")
        posted = comment(replica_node, "Posted after the promote")
        assert posted.status == 302, posted.body[:500]
        assert replica.query("SELECT COUNT(*) FROM woocommerce.wp_comments "
                             "WHERE comment_content = 'Posted after the promote'") == [(1,)]
    finally:
        replica.execute("SET GLOBAL read_only = 1")
    wait_until(lambda: replica_node.get("/wp-login.php", https=True).status == 503, 10, "the shop pausing again")
    assert NOTICE in replica_node.get("/", https=True).body
