"""The field types of the request bodies drctl writes, as the Cloudflare and Linode API references
document them. The Cloudflare fake refuses a DNS record body that breaks them the way the API does,
and tests/drctl/cloud/test_write_bodies.py holds every write drctl sends against them.

A schema is a type (`str`, `int`, `bool`, `NUMBER`, `dict` for a free-form object), a one-item
list (a list of that), or a dict of field -> schema (an object with only those fields). `int`
means an integer in the JSON: `300.0` is not one, whatever Python thinks of it.
"""

from __future__ import annotations

import re
from typing import Any

NUMBER = "number"  # an integer or a float (never a boolean)

# Cloudflare: DNS records (create, patch, put, and the same inside a batch).
DNS_RECORD = {"id": str, "type": str, "name": str, "content": str, "ttl": int, "proxied": bool, "comment": str,
              "tags": [str]}
DNS_BATCH = {"deletes": [{"id": str}], "patches": [DNS_RECORD], "puts": [DNS_RECORD], "posts": [DNS_RECORD]}
# Cloudflare: a load balancer's pool order, and a pool's origins.
LOAD_BALANCER_PATCH = {"default_pools": [str], "fallback_pool": str, "enabled": bool}
POOL_ORIGIN = {"name": str, "address": str, "enabled": bool, "weight": NUMBER, "port": int,
               "header": {"Host": [str]}, "virtual_network_id": str, "flatten_cname": bool}
POOL_PATCH = {"origins": [POOL_ORIGIN], "enabled": bool, "minimum_origins": int}
# Linode: Cloud Firewall rules, NodeBalancer nodes, managed databases.
FIREWALL_RULE = {"action": str, "protocol": str, "ports": str, "label": str, "description": str,
                 "addresses": {"ipv4": [str], "ipv6": [str]}}
FIREWALL_RULES = {"inbound": [FIREWALL_RULE], "inbound_policy": str, "outbound": [FIREWALL_RULE],
                  "outbound_policy": str}
NODEBALANCER_NODE = {"mode": str, "weight": int, "label": str, "address": str}
DATABASE_UPDATE = {"allow_list": [str], "label": str}

CLOUDFLARE_WRITES = [  # (method, path after /client/v4, schema)
    ("POST", r"/zones/[^/]+/dns_records/batch", DNS_BATCH),
    ("POST", r"/zones/[^/]+/dns_records", DNS_RECORD),
    ("PATCH", r"/zones/[^/]+/dns_records/[^/]+", DNS_RECORD),
    ("PUT", r"/zones/[^/]+/dns_records/[^/]+", DNS_RECORD),
    ("PATCH", r"/zones/[^/]+/load_balancers/[^/]+", LOAD_BALANCER_PATCH),
    ("PATCH", r"/accounts/[^/]+/load_balancers/pools/[^/]+", POOL_PATCH),
]
LINODE_WRITES = [  # (method, path after /v4, schema)
    ("PUT", r"/networking/firewalls/\d+/rules", FIREWALL_RULES),
    ("PUT", r"/nodebalancers/\d+/configs/\d+/nodes/\d+", NODEBALANCER_NODE),
    ("PUT", r"/databases/mysql/instances/\d+", DATABASE_UPDATE),
]


def problems(value: Any, schema: Any, where: str = "body") -> list[str]:
    """What in `value` breaks `schema`, one line each (empty: nothing). A null is accepted for
    any field: the APIs take it as "unset"."""
    if value is None and where != "body":
        return []
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return [f"{where} must be an object (got {type(value).__name__})"]
        found = []
        for key, item in value.items():
            if key not in schema:
                found.append(f"{where}.{key} is not a documented field")
            else:
                found += problems(item, schema[key], f"{where}.{key}")
        return found
    if isinstance(schema, list):
        if not isinstance(value, list):
            return [f"{where} must be a list (got {type(value).__name__})"]
        return [p for i, item in enumerate(value) for p in problems(item, schema[0], f"{where}[{i}]")]
    if _fits(value, schema):
        return []
    wanted = {int: "an integer", bool: "a boolean", str: "a string", dict: "an object", NUMBER: "a number"}[schema]
    return [f"{where} must be {wanted} (got {value!r})"]


def write_schema(table: list[tuple[str, str, Any]], method: str, path: str) -> Any:
    """The schema of the write `method path`, or None when the table documents none."""
    for m, pattern, schema in table:
        if m == method and re.fullmatch(pattern, path):
            return schema
    return None


def _fits(value: Any, schema: Any) -> bool:
    if schema is int:
        return type(value) is int
    if schema is bool:
        return type(value) is bool
    if schema is NUMBER:
        return type(value) in (int, float)
    return isinstance(value, schema)
