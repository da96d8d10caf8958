"""What a Linode Cloud Firewall rule lets in: its port list, whether a source is the whole internet,
and how much of the internet a list of sources covers. Linode writes ports as a string ("22",
"80,443", "80-90, 91"); no ports on a TCP rule, or protocol ALL, means every port."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

ALL_PORTS = ((1, 65535),)


class BadPortSpec(ValueError):
    pass


def port_ranges(spec: str | None) -> tuple[tuple[int, int], ...]:
    """'80,443' -> ((80, 80), (443, 443)); '1-65535' -> ((1, 65535),); empty -> every port."""
    if spec is None or not str(spec).strip():
        return ALL_PORTS
    ranges = []
    for part in str(spec).split(","):
        part = part.strip()
        low, dash, high = part.partition("-")
        try:
            first, last = int(low), int(high) if dash else int(low)
        except ValueError:
            raise BadPortSpec(f"{spec!r} is not a port list") from None
        if not 1 <= first <= last <= 65535:
            raise BadPortSpec(f"{spec!r} is not a port list")
        ranges.append((first, last))
    return tuple(ranges)


def covers(ranges: Iterable[tuple[int, int]], port: int) -> bool:
    return any(first <= port <= last for first, last in ranges)


def is_whole_internet(source: object) -> bool:
    """0.0.0.0/0, ::/0 and their spellings (0.0.0.0/00, ::0/0, ...): a /0 network."""
    try:
        return ipaddress.ip_network(str(source).strip(), strict=False).prefixlen == 0
    except ValueError:
        return False  # not an address at all: the Linode API rejects it before it can open anything


# The most address space the sources that reach one service may cover, per family, after overlapping
# networks are merged: a /8's worth of IPv4 (the largest block a registry ever gave one organisation)
# and a /32's worth of IPv6 (a registry's standard allocation to a whole ISP). Past either, a list
# spans many organisations' users, however it is split: ["0.0.0.0/1", "128.0.0.0/1"] is everyone.
# The program's config refuses the same (components/firewall_rules.py holds the same numbers).
MAX_SOURCE_PREFIX = {4: 8, 6: 32}


def too_wide(sources: Iterable[object]) -> tuple[int, int] | None:
    """(family, addresses covered) for the first family past MAX_SOURCE_PREFIX, or None. Sources that
    are not networks are left out: the Linode API rejects them before they can open anything."""
    networks: dict[int, list] = {4: [], 6: []}
    for source in sources:
        try:
            net = ipaddress.ip_network(str(source).strip(), strict=False)
        except ValueError:
            continue
        networks[net.version].append(net)
    for version, nets in networks.items():
        covered = sum(n.num_addresses for n in ipaddress.collapse_addresses(nets))
        if covered > 2 ** ((32 if version == 4 else 128) - MAX_SOURCE_PREFIX[version]):
            return version, covered
    return None


def as_prefix(version: int, addresses: int) -> str:
    """2**31 IPv4 addresses -> 'as much as a /1'; 3 * 2**24 -> 'more than a /7'."""
    prefix = (32 if version == 4 else 128) - (addresses.bit_length() - 1)
    return f"as much as a /{prefix}" if addresses & (addresses - 1) == 0 else f"more than a /{prefix}"


BUDGET = f"at most a /{MAX_SOURCE_PREFIX[4]} of IPv4 and a /{MAX_SOURCE_PREFIX[6]} of IPv6 in all, overlaps merged"
