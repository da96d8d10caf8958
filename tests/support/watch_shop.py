"""Fixtures for the watchdog tests: HTTPS origins per region, the Cloudflare DNS fake with the
shop's A/AAAA records, and stack outputs in dns-failover mode pointing at both."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from drctl import cli
from drctl.watch import command as watch
from drctl.watch.loop import Watchdog
from tests.support.fake_cloudflare import FakeCloudflare
from tests.support.https_origins import DOMAIN, HEALTH_PATH, Certificates, Origins, make_certificates

ZONE = "0123456789abcdef0123456789abcdef"
REGIONS = (("us-east", "127.0.0.2"), ("eu-west", "127.0.0.3"), ("ap-south", "127.0.0.4"))


def ipv6_of(address: str) -> str:
    return f"2600:3c03::{address.rsplit('.', 1)[1]}"


def outputs_doc(regions: list[tuple[str, str]], record_ids: list[str], *, mode: str = "dns-failover",
                domain: str = DOMAIN, **monitor: Any) -> dict[str, Any]:
    """A complete `drctl` stack output (the contract model validates it) for these regions."""
    mon = {"interval": 60, "timeout": 5, "retries": 2, "consecutiveDown": 2, "consecutiveUp": 2,
           "expectedCodes": "200", **monitor}
    return {"drctl": {
        "project": "woocommerce-dr", "stack": "watch-test", "domain": domain, "trafficMode": mode,
        "healthPath": HEALTH_PATH,
        "regions": [{
            "region": name, "role": "primary" if i == 0 else "dr",
            "nodeBalancer": {"id": 100 + i, "ipv4": address, "ipv6": f"{ipv6_of(address)}/128",
                             "hostname": f"nb-{i}.example.net"},
            "webInstances": [{"id": 200 + i, "label": f"{name}-web-0", "privateIp": f"192.168.{i}.10"}],
            "webFirewallId": 300 + i, "nodeBalancerFirewallId": 400 + i,
        } for i, (name, address) in enumerate(regions)],
        "monitor": mon,
        "cloudflare": {"accountId": "f" * 32, "zoneId": ZONE, "dnsRecordIds": record_ids},
        "database": {
            "mode": "self-managed",
            "primary": {"region": regions[0][0], "host": "10.0.0.1", "port": 3306, "caCert": "cert",
                        "adminUser": "admin", "adminPassword": "db-secret"},
            "replicas": [{"region": name, "instanceId": 500 + i, "publicIp": f"198.51.100.{i}",
                          "privateIp": f"192.168.9.{i}", "serverId": 2 + i} for i, (name, _) in enumerate(regions[1:])],
        },
        "objectives": {"rtoSeconds": 300, "rpoSeconds": 15, "worstCaseDetectionSeconds": 135},
    }}


@dataclass
class Shop:
    """A dns-failover deployment on loopback: origins, the fake, the outputs file."""

    fake: FakeCloudflare
    origins: Origins
    certs: Certificates
    outputs: Path
    a_id: str
    aaaa_id: str
    regions: list[tuple[str, str]]
    built: list[Watchdog] = field(default_factory=list)

    def address(self, region: str) -> str:
        return dict(self.regions)[region]

    def origin(self, region: str):
        return self.origins[self.address(region)]

    def points_at(self) -> tuple[str, str]:
        return self.fake.record(self.a_id)["content"], self.fake.record(self.aaaa_id)["content"]

    def region_pointed_at(self) -> str:
        a, aaaa = self.points_at()
        [region] = [name for name, address in self.regions if address == a]
        assert aaaa == ipv6_of(a), "A and AAAA must move together"
        return region

    def record_writes(self) -> int:
        return len(self.fake.record_writes(self.a_id, self.aaaa_id))

    def flags(self, *extra: str) -> list[str]:
        return ["watch", "--outputs", str(self.outputs), "--origin-port", str(self.origins.port),
                "--interval", "0.2", "--timeout", "0.15", "--fall", "2", "--rise", "2", *extra]

    def watchdog(self, *extra: str, wall=None) -> Watchdog:
        """Built by the real CLI parser and `watch.build`, logging into a buffer of its own."""
        args = cli.build_parser().parse_args(self.flags(*extra))
        kwargs = {"wall": wall} if wall else {}
        watchdog = watch.build(args, log_stream=io.StringIO(), **kwargs)
        self.built.append(watchdog)
        return watchdog

    def close(self) -> None:
        for watchdog in self.built:
            watchdog.close()
            if watchdog.metrics:
                watchdog.metrics.close()

    @staticmethod
    def events(watchdog: Watchdog, name: str | None = None) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in watchdog.log.stream.getvalue().splitlines()]
        return [e for e in lines if name is None or e["event"] == name]


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def fake_cf() -> Iterator[FakeCloudflare]:
    with FakeCloudflare() as fake:
        yield fake


def make_shop(fake: FakeCloudflare, origins: Origins, certs: Certificates, tmp_path: Path,
              regions: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch) -> Shop:
    primary = regions[0][1]
    a = fake.add_record(ZONE, "A", DOMAIN, primary, proxied=True)
    aaaa = fake.add_record(ZONE, "AAAA", DOMAIN, ipv6_of(primary), proxied=True)
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(outputs_doc(regions, [a["id"], aaaa["id"]])))
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", fake.token)
    monkeypatch.setenv("DRCTL_CLOUDFLARE_BASE_URL", fake.base_url)
    return Shop(fake, origins, certs, outputs, a["id"], aaaa["id"], regions)


@pytest.fixture
def shop(fake_cf: FakeCloudflare, certs: Certificates, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shop]:
    """Two regions: us-east (primary, 127.0.0.2) and eu-west (127.0.0.3)."""
    regions = list(REGIONS[:2])
    with Origins(certs, [address for _, address in regions]) as origins:
        shop = make_shop(fake_cf, origins, certs, tmp_path, regions, monkeypatch)
        yield shop
        shop.close()


@pytest.fixture
def shop3(fake_cf: FakeCloudflare, certs: Certificates, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shop]:
    """Three regions: us-east, eu-west, ap-south in failover order."""
    regions = list(REGIONS)
    with Origins(certs, [address for _, address in regions]) as origins:
        shop = make_shop(fake_cf, origins, certs, tmp_path, regions, monkeypatch)
        yield shop
        shop.close()
