"""The one way drctl talks to Cloudflare: the official `cloudflare` SDK behind drctl's error policy.

Every call goes through `CloudflareApi._call`, which owns the retry policy instead of the SDK
(the client is built with `max_retries=0`), because:
- the SDK ignores a Retry-After above 60 s and then retries within seconds, while Cloudflare's rate
  limit (1200 requests / 5 min) locks a token out for 5 minutes: retrying inside the lockout only
  burns requests. Here a long Retry-After closes a gate instead: calls fail fast with
  `CloudflareRateLimited` until it has passed, and a long-running caller (`drctl watch`) keeps
  probing and tries again on a later cycle;
- every operation has a deadline (its budget, or a caller's `within`) that bounds its attempts,
  the waits between them, Retry-After and each socket timeout: a hung API costs the budget, not
  the SDK's minutes;
- a write that failed ambiguously (a timeout or dropped connection after the request went out, a
  5xx) may have been applied: it is never sent again blindly. The state is read back first; if it
  is what the write wanted, the write succeeded (a DNS batch deleting a record it already deleted
  would otherwise come back 404, and a create would be made twice);
- the SDK sleeps with `time.sleep`; tests and the benchmark need an injectable clock and sleep;
- a 401/403 must become a message saying what to fix: the token itself (Cloudflare error 9109,
  invalid or revoked) or the permission the operation needs.

Errors raised here are `CloudflareApiError` subclasses whose messages are built by drctl from the
status and Cloudflare's error codes: never from request headers, and scrubbed of the token anyway.
Write bodies are built from typed values: integers stay integers (the SDK parses a TTL as a float,
and Cloudflare refuses `"ttl": 300.0`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import cloudflare
import httpx

from drctl.cloud.deadline import DEFAULT_BUDGET, Deadline, DeadlineScope, earliest, retry_after_seconds

ENV_TOKEN = "CLOUDFLARE_API_TOKEN"
ENV_BASE_URL = "DRCTL_CLOUDFLARE_BASE_URL"  # a local fake in tests, a proxy when air-gapped

# Token permissions as the Cloudflare dashboard names them, for 401/403 messages.
DNS_READ = 'zone "DNS Read" (or "DNS Write")'
DNS_WRITE = 'zone "DNS Write"'
LB_READ = 'zone "Load Balancers Read" (or "Load Balancers Write")'
LB_WRITE = 'zone "Load Balancers Write"'
POOLS_READ = 'account "Load Balancing: Monitors and Pools Read" (or "... Write")'
POOLS_WRITE = 'account "Load Balancing: Monitors and Pools Write"'

DEFAULT_TIMEOUT = 10.0  # seconds per request (connect, each read); the operation's deadline may cut it

# Cloudflare error codes saying the token itself cannot be used, whatever its permissions: 9109
# "Invalid access token" (also "Cannot use the access token from location: ..." for a token limited
# to other client addresses), 1000 "Invalid API Token", 6003/6111 a malformed Authorization header.
TOKEN_REFUSED_CODES = frozenset({1000, 6003, 6111, 9109})
RECORD_MISSING_CODE = 81044  # "Record does not exist."

T = TypeVar("T")


class CloudflareApiError(Exception):
    """A Cloudflare call failed; the message is for users and never contains the token."""

    kind = "error"

    def __init__(self, message: str, *, operation: str, status: int | None = None,
                 codes: tuple[int, ...] = ()):
        super().__init__(message)
        self.operation, self.status, self.codes = operation, status, codes


class CloudflareConfigError(CloudflareApiError):
    """drctl cannot build a client (no token): a usage problem, not an API failure."""

    kind = "config"


class CloudflarePermissionError(CloudflareApiError):
    kind = "permission"


class CloudflareTokenRefused(CloudflarePermissionError):
    """The token itself was refused (invalid, expired, revoked, or not allowed from this address):
    no permission added to it would help."""

    kind = "token"


class CloudflareRateLimited(CloudflareApiError):
    kind = "rate_limited"

    def __init__(self, message: str, *, operation: str, retry_after: float, sent: bool = True):
        super().__init__(message, operation=operation, status=429)
        # sent=False: refused locally while an earlier Retry-After runs; nothing reached Cloudflare.
        self.retry_after, self.sent = retry_after, sent


class CloudflareUnavailable(CloudflareApiError):
    """5xx, timeouts and connection errors, after the retries were spent."""

    kind = "unavailable"


class CloudflareDeadlineExceeded(CloudflareUnavailable):
    """The operation's deadline passed before Cloudflare answered it."""

    kind = "deadline"


class CloudflareRejected(CloudflareApiError):
    """Any other 4xx: the request itself was refused (missing record, conflicting batch, ...)."""

    kind = "rejected"


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # calls in all, the first one included
    base_delay: float = 0.5  # backoff before the second attempt; doubles each time
    max_delay: float = 8.0
    max_retry_after: float = 60.0  # waits longer than this close the gate instead of sleeping


@dataclass(frozen=True)
class DnsRecord:
    id: str
    type: str
    name: str
    content: str
    proxied: bool | None = None
    ttl: int | None = None  # seconds, 1 = automatic; an integer, as the API wants it back
    comment: str | None = None
    created_on: datetime | None = None

    def patch(self, content: str) -> dict[str, Any]:
        """A batch patch giving this record new content; the SDK wants name, type and ttl too."""
        body: dict[str, Any] = {"id": str(self.id), "type": str(self.type), "name": str(self.name),
                                "content": str(content), "ttl": int(self.ttl) if self.ttl is not None else 1}
        if self.proxied is not None:
            body["proxied"] = bool(self.proxied)
        return body

    def has(self, body: Mapping[str, Any]) -> bool:
        """Whether this record already is what `body` (a patch or a create) asks for."""
        for key, wanted in body.items():
            if key == "id":
                continue
            if key == "content":
                if not same_content(self.type, self.content, wanted):
                    return False
            elif key == "name":
                if self.name.lower().rstrip(".") != str(wanted).lower().rstrip("."):
                    return False
            elif getattr(self, key, None) != wanted:
                return False
        return True


@dataclass(frozen=True)
class BatchResult:
    deletes: tuple[DnsRecord, ...] = ()
    patches: tuple[DnsRecord, ...] = ()
    posts: tuple[DnsRecord, ...] = ()


@dataclass(frozen=True)
class LoadBalancer:
    id: str
    name: str
    default_pools: tuple[str, ...]  # failover order (steering "off": the first healthy pool serves)
    fallback_pool: str | None
    enabled: bool | None


@dataclass(frozen=True)
class PoolOrigin:
    name: str
    address: str
    enabled: bool

    def body(self, **changes: Any) -> dict[str, Any]:
        return {"name": self.name, "address": self.address, "enabled": self.enabled, **changes}


@dataclass(frozen=True)
class Pool:
    id: str
    name: str
    enabled: bool
    origins: tuple[PoolOrigin, ...]
    minimum_origins: int
    extra_origin_fields: tuple[dict[str, Any], ...] = ()  # weight, header, ...: kept on every write

    @property
    def serviceable(self) -> bool:
        """Enabled, with at least `minimum_origins` enabled origins (health aside)."""
        return self.enabled and sum(o.enabled for o in self.origins) >= max(1, self.minimum_origins)


@dataclass(frozen=True)
class PoolHealth:
    pool_id: str
    healthy: bool | None  # None: no health data (monitor not reporting, pool disabled)
    detail: str


@dataclass
class CloudflareApi:
    client: cloudflare.Cloudflare
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    jitter: Callable[[], float] = random.random
    timeout: float = DEFAULT_TIMEOUT  # per request; never beyond the operation's deadline
    budget: float = DEFAULT_BUDGET  # seconds one operation may take, every attempt and wait included
    _blocked_until: float = field(default=float("-inf"), init=False)
    _scope: DeadlineScope = field(default_factory=DeadlineScope, init=False, repr=False)

    @classmethod
    def from_env(cls, *, environ: Mapping[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT,
                 **kwargs: Any) -> CloudflareApi:
        """Token from CLOUDFLARE_API_TOKEN; base URL from DRCTL_CLOUDFLARE_BASE_URL if set (else
        the SDK's own default, which honours CLOUDFLARE_BASE_URL)."""
        env = os.environ if environ is None else environ
        token = env.get(ENV_TOKEN, "").strip()
        if not token:
            raise CloudflareConfigError(
                f"{ENV_TOKEN} is not set: create an API token with {DNS_WRITE} on the shop's zone "
                f"and export it (or put it in the service's environment file)",
                operation="configure",
            )
        client = cloudflare.Cloudflare(
            api_token=token, base_url=env.get(ENV_BASE_URL) or None, timeout=timeout, max_retries=0,
        )
        return cls(client, timeout=timeout, **kwargs)

    def within(self, deadline: Deadline) -> contextlib.AbstractContextManager[Deadline]:
        """Bound every operation started in this block (on this thread) by `deadline` as well."""
        return self._scope.within(deadline)

    # -- DNS records -------------------------------------------------------------------------

    def get_dns_record(self, zone_id: str, record_id: str) -> DnsRecord:
        got = self._call(f"read DNS record {record_id}", DNS_READ,
                         lambda t: self.client.dns.records.get(record_id, zone_id=zone_id, timeout=t))
        return _record(got)

    def list_dns_records(self, zone_id: str, *, name: str, type: str | None = None) -> list[DnsRecord]:
        """The records of one exact name (first 100: a name holds a handful). One request: the
        SDK's iterator would fetch page after page until it meets an empty one."""
        kwargs: dict[str, Any] = {"zone_id": zone_id, "name": {"exact": name}, "per_page": 100}
        if type:
            kwargs["type"] = type
        page = self._call(f"list DNS records named {name}", DNS_READ,
                          lambda t: self.client.dns.records.list(**kwargs, timeout=t))
        return [_record(r) for r in page.result or []]

    def set_dns_content(self, zone_id: str, record_id: str, content: str) -> tuple[DnsRecord, bool]:
        """Point one record at `content`: reads it first and writes only when it differs.
        Returns the record as it now is and whether a write was made."""
        current = self.get_dns_record(zone_id, record_id)
        if current.content == content:
            return current, False
        body = current.patch(content)
        body.pop("id")

        def applied() -> DnsRecord | None:
            now = self.get_dns_record(zone_id, record_id)
            return now if now.has(body) else None

        edited = self._call(f"update DNS record {record_id}", DNS_WRITE,
                            lambda t: self.client.dns.records.edit(record_id, zone_id=zone_id, **body, timeout=t),
                            verify=applied)
        return edited if isinstance(edited, DnsRecord) else _record(edited), True

    def batch_dns(self, zone_id: str, *, deletes: Iterable[str] = (), patches: Iterable[Mapping[str, Any]] = (),
                  posts: Iterable[Mapping[str, Any]] = ()) -> BatchResult:
        """One request, one database transaction at Cloudflare: deletes, then patches, then posts;
        if any part fails (a record to delete is already gone), none is applied. drctl uses that as
        compare-and-swap: deleting the record it last read fails if someone replaced it since.
        After an ambiguous failure the records are read back: a batch found applied is a success
        (its result then holds the records as read; `deletes` stays empty)."""
        delete_ids, patch_bodies, post_bodies = list(deletes), [dict(p) for p in patches], [dict(p) for p in posts]
        kwargs: dict[str, Any] = {"zone_id": zone_id}
        if delete_ids:
            kwargs["deletes"] = [{"id": d} for d in delete_ids]
        if patch_bodies:
            kwargs["patches"] = patch_bodies
        if post_bodies:
            kwargs["posts"] = post_bodies
        done = self._call("batch-update DNS records", DNS_WRITE,
                          lambda t: self.client.dns.records.batch(**kwargs, timeout=t),
                          verify=lambda: self._batch_applied(zone_id, delete_ids, patch_bodies, post_bodies))
        if done is None:
            return BatchResult()
        if isinstance(done, BatchResult):
            return done
        return BatchResult(
            deletes=tuple(_record(r) for r in done.deletes or ()),
            patches=tuple(_record(r) for r in done.patches or ()),
            posts=tuple(_record(r) for r in done.posts or ()),
        )

    def _batch_applied(self, zone_id: str, deletes: list[str], patches: list[dict[str, Any]],
                       posts: list[dict[str, Any]]) -> BatchResult | None:
        """The batch's effect as read back now, or None if it is not (all) there. The batch is one
        transaction, so finding every part is finding it applied."""
        if any(self._find_record(zone_id, record_id) is not None for record_id in deletes):
            return None
        patched = []
        for body in patches:
            record = self._find_record(zone_id, body["id"])
            if record is None or not record.has(body):
                return None
            patched.append(record)
        posted = []
        for body in posts:
            found = [r for r in self.list_dns_records(zone_id, name=body["name"], type=body["type"])
                     if r.has(body) and r.id not in deletes]
            if not found:
                return None
            posted.append(found[-1])  # the newest, should an identical record exist already
        return BatchResult(patches=tuple(patched), posts=tuple(posted))

    def _find_record(self, zone_id: str, record_id: str) -> DnsRecord | None:
        try:
            return self.get_dns_record(zone_id, record_id)
        except CloudflareRejected as err:
            if err.status == 404 or RECORD_MISSING_CODE in err.codes:
                return None
            raise

    # -- load balancer and pools --------------------------------------------------------------

    def get_load_balancer(self, zone_id: str, lb_id: str) -> LoadBalancer:
        got = self._call(f"read load balancer {lb_id}", LB_READ,
                         lambda t: self.client.load_balancers.get(lb_id, zone_id=zone_id, timeout=t))
        return _load_balancer(got, lb_id)

    def set_pool_order(self, zone_id: str, lb_id: str, default_pools: Iterable[str],
                       fallback_pool: str | None = None) -> LoadBalancer:
        """Reorder the load balancer's pools (the first healthy one serves); only these fields change."""
        pools = [str(p) for p in default_pools]
        kwargs: dict[str, Any] = {"zone_id": zone_id, "default_pools": pools}
        if fallback_pool is not None:
            kwargs["fallback_pool"] = str(fallback_pool)

        def applied() -> LoadBalancer | None:
            lb = self.get_load_balancer(zone_id, lb_id)
            ordered = list(lb.default_pools) == pools and fallback_pool in (None, lb.fallback_pool)
            return lb if ordered else None

        got = self._call(f"reorder the pools of load balancer {lb_id}", LB_WRITE,
                         lambda t: self.client.load_balancers.edit(lb_id, **kwargs, timeout=t), verify=applied)
        return got if isinstance(got, LoadBalancer) else _load_balancer(got, lb_id)

    def get_pool(self, account_id: str, pool_id: str) -> Pool:
        got = self._call(f"read pool {pool_id}", POOLS_READ,
                         lambda t: self.client.load_balancers.pools.get(pool_id, account_id=account_id, timeout=t))
        return _pool(got, pool_id)

    def set_origins_enabled(self, account_id: str, pool_id: str, enabled: bool) -> tuple[Pool, bool]:
        """Enable or disable every origin of a pool (taking a region in or out of the load
        balancer); reads first and writes only when something differs. Other origin fields
        (weight, header) are sent back as read."""
        pool = self.get_pool(account_id, pool_id)
        if all(o.enabled == enabled for o in pool.origins) and pool.origins:
            return pool, False
        origins = [{**extra, **o.body(enabled=bool(enabled))}
                   for o, extra in zip(pool.origins, pool.extra_origin_fields, strict=True)]

        def applied() -> Pool | None:
            now = self.get_pool(account_id, pool_id)
            return now if now.origins and all(o.enabled == enabled for o in now.origins) else None

        what = "enable" if enabled else "disable"
        got = self._call(f"{what} the origins of pool {pool_id}", POOLS_WRITE,
                         lambda t: self.client.load_balancers.pools.edit(pool_id, account_id=account_id,
                                                                         origins=origins, timeout=t),
                         verify=applied)
        return (got if isinstance(got, Pool) else _pool(got, pool_id)), True

    def pool_health(self, account_id: str, pool_id: str) -> PoolHealth:
        """The pool's health as Cloudflare's monitors last saw it: healthy only if every reporting
        data centre says so."""
        got = self._call(f"read the health of pool {pool_id}", POOLS_READ,
                         lambda t: self.client.load_balancers.pools.health.get(pool_id, account_id=account_id,
                                                                               timeout=t))
        return _pool_health(got, pool_id)

    # -- the error policy ---------------------------------------------------------------------

    def blocked_for(self) -> float:
        """Seconds until the rate-limit gate opens again (0 when open)."""
        return max(0.0, self._blocked_until - self.clock())

    def _call(self, operation: str, permission: str, send: Callable[[float], T],
              verify: Callable[[], Any] | None = None) -> T:
        """Run one operation within its deadline. `send(timeout)` makes the request. A write passes
        `verify`, a read of the state it wants returning the result when that state is there (else
        None): after an ambiguous failure the write is only sent again once `verify` has said no.
        The reads `verify` makes share this operation's deadline."""
        own = Deadline.after(self.budget, f"the {self.budget:g} s budget of one Cloudflare API operation", self.clock)
        deadline = earliest(own, self._scope.current())
        with self._scope.within(deadline):
            return _Attempts(self, operation, permission, send, verify, deadline).run()

    def _check_gate(self, operation: str) -> None:
        remaining = self.blocked_for()
        if remaining > 0:
            raise CloudflareRateLimited(
                f"{operation}: not sent, Cloudflare rate limit in force for another {remaining:.0f} s",
                operation=operation, retry_after=remaining, sent=False,
            )

    def _backoff(self, attempt: int) -> float:
        # Exponential with "equal jitter": at least half the step, so waits grow; the random half
        # spreads several drctl processes that hit the same outage apart.
        step = min(self.retry.max_delay, self.retry.base_delay * 2**attempt)
        return step / 2 + self.jitter() * step / 2


@dataclass
class _Attempts:
    """One operation's attempts under CloudflareApi's policy (see the module docstring)."""

    api: CloudflareApi
    operation: str
    permission: str
    send: Callable[[float], Any]
    verify: Callable[[], Any] | None
    deadline: Deadline
    made: int = 0
    problem: str = "no attempt was made"
    maybe_applied: bool = False  # an earlier attempt of this write failed after it went out

    def run(self) -> Any:
        api, attempts = self.api, max(1, self.api.retry.attempts)
        started = api.clock()
        for attempt in range(attempts):
            api._check_gate(self.operation)
            if self.maybe_applied:
                known, done = self._read_back()
                if done is not None:
                    return done
                if not known and not self._pause(attempt, attempts):
                    break
                if not known:
                    continue
            if self.deadline.expired:
                break
            try:
                self.made += 1
                return self.send(max(0.001, min(api.timeout, self.deadline.remaining())))
            except cloudflare.RateLimitError as err:
                self._rate_limited(err, attempt, last=attempt == attempts - 1)
            except (cloudflare.InternalServerError, cloudflare.APIConnectionError) as err:
                self.problem = _describe(err)
                self.maybe_applied = self.maybe_applied or (self.verify is not None and _may_have_applied(err))
                if not self._pause(attempt, attempts):
                    break
            except cloudflare.APIStatusError as err:
                if self.maybe_applied:
                    # e.g. a batch whose delete finds its record gone: our own earlier attempt,
                    # applied after its answer was lost, is the likeliest reason.
                    _, done = self._read_back()
                    if done is not None:
                        return done
                raise _refusal(self.operation, self.permission, err) from None
        if self.maybe_applied and not self.deadline.expired:
            _, done = self._read_back()
            if done is not None:
                return done
        raise self._gave_up(api.clock() - started)

    def _pause(self, attempt: int, attempts: int) -> bool:
        """Back off before the next attempt; False when there is none (attempts or time spent)."""
        wait = self.api._backoff(attempt)
        if attempt == attempts - 1 or not self.deadline.allows(wait):
            return False
        self.api.sleep(wait)
        return True

    def _rate_limited(self, err: cloudflare.RateLimitError, attempt: int, *, last: bool) -> None:
        api = self.api
        wait = retry_after_seconds(err.response.headers.get("retry-after")) or api._backoff(attempt)
        if last or wait > api.retry.max_retry_after or not self.deadline.allows(wait):
            api._blocked_until = api.clock() + wait
            raise CloudflareRateLimited(
                f"{self.operation}: Cloudflare rate limit reached (429); retrying after {wait:.0f} s",
                operation=self.operation, retry_after=wait,
            ) from None
        api.sleep(wait)

    def _read_back(self) -> tuple[bool, Any]:
        """(whether the state could be read, the write's result if it is applied)."""
        assert self.verify is not None
        try:
            return True, self.verify()
        except CloudflareApiError as err:
            self.problem = f"{self.problem}; reading the result back failed: {err}"
            return False, None

    def _gave_up(self, elapsed: float) -> CloudflareApiError:
        unsure = " The write may have been applied: check before repeating it." if self.maybe_applied else ""
        if self.deadline.expired:
            return CloudflareDeadlineExceeded(
                f"{self.operation}: no answer from Cloudflare within {self.deadline.what} "
                f"(gave up after {elapsed:.1f} s, {self.made} attempt(s); last: {self.problem}).{unsure}",
                operation=self.operation)
        return CloudflareUnavailable(
            f"{self.operation}: Cloudflare API unavailable after {self.made} attempts ({self.problem}).{unsure}",
            operation=self.operation)


def same_content(record_type: str, a: Any, b: Any) -> bool:
    """Record contents equal as Cloudflare means them ("2600::0:1" is "2600::1" in an AAAA record)."""
    if record_type in ("A", "AAAA"):
        try:
            return ipaddress.ip_address(str(a)) == ipaddress.ip_address(str(b))
        except ValueError:
            pass
    return str(a) == str(b)


def _may_have_applied(err: cloudflare.APIError) -> bool:
    """A 5xx, a timeout or a broken connection after the request was sent: Cloudflare may have
    acted on it. Only a connection never made (refused, unreachable, connect timeout) is known
    not to have reached it."""
    if isinstance(err, cloudflare.APIStatusError):
        return True
    return not any(isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
                   for cause in _causes(err))


def _causes(err: BaseException) -> Iterator[BaseException]:
    seen = err.__cause__ or err.__context__
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def _refusal(operation: str, permission: str, err: cloudflare.APIStatusError) -> CloudflareApiError:
    """The error for a request Cloudflare answered with a 4xx, read from its error codes first:
    a 403 is a missing permission only when the code does not say the token itself is refused."""
    codes, status = _codes(err), err.status_code
    if status == 401 or TOKEN_REFUSED_CODES.intersection(codes):
        return CloudflareTokenRefused(_token_message(operation, permission, err), operation=operation,
                                      status=status, codes=codes)
    if isinstance(err, cloudflare.AuthenticationError | cloudflare.PermissionDeniedError):
        return CloudflarePermissionError(_permission_message(operation, permission, err), operation=operation,
                                         status=status, codes=codes)
    return CloudflareRejected(f"{operation}: Cloudflare refused the request ({_describe(err)})",
                              operation=operation, status=status, codes=codes)


def _token_message(operation: str, permission: str, err: cloudflare.APIStatusError) -> str:
    said = "; ".join(f"{e.code}: {e.message}" for e in getattr(err, "errors", []) or [])
    status = f"{err.status_code}" + (f", Cloudflare error {said}" if said else "")
    return (f"{operation}: Cloudflare refused the API token itself ({status}): it is invalid, expired or "
            f"revoked, or not allowed from this address; put a valid token with {permission} permission "
            f"in {ENV_TOKEN} (adding permissions to this one will not help)")


def _permission_message(operation: str, permission: str, err: cloudflare.APIStatusError) -> str:
    codes = _codes(err)
    status = f"{err.status_code}{', Cloudflare error ' + ', '.join(map(str, codes)) if codes else ''}"
    scope = "account" if permission.startswith("account") else "zone"
    return (f"{operation}: the API token lacks the {permission} permission for this {scope} ({status}); "
            "edit the token in the Cloudflare dashboard to add it")


def _codes(err: cloudflare.APIError) -> tuple[int, ...]:
    return tuple(e.code for e in getattr(err, "errors", []) or [] if isinstance(e.code, int))


def _describe(err: cloudflare.APIError) -> str:
    # Cloudflare's own error messages (e.g. "Record does not exist.") help; the SDK's str(err)
    # embeds the whole body, which is noisier. Neither carries request headers.
    status = getattr(err, "status_code", None)
    messages = [f"{e.code}: {e.message}" for e in getattr(err, "errors", []) or []]
    if status is None:
        return type(err).__name__.replace("API", "").replace("Error", " error").strip().lower()
    return f"HTTP {status}" + (f": {'; '.join(messages)}" if messages else "")


def _record(r: Any) -> DnsRecord:
    return DnsRecord(
        id=r.id, type=r.type, name=r.name, content=str(r.content), proxied=getattr(r, "proxied", None),
        ttl=_whole_seconds(getattr(r, "ttl", None)), comment=getattr(r, "comment", None),
        created_on=getattr(r, "created_on", None),
    )


def _whole_seconds(ttl: Any) -> int | None:
    # The SDK types a TTL as float | Literal[1] and parses 300 as 300.0; the API takes integers only.
    if ttl is None:
        return None
    return int(ttl) if float(ttl).is_integer() else round(ttl)


def _load_balancer(got: Any, lb_id: str) -> LoadBalancer:
    return LoadBalancer(id=got.id or lb_id, name=got.name or "", default_pools=tuple(got.default_pools or ()),
                        fallback_pool=got.fallback_pool, enabled=got.enabled)


def _pool(p: Any, pool_id: str) -> Pool:
    origins, extras = [], []
    for o in p.origins or ():
        origins.append(PoolOrigin(name=o.name or "", address=o.address or "", enabled=o.enabled is not False))
        # Fields drctl does not change go back as read; port stays unset when unset (it drifts otherwise).
        extras.append({k: v for k, v in o.model_dump(exclude_none=True).items()
                       if k in ("weight", "header", "port", "virtual_network_id", "flatten_cname")})
    return Pool(id=p.id or pool_id, name=p.name or "", enabled=p.enabled is not False, origins=tuple(origins),
                minimum_origins=int(p.minimum_origins or 1), extra_origin_fields=tuple(extras))


def _pool_health(h: Any, pool_id: str) -> PoolHealth:
    # The API keys pop_health by data centre ({"Amsterdam, NL": {"healthy": true, ...}}); the SDK's
    # model names one POPHealth, so the data centres arrive as its extra fields.
    pops = getattr(h, "pop_health", None)
    seen: dict[str, bool] = {}
    if pops is not None:
        if getattr(pops, "healthy", None) is not None:
            seen["(all)"] = bool(pops.healthy)
        for name, value in (getattr(pops, "model_extra", None) or {}).items():
            healthy = value.get("healthy") if isinstance(value, dict) else getattr(value, "healthy", None)
            if healthy is not None:
                seen[name] = bool(healthy)
    if not seen:
        return PoolHealth(pool_id, None, "no health data yet")
    down = sorted(k for k, v in seen.items() if not v)
    if not down:
        return PoolHealth(pool_id, True, f"healthy from {len(seen)} data centre(s)")
    return PoolHealth(pool_id, False, f"unhealthy from {', '.join(down)}")
