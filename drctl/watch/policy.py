"""Where the shop's DNS record should point, given each region's health: the watchdog's decision,
as a pure function so tests and the benchmark run exactly the code production runs.

Rules (issues 7 and 16):
- failover: only when the record points at a region that is *down* and a *later* region in
  failover order is *ready*: up, and its latest `rise` probes all passed; the first such region wins;
- never toward a region that is down, not yet seen up, or failing: up, but a probe failed since its
  last `rise` good ones (it may be on its way down: during an outage of every region, one probe
  round can see the serving region reach `fall` while another has failed only once);
- every region down: leave the record alone (fail-static: a dead region serves errors either way,
  and rewriting DNS during a global incident only adds churn) and alert;
- the serving region down and the only candidates failing: hold (no write, no alert yet) until
  their probes settle one way or the other;
- failback (toward an earlier region) only with `auto_failback`, and only to a region up for at
  least `stability_window` seconds; a region that is down is left at once for an earlier region
  that is up, window or not, since anything beats serving from a dead region.

Fast confirm (HAProxy's `fastinter`, issue 15): after a region's first failed probe the next round
comes `fast_interval` after the last, not `interval`, until the region reaches `fall` (down) or
answers again. Detection of a dead region then takes at most interval + (fall - 1) x fast_interval
+ timeout instead of fall x interval + timeout. The counts do not change: `fall` failures in a row,
so a probe lost now and then (a region that fails every other probe) never makes a region down.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from drctl.cloud.origin_probe import DOWN, UP, HealthTracker

Action = Literal["stay", "switch", "all_down", "stranded", "hold", "foreign"]


@dataclass(frozen=True)
class RegionHealth:
    region: str
    state: str  # probe.UP / DOWN / UNKNOWN
    up_for: float = 0.0  # seconds in state UP
    failing: bool = False  # up, but a probe failed since its last `rise` good ones

    @property
    def ready(self) -> bool:
        """Fit to take traffic: up, and its latest `rise` probes all passed."""
        return self.state == UP and not self.failing


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    target: str | None = None
    kind: Literal["failover", "failback"] | None = None

    @property
    def switch(self) -> bool:
        return self.action == "switch"


def decide(order: Sequence[RegionHealth], current: str | None, *, auto_failback: bool = False,
           stability_window: float = 0.0) -> Decision:
    """`order` is every region in failover order (primary first); `current` the region the record
    points at, or None when it points at an address of no region."""
    names = [r.region for r in order]
    if current not in names:
        return Decision("foreign", "the record points at an address that is no region's NodeBalancer; left alone")
    index = names.index(current)
    serving = order[index]
    if auto_failback:
        for earlier in order[:index]:
            if earlier.ready and (serving.state == DOWN or earlier.up_for >= stability_window):
                why = (f"{current} is down" if serving.state == DOWN
                       else f"{earlier.region} up for {earlier.up_for:.0f} s >= stability window {stability_window:g} s")
                return Decision("switch", f"failback to {earlier.region}: {why}", earlier.region, "failback")
    if serving.state != DOWN:
        return Decision("stay", f"{current} is {serving.state}")
    for later in order[index + 1:]:
        if later.ready:
            return Decision("switch", f"failover: {current} is down, {later.region} is up", later.region, "failover")
    if all(r.state == DOWN for r in order):
        return Decision("all_down", "every region is down: record left as it is (fail-static)")
    failing = [r.region for r in order if r.state == UP and r.failing]
    if failing:
        return Decision("hold", f"{current} is down and {', '.join(failing)} failing (a probe failed since its last "
                        "good ones): record left as it is until their probes settle")
    earlier_up = [r.region for r in order[:index] if r.ready]
    if earlier_up:
        return Decision("stranded", f"{current} is down and no later region is up; {', '.join(earlier_up)} is up: "
                        "failing back is manual (or run with --auto-failback)")
    return Decision("stranded", f"{current} is down and no later region is up yet")


def next_probe_delay(trackers: Iterable[HealthTracker], interval: float, fast_interval: float | None) -> float:
    """Seconds from this probe round's start to the next one's: `fast_interval` while any region is
    confirming a failure (failed, `fall` not reached), `interval` otherwise (fast confirm off: None)."""
    if fast_interval is not None and any(t.confirming for t in trackers):
        return min(interval, fast_interval)
    return interval
