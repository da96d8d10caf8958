"""The stack output `drctl`: one secret, valid against drctl's contract model for both stacks, both
traffic modes and three regions, carrying the *computed* ids and addresses, readable by drctl from
`pulumi stack output --json --show-secrets` or `--outputs FILE`, and never printed by `drctl plan`."""

import base64
import json
from functools import cache

import pulumi
import pytest

from components.drctl_output import check_known_parts
from drctl.cli import main
from drctl.plan.command import plan_document, render_text
from drctl.plan.engine import Secret, unwrap
from drctl.stack.outputs import StackOutputs, load_outputs, parse_outputs
from tests.support import harness

NB = "linode:index/nodeBalancer:NodeBalancer"
POOL = "cloudflare:index/loadBalancerPool:LoadBalancerPool"
LB = "cloudflare:index/loadBalancer:LoadBalancer"
MONITOR = "cloudflare:index/loadBalancerMonitor:LoadBalancerMonitor"
DNS = "cloudflare:index/dnsRecord:DnsRecord"
INSTANCE = "linode:index/instance:Instance"
FIREWALL = "linode:index/firewall:Firewall"
MYSQL = "linode:index/databaseMysqlV2:DatabaseMysqlV2"


# Load-balancer mode: the session's runs of both stack files and a 3-region variant (conftest.py).
LOAD_BALANCER = {"prod": "prod_run", "dr-test": "dr_test_run", "three-regions": "three_region_run"}
DNS_FAILOVER = ("prod", "dr-test")


@cache
def dns_failover_run(stack: str):
    return harness.run_ok(harness.dns_failover(stack))


@pytest.fixture(params=[*LOAD_BALANCER, *(f"{s}-dns-failover" for s in DNS_FAILOVER)])
def run(request):
    if request.param in LOAD_BALANCER:
        return request.getfixturevalue(LOAD_BALANCER[request.param])
    return dns_failover_run(request.param.removesuffix("-dns-failover"))


@pytest.fixture(params=list(LOAD_BALANCER))
def lb_run(request):
    return request.getfixturevalue(LOAD_BALANCER[request.param])


@pytest.fixture(params=DNS_FAILOVER)
def dns_run(request):
    return dns_failover_run(request.param)


def contract(run) -> StackOutputs:
    return parse_outputs(unwrap(run.outputs["drctl"]), run.stack.stack)


def nodebalancer(run, region):
    [nb] = [r for r in run.of_type(NB) if r.inputs["region"] == region]
    return nb


# --- shape ------------------------------------------------------------------------------------------

def test_the_drctl_output_is_one_secret_that_fits_the_contract(run):
    assert isinstance(run.outputs["drctl"], Secret)
    out = contract(run)
    config = harness.validate(run)
    assert (out.project, out.stack, out.domain) == ("woocommerce-dr", run.stack.stack, config.domain)
    assert out.traffic_mode == config.traffic.mode and out.health_path == "/healthz"
    assert [r.region for r in out.regions] == [r.region for r in config.regions]
    assert [r.role for r in out.regions] == ["primary"] + ["dr"] * (len(config.regions) - 1)
    assert out.objectives.worst_case_detection_seconds == config.traffic.monitor.worst_case_detection_seconds
    assert out.monitor.consecutive_down == config.traffic.monitor.consecutive_down


def test_regions_carry_the_computed_nodebalancers_instances_and_firewalls(run):
    for region in contract(run).regions:
        nb = nodebalancer(run, region.region)
        assert (region.node_balancer.id, region.node_balancer.ipv4, region.node_balancer.ipv6) == (
            int(nb.id), nb.outputs["ipv4"], nb.outputs["ipv6"])
        assert region.node_balancer.hostname == nb.outputs["hostname"]
        nodes = [run.one(INSTANCE, f"{region.region}-web-{i}") for i in range(len(region.web_instances))]
        assert [(w.id, w.label, w.private_ip) for w in region.web_instances] == [
            (int(i.id), i.inputs["label"], i.outputs["privateIpAddress"]) for i in nodes]
        assert region.web_firewall_id == int(run.one(FIREWALL, f"{region.region}-web-firewall").id)
        assert region.node_balancer_firewall_id == int(run.one(FIREWALL, f"{region.region}-nb-firewall").id)


def test_human_friendly_outputs_are_the_computed_nodebalancer_ips(run):
    ips = {r.region: nodebalancer(run, r.region).outputs["ipv4"] for r in contract(run).regions}
    assert run.outputs["nodeBalancerIps"] == ips
    assert run.outputs["primaryNodeBalancerIp"] == ips[contract(run).regions[0].region]
    assert run.outputs["url"] == f"https://{contract(run).domain}"


def test_load_balancer_mode_names_the_computed_pools_monitor_and_load_balancer(lb_run):
    run, out = lb_run, contract(lb_run)
    pools = {p.inputs["name"]: p.id for p in run.of_type(POOL)}
    assert [r.pool_id for r in out.regions] == [pools[f"{out.stack}-{r.region}"] for r in out.regions]
    [lb], [monitor] = run.of_type(LB), run.of_type(MONITOR)
    assert (out.cloudflare.load_balancer_id, out.cloudflare.monitor_id) == (lb.id, monitor.id)
    assert out.cloudflare.dns_record_ids == ()


def test_dns_failover_mode_names_the_records_drctl_watch_repoints(dns_run):
    run, out = dns_run, contract(dns_run)
    shop = [r.id for r in run.of_type(DNS) if r.inputs["name"] == out.domain]
    assert len(shop) == 2 and sorted(out.cloudflare.dns_record_ids) == sorted(shop)
    assert out.cloudflare.load_balancer_id is None and out.cloudflare.monitor_id is None
    assert all(r.pool_id is None for r in out.regions)
    assert out.cloudflare.zone_id == harness.validate(run).traffic.zone_id


# --- the database's part ----------------------------------------------------------------------------

def test_every_non_primary_region_has_its_replica_with_computed_addresses(run):
    out = contract(run)
    assert [r.region for r in out.database.replicas] == [r.region for r in out.regions[1:]]
    for index, replica in enumerate(out.database.replicas, start=2):
        instance = run.one(INSTANCE, f"db-replica-{replica.region}")
        assert (replica.instance_id, replica.private_ip, replica.server_id, replica.port) == (
            int(instance.id), instance.outputs["privateIpAddress"], index, 3306)
        assert replica.public_ip in instance.outputs["ipv4s"] and not replica.public_ip.startswith("192.168.")
        assert replica.firewall_id == int(run.one(FIREWALL, f"db-{replica.region}-firewall").id)
        assert replica.host == f"mysql-{replica.region}.db.{out.domain}"


def test_drctl_gets_credentials_for_every_database_server(prod_run, dr_test_run):
    prod, dr_test = contract(prod_run), contract(dr_test_run)
    (db,) = prod_run.of_type(MYSQL)
    managed = prod.database
    assert (managed.mode, managed.primary.admin_user) == ("managed", "akmadmin")
    assert managed.primary.admin_password.get_secret_value() == db.outputs["rootPassword"].value
    assert managed.primary.ca_cert.get_secret_value() == base64.b64decode(db.outputs["caCert"].value).decode()
    assert managed.primary.managed_database_id == int(db.id) and managed.primary.instance_id is None
    assert managed.heartbeat == "web-node timer"
    for out in (prod, dr_test):
        assert out.database.replica_admin_user == "drctl"
        assert len(out.database.replica_admin_password.get_secret_value()) == 40
        assert out.database.server_ca_cert.get_secret_value().startswith("-----BEGIN CERTIFICATE-----")
    own = dr_test.database.primary
    assert (dr_test.database.mode, own.admin_user, own.host) == (
        "self-managed", "drctl", "mysql-us-east.db.dr-test.shop.example.com")
    assert own.instance_id and own.firewall_id and own.address and own.managed_database_id is None
    assert dr_test.database.heartbeat == "event scheduler"


# --- how drctl reads it -----------------------------------------------------------------------------

def test_drctl_reads_the_saved_output_of_pulumi_stack_output(tmp_path, prod_run):
    run = prod_run
    saved = {key: unwrap(value) for key, value in run.outputs.items()}  # `--json --show-secrets`
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(saved))
    assert load_outputs(outputs_file=str(path)) == contract(run)


def test_secrets_stay_hidden_in_drctl_outside_the_export(run):
    out = contract(run)
    password = out.database.primary.admin_password.get_secret_value()
    assert password not in repr(out) and password not in out.model_dump_json()
    assert out.export()["database"]["primary"]["adminPassword"] == password


# --- the plan never shows a secret ------------------------------------------------------------------

def passwords(run) -> list[str]:
    """(The CA certificates in the contract are SecretStr too, but public: the plan shows them as
    the inputs of the resources that sign with them.)"""
    database = contract(run).database
    return [database.primary.admin_password.get_secret_value(), database.replica_admin_password.get_secret_value(),
            unwrap(run.outputs["wordpressAdminPassword"])]


@pytest.mark.parametrize("stack", ["prod", "dr-test"])
def test_drctl_plan_shows_the_drctl_output_as_a_secret_only(capsys, stack):
    assert main(["plan", "-s", stack, "-o", "json"]) == 0
    outputs = json.loads(capsys.readouterr().out)["outputs"]
    assert outputs["drctl"] == "[secret]"
    assert set(outputs) == {"drctl", "url", "primaryNodeBalancerIp", "nodeBalancerIps", "mediaBuckets",
                           "wordpressAdminPassword"}
    assert main(["plan", "-s", stack]) == 0
    assert "    drctl: [secret]" in capsys.readouterr().out.splitlines()


def test_a_plan_of_computed_values_prints_no_secret_in_text_or_json(run):
    # The plan's renderer run over an *applied* program, where every secret has a value to leak.
    text, document = render_text(run), json.dumps(plan_document(run))
    for value in passwords(run):
        assert value not in text and value not in document


# --- a mismatch fails the preview -------------------------------------------------------------------

def test_a_document_that_does_not_fit_the_contract_fails_before_anything_is_known(run):
    document = unwrap(run.outputs["drctl"])
    document["regions"][0]["nodeBalancer"]["ipv5"] = "45.79.0.1"
    del document["healthPath"]
    document["database"]["replicas"][0]["serverId"] = "two"
    with pytest.raises(pulumi.RunError) as raised:
        check_known_parts(document)
    assert str(raised.value).splitlines() == [
        "the drctl stack output does not match drctl.stack.outputs.StackOutputs:",
        "drctl.healthPath: Field required",
        "drctl.regions.0.nodeBalancer.ipv5: Extra inputs are not permitted",
        "drctl.database.replicas.0.serverId: Input should be a valid integer, unable to parse string as an integer",
    ]


@pytest.mark.parametrize("stack", ["prod", "dr-test"])
def test_the_preview_checks_what_it_knows_and_leaves_computed_values_to_the_apply(stack):
    # Every id and address is an unknown Output in a first preview; the document still passes.
    run = harness.run(stack, preview=True)
    assert run.error is None
    assert isinstance(run.outputs["drctl"], Secret)


def test_a_computed_value_of_the_wrong_type_fails_the_apply_naming_where(monkeypatch):
    from components.web_tier import RegionalWebTier

    shaped = RegionalWebTier.outputs.fget

    def nodebalancer_id_as_an_address(tier):
        outputs = shaped(tier)
        outputs["nodeBalancer"]["id"] = tier.nodebalancer_ipv4
        return outputs

    monkeypatch.setattr(RegionalWebTier, "outputs", property(nodebalancer_id_as_an_address))
    assert harness.run("dr-test", preview=True).error is None  # a first preview cannot know the value
    assert harness.run("dr-test").error.splitlines()[1:] == [
        f"drctl.regions.{i}.nodeBalancer.id: Input should be a valid integer, unable to parse string as an integer"
        for i in (0, 1)
    ]
