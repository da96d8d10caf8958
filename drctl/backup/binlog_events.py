"""Reading a MariaDB or MySQL 8 binary log as raw bytes: where its events start and end, which
transactions (GTIDs) and which moments it holds, and where it may be cut without splitting a
transaction.

The archiver ships a growing binlog file in pieces; a piece must end on a transaction boundary so
that "the newest archived transaction" means a whole one, and so the manifest can say which GTIDs
and which times each piece holds without running mariadb-binlog/mysqlbinlog over it. Only event
headers, GTID events and the text of QUERY events are read. Both servers write the v4 format
(a 19-byte header: timestamp, type, server id, length, next position, flags) but name transactions
differently:

- MariaDB (`scan`): GTID_EVENT (162) `domain-server-seq`; a position is the last GTID per domain
  (`GtidPos`). Format: MariaDB's "Binary log event formats" in the server docs.
- MySQL 8 (`scan(..., flavour=Flavour.MYSQL)`): GTID_LOG_EVENT (33) `server_uuid:gno` with the
  commit timestamps in microseconds; a position is a GTID set (`MysqlGtidPos`, the arithmetic of
  drctl/mysql/gtid.py). Transactions end with XID (16), a QUERY "COMMIT"/"ROLLBACK", XA_PREPARE
  (38), or are one QUERY (DDL); with binlog_transaction_compression a whole transaction is one
  TRANSACTION_PAYLOAD (40) after its GTID event. Each event's CRC32 is checked when the file's
  FORMAT_DESCRIPTION_EVENT says the binlog is checksummed. Format: MySQL's source documentation,
  "Binary log events" (libbinlogevents: control_events.h, statement_events.h).
"""

from __future__ import annotations

import enum
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from drctl.mysql.dialect import Dialect
from drctl.mysql.gtid import GtidSet

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

    def holds_all(self, other: GtidPos) -> bool:
        """Whether a server at this position has every transaction a server at `other` has: per
        domain, the sequence number reached here is at least `other`'s."""
        return all(self.includes(g) for g in other.last.values())

    def next_missing(self, gtid: Gtid) -> bool:
        """Whether `gtid` is the very next transaction of its domain: no gap between here and it."""
        mine = self.last.get(gtid.domain)
        return mine is None or gtid.seq == mine.seq + 1


@dataclass(frozen=True)
class Transaction:
    gtid: Gtid
    timestamp: int  # the binlog's own clock: whole seconds, UTC
    end: int  # offset just past its last event
    start: int = -1  # offset of its GTID event (MySQL scans; where a restore may cut before it)
    commit_us: int | None = None  # MySQL: original_commit_timestamp, microseconds since the epoch, UTC


@dataclass
class Scan:
    """What a scan of complete events found. `safe_end` is the offset after the last complete
    transaction (or of the header events before the first one): a piece may end there."""

    safe_end: int
    transactions: list[Transaction]
    checksums: bool | None = None  # MySQL: whether events end in a CRC32 (None: no FORMAT_DESCRIPTION seen)
    anonymous: int = 0  # MySQL: transactions without a GTID (gtid_mode OFF), which an archive cannot place


def scan(data: bytes, *, file_start: bool = True, flavour: Flavour | None = None,
         checksums: bool | None = None) -> Scan:
    """Scan the events of `data`: a file from its beginning (its magic number first) or, with
    `file_start=False`, bytes that start where an event starts. Offsets are into `data`. An event
    cut short at the end is left for the next scan. `flavour` MYSQL reads a MySQL 8 binlog
    (`checksums`: whether its events carry a CRC32, as a scan from the file start found it)."""
    if flavour is Flavour.MYSQL:
        return scan_mysql(data, file_start=file_start, checksums=checksums)
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


# --- MySQL 8 ---------------------------------------------------------------------------------------

class Flavour(enum.Enum):
    """Whose binary log an archive holds: it decides the GTID form, the scan and the tools."""

    MARIADB = "mariadb"
    MYSQL = "mysql"

    @classmethod
    def of(cls, dialect: Dialect) -> Flavour:
        return cls.MARIADB if dialect.is_mariadb else cls.MYSQL

    @classmethod
    def parse(cls, text: str | None) -> Flavour:
        """A manifest's "flavour" (absent in manifests written before MySQL was archived: MariaDB)."""
        return cls(text or cls.MARIADB.value)


FORMAT_DESCRIPTION_EVENT, XA_PREPARE_LOG_EVENT = 15, 38
GTID_LOG_EVENT, ANONYMOUS_GTID_LOG_EVENT, PREVIOUS_GTIDS_LOG_EVENT = 33, 34, 35
TRANSACTION_PAYLOAD_EVENT, GTID_TAGGED_LOG_EVENT = 40, 42
LOG_EVENT_BINLOG_IN_USE_F = 0x1  # set in the open file's FORMAT_DESCRIPTION, left out of its checksum
CHECKSUM_CRC32 = 1
QUERY_POST_HEADER = struct.Struct("<IIBHH")  # thread id, exec time, db length, error code, status vars length
MYSQL_GTID_HEAD = struct.Struct("<B16sqB")  # flags, server uuid, gno, logical-timestamp type code
_COMMIT_TS_FOLLOWS = 1 << 55  # high bit of the 7-byte immediate commit timestamp: the original one follows


@dataclass(frozen=True)
class MysqlGtid:
    """A MySQL transaction `server_uuid:gno`. `domain` and `seq` mirror MariaDB's Gtid: numbers grow
    per server uuid, which is what the seam and "next of its domain" checks compare."""

    uuid: str
    gno: int

    @property
    def domain(self) -> str:
        return self.uuid

    @property
    def seq(self) -> int:
        return self.gno

    def __str__(self) -> str:
        return f"{self.uuid}:{self.gno}"

    @classmethod
    def parse(cls, text: str) -> MysqlGtid:
        uuid, _, gno = text.strip().rpartition(":")
        try:
            single = GtidSet.parse(text)
        except ValueError:
            single = None
        if single is None or len(single) != 1 or not gno.isdigit() or any(tag for _, tag in single.intervals):
            raise ValueError(f"not a MySQL GTID (server_uuid:number): {text!r}")
        return cls(uuid.lower(), int(gno))


@dataclass(frozen=True)
class MysqlGtidPos:
    """A MySQL GTID set (what a server has executed, `uuid:1-100:105,...`) with the interface of
    MariaDB's GtidPos: `after(g)` is the position after transaction g, i.e. with every transaction
    of g's server up to g (as MariaDB's position after g has its whole domain up to g; a hole below
    the highest number held stays a hole unless g fills it), `includes` is set membership, `last`
    the highest transaction per server uuid."""

    executed: GtidSet = field(default_factory=GtidSet)

    @classmethod
    def parse(cls, text: str | None) -> MysqlGtidPos:
        return cls(GtidSet.parse(text))

    def __str__(self) -> str:
        return str(self.executed)

    def __bool__(self) -> bool:
        return bool(self.executed)

    @property
    def last(self) -> Mapping[str, MysqlGtid]:
        return {uuid: MysqlGtid(uuid, spans[-1][1]) for (uuid, tag), spans in self.executed.intervals.items()
                if not tag}

    def after(self, gtid: MysqlGtid) -> MysqlGtidPos:
        spans = self.executed.intervals.get((gtid.uuid, ""))
        highest = spans[-1][1] if spans else 0
        added = (highest + 1, gtid.gno) if gtid.gno > highest else (gtid.gno, gtid.gno)
        return MysqlGtidPos(self.executed | GtidSet({(gtid.uuid, ""): (added,)}))

    def includes(self, gtid: MysqlGtid) -> bool:
        return any(a <= gtid.gno <= b for a, b in self.executed.intervals.get((gtid.uuid, ""), ()))

    def next_missing(self, gtid: MysqlGtid) -> bool:
        """Whether nothing of `gtid`'s server lies between this set and it: it is the next number after
        the highest one held (or fills an older hole), or the first of a server not seen yet."""
        spans = self.executed.intervals.get((gtid.uuid, ""))
        return gtid.gno <= (spans[-1][1] if spans else 0) + 1

    def holds_all(self, other: MysqlGtidPos) -> bool:
        """GTID-set containment: every transaction of `other` is in this set (a hole here that
        `other` has filled is a transaction missing, whatever the highest numbers say)."""
        return other.executed.issubset(self.executed)

    def union(self, other: MysqlGtidPos) -> MysqlGtidPos:
        return MysqlGtidPos(self.executed | other.executed)


def parse_position(flavour: Flavour, text: str | None) -> GtidPos | MysqlGtidPos:
    return MysqlGtidPos.parse(text) if flavour is Flavour.MYSQL else GtidPos.parse(text)


def parse_gtid(flavour: Flavour, text: str) -> Gtid | MysqlGtid:
    return MysqlGtid.parse(text) if flavour is Flavour.MYSQL else Gtid.parse(text)


def parse_any_gtid(text: str) -> Gtid | MysqlGtid:
    """A GTID as an operator types it: MariaDB's `0-1-48211` or MySQL's `uuid:48211`."""
    try:
        return Gtid.parse(text)
    except ValueError:
        pass
    try:
        return MysqlGtid.parse(text)
    except ValueError:
        raise ValueError(f"not a GTID: {text!r} (allowed: MariaDB domain-server-sequence such as 0-1-48211, or "
                         "MySQL server_uuid:number such as 3e11fa47-71ca-11e1-9e33-c80aa9429562:48211)") from None


def flavour_of_gtid(gtid: Gtid | MysqlGtid) -> Flavour:
    return Flavour.MYSQL if isinstance(gtid, MysqlGtid) else Flavour.MARIADB


def scan_mysql(data: bytes, *, file_start: bool = True, checksums: bool | None = None) -> Scan:
    """`scan` for a MySQL 8 binlog. From the file start the FORMAT_DESCRIPTION_EVENT tells whether
    events carry a CRC32 (the result's `checksums`: pass it to the scans of later bytes); each one is
    then checked, and a mismatch is refused naming the offset."""
    pos = 0
    if file_start:
        if len(data) < len(MAGIC):
            return Scan(0, [], checksums)
        if data[:4] != MAGIC:
            raise BinlogFormatError("no binlog magic number at the start")
        pos = len(MAGIC)
    safe_end = pos
    found: list[Transaction] = []
    anonymous = 0
    open_gtid: MysqlGtid | None = None
    open_start, open_ts, open_commit, open_anonymous = 0, 0, None, False
    in_group = False  # after a QUERY "BEGIN": ends at XID / COMMIT / ROLLBACK / XA_PREPARE
    while pos + HEADER.size <= len(data):
        timestamp, kind, _server, length, _next, flags = HEADER.unpack_from(data, pos)
        if length < HEADER.size:
            raise BinlogFormatError(f"event at offset {pos} claims {length} bytes")
        end = pos + length
        if end > len(data):
            break
        event = data[pos:end]
        if kind == FORMAT_DESCRIPTION_EVENT:
            checksums = _format_checksums(event, pos)
        if checksums:
            _check_crc(event, kind, flags, pos)
        body = event[HEADER.size:len(event) - (4 if checksums else 0)]
        ends = False
        if kind == GTID_TAGGED_LOG_EVENT:
            raise BinlogFormatError(f"event at offset {pos} is a tagged GTID (MySQL 8.3+ GTID_TAGGED_LOG_EVENT, "
                                    "SET gtid_next='AUTOMATIC:<tag>'): the archive reads untagged GTIDs only")
        if kind in (GTID_LOG_EVENT, ANONYMOUS_GTID_LOG_EVENT):
            if len(body) < MYSQL_GTID_HEAD.size:
                raise BinlogFormatError(f"GTID event at offset {pos} is {len(body)} bytes")
            _flags, sid, gno, _lt = MYSQL_GTID_HEAD.unpack_from(body)
            open_anonymous = kind == ANONYMOUS_GTID_LOG_EVENT
            open_gtid = None if open_anonymous else MysqlGtid(_uuid_text(sid), gno)
            open_start, open_ts, open_commit, in_group = pos, timestamp, _original_commit_us(body), False
        elif open_gtid is not None or open_anonymous:
            if kind == QUERY_EVENT:
                text = _query_text(body, pos)
                if text == b"BEGIN" or text.startswith(b"XA START"):
                    in_group = True
                else:
                    # DDL is a transaction of one statement; a group of non-transactional changes ends in COMMIT.
                    ends = not in_group or text in (b"COMMIT", b"ROLLBACK")
            elif kind in (XID_EVENT, XA_PREPARE_LOG_EVENT):
                ends = True
            elif kind == TRANSACTION_PAYLOAD_EVENT:
                ends = True  # binlog_transaction_compression: the whole transaction, compressed, in this event
        if ends:
            if open_anonymous:
                anonymous += 1
            else:
                commit_us = open_commit
                seconds = commit_us // 1_000_000 if commit_us else open_ts
                found.append(Transaction(open_gtid, seconds, end, open_start, commit_us))
            open_gtid, open_anonymous = None, False
        if open_gtid is None and not open_anonymous:
            safe_end = end
        pos = end
    return Scan(safe_end, found, checksums, anonymous)


def _format_checksums(event: bytes, pos: int) -> bool:
    # binlog version (2), server version (50), create time (4), header length (1), one post-header
    # length per event type, then (MySQL 5.6.1+) the checksum algorithm (1) and the CRC32 (4).
    if len(event) < HEADER.size + 57 + 5:
        raise BinlogFormatError(f"FORMAT_DESCRIPTION_EVENT at offset {pos} is too short ({len(event)} bytes)")
    version = event[HEADER.size + 2:HEADER.size + 52].split(b"\0", 1)[0].decode(errors="replace")
    if "mariadb" in version.lower():
        raise BinlogFormatError(f"the binlog was written by MariaDB {version}, not MySQL")
    return event[-5] == CHECKSUM_CRC32


def _check_crc(event: bytes, kind: int, flags: int, pos: int) -> None:
    covered = event[:-4]
    if kind == FORMAT_DESCRIPTION_EVENT and flags & LOG_EVENT_BINLOG_IN_USE_F:
        # The server sets "in use" in the file after checksumming the event, and clears it on close.
        covered = covered[:17] + struct.pack("<H", flags & ~LOG_EVENT_BINLOG_IN_USE_F) + covered[19:]
    if zlib.crc32(covered) != struct.unpack("<I", event[-4:])[0]:
        raise BinlogFormatError(f"event at offset {pos} (type {kind}, {len(event)} bytes) fails its CRC32 checksum")


def _uuid_text(sid: bytes) -> str:
    h = sid.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _original_commit_us(body: bytes) -> int | None:
    # After the 42 bytes of flags, uuid, gno and logical timestamps (MySQL 5.7+): the immediate commit
    # timestamp in 7 bytes (MySQL 8.0.1+), its top bit saying the original one follows in 7 more;
    # without it the transaction was committed here first and both are the same.
    at = MYSQL_GTID_HEAD.size + 16
    if len(body) < at + 7:
        return None
    immediate = int.from_bytes(body[at:at + 7], "little")
    if immediate & _COMMIT_TS_FOLLOWS and len(body) >= at + 14:
        return int.from_bytes(body[at + 7:at + 14], "little")
    return immediate & ~_COMMIT_TS_FOLLOWS


def _query_text(body: bytes, pos: int) -> bytes:
    if len(body) < QUERY_POST_HEADER.size:
        raise BinlogFormatError(f"QUERY event at offset {pos} is {len(body)} bytes")
    _thread, _exec, db_len, _error, status_len = QUERY_POST_HEADER.unpack_from(body)
    return body[QUERY_POST_HEADER.size + status_len + db_len + 1:].strip()
