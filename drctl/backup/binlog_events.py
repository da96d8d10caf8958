"""Reading a MariaDB binary log as raw bytes: where its events start and end, which transactions
(GTIDs) and which moments it holds, and where it may be cut without splitting a transaction.

The archiver ships a growing binlog file in pieces; a piece must end on a transaction boundary so
that "the newest archived transaction" means a whole one, and so the manifest can say which GTIDs
and which times each piece holds without running mariadb-binlog over it. Only the event header and
the GTID event's body are read (format: MariaDB's "Binary log event formats" in the server docs).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

MAGIC = b"\xfebin"
HEADER = struct.Struct("<IBIIIH")  # timestamp, type, server_id, event_length, next_position, flags
QUERY_EVENT, XID_EVENT, GTID_EVENT = 2, 16, 162
GTID_BODY = struct.Struct("<QIB")  # seq_no, domain_id, flags
FL_STANDALONE = 1  # a GTID event that opens no BEGIN ... COMMIT group: the next query is the whole transaction


class BinlogFormatError(Exception):
    """The bytes are not a MariaDB binary log."""


@dataclass(frozen=True)
class Gtid:
    domain: int
    server: int
    seq: int

    def __str__(self) -> str:
        return f"{self.domain}-{self.server}-{self.seq}"

    @classmethod
    def parse(cls, text: str) -> Gtid:
        parts = text.strip().split("-")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise ValueError(f"not a MariaDB GTID (domain-server-sequence): {text!r}")
        return cls(*(int(p) for p in parts))


@dataclass(frozen=True)
class GtidPos:
    """A MariaDB GTID position: the last transaction per replication domain."""

    last: Mapping[int, Gtid] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> GtidPos:
        found: dict[int, Gtid] = {}
        for member in (text or "").split(","):
            if member.strip():
                gtid = Gtid.parse(member)
                found[gtid.domain] = gtid
        return cls(found)

    def __str__(self) -> str:
        return ",".join(str(self.last[d]) for d in sorted(self.last))

    def after(self, gtid: Gtid) -> GtidPos:
        return GtidPos({**self.last, gtid.domain: gtid})

    def includes(self, gtid: Gtid) -> bool:
        """Whether a server at this position has applied `gtid` (strict mode: sequence numbers grow
        in each domain, whichever server wrote them)."""
        mine = self.last.get(gtid.domain)
        return mine is not None and mine.seq >= gtid.seq

    def next_missing(self, gtid: Gtid) -> bool:
        """Whether `gtid` is the very next transaction of its domain: no gap between here and it."""
        mine = self.last.get(gtid.domain)
        return mine is None or gtid.seq == mine.seq + 1


@dataclass(frozen=True)
class Transaction:
    gtid: Gtid
    timestamp: int  # the binlog's own clock: whole seconds, UTC
    end: int  # offset just past its last event


@dataclass
class Scan:
    """What a scan of complete events found. `safe_end` is the offset after the last complete
    transaction (or of the header events before the first one): a piece may end there."""

    safe_end: int
    transactions: list[Transaction]


def scan(data: bytes, *, file_start: bool = True) -> Scan:
    """Scan the events of `data`: a file from its beginning (its magic number first) or, with
    `file_start=False`, bytes that start where an event starts. Offsets are into `data`. An event
    cut short at the end is left for the next scan."""
    pos = 0
    if file_start:
        if len(data) < len(MAGIC):
            return Scan(0, [])
        if data[:4] != MAGIC:
            raise BinlogFormatError("no binlog magic number at the start")
        pos = len(MAGIC)
    safe_end, open_gtid, open_ts, standalone = pos, None, 0, False
    found: list[Transaction] = []
    while pos + HEADER.size <= len(data):
        timestamp, kind, _server, length, _next, _flags = HEADER.unpack_from(data, pos)
        if length < HEADER.size:
            raise BinlogFormatError(f"event at offset {pos} claims {length} bytes")
        end = pos + length
        if end > len(data):
            break
        if kind == GTID_EVENT:
            seq, domain, gflags = GTID_BODY.unpack_from(data, pos + HEADER.size)
            open_gtid, open_ts = Gtid(domain, _server, seq), timestamp
            standalone = bool(gflags & FL_STANDALONE)
        elif open_gtid is not None and (kind == XID_EVENT or (kind == QUERY_EVENT and (standalone or _is_commit(data[pos:end])))):
            found.append(Transaction(open_gtid, open_ts, end))
            open_gtid = None
        if open_gtid is None:
            safe_end = end
        pos = end
    return Scan(safe_end, found)


def _is_commit(event: bytes) -> bool:
    # A non-transactional group ends with a QUERY_EVENT "COMMIT" (then a 4-byte CRC32, when on).
    return event.endswith(b"COMMIT") or event[:-4].endswith(b"COMMIT")
