"""Fencing: making sure an old primary takes no more writes, and undoing it for failback.

Three layers, tried in this order and each reported on its own:

- SQL: the heartbeat writer stopped (outside the binary log) and `super_read_only`/`read_only` on,
  read back to verify. Needs the server to answer: the planned path.
- network (Linode API): a self-managed primary's Cloud Firewall gets every rule dropped
  (`blackhole_rules`); a managed primary's allow-list is emptied. Works when the server itself is
  gone or cut off: the unplanned path.
- traffic: the region is taken out of the load balancer (its pool's origins disabled).

What a network fence replaced (the firewall rules, the allow-list) is saved in
`<state dir>/fences.json` before the change, so `drctl failback` can put it back exactly; the file
holds addresses, never secrets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drctl.cloud.linode import LinodeAPI, LinodeAPIError, blackhole_rules
from drctl.cloud.traffic import TrafficBackend, TrafficError
from drctl.mysql import replication as r
from drctl.mysql.topology import DbServer
from drctl.runbook.journal import JournalError
from drctl.stack.state_files import StateFileError, read_json, write_json


@dataclass(frozen=True)
class FenceAction:
    layer: str  # sql | network | traffic
    done: bool
    description: str  # what was done, or why it could not be

    def as_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "done": self.done, "description": self.description}


# --- SQL ------------------------------------------------------------------------------------------


def fence_sql(conn, dialect: r.Dialect) -> dict[str, Any]:
    """Stop the heartbeat writer, then read-only on, verified. Raises ReplicationError when the
    server did not take it. Returns what the journal should know."""
    stopped = r.stop_heartbeat_writer(conn, dialect)
    state = r.set_read_only(conn, dialect, True)
    return {"heartbeatWriterStopped": stopped, "readOnly": state.read_only, "superReadOnly": state.super_read_only}


def unfence_sql(conn, dialect: r.Dialect, restart_heartbeat: bool) -> None:
    """Undo fence_sql (a planned promotion that could not finish catching up)."""
    r.set_read_only(conn, dialect, False)
    if restart_heartbeat:
        r.start_heartbeat_writer(conn, dialect)


# --- network --------------------------------------------------------------------------------------


class FenceStore:
    """What each network fence replaced, per region, so it can be restored."""

    def __init__(self, path: Path):
        self.path = path

    def load(self) -> dict[str, dict[str, Any]]:
        """The saved rules; an unreadable file refuses (JournalError): restoring a firewall from a
        guess could lock the shop out of its own database."""
        try:
            return read_json(self.path, "saved firewall rules") or {}
        except StateFileError as err:
            raise JournalError(str(err)) from None

    def get(self, region: str) -> dict[str, Any]:
        return self.load().get(region, {})

    def put(self, region: str, kind: str, value: Any) -> None:
        doc = self.load()
        doc.setdefault(region, {})[kind] = value
        self._write(doc)

    def drop(self, region: str, kind: str) -> None:
        doc = self.load()
        doc.get(region, {}).pop(kind, None)
        if region in doc and not doc[region]:
            del doc[region]
        self._write(doc)

    def _write(self, doc: dict[str, Any]) -> None:
        write_json(self.path, doc)


def fence_network(server: DbServer, linode: LinodeAPI | None, store: FenceStore,
                  linode_error: str | None = None) -> FenceAction:
    """Cut the server off at the network: Cloud Firewall blackhole (self-managed) or an empty
    allow-list (managed). Idempotent: a fence already recorded is not taken twice (the saved
    original must stay the original)."""
    if server.firewall_id is None and server.managed_database_id is None:
        return FenceAction("network", False, f"{server.region}: the stack outputs name no Cloud Firewall or managed "
                                              "database for this server, so it cannot be fenced through the Linode API")
    if linode is None:
        return FenceAction("network", False, f"{server.region}: Linode API not available ({linode_error})")
    saved = store.get(server.region)
    try:
        if server.firewall_id is not None:
            fw = server.firewall_id
            if "firewall" not in saved:
                rules = linode.firewall_rules(fw)
                store.put(server.region, "firewall", {"id": fw, "rules": rules})
            else:
                rules = saved["firewall"]["rules"]
            linode.set_firewall_rules(fw, blackhole_rules(rules))
            return FenceAction("network", True, f"{server.region}: Cloud Firewall {fw} drops all traffic "
                                                "(original rules saved for failback)")
        db_id = server.managed_database_id
        assert db_id is not None
        if "allowList" not in saved:
            store.put(server.region, "allowList", {"id": db_id, "list": linode.database_allow_list(db_id)})
        linode.set_database_allow_list(db_id, [])
        return FenceAction("network", True, f"{server.region}: managed database {db_id} allow-list emptied "
                                            "(original saved for failback)")
    except LinodeAPIError as err:
        return FenceAction("network", False, f"{server.region}: {err}")


def lift_network_fence(server: DbServer, linode: LinodeAPI, store: FenceStore) -> list[str]:
    """Restore what fence_network replaced; returns what was restored. Raises LinodeAPIError."""
    saved, done = store.get(server.region), []
    if "firewall" in saved:
        fw = saved["firewall"]
        linode.set_firewall_rules(fw["id"], fw["rules"])
        store.drop(server.region, "firewall")
        done.append(f"Cloud Firewall {fw['id']} rules restored")
    if "allowList" in saved:
        al = saved["allowList"]
        linode.set_database_allow_list(al["id"], al["list"])
        store.drop(server.region, "allowList")
        done.append(f"managed database {al['id']} allow-list restored ({len(al['list'])} entries)")
    return done


# --- traffic --------------------------------------------------------------------------------------


def fence_traffic(region: str, backend: TrafficBackend | None, backend_error: str | None = None) -> FenceAction:
    if backend is None:
        return FenceAction("traffic", False, f"{region}: traffic backend not available ({backend_error})")
    try:
        change = backend.set_region_enabled(region, False)
    except TrafficError as err:
        return FenceAction("traffic", False, f"{region}: {err}")
    return FenceAction("traffic", True, change.description)
