"""Where the shop's DNS record should point, given each region's health: the watchdog's decision,
as a pure function so tests and the benchmark run exactly the code production runs.

Rules (issue 7):
- failover: only when the record points at a region that is *down* and a *later* region in
  failover order is *up* (seen up `rise` times in a row); the first such region wins;
- never toward a region that is down or not yet seen up;
- every region down: leave the record alone (fail-static: a dead region serves errors either way,
  and rewriting DNS during a global incident only adds churn) and alert;
- failback (toward an earlier region) only with `auto_failback`, and only to a region up for at
  least `stability_window` seconds; a region that is down is left at once for an earlier region
  that is up, window or not, since anything beats serving from a dead region.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from drctl.cloud.origin_probe import DOWN, UP

Action = Literal["stay", "switch", "all_down", "stranded", "foreign"]


@dataclass(frozen=True)
class RegionHealth:
    region: str
    state: str  # probe.UP / DOWN / UNKNOWN
    up_for: float = 0.0  # seconds in state UP


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
            if earlier.state == UP and (serving.state == DOWN or earlier.up_for >= stability_window):
                why = (f"{current} is down" if serving.state == DOWN
                       else f"{earlier.region} up for {earlier.up_for:.0f} s >= stability window {stability_window:g} s")
                return Decision("switch", f"failback to {earlier.region}: {why}", earlier.region, "failback")
    if serving.state != DOWN:
        return Decision("stay", f"{current} is {serving.state}")
    for later in order[index + 1:]:
        if later.state == UP:
            return Decision("switch", f"failover: {current} is down, {later.region} is up", later.region, "failover")
    if all(r.state == DOWN for r in order):
        return Decision("all_down", "every region is down: record left as it is (fail-static)")
    earlier_up = [r.region for r in order[:index] if r.state == UP]
    if earlier_up:
        return Decision("stranded", f"{current} is down and no later region is up; {', '.join(earlier_up)} is up: "
                        "failing back is manual (or run with --auto-failback)")
    return Decision("stranded", f"{current} is down and no later region is up yet")
