"""A small deployed shop for the runbook tests: real MariaDB servers on loopback playing one
database server per region, the stack outputs that describe them (as `drctl --outputs FILE`
reads them), a Linode API fake and a traffic backend.

    shop = Shop.build(servers, tmp_path, linode)      # servers[0] is the primary
    shop.runbook(traffic=...)                          # what promote/failback/status act on
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cloudflare
import pymysql
import pytest

from drctl.cloud.cloudflare import CloudflareApi
from drctl.cloud.linode import LinodeAPI
from drctl.cloud.traffic import CloudflareLoadBalancer, RegionTraffic, TrafficBackend, TrafficChange, TrafficState
from drctl.mysql import replication as r
from drctl.runbook.context import Runbook
from drctl.stack.outputs import parse_outputs
from tests.support.fake_cloudflare import FakeCloudflare
from tests.support.fake_linode import FakeLinode
from tests.support.mariadb import MariaDBServer

REGIONS = ("us-east", "eu-west", "ap-south")
ACCOUNT, ZONE, LB = "acct", "zone", "lb"
ADMIN_USER, ADMIN_PASSWORD = "drctl", "drctl-admin-pw"
APP_USER, APP_PASSWORD = "woocommerce", "app-pw"
DB_FIREWALL_IDS = {"us-east": 301, "eu-west": 302, "ap-south": 303}
FIREWALL_RULES = {"inbound": [{"action": "ACCEPT", "protocol": "TCP", "ports": "3306",
                               "addresses": {"ipv4": ["192.0.2.10/32"]}}],
                  "inbound_policy": "DROP", "outbound": [], "outbound_policy": "ACCEPT"}


def add_accounts(server: MariaDBServer) -> None:
    """drctl's admin and the shop's account, outside the binary log, as the servers' bootstrap
    makes them (an account written to the binlog of a replica would be an errant transaction)."""
    with contextlib.closing(server.connect()) as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_log_bin = 0")
        cur.execute("CREATE USER %s@'127.0.0.1' IDENTIFIED BY %s REQUIRE SSL", (ADMIN_USER, ADMIN_PASSWORD))
        cur.execute("GRANT ALL PRIVILEGES ON *.* TO %s@'127.0.0.1' WITH GRANT OPTION", (ADMIN_USER,))
        cur.execute("CREATE USER %s@'127.0.0.1' IDENTIFIED BY %s", (APP_USER, APP_PASSWORD))
        cur.execute("GRANT ALL PRIVILEGES ON shop.* TO %s@'127.0.0.1'", (APP_USER,))


def replicate_from(replica: MariaDBServer, source: MariaDBServer) -> None:
    with contextlib.closing(replica.connect()) as conn:
        r.set_read_only(conn, r.Dialect.MARIADB, True)
        r.change_source(conn, r.Dialect.MARIADB, r.Source(source.host, source.port, ADMIN_USER, ADMIN_PASSWORD,
                                                          source.tls.ca, connect_retry=1, heartbeat_period=1))
        r.start_replica(conn, r.Dialect.MARIADB)
        r.wait_until_replicating(conn, r.Dialect.MARIADB, timeout=20)


def wait_caught_up(source: MariaDBServer, *replicas: MariaDBServer, timeout: float = 20) -> None:
    with contextlib.closing(source.connect()) as conn:
        gtids = r.executed_gtids(conn, r.Dialect.MARIADB)
    for replica in replicas:
        with contextlib.closing(replica.connect()) as conn:
            assert r.wait_for_gtids(conn, r.Dialect.MARIADB, gtids, timeout), f"{replica} did not catch up"


def order_ids(server: MariaDBServer) -> set[int]:
    return {row[0] for row in server.query("SELECT id FROM shop.orders")}


def app_insert(server: MariaDBServer, order_id: int) -> None:
    with contextlib.closing(server.connect(APP_USER, APP_PASSWORD, tls=False)) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO shop.orders (id, total) VALUES (%s, %s)", (order_id, order_id * 10))


class Cloud:
    """The Linode and Cloudflare fakes for a shop in these regions, reached the way drctl reaches the
    real APIs: tokens and base URLs from the environment (set them with `env()`)."""

    def __init__(self, regions: tuple[str, ...]):
        self.regions = regions
        self.linode = FakeLinode()
        self.cloudflare = FakeCloudflare()

    def __enter__(self) -> Cloud:
        self.linode.__enter__()
        self.cloudflare.start()
        for i, region in enumerate(self.regions):
            self.linode.add_nodebalancer(100 + i, (80, 443), [("web-0", f"192.168.{i}.10"), ("web-1", f"192.168.{i}.11")])
            self.cloudflare.add_pool(ACCOUNT, f"pool-{region}", region, [(f"{region}-nodebalancer", f"192.0.2.{10 + i}")])
        pools = [f"pool-{g}" for g in self.regions]
        self.cloudflare.add_load_balancer(ZONE, LB, "shop.example.com", pools, pools[-1])
        return self

    def __exit__(self, *exc: object) -> None:
        self.cloudflare.stop()
        self.linode.__exit__(*exc)

    def env(self) -> dict[str, str]:
        return {"LINODE_TOKEN": self.linode.token, "DRCTL_LINODE_BASE_URL": self.linode.base_url,
                "CLOUDFLARE_API_TOKEN": self.cloudflare.token, "DRCTL_CLOUDFLARE_BASE_URL": self.cloudflare.base_url}

    def serving(self) -> str | None:
        pool = self.cloudflare.serving_pool(LB)
        return pool.removeprefix("pool-") if pool else None

    def load_balancer(self) -> TrafficBackend:
        api = CloudflareApi(cloudflare.Cloudflare(api_token=self.cloudflare.token, base_url=self.cloudflare.base_url,
                                                  max_retries=0), sleep=lambda _: None)
        return CloudflareLoadBalancer(api, ZONE, ACCOUNT, LB, {g: f"pool-{g}" for g in self.regions})


class FakeTraffic:
    """A traffic backend in memory (the Cloudflare ones are tested against the Cloudflare fake)."""

    mode = "fake"

    def __init__(self, regions: tuple[str, ...]):
        self.order = list(regions)
        self.enabled = dict.fromkeys(regions, True)
        self.healthy = dict.fromkeys(regions, True)
        self.calls: list[tuple[str, ...]] = []

    def state(self) -> TrafficState:
        serving = next((g for g in self.order if self.enabled[g] and self.healthy[g]), None)
        return TrafficState(self.mode, serving, tuple(self.order),
                            {g: RegionTraffic(g, self.enabled[g], self.healthy[g]) for g in self.order})

    def route_to(self, region: str) -> TrafficChange:
        self.calls.append(("route_to", region))
        changed = self.order[0] != region or not self.enabled[region]
        self.order = [region, *(g for g in self.order if g != region)]
        self.enabled[region] = True
        return TrafficChange(changed, f"traffic order now {', '.join(self.order)}")

    def set_region_enabled(self, region: str, enabled: bool) -> TrafficChange:
        self.calls.append(("set_region_enabled", region, str(enabled)))
        changed = self.enabled[region] != enabled
        self.enabled[region] = enabled
        return TrafficChange(changed, f"{region} {'enabled' if enabled else 'disabled'}")


@dataclass
class Shop:
    servers: dict[str, MariaDBServer]  # region -> server, primary first
    outputs_file: Path
    state_dir: Path
    linode: Any = None  # FakeLinode
    said: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, servers: list[MariaDBServer], tmp_path: Path, linode: Any = None, *, rpo_seconds: int = 60,
              traffic_mode: str = "load-balancer", replicate: bool = True, **outputs: Any) -> Shop:
        by_region = dict(zip(REGIONS, servers, strict=False))
        for server in servers:
            add_accounts(server)
        primary, *replicas = servers
        with contextlib.closing(primary.connect()) as conn:
            r.install_heartbeat(conn, with_event=True)
        primary.execute("CREATE DATABASE shop", "CREATE TABLE shop.orders (id INT PRIMARY KEY, total INT)")
        if replicate:
            for replica in replicas:
                replicate_from(replica, primary)
            wait_caught_up(primary, *replicas)
        if linode is not None:
            for region in by_region:
                linode.add_firewall(DB_FIREWALL_IDS[region], json.loads(json.dumps(FIREWALL_RULES)))
        doc = outputs_doc(by_region, rpo_seconds=rpo_seconds, traffic_mode=traffic_mode, **outputs)
        path = tmp_path / "outputs.json"
        path.write_text(json.dumps(doc, indent=2))
        return cls(by_region, path, tmp_path / "state", linode)

    def runbook(self, traffic: Any = None, linode: bool = True) -> Runbook:
        outputs = parse_outputs(json.loads(self.outputs_file.read_text()), str(self.outputs_file))
        fake = self.linode
        return Runbook(
            outputs=outputs, state_dir=self.state_dir, say=self.said.append,
            traffic_factory=(lambda: traffic) if traffic is not None else None,
            linode_factory=(lambda: LinodeAPI(token=fake.token, base_url=fake.base_url, retry_interval=0.01))
            if fake is not None and linode else None,
        )

    def __getitem__(self, region: str) -> MariaDBServer:
        return self.servers[region]


def paper_servers(directory: Path) -> dict[str, Any]:
    """Stand-ins for database servers, for outputs of tests that never connect to one."""
    ca = directory / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    return {g: SimpleNamespace(host=f"198.51.100.{i + 1}", port=3306, server_id=i + 1, tls=SimpleNamespace(ca=str(ca)))
            for i, g in enumerate(REGIONS)}


def outputs_doc(servers: dict[str, MariaDBServer], *, rpo_seconds: int = 60, traffic_mode: str = "load-balancer",
                mode: str = "self-managed") -> dict[str, Any]:
    """The drctl stack output for these servers (the primary is the first region)."""
    regions = list(servers)
    ca = Path(next(iter(servers.values())).tls.ca)
    ca_pem = ca.read_text()
    primary_region, primary = regions[0], servers[regions[0]]

    def region_out(i: int, region: str) -> dict[str, Any]:
        return {
            "region": region, "role": "primary" if i == 0 else "dr",
            "nodeBalancer": {"id": 100 + i, "ipv4": f"192.0.2.{10 + i}", "hostname": f"nb-{region}.example"},
            "webInstances": [{"id": 500 + i, "label": f"web-{region}-0", "privateIp": f"192.168.{i}.10"}],
            "webFirewallId": 400 + i, "nodeBalancerFirewallId": 450 + i,
            "poolId": f"pool-{region}" if traffic_mode == "load-balancer" else None,
        }

    return {"drctl": {
        "project": "woocommerce-dr", "stack": "runbook-test", "domain": "shop.example.com",
        "trafficMode": traffic_mode, "healthPath": "/healthz",
        "regions": [region_out(i, g) for i, g in enumerate(regions)],
        "monitor": {"interval": 60, "timeout": 5, "retries": 2, "consecutiveDown": 2, "consecutiveUp": 2,
                    "expectedCodes": "200"},
        "cloudflare": {"accountId": ACCOUNT, "zoneId": ZONE, "monitorId": "mon",
                       "loadBalancerId": LB if traffic_mode == "load-balancer" else None,
                       "dnsRecordIds": [] if traffic_mode == "load-balancer" else ["rec-a"]},
        "database": {
            "mode": mode,
            "primary": {"region": primary_region, "host": primary.host, "port": primary.port, "caCert": ca_pem,
                        "adminUser": ADMIN_USER, "adminPassword": ADMIN_PASSWORD, "caPath": str(ca),
                        "instanceId": 900, "firewallId": DB_FIREWALL_IDS[primary_region]},
            "replicas": [
                {"region": g, "instanceId": 900 + i, "publicIp": s.host, "privateIp": s.host, "serverId": s.server_id,
                 "port": s.port, "firewallId": DB_FIREWALL_IDS[g]}
                for i, (g, s) in enumerate(servers.items()) if g != primary_region
            ],
            "serverCaCert": ca_pem, "serverCaPath": str(ca), "replicaAdminUser": ADMIN_USER,
            "replicaAdminPassword": ADMIN_PASSWORD, "heartbeat": "event scheduler",
        },
        "objectives": {"rtoSeconds": 300, "rpoSeconds": rpo_seconds, "worstCaseDetectionSeconds": 120},
    }}


class OrderWriter:
    """The shop taking orders: sequence-numbered inserts through the application account into one
    server, as fast as it can, recording which commits succeeded."""

    def __init__(self, server: MariaDBServer, start: int = 1):
        self.server, self.next_id = server, start
        self.committed: list[int] = []
        self.refused: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> OrderWriter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        conn = None
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = self.server.connect(APP_USER, APP_PASSWORD, tls=False)
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO shop.orders (id, total) VALUES (%s, %s)", (self.next_id, 1))
                self.committed.append(self.next_id)
            except pymysql.err.MySQLError:
                self.refused.append(self.next_id)
                with contextlib.suppress(Exception):
                    conn.close()
                conn = None
                time.sleep(0.01)
            self.next_id += 1


@pytest.fixture
def cloud():
    """Local fakes of the Cloudflare and Linode APIs for the runbook's regions."""
    with Cloud(REGIONS) as c:
        yield c
