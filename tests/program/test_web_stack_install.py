"""A new shop before its first node installs it, through the web-stack tier
(tests/support/web_stack.py): the shop's schema exists and is empty, and nobody from outside may
run WordPress's installer and make the site theirs."""

import urllib.parse

import pytest

from tests.support.web_stack import PRIMARY_REGION, rendered_files, web_stack

pytestmark = pytest.mark.integration

INSTALL_FORM = urllib.parse.urlencode({
    "weblog_title": "Taken", "user_name": "intruder", "admin_password": "intruder-pw-1234",
    "admin_password2": "intruder-pw-1234", "pw_weak": "on", "admin_email": "intruder@example.com",
    "blog_public": "0", "language": "",
})


@pytest.fixture(scope="module")
def uninstalled(web_stack_run, web_stack_databases):
    with web_stack(rendered_files(web_stack_run, f"{PRIMARY_REGION}-web-0"), web_stack_databases.primary) as stack:
        yield stack


def shop_tables(databases) -> list[tuple]:
    return databases.primary.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'woocommerce'")


@pytest.mark.parametrize("path", ["/wp-admin/install.php", "/wp-admin/install.php?step=1",
                                  "/wp-admin/setup-config.php"])
def test_the_installer_is_refused_from_outside(uninstalled, path):
    assert uninstalled.get(path, https=True).status == 403


def test_an_anonymous_install_attempt_changes_nothing(uninstalled, web_stack_databases):
    response = uninstalled.request(
        "POST", "/wp-admin/install.php?step=2", body=INSTALL_FORM,
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 403
    assert shop_tables(web_stack_databases) == []


def test_the_installing_node_still_installs_the_site(uninstalled, web_stack_databases):
    # What the bootstrap does (wp-cli there, WordPress's own installer here): not through nginx.
    uninstalled.install_site()
    assert ("wp_options",) in shop_tables(web_stack_databases)
    assert uninstalled.get("/", https=True).status == 200
