"""The drill's simulated region failures (the seed's "Simulate Primary Region Failure"), and putting
back exactly what they changed.

The same code runs on a real stack (Linode API + Cloudflare) and in a rehearsal (the HAProxy
stand-ins of drctl/rehearsal/haproxy_cloud.py), because it speaks only through the `TrafficBackend`
Protocol and the NodeBalancer / Cloud Firewall calls of `LinodeAPI`:

    nodes-reject         every node of the region's NodeBalancer set to mode `reject`
    pool-disable         the region's pool taken out of the load balancer (its origins disabled)
    firewall-blackhole   the NodeBalancer's Cloud Firewall drops everything inbound
    all-regions-down     nodes-reject in every region at once: no region can serve, so shoppers get
                         the fallback page (drctl/drill/outage.py runs this one)

What each fault replaced is remembered before it changes anything, and `restore()` undoes the
faults newest first, saying what it restored (and what it could not, which stays remembered for
another try); `restore(region)` undoes one region's changes only (a full outage ends one region at
a time).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from drctl.cloud.linode import NodeStatus, blackhole_rules
from drctl.cloud.traffic import TrafficBackend
from drctl.stack.outputs import StackOutputs

ALL_REGIONS_DOWN = "all-regions-down"
FAULTS = ("nodes-reject", "pool-disable", "firewall-blackhole", ALL_REGIONS_DOWN)
# The faults that fail only the web tier: the primary database keeps answering, so the promotion
# that follows is the planned switchover. Any other (a rehearsal's region-down) may be unplanned.
WEB_TIER_FAULTS = frozenset({"nodes-reject", "pool-disable", "firewall-blackhole"})


class FaultError(Exception):
    """A fault could not be injected; the message says which and why."""


class NodeBalancersAndFirewalls(Protocol):
    """The part of `LinodeAPI` faults use (HAProxyLinode offers the same in a rehearsal)."""

    def node_statuses(self, nodebalancer_id: int) -> list[NodeStatus]: ...

    def set_node_mode(self, node: NodeStatus, mode: str) -> None: ...

    def firewall_rules(self, firewall_id: int) -> dict[str, Any]: ...

    def set_firewall_rules(self, firewall_id: int, rules: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class _Undo:
    description: str
    run: Callable[[], Any]
    region: str | None = None


class FaultInjector:
    def __init__(self, outputs: StackOutputs, traffic: TrafficBackend, linode: NodeBalancersAndFirewalls | None,
                 extra: dict[str, Callable[[str], tuple[str, str, Callable[[], Any]]]] | None = None):
        """`extra`: more faults by name (a rehearsal's `region-down`), each a function of the region
        returning (what was done, what undoing does, the undo)."""
        self.outputs, self.traffic, self.linode = outputs, traffic, linode
        self.extra = dict(extra or {})
        self._undo: list[_Undo] = []

    @property
    def names(self) -> tuple[str, ...]:
        return (*FAULTS, *self.extra)

    @property
    def pending(self) -> list[str]:
        """What is still changed, oldest first."""
        return [u.description for u in self._undo]

    def inject(self, fault: str, region: str) -> str:
        """Simulate `fault` in `region` (every region for all-regions-down); returns what was done."""
        target = self.outputs.region(region)
        if fault == ALL_REGIONS_DOWN:
            # Region by region, each remembered as it goes: if one fails half-way, restore() puts
            # back the ones already down.
            return "; ".join(self._reject_nodes(r.region, prefix=f"{r.region}: ") for r in self.outputs.regions)
        if fault in self.extra:
            done, undo_text, undo = self.extra[fault](region)
            self._undo.append(_Undo(undo_text, undo, region))
            return done
        if fault == "pool-disable":
            change = self.traffic.set_region_enabled(region, False)
            self._undo.append(_Undo(f"pool {region} enabled again",
                                    lambda: self.traffic.set_region_enabled(region, True), region))
            return change.description
        if fault == "nodes-reject":
            return self._reject_nodes(region)
        linode = self._linode(fault)
        if fault == "firewall-blackhole":
            firewall = target.node_balancer_firewall_id
            original = linode.firewall_rules(firewall)
            linode.set_firewall_rules(firewall, blackhole_rules(original))
            self._undo.append(_Undo(f"Cloud Firewall {firewall} rules restored",
                                    lambda: linode.set_firewall_rules(firewall, original), region))
            return f"Cloud Firewall {firewall} (NodeBalancer of {region}) drops all traffic"
        raise FaultError(f"--fault: unknown fault {fault!r} (allowed: {', '.join(self.names)})")

    def restore(self, region: str | None = None) -> list[str]:
        """Undo every fault (or only those in `region`), newest first; returns one line per undo
        (failed ones say so, and stay remembered for another try)."""
        lines, kept = [], []
        while self._undo:
            undo = self._undo.pop()
            if region is not None and undo.region != region:
                kept.append(undo)
                continue
            try:
                undo.run()
                lines.append(undo.description)
            except Exception as err:
                kept.append(undo)
                lines.append(f"NOT restored: {undo.description} ({err})")
        self._undo = list(reversed(kept))
        return lines

    def _reject_nodes(self, region: str, prefix: str = "") -> str:
        """Every node of the region's NodeBalancer set to reject, each remembered with its mode;
        `prefix` goes before each line (which region, when several go down)."""
        linode = self._linode("nodes-reject" if not prefix else ALL_REGIONS_DOWN)
        nb = self.outputs.region(region).node_balancer.id
        nodes = linode.node_statuses(nb)
        if not nodes:
            raise FaultError(f"NodeBalancer {nb} in {region} has no nodes to reject")
        for node in nodes:
            linode.set_node_mode(node, "reject")
            self._undo.append(_Undo(f"{prefix}node {node.label} back to {node.mode}",
                                    lambda n=node: linode.set_node_mode(n, n.mode), region))
        return f"{prefix}NodeBalancer {nb}: {len(nodes)} node(s) set to reject"

    def _linode(self, fault: str) -> NodeBalancersAndFirewalls:
        if self.linode is None:
            raise FaultError(f"--fault {fault} needs the Linode API (set LINODE_TOKEN)")
        return self.linode
