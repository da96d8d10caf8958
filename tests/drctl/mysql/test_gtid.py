"""GTID arithmetic: what a replica is missing before promotion, what is errant before failback."""

import pytest

from drctl.mysql.replication import GtidComparison, GtidSet, MariaDBGtidPos, compare_gtids

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
