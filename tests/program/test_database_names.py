"""The database servers' names in DNS: every MySQL Linode (a self-managed primary, every replica) has
a DNS-only A record at its *computed* public IPv4, named as its certificate, so its peers replicate
from it by that name whichever server is primary after `drctl promote` or `drctl failback`."""

import pytest

from components.server_names import MAX_COMMON_NAME, common_name, name_problem, server_name
from drctl.mysql.topology import servers_from_outputs
from drctl.plan.engine import unwrap
from drctl.stack.outputs import parse_outputs
from tests.support import harness
from tests.support.mysql_linodes import cloud_config, public_ip

DNS = "cloudflare:index/dnsRecord:DnsRecord"
INSTANCE = "linode:index/instance:Instance"
CSR = "tls:index/certRequest:CertRequest"
MYSQL = "linode:index/databaseMysqlV2:DatabaseMysqlV2"
RUNS = ["prod_run", "dr_test_run", "three_region_run", "three_region_self_managed"]


@pytest.fixture(scope="module")
def three_region_self_managed():
    return harness.run_ok(harness.three_regions("dr-test"))


@pytest.fixture(params=RUNS)
def run(request):
    return request.getfixturevalue(request.param)


def mysql_linodes(run) -> dict:
    """Region -> the MySQL Linode there."""
    return {i.inputs["region"]: i for i in run.of_type(INSTANCE)
            if {"role:database-primary", "role:database-replica"} & set(i.inputs["tags"])}


def name_records(run) -> list:
    """Every DNS record but the shop's own (dns-failover mode's A and AAAA of the domain)."""
    return [r for r in run.of_type(DNS) if r.inputs["name"] != harness.validate(run).domain]


def record_at(run, ip: str):
    (record,) = [r for r in name_records(run) if r.inputs["content"] == ip]
    return record


def test_one_a_record_per_mysql_linode_at_its_computed_public_ipv4(run):
    servers = mysql_linodes(run)
    records = name_records(run)
    assert sorted(r.inputs["content"] for r in records) == sorted(public_ip(i) for i in servers.values())
    assert {r.inputs["type"] for r in records} == {"A"}  # peers are admitted by IPv4 only


def test_each_record_names_its_server_as_its_certificate_does(run):
    domain = harness.validate(run).domain
    for region, instance in mysql_linodes(run).items():
        record = record_at(run, public_ip(instance))
        assert run.one(CSR, f"db-{region}-csr").inputs["dnsNames"] == [record.inputs["name"]]
        assert record.inputs["name"] == f"mysql-{region}.db.{domain}"


def test_records_are_dns_only_short_lived_and_say_whose_they_are(run):
    zone = harness.validate(run).traffic.zone_id
    for record in name_records(run):
        assert record.inputs["proxied"] is False  # Cloudflare proxies HTTP, not MySQL
        assert record.inputs["ttl"] == 60 and record.inputs["zoneId"] == zone
        comment = record.inputs["comment"]
        assert comment.startswith(f"woocommerce-dr {run.stack.stack}: MySQL ") and len(comment) <= 100
        assert not record.ignore_changes  # the address is Pulumi's to keep right, not drctl's


def test_a_managed_primary_publishes_no_name_of_ours(prod_run):
    (db,) = prod_run.of_type(MYSQL)
    assert [r.inputs["name"] for r in name_records(prod_run)] == ["mysql-eu-west.db.shop.example.com"]
    assert not [r for r in prod_run.of_type(DNS) if r.inputs["name"] == db.outputs["hostPrimary"]]


def test_dns_failover_mode_publishes_the_same_names(prod_run):
    dns_run = harness.run_ok(harness.dns_failover("prod"))
    assert [(r.inputs["name"], r.inputs["content"]) for r in name_records(dns_run)] == [
        (r.inputs["name"], r.inputs["content"]) for r in name_records(prod_run)]


def test_no_mysql_linode_needs_an_etc_hosts_line(run):
    for instance in mysql_linodes(run).values():
        assert "/etc/hosts" not in [f["path"] for f in cloud_config(instance)["write_files"]], instance.name


def test_replicas_boot_after_the_record_of_the_primary_they_seed_from(dr_test_run, three_region_self_managed):
    for run in (dr_test_run, three_region_self_managed):
        primary_record = record_at(run, public_ip(run.one(INSTANCE, "db-primary-us-east")))
        for region, instance in mysql_linodes(run).items():
            if region != "us-east":
                assert primary_record.urn in instance.depends_on, region


@pytest.mark.parametrize("run_name", RUNS)
def test_drctl_repoints_peers_at_the_published_name_and_connects_to_its_address(request, run_name):
    run = request.getfixturevalue(run_name)
    outputs = parse_outputs(unwrap(run.outputs["drctl"]), run.stack.stack)
    for region, server in servers_from_outputs(outputs).items():
        if server.managed:  # Linode's own name, in Linode's DNS
            assert server.as_source().host == server.host == run.of_type(MYSQL)[0].outputs["hostPrimary"]
            continue
        record = record_at(run, server.host)
        assert server.as_source().host == server.peer_host == server.tls_name == record.inputs["name"]
        assert server.host == public_ip(mysql_linodes(run)[region])


# --- the names themselves ---------------------------------------------------------------------------

def test_names_live_under_the_configured_domain():
    assert server_name("shop.example.com", "eu-west") == "mysql-eu-west.db.shop.example.com"
    assert server_name("dr-test.shop.example.com", "us-east") == "mysql-us-east.db.dr-test.shop.example.com"


def test_a_label_over_63_characters_is_refused():
    problem = name_problem("shop.example.com", ("us-east", "x" * 58))
    assert problem == f"the database server name 'mysql-{'x' * 58}.db.shop.example.com' has a label over 63 " \
                      f"characters ('mysql-{'x' * 58}')"
    assert name_problem("shop.example.com", ("us-east", "eu-west")) is None


def test_a_certificate_subject_never_exceeds_x509s_64_characters():
    short = server_name("shop.example.com", "eu-west")
    long = server_name("a-rather-long-subdomain.of-an-even-longer-company-name.example.com", "eu-west")
    assert common_name(short) == short
    assert len(long) > MAX_COMMON_NAME and common_name(long) == "mysql-eu-west"
