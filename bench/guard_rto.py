"""Benchmark: recovery time (RTO) of the whole shop when the primary region dies, at real scale on a
simulated clock: a person promoting (manual) against drctl guard (automatic).

The stack is prod's (Pulumi.prod.yaml through the program's own config model): Cloudflare's monitor
probes every 60 s, each probe of a dead origin waits its 5 s timeout on every try (retries 2), and
consecutiveDown 2 marks the pool unhealthy; the guards probe every 60 s too, with fast confirm
(traffic.monitor.fastInterval) and the same fall; automation.confirmSeconds; objectives.rtoSeconds.

The guard side is the real code: `HealthTracker`, `next_cycle_delay` (fast confirm, and fast
cycles while the decision waits on the other signals) and the guard's `decide`, for two guards (A holds the lease, B votes) whose probes, and Cloudflare's, run at
different phases; the primary region dies at 12 offsets within an interval, for 3 phases of guard B
and 4 of Cloudflare's monitor (144 runs). Simulated, with stated figures:
- promotion: from the decision to a writable primary with traffic on it, the objectives check's
  budget PROMOTION_BUDGET_SECONDS (drctl/stack/outputs.py, a bound; the local rehearsal measures
  under a second for it);
- manual: Cloudflare's monitor marks the pool unhealthy and its notification pages a person, who
  acknowledges and runs `drctl promote` after HUMAN_RESPONSE_SECONDS (15 min: 5 to wake and
  acknowledge at 3 a.m., 10 to read `drctl status` and decide), then the same promotion.
- the RPO gate: promote's loss window (drctl/runbook/promote.py `loss_window`) runs from the newest
  data on the surviving replica (the primary's last heartbeat before it died, less the replication
  lag: up to HEARTBEAT_PERIOD + REPLICA_LAG before the failure) to the last time the old primary was
  seen alive and taking writes. The guard passes the time of its own last good probe of the primary
  database (a probe that started before the failure); with none, the window runs to now. The table
  shows the automatic figures with the gate as it measures now ("after") and as it measured before
  this change, to the moment promote runs ("before": the heartbeat's age then, which includes
  detection and confirmation, so every automatic promotion was refused and waited for a person).

Run: ./venv/bin/python bench/guard_rto.py
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.config import validate_config_map
from drctl.cloud.origin_probe import HealthTracker
from drctl.guard.decision import Loss, Memory, Observation, Settings, Vote, decide, next_cycle_delay
from drctl.runbook.promote import loss_window
from drctl.stack.files import load_stack_file
from drctl.stack.outputs import PROMOTION_BUDGET_SECONDS

HUMAN_RESPONSE_SECONDS = 15 * 60
HEALTHY_LATENCY = 0.05
SETTLED = 600.0  # the region dies this long after the start, plus an offset
OFFSETS = [0.001, *range(5, 60, 5)]
B_PHASES = (7.0, 27.0, 47.0)
CF_PHASES = (3.0, 18.0, 33.0, 48.0)
REPLICA_LAG = 0.5  # seconds the replica trails the primary while both are up
HEARTBEAT_PERIOD = 1.0  # the primary writes its heartbeat every second (the event scheduler)


@dataclass(frozen=True)
class Stack:
    interval: float
    timeout: float
    retries: int
    fall: int
    rise: int
    fast: float
    confirm: float
    rto: int
    rpo: int


def prod() -> Stack:
    stack = load_stack_file("prod")
    config = validate_config_map(stack.config, stack.secret_keys)
    m = config.traffic.monitor
    return Stack(m.interval, m.timeout, m.retries, m.fall, m.rise, m.fast_interval,
                 config.automation.confirm_seconds, config.objectives.rto_seconds, config.objectives.rpo_seconds)


class Prober:
    """One vantage point's probes of the primary (both its healthz and its database die with the
    region), scheduled as the guard loop schedules them."""

    def __init__(self, s: Stack, phase: float, dies: float, fast: bool = True):
        self.s, self.dies, self.fast = s, dies, fast
        self.trackers = [HealthTracker(s.fall, s.rise), HealthTracker(s.fall, s.rise)]
        self.next = phase
        self.done = phase
        self.down_at: float | None = None
        self.last_good: float | None = None  # when a probe last found the primary answering (and writable)

    def step(self, action: str = "healthy") -> float:
        """Run the probe due now (the guard's cycle; `action` its latest verdict); returns when it
        finished."""
        start = self.next
        alive = start < self.dies
        done = start + (HEALTHY_LATENCY if alive else self.s.timeout)
        for t in self.trackers:
            t.observe(alive, done)
        if alive:
            self.last_good = done  # the guard records its runbook clock when the probe returns
        if self.down_at is None and all(t.state == "down" for t in self.trackers):
            self.down_at = done
        self.done = done
        return done

    def schedule(self, action: str) -> None:
        delay = next_cycle_delay(action, self.trackers, self.s.interval, self.s.fast if self.fast else None)
        self.next = max(self.next + delay, self.done)

    @property
    def lost(self) -> bool:
        return all(t.state == "down" for t in self.trackers)

    @property
    def states(self) -> tuple[str, str]:
        return self.trackers[0].state, self.trackers[1].state


def cloudflare_unhealthy_at(s: Stack, phase: float, dies: float) -> float:
    """When Cloudflare's monitor marks the pool unhealthy: `fall` failed probes in a row, each
    waiting its timeout on every try."""
    tracker = HealthTracker(s.fall, s.rise)
    k = 0
    while True:
        start = phase + k * s.interval
        alive = start < dies
        done = start + (HEALTHY_LATENCY if alive else s.timeout * (s.retries + 1))
        if tracker.observe(alive, done) == "down":
            return done
        k += 1


@dataclass
class Run:
    detect: float  # guard A's own probes: both signals down
    agree: float  # every signal agrees (the confirm time starts)
    decided: float | None  # the guard starts the promotion (None: it waits for a person)
    window: float  # the loss window the gate measured


def automatic(s: Stack, offset: float, b_phase: float, cf_phase: float, gate_before: bool) -> Run:
    dies = SETTLED + offset
    a, b = Prober(s, 0.0, dies), Prober(s, b_phase, dies)
    cf_down = cloudflare_unhealthy_at(s, cf_phase, dies)
    settings = Settings(confirm_seconds=s.confirm, block_seconds=3600, vote_ttl=3 * s.interval)
    memory, agree, vote_b = Memory(), None, Vote(False, 0.0)
    while True:
        while b.next <= a.next:  # B's probes up to A's next one; its vote is cast as it goes
            at = b.step()
            vote_b = Vote(b.lost, at)
            b.schedule("confirming" if b.lost else "healthy")  # B waits on the signals as A does
        now = a.step()
        obs = Observation(now=now, primary="primary", target="dr", healthz=a.states[0], database=a.states[1],
                          cloudflare="unhealthy" if now >= cf_down else "healthy", votes={"B": vote_b},
                          lease_held=True)
        verdict, memory = decide(obs, memory, settings)
        if verdict.action == "confirming" and agree is None:
            agree = now - verdict.confirmed_for
        a.schedule(verdict.action)
        if verdict.action == "assess":
            newest = dies - HEARTBEAT_PERIOD - REPLICA_LAG  # the worst case: the last heartbeat a period old
            window = loss_window(newest, None if gate_before else a.last_good, now)
            loss = Loss(window > s.rpo, f"loss window {window:.1f} s")
            verdict, memory = decide(Observation(**{**obs.__dict__, "loss": loss}), memory, settings)
            if verdict.action == "promote":
                return Run(a.down_at - dies, agree - dies, now - dies, window)
            if verdict.action == "await_operator":
                return Run(a.down_at - dies, agree - dies, None, window)
        if now - dies > 3600:
            raise RuntimeError(f"no decision an hour after the failure ({verdict.action}: {verdict.reason})")


def manual(s: Stack, offset: float, cf_phase: float) -> float:
    dies = SETTLED + offset
    return cloudflare_unhealthy_at(s, cf_phase, dies) - dies + HUMAN_RESPONSE_SECONDS + PROMOTION_BUDGET_SECONDS


def pct(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} / {max(values):.0f}"


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    line: Callable[[tuple[str, ...]], str] = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(rows[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows[1:])])


def main() -> None:
    s = prod()
    grid = [(o, b, c) for o in OFFSETS for b in B_PHASES for c in CF_PHASES]
    head = ("recovery", "detect p50 / max (s)", "all signals agree p50 / max (s)", "promotion starts p50 / max (s)",
            "RTO p50 / max (s)", f"objective {s.rto} s")
    rows = [head]
    manual_rto = [manual(s, o, c) for o, _, c in grid]
    cf = [cloudflare_unhealthy_at(s, c, SETTLED + o) - SETTLED - o for o, _, c in grid]
    rows.append((f"manual (person answers in {HUMAN_RESPONSE_SECONDS // 60} min)", pct(cf), "-",
                 pct([x - PROMOTION_BUDGET_SECONDS for x in manual_rto]), pct(manual_rto),
                 "met" if max(manual_rto) <= s.rto else "MISSED"))
    for label, before in (("automatic, after: loss window to the guard's last good probe", False),
                          ("automatic, before: loss window to the moment promote runs", True)):
        runs = [automatic(s, o, b, c, before) for o, b, c in grid]
        decided = [r.decided for r in runs if r.decided is not None]
        waited = len(runs) - len(decided)
        rto = [d + PROMOTION_BUDGET_SECONDS for d in decided]
        if waited:  # the gate refused: the guard alerted, a person promotes with --accept-data-loss
            rto += [r.agree + s.confirm + HUMAN_RESPONSE_SECONDS + PROMOTION_BUDGET_SECONDS
                    for r in runs if r.decided is None]
        windows = [r.window for r in runs]
        note = (f" ({waited}/{len(runs)} refused by the gate" if waited else " (none refused") + \
            f", window {min(windows):.1f}-{max(windows):.1f} s, RPO {s.rpo} s)"
        rows.append((label + note, pct([r.detect for r in runs]), pct([r.agree for r in runs]),
                     pct(decided) if decided else "-", pct(rto), "met" if max(rto) <= s.rto else "MISSED"))
    print(f"prod: monitor interval {s.interval:g} s, timeout {s.timeout:g} s x (retries {s.retries} + 1), fall "
          f"{s.fall}; guard fast interval {s.fast:g} s, confirmSeconds {s.confirm:g}; objectives RTO {s.rto} s, "
          f"RPO {s.rpo} s.")
    print(f"{len(grid)} runs: the region dies at {len(OFFSETS)} offsets within an interval, guard B at "
          f"{len(B_PHASES)} phases, Cloudflare's monitor at {len(CF_PHASES)}. Promotion: {PROMOTION_BUDGET_SECONDS} s "
          "(the objectives check's budget, a bound). Times from the failure.")
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
