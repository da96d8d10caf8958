"""What a Linode Cloud Firewall rule lets in: its port list and whether a source is the whole
internet. Linode writes ports as a string ("22", "80,443", "80-90, 91"); no ports on a TCP rule, or
protocol ALL, means every port."""

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
