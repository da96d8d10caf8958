"""Least privilege, for real: the database account a web node is given (its rendered
database.json) may run the shop and read what /healthz needs, and nothing else — in both database
modes. Self-managed (dr-test): the accounts the database tier's own bootstrap created on the
primary and the replica (tests/support/web_stack.py). Managed (prod): the setup script the primary
region's first node runs as the managed admin, run by the `mariadb` client on a fresh server."""

import configparser
import contextlib
import json
import subprocess

import pymysql
import pytest

from drctl.mysql.replication import HEARTBEAT_WRITE
from tests.support.binaries import require
from tests.support.web_stack import PRIMARY_REGION, REPLICA_REGION, rendered_files

pytestmark = pytest.mark.integration

# ER_SPECIFIC_ACCESS_DENIED_ERROR, ER_TABLEACCESS_DENIED_ERROR, ER_DBACCESS_DENIED_ERROR,
# ER_ACCESS_DENIED_ERROR (a GRANT beyond the account's own privileges)
DENIED = {1227, 1142, 1044, 1045}

FORBIDDEN = {
    "create a user": "CREATE USER 'intruder'@'%' IDENTIFIED BY 'x'",
    "read mysql.user": "SELECT user, host FROM mysql.user",
    "read mysql.db": "SELECT * FROM mysql.db",
    "stop replication": "STOP SLAVE",
    "repoint replication": "CHANGE MASTER TO MASTER_HOST = '203.0.113.9'",
    "grant itself more": "GRANT ALL PRIVILEGES ON *.* TO CURRENT_USER()",
    "write the heartbeat": "INSERT INTO drctl.drctl_heartbeat VALUES (1, NOW(6))",
    "touch another schema": "CREATE TABLE mysql.intruder (id INT)",
}


def web_node_credentials(run, instance: str) -> dict:
    return json.loads(rendered_files(run, instance)["/etc/woocommerce-dr/database.json"]["content"])


@contextlib.contextmanager
def logged_in(server, settings):
    conn = server.connect(settings["user"], settings["password"])
    try:
        yield conn
    finally:
        conn.close()


def refusal(conn, sql: str) -> int | None:
    """The server's error number for `sql`, None if it ran."""
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
    except pymysql.err.MySQLError as err:
        return err.args[0]
    return None


def assert_least_privilege(server, settings):
    with logged_in(server, settings) as conn:
        refused = {what: refusal(conn, sql) for what, sql in FORBIDDEN.items()}
        assert {what: code for what, code in refused.items() if code not in DENIED} == {}
        # ...while the shop itself works.
        assert refusal(conn, "CREATE TABLE woocommerce.privilege_probe (id INT PRIMARY KEY)") is None
        assert refusal(conn, "DROP TABLE woocommerce.privilege_probe") is None


# --- self-managed: the database tier's bootstrap ------------------------------------------------------

@pytest.mark.parametrize("region", [PRIMARY_REGION, REPLICA_REGION])
def test_the_web_nodes_account_cannot_administer_the_database(web_stack_databases, web_stack_run, region):
    if region == REPLICA_REGION:
        assert web_stack_databases.bootstrap("replica") == 0
    server = web_stack_databases.primary if region == PRIMARY_REGION else web_stack_databases.replica
    settings = web_node_credentials(web_stack_run, f"{region}-web-0")
    if region == REPLICA_REGION:
        server.execute("SET GLOBAL read_only = 0")  # so a refusal is for want of privilege, not read-only
    try:
        assert_least_privilege(server, settings)
    finally:
        if region == REPLICA_REGION:
            server.execute("SET GLOBAL read_only = 1")


def test_the_web_nodes_account_reads_replication_status_for_healthz(web_stack_databases, web_stack_run):
    assert web_stack_databases.bootstrap("replica") == 0
    settings = web_node_credentials(web_stack_run, f"{REPLICA_REGION}-web-0")
    with logged_in(web_stack_databases.replica, settings) as conn, conn.cursor() as cursor:
        cursor.execute("SHOW REPLICA STATUS")
        assert cursor.fetchone() is not None


# --- managed: the setup the admin account runs ------------------------------------------------------

def test_the_managed_primarys_setup_gives_the_web_nodes_a_shop_account_and_nothing_more(prod_run, mariadb_server):
    # mariadb_server's root stands in for the managed admin, which runs the script as it is rendered.
    setup = rendered_files(prod_run, f"{PRIMARY_REGION}-web-0")["/etc/woocommerce-dr/primary-setup.sql"]["content"]
    for _ in range(2):  # idempotent: the unit retries until the database answers
        subprocess.run([require("mariadb"), f"--socket={mariadb_server.socket}", "--user=root"],
                       input=setup, text=True, check=True, capture_output=True)
    for instance in (f"{PRIMARY_REGION}-web-0", f"{PRIMARY_REGION}-web-1"):
        settings = web_node_credentials(prod_run, instance)
        assert settings["user"] == "woocommerce"
        assert_least_privilege(mariadb_server, settings)


def test_the_managed_heartbeat_writer_has_its_own_account_for_its_one_table(prod_run, mariadb_server):
    files = rendered_files(prod_run, f"{PRIMARY_REGION}-web-0")
    subprocess.run([require("mariadb"), f"--socket={mariadb_server.socket}", "--user=root"],
                   input=files["/etc/woocommerce-dr/primary-setup.sql"]["content"], text=True, check=True,
                   capture_output=True)
    client = configparser.ConfigParser()
    client.read_string(files["/etc/woocommerce-dr/heartbeat.cnf"]["content"])
    writer = {"user": client["client"]["user"], "password": client["client"]["password"].strip('"')}
    assert writer["user"] == "drctl_heartbeat"
    with logged_in(mariadb_server, writer) as conn:
        assert refusal(conn, HEARTBEAT_WRITE) is None
        assert refusal(conn, "SELECT * FROM woocommerce.wp_options") in DENIED
        refused = {what: refusal(conn, sql) for what, sql in FORBIDDEN.items() if what != "write the heartbeat"}
        assert {what: code for what, code in refused.items() if code not in DENIED} == {}
