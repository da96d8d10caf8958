"""Every body drctl writes to Cloudflare and Linode, held against the field types the APIs document
(tests/support/api_fields.py): integers stay integers, booleans stay booleans, no field the API
does not know. A write drctl learns to make must be added to the table, or this test fails."""

from __future__ import annotations

import re

import pytest

from drctl.cloud.cloudflare import CloudflareApi
from drctl.cloud.dns_records import DnsFailover, RegionAddresses
from drctl.cloud.linode import LinodeAPI, blackhole_rules
from drctl.watch.lease import CloudflareLease
from tests.support.api_fields import CLOUDFLARE_WRITES, LINODE_WRITES, problems, write_schema
from tests.support.fake_cloudflare import FakeCloudflare
from tests.support.fake_linode import FakeLinode

ZONE, ACCOUNT, DOMAIN = "a" * 32, "b" * 32, "shop.example.test"
REGIONS = (RegionAddresses("us-east", "192.0.2.10", "2600:3c03::10"),
           RegionAddresses("eu-west", "192.0.2.11", "2600:3c03::11"))


def cloudflare_writes(fake: FakeCloudflare) -> None:
    """Every Cloudflare write drctl makes, through drctl's own code: the records of a DNS-only name
    with a custom TTL (as the database servers' names are), the watchdog's lease and fenced switch,
    the load balancer's pool order and a pool's origins."""
    api = CloudflareApi.from_env(environ={"CLOUDFLARE_API_TOKEN": fake.token, "DRCTL_CLOUDFLARE_BASE_URL": fake.base_url})
    a = fake.add_record(ZONE, "A", DOMAIN, "192.0.2.10", proxied=False, ttl=300)
    aaaa = fake.add_record(ZONE, "AAAA", DOMAIN, "2600:3c03::10", proxied=False, ttl=300)
    db = fake.add_record(ZONE, "A", f"db.{DOMAIN}", "192.0.2.20", proxied=False, ttl=120)
    api.set_dns_content(ZONE, db["id"], "192.0.2.21")

    lease = CloudflareLease(api, ZONE, DOMAIN, "w1", 600)
    assert lease.refresh().held
    failover = DnsFailover(api, ZONE, DOMAIN, (a["id"], aaaa["id"]), REGIONS)
    fence = lease.fence()
    _, done = failover.point_to("eu-west", failover.read(), deletes=fence.deletes, posts=fence.posts)
    lease.confirm(done)
    lease.release()

    fake.add_pool(ACCOUNT, "pool-us", "us-east", [("us-east-nb", "192.0.2.10")])
    fake.add_pool(ACCOUNT, "pool-eu", "eu-west", [("eu-west-nb", "192.0.2.11")])
    fake.add_load_balancer(ZONE, "lb", DOMAIN, ["pool-us", "pool-eu"], "pool-us")
    api.set_pool_order(ZONE, "lb", ["pool-eu", "pool-us"], fallback_pool="pool-eu")
    api.set_origins_enabled(ACCOUNT, "pool-us", False)


def linode_writes(fake: FakeLinode) -> None:
    """Every Linode write drctl makes: a node's mode (drills), a firewall blackhole and its
    restoration (fencing), a managed database's allow-list."""
    client = LinodeAPI(token=fake.token, base_url=fake.base_url, retry_interval=0.01)
    client.set_node_mode(client.node_statuses(7)[0], "reject")
    original = client.firewall_rules(9)
    client.set_firewall_rules(9, blackhole_rules(original))
    client.set_firewall_rules(9, original)
    client.set_database_allow_list(5, [])


@pytest.fixture
def linode():
    with FakeLinode() as fake:
        fake.add_nodebalancer(7, (443,), [("web-0", "192.168.1.10")])
        fake.add_firewall(9, {"inbound": [{"action": "ACCEPT", "protocol": "TCP", "ports": "3306", "label": "mysql",
                                           "addresses": {"ipv4": ["192.0.2.1/32"]}}],
                              "inbound_policy": "DROP", "outbound": [], "outbound_policy": "ACCEPT"})
        fake.databases[5] = {"allow_list": ["192.0.2.1/32"]}
        yield fake


def check(table: list, writes: list[tuple[str, str, object]]) -> tuple[list[str], set[str]]:
    """(what breaks the documented types, which documented endpoints were written to)."""
    found, used = [], set()
    for method, path, body in writes:
        schema = write_schema(table, method, path)
        if schema is None:
            found.append(f"{method} {path}: no documented body in tests/support/api_fields.py")
            continue
        used.add(next(f"{m} {pattern}" for m, pattern, _ in table if m == method and re.fullmatch(pattern, path)))
        found += [f"{method} {path}: {p}" for p in problems(body, schema)]
    return found, used


def test_every_cloudflare_write_body_has_the_documented_field_types(fake_cf):
    cloudflare_writes(fake_cf)
    writes = [r for r in fake_cf.requests if r.is_write]
    found, used = check(CLOUDFLARE_WRITES, [(r.method, r.path, r.body) for r in writes])
    assert found == []
    assert [r for r in writes if r.status >= 400] == []
    assert used == {"POST /zones/[^/]+/dns_records/batch", "PATCH /zones/[^/]+/dns_records/[^/]+",
                    "PATCH /zones/[^/]+/load_balancers/[^/]+", "PATCH /accounts/[^/]+/load_balancers/pools/[^/]+"}


def test_every_linode_write_body_has_the_documented_field_types(linode):
    linode_writes(linode)
    found, used = check(LINODE_WRITES, linode.writes())
    assert found == []
    assert used == {f"PUT {pattern}" for _, pattern, _ in LINODE_WRITES}


def test_a_record_keeps_its_integer_ttl_and_proxy_setting_through_a_switch(fake_cf):
    cloudflare_writes(fake_cf)
    records = fake_cf.find(name=DOMAIN)
    assert {(r["type"], r["content"], r["ttl"], r["proxied"]) for r in records} == {
        ("A", "192.0.2.11", 300, False), ("AAAA", "2600:3c03::11", 300, False)}
    assert all(type(r["ttl"]) is int for r in records)
