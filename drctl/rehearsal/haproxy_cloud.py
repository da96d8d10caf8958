"""The rehearsal's cloud, through HAProxy's runtime API: the same interfaces drctl uses for
Cloudflare and Linode on a real stack, so promote, failback and the drill's fault injection run
unchanged against the local topology.

- `HAProxyTraffic` is a `TrafficBackend` (drctl/cloud/traffic.py), like the Cloudflare load
  balancer: where traffic goes, route to a region, take a region in or out of rotation.
- `HAProxyLinode` offers the part of `LinodeAPI` that drills and fencing call (NodeBalancer node
  modes, Cloud Firewall rules), on the proxies that play the NodeBalancers and firewalls.

The rehearsal topology (drctl/rehearsal/topology.py) names its HAProxy proxies after what they
play, and this module relies on those names:

    cloudflare     HTTP; one server per region, named for it, in failover order, all but the first
                   `backup`: Cloudflare's failover pools and their /healthz monitor
    nb-<region>    TCP; servers web-1, web-2, ...: the region's NodeBalancer and its nodes; it
                   leaves connections from sources in the ACL file `blackhole_acl(region)` unanswered
    db-<region>    TCP; server `mysql`: the only way to the region's database

What each call does, next to the real one:

    route_to(R)                      pools before R disabled, R and later enabled   (default_pools reordered)
    set_region_enabled(R, False)     cloudflare/R to maint                           (pool origins disabled)
    set_node_mode(node, "reject")    nb-R/web-n to maint ("drain": drain)            (NodeBalancer node mode)
    set_firewall_rules(nb-R's, drop) nb-R answers no connection: clients hang         (Cloud Firewall blackhole)
    set_firewall_rules(db-R's, drop) db-R/mysql to maint and its sessions cut        (Cloud Firewall blackhole)

Firewall and NodeBalancer ids are the topology's (`LocalIds`), as its stack outputs give them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drctl.cloud.linode import LinodeAPIError, NodeStatus
from drctl.cloud.traffic import RegionTraffic, TrafficChange, TrafficError, TrafficState
from drctl.local.haproxy import HAProxyError, RuntimeAPI, ServerStat

CLOUDFLARE = "cloudflare"
DATABASE_SERVER = "mysql"
_NODE_PORT = 80  # the NodeBalancer config the rehearsal plays (the real one has 80 and 443)
_MODES = {"accept": "ready", "reject": "maint", "drain": "drain"}


def nodebalancer(region: str) -> str:
    return f"nb-{region}"


def database_path(region: str) -> str:
    return f"db-{region}"


def blackhole_acl(directory: Path, region: str) -> Path:
    """The ACL file whose sources nb-<region> drops (empty on disk; filled through the runtime API)."""
    return Path(directory) / f"blackhole-{nodebalancer(region)}.acl"


@dataclass(frozen=True)
class LocalIds:
    """The ids the rehearsal's stack outputs give region number `i` (0 = primary)."""

    index: int

    @property
    def nodebalancer(self) -> int:
        return 100 + self.index

    def web_instance(self, n: int) -> int:
        return 200 + 10 * self.index + n

    @property
    def web_firewall(self) -> int:
        return 300 + self.index

    @property
    def nodebalancer_firewall(self) -> int:
        return 400 + self.index

    @property
    def database_firewall(self) -> int:
        return 500 + self.index

    @property
    def database_instance(self) -> int:
        return 600 + self.index


class HAProxyTraffic:
    """Cloudflare's failover pools, played by the `cloudflare` proxy.

    Cloudflare keeps two things apart that HAProxy has only one switch for: the pool order
    (`route_to`) and whether a pool's origins are enabled (`set_region_enabled`). This class keeps
    both and puts a server in maintenance when its pool is disabled *or* it comes before the first
    pool in the deployed order, so re-enabling the old primary's pool after a promotion does not pull traffic back
    to it, as it would not on Cloudflare."""

    mode = "haproxy"

    def __init__(self, api: RuntimeAPI, regions: Sequence[str]):
        self.api = api
        self.regions = tuple(regions)  # failover order as deployed: primary first
        self._first = self.regions[0]
        self._disabled: set[str] = set()

    def state(self) -> TrafficState:
        try:
            pools = {s.server: s for s in self.api.servers(CLOUDFLARE)}
        except HAProxyError as err:
            raise TrafficError(f"cannot read the load balancer: {err}") from None
        usable = [pools[r] for r in self.regions if _takes_traffic(pools[r])]
        # HAProxy, like Cloudflare's failover pools, sends everything to the first usable
        # non-backup server, and only when there is none to the first usable backup.
        serving = next((s.server for s in [*[s for s in usable if not s.backup], *[s for s in usable if s.backup]]),
                       None)
        first = self.regions.index(self._first)
        return TrafficState(
            mode=self.mode, serving=serving, order=(*self.regions[first:], *self.regions[:first]),
            regions={r: RegionTraffic(r, enabled=r not in self._disabled,
                                      healthy=pools[r].checked_up,
                                      detail=f"pool {r}: {pools[r].status} ({pools[r].check_status or 'no check yet'})")
                     for r in self.regions},
        )

    def route_to(self, region: str) -> TrafficChange:
        """Make `region` the first pool (and enable it): the pools before it in the deployed order
        stop taking traffic, so it does not drift back when the old region recovers."""
        self._index(region)
        before = (self._first, set(self._disabled))
        self._first = region
        self._disabled.discard(region)
        changed = self._apply()
        moved = before != (self._first, self._disabled)
        return TrafficChange(moved or bool(changed),
                             f"traffic routed to {region}" + ("" if moved or changed else " (already so)"))

    def set_region_enabled(self, region: str, enabled: bool) -> TrafficChange:
        self._index(region)
        was = region not in self._disabled
        if enabled:
            self._disabled.discard(region)
        else:
            self._disabled.add(region)
        self._apply()
        verb = "enabled" if enabled else "disabled"
        return TrafficChange(was != enabled, f"pool {region} {verb}" + ("" if was != enabled else " (already so)"))

    def _apply(self) -> list[str]:
        first = self.regions.index(self._first)
        try:
            current = {s.server: s for s in self.api.servers(CLOUDFLARE)}
            changed = []
            for i, name in enumerate(self.regions):
                maint = name in self._disabled or i < first
                if current[name].in_maintenance != maint:
                    self.api.set_server_state(CLOUDFLARE, name, "maint" if maint else "ready")
                    changed.append(f"{name} {'out of' if maint else 'back in'} rotation")
            return changed
        except HAProxyError as err:
            raise TrafficError(str(err)) from None

    def _index(self, region: str) -> int:
        try:
            return self.regions.index(region)
        except ValueError:
            raise TrafficError(f"not a region of this rehearsal: {region!r} "
                               f"(allowed: {', '.join(self.regions)})") from None


def _takes_traffic(stat: ServerStat) -> bool:
    return stat.up and not stat.in_maintenance


class HAProxyLinode:
    """NodeBalancer nodes and Cloud Firewalls, played by the `nb-<region>` and `db-<region>` proxies.
    Firewall rules are kept here as the Linode API would keep them; a rule set that drops all
    inbound traffic is applied as a blackhole, anything else opens the path again."""

    def __init__(self, api: RuntimeAPI, regions: Sequence[str], web_nodes: Mapping[str, Sequence[str]],
                 acl_dir: Path):
        self.api = api
        self.regions = tuple(regions)
        self.acl_dir = Path(acl_dir)
        self.web_nodes = {region: tuple(nodes) for region, nodes in web_nodes.items()}
        self._firewalls: dict[int, tuple[str, str]] = {}  # id -> (kind, region)
        self._rules: dict[int, dict[str, Any]] = {}
        for i, region in enumerate(self.regions):
            ids = LocalIds(i)
            for fw, kind in ((ids.nodebalancer_firewall, "nodebalancer"), (ids.database_firewall, "database")):
                self._firewalls[fw] = (kind, region)
                self._rules[fw] = {"inbound": [{"action": "ACCEPT", "protocol": "TCP", "label": "rehearsal"}],
                                   "inbound_policy": "DROP", "outbound": [], "outbound_policy": "ACCEPT"}

    # --- NodeBalancers -----------------------------------------------------------------------------
    def node_statuses(self, nodebalancer_id: int) -> list[NodeStatus]:
        region = self._region_of_nodebalancer(nodebalancer_id)
        stats = {s.server: s for s in self._call(lambda: self.api.servers(nodebalancer(region)))}
        nodes = []
        for n, name in enumerate(self.web_nodes[region]):
            stat = stats[name]
            mode = "reject" if stat.in_maintenance else "drain" if stat.status.startswith("DRAIN") else "accept"
            nodes.append(NodeStatus(nodebalancer_id, nodebalancer_id, _NODE_PORT, LocalIds(self.regions.index(region))
                                    .web_instance(n), name, stat.address, "UP" if stat.up else "DOWN", mode))
        return nodes

    def set_node_mode(self, node: NodeStatus, mode: str) -> None:
        if mode not in _MODES:
            raise LinodeAPIError(f"node mode {mode!r} is not played by the rehearsal (allowed: {', '.join(_MODES)})")
        region = self._region_of_nodebalancer(node.nodebalancer_id)
        self._call(lambda: self.api.set_server_state(nodebalancer(region), node.label, _MODES[mode]))

    # --- Cloud Firewalls ---------------------------------------------------------------------------
    def firewall_rules(self, firewall_id: int) -> dict[str, Any]:
        self._firewall(firewall_id)
        return copy.deepcopy(self._rules[firewall_id])

    def set_firewall_rules(self, firewall_id: int, rules: dict[str, Any]) -> None:
        kind, region = self._firewall(firewall_id)
        closed = not rules.get("inbound") and rules.get("inbound_policy") == "DROP"
        if kind == "nodebalancer":
            def nodebalancer_path() -> None:
                acl = blackhole_acl(self.acl_dir, region)
                if not closed:
                    return self.api.clear_acl(acl)
                self.api.clear_acl(acl)  # one entry, however often the rules are set
                self.api.add_acl_entry(acl, "0.0.0.0/0")
                for node in self.web_nodes[region]:  # a firewall drops established connections too
                    self.api.shutdown_sessions(nodebalancer(region), node)
            self._call(nodebalancer_path)
        else:
            def database() -> None:
                self.api.set_server_state(database_path(region), DATABASE_SERVER, "maint" if closed else "ready")
                if closed:  # a firewall drops established connections too: a replica's, a shop's pool
                    self.api.shutdown_sessions(database_path(region), DATABASE_SERVER)
            self._call(database)
        self._rules[firewall_id] = copy.deepcopy(rules)

    # --- helpers -----------------------------------------------------------------------------------
    def _region_of_nodebalancer(self, nodebalancer_id: int) -> str:
        for i, region in enumerate(self.regions):
            if LocalIds(i).nodebalancer == nodebalancer_id:
                return region
        raise LinodeAPIError(f"the rehearsal has no NodeBalancer {nodebalancer_id}", 404)

    def _firewall(self, firewall_id: int) -> tuple[str, str]:
        if firewall_id not in self._firewalls:
            raise LinodeAPIError(f"the rehearsal plays no Cloud Firewall {firewall_id} "
                                 "(only the NodeBalancers' and the databases')", 404)
        return self._firewalls[firewall_id]

    @staticmethod
    def _call(fn):
        try:
            return fn()
        except HAProxyError as err:
            raise LinodeAPIError(str(err)) from None
