"""The single-writer lease: at most one `drctl watch` repoints a stack's DNS records at a time.

`CloudflareLease` (the default) works across machines: the lease is a TXT record
`_drctl-watch.<domain>` in the shop's own zone, content `"drctl-watch holder=<id> expires=<unix>"`.
- Every write to it is compare-and-swap through Cloudflare's batch endpoint (one database
  transaction): delete the lease record(s) just read + create the new one. If another watchdog
  replaced the record in between, the delete fails and nothing is applied.
- The holder renews at half its TTL and puts the same delete+create into the batch that repoints
  the A/AAAA records, so a watchdog that lost the lease cannot move traffic (the lease fences it).
- When the holder dies its record simply expires: another watchdog takes over `ttl` (+ a clock-skew
  allowance) seconds later at most. A holder that stops cleanly deletes it, and standbys notice
  within a quarter of the TTL. Holder ids must be unique per running process; a restarted process
  with the same id (the systemd unit uses the host name) takes its old lease straight back.
- Two watchdogs creating the lease at the same moment when none exists both succeed; the oldest
  record (then the smaller id) is the lease and the other creator deletes its own and stands by.
Expiry uses wall-clock time: keep the watchdog hosts on NTP (skew allowance: `SKEW` seconds).

`FileLease` is for watchdogs on one host: an exclusive `flock` the kernel drops when the process
dies. `NoLease` always holds (a lone watchdog, or --dry-run, which writes nothing).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from drctl.cloud.cloudflare import (
    RECORD_MISSING_CODE,
    BatchResult,
    CloudflareApi,
    CloudflareApiError,
    CloudflareRejected,
    DnsRecord,
)

SKEW = 10.0  # seconds of clock difference tolerated between watchdog hosts
LEASE_PREFIX = "_drctl-watch"
_CONTENT = re.compile(r"holder=(?P<holder>\S+)\s+expires=(?P<expires>\d+)")


@dataclass(frozen=True)
class LeaseState:
    held: bool
    holder: str | None  # who holds it (None: nobody, or unknown after errors)
    expires_at: float | None = None

    def describe(self) -> str:
        if self.held:
            return "held by this watchdog"
        return f"held by {self.holder}" if self.holder else "not held"


@dataclass(frozen=True)
class Fence:
    """What a lease holder adds to the batch that repoints the records."""

    deletes: tuple[str, ...] = ()
    posts: tuple[dict[str, Any], ...] = ()


class Lease(Protocol):
    holder: str

    def refresh(self) -> LeaseState: ...
    def state(self) -> LeaseState: ...
    def fence(self) -> Fence | None: ...  # None: not the holder, do not write
    def confirm(self, result: BatchResult | None) -> None: ...
    def lost(self) -> None: ...
    def release(self) -> None: ...


@dataclass
class NoLease:
    holder: str = "this watchdog"

    def refresh(self) -> LeaseState:
        return self.state()

    def state(self) -> LeaseState:
        return LeaseState(True, self.holder)

    def fence(self) -> Fence | None:
        return Fence()

    def confirm(self, result: BatchResult | None) -> None:
        pass

    def lost(self) -> None:
        pass

    def release(self) -> None:
        pass


@dataclass
class FileLease(NoLease):
    path: str = ""
    _fd: int | None = field(default=None, init=False)
    _other: str | None = field(default=None, init=False)

    def refresh(self) -> LeaseState:
        if self._fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._other = os.read(fd, 200).decode(errors="replace").strip() or "another process"
                os.close(fd)
                return self.state()
            os.ftruncate(fd, 0)
            os.write(fd, f"{self.holder}\n".encode())
            self._fd = fd
        return self.state()

    def state(self) -> LeaseState:
        return LeaseState(True, self.holder) if self._fd is not None else LeaseState(False, self._other)

    def fence(self) -> Fence | None:
        return Fence() if self._fd is not None else None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


@dataclass
class CloudflareLease:
    api: CloudflareApi
    zone_id: str
    domain: str
    holder: str
    ttl: float
    wall: Callable[[], float] = time.time
    skew: float = SKEW
    # Whose lease: drctl guard keeps its own (`_drctl-guard.<domain>`, "drctl-guard holder=..."),
    # apart from the watchdog's, with the same rules.
    prefix: str = LEASE_PREFIX
    service: str = "drctl-watch"
    _record_id: str | None = field(default=None, init=False)  # our lease record while we hold it
    _expires: float = field(default=0.0, init=False)  # ours, or the other holder's
    _other: str | None = field(default=None, init=False)
    _next_look: float = field(default=float("-inf"), init=False)

    @property
    def name(self) -> str:
        return f"{self.prefix}.{self.domain}"

    def refresh(self) -> LeaseState:
        """Called every cycle; talks to Cloudflare only when due: the holder at half its TTL, a
        standby when the holder's lease expires (or every quarter TTL, to notice a release)."""
        now = self.wall()
        if self._holding(now) and now < self._expires - self.ttl / 2:
            return self.state()
        if not self._holding(now) and now < self._next_look:
            return self.state()
        records = self.api.list_dns_records(self.zone_id, name=self.name, type="TXT")
        current = _canonical(records)
        mine = current is not None and _parse(current)[0] == self.holder
        if current is None or mine or _parse(current)[1] + self.skew < now:
            self._write(records, now)
        else:
            self._observe(*_parse(current), now)
        return self.state()

    def state(self) -> LeaseState:
        if self._holding(self.wall()):
            return LeaseState(True, self.holder, self._expires)
        return LeaseState(False, self._other, self._expires if self._other else None)

    def fence(self) -> Fence | None:
        now = self.wall()
        if not self._holding(now) or self._record_id is None:
            return None
        return Fence(deletes=(self._record_id,), posts=(self._record(now),))

    def confirm(self, result: BatchResult | None) -> None:
        """The fenced batch went through: its posted lease record is ours now."""
        for rec in result.posts if result else ():
            if rec.type == "TXT" and rec.name == self.name:
                self._record_id, self._expires = rec.id, _parse(rec)[1]

    def lost(self) -> None:
        """A fenced batch failed: the lease may have moved. Look again next cycle."""
        self._record_id, self._next_look = None, float("-inf")

    def release(self) -> None:
        if self._record_id is None:
            return
        with contextlib.suppress(CloudflareApiError):  # if this fails, it expires on its own
            self.api.batch_dns(self.zone_id, deletes=[self._record_id])
        self._record_id = None

    # -- internals ---------------------------------------------------------------------------

    def _holding(self, now: float) -> bool:
        # Stop writing a little before expiry: another host's clock may run ahead of ours.
        return self._record_id is not None and now < self._expires - self.skew

    def _record(self, now: float) -> dict[str, Any]:
        return {"type": "TXT", "name": self.name, "ttl": 60,
                "content": f'"{self.service} holder={self.holder} expires={int(now + self.ttl)}"',
                "comment": f"{self.service.replace('-', ' ')} single-writer lease; expires by itself; safe to delete "
                           "when none runs"}

    def _write(self, records: list[DnsRecord], now: float) -> None:
        try:
            done = self.api.batch_dns(self.zone_id, deletes=[r.id for r in records], posts=[self._record(now)])
        except CloudflareRejected as err:
            if not replaced(err):
                raise  # refused for another reason: an error to see, not a lost race
            self.lost()  # someone replaced a record we read: they won this round
            return
        self.confirm(done)
        if not records:
            self._settle_creation_race()

    def _settle_creation_race(self) -> None:
        records = self.api.list_dns_records(self.zone_id, name=self.name, type="TXT")
        winner = _canonical(records)
        if winner is not None and winner.id != self._record_id:
            own = self._record_id
            self._record_id = None
            self._observe(*_parse(winner), self.wall())
            # If this fails, the stray younger record is ignored by everyone and deleted by the next write.
            with contextlib.suppress(CloudflareApiError):
                self.api.batch_dns(self.zone_id, deletes=[own])

    def _observe(self, holder: str, expires: float, now: float) -> None:
        self._record_id, self._other, self._expires = None, holder, expires
        self._next_look = min(expires + self.skew, now + self.ttl / 4)


def replaced(err: CloudflareRejected) -> bool:
    """Whether a refused batch failed its compare-and-swap: a record it deletes is gone (another
    watchdog replaced the lease). Any other refusal (a 400 for a bad body, say) is not a lost lease."""
    return err.status == 404 or RECORD_MISSING_CODE in err.codes


def _parse(record: DnsRecord) -> tuple[str, float]:
    """(holder, expiry); an unreadable lease counts as expired, so it cannot block forever."""
    match = _CONTENT.search(record.content)
    return (match["holder"], float(match["expires"])) if match else ("?", 0.0)


def _canonical(records: list[DnsRecord]) -> DnsRecord | None:
    if not records:
        return None
    return min(records, key=lambda r: (r.created_on.timestamp() if r.created_on else 0.0, r.id))
