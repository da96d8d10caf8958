"""Every rule of the stack-config contract, with the exact line a user sees."""

import json

import pytest

from components.config import ConfigError, StackConfig, validate_config_map, validate_stack_config
from drctl.stack.files import REPO_ROOT, load_stack_file
from tests.support.harness import raw_config

NB = {"algorithm": "roundrobin", "check": "connection", "checkInterval": 10, "checkTimeout": 5, "checkAttempts": 3}


def problems(stack: str = "prod", **changes) -> list[str]:
    with pytest.raises(ConfigError) as err:
        validate_stack_config(raw_config(stack, **changes))
    return str(err.value).splitlines()


@pytest.mark.parametrize("stack", ["prod", "dr-test"])
def test_stack_files_validate(stack):
    config = validate_stack_config(raw_config(stack))
    assert isinstance(config, StackConfig)
    assert [r.region for r in config.regions] == ["us-east", "eu-west"]


def test_prod_follows_the_seed_layout():
    c = validate_stack_config(raw_config("prod"))
    assert [r.web_nodes for r in c.regions] == [2, 2]
    assert (c.node_balancer.check, c.node_balancer.check_interval, c.node_balancer.check_timeout,
            c.node_balancer.check_attempts) == ("connection", 10, 5, 3)
    assert c.database.mode == "managed" and c.traffic.mode == "load-balancer"


def test_dr_test_is_a_cheap_copy_with_its_own_hostname():
    prod, drill = validate_stack_config(raw_config("prod")), validate_stack_config(raw_config("dr-test"))
    assert [r.web_nodes for r in drill.regions] == [1, 1]
    assert drill.domain == f"dr-test.{prod.domain}"


# Backups are on by default, and the DR replica installs the archiver's drctl from here.
DRCTL_SOURCE = {"repo": "https://github.com/example/woocommerce-dr.git", "commit": "0" * 40}


def test_defaults_follow_the_seed():
    c = validate_stack_config(
        {"domain": "shop.example.com", "regions": [{"region": "us-east"}, {"region": "eu-west"}],
         "traffic": {"accountId": "a" * 32, "zoneId": "b" * 32}, "automation": {"drctlSource": DRCTL_SOURCE}}
    )
    assert c.regions[0].web_nodes == 2 and c.regions[0].instance_type == "g6-standard-2"
    assert c.node_balancer.algorithm == "roundrobin"
    assert (c.node_balancer.check_interval, c.node_balancer.check_timeout, c.node_balancer.check_attempts) == (10, 5, 3)
    assert c.database.cluster_size == 3 and c.database.binlog_retention_seconds == 86400
    m = c.traffic.monitor
    assert (m.path, m.interval, m.timeout, m.retries, m.consecutive_down, m.consecutive_up, m.expected_codes) == (
        "/healthz", 60, 5, 2, 2, 2, "200")
    assert (c.objectives.rto_seconds, c.objectives.rpo_seconds) == (300, 15)
    assert c.access.admin_cidrs == () and c.access.ssh_keys == () and c.access.watchdog_cidrs == ()


def test_config_is_frozen():
    c = validate_stack_config(raw_config("prod"))
    with pytest.raises(Exception, match="frozen"):
        c.domain = "other.example.com"


def test_check_timeout_must_be_below_interval():
    assert problems(nodeBalancer={**NB, "checkTimeout": 10, "checkInterval": 10}) == [
        "woocommerce-dr:nodeBalancer.checkTimeout: must be below checkInterval (10) (got 10; allowed: 1 to 9)"
    ]


def test_misspelled_region_gets_a_hint():
    [line] = problems(regions=[{"region": "us-east"}, {"region": "eu-wst"}])
    assert line.startswith(
        "woocommerce-dr:regions[1].region: 'eu-wst' is not a Linode region; did you mean 'eu-west'? (got 'eu-wst'; allowed: ap-northeast, "
    )


def test_web_nodes_zero_is_out_of_range():
    assert problems(regions=[{"region": "us-east", "webNodes": 0}, {"region": "eu-west"}]) == [
        "woocommerce-dr:regions[0].webNodes: out of range (got 0; allowed: 1 to 25)"
    ]


def test_unknown_key_names_the_right_spelling():
    assert problems(regions=[{"region": "us-east", "webnodes": 2}, {"region": "eu-west"}]) == [
        "woocommerce-dr:regions[0].webnodes: unknown key; did you mean 'webNodes'? "
        "(got 'webnodes'; allowed: region, webNodes, instanceType, image)"
    ]


def test_unknown_top_level_key():
    assert problems(nodebalancer=NB) == [
        "woocommerce-dr:nodebalancer: unknown key; did you mean 'nodeBalancer'? (got 'nodebalancer'; "
        "allowed: domain, regions, nodeBalancer, database, traffic, access, objectives, media, backups, automation, "
        "guardLinodeToken, guardCloudflareToken)"
    ]


def test_monitor_too_slow_for_the_rto():
    assert problems(objectives={"rtoSeconds": 120, "rpoSeconds": 15}) == [
        "woocommerce-dr:traffic.monitor: worst-case failover detection takes 135 s but objectives.rtoSeconds "
        "is 120 s: lower traffic.monitor.interval, consecutiveDown, timeout or retries, or raise "
        "objectives.rtoSeconds (got 'interval 60 x max(1, consecutiveDown 2) + timeout 5 x (retries 2 + 1) "
        "= 135 s'; allowed: at most 120 s)"
    ]


def test_detection_time_treats_consecutive_down_zero_as_one():
    traffic = raw_config("prod")["traffic"]
    traffic["monitor"] = {**traffic["monitor"], "consecutiveDown": 0, "retries": 0}
    c = validate_stack_config({**raw_config("prod"), "traffic": traffic})
    assert c.traffic.monitor.worst_case_detection_seconds == 60 + 5


def test_at_least_two_regions():
    assert problems(regions=[{"region": "us-east"}]) == [
        "woocommerce-dr:regions: at least two regions are needed for failover "
        "(got [\"us-east\"]; allowed: a list of 2 or more regions, the primary first)"
    ]


def test_no_region_twice():
    assert problems(regions=[{"region": "us-east"}, {"region": "eu-west"}, {"region": "us-east"}]) == [
        "woocommerce-dr:regions[2].region: 'us-east' is listed twice "
        "(got 'us-east'; allowed: each region once; the failover order is the list order)"
    ]


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [("checkInterval", 1, "2 to 3600"), ("checkInterval", 3601, "2 to 3600"), ("checkTimeout", 31, "1 to 30"),
     ("checkAttempts", 0, "1 to 30"), ("checkAttempts", 31, "1 to 30")],
)
def test_node_balancer_ranges_follow_linode(key, value, allowed):
    nb = {**NB, key: value}
    if key == "checkTimeout":
        nb["checkInterval"] = 60
    assert problems(nodeBalancer=nb) == [
        f"woocommerce-dr:nodeBalancer.{key}: out of range (got {value}; allowed: {allowed})"
    ]


def test_no_check_none():
    assert problems(nodeBalancer={**NB, "check": "none"}) == [
        "woocommerce-dr:nodeBalancer.check: not an allowed value (got 'none'; allowed: connection, http, http_body)"
    ]


def test_algorithm_values():
    assert problems(nodeBalancer={**NB, "algorithm": "round-robin"}) == [
        "woocommerce-dr:nodeBalancer.algorithm: not an allowed value; did you mean 'roundrobin'? "
        "(got 'round-robin'; allowed: roundrobin, leastconn, source)"
    ]


def test_monitor_interval_at_least_10():
    traffic = raw_config("prod")["traffic"]
    traffic["monitor"] = {**traffic["monitor"], "interval": 5, "timeout": 2}
    assert problems(traffic=traffic) == [
        "woocommerce-dr:traffic.monitor.interval: out of range (got 5; allowed: 10 to 3600)"
    ]


def test_monitor_timeout_below_interval():
    traffic = raw_config("prod")["traffic"]
    traffic["monitor"] = {**traffic["monitor"], "interval": 10, "timeout": 10}
    assert problems(traffic=traffic) == [
        "woocommerce-dr:traffic.monitor.timeout: must be below interval (10) (got 10; allowed: 1 to 9)"
    ]


def test_cluster_size():
    assert problems(database={"mode": "managed", "clusterSize": 5}) == [
        "woocommerce-dr:database.clusterSize: not an allowed value (got 5; allowed: 1, 2, 3)"
    ]


def test_binlog_retention_covers_a_day():
    assert problems(database={"binlogRetentionSeconds": 3600}) == [
        "woocommerce-dr:database.binlogRetentionSeconds: out of range (got 3600; allowed: 86400 to 2419200)"
    ]


def test_managed_database_keeps_binlogs_at_most_a_day():
    assert problems(database={"mode": "managed", "binlogRetentionSeconds": 172800}) == [
        "woocommerce-dr:database.binlogRetentionSeconds: a Linode managed database keeps binlogs at most "
        "86400 s (got 172800; allowed: 86400 with mode managed; up to 2419200 with mode self-managed)"
    ]


@pytest.mark.parametrize("domain", ["shop", "-shop.example.com", "Shop.Example.com", "shop..example.com", "10.0.0.1"])
def test_domain_must_be_an_fqdn(domain):
    assert problems(domain=domain) == [
        f"woocommerce-dr:domain: not a fully qualified domain name (got {domain!r}; allowed: lower-case labels "
        "of a-z, 0-9 and '-', separated by dots, such as shop.example.com)"
    ]


def test_a_domain_too_long_for_the_database_servers_dns_names_is_refused():
    # A valid name of 237 characters, but mysql-us-east.db.<domain> would not fit DNS's 253.
    domain = ".".join(["a" * 60] * 3 + ["b" * 42, "example.com"])
    assert len(domain) == 237
    assert problems(domain=domain) == [
        "woocommerce-dr:domain: too long: the database server name mysql-us-east.db.<domain> would be 254 "
        f"characters, over DNS's 253 (got {domain!r}; allowed: a domain of at most 236 characters with these regions)"
    ]


def test_the_longest_region_decides_how_long_the_domain_may_be():
    domain = ".".join(["a" * 60] * 3 + ["b" * 41, "example.com"])  # fits us-east and eu-west, not ap-south
    validate_stack_config(raw_config("prod", domain=domain))
    regions = [{"region": "us-east"}, {"region": "eu-west"}, {"region": "ap-south"}]
    (line,) = problems(domain=domain, regions=regions)
    assert "mysql-ap-south.db.<domain> would be 254 characters" in line and "at most 235 characters" in line


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0"])
def test_admin_cidrs_never_the_whole_internet(cidr):
    assert problems(access={"adminCidrs": [cidr]}) == [
        f"woocommerce-dr:access.adminCidrs[0]: would open SSH to the whole internet (got {cidr!r}; allowed: an "
        "IPv4 or IPv6 network such as 203.0.113.0/24, never 0.0.0.0/0 or ::/0)"
    ]


# dr-test's two guards take an address each (automation.guards).
@pytest.mark.parametrize(("stack", "room"), [("prod", 253), ("dr-test", 251)])
def test_admin_cidrs_leave_room_for_the_database_firewalls(stack, room):
    cidrs = [f"10.{i // 256}.{i % 256}.0/24" for i in range(room + 1)]
    assert problems(stack, access={"adminCidrs": cidrs}) == [
        "woocommerce-dr:access.adminCidrs: too many networks: each database server's Cloud Firewall also admits "
        "its region's web nodes, the other database servers, the guards and access.operatorCidrs, and holds at "
        "most 255 addresses "
        f"(got '{room + 1} networks'; allowed: at most {room} with these regions, webNodes, guards and operatorCidrs)"
    ]
    validate_stack_config(raw_config(stack, access={"adminCidrs": cidrs[:room]}))


def test_admin_cidrs_room_follows_web_nodes_and_regions():
    regions = [{"region": "us-east", "webNodes": 2}, {"region": "eu-west", "webNodes": 10},
               {"region": "ap-south", "webNodes": 1}]
    cidrs = [f"10.0.{i}.0/24" for i in range(245)]
    # eu-west's replica admits its 10 web nodes, the other two MySQL Linodes and dr-test's two guards:
    # 255 - 14 = 241; each operator network takes one more.
    assert problems("dr-test", regions=regions, access={"adminCidrs": cidrs})[0].endswith(
        "(got '245 networks'; allowed: at most 241 with these regions, webNodes, guards and operatorCidrs)")
    operators = {"adminCidrs": cidrs, "operatorCidrs": ["198.51.100.0/28", "2001:db8::/48"]}
    assert problems("dr-test", regions=regions, access=operators)[0].endswith(
        "(got '245 networks'; allowed: at most 239 with these regions, webNodes, guards and operatorCidrs)")


def test_admin_cidrs_must_be_networks():
    assert problems(access={"adminCidrs": ["203.0.113.0/24", "10.0.0.1/24", "not-a-cidr"]}) == [
        "woocommerce-dr:access.adminCidrs[1]: not a valid CIDR (10.0.0.1/24 has host bits set) (got '10.0.0.1/24'; "
        "allowed: an IPv4 or IPv6 network such as 203.0.113.0/24, never 0.0.0.0/0 or ::/0)",
        "woocommerce-dr:access.adminCidrs[2]: not a valid CIDR ('not-a-cidr' does not appear to be an IPv4 or IPv6 "
        "network) (got 'not-a-cidr'; allowed: an IPv4 or IPv6 network such as 203.0.113.0/24, never 0.0.0.0/0 or ::/0)",
    ]


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0"])
def test_watchdog_cidrs_never_the_whole_internet(cidr):
    assert problems(access={"watchdogCidrs": ["198.51.100.7/32", cidr]}) == [
        f"woocommerce-dr:access.watchdogCidrs[1]: would open the NodeBalancers to the whole internet, around "
        f"Cloudflare (got {cidr!r}; allowed: an IPv4 or IPv6 network such as 203.0.113.0/24, never 0.0.0.0/0 or ::/0)"
    ]


def test_watchdog_cidrs_must_be_networks():
    assert problems(access={"watchdogCidrs": ["198.51.100.7/24"]}) == [
        "woocommerce-dr:access.watchdogCidrs[0]: not a valid CIDR (198.51.100.7/24 has host bits set) (got "
        "'198.51.100.7/24'; allowed: an IPv4 or IPv6 network such as 203.0.113.0/24, never 0.0.0.0/0 or ::/0)"
    ]


def test_ssh_keys_are_openssh_public_keys():
    assert problems(access={"sshKeys": ["ssh-ed25519 AAAAC3Nza me@laptop", "ssh-dss AAAAB3 old@box"]}) == [
        "woocommerce-dr:access.sshKeys[1]: not an OpenSSH public key (got 'ssh-dss'; "
        "allowed: a line such as 'ssh-ed25519 AAAA... you@laptop')"
    ]


def test_a_pasted_private_key_is_refused_without_echoing_it():
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"
    [line] = problems(access={"sshKeys": [key]})
    assert line == (
        "woocommerce-dr:access.sshKeys[0]: is a private key; use the public key (the .pub file) "
        "(got '(not shown)'; allowed: a line such as 'ssh-ed25519 AAAA... you@laptop')"
    )
    assert "b3BlbnNz" not in line


def test_cloudflare_ids():
    traffic = {**raw_config("prod")["traffic"], "zoneId": "my-zone"}
    assert problems(traffic=traffic) == [
        "woocommerce-dr:traffic.zoneId: malformed value (got 'my-zone'; allowed: a 32-character hexadecimal Cloudflare id)"
    ]


def test_missing_required_key():
    assert problems(domain=None) == [
        "woocommerce-dr:domain: required key is missing (got nothing; allowed: the shop's fully qualified domain "
        "name, such as shop.example.com)"
    ]


def test_wrong_shape():
    assert problems(regions="us-east") == [
        "woocommerce-dr:regions: not a list (got 'us-east'; allowed: a list of mappings with keys region, "
        "webNodes, instanceType, image)"
    ]


def test_every_problem_is_reported_at_once():
    lines = problems(
        domain="shop",
        regions=[{"region": "us-east", "webNodes": 0}, {"region": "eu-wst"}],
        nodeBalancer={**NB, "checkTimeout": 10, "checkInterval": 10, "algorithm": "rr"},
        access={"adminCidrs": ["0.0.0.0/0"]},
    )
    paths = [line.split(": ", 1)[0] for line in lines]
    assert paths == [
        "woocommerce-dr:regions[0].webNodes",
        "woocommerce-dr:regions[1].region",
        "woocommerce-dr:nodeBalancer.algorithm",
        "woocommerce-dr:nodeBalancer.checkTimeout",
        "woocommerce-dr:access.adminCidrs[0]",
        "woocommerce-dr:domain",
    ]


def test_unquoted_status_code_says_to_quote_it():
    traffic = raw_config("prod")["traffic"]
    traffic["monitor"] = {**traffic["monitor"], "expectedCodes": 200}
    assert problems(traffic=traffic) == [
        "woocommerce-dr:traffic.monitor.expectedCodes: not a string (got 200; allowed: an HTTP status code or "
        'class, quoted, such as "200" or "2xx")'
    ]


def test_a_single_cidr_instead_of_a_list():
    assert problems(access={"adminCidrs": "203.0.113.0/24"}) == [
        "woocommerce-dr:access.adminCidrs: not a list (got '203.0.113.0/24'; allowed: a list of strings)"
    ]


# --- strict types: YAML makes true, 2.0 and "2" easy to write where a whole number is meant --------

@pytest.mark.parametrize(("value", "shown"), [(True, "true"), (False, "false"), (2.0, "2.0"), ("2", "'2'")])
def test_web_nodes_must_be_a_whole_number_not_true_or_2_0(value, shown):
    assert problems(regions=[{"region": "us-east", "webNodes": value}, {"region": "eu-west"}]) == [
        f"woocommerce-dr:regions[0].webNodes: not a whole number (got {shown}; allowed: 1 to 25)"
    ]


def test_cluster_size_true_is_not_one():
    # Pydantic alone takes true for the 1 of Literal[1, 2, 3].
    assert problems(database={"mode": "managed", "clusterSize": True}) == [
        "woocommerce-dr:database.clusterSize: not a whole number (got true; allowed: 1, 2, 3)"
    ]


# --- dns-failover needs the watchdog's networks ------------------------------------------------------

def test_dns_failover_without_watchdog_cidrs_is_refused():
    traffic = {**raw_config("prod")["traffic"], "mode": "dns-failover"}
    assert problems(traffic=traffic) == [
        "woocommerce-dr:access.watchdogCidrs: required with traffic.mode dns-failover: drctl watch probes each "
        "region's NodeBalancer from these networks, and without them the firewalls drop every probe, so the "
        "watchdog could only ever see every region down (got []; allowed: the networks drctl watch runs in, "
        "such as ['203.0.113.7/32'] (or automation.promote automatic, whose guard Linodes run "
        "drctl watch))"
    ]


def test_dns_failover_with_watchdog_cidrs_passes():
    traffic = {**raw_config("prod")["traffic"], "mode": "dns-failover"}
    c = validate_stack_config(raw_config("prod", traffic=traffic, access={"watchdogCidrs": ["198.51.100.7/32"]}))
    assert c.access.watchdog_cidrs == ("198.51.100.7/32",)


# --- address space: no list may open SSH or the origins to a large share of the internet -------------

BUDGET = "networks that together cover at most a /8 of IPv4 (16,777,216 addresses) and at most a /32 of IPv6"


def test_admin_cidrs_that_are_the_whole_internet_in_two_halves_are_refused():
    assert problems(access={"adminCidrs": ["0.0.0.0/1", "128.0.0.0/1"]}) == [
        "woocommerce-dr:access.adminCidrs: together these networks cover as much as a /0 of IPv4 "
        "(4,294,967,296 addresses, overlaps merged): that would open SSH to a large share of the internet "
        f'(got ["0.0.0.0/1", "128.0.0.0/1"]; allowed: {BUDGET})'
    ]


def test_watchdog_cidrs_that_are_half_the_internet_are_refused():
    assert problems(access={"watchdogCidrs": ["128.0.0.0/1"]}) == [
        "woocommerce-dr:access.watchdogCidrs: together these networks cover as much as a /1 of IPv4 "
        "(2,147,483,648 addresses, overlaps merged): that would open the NodeBalancers (the origins), around "
        f'Cloudflare, to a large share of the internet (got ["128.0.0.0/1"]; allowed: {BUDGET})'
    ]


def test_many_small_networks_add_up():
    cidrs = ["10.0.0.0/8", "11.0.0.0/9"]  # a /8 and a half
    [line] = problems(access={"adminCidrs": cidrs})
    assert line.startswith("woocommerce-dr:access.adminCidrs: together these networks cover more than a /8 of IPv4 "
                           "(25,165,824 addresses, overlaps merged)")


def test_ipv6_past_a_slash_32_is_refused():
    [line] = problems(access={"adminCidrs": ["2001:db8::/32", "2001:db9::/32"]})
    assert line.startswith("woocommerce-dr:access.adminCidrs: together these networks cover as much as a /31 of IPv6")


def test_overlaps_are_merged_before_counting():
    # Two copies of a /8 and a network inside it: still one /8, the most a list may cover.
    c = validate_stack_config(raw_config("prod", access={"adminCidrs": ["10.0.0.0/8", "10.1.0.0/16", "10.0.0.0/8"],
                                                         "watchdogCidrs": ["2001:db8::/32", "2001:db8:1::/48"]}))
    assert len(c.access.admin_cidrs) == 3


# --- keys outside the project: namespaces and provider credentials ----------------------------------

def key_problems_of(changes: dict, secret: tuple[str, ...] = ()) -> list[str]:
    config = {**load_stack_file("prod").config, **changes}
    secret_keys = [k for k in load_stack_file("prod").secret_keys if k not in changes] + list(secret)
    with pytest.raises(ConfigError) as err:
        validate_config_map(config, secret_keys)
    return str(err.value).splitlines()


def test_a_misspelled_namespace_is_refused_with_the_right_spelling():
    assert key_problems_of({"woocomerce-dr:sshKeys": '["ssh-ed25519 AAAA me"]'}) == [
        "woocomerce-dr:sshKeys: unknown config namespace, so nothing would read this key; did you mean "
        "'woocommerce-dr:sshKeys'? (got 'woocomerce-dr'; allowed: woocommerce-dr, pulumi, linode, cloudflare, "
        "random, tls)"
    ]


@pytest.mark.parametrize("key", ["pulumi:tags", "linode:url", "cloudflare:baseUrl", "tls:proxy", "random:x"])
def test_the_namespaces_of_pulumi_and_the_providers_the_program_uses_are_allowed(key):
    config = {**load_stack_file("prod").config, key: "v"}
    validate_config_map(config, load_stack_file("prod").secret_keys)


@pytest.mark.parametrize(("key", "variable"), [("linode:token", "LINODE_TOKEN"),
                                               ("cloudflare:apiToken", "CLOUDFLARE_API_TOKEN")])
def test_a_provider_token_in_plain_text_is_refused_without_echoing_it(key, variable):
    token = "d3b07384d113edec49eaa6238ad5ff00"
    [line] = key_problems_of({key: token})
    assert line == (
        f"{key}: a provider credential in plain text (got '(not shown)'; allowed: a secure: value "
        f"(`pulumi config set --secret {key} ...`), or no {key} in the stack file and {variable} in the "
        "environment or a Pulumi ESC environment)"
    )
    assert token not in line


def test_provider_tokens_may_be_absent_and_come_from_the_environment():
    stack = load_stack_file("prod")
    config = {k: v for k, v in stack.config.items() if k not in ("linode:token", "cloudflare:apiToken")}
    validate_config_map(config, [])


def test_key_problems_and_value_problems_are_reported_together():
    lines = key_problems_of({"linode:token": "x", "woocommerce-dr:domain": "shop"})
    assert [line.split(": ", 1)[0] for line in lines] == ["linode:token", "woocommerce-dr:domain"]


# --- the reference ---------------------------------------------------------------------------------

def config_keys(model=StackConfig, prefix: str = "") -> list[str]:
    """Every key of the model as docs/config.md writes it: `traffic.monitor.interval`, `regions[].webNodes`."""
    from pydantic import BaseModel

    keys = []
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name)
        sub = next((a for a in (field.annotation, *getattr(field.annotation, "__args__", ()))
                    if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if sub is None:
            keys.append(key)
        else:
            keys.extend(config_keys(sub, key + ("[]." if key == "regions" else ".")))
    return keys


def test_docs_config_md_names_every_key_and_the_new_rules():
    doc = (REPO_ROOT / "docs" / "config.md").read_text()
    missing = [key for key in config_keys() if f"`{key}`" not in doc]
    assert missing == [], f"docs/config.md does not list {missing}"
    for rule in ("duplicate key", "10,000 values", "woocomerce-dr:sshKeys", "secure:", "webNodes: true",
                 "dns-failover", "at most a /8's worth of IPv4 addresses", "/32's worth of"):
        assert rule in doc, rule


# --- under `pulumi up`: the language host passes config and secret keys in the environment -----------

def run_load_stack_config(monkeypatch, config: dict[str, str], secret_keys: list[str]):
    """load_stack_config as a program started by the language host sees it: nothing set in-process,
    PULUMI_CONFIG and PULUMI_CONFIG_SECRET_KEYS in the environment. Returns the config or the RunError."""
    import contextvars
    import json as json_module

    import pulumi
    from pulumi.runtime import config as runtime_config

    from components.config import load_stack_config

    monkeypatch.setenv("PULUMI_CONFIG", json_module.dumps(config))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json_module.dumps(secret_keys))

    def fresh_program():
        runtime_config.set_all_config({}, [])  # in this copy of the context only
        try:
            return load_stack_config()
        except pulumi.RunError as err:
            return err

    return contextvars.copy_context().run(fresh_program)


def test_pulumi_up_sees_secure_tokens_as_secret_through_the_environment(monkeypatch):
    stack = load_stack_file("prod")
    assert isinstance(run_load_stack_config(monkeypatch, stack.config, stack.secret_keys), StackConfig)


def test_pulumi_up_refuses_a_plain_token_and_a_misspelled_namespace(monkeypatch):
    stack = load_stack_file("prod")
    config = {**stack.config, "woocomerce-dr:sshKeys": "[]"}
    err = run_load_stack_config(monkeypatch, config, [k for k in stack.secret_keys if k != "linode:token"])
    assert [line.split(": ", 1)[0] for line in str(err).splitlines()] == [
        "invalid stack configuration:", "linode:token", "woocomerce-dr:sshKeys"]


# --- automation and the RTO budget --------------------------------------------------------------------

AUTOMATION = {"promote": "automatic", "guards": ["us-central", "eu-central"],
              "drctlSource": {"repo": "https://github.com/example/woocommerce-dr.git", "commit": "ab" * 20}}
TOKENS = {"guardLinodeToken": "0123456789abcdef0123456789abcdef", "guardCloudflareToken": "AbCdEf_0123456789-xyz"}


def test_fast_confirm_detection_is_one_interval_then_fast_probes():
    from components.config import MonitorSpec

    m = MonitorSpec(interval=60, timeout=5, consecutive_down=2, fast_interval=5)
    assert (m.fast_confirm_detection_seconds, m.worst_case_detection_seconds) == (70, 60 * 2 + 5 * 3)
    assert MonitorSpec(interval=60, timeout=5, consecutive_down=0, fast_interval=5).fast_confirm_detection_seconds == 65
    assert MonitorSpec(interval=30, timeout=4, consecutive_down=4, fast_interval=6).fast_confirm_detection_seconds == 52


def test_prod_as_the_readme_turns_it_automatic_fits_its_rto():
    c = validate_stack_config(raw_config("prod", automation=AUTOMATION, **TOKENS))
    # Load-balancer mode waits for Cloudflare too: max(70, 135) + the guard's next cycles 2 x 5
    # + confirm 60 + promotion 90.
    assert (c.automatic_detection_seconds, c.automatic_rto_seconds) == (135, 295)


def test_in_dns_failover_mode_the_guard_detects_alone_and_needs_no_watchdog_cidrs():
    traffic = {**raw_config("prod")["traffic"], "mode": "dns-failover"}
    c = validate_stack_config(raw_config("prod", traffic=traffic, automation=AUTOMATION, **TOKENS))
    assert (c.automatic_detection_seconds, c.automatic_rto_seconds) == (70, 230)


def test_manual_promotion_keeps_guards_unchecked_so_one_key_turns_automation_off():
    c = validate_stack_config(raw_config("prod", automation={**AUTOMATION, "promote": "manual", "guards": ["us-central"]}))
    assert not c.automatic and c.automation.guards == ("us-central",)


def prod_config_map() -> dict[str, str]:
    """prod's project keys as the Pulumi CLI hands them to the program: structured values as JSON text."""
    return {f"woocommerce-dr:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in raw_config("prod").items()}


def test_guard_tokens_must_be_secure_values():
    config = prod_config_map()
    config |= {"woocommerce-dr:automation": json.dumps(AUTOMATION), **{f"woocommerce-dr:{k}": v for k, v in TOKENS.items()}}
    with pytest.raises(ConfigError) as err:
        validate_config_map(config, secret_keys={"woocommerce-dr:guardCloudflareToken"})
    assert str(err.value) == ("woocommerce-dr:guardLinodeToken: a credential in plain text (got '(not shown)'; allowed: "
                              "a secure: value (`pulumi config set --secret guardLinodeToken ...`))")
    assert validate_config_map(config, secret_keys={f"woocommerce-dr:{k}" for k in TOKENS}).automatic


def test_an_all_digit_token_stays_text():
    config = prod_config_map()
    config |= {"woocommerce-dr:automation": json.dumps(AUTOMATION),
               "woocommerce-dr:guardLinodeToken": "1234567890123456789012", "woocommerce-dr:guardCloudflareToken": "x" * 40}
    c = validate_config_map(config, secret_keys={"woocommerce-dr:guardLinodeToken", "woocommerce-dr:guardCloudflareToken"})
    assert c.guard_linode_token.get_secret_value() == "1234567890123456789012"


def test_a_malformed_token_is_refused_without_being_shown():
    lines = problems(automation=AUTOMATION, **{**TOKENS, "guardLinodeToken": "has spaces in it, not a token"})
    assert lines == ["woocommerce-dr:guardLinodeToken: not an API token: 16 to 256 letters, digits and - _ . : = + / "
                     "expected (got '(not shown)'; allowed: a Linode token with Firewalls and Databases read/write, "
                     "as the provider's console shows it)"]
    assert "has spaces" not in "\n".join(lines)


def test_operator_and_watchdog_networks_together_stay_within_the_budget():
    # Each a /9, within the budget alone; both open the NodeBalancers' 80/443 in one firewall.
    lines = problems(access={"watchdogCidrs": ["10.0.0.0/9"], "operatorCidrs": ["10.128.0.0/9", "11.0.0.0/9"]})
    assert lines == [
        "woocommerce-dr:access.operatorCidrs: with access.watchdogCidrs these networks cover more than a /8 of IPv4 "
        "(25,165,824 addresses, overlaps merged): together they open the NodeBalancers, around Cloudflare, to a large "
        "share of the internet (got [\"10.128.0.0/9\", \"11.0.0.0/9\"]; allowed: networks that together cover at most a "
        "/8 of IPv4 (16,777,216 addresses) and at most a /32 of IPv6 together)"]
    assert validate_stack_config(raw_config("prod", access={"watchdogCidrs": ["10.0.0.0/9"],
                                                            "operatorCidrs": ["10.128.0.0/9"]}))


def test_the_archive_defaults_to_the_last_region_of_the_failover_order():
    two = validate_stack_config(raw_config("prod"))
    three = validate_stack_config(raw_config("prod", regions=[{"region": "us-east"}, {"region": "eu-west"},
                                                              {"region": "ap-south"}]))
    assert (two.archive_region, three.archive_region) == ("eu-west", "ap-south")


def test_backups_off_need_no_drctl_source():
    config = validate_stack_config(raw_config("prod", automation=None, backups={"enabled": False}))
    assert config.automation.drctl_source is None
    assert problems("prod", automation=None) == [
        "woocommerce-dr:automation.drctlSource: required with backups.enabled: the DR replica in backups.region "
        "installs drctl from this repository at this commit to run the binlog archiver (drctl archive) (got nothing; "
        "allowed: a mapping with keys repo (https git URL) and commit (40-character commit id), or backups.enabled "
        "false)"]
