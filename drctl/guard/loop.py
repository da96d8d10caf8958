"""The guard: each cycle it probes the primary's NodeBalancer /healthz and database, reads
Cloudflare's view of the primary's pool, casts its vote and reads the other guards', looks at the
journal and the promotion history, decides (guard/decision.py) and, when the decision says so,
runs the runbook's unplanned promote (fencing, RPO gate, traffic, journal) without
--accept-data-loss and without --force.

Like drctl watch it writes one JSON log line per change (signals, verdict, lease, votes), never per
probe; probes every `interval`, every `fast_interval` while a probe has failed and `fall` is not
reached (fast confirm) and while the decision waits on the other signals; and no exception ends the loop (a failing cycle is logged, counted, alerted
at the 3rd in a row, then the 6th, 12th, ...).

It watches the deployed primary region. After a promotion away from it (its own or a person's, as
the promotion history on this host records it) it stands by, and never fails back: failback is
`drctl failback`, by a person; a failback recorded in the history makes it watch again.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from drctl.cloud.cloudflare import CloudflareApiError
from drctl.cloud.origin_probe import HealthTracker, ProbeResult
from drctl.cloud.traffic import TrafficError
from drctl.guard.decision import Loss, Memory, Observation, Settings, Verdict, decide, next_cycle_delay
from drctl.guard.metrics import GuardMetrics
from drctl.guard.votes import VoteBoard
from drctl.runbook.context import Refused, Runbook
from drctl.runbook.journal import Journal, JournalError
from drctl.runbook.promote import PromoteOptions, promote
from drctl.runbook.switchover import RunResult
from drctl.stack.outputs import OutputsError
from drctl.watch.alerts import Alerter, deliver
from drctl.watch.lease import Lease
from drctl.watch.loop import EventLog, Streak, run_guarded

# Verdicts worth a page when the guard enters them; the others are in the log and the metrics.
ALERTED = ("disagree", "undecided", "journal_open", "blocked", "await_operator")


@dataclass(frozen=True)
class GuardSettings:
    interval: float
    fall: int
    rise: int
    confirm_seconds: float
    block_seconds: int
    vote_ttl: float
    fast_interval: float | None = None
    dry_run: bool = False
    alert_after: int = 3
    apply_timeout: float = 60.0  # promote's bounded wait for the relay log
    catch_up_timeout: float = 300.0
    traffic_timeout: float = 120.0

    def __post_init__(self) -> None:
        for name in ("interval", "vote_ttl"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"GuardSettings.{name} must be a finite number of seconds above 0 (got {value!r})")
        if not (math.isfinite(self.confirm_seconds) and self.confirm_seconds >= 0):
            raise ValueError(f"GuardSettings.confirm_seconds must be 0 or more (got {self.confirm_seconds!r})")
        if min(self.fall, self.rise, self.alert_after) < 1:
            raise ValueError("GuardSettings.fall, rise and alert_after must be at least 1")

    @property
    def decision(self) -> Settings:
        return Settings(self.confirm_seconds, self.block_seconds, self.vote_ttl)


@dataclass
class CycleReport:
    verdict: Verdict
    observation: Observation
    promotion: RunResult | None = None
    errors: list[str] = field(default_factory=list)


class Guard:
    def __init__(self, *, guard_id: str, rb: Runbook, healthz: Callable[[str], ProbeResult],
                 database: Callable[[str], ProbeResult], cloudflare_view: Callable[[str], str], votes: VoteBoard,
                 lease: Lease, settings: GuardSettings, log: EventLog, metrics: GuardMetrics | None = None,
                 alerter: Alerter | None = None, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time):
        self.guard_id, self.rb = guard_id, rb
        self.healthz, self.database, self.cloudflare_view = healthz, database, cloudflare_view
        self.votes, self.lease, self.settings, self.log = votes, lease, settings, log
        self.metrics, self.alerter = metrics, alerter or Alerter()
        self.clock, self.wall = clock, wall
        self.order: tuple[str, ...] = tuple(r.region for r in rb.outputs.regions)
        self.deployed_primary = rb.outputs.database.primary.region
        self.trackers = {"healthz": HealthTracker(settings.fall, settings.rise),
                         "database": HealthTracker(settings.fall, settings.rise)}
        self.memory = Memory()
        self.cycle_failures = Streak(settings.alert_after)
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="drctl-guard-probe")
        self._logged: dict[str, Any] = {}
        self._errors: list[str] = []
        self._retry_at = float("-inf")  # after a promotion that failed part-way: not before this
        # When the primary database last answered this guard's probe and took writes, on the runbook's
        # clock (the one promote measures the heartbeat against): the end of the loss window the RPO
        # gate measures. None until one such probe: promote then measures the window to now.
        self.primary_last_seen: float | None = None

    # -- the cycle -----------------------------------------------------------------------------

    def run_cycle(self) -> CycleReport:
        self._errors = []
        primary = self.deployed_primary
        self._probe(primary)
        obs = self._observe(primary)
        verdict, self.memory = decide(obs, self.memory, self.settings.decision)
        report = CycleReport(verdict, obs)
        if verdict.action == "assess":
            loss = self._assess(verdict.target or "")
            if loss is not None:
                obs = replace(obs, loss=loss)
                verdict, self.memory = decide(obs, self.memory, self.settings.decision)
                report = CycleReport(verdict, obs)
        self._note_verdict(verdict)
        if verdict.acts and self.clock() >= self._retry_at:
            report.promotion = self._promote(verdict)
        report.errors = list(self._errors)
        return report

    def run(self, stop: threading.Event) -> None:
        """Cycle until `stop` is set: every `interval`, every `fast_interval` while confirming;
        after a failed cycle, a whole interval."""
        self.log.emit("start", guard=self.guard_id, primary=self.deployed_primary, **asdict(self.settings))
        next_start = self.clock()
        while not stop.is_set():
            ok = self.guarded_cycle()
            next_start += self.next_delay()
            now = self.clock()
            next_start = max(next_start, now)
            if not ok:
                next_start = max(next_start, now + self.settings.interval)
            stop.wait(next_start - now)

    def next_delay(self) -> float:
        action = self._logged.get("verdict", "healthy")
        return next_cycle_delay(action, self.trackers.values(), self.settings.interval, self.settings.fast_interval)

    def guarded_cycle(self) -> bool:
        """One cycle that no exception escapes (run_guarded): a bug must not silence the guard."""
        return run_guarded(self.run_cycle, self.cycle_failures, self.log.emit, self._alert)

    def close(self) -> None:
        held = self.lease.state().held
        self.lease.release()
        self._pool.shutdown(wait=False)
        self.log.emit("stop", released_lease=held and not self.settings.dry_run)

    # -- signals -------------------------------------------------------------------------------

    def _probe(self, primary: str) -> None:
        futures = {name: self._pool.submit(getattr(self, name), primary) for name in self.trackers}
        results: dict[str, ProbeResult] = {name: f.result() for name, f in futures.items()}
        now = self.clock()
        db = results["database"]
        if db.ok and db.writable:
            self.primary_last_seen = self.rb.clock()
        for name, result in results.items():
            tracker = self.trackers[name]
            before = tracker.state
            changed = tracker.observe(result.ok, now)
            if self.metrics:
                self.metrics.probes.labels(signal=name, result="success" if result.ok else "failure").inc()
            if changed:
                if self.metrics:
                    self.metrics.signal_state.labels(signal=name).state(changed)
                self.log.emit("signal", signal=name, region=primary, state=changed, previous=before,
                              probe=result.describe())

    def _observe(self, primary: str) -> Observation:
        target = self._target(primary)
        own_lost = all(t.state == "down" for t in self.trackers.values())
        cloudflare = self._cloudflare(primary)
        others = self._votes(own_lost)
        lease = self._lease()
        history, journal = self._records(target)
        return Observation(
            now=self.wall(), primary=primary, target=target, healthz=self.trackers["healthz"].state,
            database=self.trackers["database"].state, cloudflare=cloudflare, votes=others,
            lease_held=lease.held, lease_holder=lease.holder, other_journal=journal,
            last_promotion_age=history[0], promoted_from_primary=history[1],
        )

    def _target(self, primary: str) -> str | None:
        """The first region after the primary in failover order that has a database server:
        never an earlier one (that would be a failback)."""
        index = self.order.index(primary) if primary in self.order else -1
        return next((r for r in self.order[index + 1:] if r in self.rb.servers), None)

    def _cloudflare(self, primary: str) -> str:
        try:
            view = self.cloudflare_view(primary)
        except (TrafficError, OutputsError, CloudflareApiError) as err:
            self._error("cloudflare", err)
            view = "unknown"
        if self.metrics:
            self.metrics.cloudflare_view.state(view)
        if self._changed("cloudflare", view):
            self.log.emit("cloudflare", region=primary, view=view)
        return view

    def _votes(self, own_lost: bool) -> dict:
        try:
            if not self.settings.dry_run:  # a dry run must not sway the real guards
                self.votes.cast(own_lost)
            others = self.votes.others()
        except (CloudflareApiError, OSError) as err:
            self._error("votes", err)
            return {}
        summary = {holder: vote.lost for holder, vote in sorted(others.items())}
        if self._changed("votes", (own_lost, summary)):
            self.log.emit("votes", own_lost=own_lost, others=summary)
        return others

    def _lease(self):
        try:
            state = self.lease.refresh()
        except (CloudflareApiError, OSError) as err:
            self._error("lease", err)
            state = self.lease.state()
        if self.metrics:
            self.metrics.lease_held.set(1 if state.held else 0)
        if self._changed("lease", (state.held, state.holder)):
            self.log.emit("lease", held=state.held, holder=state.holder, state=state.describe())
        return state

    def _records(self, target: str | None) -> tuple[tuple[float | None, bool], str | None]:
        """((seconds since the last promotion, whether it moved away from the deployed primary),
        another operation's open journal, described). An unreadable journal or history refuses."""
        try:
            last = self.rb.history().last()
            open_journal = Journal(self.rb.journal_path, "", {}).read()
        except JournalError as err:
            return (None, False), f"drctl cannot read its records ({err})"
        age = self.wall() - last["at"] if last else None
        away = bool(last) and last.get("from") == self.deployed_primary and last.get("to") != self.deployed_primary
        other = None
        if open_journal and not open_journal.get("finished"):
            ours = open_journal.get("operation") == "promote" and open_journal.get("params") == {"region": target}
            if not ours:  # the guard's own promote, interrupted, is resumed; anything else is a person's
                params = " ".join(f"{k}={v}" for k, v in sorted((open_journal.get("params") or {}).items()))
                other = f"an unfinished {open_journal.get('operation')} {params} is recorded in {self.rb.journal_path}"
        return (age, away), other

    # -- acting --------------------------------------------------------------------------------

    def _options(self, target: str, dry_run: bool) -> PromoteOptions:
        # Never --accept-data-loss, never --force: those are a person's decisions.
        s = self.settings
        return PromoteOptions(region=target, yes=not dry_run, dry_run=dry_run, block_seconds=s.block_seconds,
                              apply_timeout=s.apply_timeout, catch_up_timeout=s.catch_up_timeout,
                              traffic_timeout=s.traffic_timeout, primary_last_seen=self.primary_last_seen,
                              primary_last_seen_by="by drctl guard")

    def _assess(self, target: str) -> Loss | None:
        """What promoting `target` may lose, from promote's own dry run (read-only). None when it
        cannot be told: nothing is decided this cycle."""
        try:
            result = promote(self.rb, self._options(target, dry_run=True))
        except (Refused, JournalError, OutputsError) as err:
            self._error("assess", err)
            return None
        if result.mode != "unplanned":
            self.log.emit("assess", target=target, mode=result.mode, note="the runbook finds the primary answering: "
                          "no unplanned promotion")
            return None
        loss = result.loss or {}
        self.log.emit("assess", target=target, primary_last_seen=loss.get("primaryLastSeen"),
                      loss_window=loss.get("lossWindowSeconds"), data_age=loss.get("dataAgeSeconds"),
                      exceeds_rpo=loss.get("exceedsRpo"))
        return Loss(bool(loss.get("exceedsRpo", True)), str(loss.get("summary", "loss unknown")))

    def _promote(self, verdict: Verdict) -> RunResult | None:
        target = verdict.target or ""
        if self.settings.dry_run:
            if self._changed("would_promote", target):
                self.log.emit("promote_planned", dry_run=True, target=target, reason=verdict.reason)
            return None
        self.log.emit("promote_start", target=target, reason=verdict.reason)
        self._alert("promote_start", target=target, reason=verdict.reason)
        started = self.clock()
        try:
            result = promote(self.rb, self._options(target, dry_run=False))
        except (Refused, JournalError) as err:
            result = RunResult("promote", target, outcome="refused", message=str(err))
        took = self.clock() - started
        if self.metrics:
            self.metrics.promotions.labels(outcome=result.outcome).inc()
            self.metrics.promote_seconds.set(took)
        fields = {"target": target, "outcome": result.outcome, "seconds": round(took, 3), "message": result.message,
                  "warnings": result.warnings}
        self.log.emit("promote", **fields)
        if result.outcome == "refused" and "--accept-data-loss" in result.message:
            self.memory = replace(self.memory, awaiting_operator=True)  # the RPO gate: a person decides
            self._alert("await_operator", **fields)
        else:
            if result.outcome != "done":  # resumed from its journal, but not at every fast cycle
                self._retry_at = self.clock() + self.settings.interval
            self._alert("promoted" if result.outcome == "done" else "promote_failed", **fields)
        return result

    # -- bookkeeping ---------------------------------------------------------------------------

    def _note_verdict(self, verdict: Verdict) -> None:
        if self.metrics:
            self.metrics.verdict.state(verdict.action)
            self.metrics.confirmed_for.set(verdict.confirmed_for)
        if not self._changed("verdict", verdict.action):
            return
        self.log.emit("verdict", action=verdict.action, target=verdict.target, reason=verdict.reason)
        if verdict.action in ALERTED:
            self._alert(verdict.action, region=self.deployed_primary, target=verdict.target, reason=verdict.reason)

    def _error(self, source: str, err: Exception) -> None:
        text = f"{source}: {err}"
        self._errors.append(text)
        if self.metrics:
            self.metrics.errors.labels(source=source).inc()
        if self._changed(f"error-{source}", str(err)):
            self.log.emit("error", source=source, error=str(err))

    def _alert(self, name: str, **details: Any) -> None:
        deliver(self.alerter, name, {"guard": self.guard_id, **details}, stack=self.rb.stack,
                domain=self.rb.outputs.domain, at=self.wall(), dry_run=self.settings.dry_run, log=self.log.emit,
                counted=self.metrics.count_alert if self.metrics else None)

    def _changed(self, topic: str, value: Any) -> bool:
        if topic in self._logged and self._logged[topic] == value:
            return False
        self._logged[topic] = value
        return True


def cloudflare_view_from(rb: Runbook) -> Callable[[str], str]:
    """The primary pool's health as the stack's traffic backend reports it: Cloudflare's pools in
    load-balancer mode (the rehearsal's HAProxy stand-in locally); "absent" when the backend has
    no health (dns-failover mode)."""
    def view(region: str) -> str:
        state = rb.traffic().state()
        health = state.regions[region].healthy if region in state.regions else None
        if health is None:
            return "absent" if state.mode == "dns-failover" else "unknown"
        return "healthy" if health else "unhealthy"
    return view
