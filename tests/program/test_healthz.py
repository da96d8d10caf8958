"""/healthz run for real: the web node's healthz.php under PHP's built-in server (php-cli, php-mysql)
against a MariaDB started here that requires TLS, with the settings file cloud-init would write."""

import dataclasses
import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from components import web_node
from components.config import NodeBalancerSpec
from drctl.mysql import bootstrap as boot
from drctl.mysql import replication as r
from tests.support import replica_setups
from tests.support.binaries import require
from tests.support.mariadb import MariaDBServer, TestCA
from tests.support.php_healthz_support import TEMPLATES, Healthz

pytestmark = pytest.mark.integration

PASSWORD = "healthz-test-password"
WRONG_PASSWORD = "not-the-password"


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> TestCA:
    return TestCA.create(tmp_path_factory.mktemp("tls"))


def shop_database(directory, tls) -> MariaDBServer:
    """A running server with the shop's database and user, as the database tier sets them up."""
    server = MariaDBServer(directory, 1, tls)
    server.start()
    server.execute(
        "CREATE DATABASE woocommerce",
        f"CREATE USER 'woocommerce'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}' REQUIRE SSL",
        "GRANT ALL ON woocommerce.* TO 'woocommerce'@'127.0.0.1'",
        # What /healthz reads of replication (drctl.mysql.replication.replica_monitor_privilege).
        "GRANT SLAVE MONITOR ON *.* TO 'woocommerce'@'127.0.0.1'",
    )
    return server


@pytest.fixture(scope="module")
def database(tmp_path_factory, tls):
    server = shop_database(tmp_path_factory.mktemp("mariadb"), tls)
    yield server
    server.stop()


def settings(tmp_path, port, ca_cert, password=PASSWORD, rpo_seconds=15):
    """database.json as web_node renders it, with the CA file in `tmp_path`."""
    node = web_node.WebNode(
        region="eu-west", domain="shop.example.com",
        database=web_node.DatabaseSettings("127.0.0.1", port, "woocommerce", password, "woocommerce",
                                           ca_cert.read_text()),
        wordpress_keys=dict.fromkeys(web_node.WORDPRESS_KEY_NAMES, "k"),
        origin_certificate_pem="", origin_private_key_pem="", run_cron=False, rpo_seconds=rpo_seconds,
        origin_pull_ca_pem="",
    )
    [rendered] = [f for f in web_node.settings_files(node) if f["path"].endswith("/database.json")]
    values = json.loads(rendered["content"])
    (tmp_path / "database-ca.pem").write_text(ca_cert.read_text())
    values["ca_file"] = str(tmp_path / "database-ca.pem")
    (tmp_path / "database.json").write_text(json.dumps(values))
    return tmp_path


@pytest.fixture
def healthz(tmp_path, database, tls):
    server = Healthz(settings(tmp_path, database.port, Path(tls.ca)))
    yield server
    server.stop()


@pytest.fixture
def read_only(database):
    database.execute("SET GLOBAL read_only = 1")
    yield
    database.execute("SET GLOBAL read_only = 0")


# No media agent status file where the tests run (WOOCOMMERCE_DR_MEDIA_STATUS unset).
NO_MEDIA_AGENT = {"pending_files": None, "oldest_pending_seconds": None, "problem": "media agent has not reported"}


def test_a_writable_database_answers_200_as_primary(healthz):
    response = healthz.get()
    assert response.status == 200
    assert response.json() == {"region": "eu-west", "db_role": "primary", "db_reachable": True,
                               "replica_lag_seconds": None, "replica_state": None, "replica_problem": None,
                               "reason": "primary-writable",
                               "media": NO_MEDIA_AGENT}


def get_while_schema_exists(healthz, database, schema, *statements):
    """/healthz while `schema`, filled by `statements`, exists on the server (dropped afterwards)."""
    database.execute(f"CREATE DATABASE {schema}", *statements)
    try:
        return healthz.get()
    finally:
        database.execute(f"DROP DATABASE {schema}")


def test_a_read_only_database_that_replicates_nothing_answers_503_with_the_heartbeats_age_as_lag(
        healthz, database, read_only):
    # A fenced or read-only primary: it cannot take orders, and it is no replica either.
    response = get_while_schema_exists(
        healthz, database, "drctl",
        "CREATE TABLE drctl.drctl_heartbeat (id TINYINT PRIMARY KEY, ts TIMESTAMP(6))",
        "INSERT INTO drctl.drctl_heartbeat VALUES (1, NOW(6) - INTERVAL 3 SECOND)",
        "GRANT SELECT ON drctl.drctl_heartbeat TO 'woocommerce'@'127.0.0.1'",
    )
    assert response.status == 503
    body = response.json()
    assert (body["db_role"], body["db_reachable"], body["reason"]) == ("replica", True, "read-only")
    assert 3.0 <= body["replica_lag_seconds"] < 5.0


def test_replica_lag_is_null_when_the_heartbeat_table_is_missing(healthz, read_only):
    response = healthz.get()
    assert response.json()["db_role"] == "replica"
    assert response.json()["replica_lag_seconds"] is None


def test_the_answer_passes_the_nodebalancer_http_body_check_and_is_never_cached(healthz):
    response = healthz.get()
    assert re.search(NodeBalancerSpec().check_body, response.body)
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"


def test_a_server_whose_certificate_is_not_from_the_configured_ca_gets_503(tmp_path, database):
    other_ca = TestCA.create(tmp_path / "some-other-ca")
    server = Healthz(settings(tmp_path, database.port, Path(other_ca.ca)))
    try:
        response = server.get()
    finally:
        log = server.stop()
    assert response.status == 503
    assert response.json()["db_reachable"] is False
    assert "healthz: database check failed (mysqli_sql_exception 2002)" in log


def test_wrong_credentials_answer_503_without_naming_them(tmp_path, database, tls):
    server = Healthz(settings(tmp_path, database.port, Path(tls.ca), password=WRONG_PASSWORD))
    try:
        response = server.get()
    finally:
        log = server.stop()
    assert response.status == 503
    assert response.json() == {"region": "eu-west", "db_role": None, "db_reachable": False,
                               "replica_lag_seconds": None, "replica_state": None, "replica_problem": None,
                               "reason": "database-unreachable",
                               "media": NO_MEDIA_AGENT}
    assert "healthz: database check failed (mysqli_sql_exception 1045)" in log
    assert WRONG_PASSWORD not in log + response.body


def test_a_stopped_database_answers_503(tmp_path_factory, tmp_path, tls):
    server = shop_database(tmp_path_factory.mktemp("stopped"), tls)
    healthz = Healthz(settings(tmp_path, server.port, Path(tls.ca)))
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


# --- a replica's own setup state, as the real database bootstrap leaves it --------------------------

def replica_healthz(tmp_path, replica) -> Healthz:
    """/healthz of a web node in the replica's region, logging in as the bootstrap's app account.
    No heartbeat writer runs here, so its age grows: an RPO of an hour keeps these tests about the
    replica's setup state (lag is tested in tests/program/test_healthz_verdict.py)."""
    return Healthz(settings(tmp_path, replica.port, Path(replica.tls.ca), password=replica_setups.APP_PASSWORD,
                            rpo_seconds=3600))


def get_once(healthz: Healthz):
    try:
        return healthz.get()
    finally:
        healthz.stop()


def passwords_in(text: str) -> list[str]:
    return [p for p in (replica_setups.ADMIN_PASSWORD, replica_setups.APP_PASSWORD, replica_setups.DRCTL_PASSWORD)
            if p in text]


def test_a_replicating_replica_answers_200_with_its_state_and_the_heartbeats_age(
        primary_and_read_only_replica, tmp_path):
    primary, replica = primary_and_read_only_replica
    config = replica_setups.managed_like(tmp_path, primary, replica)
    with primary.connect() as conn:
        r.install_heartbeat(conn, with_event=False)
    assert boot.run(config, log=lambda _m: None) == boot.EXIT_OK

    response = get_once(replica_healthz(tmp_path, replica))
    assert response.status == 200
    body = response.json()
    assert (body["db_role"], body["db_reachable"], body["replica_state"], body["replica_problem"], body["reason"]) == (
        "replica", True, "replicating", None, "replica-current")
    assert body["replica_lag_seconds"] is not None  # the bootstrap's grants let the app account read it


def test_a_replica_that_refused_answers_503_and_says_why_without_a_password(
        primary_and_read_only_replica, tmp_path):
    primary, replica = primary_and_read_only_replica
    config = replica_setups.managed_like(tmp_path, primary, replica, "SELECT, REPLICATION SLAVE ON *.*")
    assert boot.run(config, log=lambda _m: None) == boot.EXIT_REFUSED

    response = get_once(replica_healthz(tmp_path, replica))
    assert response.status == 503
    body = response.json()
    assert (body["db_role"], body["replica_state"]) == ("replica", "refused")
    assert "'akmadmin' lacks REPLICATION CLIENT" in body["replica_problem"]
    assert body["db_reachable"] is False  # nothing was seeded: the shop's schema is not there
    assert passwords_in(response.body) == []


def test_a_replica_whose_setup_failed_answers_503(primary_and_read_only_replica, tmp_path):
    primary, replica = primary_and_read_only_replica
    config = dataclasses.replace(replica_setups.replica_config(tmp_path, primary, replica), wait_for_source_seconds=1)
    assert boot.run(config, log=lambda _m: None) == boot.EXIT_FAILED  # no admin account on the source

    response = get_once(replica_healthz(tmp_path, replica))
    assert response.status == 503
    assert response.json()["replica_state"] == "failed"
    assert "not reachable as 'akmadmin'" in response.json()["replica_problem"]
    assert passwords_in(response.body) == []


def test_a_replica_problem_never_shows_the_nodes_own_password(healthz, database, read_only):
    response = get_while_schema_exists(
        healthz, database, "drctl_local",
        "CREATE TABLE drctl_local.replica_state (id TINYINT PRIMARY KEY, state VARCHAR(32), problem TEXT, "
        "updated_at TIMESTAMP(6))",
        f"INSERT INTO drctl_local.replica_state VALUES (1, 'failed', 'login failed with {PASSWORD}', NOW(6))",  # noqa: S608 -- constants
        "GRANT SELECT ON drctl_local.* TO 'woocommerce'@'127.0.0.1'",
    )
    assert response.status == 503
    assert response.json()["replica_problem"] == "login failed with ********"
    assert PASSWORD not in response.body


def test_a_multibyte_character_at_the_cut_leaves_a_valid_json_body(healthz, database, read_only):
    problem = "x" * 499 + "é" * 10  # é's two bytes straddle the 500-byte cut
    response = get_while_schema_exists(
        healthz, database, "drctl_local",
        "CREATE TABLE drctl_local.replica_state (id TINYINT PRIMARY KEY, state VARCHAR(32), problem TEXT, "
        "updated_at TIMESTAMP(6)) CHARACTER SET utf8mb4",
        f"INSERT INTO drctl_local.replica_state VALUES (1, 'failed', '{problem}', NOW(6))",  # noqa: S608 -- constants
        "GRANT SELECT ON drctl_local.* TO 'woocommerce'@'127.0.0.1'",
    )
    assert response.status == 503
    assert response.json()["replica_problem"] == "x" * 499


def test_without_a_recorded_state_a_read_only_server_is_judged_by_its_database_alone(healthz, read_only):
    # Set up by drctl after a failback, say: no bootstrap ran there, which says nothing for or
    # against it; this one replicates from nothing, so it is a read-only primary.
    response = healthz.get()
    assert response.status == 503
    assert (response.json()["replica_state"], response.json()["reason"]) == (None, "read-only")


# --- the installing node's first step ---------------------------------------------------------------

def test_the_installing_node_creates_the_shops_schema_then_healthz_answers_200(tmp_path, database, tls):
    database.execute("GRANT ALL ON shop.* TO 'woocommerce'@'127.0.0.1'")
    etc = settings(tmp_path, database.port, Path(tls.ca))
    values = json.loads((etc / "database.json").read_text())
    (etc / "database.json").write_text(json.dumps({**values, "database": "shop"}))
    healthz = Healthz(etc)
    try:
        before = healthz.get()
        for _ in range(2):  # idempotent: the bootstrap retries it until the database answers
            subprocess.run([require("php"), str(TEMPLATES / "create-database.php")], check=True,
                           env={"WOOCOMMERCE_DR_ETC": str(etc)}, capture_output=True)
        after = healthz.get()
    finally:
        healthz.stop()
        database.execute("DROP DATABASE IF EXISTS shop")
    assert (before.status, before.json()["db_reachable"]) == (503, False)
    assert (after.status, after.json()["db_reachable"]) == (200, True)


def test_creating_the_schema_fails_without_naming_host_or_account(tmp_path, database, tls):
    etc = settings(tmp_path, database.port, Path(tls.ca), password=WRONG_PASSWORD)
    proc = subprocess.run([require("php"), str(TEMPLATES / "create-database.php")],
                          env={"WOOCOMMERCE_DR_ETC": str(etc)}, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "create-database: failed (mysqli_sql_exception 1045)"
    assert "woocommerce" not in proc.stdout + proc.stderr and WRONG_PASSWORD not in proc.stdout + proc.stderr


def media_healthz(tmp_path, database, tls, monkeypatch, status: dict) -> dict:
    path = tmp_path / "media-status.json"
    path.write_text(json.dumps(status))
    monkeypatch.setenv("WOOCOMMERCE_DR_MEDIA_STATUS", str(path))
    server = Healthz(settings(tmp_path, database.port, Path(tls.ca)))
    try:
        response = server.get()
    finally:
        server.stop()
    assert response.status == 200  # a bucket problem never takes the node out: uploads still work locally
    return response.json()["media"]


def test_healthz_passes_on_the_media_agents_pending_uploads_and_problem(tmp_path, database, tls, monkeypatch):
    status = {"checked_at": time.time(), "pending_files": 3, "oldest_pending_seconds": 41.5,
              "problem": "bucket media-us-east:wcdr-prod-media-us-east unreachable: connection refused"}
    assert media_healthz(tmp_path, database, tls, monkeypatch, status) == {
        "pending_files": 3, "oldest_pending_seconds": 41.5,
        "problem": "bucket media-us-east:wcdr-prod-media-us-east unreachable: connection refused"}


def test_healthz_says_when_the_media_agent_went_silent(tmp_path, database, tls, monkeypatch):
    status = {"checked_at": time.time() - 600, "pending_files": 0, "oldest_pending_seconds": 0, "problem": None}
    media = media_healthz(tmp_path, database, tls, monkeypatch, status)
    assert media["problem"].startswith("media agent silent for 6")
