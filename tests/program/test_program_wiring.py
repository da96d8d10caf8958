"""The web and database tiers as __main__.py wires them: each web node reaches its region's database
by the name on the server's certificate (for our MySQL Linodes, an /etc/hosts line to the computed
private address: DNS holds the public one, which their firewalls do not open to web nodes), and in
managed mode exactly one primary-region web node writes the replication heartbeat."""

import base64
import subprocess

import pytest
import yaml

from components import heartbeat, media_storage, web_node
from drctl.plan.engine import Secret
from tests.support.binaries import require
from tests.support.web_tier_runs import INSTANCE, in_region, user_data

MYSQL = "linode:index/databaseMysqlV2:DatabaseMysqlV2"


def web_nodes(run):
    return [i for i in run.of_type(INSTANCE) if "role:web" in i.inputs["tags"]]


def cloud_config(instance) -> dict:
    return yaml.safe_load(web_node.decode_user_data(user_data(instance)))


def written(instance) -> dict[str, dict]:
    return {f["path"]: f for f in cloud_config(instance)["write_files"]}


def database_settings(instance) -> dict:
    return yaml.safe_load(written(instance)["/etc/woocommerce-dr/database.json"]["content"])


def hosts_lines(instance) -> list[str]:
    entries = [f for f in cloud_config(instance)["write_files"] if f["path"] == "/etc/hosts"]
    assert all(f["append"] is True for f in entries)  # never replaces the image's /etc/hosts
    return [line for f in entries for line in f["content"].splitlines()]


def heartbeat_nodes(run) -> list[str]:
    return sorted(i.name for i in web_nodes(run) if "/etc/woocommerce-dr/heartbeat.cnf" in written(i))


# --- web node -> database ---------------------------------------------------------------------------

def test_managed_primary_is_reached_by_its_public_name_without_a_hosts_line(prod_run):
    (db,) = prod_run.of_type(MYSQL)
    for node in in_region(prod_run, INSTANCE, "us-east"):
        settings = database_settings(node)
        assert (settings["host"], settings["port"], settings["user"]) == (db.outputs["hostPrimary"], 11876, "woocommerce")
        assert hosts_lines(node) == []


def test_no_web_node_is_given_the_managed_admins_password(prod_run):
    (db,) = prod_run.of_type(MYSQL)
    admin_password = db.outputs["rootPassword"].value
    for node in web_nodes(prod_run):
        assert database_settings(node)["password"] != admin_password
        # Only the setup's root-only client config on the one node that sets the primary up.
        holders = [path for path, f in written(node).items() if admin_password in f["content"]]
        assert holders == (["/etc/woocommerce-dr/primary-admin.cnf"] if node.name == "us-east-web-0" else [])
        assert written(node).get("/etc/woocommerce-dr/primary-admin.cnf", {}).get("permissions", "0600") == "0600"


def test_the_managed_primarys_setup_creates_the_shop_account_the_web_nodes_use(prod_run):
    setup = written(prod_run.one(INSTANCE, "us-east-web-0"))["/etc/woocommerce-dr/primary-setup.sql"]
    settings = database_settings(prod_run.one(INSTANCE, "us-east-web-1"))
    assert setup["permissions"] == "0600"
    assert (f"CREATE USER IF NOT EXISTS 'woocommerce'@'%' IDENTIFIED BY '{settings['password']}' REQUIRE SSL;"
            in setup["content"])
    assert "GRANT ALL PRIVILEGES ON `woocommerce`.* TO 'woocommerce'@'%';" in setup["content"]


@pytest.mark.parametrize(("run_name", "name"), [("prod_run", "mysql-eu-west.db.shop.example.com"),
                                                ("dr_test_run", "mysql-eu-west.db.dr-test.shop.example.com")])
def test_replica_regions_reach_their_replica_by_certificate_name_at_its_computed_private_ip(request, run_name, name):
    run = request.getfixturevalue(run_name)
    replica = run.one(INSTANCE, "db-replica-eu-west")
    for node in in_region(run, INSTANCE, "eu-west"):
        assert database_settings(node)["host"] == name
        assert database_settings(node)["user"] == "woocommerce"
        assert hosts_lines(node) == [f"{replica.outputs['privateIpAddress']} {name}"]


def test_self_managed_primary_is_reached_by_certificate_name_at_its_computed_private_ip(dr_test_run):
    primary = dr_test_run.one(INSTANCE, "db-primary-us-east")
    (node,) = in_region(dr_test_run, INSTANCE, "us-east")
    assert database_settings(node)["host"] == "mysql-us-east.db.dr-test.shop.example.com"
    assert hosts_lines(node) == [f"{primary.outputs['privateIpAddress']} mysql-us-east.db.dr-test.shop.example.com"]


def test_each_region_trusts_its_own_databases_ca(prod_run, dr_test_run):
    (db,) = prod_run.of_type(MYSQL)
    managed_ca = base64.b64decode(db.outputs["caCert"].value).decode()
    server_ca = prod_run.one("tls:index/selfSignedCert:SelfSignedCert", "db-ca").outputs["certPem"]
    for region, ca in (("us-east", managed_ca), ("eu-west", server_ca)):
        for node in in_region(prod_run, INSTANCE, region):
            assert written(node)["/etc/woocommerce-dr/database-ca.pem"]["content"] == ca


# --- the heartbeat writer ---------------------------------------------------------------------------

def test_managed_mode_runs_one_heartbeat_writer_on_the_primary_regions_first_node(prod_run, three_region_run):
    assert heartbeat_nodes(prod_run) == ["us-east-web-0"]
    assert heartbeat_nodes(three_region_run) == ["us-east-web-0"]


def test_the_heartbeat_writer_reaches_the_managed_primary_and_starts_before_the_site_bootstrap(prod_run):
    (db,) = prod_run.of_type(MYSQL)
    config = cloud_config(prod_run.one(INSTANCE, "us-east-web-0"))
    files = written(prod_run.one(INSTANCE, "us-east-web-0"))
    cnf, admin = files["/etc/woocommerce-dr/heartbeat.cnf"], files["/etc/woocommerce-dr/primary-admin.cnf"]
    assert cnf["permissions"] == admin["permissions"] == "0600"
    assert f"host = {db.outputs['hostPrimary']}" in cnf["content"]
    assert "user = drctl_heartbeat" in cnf["content"]  # the writer's own account, created by the setup
    assert f'password = "{db.outputs["rootPassword"].value}"' in admin["content"]
    assert db.outputs["rootPassword"].value not in cnf["content"]
    assert set(files) >= {f"/etc/systemd/system/{unit}" for unit in heartbeat.heartbeat_units()}
    assert set(heartbeat.HEARTBEAT_WRITER_PACKAGES) <= set(config["packages"])
    assert config["runcmd"] == [*map(list, heartbeat.HEARTBEAT_WRITER_RUNCMD), *map(list, media_storage.RUNCMD),
                                ["/usr/local/sbin/woocommerce-dr-bootstrap"]]


def test_a_self_managed_primary_writes_its_own_heartbeat(dr_test_run):
    assert heartbeat_nodes(dr_test_run) == []
    for node in web_nodes(dr_test_run):
        config = cloud_config(node)
        assert "mysql-client" not in config["packages"]
        assert config["runcmd"] == [*map(list, media_storage.RUNCMD), ["/usr/local/sbin/woocommerce-dr-bootstrap"]]


def test_web_user_data_carrying_database_credentials_stays_secret(prod_run, dr_test_run):
    for run in (prod_run, dr_test_run):
        for node in web_nodes(run):
            assert isinstance(node.inputs["metadatas"][0]["userData"], Secret)


@pytest.mark.integration
@pytest.mark.parametrize(("run_name", "node"), [("prod_run", "us-east-web-0"), ("prod_run", "eu-west-web-0"),
                                                ("dr_test_run", "us-east-web-0")])
def test_wired_web_node_user_data_passes_cloud_init_schema(request, tmp_path, run_name, node):
    path = tmp_path / "user-data.yaml"
    path.write_text(web_node.decode_user_data(user_data(request.getfixturevalue(run_name).one(INSTANCE, node))))
    proc = subprocess.run([require("cloud-init"), "schema", "-c", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
