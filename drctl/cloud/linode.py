"""drctl's one door to the Linode API, through the official `linode_api4` SDK.

Used for what drctl must see or change at 3 a.m.: NodeBalancer node health, taking a region's
nodes out of rotation (drills), fencing a lost primary with a Cloud Firewall blackhole, and the
scratch Linodes (with a firewall of their own) that `drctl restore` restores an archive onto.

Error policy, owned here rather than by the SDK (its retries are turned off), because the SDK
retries a hung request for 6 x the timeout (~95 s at 15 s: one fence could eat the RTO), honours
any Retry-After however long, and re-sends a write after a dropped connection without asking
whether the first one landed:
- every operation has a deadline (its budget; the runbook's derives from objectives.rtoSeconds)
  that bounds its attempts, the waits between them, Retry-After and each socket timeout;
- 408/429/5xx and connection errors are retried within it; a Retry-After that would outlast it
  ends the operation at once with a message saying so;
- a write that failed ambiguously (timeout or dropped connection after sending, 5xx) is not sent
  again before a read shows the wanted state is not there; if it is, the write succeeded;
- 401 (the token is invalid or expired) and 403 (the token lacks a scope) become messages saying
  which; the token never appears in a message.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from linode_api4 import LinodeClient
from linode_api4.errors import ApiError
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

from drctl.cloud.deadline import DEFAULT_BUDGET, Deadline, DeadlineScope, earliest, retry_after_seconds

DEFAULT_BASE_URL = "https://api.linode.com/v4"
REQUEST_TIMEOUT_SECONDS = 15
DEFAULT_ATTEMPTS = 5
MAX_BACKOFF = 8.0
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
FIREWALL_RULE_KEYS = ("inbound", "inbound_policy", "outbound", "outbound_policy")

# Which personal-access-token scope each kind of call needs, for 401/403 messages.
SCOPES = {
    "nodebalancers:read": "NodeBalancers: Read Only",
    "nodebalancers:write": "NodeBalancers: Read/Write",
    "firewall:read": "Firewalls: Read Only",
    "firewall:write": "Firewalls: Read/Write",
    "databases:read": "Databases: Read Only",
    "databases:write": "Databases: Read/Write",
    "linodes:read": "Linodes: Read Only",
    "linodes:write": "Linodes: Read/Write",
}
PAGE_SIZE = 500  # the API's largest page
MAX_PAGES = 20  # a runaway `pages` must not loop for ever


def linode_base_url(base_url: str | None = None) -> str:
    """The API every Linode call goes to: `base_url`, else DRCTL_LINODE_BASE_URL (a test fake, a
    proxy), else Linode's own."""
    return base_url or os.environ.get("DRCTL_LINODE_BASE_URL") or DEFAULT_BASE_URL


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
    """Sends each request with the socket timeout its operation has left (the SDK passes none)."""

    def __init__(self, default: float):
        super().__init__()
        self._default = default
        self._local = threading.local()
        self.mount("http://", HTTPAdapter())  # no retries of its own: LinodeAPI decides
        self.mount("https://", HTTPAdapter())

    def set_timeout(self, seconds: float) -> None:
        self._local.timeout = seconds

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", getattr(self._local, "timeout", self._default))
        return super().request(*args, **kwargs)


class LinodeAPI:
    def __init__(self, token: str | None = None, base_url: str | None = None,
                 timeout: float = REQUEST_TIMEOUT_SECONDS, retry_interval: float = 1.0, *,
                 budget: float = DEFAULT_BUDGET, attempts: int = DEFAULT_ATTEMPTS,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        token = token or os.environ.get("LINODE_TOKEN")
        if not token:
            raise LinodeAPIError("LINODE_TOKEN is not set: export a Linode personal access token")
        self.client = LinodeClient(token, base_url=linode_base_url(base_url), retry=False)
        self._session = _TimeoutSession(timeout)
        self.client.session = self._session
        self.timeout, self.retry_interval, self.budget, self.attempts = timeout, retry_interval, budget, attempts
        self.clock, self.sleep = clock, sleep
        self._scope = DeadlineScope()

    def within(self, deadline: Deadline):
        """Bound every operation started in this block (on this thread) by `deadline` as well."""
        return self._scope.within(deadline)

    def _call(self, method: str, path: str, scope: str, what: str, data: Any = None,
              verify: Callable[[], bool] | None = None) -> Any:
        """One operation within its deadline. A write passes `verify`, a read saying whether the
        state it wants is there: after an ambiguous failure it is asked before sending again."""
        own = Deadline.after(self.budget, f"the {self.budget:g} s budget of one Linode API operation", self.clock)
        deadline = earliest(own, self._scope.current())
        with self._scope.within(deadline):
            return _Attempts(self, method, path, scope, what, data, verify, deadline).run()

    def _send(self, method: str, path: str, data: Any, timeout: float) -> Any:
        self._session.set_timeout(timeout)
        if method == "get":
            return self.client.get(path)
        if method == "delete":
            return self.client.delete(path)
        return getattr(self.client, method)(path, data=data)

    def _backoff(self, attempt: int) -> float:
        return min(MAX_BACKOFF, self.retry_interval * 2**attempt)

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
        what = f"set node {node.label} to {mode}"
        self._call("put", path, "nodebalancers:write", what, data={"mode": str(mode)},
                   verify=lambda: self._call("get", path, "nodebalancers:read", what).get("mode") == mode)

    # --- Cloud Firewalls -------------------------------------------------------------------------
    def firewall_rules(self, firewall_id: int) -> dict[str, Any]:
        """The rules as `set_firewall_rules` takes them back: the endpoint also answers with
        read-only fields (fingerprint, version) that a PUT refuses."""
        rules = self._call("get", f"/networking/firewalls/{firewall_id}/rules", "firewall:read",
                           f"read the rules of firewall {firewall_id}")
        return {k: rules[k] for k in FIREWALL_RULE_KEYS if k in rules}

    def set_firewall_rules(self, firewall_id: int, rules: dict[str, Any]) -> None:
        wanted = {k: rules[k] for k in FIREWALL_RULE_KEYS if k in rules}
        self._call("put", f"/networking/firewalls/{firewall_id}/rules", "firewall:write",
                   f"change the rules of firewall {firewall_id}", data=rules,
                   verify=lambda: all(self.firewall_rules(firewall_id).get(k) == v for k, v in wanted.items()))

    # --- Managed databases -----------------------------------------------------------------------
    def database_allow_list(self, database_id: int) -> list[str]:
        db = self._call("get", f"/databases/mysql/instances/{database_id}", "databases:read",
                        f"read managed database {database_id}")
        return list(db.get("allow_list", []))

    def set_database_allow_list(self, database_id: int, allow_list: list[str]) -> None:
        """An empty list fences a managed primary: nothing can connect to it any more."""
        wanted = [str(a) for a in allow_list]
        self._call("put", f"/databases/mysql/instances/{database_id}", "databases:write",
                   f"change the allow list of managed database {database_id}", data={"allow_list": wanted},
                   verify=lambda: sorted(self.database_allow_list(database_id)) == sorted(wanted))


    # --- Linodes and firewalls of their own (drctl restore's scratch servers) ----------------------
    def _all(self, path: str, scope: str, what: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            answer = self._call("get", f"{path}?page={page}&page_size={PAGE_SIZE}", scope, what)
            items.extend(answer.get("data", []))
            if page >= int(answer.get("pages", 1)):
                break
        return items

    def _gone(self, path: str, scope: str, what: str) -> bool:
        try:
            self._call("get", path, scope, what)
        except LinodeAPIError as err:
            if err.status == 404:
                return True
            raise
        return False

    def instances(self) -> list[dict[str, Any]]:
        return self._all("/linode/instances", "linodes:read", "list Linodes")

    def instance(self, instance_id: int) -> dict[str, Any]:
        return self._call("get", f"/linode/instances/{instance_id}", "linodes:read", f"read Linode {instance_id}")

    def instance_by_label(self, label: str) -> dict[str, Any] | None:
        return next((i for i in self.instances() if i.get("label") == label), None)

    def create_instance(self, spec: dict[str, Any]) -> dict[str, Any]:
        """POST /linode/instances. Labels are unique in an account: after an ambiguous failure the
        label says whether the first attempt made it, so a retry never makes a second Linode."""
        label = spec["label"]
        made = self._call("post", "/linode/instances", "linodes:write", f"create Linode {label}", data=spec,
                          verify=lambda: self.instance_by_label(label) is not None)
        return made if made is not None else self.instance_by_label(label) or {}

    def delete_instance(self, instance_id: int) -> None:
        """Idempotent: a Linode already gone is what was wanted."""
        path, what = f"/linode/instances/{instance_id}", f"delete Linode {instance_id}"
        try:
            self._call("delete", path, "linodes:write", what, verify=lambda: self._gone(path, "linodes:read", what))
        except LinodeAPIError as err:
            if err.status != 404:
                raise

    def firewalls(self) -> list[dict[str, Any]]:
        return self._all("/networking/firewalls", "firewall:read", "list firewalls")

    def firewall_by_label(self, label: str) -> dict[str, Any] | None:
        return next((f for f in self.firewalls() if f.get("label") == label), None)

    def create_firewall(self, spec: dict[str, Any]) -> dict[str, Any]:
        label = spec["label"]
        made = self._call("post", "/networking/firewalls", "firewall:write", f"create firewall {label}", data=spec,
                          verify=lambda: self.firewall_by_label(label) is not None)
        return made if made is not None else self.firewall_by_label(label) or {}

    def delete_firewall(self, firewall_id: int) -> None:
        path, what = f"/networking/firewalls/{firewall_id}", f"delete firewall {firewall_id}"
        try:
            self._call("delete", path, "firewall:write", what, verify=lambda: self._gone(path, "firewall:read", what))
        except LinodeAPIError as err:
            if err.status != 404:
                raise


def blackhole_rules(rules: dict[str, Any]) -> dict[str, Any]:
    """The same firewall with every inbound and outbound path dropped: fences a lost primary so
    nothing (app nodes, a stale replica, a returning region) can write to it or read from it."""
    return {**rules, "inbound": [], "inbound_policy": "DROP", "outbound": [], "outbound_policy": "DROP"}


@dataclass
class _Attempts:
    """One operation's attempts under LinodeAPI's policy (see the module docstring)."""

    api: LinodeAPI
    method: str
    path: str
    scope: str
    what: str
    data: Any
    verify: Callable[[], bool] | None
    deadline: Deadline
    made: int = 0
    problem: str = "no attempt was made"
    maybe_applied: bool = False  # an earlier attempt of this write failed after it went out

    def run(self) -> Any:
        api, started, attempts = self.api, self.api.clock(), max(1, self.api.attempts)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            if self.maybe_applied:
                known, applied = self._read_back()
                if applied:
                    return None
                if not known:
                    if last or not self._pause(api._backoff(attempt)):
                        break
                    continue
            if self.deadline.expired:
                break
            try:
                self.made += 1
                return api._send(self.method, self.path, self.data,
                                 max(0.001, min(api.timeout, self.deadline.remaining())))
            except ApiError as err:
                if err.status in (401, 403):
                    raise _refusal(err, self.scope, self.what) from None
                if err.status not in RETRY_STATUSES:
                    # e.g. a 404 for what our own earlier attempt, landed after all, already changed
                    if self.maybe_applied and self._read_back()[1]:
                        return None
                    reasons = "; ".join(err.errors) or "no reason given"
                    raise LinodeAPIError(f"Linode API could not {self.what} (HTTP {err.status}: {reasons})",
                                         err.status) from None
                wait = self._wait_after(err, attempt)
            except requests.RequestException as err:
                self.problem = _describe(err)
                self.maybe_applied = self.maybe_applied or (self.verify is not None and _may_have_applied(err))
                wait = api._backoff(attempt)
            if last or not self._pause(wait):
                break
        if self.maybe_applied and not self.deadline.expired and self._read_back()[1]:
            return None
        raise self._gave_up(api.clock() - started)

    def _wait_after(self, err: ApiError, attempt: int) -> float:
        """The wait before trying a 408/429/5xx again; raise when a Retry-After outlasts the deadline."""
        self.problem = f"HTTP {err.status}"
        if err.status == 429:
            wait = (retry_after_seconds(err.response.headers.get("Retry-After")) if err.response is not None
                    else None) or self.api._backoff(attempt)
            if not self.deadline.allows(wait):
                raise LinodeAPIError(
                    f"Linode API rate limit while trying to {self.what}: it asks to wait {wait:.0f} s, which "
                    f"{self.deadline.what} does not leave ({self.deadline.remaining():.0f} s left)", 429) from None
            return wait
        self.maybe_applied = self.maybe_applied or (self.verify is not None and self.method != "get")
        return self.api._backoff(attempt)

    def _pause(self, wait: float) -> bool:
        if not self.deadline.allows(wait):
            return False
        self.api.sleep(wait)
        return True

    def _read_back(self) -> tuple[bool, bool]:
        """(whether the state could be read, whether it is what the write wanted)."""
        assert self.verify is not None
        try:
            return True, bool(self.verify())
        except LinodeAPIError as err:
            self.problem = f"{self.problem}; reading the result back failed: {err}"
            return False, False

    def _gave_up(self, elapsed: float) -> LinodeAPIError:
        unsure = " The change may have been applied: check before repeating it." if self.maybe_applied else ""
        if self.deadline.expired:
            return LinodeAPIError(
                f"Linode API gave no answer within {self.deadline.what} while trying to {self.what} "
                f"(gave up after {elapsed:.1f} s, {self.made} attempt(s); last: {self.problem}).{unsure}")
        return LinodeAPIError(f"Linode API unreachable while trying to {self.what} ({self.problem}, "
                              f"{self.made} attempt(s)).{unsure}")


def _refusal(err: ApiError, scope: str, what: str) -> LinodeAPIError:
    reasons = "; ".join(err.errors) or "no reason given"
    if err.status == 401:
        return LinodeAPIError(
            f"Linode API refused the token while trying to {what} (HTTP 401: {reasons}): LINODE_TOKEN is "
            f"invalid, expired or revoked; create a personal access token with the '{SCOPES[scope]}' scope",
            401)
    return LinodeAPIError(
        f"Linode API refused to {what} (HTTP {err.status}): the token needs the '{SCOPES[scope]}' scope", err.status)


def _may_have_applied(err: requests.RequestException) -> bool:
    """Only a connection never made (refused, unresolvable, connect timeout) surely did nothing."""
    if isinstance(err, requests.ConnectTimeout):
        return False
    reason = err.args[0].reason if err.args and isinstance(err.args[0], MaxRetryError) else None
    return not isinstance(reason, ConnectTimeoutError)  # NewConnectionError (refused) is one too


def _describe(err: requests.RequestException) -> str:
    if isinstance(err, requests.Timeout):
        return "request timed out"
    if not _may_have_applied(err):
        return "connection failed"
    return f"connection lost ({type(err).__name__})"
