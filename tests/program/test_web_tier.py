"""The regional web tier under the mock engine: what each region gets, how it is wired to computed
values, which health checks and firewall rules it carries, and what it hands to the tiers after it."""

import pytest

from drctl.plan.cloud import CLOUDFLARE_IPV4, CLOUDFLARE_IPV6
from drctl.plan.command import render_text
from drctl.plan.engine import UNKNOWN, Secret
from tests.support import harness
from tests.support.web_tier_runs import (
    COMPONENT,
    FIREWALL,
    INSTANCE,
    NB_CONFIG,
    NB_NODE,
    NODEBALANCER,
    PROGRAM,
    in_region,
    run_with,
    web_run,
)

EXPECTED_NODES = {
    "prod": {"us-east": 2, "eu-west": 2},
    "dr-test": {"us-east": 1, "eu-west": 1},
    "three-regions": {"us-east": 2, "eu-west": 2, "ap-south": 1},
}


@pytest.mark.parametrize("variant", sorted(EXPECTED_NODES))
def test_each_region_gets_its_configured_number_of_web_nodes(variant):
    run = web_run(variant)
    assert {r.name for r in run.of_type(COMPONENT)} == set(EXPECTED_NODES[variant])
    for region, count in EXPECTED_NODES[variant].items():
        instances = in_region(run, INSTANCE, region)
        assert sorted(i.name for i in instances) == [f"{region}-web-{i}" for i in range(count)]
        assert {i.inputs["region"] for i in instances} == {region}


@pytest.mark.parametrize("variant", sorted(EXPECTED_NODES))
def test_each_region_gets_one_nodebalancer_with_tcp_configs_for_443_and_80(variant):
    run = web_run(variant)
    for region, count in EXPECTED_NODES[variant].items():
        [nodebalancer] = in_region(run, NODEBALANCER, region)
        assert nodebalancer.inputs["region"] == region
        configs = in_region(run, NB_CONFIG, region)
        assert sorted((c.inputs["port"], c.inputs["protocol"]) for c in configs) == [(80, "tcp"), (443, "tcp")]
        assert {c.inputs["nodebalancerId"] for c in configs} == {int(nodebalancer.id)}
        assert len(in_region(run, NB_NODE, region)) == 2 * count


@pytest.mark.parametrize("variant", sorted(EXPECTED_NODES))
def test_every_web_node_is_a_backend_at_its_computed_private_ip_on_both_ports(variant):
    run = web_run(variant)
    for region in EXPECTED_NODES[variant]:
        configs = {c.inputs["port"]: int(c.id) for c in in_region(run, NB_CONFIG, region)}
        for instance in in_region(run, INSTANCE, region):
            for port in (443, 80):
                node = run.one(NB_NODE, f"{region}-nb-{port}-{instance.name.removeprefix(region + '-')}")
                assert node.inputs["address"] == f"{instance.outputs['privateIpAddress']}:{port}"
                assert node.inputs["configId"] == configs[port]
                assert node.inputs["mode"] == "accept"


def test_nodebalancer_checks_default_to_tcp_every_10s_timeout_5s_3_attempts():
    for config in web_run("dr-test").of_type(NB_CONFIG):
        assert config.inputs["check"] == "connection"
        assert config.inputs["checkInterval"] == 10
        assert config.inputs["checkTimeout"] == 5
        assert config.inputs["checkAttempts"] == 3
        assert config.inputs["checkPassive"] is True
        assert config.inputs["algorithm"] == "roundrobin"
        assert "checkPath" not in config.inputs and "checkBody" not in config.inputs


def test_changed_check_settings_flow_through_to_every_config():
    run = run_with(nodeBalancer={
        "algorithm": "leastconn", "check": "http_body", "checkInterval": 20, "checkTimeout": 8,
        "checkAttempts": 5, "checkPath": "/healthz", "checkBody": '"db_reachable":true',
    })
    configs = run.of_type(NB_CONFIG)
    assert len(configs) == 4
    for config in configs:
        assert config.inputs["algorithm"] == "leastconn"
        assert (config.inputs["checkInterval"], config.inputs["checkTimeout"], config.inputs["checkAttempts"]) == (20, 8, 5)
        assert config.inputs["checkPassive"] is True


def test_http_checks_go_to_port_80_and_the_tls_port_keeps_a_tcp_check():
    run = run_with(nodeBalancer={"check": "http_body", "checkPath": "/healthz", "checkBody": '"db_reachable":true'})
    by_port = {}
    for config in run.of_type(NB_CONFIG):
        by_port.setdefault(config.inputs["port"], []).append(config.inputs)
    for inputs in by_port[80]:
        assert (inputs["check"], inputs["checkPath"], inputs["checkBody"]) == ("http_body", "/healthz", '"db_reachable":true')
    for inputs in by_port[443]:
        assert inputs["check"] == "connection" and "checkPath" not in inputs and "checkBody" not in inputs


def test_web_nodes_have_a_private_ip_tags_and_a_generated_secret_root_password():
    run = web_run("prod")
    instance = run.one(INSTANCE, "eu-west-web-1")
    assert instance.inputs["privateIp"] is True
    assert instance.inputs["type"] == "g6-standard-2"
    assert instance.inputs["image"] == "linode/ubuntu24.04"
    assert instance.inputs["tags"] == ["project:woocommerce-dr", "stack:prod", "region:eu-west", "role:web"]
    assert instance.inputs["label"] == "prod-eu-west-web-1"
    password = run.one("random:index/randomPassword:RandomPassword", "eu-west-web-1-root-password")
    assert instance.inputs["rootPass"] == password.outputs["result"]
    assert isinstance(instance.inputs["rootPass"], Secret)
    assert "authorizedKeys" not in instance.inputs  # access.sshKeys is empty in prod


def test_ssh_keys_from_config_are_authorized_on_every_web_node():
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDKQ ops@laptop"
    run = run_with(access={"adminCidrs": [], "sshKeys": [key]})
    assert [i.inputs["authorizedKeys"] for i in run.of_type(INSTANCE)] == [[key]] * 4


def test_web_firewall_drops_by_default_and_admits_http_only_from_the_nodebalancer_network():
    firewall = web_run("prod").one(FIREWALL, "us-east-web-firewall")
    assert firewall.inputs["inboundPolicy"] == "DROP"
    assert firewall.inputs["outboundPolicy"] == "ACCEPT"
    assert firewall.inputs["inbounds"] == [
        {"label": "http-from-nodebalancer", "action": "ACCEPT", "protocol": "TCP", "ports": "80, 443",
         "ipv4s": ["192.168.255.0/24"]},
    ]
    assert "outbounds" not in firewall.inputs


def test_ssh_is_admitted_only_from_admin_cidrs_one_rule_per_address_family():
    run = run_with(access={"adminCidrs": ["203.0.113.0/24", "2001:db8::/48", "198.51.100.7/32"], "sshKeys": []})
    inbounds = run.one(FIREWALL, "eu-west-web-firewall").inputs["inbounds"]
    assert inbounds[1:] == [
        {"label": "ssh-from-admins-ipv4", "action": "ACCEPT", "protocol": "TCP", "ports": "22",
         "ipv4s": ["203.0.113.0/24", "198.51.100.7/32"]},
        {"label": "ssh-from-admins-ipv6", "action": "ACCEPT", "protocol": "TCP", "ports": "22",
         "ipv6s": ["2001:db8::/48"]},
    ]


def test_web_firewall_is_attached_to_every_web_instance_of_its_region():
    run = web_run("three-regions")
    for region in EXPECTED_NODES["three-regions"]:
        firewall = run.one(FIREWALL, f"{region}-web-firewall")
        ids = sorted(int(i.id) for i in in_region(run, INSTANCE, region))
        assert sorted(firewall.inputs["linodes"]) == ids
        assert "nodebalancers" not in firewall.inputs


def test_nodebalancer_firewall_admits_only_cloudflare_and_is_attached_through_nodebalancers():
    run = web_run("prod")
    firewall = run.one(FIREWALL, "us-east-nb-firewall")
    nodebalancer = run.one(NODEBALANCER, "us-east-nb")
    assert firewall.inputs["nodebalancers"] == [int(nodebalancer.id)]
    assert "linodes" not in firewall.inputs
    assert firewall.inputs["inboundPolicy"] == "DROP"
    assert firewall.inputs["inbounds"] == [
        {"label": "http-from-cloudflare-ipv4", "action": "ACCEPT", "protocol": "TCP", "ports": "80, 443",
         "ipv4s": list(CLOUDFLARE_IPV4)},
        {"label": "http-from-cloudflare-ipv6", "action": "ACCEPT", "protocol": "TCP", "ports": "80, 443",
         "ipv6s": list(CLOUDFLARE_IPV6)},
    ]


def test_the_dns_failover_watchdog_may_probe_the_nodebalancers_directly():
    run = run_with(access={"watchdogCidrs": ["198.51.100.7/32", "2001:db8:7::/64"]})
    for region in ("us-east", "eu-west"):
        inbounds = run.one(FIREWALL, f"{region}-nb-firewall").inputs["inbounds"]
        assert [r["label"] for r in inbounds] == ["http-from-cloudflare-ipv4", "http-from-cloudflare-ipv6",
                                                  "http-from-watchdog-ipv4", "http-from-watchdog-ipv6"]
        assert inbounds[2:] == [
            {"label": "http-from-watchdog-ipv4", "action": "ACCEPT", "protocol": "TCP", "ports": "80, 443",
             "ipv4s": ["198.51.100.7/32"]},
            {"label": "http-from-watchdog-ipv6", "action": "ACCEPT", "protocol": "TCP", "ports": "80, 443",
             "ipv6s": ["2001:db8:7::/64"]},
        ]
        # The web nodes still take HTTP(S) from their NodeBalancer only.
        web = run.one(FIREWALL, f"{region}-web-firewall").inputs["inbounds"]
        assert [r["label"] for r in web] == ["http-from-nodebalancer"]


def test_no_instance_or_nodebalancer_sets_firewall_id():
    # firewall_id forces replacement, and a new NodeBalancer IP breaks the Cloudflare origins.
    run = web_run("prod")
    assert all("firewallId" not in r.inputs for r in run.of_type(INSTANCE) + run.of_type(NODEBALANCER))


def test_origin_certificate_is_for_the_domain_from_a_csr_signed_by_a_generated_key():
    run = web_run("dr-test")
    key = run.one("tls:index/privateKey:PrivateKey", "us-east-origin-key")
    csr = run.one("tls:index/certRequest:CertRequest", "us-east-origin-csr")
    certificate = run.one("cloudflare:index/originCaCertificate:OriginCaCertificate", "us-east-origin-certificate")
    assert key.inputs["algorithm"] == "ECDSA"
    assert csr.inputs["privateKeyPem"] == key.outputs["privateKeyPem"]
    assert isinstance(csr.inputs["privateKeyPem"], Secret)
    assert csr.inputs["dnsNames"] == ["dr-test.shop.example.com"]
    assert certificate.inputs["csr"] == csr.outputs["certRequestPem"]
    assert certificate.inputs["hostnames"] == ["dr-test.shop.example.com"]
    assert certificate.inputs["requestType"] == "origin-ecc"


def test_every_resource_is_a_child_of_its_region_named_after_it():
    run = web_run("three-regions")
    for region in EXPECTED_NODES["three-regions"]:
        children = run.children(run.one(COMPONENT, region).urn)
        assert children and all(c.name.startswith(f"{region}-") for c in children)
    site = run.one("woocommerce-dr:index:WordPressSite", "site")
    assert len(run.children(site.urn)) == 9  # eight WordPress keys and salts, the admin password
    origin_pulls = run.one("woocommerce-dr:index:OriginPulls", "origin-pulls")
    parents = {r.urn for r in run.of_type(COMPONENT)} | {site.urn, origin_pulls.urn}
    assert all(r.parent in parents for r in run.resources if r.custom)


def test_labels_carry_stack_and_region_so_two_stacks_can_share_an_account():
    prod, dr_test = web_run("prod"), web_run("dr-test")
    labels = {r.inputs["label"] for run in (prod, dr_test) for r in run.of_type(NODEBALANCER) + run.of_type(FIREWALL)}
    assert {"prod-us-east", "dr-test-eu-west", "prod-us-east-web", "dr-test-us-east-nb"} <= labels
    assert len(labels) == 12


def test_outputs_give_the_traffic_tier_and_drctl_the_computed_addresses():
    run = web_run("prod")
    nodebalancer = run.one(NODEBALANCER, "eu-west-nb")
    web = run.outputs["web"]["eu-west"]
    assert web["nodeBalancer"] == {
        "id": int(nodebalancer.id), "ipv4": nodebalancer.outputs["ipv4"],
        "ipv6": nodebalancer.outputs["ipv6"], "hostname": nodebalancer.outputs["hostname"],
    }
    instance = run.one(INSTANCE, "eu-west-web-0")
    assert web["webInstances"][0] == {
        "id": int(instance.id), "label": "prod-eu-west-web-0", "privateIp": instance.outputs["privateIpAddress"],
    }
    assert web["webFirewallId"] == int(run.one(FIREWALL, "eu-west-web-firewall").id)
    assert web["nodeBalancerFirewallId"] == int(run.one(FIREWALL, "eu-west-nb-firewall").id)
    assert isinstance(run.outputs["wordpressAdminPassword"], Secret)


def test_outputs_fit_the_drctl_stack_outputs_contract():
    from drctl.stack.outputs import RegionOut

    for region, web in web_run("three-regions").outputs["web"].items():
        role = "primary" if region == "us-east" else "dr"
        assert RegionOut.model_validate({**web, "role": role}).region == region


def test_public_ipv4s_for_the_database_allow_lists_are_the_instances_public_addresses():
    run = web_run("prod")
    for region in ("us-east", "eu-west"):
        instances = sorted(in_region(run, INSTANCE, region), key=lambda i: i.name)
        expected = [next(ip for ip in i.outputs["ipv4s"] if not ip.startswith("192.168.")) for i in instances]
        assert run.outputs["webPublicIpv4s"][region] == expected


def test_a_region_without_a_database_endpoint_is_refused():
    # The test program makes endpoints for the configured regions only; give the web tier one more.
    from components.config import validate_stack_config
    from components.web_tier import build_web_tiers

    config = validate_stack_config(harness.raw_config("prod"))
    with pytest.raises(Exception, match="no database endpoint for region"):
        build_web_tiers(config, {})


def test_a_region_given_another_regions_database_is_refused():
    from components.config import validate_stack_config
    from components.endpoints import DatabaseEndpoint
    from components.web_tier import RegionalWebTierArgs

    config = validate_stack_config(harness.raw_config("prod"))
    eu_west = DatabaseEndpoint(region="eu-west", role="replica", host="db", port=3306, ca_cert_pem="CA",
                               user="woocommerce", password="secret")
    with pytest.raises(ValueError, match="the web tier in us-east was given the database endpoint of eu-west"):
        RegionalWebTierArgs.from_config(config, config.regions[0], eu_west, site=None, origin_pull_ca_pem="CA")


def test_the_plan_shows_the_web_tier_with_secrets_hidden():
    run = run_with(stack="dr-test", preview=True)
    plan = render_text(run)
    assert "woocommerce-dr:index:RegionalWebTier  us-east" in plan
    assert "checkInterval: 10" in plan and "checkTimeout: 5" in plan and "checkAttempts: 3" in plan
    assert "db-password" not in plan and "BEGIN CERTIFICATE" not in plan
    instance = run.one(INSTANCE, "us-east-web-0")
    assert instance.inputs["metadatas"][0]["userData"] == Secret(UNKNOWN)
    assert 'metadatas: [{"userData": "[secret]"}]' in plan


def test_a_region_lacking_a_capability_stops_the_web_tier_before_any_resource():
    result = harness.run("prod", program=PROGRAM, region_capabilities={"eu-west": ("Linodes", "Metadata")})
    assert "region 'eu-west' lacks NodeBalancers, Cloud Firewall" in result.error
    assert result.resources == []


def test_more_admin_cidrs_than_a_cloud_firewall_holds_fail_the_preview_with_the_numbers():
    cidrs = [f"10.{i // 256}.{i % 256}.0/24" for i in range(300)]
    result = harness.run(harness.stack_file("prod", access={"adminCidrs": cidrs, "sshKeys": []}), program=PROGRAM)
    assert result.error == (
        "invalid stack configuration:\n"
        "woocommerce-dr:access.adminCidrs: too many networks: each database server's Cloud Firewall also admits "
        "its region's web nodes, the other database servers, the guards and access.operatorCidrs, and holds at "
        "most 255 addresses (got '300 networks'; allowed: at most 253 with these regions, webNodes, guards and "
        "operatorCidrs)"
    )
    assert result.resources == []


def test_the_web_node_firewall_limits_are_checked_with_the_numbers():
    from components.firewall_rules import FirewallRuleError, web_node_inbound

    with pytest.raises(FirewallRuleError, match="would need 2 inbound rules with 256 addresses"):
        web_node_inbound([f"10.0.{i}.0/24" for i in range(255)])


def test_an_empty_cloudflare_range_list_is_refused_instead_of_closing_the_nodebalancer():
    from components.firewall_rules import FirewallRuleError, nodebalancer_inbound

    with pytest.raises(FirewallRuleError, match="returned no ranges"):
        nodebalancer_inbound([], [])
