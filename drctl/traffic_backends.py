"""Where the shop's traffic goes, and moving it: one small interface, several backends.

`drctl status` reads it, `drctl promote` / `failback` move traffic to the new primary's region and
(unplanned) take the lost region out, and `drctl drill` / `rehearse` inject faults through it. The
backends:

- `CloudflareLoadBalancer` (traffic mode `load-balancer`): pool health from the pools' health
  endpoint; traffic moves by reordering the load balancer's `default_pools` (and `fallback_pool`);
  a region is taken out by disabling its pool's origins.
- `CloudflareDns` (traffic mode `dns-failover`): the A/AAAA records point at one region's
  NodeBalancer; traffic moves by repointing them (one all-or-nothing batch). There is no per-region
  switch: disabling a region the records do not point at is a no-op, disabling the one they point
  at is refused (move traffic first).
- the rehearsal's HAProxy runtime-API backend (drctl rehearse) implements the same Protocol.

Every backend method raises `TrafficError` with a message for people (never a token).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


class TrafficError(Exception):
    """Reading or moving traffic failed; the message says which call and why."""


@dataclass(frozen=True)
class RegionTraffic:
    region: str
    enabled: bool | None  # None: the backend has no per-region switch (DNS)
    healthy: bool | None  # None: no health data (DNS mode, or the monitor has not reported)
    detail: str = ""  # e.g. "pool 3f2a...: 1/1 origins healthy", "A record -> 192.0.2.10"

    def as_dict(self) -> dict[str, Any]:
        return {"region": self.region, "enabled": self.enabled, "healthy": self.healthy, "detail": self.detail}


@dataclass(frozen=True)
class TrafficState:
    mode: str  # "load-balancer" | "dns-failover" | "haproxy"
    serving: str | None  # the region receiving traffic now; None when none does or it cannot be told
    order: tuple[str, ...]  # the failover order as configured now, first = preferred
    regions: dict[str, RegionTraffic] = field(default_factory=dict)
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "serving": self.serving, "order": list(self.order),
                "regions": {k: v.as_dict() for k, v in self.regions.items()}, "detail": self.detail}


@dataclass(frozen=True)
class TrafficChange:
    changed: bool  # False: it already was so (every method is idempotent)
    description: str  # what was done (or found), for the journal and the operator

    def as_dict(self) -> dict[str, Any]:
        return {"changed": self.changed, "description": self.description}


@runtime_checkable
class TrafficBackend(Protocol):
    """The interface promote, failback, status and the drill use. Implementations are idempotent:
    re-running a step after a crash repeats the call harmlessly."""

    mode: str

    def state(self) -> TrafficState:
        """Read where traffic goes now and each region's health."""
        ...

    def route_to(self, region: str) -> TrafficChange:
        """Send traffic to `region` first (and enable it): after a promotion, the new primary's."""
        ...

    def set_region_enabled(self, region: str, enabled: bool) -> TrafficChange:
        """Take `region` out of rotation (fencing a lost primary, a drill's fault) or back in."""
        ...


def wait_until_serving(backend: TrafficBackend, region: str, timeout: float, *, poll: float = 2.0,
                       say: Callable[[str], None] = lambda _: None,
                       clock: Callable[[], float] = time.monotonic,
                       sleep: Callable[[float], None] = time.sleep) -> TrafficState:
    """Poll until `region` serves (bounded); raise TrafficError saying what is still in the way."""
    deadline = clock() + timeout
    last_said = clock()
    while True:
        state = backend.state()
        if state.serving == region:
            return state
        now = clock()
        if now >= deadline:
            seen = state.regions.get(region)
            why = f" ({region}: {seen.detail})" if seen and seen.detail else ""
            raise TrafficError(f"traffic still goes to {state.serving or 'no region'} after {timeout:.0f} s, "
                               f"not {region}{why}")
        if now - last_said >= 10:
            say(f"    waiting for traffic to reach {region} (now: {state.serving or 'none'})")
            last_said = now
        sleep(poll)


def backend_for(outputs: Any) -> TrafficBackend:
    """The backend for the stack's traffic mode, with the Cloudflare client from the environment."""
    raise TrafficError(f"no Cloudflare traffic backend in this build for mode {outputs.traffic_mode!r}")
