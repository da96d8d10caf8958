"""Each policy of the pack on hand-made resources: the violation it reports, word for word, and the
unknowns of a preview that it must neither trip over nor mistake for a violation."""

import pytest

from drctl.plan.engine import UNKNOWN
from tests.support.policy_pack import firewall_rules as pack_firewall_rules
from tests.support.policy_pack import pack, urn_for, violations

HEALTH = pack.nodebalancer_health_checks
DEFAULT_DENY = pack.firewall_default_deny
ADMIN_PORTS = pack.firewall_no_public_admin_ports
DB_PRIVATE = pack.database_not_public
FAILOVER = pack.load_balancer_failover
MONITOR = pack.monitor_path_and_host
TAGGED = pack.linode_resources_tagged
SHARE = pack.sources_not_a_large_share_of_the_internet


def nb_config(**changes):
    return {"nodebalancerId": 1, "port": 443, "protocol": "tcp", "check": "connection", "checkInterval": 10,
            "checkTimeout": 5, "checkAttempts": 3, "checkPassive": True, **changes}


def firewall(*rules, **changes):
    return {"label": "prod-us-east-web", "inboundPolicy": "DROP", "outboundPolicy": "ACCEPT",
            "inbounds": list(rules), "tags": ["project:woocommerce-dr", "stack:prod"], **changes}


def rule(label="ssh", ports="22", ipv4s=("203.0.113.0/24",), ipv6s=(), protocol="TCP", action="ACCEPT"):
    r = {"label": label, "action": action, "protocol": protocol, "ipv4s": list(ipv4s), "ipv6s": list(ipv6s)}
    if ports is not None:
        r["ports"] = ports
    return r


def load_balancer(**changes):
    return {"name": "shop.example.com", "defaultPools": ["pool-us", "pool-eu"], "fallbackPool": "pool-eu",
            "steeringPolicy": "off", "proxied": True, **changes}


def monitor(**changes):
    return {"type": "https", "port": 443, "path": "/healthz", "header": {"Host": ["shop.example.com"]}, **changes}


# --- NodeBalancer health checks ---------------------------------------------------------------

def test_a_tcp_check_with_passive_checks_passes():
    assert violations(HEALTH, pack.NODEBALANCER_CONFIG, nb_config()) == []


def test_check_none_is_refused_with_the_config_key_to_change():
    assert violations(HEALTH, pack.NODEBALANCER_CONFIG, nb_config(check="none"), name="prod-us-east-443") == [
        "NodeBalancer config 'prod-us-east-443' has check 'none': set woocommerce-dr:nodeBalancer.check to "
        "connection (TCP), http or http_body so a dead web node is taken out of rotation."
    ]


def test_a_missing_check_is_refused_because_linode_defaults_to_none():
    inputs = nb_config()
    del inputs["check"]
    assert violations(HEALTH, pack.NODEBALANCER_CONFIG, inputs, name="cfg") == [
        "NodeBalancer config 'cfg' has no health check (Linode's default is none): set "
        "woocommerce-dr:nodeBalancer.check to connection (TCP), http or http_body so a dead web node is taken "
        "out of rotation."
    ]


def test_passive_checks_off_is_refused():
    assert violations(HEALTH, pack.NODEBALANCER_CONFIG, nb_config(checkPassive=False), name="cfg") == [
        "NodeBalancer config 'cfg' has checkPassive False: set check_passive=True "
        "(components/web_tier.py always does) so a node failing live requests leaves rotation "
        "between active checks."
    ]


def test_passive_checks_must_be_set_explicitly():
    inputs = nb_config()
    del inputs["checkPassive"]
    assert violations(HEALTH, pack.NODEBALANCER_CONFIG, inputs, name="cfg")[0].startswith(
        "NodeBalancer config 'cfg' has checkPassive unset:")


def test_policies_ignore_resource_types_they_do_not_guard():
    assert violations(HEALTH, pack.FIREWALL, nb_config(check="none", checkPassive=False)) == []


# --- Firewalls: default deny ------------------------------------------------------------------

def test_a_dropping_firewall_passes():
    assert violations(DEFAULT_DENY, pack.FIREWALL, firewall(rule())) == []


def test_inbound_accept_by_default_is_refused():
    assert violations(DEFAULT_DENY, pack.FIREWALL, firewall(inboundPolicy="ACCEPT")) == [
        "Firewall 'prod-us-east-web' has inboundPolicy 'ACCEPT': set inbound_policy=\"DROP\" and list what may "
        "come in as ACCEPT rules."
    ]


# --- Firewalls: SSH and MySQL never from the whole internet -----------------------------------

def test_ssh_from_the_whole_internet_is_refused_with_who_should_reach_it():
    fw = firewall(rule(label="ssh", ports="22", ipv4s=["0.0.0.0/0"]))
    assert violations(ADMIN_PORTS, pack.FIREWALL, fw) == [
        "Firewall 'prod-us-east-web' rule 'ssh' accepts SSH (TCP 22) from 0.0.0.0/0: allow SSH only from "
        "woocommerce-dr:access.adminCidrs."
    ]


def test_mysql_from_ipv6_anywhere_is_refused():
    fw = firewall(rule(label="mysql", ports="3306", ipv4s=[], ipv6s=["::/0"]))
    assert violations(ADMIN_PORTS, pack.FIREWALL, fw) == [
        "Firewall 'prod-us-east-web' rule 'mysql' accepts MySQL (TCP 3306) from ::/0: allow MySQL only from "
        "the web and replica nodes' own addresses."
    ]


@pytest.mark.parametrize("ports", ["1-65535", "20-25, 3306", "80,443,22", None])
def test_port_lists_and_ranges_that_include_an_admin_port_are_refused(ports):
    fw = firewall(rule(label="wide", ports=ports, ipv4s=["0.0.0.0/0"]))
    found = violations(ADMIN_PORTS, pack.FIREWALL, fw)
    assert any("accepts SSH (TCP 22)" in m for m in found), found


def test_every_tcp_port_includes_both_admin_ports():
    fw = firewall(rule(label="all", ports=None, protocol="ALL", ipv4s=["0.0.0.0/0"]))
    assert [m.split(": ")[0] for m in violations(ADMIN_PORTS, pack.FIREWALL, fw)] == [
        "Firewall 'prod-us-east-web' rule 'all' accepts SSH (TCP 22) from 0.0.0.0/0",
        "Firewall 'prod-us-east-web' rule 'all' accepts MySQL (TCP 3306) from 0.0.0.0/0",
    ]


@pytest.mark.parametrize("fw", [
    firewall(rule(label="https", ports="80,443", ipv4s=["0.0.0.0/0"], ipv6s=["::/0"])),  # the web, not admin
    firewall(rule(label="ssh", ports="22", ipv4s=["198.51.100.7/32"])),  # an admin CIDR
    firewall(rule(label="ssh", ports="22", ipv4s=["0.0.0.0/0"], action="DROP")),  # a deny rule
    firewall(rule(label="dns", ports="1-65535", ipv4s=["0.0.0.0/0"], protocol="UDP")),  # not TCP
], ids=["web-ports", "admin-cidr", "drop-rule", "udp"])
def test_rules_that_do_not_expose_ssh_or_mysql_pass(fw):
    assert violations(ADMIN_PORTS, pack.FIREWALL, fw) == []


def test_an_unreadable_port_list_open_to_everyone_is_refused():
    fw = firewall(rule(label="odd", ports="ssh", ipv4s=["0.0.0.0/0"]))
    assert violations(ADMIN_PORTS, pack.FIREWALL, fw) == [
        "Firewall 'prod-us-east-web' rule 'odd' has ports 'ssh', which is not a port list, open to 0.0.0.0/0: "
        "write ports like \"22\", \"80,443\" or \"1-65535\"."
    ]


def test_computed_addresses_in_a_preview_do_not_hide_an_open_rule():
    fw = firewall(rule(label="mysql", ports="3306", ipv4s=[UNKNOWN, "0.0.0.0/0"]))
    assert len(violations(ADMIN_PORTS, pack.FIREWALL, fw)) == 1


# --- Address space: no service open to a large share of the internet, however the sources are split ---

BUDGET = "(allowed: at most a /8 of IPv4 and a /32 of IPv6 in all, overlaps merged)"


def test_ssh_from_the_whole_internet_in_two_halves_is_refused():
    fw = firewall(rule(label="ssh-from-admins-ipv4", ports="22", ipv4s=["0.0.0.0/1", "128.0.0.0/1"]))
    assert violations(SHARE, pack.FIREWALL, fw) == [
        "Firewall 'prod-us-east-web' opens SSH (TCP 22) to as much as a /0 of IPv4 (4,294,967,296 addresses) "
        f"through rule 'ssh-from-admins-ipv4' {BUDGET}: list only your admins' networks in "
        "woocommerce-dr:access.adminCidrs."
    ]
    assert violations(ADMIN_PORTS, pack.FIREWALL, fw) == []  # the gap this policy closes


def test_halves_in_separate_rules_are_counted_together():
    fw = firewall(rule(label="a", ports="22", ipv4s=["0.0.0.0/1"]), rule(label="b", ports="20-30", ipv4s=["128.0.0.0/1"]))
    [message] = violations(SHARE, pack.FIREWALL, fw)
    assert "opens SSH (TCP 22) to as much as a /0 of IPv4" in message and "through rule 'a', 'b'" in message


def test_the_origins_open_to_half_the_internet_around_cloudflare_are_refused():
    fw = firewall(rule(label="http-from-watchdog-ipv4", ports="80, 443", ipv4s=["128.0.0.0/1"]))
    assert violations(SHARE, pack.FIREWALL, fw) == [
        "Firewall 'prod-us-east-web' opens HTTP(S) (TCP 80, 443) to as much as a /1 of IPv4 (2,147,483,648 "
        f"addresses) through rule 'http-from-watchdog-ipv4' {BUDGET}: list only the networks drctl watch and "
        "drctl run in, in woocommerce-dr:access.watchdogCidrs and access.operatorCidrs."
    ]


def test_the_origins_open_to_everyone_are_refused():
    fw = firewall(rule(label="https", ports="443", ipv4s=[], ipv6s=["::/0"]))
    [message] = violations(SHARE, pack.FIREWALL, fw)
    assert "opens HTTP(S) (TCP 80, 443) to as much as a /0 of IPv6" in message


def test_ipv6_past_a_slash_32_is_refused():
    fw = firewall(rule(label="ssh", ports="22", ipv4s=[], ipv6s=["2001:db8::/32", "2001:db9::/32"]))
    [message] = violations(SHARE, pack.FIREWALL, fw)
    assert "opens SSH (TCP 22) to as much as a /31 of IPv6" in message


def test_cloudflare_ranges_and_the_nodebalancer_network_stay_allowed():
    # Cloudflare's IPv6 ranges alone are 14 /32s: counted, every NodeBalancer would be refused.
    from drctl.plan.cloud import CLOUDFLARE_IPV4, CLOUDFLARE_IPV6

    nb = firewall(rule(label="http-from-cloudflare-ipv4", ports="80, 443", ipv4s=CLOUDFLARE_IPV4),
                  rule(label="http-from-cloudflare-ipv6", ports="80, 443", ipv4s=[], ipv6s=CLOUDFLARE_IPV6),
                  rule(label="http-from-watchdog-ipv4", ports="80, 443", ipv4s=["10.0.0.0/8"]))
    web = firewall(rule(label="http-from-nodebalancer", ports="80, 443", ipv4s=["192.168.255.0/24"]),
                   rule(label="ssh-from-admins-ipv4", ports="22", ipv4s=["203.0.113.0/24", "10.0.0.0/9"]))
    assert violations(SHARE, pack.FIREWALL, nb) == violations(SHARE, pack.FIREWALL, web) == []


def test_a_cloudflare_label_does_not_excuse_ssh():
    fw = firewall(rule(label="http-from-cloudflare-ipv4", ports="22,80,443", ipv4s=["0.0.0.0/1", "128.0.0.0/1"]))
    [message] = violations(SHARE, pack.FIREWALL, fw)
    assert "opens SSH (TCP 22) to as much as a /0 of IPv4" in message


def test_a_whole_internet_source_on_ssh_is_reported_once_by_the_admin_ports_policy():
    fw = firewall(rule(label="ssh", ports="22", ipv4s=["0.0.0.0/0"]))
    assert violations(SHARE, pack.FIREWALL, fw) == []
    assert len(violations(ADMIN_PORTS, pack.FIREWALL, fw)) == 1


def test_computed_sources_of_a_preview_are_not_counted():
    fw = firewall(rule(label="mysql-from-clients-ipv4", ports="3306", ipv4s=[UNKNOWN, "192.0.2.10/32"]))
    assert violations(SHARE, pack.FIREWALL, fw) == []


def test_a_database_allow_list_of_two_halves_is_refused():
    inputs = {"databaseId": 7, "databaseType": "mysql", "allowLists": ["0.0.0.0/1", "128.0.0.0/1"]}
    assert violations(SHARE, pack.DATABASE_ACCESS_CONTROLS, inputs, name="db-acl") == [
        "Database 'db-acl' admits MySQL from as much as a /0 of IPv4 (4,294,967,296 addresses) "
        f"{BUDGET}: list only the web and replica nodes' own addresses."
    ]


def test_the_policy_and_the_config_share_one_threshold():
    from components.firewall_rules import MAX_SOURCE_PREFIX

    assert pack_firewall_rules.MAX_SOURCE_PREFIX == MAX_SOURCE_PREFIX == {4: 8, 6: 32}


# --- Databases --------------------------------------------------------------------------------

def test_an_allow_list_of_single_addresses_passes():
    inputs = {"databaseId": 7, "databaseType": "mysql", "allowLists": ["192.0.2.10/32", "198.51.100.3/32"]}
    assert violations(DB_PRIVATE, pack.DATABASE_ACCESS_CONTROLS, inputs) == []


def test_a_public_access_control_entry_is_refused():
    inputs = {"databaseId": 7, "databaseType": "mysql", "allowLists": ["192.0.2.10/32", "0.0.0.0/0"]}
    assert violations(DB_PRIVATE, pack.DATABASE_ACCESS_CONTROLS, inputs, name="prod-db-access") == [
        "Database access controls 'prod-db-access' allow 0.0.0.0/0, the whole internet: list only the primary "
        "region's web nodes and the replicas, as single addresses, in linode.DatabaseAccessControls."
    ]


def test_a_public_allow_list_on_the_managed_database_itself_is_refused():
    inputs = {"engineId": "mysql/8", "allowLists": ["::/0"]}
    assert violations(DB_PRIVATE, pack.DATABASE_MYSQL, inputs, name="prod-db") == [
        "Managed database 'prod-db' allows ::/0, the whole internet: list only the primary region's web nodes "
        "and the replicas, as single addresses, in linode.DatabaseAccessControls."
    ]


def test_allow_list_entries_unknown_in_a_preview_are_skipped():
    inputs = {"databaseId": UNKNOWN, "databaseType": "mysql", "allowLists": [UNKNOWN, UNKNOWN]}
    assert violations(DB_PRIVATE, pack.DATABASE_ACCESS_CONTROLS, inputs) == []


# --- Load balancer ----------------------------------------------------------------------------

def test_a_two_region_failover_load_balancer_passes():
    assert violations(FAILOVER, pack.LOAD_BALANCER, load_balancer()) == []


def test_one_pool_is_not_failover():
    lb = load_balancer(defaultPools=["pool-us"], fallbackPool="pool-eu")
    assert violations(FAILOVER, pack.LOAD_BALANCER, lb) == [
        "Load balancer 'shop.example.com' has 1 default pool(s): list one pool per region, primary first "
        "(woocommerce-dr:regions needs at least two regions)."
    ]


def test_a_missing_fallback_pool_is_refused():
    lb = load_balancer()
    del lb["fallbackPool"]
    assert violations(FAILOVER, pack.LOAD_BALANCER, lb) == [
        "Load balancer 'shop.example.com' has no fallback pool: set fallback_pool to the last region's pool, "
        "the one Cloudflare uses when every pool is unhealthy."
    ]


def test_falling_back_to_the_primary_pool_is_refused():
    assert violations(FAILOVER, pack.LOAD_BALANCER, load_balancer(fallbackPool="pool-us")) == [
        "Load balancer 'shop.example.com' falls back to its primary pool: set fallback_pool to the last "
        "region's pool."
    ]


def test_steering_other_than_off_is_refused():
    assert violations(FAILOVER, pack.LOAD_BALANCER, load_balancer(steeringPolicy="dynamic_latency")) == [
        "Load balancer 'shop.example.com' has steeringPolicy 'dynamic_latency': set steering_policy=\"off\" so "
        "traffic goes to the first healthy pool in region order instead of being spread across regions."
    ]


def test_unset_steering_is_refused_because_cloudflare_may_pick_geo_steering():
    lb = load_balancer()
    del lb["steeringPolicy"]
    assert violations(FAILOVER, pack.LOAD_BALANCER, lb)[0].startswith(
        "Load balancer 'shop.example.com' has steeringPolicy unset:")


def test_pool_ids_unknown_in_a_preview_still_count_as_pools():
    lb = load_balancer(defaultPools=[UNKNOWN, UNKNOWN], fallbackPool=UNKNOWN)
    assert violations(FAILOVER, pack.LOAD_BALANCER, lb) == []


# --- Monitor ----------------------------------------------------------------------------------

def test_a_monitor_with_path_and_host_passes():
    assert violations(MONITOR, pack.MONITOR, monitor()) == []


def test_a_monitor_without_a_path_is_refused():
    m = monitor()
    del m["path"]
    assert violations(MONITOR, pack.MONITOR, m, name="prod-monitor") == [
        "Monitor 'prod-monitor' has path unset: set it to the health endpoint (woocommerce-dr:traffic.monitor.path, "
        "default /healthz)."
    ]


@pytest.mark.parametrize("header", [None, {}, {"Host": []}, {"User-Agent": ["probe"]}])
def test_a_monitor_without_a_host_header_is_refused(header):
    m = monitor(header=header) if header is not None else {k: v for k, v in monitor().items() if k != "header"}
    assert violations(MONITOR, pack.MONITOR, m, name="prod-monitor") == [
        "Monitor 'prod-monitor' sends no Host header: set header={\"Host\": [<domain>]} so every origin answers "
        "for the shop's domain, as it does for shoppers."
    ]


def test_the_host_header_name_is_case_insensitive():
    assert violations(MONITOR, pack.MONITOR, monitor(header={"host": ["shop.example.com"]})) == []


# --- Tags -------------------------------------------------------------------------------------

def test_project_and_stack_tags_pass():
    inputs = {"label": "x", "tags": ["project:woocommerce-dr", "stack:dr-test", "region:us-east", "role:web"]}
    urn = urn_for(pack.INSTANCE, "web-0", stack="dr-test")
    assert violations(TAGGED, pack.INSTANCE, inputs, urn=urn) == []


def test_the_stack_tag_must_name_this_stack():
    inputs = {"tags": ["project:woocommerce-dr", "stack:prod"]}
    urn = urn_for(pack.NODEBALANCER, "dr-test-us-east-nb", stack="dr-test")
    assert violations(TAGGED, pack.NODEBALANCER, inputs, name="dr-test-us-east-nb", urn=urn) == [
        "NodeBalancer 'dr-test-us-east-nb' lacks the tag(s) stack:dr-test: build tags with "
        "components.tags.tags(region, role) so Cloud Manager and drctl can tell the stacks apart."
    ]


def test_an_untagged_linode_is_refused():
    assert violations(TAGGED, pack.INSTANCE, {"label": "web"}, name="prod-us-east-web-0") == [
        "Linode 'prod-us-east-web-0' lacks the tag(s) project:woocommerce-dr, stack:prod: build tags with "
        "components.tags.tags(region, role) so Cloud Manager and drctl can tell the stacks apart."
    ]


def test_every_policy_is_mandatory():
    assert {p.enforcement_level for p in pack.POLICIES} == {pack.EnforcementLevel.MANDATORY}
