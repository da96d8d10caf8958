"""Where the guards tell each other what they see: one vote per guard, "lost" or not, with its time.

`CloudflareVotes` keeps them beside the lease, in the shop's own zone: one TXT record per guard
named `_drctl-guard-vote.<domain>`, content `"drctl-guard vote holder=<id> lost=<0|1> at=<unix>"`.
A guard replaces its own record (delete + create in one batch) when its vote changes and every
`refresh` seconds otherwise, so a vote's age says whether its guard is still alive; it reads the
others' on every cycle (one request). A guard that cannot reach Cloudflare cannot vote, and its last
vote ages out (`vote_ttl`): it is not counted, and it cannot act either (the lease is there too).

`FileVotes` is the same on one machine (the local rehearsal): one JSON file per guard in a directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from drctl.cloud.cloudflare import CloudflareApi
from drctl.guard.decision import Vote

VOTE_PREFIX = "_drctl-guard-vote"
_CONTENT = re.compile(r"holder=(?P<holder>\S+)\s+lost=(?P<lost>[01])\s+at=(?P<at>\d+)")


class VoteBoard(Protocol):
    holder: str

    def cast(self, lost: bool) -> None: ...  # publish this guard's vote (when due)
    def others(self) -> dict[str, Vote]: ...  # every other guard's latest vote


@dataclass
class CloudflareVotes:
    api: CloudflareApi
    zone_id: str
    domain: str
    holder: str
    refresh: float  # seconds between re-publications of an unchanged vote
    wall: Callable[[], float] = time.time
    _cast: tuple[bool, float] | None = field(default=None, init=False)  # (vote, when) last published

    @property
    def name(self) -> str:
        return f"{VOTE_PREFIX}.{self.domain}"

    def cast(self, lost: bool) -> None:
        now = self.wall()
        if self._cast is not None and self._cast[0] == lost and now - self._cast[1] < self.refresh:
            return
        records = self.api.list_dns_records(self.zone_id, name=self.name, type="TXT")
        mine = [r.id for r in records if _parse(r.content) and _parse(r.content)[0] == self.holder]
        self.api.batch_dns(self.zone_id, deletes=mine, posts=[{
            "type": "TXT", "name": self.name, "ttl": 60,
            "content": f'"drctl-guard vote holder={self.holder} lost={int(lost)} at={int(now)}"',
            "comment": "drctl guard: this guard's view of the primary; refreshed while it runs, safe to delete"}])
        self._cast = (lost, now)

    def others(self) -> dict[str, Vote]:
        records = self.api.list_dns_records(self.zone_id, name=self.name, type="TXT")
        votes: dict[str, Vote] = {}
        for record in records:
            parsed = _parse(record.content)
            if parsed and parsed[0] != self.holder:
                holder, vote = parsed
                if holder not in votes or vote.at > votes[holder].at:
                    votes[holder] = vote
        return votes


def _parse(content: str) -> tuple[str, Vote] | None:
    match = _CONTENT.search(content)
    if not match:
        return None  # unreadable: not a vote
    return match["holder"], Vote(lost=match["lost"] == "1", at=float(match["at"]))


@dataclass
class FileVotes:
    directory: Path
    holder: str
    wall: Callable[[], float] = time.time

    def cast(self, lost: bool) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{self.holder}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"holder": self.holder, "lost": lost, "at": self.wall()}))
        os.replace(tmp, path)  # atomic: a reader sees the old vote or the new one

    def others(self) -> dict[str, Vote]:
        votes = {}
        for path in sorted(self.directory.glob("*.json")):
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                doc = json.loads(path.read_text())
                if doc["holder"] != self.holder:
                    votes[doc["holder"]] = Vote(bool(doc["lost"]), float(doc["at"]))
        return votes

