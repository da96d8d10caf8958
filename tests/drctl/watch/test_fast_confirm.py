"""Fast confirm (HAProxy's fastinter) on a simulated clock: fall/rise trackers and
`next_probe_delay`, as `Watchdog.run` schedules them, against a primary that dies, one that flaps,
and one that loses a probe now and then."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from drctl.cloud.origin_probe import DOWN, UP, HealthTracker
from drctl.watch.policy import next_probe_delay

INTERVAL, FAST, TIMEOUT, FALL, RISE = 60.0, 5.0, 5.0, 2, 2


def simulate(alive: Callable[[float], bool], until: float, fast: float | None = FAST,
             fall: int = FALL) -> list[tuple[float, str]]:
    """Probe rounds at the policy's delays; a dead origin answers nothing until the timeout.
    Returns (when the state changed, new state)."""
    tracker = HealthTracker(fall, RISE)
    t, changes = 0.0, []
    while t < until:
        ok = alive(t)
        done = t + (0.05 if ok else TIMEOUT)
        changed = tracker.observe(ok, done)
        if changed:
            changes.append((done, changed))
        t = max(t + next_probe_delay([tracker], INTERVAL, fast), done)
    return changes


def detection(dies_at: float, **kw) -> float:
    changes = simulate(lambda t: t < dies_at, dies_at + 1000, **kw)
    return next(at for at, state in changes if state == DOWN) - dies_at


@pytest.mark.parametrize("offset", [0.001, 10, 30, 59.999])
def test_a_dead_origin_is_down_within_interval_plus_fall_minus_one_fast_intervals_plus_timeout(offset):
    took = detection(600 + offset)
    assert took <= INTERVAL + (FALL - 1) * FAST + TIMEOUT
    assert took > (FALL - 1) * FAST  # still `fall` probes: never on one


def test_without_fast_confirm_it_takes_fall_intervals():
    took = detection(600.001, fast=None)
    assert INTERVAL + TIMEOUT < took <= FALL * INTERVAL + TIMEOUT


def test_fall_three_confirms_with_two_fast_probes():
    assert detection(600.001, fall=3) <= INTERVAL + 2 * FAST + TIMEOUT


def test_no_fast_probes_while_healthy_or_once_down():
    healthy = HealthTracker(FALL, RISE)
    assert next_probe_delay([healthy], INTERVAL, FAST) == INTERVAL
    healthy.observe(False, 0)
    assert next_probe_delay([healthy], INTERVAL, FAST) == FAST  # confirming
    healthy.observe(False, 5)
    assert healthy.state == DOWN
    assert next_probe_delay([healthy], INTERVAL, FAST) == INTERVAL  # confirmed: back to the interval


def test_one_lost_probe_is_forgotten_at_the_next_good_one():
    lost = {600.0}
    changes = simulate(lambda t: t not in lost, 3600)
    assert [s for _, s in changes] == [UP]


def test_an_origin_failing_every_other_probe_never_goes_down():
    probes = iter(range(10**6))

    def alive(_t: float) -> bool:
        n = next(probes)
        return n < 4 or n % 2 == 0  # up first, then every other probe fails

    changes = simulate(alive, 86_400)
    assert [s for _, s in changes] == [UP]


def test_fast_interval_is_capped_by_the_interval():
    tracker = HealthTracker(FALL, RISE)
    tracker.observe(False, 0)
    assert next_probe_delay([tracker], 10, 30) == 10


# -- the watchdog itself, built by the CLI, against real HTTPS origins ------------------------------

def test_the_watchdog_probes_at_the_fast_interval_only_while_a_region_confirms_a_failure(shop):
    wd = shop.watchdog("--interval", "1", "--fast-interval", "0.1")
    for _ in range(2):
        wd.run_cycle()
    assert wd.next_delay() == 1
    shop.origin("us-east").healthy = False
    wd.run_cycle()  # first failure: confirm it sooner
    assert wd.next_delay() == 0.1
    report = wd.run_cycle()  # fall reached: down, and the switch made
    assert report.states["us-east"] == DOWN and report.switched
    assert wd.next_delay() == 1


def test_the_stack_fast_interval_is_the_default_and_never_above_the_interval(shop):
    assert shop.watchdog("--interval", "30", "--timeout", "5").settings.fast_interval == 5  # the stack's 5 s
    assert shop.watchdog().settings.fast_interval == 0.2  # --interval 0.2: capped
