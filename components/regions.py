"""Linode regions this project knows, and the Cloudflare health-check regions nearest each.

The list is checked offline by config validation (typos like `eu-wst` fail before anything is
created); whether a region really offers Linodes, NodeBalancers, Cloud Firewalls and Metadata is
checked at deploy time with the `linode.get_region` invoke, because capabilities change.
"""

from __future__ import annotations

# Linode region id -> Cloudflare load-balancer check region closest to it. Cloudflare's monitor
# probes from these regions; probing from next door keeps a transatlantic blip from failing a pool.
LINODE_REGIONS: dict[str, str] = {
    "us-east": "ENAM",  # Newark
    "us-central": "ENAM",  # Dallas
    "us-southeast": "ENAM",  # Atlanta
    "us-iad": "ENAM",  # Washington, DC
    "us-ord": "ENAM",  # Chicago
    "us-mia": "ENAM",  # Miami
    "ca-central": "ENAM",  # Toronto
    "us-west": "WNAM",  # Fremont
    "us-lax": "WNAM",  # Los Angeles
    "us-sea": "WNAM",  # Seattle
    "br-gru": "SSAM",  # Sao Paulo
    "eu-west": "WEU",  # London
    "gb-lon": "WEU",  # London 2
    "eu-central": "WEU",  # Frankfurt
    "de-fra-2": "WEU",  # Frankfurt 2
    "fr-par": "WEU",  # Paris
    "nl-ams": "WEU",  # Amsterdam
    "es-mad": "WEU",  # Madrid
    "it-mil": "WEU",  # Milan
    "se-sto": "EEU",  # Stockholm
    "ap-west": "SAS",  # Mumbai
    "in-maa": "SAS",  # Chennai
    "in-bom-2": "SAS",  # Mumbai 2
    "ap-south": "SEAS",  # Singapore
    "sg-sin-2": "SEAS",  # Singapore 2
    "id-cgk": "SEAS",  # Jakarta
    "ap-northeast": "NEAS",  # Tokyo
    "jp-osa": "NEAS",  # Osaka
    "jp-tyo-3": "NEAS",  # Tokyo 3
    "ap-southeast": "OC",  # Sydney
    "au-mel": "OC",  # Melbourne
}

# Every region Cloudflare load-balancer monitors can probe from.
CLOUDFLARE_CHECK_REGIONS: tuple[str, ...] = (
    "WNAM", "ENAM", "WEU", "EEU", "NSAM", "SSAM", "OC", "ME", "NAF", "SAF", "SAS", "SEAS", "NEAS",
    "ALL_REGIONS",
)

# Capabilities (as named by the Linode API) every region of this project needs.
REQUIRED_CAPABILITIES: tuple[str, ...] = ("Linodes", "NodeBalancers", "Cloud Firewall", "Metadata")
# A guard Linode (components/guard.py): no NodeBalancer, but its cloud-init needs Metadata.
GUARD_CAPABILITIES: tuple[str, ...] = ("Linodes", "Cloud Firewall", "Metadata")


def nearest_check_region(region: str) -> str:
    return LINODE_REGIONS[region]
