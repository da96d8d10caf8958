"""The one way drctl talks to Cloudflare: the official `cloudflare` SDK behind drctl's error policy.

Every call goes through `CloudflareApi._call`, which owns the retry policy instead of the SDK
(the client is built with `max_retries=0`), because:
- the SDK ignores a Retry-After above 60 s and then retries within seconds, while Cloudflare's rate
  limit (1200 requests / 5 min) locks a token out for 5 minutes: retrying inside the lockout only
  burns requests. Here a long Retry-After closes a gate instead: calls fail fast with
  `CloudflareRateLimited` until it has passed, and a long-running caller (`drctl watch`) keeps
  probing and tries again on a later cycle;
- the SDK sleeps with `time.sleep`; tests and the benchmark need an injectable clock and sleep;
- a 401/403 must become a message naming the token permission the operation needs.

Errors raised here are `CloudflareApiError` subclasses whose messages are built by drctl from the
status and Cloudflare's error codes: never from request headers, and scrubbed of the token anyway.
"""

from __future__ import annotations

import email.utils
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import cloudflare

ENV_TOKEN = "CLOUDFLARE_API_TOKEN"
ENV_BASE_URL = "DRCTL_CLOUDFLARE_BASE_URL"  # a local fake in tests, a proxy when air-gapped

# Token permissions as the Cloudflare dashboard names them, for 401/403 messages.
DNS_READ = 'zone "DNS Read" (or "DNS Write")'
DNS_WRITE = 'zone "DNS Write"'
LB_READ = 'zone "Load Balancers Read" (or "Load Balancers Write")'
LB_WRITE = 'zone "Load Balancers Write"'
POOLS_READ = 'account "Load Balancing: Monitors and Pools Read" (or "... Write")'
POOLS_WRITE = 'account "Load Balancing: Monitors and Pools Write"'

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


class CloudflareRateLimited(CloudflareApiError):
    kind = "rate_limited"

    def __init__(self, message: str, *, operation: str, retry_after: float, sent: bool = True):
        super().__init__(message, operation=operation, status=429)
        # sent=False: refused locally while an earlier Retry-After runs; nothing reached Cloudflare.
        self.retry_after, self.sent = retry_after, sent


class CloudflareUnavailable(CloudflareApiError):
    """5xx, timeouts and connection errors, after the retries were spent."""

    kind = "unavailable"


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
    ttl: float | None = None
    comment: str | None = None
    created_on: datetime | None = None

    def patch(self, content: str) -> dict[str, Any]:
        """A batch patch giving this record new content; the SDK wants name, type and ttl too."""
        body: dict[str, Any] = {"id": self.id, "type": self.type, "name": self.name, "content": content,
                                "ttl": self.ttl if self.ttl is not None else 1}
        if self.proxied is not None:
            body["proxied"] = self.proxied
        return body


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
    _blocked_until: float = field(default=float("-inf"), init=False)

    @classmethod
    def from_env(cls, *, environ: Mapping[str, str] | None = None, timeout: float = 10.0,
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
        return cls(client, **kwargs)

    # -- DNS records -------------------------------------------------------------------------

    def get_dns_record(self, zone_id: str, record_id: str) -> DnsRecord:
        got = self._call(f"read DNS record {record_id}", DNS_READ,
                         lambda: self.client.dns.records.get(record_id, zone_id=zone_id))
        return _record(got)

    def list_dns_records(self, zone_id: str, *, name: str, type: str | None = None) -> list[DnsRecord]:
        """The records of one exact name (first 100: a name holds a handful). One request: the
        SDK's iterator would fetch page after page until it meets an empty one."""
        kwargs: dict[str, Any] = {"zone_id": zone_id, "name": {"exact": name}, "per_page": 100}
        if type:
            kwargs["type"] = type
        page = self._call(f"list DNS records named {name}", DNS_READ, lambda: self.client.dns.records.list(**kwargs))
        return [_record(r) for r in page.result or []]

    def set_dns_content(self, zone_id: str, record_id: str, content: str) -> tuple[DnsRecord, bool]:
        """Point one record at `content`: reads it first and writes only when it differs.
        Returns the record as it now is and whether a write was made."""
        current = self.get_dns_record(zone_id, record_id)
        if current.content == content:
            return current, False
        body = current.patch(content)
        body.pop("id")
        edited = self._call(f"update DNS record {record_id}", DNS_WRITE,
                            lambda: self.client.dns.records.edit(record_id, zone_id=zone_id, **body))
        return _record(edited), True

    def batch_dns(self, zone_id: str, *, deletes: Iterable[str] = (), patches: Iterable[Mapping[str, Any]] = (),
                  posts: Iterable[Mapping[str, Any]] = ()) -> BatchResult:
        """One request, one database transaction at Cloudflare: deletes, then patches, then posts;
        if any part fails (a record to delete is already gone), none is applied. drctl uses that as
        compare-and-swap: deleting the record it last read fails if someone replaced it since."""
        kwargs: dict[str, Any] = {"zone_id": zone_id}
        if deletes := [{"id": d} for d in deletes]:
            kwargs["deletes"] = deletes
        if patches := [dict(p) for p in patches]:
            kwargs["patches"] = patches
        if posts := [dict(p) for p in posts]:
            kwargs["posts"] = posts
        done = self._call("batch-update DNS records", DNS_WRITE, lambda: self.client.dns.records.batch(**kwargs))
        if done is None:
            return BatchResult()
        return BatchResult(
            deletes=tuple(_record(r) for r in done.deletes or ()),
            patches=tuple(_record(r) for r in done.patches or ()),
            posts=tuple(_record(r) for r in done.posts or ()),
        )

    # -- load balancer and pools --------------------------------------------------------------

    def get_load_balancer(self, zone_id: str, lb_id: str) -> LoadBalancer:
        got = self._call(f"read load balancer {lb_id}", LB_READ,
                         lambda: self.client.load_balancers.get(lb_id, zone_id=zone_id))
        return LoadBalancer(id=got.id or lb_id, name=got.name or "", default_pools=tuple(got.default_pools or ()),
                            fallback_pool=got.fallback_pool, enabled=got.enabled)

    def set_pool_order(self, zone_id: str, lb_id: str, default_pools: Iterable[str],
                       fallback_pool: str | None = None) -> LoadBalancer:
        """Reorder the load balancer's pools (the first healthy one serves); only these fields change."""
        kwargs: dict[str, Any] = {"zone_id": zone_id, "default_pools": list(default_pools)}
        if fallback_pool is not None:
            kwargs["fallback_pool"] = fallback_pool
        got = self._call(f"reorder the pools of load balancer {lb_id}", LB_WRITE,
                         lambda: self.client.load_balancers.edit(lb_id, **kwargs))
        return LoadBalancer(id=got.id or lb_id, name=got.name or "", default_pools=tuple(got.default_pools or ()),
                            fallback_pool=got.fallback_pool, enabled=got.enabled)

    def get_pool(self, account_id: str, pool_id: str) -> Pool:
        got = self._call(f"read pool {pool_id}", POOLS_READ,
                         lambda: self.client.load_balancers.pools.get(pool_id, account_id=account_id))
        return _pool(got, pool_id)

    def set_origins_enabled(self, account_id: str, pool_id: str, enabled: bool) -> tuple[Pool, bool]:
        """Enable or disable every origin of a pool (taking a region in or out of the load
        balancer); reads first and writes only when something differs. Other origin fields
        (weight, header) are sent back as read."""
        pool = self.get_pool(account_id, pool_id)
        if all(o.enabled == enabled for o in pool.origins) and pool.origins:
            return pool, False
        origins = [{**extra, **o.body(enabled=enabled)} for o, extra in zip(pool.origins, pool.extra_origin_fields,
                                                                            strict=True)]
        what = "enable" if enabled else "disable"
        got = self._call(f"{what} the origins of pool {pool_id}", POOLS_WRITE,
                         lambda: self.client.load_balancers.pools.edit(pool_id, account_id=account_id, origins=origins))
        return _pool(got, pool_id), True

    def pool_health(self, account_id: str, pool_id: str) -> PoolHealth:
        """The pool's health as Cloudflare's monitors last saw it: healthy only if every reporting
        data centre says so."""
        got = self._call(f"read the health of pool {pool_id}", POOLS_READ,
                         lambda: self.client.load_balancers.pools.health.get(pool_id, account_id=account_id))
        return _pool_health(got, pool_id)

    # -- the error policy ---------------------------------------------------------------------

    def blocked_for(self) -> float:
        """Seconds until the rate-limit gate opens again (0 when open)."""
        return max(0.0, self._blocked_until - self.clock())

    def _call(self, operation: str, permission: str, fn: Callable[[], T]) -> T:
        attempts = max(1, self.retry.attempts)
        for attempt in range(attempts):
            self._check_gate(operation)
            last = attempt == attempts - 1
            try:
                return fn()
            except cloudflare.RateLimitError as err:
                wait = _retry_after(err.response.headers) or self._backoff(attempt)
                if last or wait > self.retry.max_retry_after:
                    self._blocked_until = self.clock() + wait
                    raise CloudflareRateLimited(
                        f"{operation}: Cloudflare rate limit reached (429); retrying after {wait:.0f} s",
                        operation=operation, retry_after=wait,
                    ) from None
                self.sleep(wait)
            except (cloudflare.InternalServerError, cloudflare.APIConnectionError) as err:
                if last:
                    raise CloudflareUnavailable(
                        f"{operation}: Cloudflare API unavailable after {attempts} attempts ({_describe(err)})",
                        operation=operation, status=getattr(err, "status_code", None),
                    ) from None
                self.sleep(self._backoff(attempt))
            except (cloudflare.AuthenticationError, cloudflare.PermissionDeniedError) as err:
                raise CloudflarePermissionError(
                    _permission_message(operation, permission, err), operation=operation,
                    status=err.status_code, codes=_codes(err),
                ) from None
            except cloudflare.APIStatusError as err:
                raise CloudflareRejected(
                    f"{operation}: Cloudflare refused the request ({_describe(err)})",
                    operation=operation, status=err.status_code, codes=_codes(err),
                ) from None
        raise AssertionError("unreachable: the last attempt returns or raises")

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


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    return max(0.0, email.utils.mktime_tz(parsed) - time.time())


def _permission_message(operation: str, permission: str, err: cloudflare.APIStatusError) -> str:
    codes = _codes(err)
    status = f"{err.status_code}{', Cloudflare error ' + ', '.join(map(str, codes)) if codes else ''}"
    if err.status_code == 401:
        return (f"{operation}: Cloudflare rejected the API token ({status}): check that {ENV_TOKEN} holds a "
                f"valid, unexpired token with {permission} permission")
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
        ttl=getattr(r, "ttl", None), comment=getattr(r, "comment", None), created_on=getattr(r, "created_on", None),
    )


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
