"""GTID arithmetic: parsing, comparing and counting the transaction histories of MySQL and MariaDB.

MySQL names a transaction `server-uuid:n` and a server's history is a set of intervals per uuid
(`GtidSet`). MariaDB names it `domain-server-seq`; a server's position is its last GTID per domain
(`MariaDBGtidPos`), and its binary-log state the last one per domain and server (`MariaDBGtidState`),
which is what tells a diverged history from a shorter one (`mariadb_errant`).

Pure functions and values, no SQL: `replication` reads these texts from the servers. Shipped to the
database servers with it: standard library and `dialect` only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from drctl.mysql.dialect import Dialect

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_TAG = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,31}$")


@dataclass(frozen=True)
class GtidSet:
    """A MySQL GTID set such as '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7,
    ...:tag:1-3' as a normalised map {(uuid, tag): ((start, end), ...)} with merged, sorted,
    inclusive intervals. Tags (MySQL 8.3+) are kept; the untagged tag is ''."""

    intervals: Mapping[tuple[str, str], tuple[tuple[int, int], ...]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> GtidSet:
        found: dict[tuple[str, str], list[tuple[int, int]]] = {}
        for member in (text or "").replace("\n", "").split(","):
            member = member.strip()
            if not member:
                continue
            uuid, *parts = member.split(":")
            if not _UUID.match(uuid):
                raise ValueError(f"not a GTID set: {member!r} (bad server uuid)")
            tag = ""
            for part in parts:
                part = part.strip()
                if _TAG.match(part):
                    tag = part.lower()
                    continue
                start, dash, end = part.partition("-")
                end = end if dash else start
                if not (start.isdigit() and end.isdigit() and 0 < int(start) <= int(end)):
                    raise ValueError(f"not a GTID set: {member!r} (bad interval {part!r})")
                found.setdefault((uuid.lower(), tag), []).append((int(start), int(end)))
        return cls({key: _merge(spans) for key, spans in found.items() if spans})

    def __str__(self) -> str:
        by_uuid: dict[str, list[str]] = {}
        for (uuid, tag), spans in sorted(self.intervals.items()):
            text = ":".join(f"{a}-{b}" if a != b else str(a) for a, b in spans)
            by_uuid.setdefault(uuid, []).append(f"{tag}:{text}" if tag else text)
        return ",".join(f"{uuid}:{':'.join(parts)}" for uuid, parts in by_uuid.items())

    def __bool__(self) -> bool:
        return bool(self.intervals)

    def __len__(self) -> int:
        """How many transactions the set holds."""
        return sum(b - a + 1 for spans in self.intervals.values() for a, b in spans)

    def __or__(self, other: GtidSet) -> GtidSet:
        keys = set(self.intervals) | set(other.intervals)
        return GtidSet({k: _merge([*self.intervals.get(k, ()), *other.intervals.get(k, ())]) for k in keys})

    def __sub__(self, other: GtidSet) -> GtidSet:
        result = {}
        for key, spans in self.intervals.items():
            remaining = _subtract(spans, other.intervals.get(key, ()))
            if remaining:
                result[key] = remaining
        return GtidSet(result)

    def issubset(self, other: GtidSet) -> bool:
        return not (self - other)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GtidSet) and dict(self.intervals) == dict(other.intervals)

    def __hash__(self) -> int:
        return hash(str(self))


def _merge(spans: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return tuple(merged)


def _subtract(spans: Sequence[tuple[int, int]], minus: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    result = []
    for a, b in spans:
        pieces = [(a, b)]
        for c, d in minus:
            next_pieces = []
            for x, y in pieces:
                if d < x or c > y:
                    next_pieces.append((x, y))
                    continue
                if x < c:
                    next_pieces.append((x, c - 1))
                if d < y:
                    next_pieces.append((d + 1, y))
            pieces = next_pieces
        result.extend(pieces)
    return tuple(result)


def _mariadb_gtids(text: str | None, what: str) -> list[tuple[int, int, int]]:
    """The (domain, server_id, seq) members of a MariaDB GTID list such as '0-1-42,1-2-7'."""
    members = []
    for member in (text or "").replace("\n", "").split(","):
        member = member.strip()
        if not member:
            continue
        parts = member.split("-")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise ValueError(f"not a MariaDB GTID {what}: {member!r}")
        members.append(tuple(int(p) for p in parts))
    return members


@dataclass(frozen=True)
class MariaDBGtidPos:
    """A MariaDB GTID position such as '0-1-100,1-2-50': per replication domain, the last
    transaction (server id, sequence number). Sequence numbers grow within a domain, so 'has every
    transaction of' is a per-domain comparison of sequence numbers."""

    domains: Mapping[int, tuple[int, int]] = field(default_factory=dict)  # domain -> (server_id, seq)

    @classmethod
    def parse(cls, text: str | None) -> MariaDBGtidPos:
        found: dict[int, tuple[int, int]] = {}
        for domain, server, seq in _mariadb_gtids(text, "position"):
            if domain in found:
                raise ValueError(f"not a MariaDB GTID position: domain {domain} appears twice")
            found[domain] = (server, seq)
        return cls(found)

    def __str__(self) -> str:
        return ",".join(f"{d}-{s}-{n}" for d, (s, n) in sorted(self.domains.items()))

    def __bool__(self) -> bool:
        return bool(self.domains)

    def __sub__(self, other: MariaDBGtidPos) -> MariaDBGtidPos:
        """The part of this position `other` has not reached: for each domain where this one is
        further ahead, this one's last GTID there (count them with `transactions_beyond`)."""
        return MariaDBGtidPos({d: sn for d, sn in self.domains.items() if sn[1] > other.seq(d)})

    def seq(self, domain: int) -> int:
        return self.domains.get(domain, (0, 0))[1]

    def transactions_beyond(self, other: MariaDBGtidPos) -> int:
        """How many transactions this position has that `other` lacks, summed over domains."""
        return sum(max(0, sn[1] - other.seq(d)) for d, sn in self.domains.items())

    def issubset(self, other: MariaDBGtidPos) -> bool:
        return not (self - other)


Gtids = GtidSet | MariaDBGtidPos


def parse_gtids(dialect: Dialect, text: str | None) -> Gtids:
    return MariaDBGtidPos.parse(text) if dialect.is_mariadb else GtidSet.parse(text)


@dataclass(frozen=True)
class GtidComparison:
    """What a replica lacks of its source (`missing`, to apply before it may be promoted) and what it
    has that the source never had (`errant`, to reconcile before it may rejoin)."""

    missing: str
    missing_count: int
    errant: str
    errant_count: int

    @property
    def in_sync(self) -> bool:
        return not self.missing_count and not self.errant_count


def compare_gtids(source: Gtids, replica: Gtids) -> GtidComparison:
    if isinstance(source, GtidSet) and isinstance(replica, GtidSet):
        missing, errant = source - replica, replica - source
        return GtidComparison(str(missing), len(missing), str(errant), len(errant))
    if isinstance(source, MariaDBGtidPos) and isinstance(replica, MariaDBGtidPos):
        return GtidComparison(
            str(source - replica), source.transactions_beyond(replica),
            str(replica - source), replica.transactions_beyond(source),
        )
    raise TypeError("cannot compare GTIDs of two different dialects")


@dataclass(frozen=True)
class MariaDBGtidState:
    """MariaDB's @@gtid_binlog_state, such as '0-1-100,0-2-150': the last sequence number each server
    wrote per domain, as this server's binary log has it. Unlike a position it tells whose
    transactions a server holds, which is what errant detection needs: after a failover the old
    primary's GTIDs beyond the new primary's last GTID *of that server* are its own, never replicated."""

    last: Mapping[tuple[int, int], int] = field(default_factory=dict)  # (domain, server_id) -> seq

    @classmethod
    def parse(cls, text: str | None) -> MariaDBGtidState:
        found: dict[tuple[int, int], int] = {}
        for domain, server, seq in _mariadb_gtids(text, "state"):
            found[(domain, server)] = max(seq, found.get((domain, server), 0))
        return cls(found)

    def __str__(self) -> str:
        return ",".join(f"{d}-{s}-{n}" for (d, s), n in sorted(self.last.items()))

    def position(self) -> MariaDBGtidPos:
        """The position this state ends at: per domain, the GTID with the highest sequence number."""
        best: dict[int, tuple[int, int]] = {}
        for (d, s), n in self.last.items():
            if n > best.get(d, (0, 0))[1]:
                best[d] = (s, n)
        return MariaDBGtidPos(best)

    def without(self, errant: Iterable[GtidRange]) -> MariaDBGtidState:
        """This state from before the `errant` ranges (each the latest transactions of its server):
        that server's last GTID goes back to just before its range, or the server goes when its range
        starts at 1."""
        last = dict(self.last)
        for span in errant:
            if span.first > 1:
                last[(span.domain, span.server_id)] = span.first - 1
            else:
                last.pop((span.domain, span.server_id), None)
        return MariaDBGtidState(last)

    def until(self, position: MariaDBGtidPos) -> MariaDBGtidState:
        """This state cut at `position`: each server's last GTID where it is not beyond the position in
        its domain, and the position's own GTIDs. What a copy made at `position` should remember."""
        last = {pair: n for pair, n in self.last.items() if n <= position.seq(pair[0])}
        last.update({(d, s): n for d, (s, n) in position.domains.items()})
        return MariaDBGtidState(last)


@dataclass(frozen=True)
class GtidRange:
    """MariaDB transactions `domain-server-first` to `domain-server-last`, as far as sequence numbers
    tell (after a fork, a server's own transactions are consecutive)."""

    domain: int
    server_id: int
    first: int
    last: int
    exact: bool = True  # False: some of first..last are errant, at least one (see mariadb_errant)

    def __str__(self) -> str:
        head = f"{self.domain}-{self.server_id}-{self.first}"
        return head if self.first == self.last else f"{head}..{self.domain}-{self.server_id}-{self.last}"

    def __len__(self) -> int:
        return self.last - self.first + 1 if self.exact else 1

    def __contains__(self, gtid: tuple[int, int, int]) -> bool:
        d, s, n = gtid
        return d == self.domain and s == self.server_id and self.first <= n <= self.last


def parse_ranges(text: str) -> list[GtidRange]:
    """Ranges written as `GtidRange` prints them, comma-separated ('0-3-5..0-3-9,0-1-7'): how errant
    MariaDB transactions travel in reports and the journal. Whether a range was exact is not written,
    so every range read back is."""
    ranges = []
    for part in filter(None, text.split(",")):
        first, _, last = part.partition("..")
        domain, server_id, start = (int(x) for x in first.split("-"))
        end = int(last.split("-")[2]) if last else start
        ranges.append(GtidRange(domain, server_id, start, end))
    return ranges


def mariadb_errant(source_state: MariaDBGtidState, replica_state: MariaDBGtidState,
                   replica_server_id: int | None = None) -> list[GtidRange]:
    """The replica's transactions its source never had. Per (domain, server): the replica's GTIDs
    beyond the source's last one of that server. When the source has none of that server's:
    - the replica's own server id: everything it wrote itself is errant (a write on a replica);
      where it starts is unknown without reading the binary log, so the range starts at 1 and
      counts as one transaction (at least);
    - another server: errant only beyond the source's position in the domain, so a source whose
      binary log was reset (a reseed) does not make every older GTID look errant."""
    source_pos = source_state.position()
    found = []
    for (d, s), n in sorted(replica_state.last.items()):
        known = source_state.last.get((d, s))
        if known is not None:
            if n > known:
                found.append(GtidRange(d, s, known + 1, n))
        elif s == replica_server_id:
            found.append(GtidRange(d, s, 1, n, exact=False))
        elif n > source_pos.seq(d):
            found.append(GtidRange(d, s, source_pos.seq(d) + 1, n))
    return found


def compare_histories(dialect: Dialect, source_executed: str, replica_executed: str,
                      source_binlog_state: str = "", replica_binlog_state: str = "",
                      replica_server_id: int | None = None) -> GtidComparison:
    """What a replica misses of its source and what it has that the source never had. MySQL: set
    arithmetic on gtid_executed. MariaDB: missing from the positions (gtid_current_pos), errant
    from the binary-log states (a position alone cannot tell a diverged history from a shorter one)."""
    source, replica = parse_gtids(dialect, source_executed), parse_gtids(dialect, replica_executed)
    if not dialect.is_mariadb:
        return compare_gtids(source, replica)
    assert isinstance(source, MariaDBGtidPos) and isinstance(replica, MariaDBGtidPos)
    errant = mariadb_errant(MariaDBGtidState.parse(source_binlog_state), MariaDBGtidState.parse(replica_binlog_state),
                            replica_server_id)
    return GtidComparison(
        str(source - replica), source.transactions_beyond(replica),
        ",".join(map(str, errant)), sum(len(e) for e in errant),
    )
