"""drctl's one door to the Linode API, through the official `linode_api4` SDK.

Used for what drctl must see or change at 3 a.m.: NodeBalancer node health, taking a region's
nodes out of rotation (drills), and fencing a lost primary with a Cloud Firewall blackhole.

Error policy: the SDK already retries 408/429/502 honouring Retry-After; 500/503/504 are added,
every request gets a timeout (the SDK sets none, and a hung socket must not hang a failover), and
401/403 become a message naming the token scope that is missing. The token never appears in a
message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import requests
from linode_api4 import LinodeClient
from linode_api4.errors import ApiError

DEFAULT_BASE_URL = "https://api.linode.com/v4"
REQUEST_TIMEOUT_SECONDS = 15
FIREWALL_RULE_KEYS = ("inbound", "inbound_policy", "outbound", "outbound_policy")

# Which personal-access-token scope each kind of call needs, for 401/403 messages.
SCOPES = {
    "nodebalancers:read": "NodeBalancers: Read Only",
    "nodebalancers:write": "NodeBalancers: Read/Write",
    "firewall:read": "Firewalls: Read Only",
    "firewall:write": "Firewalls: Read/Write",
    "databases:read": "Databases: Read Only",
    "databases:write": "Databases: Read/Write",
}


class LinodeAPIError(Exception):
    """A Linode API call failed; the message says which call, why, and what to do."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class NodeStatus:
    nodebalancer_id: int
    config_id: int
    port: int
    node_id: int
    label: str
    address: str
    status: str  # UP | DOWN | unknown
    mode: str  # accept | reject | drain | backup


class _TimeoutSession(requests.Session):
    def __init__(self, timeout: float):
        super().__init__()
        self._timeout = timeout

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        return super().request(*args, **kwargs)


class LinodeAPI:
    def __init__(self, token: str | None = None, base_url: str | None = None,
                 timeout: float = REQUEST_TIMEOUT_SECONDS, retry_interval: float = 1.0):
        token = token or os.environ.get("LINODE_TOKEN")
        if not token:
            raise LinodeAPIError("LINODE_TOKEN is not set: export a Linode personal access token")
        base_url = base_url or os.environ.get("DRCTL_LINODE_BASE_URL") or DEFAULT_BASE_URL
        self.client = LinodeClient(token, base_url=base_url, retry_statuses=[500, 503, 504],
                                   retry_rate_limit_interval=retry_interval)
        session = _TimeoutSession(timeout)
        session.adapters = self.client.session.adapters  # keeps the SDK's Retry-After-aware retries
        self.client.session = session

    def _call(self, method: str, path: str, scope: str, what: str, data: Any = None) -> Any:
        try:
            if method == "get":
                return self.client.get(path)
            return self.client.put(path, data=data)
        except ApiError as err:
            if err.status in (401, 403):
                raise LinodeAPIError(
                    f"Linode API refused to {what} (HTTP {err.status}): the token needs the "
                    f"'{SCOPES[scope]}' scope", err.status,
                ) from None
            reasons = "; ".join(err.errors) or "no reason given"
            raise LinodeAPIError(f"Linode API could not {what} (HTTP {err.status}: {reasons})", err.status) from None
        except requests.RequestException as err:
            raise LinodeAPIError(f"Linode API unreachable while trying to {what} ({type(err).__name__})") from None

    # --- NodeBalancers ---------------------------------------------------------------------------
    def node_statuses(self, nodebalancer_id: int) -> list[NodeStatus]:
        what = f"read NodeBalancer {nodebalancer_id}"
        configs = self._call("get", f"/nodebalancers/{nodebalancer_id}/configs", "nodebalancers:read", what)
        nodes = []
        for config in configs.get("data", []):
            listed = self._call("get", f"/nodebalancers/{nodebalancer_id}/configs/{config['id']}/nodes",
                                "nodebalancers:read", what)
            nodes.extend(
                NodeStatus(nodebalancer_id, config["id"], config["port"], n["id"], n["label"], n["address"],
                           n.get("status", "unknown"), n.get("mode", "accept"))
                for n in listed.get("data", [])
            )
        return nodes

    def set_node_mode(self, node: NodeStatus, mode: str) -> None:
        """Put one node in `mode` (accept / reject / drain / backup); idempotent."""
        path = f"/nodebalancers/{node.nodebalancer_id}/configs/{node.config_id}/nodes/{node.node_id}"
        self._call("put", path, "nodebalancers:write", f"set node {node.label} to {mode}", data={"mode": mode})

    # --- Cloud Firewalls -------------------------------------------------------------------------
    def firewall_rules(self, firewall_id: int) -> dict[str, Any]:
        """The rules as `set_firewall_rules` takes them back: the endpoint also answers with
        read-only fields (fingerprint, version) that a PUT refuses."""
        rules = self._call("get", f"/networking/firewalls/{firewall_id}/rules", "firewall:read",
                           f"read the rules of firewall {firewall_id}")
        return {k: rules[k] for k in FIREWALL_RULE_KEYS if k in rules}

    def set_firewall_rules(self, firewall_id: int, rules: dict[str, Any]) -> None:
        self._call("put", f"/networking/firewalls/{firewall_id}/rules", "firewall:write",
                   f"change the rules of firewall {firewall_id}", data=rules)

    # --- Managed databases -----------------------------------------------------------------------
    def database_allow_list(self, database_id: int) -> list[str]:
        db = self._call("get", f"/databases/mysql/instances/{database_id}", "databases:read",
                        f"read managed database {database_id}")
        return list(db.get("allow_list", []))

    def set_database_allow_list(self, database_id: int, allow_list: list[str]) -> None:
        """An empty list fences a managed primary: nothing can connect to it any more."""
        self._call("put", f"/databases/mysql/instances/{database_id}", "databases:write",
                   f"change the allow list of managed database {database_id}", data={"allow_list": allow_list})


def blackhole_rules(rules: dict[str, Any]) -> dict[str, Any]:
    """The same firewall with every inbound and outbound path dropped: fences a lost primary so
    nothing (app nodes, a stale replica, a returning region) can write to it or read from it."""
    return {**rules, "inbound": [], "inbound_policy": "DROP", "outbound": [], "outbound_policy": "DROP"}
