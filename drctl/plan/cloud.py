"""What the providers would answer, for running the program offline under the SDK's mock engine.

This is the offline plan's engine, not a test double hidden in the product: `drctl plan` says in its
output that it ran against these answers. Two modes, as the real engine has:

- preview (the plan): a resource's outputs are exactly its inputs, so everything the provider
  computes (ids, IPs, hostnames, passwords) stays unknown and prints as "(known after apply)".
- apply (the tests): realistic computed values per type token, derived from the resource name so
  every run gives the same answer, letting tests prove the wiring (a pool origin must *be* the
  NodeBalancer's computed IP).

Invokes (region capabilities, Cloudflare's published IP ranges) answer in both modes, as they do
during a real preview.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

import pulumi

from components.regions import LINODE_REGIONS, REQUIRED_CAPABILITIES

# Cloudflare's published ranges (https://www.cloudflare.com/ips/), as the getIpRanges invoke
# returns them; the web tier opens its NodeBalancers to these only.
CLOUDFLARE_IPV4 = (
    "173.245.48.0/20", "103.21.244.0/22", "103.22.200.0/22", "103.31.4.0/22", "141.101.64.0/18",
    "108.162.192.0/18", "190.93.240.0/20", "188.114.96.0/20", "197.234.240.0/22", "198.41.128.0/17",
    "162.158.0.0/15", "104.16.0.0/13", "104.24.0.0/14", "172.64.0.0/13", "131.0.72.0/22",
)
CLOUDFLARE_IPV6 = (
    "2400:cb00::/32", "2606:4700::/32", "2803:f800::/32", "2405:b500::/32", "2405:8100::/32",
    "2a06:98c0::/29", "2c0f:f248::/32",
)

FULL_CAPABILITIES = (*REQUIRED_CAPABILITIES, "Managed Databases", "VPCs", "Block Storage", "Object Storage")

_FAKE_CA = base64.b64encode(
    b"-----BEGIN CERTIFICATE-----\nOFFLINE-PLAN-CA\n-----END CERTIFICATE-----\n"
).decode()


def _n(name: str, modulo: int, offset: int = 0) -> int:
    """A stable small number from a resource name."""
    return offset + int(hashlib.sha256(name.encode()).hexdigest(), 16) % modulo


class OfflineCloud(pulumi.runtime.Mocks):
    def __init__(self, preview: bool, region_capabilities: Mapping[str, tuple[str, ...]] | None = None):
        self.preview = preview
        self.region_capabilities = dict(region_capabilities or {})

    # --- invokes -------------------------------------------------------------------------------
    def call(self, args: pulumi.runtime.MockCallArgs):
        if args.token == "linode:index/getRegion:getRegion":
            region = args.args.get("id", "")
            caps = self.region_capabilities.get(region, FULL_CAPABILITIES if region in LINODE_REGIONS else ())
            return {"id": region, "label": region, "country": region[:2], "status": "ok", "capabilities": list(caps)}
        if args.token == "cloudflare:index/getIpRanges:getIpRanges":
            return {"ipv4Cidrs": list(CLOUDFLARE_IPV4), "ipv6Cidrs": list(CLOUDFLARE_IPV6)}
        raise NotImplementedError(f"the offline engine has no answer for invoke {args.token}")

    # --- resources -----------------------------------------------------------------------------
    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        if self.preview:
            return "", dict(args.inputs)
        computed = _COMPUTED.get(args.typ, lambda _name, _inputs: {})(args.name, args.inputs)
        return computed.pop("id", f"{args.name}-id"), {**args.inputs, **computed}


def _instance(name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    a, b = _n(name, 200, 20), _n(name + "b", 250, 1)
    # Reserved addresses given as `ipv4s` are the instance's public IPv4, as the API assigns them.
    public = list(inputs.get("ipv4s") or []) or [f"172.105.{a}.{b}"]
    return {
        "id": str(_n(name, 9_000_000, 40_000_000)),
        "ipAddress": public[0],
        "ipv4s": [*public, f"192.168.{a}.{b}"] if inputs.get("privateIp") else public,
        "privateIpAddress": f"192.168.{a}.{b}" if inputs.get("privateIp") else None,
        "ipv6": f"2600:3c03::f03c:94ff:fe{a:02x}:{b:02x}/128",
        "status": "running",
        "label": inputs.get("label") or name,
    }


def _nodebalancer(name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    a, b = _n(name, 200, 20), _n(name + "b", 250, 1)
    return {
        "id": str(_n(name, 900_000, 100_000)),
        "ipv4": f"45.79.{a}.{b}",
        "ipv6": f"2600:3c00:{a:x}::{b:x}",
        "hostname": f"nb-45-79-{a}-{b}.ip.linodeusercontent.com",
    }


def _mysql(name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    n = _n(name, 900_000, 100_000)
    return {
        "id": str(n),
        "hostPrimary": f"a{n}-akamai-prod-{n % 9999}-default.g2a.akamaidb.net",
        "hostStandby": f"replica-a{n}-akamai-prod-{n % 9999}-default.g2a.akamaidb.net",
        "port": 11876,
        "caCert": pulumi.Output.secret(_FAKE_CA),
        "rootUsername": "akmadmin",
        "rootPassword": pulumi.Output.secret(f"offline-{hashlib.sha256(name.encode()).hexdigest()[:20]}"),
        "status": "active",
    }


def _bucket(name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    region = inputs.get("region", "us-east")
    return {"id": f"{region}:{inputs.get('label')}", "s3Endpoint": f"{region}-1.linodeobjects.com",
            "hostname": f"{inputs.get('label')}.{region}-1.linodeobjects.com",
            "endpoint": f"{region}-1.linodeobjects.com"}


def _object_storage_key(name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    digest = hashlib.sha256(name.encode()).hexdigest()
    return {"id": str(_n(name, 900_000, 100_000)), "accessKey": pulumi.Output.secret(digest[:20].upper()),
            "secretKey": pulumi.Output.secret(digest[20:60]), "limited": True}


def _random_password(name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    length = int(inputs.get("length", 32))
    return {"result": hashlib.sha256(name.encode()).hexdigest()[:length]}


def _pem(kind: str, name: str) -> str:
    body = base64.b64encode(hashlib.sha256(name.encode()).digest()).decode()
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n"


_COMPUTED = {
    "linode:index/instance:Instance": _instance,
    "linode:index/nodeBalancer:NodeBalancer": _nodebalancer,
    "linode:index/reservedIp:ReservedIp": lambda n, i: {
        "id": f"172.233.{_n(n, 200, 20)}.{_n(n + 'b', 250, 1)}", "address": f"172.233.{_n(n, 200, 20)}.{_n(n + 'b', 250, 1)}",
        "reserved": True,
    },
    "linode:index/nodeBalancerConfig:NodeBalancerConfig": lambda n, i: {"id": str(_n(n, 900_000, 100_000))},
    "linode:index/nodeBalancerNode:NodeBalancerNode": lambda n, i: {"id": str(_n(n, 900_000, 100_000)), "status": "UP"},
    "linode:index/firewall:Firewall": lambda n, i: {"id": str(_n(n, 900_000, 100_000)), "status": "enabled"},
    "linode:index/databaseMysqlV2:DatabaseMysqlV2": _mysql,
    "linode:index/databaseAccessControls:DatabaseAccessControls": lambda n, i: {"id": str(_n(n, 900_000, 100_000))},
    "linode:index/objectStorageBucket:ObjectStorageBucket": _bucket,
    "linode:index/objectStorageKey:ObjectStorageKey": _object_storage_key,
    "random:index/randomPassword:RandomPassword": _random_password,
    "tls:index/privateKey:PrivateKey": lambda n, i: {
        "privateKeyPem": _pem("PRIVATE KEY", n), "publicKeyPem": _pem("PUBLIC KEY", n),
    },
    "tls:index/certRequest:CertRequest": lambda n, i: {"certRequestPem": _pem("CERTIFICATE REQUEST", n)},
    "tls:index/selfSignedCert:SelfSignedCert": lambda n, i: {"certPem": _pem("CERTIFICATE", n)},
    "tls:index/locallySignedCert:LocallySignedCert": lambda n, i: {"certPem": _pem("CERTIFICATE", n)},
    "cloudflare:index/originCaCertificate:OriginCaCertificate": lambda n, i: {
        "id": str(_n(n, 10**12)), "certificate": _pem("CERTIFICATE", n), "expiresOn": "2041-11-27T00:00:00Z",
    },
    "cloudflare:index/loadBalancerMonitor:LoadBalancerMonitor": lambda n, i: {"id": f"{_n(n, 16**32):032x}"},
    "cloudflare:index/loadBalancerPool:LoadBalancerPool": lambda n, i: {"id": f"{_n(n, 16**32):032x}"},
    "cloudflare:index/loadBalancer:LoadBalancer": lambda n, i: {"id": f"{_n(n, 16**32):032x}"},
    "cloudflare:index/dnsRecord:DnsRecord": lambda n, i: {"id": f"{_n(n, 16**32):032x}"},
    # A Worker's id is its name; the upload reports the handlers the module exports.
    "cloudflare:index/workersScript:WorkersScript": lambda n, i: {
        "id": i.get("scriptName") or n, "handlers": ["fetch"], "hasModules": True,
        "etag": hashlib.sha256(str(i.get("content", "")).encode()).hexdigest(),
    },
    "cloudflare:index/workersRoute:WorkersRoute": lambda n, i: {"id": f"{_n(n, 16**32):032x}"},
    "cloudflare:index/authenticatedOriginPullsCertificate:AuthenticatedOriginPullsCertificate": lambda n, i: {
        "id": f"{_n(n, 16**32):032x}", "certificateId": f"{_n(n, 16**32):032x}", "status": "active",
    },
    "cloudflare:index/authenticatedOriginPullsSettings:AuthenticatedOriginPullsSettings": lambda n, i: {
        "id": i.get("zoneId", n),
    },
    "cloudflare:index/zoneSetting:ZoneSetting": lambda n, i: {"id": i.get("settingId", n)},
}
