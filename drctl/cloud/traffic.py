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

import contextlib
import time
from collections.abc import Callable, Iterator
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



# --- Cloudflare load balancer ---------------------------------------------------------------------


@dataclass
class CloudflareLoadBalancer:
    api: Any  # drctl.cloud.cloudflare.CloudflareApi
    zone_id: str
    account_id: str
    load_balancer_id: str
    pools: dict[str, str]  # region -> pool id, in the stack's region order
    mode: str = "load-balancer"

    @classmethod
    def from_outputs(cls, outputs: Any, api: Any) -> CloudflareLoadBalancer:
        cf = outputs.cloudflare
        pools = {r.region: r.pool_id for r in outputs.regions if r.pool_id}
        if not cf.load_balancer_id or len(pools) != len(outputs.regions):
            raise TrafficError(f"stack {outputs.stack!r} is in load-balancer mode but its outputs lack the load "
                               "balancer id or a region's pool id")
        return cls(api, cf.zone_id, cf.account_id, cf.load_balancer_id, pools)

    def state(self) -> TrafficState:
        with _cloudflare_errors():
            lb = self.api.get_load_balancer(self.zone_id, self.load_balancer_id)
            regions, usable = {}, {}
            for region, pool_id in self.pools.items():
                pool = self.api.get_pool(self.account_id, pool_id)
                health = self.api.pool_health(self.account_id, pool_id)
                enabled = pool.serviceable
                detail = f"pool {pool.name or pool_id}: {health.detail}" + ("" if enabled else ", origins disabled")
                regions[region] = RegionTraffic(region, enabled, health.healthy, detail)
                usable[pool_id] = enabled and health.healthy is not False
        by_pool = {v: k for k, v in self.pools.items()}
        order = tuple(by_pool[p] for p in lb.default_pools if p in by_pool)
        serving_pool = next((p for p in lb.default_pools if usable.get(p)), lb.fallback_pool)
        detail = f"steering off: the first healthy pool serves; fallback {by_pool.get(lb.fallback_pool or '', '-')}"
        return TrafficState(self.mode, by_pool.get(serving_pool or ""), order, regions, detail)

    def route_to(self, region: str) -> TrafficChange:
        pool_id = self._pool(region)
        with _cloudflare_errors():
            _, enabled = self.api.set_origins_enabled(self.account_id, pool_id, True)
            lb = self.api.get_load_balancer(self.zone_id, self.load_balancer_id)
            wanted = [pool_id, *(p for p in lb.default_pools if p != pool_id)]
            if list(lb.default_pools) == wanted and lb.fallback_pool == pool_id:
                moved = False
            else:
                self.api.set_pool_order(self.zone_id, self.load_balancer_id, wanted, fallback_pool=pool_id)
                moved = True
        by_pool = {v: k for k, v in self.pools.items()}
        order = ", ".join(by_pool.get(p, p) for p in wanted)
        what = f"load balancer pool order {order} (fallback {region})" if moved else f"{region}'s pool already first"
        return TrafficChange(moved or enabled, what + (f"; {region}'s origins enabled" if enabled else ""))

    def set_region_enabled(self, region: str, enabled: bool) -> TrafficChange:
        pool_id = self._pool(region)
        with _cloudflare_errors():
            _, changed = self.api.set_origins_enabled(self.account_id, pool_id, enabled)
        state = "enabled" if enabled else "disabled"
        return TrafficChange(changed, f"{region}: pool origins {state}" + ("" if changed else " already"))

    def _pool(self, region: str) -> str:
        if region not in self.pools:
            raise TrafficError(f"no load-balancer pool for region {region!r}")
        return self.pools[region]


# --- Cloudflare DNS records -----------------------------------------------------------------------


@dataclass
class CloudflareDns:
    failover: Any  # drctl.cloud.dns_records.DnsFailover
    mode: str = "dns-failover"

    @classmethod
    def from_outputs(cls, outputs: Any, api: Any) -> CloudflareDns:
        from drctl.cloud.dns_records import DnsFailover
        from drctl.stack.outputs import OutputsError

        try:
            return cls(DnsFailover.from_outputs(outputs, api))
        except OutputsError as err:
            raise TrafficError(str(err)) from None

    def state(self) -> TrafficState:
        with _cloudflare_errors():
            records = self.failover.read()
        serving = records.region
        pointed = records.by_type()
        regions = {}
        for r in self.failover.regions:
            types = [t for t, region in pointed.items() if region == r.region]
            detail = ", ".join(f"{t} record -> {r.address_for(t)}" for t in types)
            regions[r.region] = RegionTraffic(r.region, None, None, detail)
        split = len(set(pointed.values())) > 1
        detail = "records point at different regions: " + str(pointed) if split else ""
        order = tuple(r.region for r in self.failover.regions)
        return TrafficState(self.mode, serving, order, regions, detail)

    def route_to(self, region: str) -> TrafficChange:
        with _cloudflare_errors():
            current = self.failover.read()
            _, done = self.failover.point_to(region, current)
        if done is None:
            return TrafficChange(False, f"DNS records already point at {region}")
        return TrafficChange(True, f"DNS records repointed to {region} ({len(done.patches)} record(s))")

    def set_region_enabled(self, region: str, enabled: bool) -> TrafficChange:
        """DNS has no per-region switch: only "not where the records point" can be assured."""
        with _cloudflare_errors():
            serving = self.failover.read().region
        if enabled or serving != region:
            return TrafficChange(False, f"dns-failover: the records point at {serving}, not at {region}"
                                 if not enabled else f"dns-failover: {region} takes traffic when the records point there")
        raise TrafficError(f"dns-failover mode has no per-region switch and the records point at {region}: traffic "
                           "leaves it when they are repointed (the promotion's traffic step)")


@contextlib.contextmanager
def _cloudflare_errors() -> Iterator[None]:
    """Turn the Cloudflare layer's errors into TrafficError (its messages are already for people)."""
    from drctl.cloud.cloudflare import CloudflareApiError

    try:
        yield
    except CloudflareApiError as err:
        raise TrafficError(str(err)) from None


def backend_for(outputs: Any) -> TrafficBackend:
    """The backend for the stack's traffic mode, with the Cloudflare client from the environment
    (CLOUDFLARE_API_TOKEN, DRCTL_CLOUDFLARE_BASE_URL); each call's budget is derived from the
    stack's RTO (objectives.rtoSeconds)."""
    from drctl.cloud.cloudflare import ENV_TOKEN, LB_WRITE, POOLS_WRITE, CloudflareApi, CloudflareApiError
    from drctl.cloud.deadline import api_budget

    try:
        api = CloudflareApi.from_env(budget=api_budget(outputs.objectives.rto_seconds))
    except CloudflareApiError as err:
        if outputs.traffic_mode == "load-balancer":
            raise TrafficError(f"{ENV_TOKEN} is not set: export an API token with {LB_WRITE} on the shop's zone "
                               f"and {POOLS_WRITE}") from None
        raise TrafficError(str(err)) from None
    if outputs.traffic_mode == "load-balancer":
        return CloudflareLoadBalancer.from_outputs(outputs, api)
    return CloudflareDns.from_outputs(outputs, api)
