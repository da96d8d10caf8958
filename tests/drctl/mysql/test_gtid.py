"""GTID arithmetic: what a replica is missing before promotion, what is errant before failback."""

import pytest

from drctl.mysql.dialect import Dialect
from drctl.mysql.gtid import (
    GtidComparison,
    GtidRange,
    GtidSet,
    MariaDBGtidPos,
    MariaDBGtidState,
    compare_gtids,
    compare_histories,
    mariadb_errant,
    parse_ranges,
)

A = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
B = "9a0c7e55-8c6f-11ee-a1d2-f23c94d4e5f6"


def test_parse_merges_and_normalises():
    s = GtidSet.parse(f"{A.upper()}:7-9:1-5:6,\n{B}:3")
    assert str(s) == f"{A}:1-9,{B}:3"
    assert len(s) == 10


def test_tagged_gtids_are_kept_apart_from_untagged():
    s = GtidSet.parse(f"{A}:1-5:drctl:1-2")
    assert len(s) == 7
    assert str(s) == f"{A}:1-5:drctl:1-2"
    assert GtidSet.parse(f"{A}:1-5").issubset(s)
    assert not GtidSet.parse(f"{A}:drctl:3").issubset(s)


def test_subtract_leaves_the_gaps():
    primary = GtidSet.parse(f"{A}:1-100,{B}:1-3")
    replica = GtidSet.parse(f"{A}:1-40:43-90")
    assert str(primary - replica) == f"{A}:41-42:91-100,{B}:1-3"
    assert len(primary - replica) == 15


def test_subset():
    assert GtidSet.parse(f"{A}:1-5").issubset(GtidSet.parse(f"{A}:1-10"))
    assert not GtidSet.parse(f"{A}:1-11").issubset(GtidSet.parse(f"{A}:1-10"))
    assert GtidSet.parse("").issubset(GtidSet.parse(""))


def test_union():
    assert str(GtidSet.parse(f"{A}:1-3") | GtidSet.parse(f"{A}:4-6,{B}:1")) == f"{A}:1-6,{B}:1"


@pytest.mark.parametrize("text", [f"{A}:x-3", "not-a-uuid:1-3", f"{A}:1-"])
def test_malformed_sets_are_refused(text):
    with pytest.raises(ValueError, match="not a GTID set"):
        GtidSet.parse(text)


def test_mysql_comparison_names_missing_and_errant():
    primary = GtidSet.parse(f"{A}:1-100")
    replica = GtidSet.parse(f"{A}:1-97,{B}:1-2")  # 3 behind, 2 written on the replica itself
    assert compare_gtids(primary, replica) == GtidComparison(f"{A}:98-100", 3, f"{B}:1-2", 2)


def test_in_sync():
    assert compare_gtids(GtidSet.parse(f"{A}:1-9"), GtidSet.parse(f"{A}:1-9")).in_sync


def test_mariadb_positions_compare_per_domain():
    primary = MariaDBGtidPos.parse("0-1-120,1-1-7")
    replica = MariaDBGtidPos.parse("0-1-100,1-1-7")
    result = compare_gtids(primary, replica)
    assert (result.missing, result.missing_count) == ("0-1-120", 20)
    assert (result.errant, result.errant_count) == ("", 0)


def test_mariadb_errant_transactions_of_a_replica():
    primary = MariaDBGtidPos.parse("0-1-120")
    replica = MariaDBGtidPos.parse("0-2-122,5-2-1")  # wrote two on domain 0 and one on its own domain
    result = compare_gtids(primary, replica)
    assert (result.errant, result.errant_count) == ("0-2-122,5-2-1", 3)
    assert result.missing_count == 0


def test_mariadb_position_round_trips_and_rejects_garbage():
    assert str(MariaDBGtidPos.parse("1-2-3, 0-1-5")) == "0-1-5,1-2-3"
    with pytest.raises(ValueError):
        MariaDBGtidPos.parse("0-1")
    with pytest.raises(ValueError, match="twice"):
        MariaDBGtidPos.parse("0-1-5,0-2-6")


def test_dialects_do_not_mix():
    with pytest.raises(TypeError):
        compare_gtids(GtidSet.parse(""), MariaDBGtidPos.parse(""))


def test_binlog_state_position_is_the_newest_gtid_per_domain():
    state = MariaDBGtidState.parse("0-1-100,0-2-150,1-3-9")
    assert str(state.position()) == "0-2-150,1-3-9"


def test_an_old_primary_s_own_gtids_after_the_fork_are_errant():
    new_primary = MariaDBGtidState.parse("0-1-100,0-2-150")  # applied 0-1-1..100, then wrote 101..150
    old_primary = MariaDBGtidState.parse("0-1-105")  # wrote 101..105 that never reached it
    found = mariadb_errant(new_primary, old_primary)
    assert [str(g) for g in found] == ["0-1-101..0-1-105"] and len(found[0]) == 5
    assert (0, 1, 103) in found[0] and (0, 2, 103) not in found[0]


def test_a_position_alone_would_miss_that_divergence():
    # By position the old primary (seq 105) is simply behind the new one (seq 150).
    assert compare_gtids(MariaDBGtidPos.parse("0-2-150"), MariaDBGtidPos.parse("0-1-105")).errant_count == 0
    diff = compare_histories(Dialect.MARIADB, "0-2-150", "0-1-105", "0-1-100,0-2-150", "0-1-105")
    assert (diff.errant, diff.errant_count) == ("0-1-101..0-1-105", 5)


def test_a_reseeded_primary_without_old_entries_makes_nothing_errant():
    reseeded = MariaDBGtidState.parse("0-2-152")  # binary log reset by the copy, then replicated on
    replica = MariaDBGtidState.parse("0-1-100,0-2-152")
    assert mariadb_errant(reseeded, replica) == []


def test_a_replica_written_to_locally_is_errant_even_once_the_primary_moved_on():
    primary = MariaDBGtidState.parse("0-1-140")  # its sequence passed the replica's local write
    replica = MariaDBGtidState.parse("0-1-100,0-3-101")
    found = mariadb_errant(primary, replica, replica_server_id=3)
    assert [str(g) for g in found] == ["0-3-1..0-3-101"]  # somewhere in there: the binary log says where
    assert len(found[0]) == 1 and (0, 3, 101) in found[0]


def test_mysql_errant_transactions_are_set_arithmetic():
    diff = compare_histories(Dialect.MYSQL_84, f"{A}:1-100,{B}:1-20", f"{A}:1-103")
    assert (diff.missing, diff.missing_count) == (f"{B}:1-20", 20)
    assert (diff.errant, diff.errant_count) == (f"{A}:101-103", 3)


def test_errant_ranges_read_back_as_they_are_written():
    ranges = [GtidRange(0, 3, 5, 9), GtidRange(0, 1, 7, 7)]
    assert parse_ranges(",".join(map(str, ranges))) == ranges
    assert parse_ranges("") == []


def test_forgetting_errant_ranges_moves_each_server_back_to_before_them():
    state = MariaDBGtidState.parse("0-1-100,0-2-150,0-3-4")
    assert str(state.without(parse_ranges("0-2-141..0-2-150,0-3-1..0-3-4"))) == "0-1-100,0-2-140"


def test_a_copy_remembers_the_source_history_up_to_where_it_was_made():
    source = MariaDBGtidState.parse("0-1-100,0-2-150,0-3-160,1-2-7")
    copied_at = MariaDBGtidPos.parse("0-2-155,1-2-7")
    assert str(source.until(copied_at)) == "0-1-100,0-2-155,1-2-7"
