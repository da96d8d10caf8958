"""/healthz run for real: the web node's healthz.php under PHP's built-in server (php-cli, php-mysql)
against a MariaDB started here that requires TLS, with the settings file cloud-init would write."""

import json
import re

import pytest

from components import web_node
from components.config import NodeBalancerSpec
from tests.php_healthz_support import CertificateAuthority, Healthz, MariaDB

pytestmark = pytest.mark.integration

PASSWORD = "healthz-test-password"
WRONG_PASSWORD = "not-the-password"


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    ca = CertificateAuthority.create(directory, "database-ca")
    cert, key = ca.issue_server_certificate(directory, "127.0.0.1")
    return ca, cert, key


def shop_database(directory, tls) -> MariaDB:
    """A running server with the shop's database and user, as the database tier sets them up."""
    server = MariaDB(directory, *tls).start()
    server.sql(
        "CREATE DATABASE woocommerce",
        f"CREATE USER 'woocommerce'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}' REQUIRE SSL",
        "GRANT ALL ON woocommerce.* TO 'woocommerce'@'127.0.0.1'",
    )
    return server


@pytest.fixture(scope="module")
def database(tmp_path_factory, tls):
    server = shop_database(tmp_path_factory.mktemp("mariadb"), tls)
    yield server
    server.stop()


def settings(tmp_path, port, ca_cert, password=PASSWORD):
    """database.json as web_node renders it, with the CA file in `tmp_path`."""
    node = web_node.WebNode(
        region="eu-west", domain="shop.example.com",
        database=web_node.DatabaseSettings("127.0.0.1", port, "woocommerce", password, "woocommerce",
                                           ca_cert.read_text()),
        wordpress_keys=dict.fromkeys(web_node.WORDPRESS_KEY_NAMES, "k"),
        origin_certificate_pem="", origin_private_key_pem="", run_cron=False,
    )
    [rendered] = [f for f in web_node.settings_files(node) if f["path"].endswith("/database.json")]
    values = json.loads(rendered["content"])
    (tmp_path / "database-ca.pem").write_text(ca_cert.read_text())
    values["ca_file"] = str(tmp_path / "database-ca.pem")
    (tmp_path / "database.json").write_text(json.dumps(values))
    return tmp_path


@pytest.fixture
def healthz(tmp_path, database, tls):
    server = Healthz(settings(tmp_path, database.port, tls[0].cert))
    yield server
    server.stop()


@pytest.fixture
def read_only(database):
    database.sql("SET GLOBAL read_only = 1")
    yield
    database.sql("SET GLOBAL read_only = 0")


def test_a_writable_database_answers_200_as_primary(healthz):
    response = healthz.get()
    assert response.status == 200
    assert response.json() == {"region": "eu-west", "db_role": "primary", "db_reachable": True,
                               "replica_lag_seconds": None}


def test_a_read_only_database_is_a_replica_with_the_heartbeats_age_as_lag(healthz, database, read_only):
    database.sql(
        "CREATE DATABASE drctl",
        "CREATE TABLE drctl.drctl_heartbeat (id TINYINT PRIMARY KEY, ts TIMESTAMP(6))",
        "INSERT INTO drctl.drctl_heartbeat VALUES (1, NOW(6) - INTERVAL 3 SECOND)",
        "GRANT SELECT ON drctl.drctl_heartbeat TO 'woocommerce'@'127.0.0.1'",
    )
    try:
        response = healthz.get()
    finally:
        database.sql("DROP DATABASE drctl")
    assert response.status == 200
    body = response.json()
    assert (body["db_role"], body["db_reachable"]) == ("replica", True)
    assert 3.0 <= body["replica_lag_seconds"] < 5.0


def test_replica_lag_is_null_when_the_heartbeat_table_is_missing(healthz, read_only):
    response = healthz.get()
    assert response.status == 200
    assert response.json()["db_role"] == "replica"
    assert response.json()["replica_lag_seconds"] is None


def test_the_answer_passes_the_nodebalancer_http_body_check_and_is_never_cached(healthz):
    response = healthz.get()
    assert re.search(NodeBalancerSpec().check_body, response.body)
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"


def test_a_server_whose_certificate_is_not_from_the_configured_ca_gets_503(tmp_path, database):
    other_ca = CertificateAuthority.create(tmp_path, "some-other-ca")
    server = Healthz(settings(tmp_path, database.port, other_ca.cert))
    try:
        response = server.get()
    finally:
        log = server.stop()
    assert response.status == 503
    assert response.json()["db_reachable"] is False
    assert "healthz: database check failed (mysqli_sql_exception 2002)" in log


def test_wrong_credentials_answer_503_without_naming_them(tmp_path, database, tls):
    server = Healthz(settings(tmp_path, database.port, tls[0].cert, password=WRONG_PASSWORD))
    try:
        response = server.get()
    finally:
        log = server.stop()
    assert response.status == 503
    assert response.json() == {"region": "eu-west", "db_role": None, "db_reachable": False,
                               "replica_lag_seconds": None}
    assert "healthz: database check failed (mysqli_sql_exception 1045)" in log
    assert WRONG_PASSWORD not in log + response.body


def test_a_stopped_database_answers_503(tmp_path_factory, tmp_path, tls):
    server = shop_database(tmp_path_factory.mktemp("stopped"), tls)
    healthz = Healthz(settings(tmp_path, server.port, tls[0].cert))
    try:
        before = healthz.get()
        server.stop()
        after = healthz.get()
    finally:
        server.stop()
        healthz.stop()
    assert before.status == 200
    assert after.status == 503
    assert after.json()["db_reachable"] is False
