"""What the archive holds and how its objects are named.

    binlog/<session>/<piece>.seg    a sealed piece of one binlog file (bytes [offset, offset+size))
    binlog/<session>/<piece>.json   its manifest: file, offset, GTIDs and times, checksums
    base/<stamp>/dump.sql.seg       a sealed base backup (mariadb-dump, one consistent snapshot)
    base/<stamp>/manifest.json      its GTID position, snapshot time, checksums
    status.json                     the archiver's newest archived transaction, for `drctl status`

A session is one connection of the archiver to a primary (a new one after a restart, a lost
connection or a promotion); session names sort by their start time, pieces by number, so listing
the bucket gives the timeline in order. A piece's manifest is written after its data: a piece
without a manifest was never finished and is ignored.

Every manifest names its flavour ("mariadb" or "mysql"; absent in manifests written before MySQL
was archived, which are MariaDB's): MariaDB GTIDs are `domain-server-seq` keyed by domain, MySQL
ones `server_uuid:gno` keyed by server uuid, and a base's position is a MariaDB GTID position or a
MySQL GTID set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from drctl.backup.binlog_events import Flavour, Gtid, GtidPos, MysqlGtid, MysqlGtidPos, parse_gtid, parse_position
from drctl.cloud.archive_status import BASE_MANIFEST, BASE_PREFIX, BINLOG_PREFIX  # the layout, owned there


def stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Piece:
    session: str
    number: int
    source: str  # host:port of the primary it was read from
    file: str  # the binlog file name on that primary
    offset: int
    size: int
    first: dict[int, Gtid] | dict[str, MysqlGtid]  # per domain (MySQL: server uuid), first and last transaction
    last: dict[int, Gtid] | dict[str, MysqlGtid]
    first_time: int | None  # binlog timestamps (whole seconds, UTC)
    last_time: int | None
    transactions: int
    sha256_plain: str
    sha256_sealed: str
    archived_at: float
    flavour: Flavour = Flavour.MARIADB

    @property
    def name(self) -> str:
        return f"{BINLOG_PREFIX}{self.session}/{self.number:08d}.seg"

    @property
    def manifest_name(self) -> str:
        return f"{BINLOG_PREFIX}{self.session}/{self.number:08d}.json"

    def to_json(self) -> dict[str, Any]:
        return {
            "session": self.session, "number": self.number, "source": self.source, "file": self.file,
            "offset": self.offset, "size": self.size,
            "first": {str(d): str(g) for d, g in self.first.items()},
            "last": {str(d): str(g) for d, g in self.last.items()},
            "firstTime": self.first_time, "lastTime": self.last_time, "transactions": self.transactions,
            "sha256Plain": self.sha256_plain, "sha256Sealed": self.sha256_sealed, "archivedAt": self.archived_at,
            "flavour": self.flavour.value,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Piece:
        flavour = Flavour.parse(doc.get("flavour"))
        domain = str if flavour is Flavour.MYSQL else int
        return cls(
            session=doc["session"], number=int(doc["number"]), source=doc["source"], file=doc["file"],
            offset=int(doc["offset"]), size=int(doc["size"]),
            first={domain(d): parse_gtid(flavour, g) for d, g in doc["first"].items()},
            last={domain(d): parse_gtid(flavour, g) for d, g in doc["last"].items()},
            first_time=doc["firstTime"], last_time=doc["lastTime"], transactions=int(doc["transactions"]),
            sha256_plain=doc["sha256Plain"], sha256_sealed=doc["sha256Sealed"], archived_at=float(doc["archivedAt"]),
            flavour=flavour,
        )


@dataclass(frozen=True)
class BaseBackup:
    stamp: str
    gtid_pos: GtidPos | MysqlGtidPos
    # When the dump finished (UTC seconds): its snapshot is older, so a base with taken_at <= T holds
    # nothing committed after T.
    taken_at: float
    size: int
    sha256_plain: str
    sha256_sealed: str
    schemas: tuple[str, ...] = field(default=())
    flavour: Flavour = Flavour.MARIADB

    @property
    def name(self) -> str:
        return f"{BASE_PREFIX}{self.stamp}/dump.sql.seg"

    @property
    def manifest_name(self) -> str:
        return f"{BASE_PREFIX}{self.stamp}/{BASE_MANIFEST}"

    def to_json(self) -> dict[str, Any]:
        return {"stamp": self.stamp, "gtidPos": str(self.gtid_pos), "takenAt": self.taken_at, "size": self.size,
                "sha256Plain": self.sha256_plain, "sha256Sealed": self.sha256_sealed, "schemas": list(self.schemas),
                "flavour": self.flavour.value}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> BaseBackup:
        flavour = Flavour.parse(doc.get("flavour"))
        return cls(stamp=doc["stamp"], gtid_pos=parse_position(flavour, doc["gtidPos"]), taken_at=float(doc["takenAt"]),
                   size=int(doc["size"]), sha256_plain=doc["sha256Plain"], sha256_sealed=doc["sha256Sealed"],
                   schemas=tuple(doc.get("schemas", ())), flavour=flavour)


def load_pieces(bucket) -> list[Piece]:
    """Every finished piece, in timeline order (session, then number)."""
    names = [n for n in bucket.list(BINLOG_PREFIX) if n.endswith(".json")]
    return [Piece.from_json(bucket.get_json(n)) for n in names]


def load_bases(bucket) -> list[BaseBackup]:
    names = [n for n in bucket.list(BASE_PREFIX) if n.endswith(f"/{BASE_MANIFEST}")]
    return sorted((BaseBackup.from_json(bucket.get_json(n)) for n in names), key=lambda b: b.taken_at)
