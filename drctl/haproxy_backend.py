"""The rehearsal's cloud, through HAProxy's runtime API: traffic, fencing and fault injection with
the same meaning as the Cloudflare and Linode backends give them on a real stack.

The rehearsal topology (drctl/rehearsal_topology.py) names its HAProxy proxies after what they
play, and this module relies on those names:

    cloudflare         HTTP; one server per region, named for it, in failover order, all but the
                       first `backup`: Cloudflare's failover pools and their /healthz monitor
    nb-<region>        TCP; servers web-1, web-2, ...: the region's NodeBalancer and its nodes
    db-<region>        TCP; server `mysql`: the path to the region's database, which a Cloud
                       Firewall blackhole would cut

What each operation does, next to the real one:

    route_to(R)              pools before R disabled, R and later enabled  (pool order / origin disable)
    fence_database(R)        db-R/mysql to maint, its sessions cut         (Cloud Firewall blackhole on the database)
    nodes-reject fault       nb-R/web-* to maint                            (NodeBalancer nodes mode=reject)
    pool-disable fault       cloudflare/R to maint                          (pool origin enabled=false)
    firewall-blackhole fault frontend nb-R paused: connections hang         (Cloud Firewall dropping all inbound)

Every change is recorded with its undo, so `restore()` puts back exactly what was changed, in
reverse order, and says what it restored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from drctl.local_haproxy import RuntimeAPI, ServerStat

CLOUDFLARE = "cloudflare"
DATABASE_SERVER = "mysql"
FAULTS = ("nodes-reject", "pool-disable", "firewall-blackhole")


def nodebalancer(region: str) -> str:
    return f"nb-{region}"


def database_path(region: str) -> str:
    return f"db-{region}"


class TrafficError(Exception):
    """A traffic, fencing or fault operation could not be done; the message says which and why."""


@dataclass(frozen=True)
class _Undo:
    description: str  # what restoring does, for the report
    run: Callable[[], None]


class HAProxyBackend:
    def __init__(self, api: RuntimeAPI, regions: Sequence[str], web_nodes: Mapping[str, Sequence[str]]):
        self.api = api
        self.regions = tuple(regions)  # failover order: primary first
        self.web_nodes = {region: tuple(nodes) for region, nodes in web_nodes.items()}
        self._undo: list[_Undo] = []

    # --- where traffic goes ----------------------------------------------------------------------
    def pool_health(self) -> dict[str, bool]:
        """Per region: has its pool passed the monitor (HAProxy assumes a server up until its first
        check, Cloudflare does not) and does it take traffic (not disabled)?"""
        return {s.server: s.up and s.check_passed and not s.in_maintenance for s in self._pools()}

    def serving_region(self) -> str | None:
        """The region the load balancer sends traffic to now: HAProxy (like Cloudflare's failover
        pools) uses the first healthy non-backup server, else the first healthy backup."""
        pools = self._pools()
        usable = [s for s in pools if s.up and not s.in_maintenance]
        for stat in [s for s in usable if not s.backup] + [s for s in usable if s.backup]:
            return stat.server
        return None

    def route_to(self, region: str) -> None:
        """Make `region` the first pool: every pool before it in the failover order is disabled,
        it and the later ones enabled, so traffic does not drift back on its own."""
        index = self._index(region)
        for i, name in enumerate(self.regions):
            self.api.set_server_state(CLOUDFLARE, name, "maint" if i < index else "ready")

    # --- fencing -----------------------------------------------------------------------------------
    def fence_database(self, region: str) -> None:
        """Nothing reaches the region's database any more, existing sessions included (a replica's
        IO thread, a shop's pooled connection): a Cloud Firewall blackhole."""
        self._index(region)
        self.api.set_server_state(database_path(region), DATABASE_SERVER, "maint")
        self.api.command(f"shutdown sessions server {database_path(region)}/{DATABASE_SERVER}")

    def unfence_database(self, region: str) -> None:
        self._index(region)
        self.api.set_server_state(database_path(region), DATABASE_SERVER, "ready")

    def database_fenced(self, region: str) -> bool:
        return self.api.server(database_path(region), DATABASE_SERVER).in_maintenance

    # --- fault injection ---------------------------------------------------------------------------
    def inject(self, fault: str, region: str) -> str:
        """Simulate the failure `fault` of `region`'s web tier; returns what was done."""
        self._index(region)
        if fault == "nodes-reject":
            for node in self.web_nodes[region]:
                self._set(nodebalancer(region), node, "maint", "ready")
            return f"{nodebalancer(region)}: nodes {', '.join(self.web_nodes[region])} set to maint (reject)"
        if fault == "pool-disable":
            self._set(CLOUDFLARE, region, "maint", "ready")
            return f"{CLOUDFLARE}: pool {region} disabled (maint)"
        if fault == "firewall-blackhole":
            self.api.pause_frontend(nodebalancer(region))
            self._undo.append(_Undo(f"frontend {nodebalancer(region)} resumed",
                                    lambda: self.api.resume_frontend(nodebalancer(region))))
            return f"frontend {nodebalancer(region)} paused: connections to the NodeBalancer hang (blackhole)"
        raise TrafficError(f"--fault: unknown fault {fault!r} (allowed: {', '.join(FAULTS)})")

    def restore(self) -> list[str]:
        """Undo every injected fault, newest first; returns what was restored. Undos that fail are
        kept for another try and reported as such."""
        done, failed = [], []
        while self._undo:
            undo = self._undo.pop()
            try:
                undo.run()
                done.append(undo.description)
            except Exception as err:
                failed.append(undo)
                done.append(f"NOT restored: {undo.description} ({err})")
        self._undo = list(reversed(failed))
        return done

    @property
    def injected(self) -> bool:
        return bool(self._undo)

    # --- helpers -----------------------------------------------------------------------------------
    def _pools(self) -> list[ServerStat]:
        return self.api.servers(CLOUDFLARE)

    def _index(self, region: str) -> int:
        try:
            return self.regions.index(region)
        except ValueError:
            raise TrafficError(f"not a region of this topology: {region!r} "
                               f"(allowed: {', '.join(self.regions)})") from None

    def _set(self, backend: str, server: str, state: str, back_to: str) -> None:
        self.api.set_server_state(backend, server, state)
        self._undo.append(_Undo(f"{backend}/{server} back to {back_to}",
                                lambda: self.api.set_server_state(backend, server, back_to)))
