"""Reading MySQL 8 binlogs: real files written by MySQL 8.0.28 and 8.0.32 (fixtures/README.md says
where they come from), scanned whole, in pieces as the archiver reads a growing file, and damaged."""

from __future__ import annotations

import struct
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drctl.backup.binlog_events import (
    BinlogFormatError,
    Flavour,
    Gtid,
    MysqlGtid,
    MysqlGtidPos,
    parse_any_gtid,
    scan,
    scan_mysql,
)

FIXTURES = Path(__file__).parent / "fixtures"
GTID_FILE = (FIXTURES / "mysql80-gtid.000001").read_bytes()
COMPRESSED_FILE = (FIXTURES / "mysql80-compressed.000001").read_bytes()
SERVER = "93e95066-a2f4-11ec-9b69-9657f0ae95e2"
# The original commit timestamps the GTID events carry (microseconds, UTC).
COMMITS = [1647193191638429, 1647193214193800, 1647193281668333, 1647193297443211, 1647193306035880]
# Where each transaction starts (its GTID event) and ends, as the event headers say.
BOUNDS = [(157, 493), (493, 791), (791, 1560), (1560, 2659), (2659, 3331)]


def utc(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat()


def test_a_mysql_80_binlog_holds_five_gtid_transactions_with_their_commit_times():
    found = scan(GTID_FILE, flavour=Flavour.MYSQL)
    assert [str(t.gtid) for t in found.transactions] == [f"{SERVER}:{n}" for n in range(1, 6)]
    assert [t.commit_us for t in found.transactions] == COMMITS
    assert [t.timestamp for t in found.transactions] == [us // 1_000_000 for us in COMMITS]
    assert utc(COMMITS[0]) == "2022-03-13T17:39:51.638429+00:00"
    assert [(t.start, t.end) for t in found.transactions] == BOUNDS
    assert found.safe_end == len(GTID_FILE) == 3331
    assert found.checksums is True and found.anonymous == 0


def test_ddl_is_a_transaction_of_one_query_and_row_changes_end_at_their_xid():
    found = scan_mysql(GTID_FILE)
    # 1 and 2 are CREATE statements (GTID + QUERY); 3 to 5 are BEGIN, TABLE_MAP, rows, XID.
    assert [t.end - t.start for t in found.transactions] == [336, 298, 769, 1099, 672]
    xid_at = BOUNDS[2][1] - 31  # the XID event of transaction 3: 31 bytes with its CRC32
    assert GTID_FILE[xid_at + 4] == 16


def test_a_growing_file_scanned_in_pieces_gives_the_same_transactions_and_cuts_only_between_them():
    found, offset, checksums = [], 0, None
    for size in (100, 1000, 1600, 2000, 3331):  # what the reader has written so far
        data = GTID_FILE[offset:size]
        part = scan(data, file_start=offset == 0, flavour=Flavour.MYSQL, checksums=checksums)
        checksums = part.checksums if part.checksums is not None else checksums
        found += part.transactions
        offset += part.safe_end
        assert offset in {4, 157} | {end for _, end in BOUNDS}, offset  # the magic, the headers, or a transaction end
    assert [t.gtid.gno for t in found] == [1, 2, 3, 4, 5]
    assert offset == len(GTID_FILE)


def test_a_piece_that_stops_inside_a_transaction_ends_before_it():
    part = scan_mysql(GTID_FILE[:2000])  # transaction 4 runs from 1560 to 2659
    assert [t.gtid.gno for t in part.transactions] == [1, 2, 3]
    assert part.safe_end == 1560


def test_a_flipped_byte_fails_the_events_crc32_naming_its_offset():
    damaged = bytearray(GTID_FILE)
    damaged[1100] ^= 0x01  # inside the WRITE_ROWS event of transaction 3 (1077..1529)
    with pytest.raises(BinlogFormatError, match=r"event at offset 1077 .* fails its CRC32 checksum"):
        scan_mysql(bytes(damaged))


def test_the_open_files_format_description_is_checked_without_its_in_use_flag():
    assert struct.unpack_from("<H", GTID_FILE, 4 + 17)[0] & 1  # LOG_EVENT_BINLOG_IN_USE_F is set in this file
    assert scan_mysql(GTID_FILE[:157]).safe_end == 157  # FORMAT_DESCRIPTION and PREVIOUS_GTIDS pass their CRC


def test_a_compressed_transaction_is_one_payload_event_after_its_gtid_event():
    found = scan_mysql(COMPRESSED_FILE)
    # ANONYMOUS_GTID at 197, TRANSACTION_PAYLOAD 274..431, then STOP: a whole transaction, without a GTID.
    assert found.anonymous == 1 and found.transactions == []
    assert found.safe_end == len(COMPRESSED_FILE) == 475
    cut = scan_mysql(COMPRESSED_FILE[:400])  # the payload not complete yet
    assert cut.safe_end == 197 and cut.anonymous == 0


def test_a_mariadb_binlog_is_not_read_as_a_mysql_one():
    fde = bytearray(GTID_FILE[4:126])
    fde[19 + 2:19 + 52] = b"10.11.6-MariaDB-0+deb12u1-log".ljust(50, b"\0")
    with pytest.raises(BinlogFormatError, match=r"written by MariaDB 10\.11\.6"):
        scan_mysql(GTID_FILE[:4] + bytes(fde))


def test_a_tagged_gtid_is_refused_by_name():
    event = struct.pack("<IBIIIH", 1770368687, 42, 1, 19 + 8, 0, 0) + bytes(8)
    with pytest.raises(BinlogFormatError, match="tagged GTID"):
        scan_mysql(event, file_start=False, checksums=False)


def test_mysql_positions_are_gtid_sets_with_the_next_transaction_per_server():
    pos = MysqlGtidPos.parse(f"{SERVER}:1-3,3e11fa47-71ca-11e1-9e33-c80aa9429562:1-7:9")
    assert pos.includes(MysqlGtid(SERVER, 2)) and not pos.includes(MysqlGtid(SERVER, 4))
    assert pos.next_missing(MysqlGtid(SERVER, 4)) and not pos.next_missing(MysqlGtid(SERVER, 5))
    assert pos.next_missing(MysqlGtid("3e11fa47-71ca-11e1-9e33-c80aa9429562", 8))  # fills a hole
    assert pos.next_missing(MysqlGtid("00000000-0000-0000-0000-000000000001", 1))  # a new primary's first
    assert not pos.next_missing(MysqlGtid("00000000-0000-0000-0000-000000000001", 2))
    assert pos.last[SERVER] == MysqlGtid(SERVER, 3)
    assert str(pos.after(MysqlGtid(SERVER, 4))) == f"3e11fa47-71ca-11e1-9e33-c80aa9429562:1-7:9,{SERVER}:1-4"
    # The position after a transaction has its server's earlier ones, as MariaDB's has its domain's ...
    assert str(MysqlGtidPos().after(MysqlGtid(SERVER, 3))) == f"{SERVER}:1-3"
    # ... but an older hole stays one until its own transaction comes.
    other = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
    assert str(pos.after(MysqlGtid(other, 10))).startswith(f"{other}:1-7:9-10,")
    assert str(pos.after(MysqlGtid(other, 8))).startswith(f"{other}:1-9,")
    assert str(MysqlGtidPos.parse(str(pos))) == str(pos)


def test_an_operators_gtid_is_read_as_mariadbs_or_mysqls():
    assert parse_any_gtid("0-1-48211") == Gtid(0, 1, 48211)
    assert parse_any_gtid(f"{SERVER.upper()}:48211") == MysqlGtid(SERVER, 48211)
    for bad in ("0-1", f"{SERVER}:1-5", "93e95066:5", f"{SERVER}:tag:5"):
        with pytest.raises(ValueError, match="not a GTID"):
            parse_any_gtid(bad)


def replicated(event: bytes, original_us: int) -> bytes:
    """This GTID event as a replica with log_replica_updates writes it: the immediate commit time
    with its top bit set, then the original one (the source's), and a new length and CRC32."""
    body = bytearray(event[19:-4])
    immediate = int.from_bytes(body[42:49], "little") + 5_000_000  # applied 5 s after the source committed
    body[42:49] = (immediate | 1 << 55).to_bytes(7, "little")
    body[49:49] = original_us.to_bytes(7, "little")
    header = bytearray(event[:19])
    struct.pack_into("<I", header, 9, 19 + len(body) + 4)
    data = bytes(header) + bytes(body)
    return data + struct.pack("<I", zlib.crc32(data))


def test_a_transaction_replicated_before_a_promotion_keeps_the_time_it_committed_on_the_old_primary():
    start, end = 157, 236  # the GTID event of transaction 1
    event = replicated(GTID_FILE[start:end], COMMITS[0])
    data = GTID_FILE[:start] + event + GTID_FILE[end:BOUNDS[0][1]]
    (t,) = scan_mysql(data).transactions
    assert t.gtid == MysqlGtid(SERVER, 1)
    assert t.commit_us == COMMITS[0] and t.timestamp == COMMITS[0] // 1_000_000
    assert t.end == BOUNDS[0][1] + 7
