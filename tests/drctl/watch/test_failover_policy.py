"""The decision rules, without I/O."""

from __future__ import annotations

from drctl.cloud.origin_probe import DOWN, UNKNOWN, UP
from drctl.watch.policy import RegionHealth, decide


def regions(*states: str, up_for: float = 0.0) -> list[RegionHealth]:
    names = ("us-east", "eu-west", "ap-south")
    return [RegionHealth(name, state, up_for if state == UP else 0.0) for name, state in zip(names, states, strict=False)]


def test_serving_region_up_means_stay():
    assert decide(regions(UP, DOWN), "us-east").action == "stay"


def test_serving_region_unknown_means_stay():
    assert decide(regions(UNKNOWN, UP), "us-east").action == "stay"


def test_serving_region_down_and_next_up_fails_over():
    d = decide(regions(DOWN, UP), "us-east")
    assert (d.action, d.target, d.kind) == ("switch", "eu-west", "failover")


def test_failover_skips_later_regions_that_are_not_up():
    assert decide(regions(DOWN, DOWN, UP), "us-east").target == "ap-south"
    assert decide(regions(DOWN, UNKNOWN, UP), "us-east").target == "ap-south"


def test_all_down_is_fail_static():
    d = decide(regions(DOWN, DOWN), "us-east")
    assert d.action == "all_down" and d.target is None


def test_down_with_only_an_unknown_later_region_waits():
    assert decide(regions(DOWN, UNKNOWN), "us-east").action == "stranded"


def test_last_region_down_with_primary_up_needs_a_manual_failback():
    d = decide(regions(UP, DOWN), "eu-west")
    assert d.action == "stranded" and "--auto-failback" in d.reason


def test_failback_is_manual_by_default():
    assert decide(regions(UP, UP, up_for=10_000), "eu-west").action == "stay"


def test_auto_failback_waits_for_the_stability_window():
    early = decide(regions(UP, UP, up_for=299), "eu-west", auto_failback=True, stability_window=300)
    assert early.action == "stay"
    late = decide(regions(UP, UP, up_for=300), "eu-west", auto_failback=True, stability_window=300)
    assert (late.action, late.target, late.kind) == ("switch", "us-east", "failback")


def test_auto_failback_leaves_a_down_region_without_waiting():
    d = decide(regions(UP, DOWN, up_for=1), "eu-west", auto_failback=True, stability_window=300)
    assert (d.target, d.kind) == ("us-east", "failback")


def test_record_pointing_at_no_region_is_left_alone():
    assert decide(regions(DOWN, UP), None).action == "foreign"


def failing(name: str) -> RegionHealth:
    """Up, but its latest probe failed: not down yet, not fit to take traffic either."""
    return RegionHealth(name, UP, 100.0, failing=True)


def test_never_fails_over_to_a_region_whose_latest_probe_failed():
    d = decide([RegionHealth("us-east", DOWN), failing("eu-west")], "us-east")
    assert d.action == "hold" and d.target is None and "eu-west failing" in d.reason


def test_a_failing_region_is_skipped_for_a_later_one_that_is_ready():
    d = decide([RegionHealth("us-east", DOWN), failing("eu-west"), RegionHealth("ap-south", UP)], "us-east")
    assert (d.action, d.target) == ("switch", "ap-south")


def test_auto_failback_never_goes_to_a_failing_region():
    d = decide([failing("us-east"), RegionHealth("eu-west", DOWN)], "eu-west", auto_failback=True)
    assert d.action == "hold"
    d = decide([failing("us-east"), RegionHealth("eu-west", UP)], "eu-west", auto_failback=True, stability_window=0)
    assert d.action == "stay"
