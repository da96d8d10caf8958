"""The database tier under the mock engine: managed and self-managed primaries, one replica Linode
per non-primary region wired to the primary's *computed* host, allow-lists and firewalls of computed
addresses only, and secrets that stay secret."""

import ast
import base64
import ipaddress
import json
import sys

import pytest

from components import mysql_cloud_init as ci
from components.database import host_cidrs
from drctl.plan.engine import Secret, unwrap
from drctl.stack.files import REPO_ROOT, config_from_mapping, project_name
from tests.support import harness
from tests.support.mysql_linodes import bootstrap, public_ip, written

MYSQL = "linode:index/databaseMysqlV2:DatabaseMysqlV2"
ACCESS = "linode:index/databaseAccessControls:DatabaseAccessControls"
INSTANCE = "linode:index/instance:Instance"
FIREWALL = "linode:index/firewall:Firewall"
PASSWORD = "random:index/randomPassword:RandomPassword"


def mysql_rule(firewall) -> dict | None:
    return next((r for r in unwrap(firewall.inputs["inbounds"]) if r["ports"] == "3306"), None)


# --- managed primary ------------------------------------------------------------------------------

def test_managed_primary_is_a_mysql_8_cluster_in_the_primary_region(prod_run):
    (db,) = prod_run.of_type(MYSQL)
    assert db.inputs["engineId"] == "mysql/8"
    assert db.inputs["region"] == "us-east"
    assert db.inputs["type"] == "g6-dedicated-2"
    assert db.inputs["clusterSize"] == 3
    assert db.inputs["engineConfigBinlogRetentionPeriod"] == 86400
    assert db.inputs["engineConfigMysqlSqlRequirePrimaryKey"] is False
    assert db.inputs["updates"] == {"dayOfWeek": 7, "hourOfDay": 3, "duration": 4, "frequency": "weekly"}
    assert "allowLists" not in db.inputs  # kept in DatabaseAccessControls


def test_maintenance_window_and_cluster_size_follow_config():
    stack = harness.stack_file("prod", database={
        "mode": "managed", "maintenanceDay": "tuesday", "maintenanceHour": 22, "clusterSize": 1,
    })
    (db,) = harness.run_ok(stack).of_type(MYSQL)
    assert db.inputs["updates"]["dayOfWeek"] == 2 and db.inputs["updates"]["hourOfDay"] == 22
    assert db.inputs["engineConfigBinlogRetentionPeriod"] == 86400
    assert db.inputs["clusterSize"] == 1


def test_allow_list_is_exactly_the_primary_regions_web_nodes_and_the_replica(wired_prod):
    (access,) = wired_prod.of_type(ACCESS)
    (db,) = wired_prod.of_type(MYSQL)
    web = [public_ip(wired_prod.one(INSTANCE, f"web-us-east-{i}")) for i in range(2)]
    replica = public_ip(wired_prod.one(INSTANCE, "db-replica-eu-west"))
    assert sorted(access.inputs["allowLists"]) == sorted(f"{ip}/32" for ip in [*web, replica])
    assert access.inputs["databaseType"] == "mysql"
    assert access.inputs["databaseId"] == int(db.id)


def test_allow_list_admits_no_eu_web_node_and_never_a_network(wired_prod):
    (access,) = wired_prod.of_type(ACCESS)
    eu_web = {public_ip(wired_prod.one(INSTANCE, f"web-eu-west-{i}")) for i in range(2)}
    assert not eu_web & {c.split("/")[0] for c in access.inputs["allowLists"]}
    assert all(ipaddress.ip_network(c).num_addresses == 1 for c in access.inputs["allowLists"])


def test_the_program_admits_the_web_tiers_computed_primary_region_nodes(prod_run):
    # __main__ hands the web tier's addresses to the database tier through deferred Outputs.
    (access,) = prod_run.of_type(ACCESS)
    web = [public_ip(prod_run.one(INSTANCE, f"us-east-web-{i}")) for i in range(2)]
    replica = public_ip(prod_run.one(INSTANCE, "db-replica-eu-west"))
    assert sorted(access.inputs["allowLists"]) == sorted(f"{ip}/32" for ip in [*web, replica])


def test_the_program_opens_each_mysql_linode_to_its_regions_web_tier(dr_test_run):
    for region in ("us-east", "eu-west"):
        web = dr_test_run.one(INSTANCE, f"{region}-web-0").outputs["privateIpAddress"]
        assert f"{web}/32" in mysql_rule(dr_test_run.one(FIREWALL, f"db-{region}-firewall"))["ipv4s"]


# --- replicas -------------------------------------------------------------------------------------

def test_one_replica_linode_per_non_primary_region(three_region_run):
    replicas = [i for i in three_region_run.of_type(INSTANCE) if "role:database-replica" in i.inputs["tags"]]
    assert sorted(i.inputs["region"] for i in replicas) == ["ap-south", "eu-west"]
    assert all(i.inputs["type"] == "g6-standard-2" and i.inputs["privateIp"] for i in replicas)
    assert [bootstrap(three_region_run.one(INSTANCE, f"db-replica-{r}"))["serverId"]
            for r in ("eu-west", "ap-south")] == [2, 3]


@pytest.mark.parametrize("region", ["eu-west", "ap-south"])
def test_replica_user_data_carries_the_primarys_computed_host_and_port(three_region_run, region):
    (db,) = three_region_run.of_type(MYSQL)
    config = bootstrap(three_region_run.one(INSTANCE, f"db-replica-{region}"))
    assert config["source"]["host"] == db.outputs["hostPrimary"]
    assert config["source"]["port"] == db.outputs["port"] == 11876
    assert config["source"]["admin"]["name"] == "akmadmin"
    assert config["source"]["admin"]["password"] == unwrap(db.outputs["rootPassword"])
    assert config["source"]["requiredPrivileges"] == ["REPLICATION SLAVE", "REPLICATION CLIENT"]


def test_replica_trusts_the_managed_ca_for_its_source(prod_run):
    (db,) = prod_run.of_type(MYSQL)
    replica = prod_run.one(INSTANCE, "db-replica-eu-west")
    assert written(replica, ci.SOURCE_CA) == base64.b64decode(unwrap(db.outputs["caCert"])).decode()


def test_replica_settings(three_region_run):
    cnf = written(three_region_run.one(INSTANCE, "db-replica-ap-south"), "/etc/mysql/mysql.conf.d/zz-woocommerce-dr.cnf")
    settings = dict(line.split(" = ", 1) for line in cnf.splitlines() if " = " in line and not line.startswith("#"))
    assert settings["server_id"] == "3"
    assert settings["read_only"] == settings["super_read_only"] == "ON"
    assert settings["gtid_mode"] == settings["enforce_gtid_consistency"] == settings["log_replica_updates"] == "ON"
    assert settings["relay_log"] == "mysql-relay-bin"
    assert settings["replica_net_timeout"] == "10"
    assert settings["require_secure_transport"] == "ON"


def test_replicas_run_the_repositorys_replication_code(prod_run):
    replica = prod_run.one(INSTANCE, "db-replica-eu-west")
    for name in ci.SHIPPED_CODE:
        assert written(replica, f"{ci.CODE_DIR}/{name}") == (REPO_ROOT / "drctl" / name).read_text()


def shipped_imports(name: str) -> tuple[set[str], set[str]]:
    """What a shipped file imports: the top-level packages outside drctl, and the drctl files that
    takes, named as in SHIPPED_CODE (the packages' __init__.py included)."""
    modules = set()
    for node in ast.walk(ast.parse((ci.DRCTL / name).read_text())):
        if isinstance(node, ast.Import):
            modules |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:  # `from drctl.mysql import gtid` names a module too
            modules |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    outside = {m.split(".")[0] for m in modules} - {"drctl"}
    needed = set()
    for module in (m for m in modules if m.split(".")[0] == "drctl"):
        parts = module.split(".")[1:]
        for depth in range(len(parts) + 1):
            path = "/".join(parts[:depth])
            needed |= {c for c in (f"{path}.py", f"{path}/__init__.py".lstrip("/")) if (ci.DRCTL / c).is_file()}
    return outside, needed


@pytest.mark.parametrize("name", ci.SHIPPED_CODE)
def test_shipped_code_needs_nothing_but_itself_python_and_pymysql(name):
    outside, needed = shipped_imports(name)
    assert needed - set(ci.SHIPPED_CODE) == set()
    assert outside - set(sys.stdlib_module_names) - {"__future__", "pymysql"} == set()


def test_the_mysql_package_init_stays_empty():
    # The servers get only SHIPPED_CODE: an __init__ importing the rest of the package would fail there.
    assert (ci.DRCTL / "mysql" / "__init__.py").read_text() == ""


def test_user_data_fits_linodes_limit(three_region_run, dr_test_run):
    for run in (three_region_run, dr_test_run):
        for instance in run.of_type(INSTANCE):
            encoded = unwrap(instance.inputs["metadatas"])[0]["userData"]
            assert len(encoded) <= ci.LINODE_USER_DATA_LIMIT, instance.name


def test_database_user_data_is_not_rewritten_by_later_deploys(prod_run):
    assert prod_run.one(INSTANCE, "db-replica-eu-west").ignore_changes == ("metadatas",)


# --- firewalls ------------------------------------------------------------------------------------

def test_replica_firewall_admits_only_its_regions_web_nodes_on_3306(wired_prod):
    firewall = wired_prod.one(FIREWALL, "db-eu-west-firewall")
    (replica,) = wired_prod.outputs["database"]["replicas"]
    assert firewall.inputs["linodes"] == [replica["instanceId"]] == [int(wired_prod.one(INSTANCE, "db-replica-eu-west").id)]
    assert firewall.inputs["inboundPolicy"] == "DROP"
    eu_web = sorted(f"{wired_prod.one(INSTANCE, f'web-eu-west-{i}').outputs['privateIpAddress']}/32" for i in range(2))
    assert sorted(mysql_rule(firewall)["ipv4s"]) == eu_web
    assert [r["ports"] for r in unwrap(firewall.inputs["inbounds"])] == ["3306"]  # no SSH: adminCidrs is empty


def test_ssh_only_from_admin_cidrs():
    stack = harness.stack_file("prod", access={"adminCidrs": ["203.0.113.0/24", "2001:db8::/48"], "sshKeys": []})
    firewall = harness.run_ok(stack).one(FIREWALL, "db-eu-west-firewall")
    assert [r for r in unwrap(firewall.inputs["inbounds"]) if r["ports"] == "22"] == [
        {"label": "ssh-from-admins-ipv4", "action": "ACCEPT", "protocol": "TCP", "ports": "22",
         "ipv4s": ["203.0.113.0/24"]},
        {"label": "ssh-from-admins-ipv6", "action": "ACCEPT", "protocol": "TCP", "ports": "22",
         "ipv6s": ["2001:db8::/48"]},
    ]


def test_no_firewall_rule_is_open_to_the_world(three_region_run, dr_test_run, wired_dr_test):
    for run in (three_region_run, dr_test_run, wired_dr_test):
        for firewall in run.of_type(FIREWALL):
            for rule in unwrap(firewall.inputs["inbounds"]):
                for cidr in rule.get("ipv4s", []) + rule.get("ipv6s", []):
                    assert ipaddress.ip_network(cidr).prefixlen > 0


def test_host_cidrs_refuses_anything_but_single_addresses():
    assert host_cidrs(["10.0.0.2", "10.0.0.1", "10.0.0.2", "2001:db8::1"]) == [
        "10.0.0.1/32", "10.0.0.2/32", "2001:db8::1/128"]
    with pytest.raises(ValueError):
        host_cidrs(["0.0.0.0/0"])


# --- self-managed (dr-test) -----------------------------------------------------------------------

def test_self_managed_creates_a_primary_linode_and_no_managed_database(dr_test_run):
    assert dr_test_run.of_type(MYSQL) == [] and dr_test_run.of_type(ACCESS) == []
    primary = dr_test_run.one(INSTANCE, "db-primary-us-east")
    assert primary.inputs["region"] == "us-east" and primary.inputs["type"] == "g6-standard-1"
    assert "role:database-primary" in primary.inputs["tags"]
    config = bootstrap(primary)
    assert config["role"] == "primary" and config["serverId"] == 1 and config["heartbeatEvent"] is True
    assert config["replication"]["name"] == "replicator"


def test_self_managed_primary_settings(dr_test_run):
    cnf = written(dr_test_run.one(INSTANCE, "db-primary-us-east"), "/etc/mysql/mysql.conf.d/zz-woocommerce-dr.cnf")
    for line in ("server_id = 1", "log_bin = mysql-bin", "binlog_format = ROW", "gtid_mode = ON",
                 "enforce_gtid_consistency = ON", "binlog_expire_logs_seconds = 604800", "event_scheduler = ON"):
        assert line in cnf.splitlines()
    assert "read_only" not in cnf


def test_self_managed_binlog_retention_beyond_a_week_follows_config():
    run = harness.run_ok(harness.stack_file("dr-test", database={"mode": "self-managed",
                                                                "binlogRetentionSeconds": 1209600}))
    for name in ("db-primary-us-east", "db-replica-eu-west"):
        cnf = written(run.one(INSTANCE, name), "/etc/mysql/mysql.conf.d/zz-woocommerce-dr.cnf")
        assert "binlog_expire_logs_seconds = 1209600" in cnf.splitlines(), name


def test_self_managed_replica_reaches_the_primary_by_its_published_name(dr_test_run):
    replica = dr_test_run.one(INSTANCE, "db-replica-eu-west")
    config = bootstrap(replica)
    assert config["source"]["host"] == "mysql-us-east.db.dr-test.shop.example.com"
    assert config["source"]["port"] == 3306
    assert config["source"]["replication"]["name"] == "replicator"
    assert config["source"]["requiredPrivileges"] == ["REPLICATION SLAVE"]


def test_self_managed_primary_firewall_admits_web_nodes_and_the_replica(wired_dr_test):
    firewall = wired_dr_test.one(FIREWALL, "db-us-east-firewall")
    web = wired_dr_test.one(INSTANCE, "web-us-east-0").outputs["privateIpAddress"]
    replica = public_ip(wired_dr_test.one(INSTANCE, "db-replica-eu-west"))
    assert sorted(mysql_rule(firewall)["ipv4s"]) == sorted([f"{web}/32", f"{replica}/32"])
    assert firewall.inputs["linodes"] == [int(wired_dr_test.outputs["database"]["primary"]["instanceId"])]


def test_self_managed_replica_firewall_admits_the_primary_for_failback(wired_dr_test):
    firewall = wired_dr_test.one(FIREWALL, "db-eu-west-firewall")
    primary = public_ip(wired_dr_test.one(INSTANCE, "db-primary-us-east"))
    assert f"{primary}/32" in mysql_rule(firewall)["ipv4s"]


def test_server_certificates_name_the_server(dr_test_run):
    csr = dr_test_run.one("tls:index/certRequest:CertRequest", "db-eu-west-csr")
    assert csr.inputs["dnsNames"] == ["mysql-eu-west.db.dr-test.shop.example.com"]
    assert csr.inputs["subject"]["commonName"] == "mysql-eu-west.db.dr-test.shop.example.com"


# --- secrets and outputs --------------------------------------------------------------------------

@pytest.mark.parametrize("run_name", ["prod_run", "dr_test_run"])
def test_every_password_is_secret(request, run_name):
    run = request.getfixturevalue(run_name)
    for password in run.of_type(PASSWORD):
        assert isinstance(password.outputs["result"], Secret), password.name
    for instance in run.of_type(INSTANCE):
        assert isinstance(instance.inputs["rootPass"], Secret)
        assert isinstance(instance.inputs["metadatas"][0]["userData"], Secret)  # holds passwords


@pytest.mark.parametrize("run_name", ["wired_prod", "wired_dr_test"])
def test_the_tiers_outputs_keep_credentials_secret(request, run_name):
    database = request.getfixturevalue(run_name).outputs["database"]
    for secret in (database["primary"]["adminPassword"], database["primary"]["caCert"],
                   database["replicaAdminPassword"], database["serverCaCert"]):
        assert isinstance(secret, Secret)


def test_outputs_name_primary_and_replicas(wired_prod):
    (db,) = wired_prod.of_type(MYSQL)
    replica = wired_prod.one(INSTANCE, "db-replica-eu-west")
    out = wired_prod.outputs["database"]
    assert out["mode"] == "managed"
    assert out["primary"]["host"] == db.outputs["hostPrimary"] and out["primary"]["port"] == 11876
    assert unwrap(out["primary"]["adminUser"]) == "akmadmin"
    assert out["primary"]["managedDatabaseId"] == int(db.id)
    assert out["primary"]["instanceId"] is None  # managed: no Linode to fence
    assert out["replicas"] == [{
        "region": "eu-west", "instanceId": int(replica.id), "publicIp": public_ip(replica),
        "privateIp": replica.outputs["privateIpAddress"], "serverId": 2, "port": 3306,
        "host": "mysql-eu-west.db.shop.example.com",
        "firewallId": int(wired_prod.one(FIREWALL, "db-eu-west-firewall").id),
    }]
    assert out["heartbeat"] == "web-node timer"


@pytest.mark.parametrize("run_name", ["wired_prod", "wired_dr_test"])
def test_outputs_fit_the_drctl_stack_outputs_contract(request, run_name):
    from drctl.stack.outputs import DatabaseOut

    out = DatabaseOut.model_validate(unwrap(request.getfixturevalue(run_name).outputs["database"]))
    assert [r.region for r in out.replicas] == ["eu-west"]
    assert out.replica_admin_user == "drctl"


def test_self_managed_outputs_name_the_primary_linode_drctl_fences(wired_dr_test):
    primary = wired_dr_test.outputs["database"]["primary"]
    assert primary["instanceId"] == int(wired_dr_test.one(INSTANCE, "db-primary-us-east").id)
    assert primary["firewallId"] == int(wired_dr_test.one(FIREWALL, "db-us-east-firewall").id)
    assert primary["address"] == public_ip(wired_dr_test.one(INSTANCE, "db-primary-us-east"))
    assert primary["managedDatabaseId"] is None


def test_endpoints_per_region(wired_prod):
    (db,) = wired_prod.of_type(MYSQL)
    replica = wired_prod.one(INSTANCE, "db-replica-eu-west")
    endpoints = wired_prod.outputs["endpoints"]
    assert endpoints["us-east"]["role"] == "primary"
    assert endpoints["us-east"]["host"] == db.outputs["hostPrimary"] and endpoints["us-east"]["address"] is None
    assert endpoints["eu-west"]["role"] == "replica"
    assert endpoints["eu-west"]["host"] == "mysql-eu-west.db.shop.example.com"
    assert endpoints["eu-west"]["address"] == replica.outputs["privateIpAddress"]
    assert endpoints["eu-west"]["user"] == "woocommerce"
    assert all(isinstance(e["password"], Secret) for e in endpoints.values())


def test_self_managed_primary_endpoint_is_the_private_address(wired_dr_test):
    primary = wired_dr_test.one(INSTANCE, "db-primary-us-east")
    endpoint = wired_dr_test.outputs["endpoints"]["us-east"]
    assert endpoint["address"] == primary.outputs["privateIpAddress"]
    assert (endpoint["user"], endpoint["port"]) == ("woocommerce", 3306)


def test_the_plan_shows_no_secret(capsys):
    from drctl.cli import main

    for stack in ("prod", "dr-test"):
        assert main(["plan", "-s", stack, "-o", "json"]) == 0
        out = capsys.readouterr().out
        assert "BEGIN" not in out
        assert json.loads(out)["outputs"]["drctl"] == "[secret]"  # the database's part is in there


def test_a_database_label_too_long_for_linode_names_the_stack_instead_of_being_cut():
    # Cut to 32 characters, "<stack>-mysql-ap-south" and "<stack>-mysql-ap-southeast" would collide.
    stack = config_from_mapping(project_name(), "production-europe-2", harness.stack_mapping(
        "dr-test", regions=[{"region": "ap-south"}, {"region": "ap-southeast"}]))
    result = harness.run(stack)
    assert result.error == (
        "the firewall label 'production-europe-2-mysql-ap-south' is 34 characters (allowed: at most 32); "
        "use a shorter stack name"
    )
