"""Cloud Firewall rules, as plain data so they can be read and tested at a glance.

Web nodes take HTTP(S) only from the NodeBalancer's network and SSH only from `access.adminCidrs`;
NodeBalancers take HTTP(S) only from Cloudflare, so nobody reaches the shop around Cloudflare, and
from `access.watchdogCidrs`, `access.operatorCidrs` and the guard Linodes, where `drctl watch`, drctl
and `drctl guard` probe each region's /healthz directly; MySQL Linodes take MySQL only from the
addresses the database tier names, the operators' networks and the guards, and SSH from
`access.adminCidrs`; guard Linodes take SSH from `access.operatorCidrs` and nothing else.
IPv4 and IPv6 sources go in separate rules, each labelled for what it admits.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

# Linode NodeBalancers reach their backends from this network.
NODEBALANCER_NETWORK = "192.168.255.0/24"

HTTP_PORTS = "80, 443"

# Cloud Firewall caps the rules per direction and the addresses across all rules of one firewall.
# Checked here so a long adminCidrs list fails the preview with the numbers, not the API mid-`up`.
MAX_RULES = 25
MAX_ADDRESSES = 255


# The most address space one list of sources may open SSH, MySQL or the origins to, per family, after
# overlapping networks are merged: a /8's worth of IPv4 (the largest block a registry ever gave one
# organisation) and a /32's worth of IPv6 (a registry's standard allocation to a whole ISP). Any
# admin or watchdog network fits; a list past either spans many organisations' users, a large share
# of the internet, however it is split (["0.0.0.0/1", "128.0.0.0/1"] is everyone). The policy pack
# (policy/firewall_rules.py) holds the same numbers.
MAX_SOURCE_PREFIX = {4: 8, 6: 32}


class FirewallRuleError(ValueError):
    pass


def web_node_inbound(admin_cidrs: Sequence[str]) -> list[dict[str, Any]]:
    rules = [_rule("http-from-nodebalancer", HTTP_PORTS, [NODEBALANCER_NETWORK], [])]
    ipv4, ipv6 = _by_family(admin_cidrs)
    if ipv4:
        rules.append(_rule("ssh-from-admins-ipv4", "22", ipv4, []))
    if ipv6:
        rules.append(_rule("ssh-from-admins-ipv6", "22", [], ipv6))
    return _within_limits("web node", rules)


def nodebalancer_inbound(
    cloudflare_ipv4: Sequence[str], cloudflare_ipv6: Sequence[str], watchdog_cidrs: Sequence[str] = (),
    operator_cidrs: Sequence[str] = (), guard_cidrs: Sequence[str] = (),
) -> list[dict[str, Any]]:
    rules = []
    if cloudflare_ipv4:
        rules.append(_rule("http-from-cloudflare-ipv4", HTTP_PORTS, list(cloudflare_ipv4), []))
    if cloudflare_ipv6:
        rules.append(_rule("http-from-cloudflare-ipv6", HTTP_PORTS, [], list(cloudflare_ipv6)))
    if not rules:
        # An empty list would leave the NodeBalancer closed to everyone, Cloudflare included.
        raise FirewallRuleError("Cloudflare's get_ip_ranges returned no ranges; refusing to close the NodeBalancer")
    # drctl watch, drctl on operators' machines and the guards probe each region's /healthz directly.
    for name, cidrs in (("watchdog", watchdog_cidrs), ("operators", operator_cidrs), ("guards", guard_cidrs)):
        rules += _by_family_rules(f"http-from-{name}", HTTP_PORTS, cidrs)
    return _within_limits("NodeBalancer", rules)


def database_inbound(mysql_cidrs: Sequence[str], admin_cidrs: Sequence[str], operator_cidrs: Sequence[str] = (),
                     guard_cidrs: Sequence[str] = ()) -> list[dict[str, Any]]:
    """A MySQL Linode: MySQL from `mysql_cidrs` (single hosts: web nodes and peers), from the
    operators' networks and from the guards (where drctl runs), SSH from the admins; no rule for an
    empty list (the firewall's DROP policy then applies)."""
    rules = []
    for name, port, cidrs in (("mysql-from-clients", "3306", mysql_cidrs), ("mysql-from-operators", "3306", operator_cidrs),
                              ("mysql-from-guards", "3306", guard_cidrs), ("ssh-from-admins", "22", admin_cidrs)):
        rules += _by_family_rules(name, port, cidrs)
    return _within_limits("database", rules)


def guard_inbound(operator_cidrs: Sequence[str]) -> list[dict[str, Any]]:
    """A guard Linode serves nothing: SSH from the operators' networks only (it runs drctl for them)."""
    return _within_limits("guard", _by_family_rules("ssh-from-operators", "22", operator_cidrs))


def _by_family_rules(name: str, ports: str, cidrs: Iterable[str]) -> list[dict[str, Any]]:
    ipv4, ipv6 = _by_family(cidrs)
    return ([_rule(f"{name}-ipv4", ports, ipv4, [])] if ipv4 else []) + ([_rule(f"{name}-ipv6", ports, [], ipv6)] if ipv6 else [])


def address_space(cidrs: Iterable[str]) -> dict[int, int]:
    """{4: IPv4 addresses, 6: IPv6 addresses} the networks cover together, overlaps merged."""
    by_family: dict[int, list] = {4: [], 6: []}
    for cidr in cidrs:
        net = ipaddress.ip_network(cidr, strict=False)
        by_family[net.version].append(net)
    return {version: sum(n.num_addresses for n in ipaddress.collapse_addresses(nets))
            for version, nets in by_family.items()}


def too_wide(cidrs: Iterable[str]) -> tuple[int, int, int] | None:
    """(family, addresses covered, allowed) for the first family past MAX_SOURCE_PREFIX, or None."""
    for version, covered in address_space(cidrs).items():
        allowed = 2 ** ((32 if version == 4 else 128) - MAX_SOURCE_PREFIX[version])
        if covered > allowed:
            return version, covered, allowed
    return None


def _rule(label: str, ports: str, ipv4: list[str], ipv6: list[str]) -> dict[str, Any]:
    rule: dict[str, Any] = {"label": label, "action": "ACCEPT", "protocol": "TCP", "ports": ports}
    if ipv4:
        rule["ipv4s"] = ipv4
    if ipv6:
        rule["ipv6s"] = ipv6
    return rule


def _by_family(cidrs: Iterable[str]) -> tuple[list[str], list[str]]:
    ipv4 = [c for c in cidrs if ipaddress.ip_network(c).version == 4]
    ipv6 = [c for c in cidrs if ipaddress.ip_network(c).version == 6]
    return ipv4, ipv6


def _within_limits(what: str, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    addresses = sum(len(r.get("ipv4s", ())) + len(r.get("ipv6s", ())) for r in rules)
    if len(rules) > MAX_RULES or addresses > MAX_ADDRESSES:
        raise FirewallRuleError(
            f"the {what} firewall would need {len(rules)} inbound rules with {addresses} addresses "
            f"(allowed: at most {MAX_RULES} rules and {MAX_ADDRESSES} addresses per Cloud Firewall)"
        )
    return rules
