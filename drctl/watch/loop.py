"""The watchdog: each cycle probes every region, updates fall/rise, decides (watch/policy.py) and,
holding the lease, repoints the DNS records; it writes one JSON log line per change of state
(region health, where the record points, the decision, the lease, API health), never per probe.

Quiet by design: the records are re-read every `record_refresh` seconds (a manual change is
noticed) and always right before a write; a write happens only when the fresh read still calls
for one. No Cloudflare error ends a cycle early without being logged, counted and retried on the
next cycle, and no exception ends the loop. Quiet is not silent: a switch that keeps failing, or
cycles that keep failing, are counted and alerted (`Streak`: at the 3rd in a row, then the 6th,
12th, ...), and a failed cycle still waits a whole interval before the next, so a fault that
fails every cycle at once cannot make the loop spin.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from drctl.cloud.cloudflare import CloudflareApiError, CloudflareRateLimited, CloudflareRejected
from drctl.cloud.dns_records import DnsFailover, RecordSet, RegionAddresses
from drctl.cloud.origin_probe import UNKNOWN, UP, HealthTracker, ProbeResult, probe_all
from drctl.watch.alerts import Alerter, deliver
from drctl.watch.lease import Lease, LeaseState, replaced
from drctl.watch.metrics import WatchMetrics
from drctl.watch.policy import Decision, RegionHealth, decide, next_probe_delay


@dataclass(frozen=True)
class WatchSettings:
    interval: float
    fall: int
    rise: int
    auto_failback: bool = False
    stability_window: float = 300.0
    dry_run: bool = False
    record_refresh: float = 300.0
    alert_after: int = 3  # failures in a row (of the switch, or of whole cycles) before an alert
    fast_interval: float | None = None  # fast confirm (policy.next_probe_delay); None: off

    def __post_init__(self) -> None:
        # The command line refuses these too; a loop built any other way must not spin on a nan.
        for name in ("interval", "record_refresh"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"WatchSettings.{name} must be a finite number of seconds above 0 (got {value!r})")
        if not (math.isfinite(self.stability_window) and self.stability_window >= 0):
            raise ValueError("WatchSettings.stability_window must be a finite number of seconds, 0 or more "
                             f"(got {self.stability_window!r})")
        if self.fast_interval is not None and not (math.isfinite(self.fast_interval) and self.fast_interval > 0):
            raise ValueError("WatchSettings.fast_interval must be a finite number of seconds above 0, or None "
                             f"(got {self.fast_interval!r})")
        if min(self.fall, self.rise, self.alert_after) < 1:
            raise ValueError("WatchSettings.fall, rise and alert_after must be at least 1")


@dataclass
class Streak:
    """Failures of one kind in a row, and when they are worth an alert: at `alert_after`, then at
    each doubling (3, 6, 12, 24, ...), so a fault that lasts is never silent and never a flood."""

    alert_after: int = 3
    count: int = 0
    last_error: str = ""

    def failed(self, error: str) -> bool:
        """Count one failure; True when this one should be alerted."""
        self.count, self.last_error = self.count + 1, error
        ratio = self.count / self.alert_after
        return self.count >= self.alert_after and ratio.is_integer() and int(ratio) & (int(ratio) - 1) == 0

    def reset(self) -> int:
        """End the streak; return how long it was."""
        count, self.count, self.last_error = self.count, 0, ""
        return count


def run_guarded(cycle: Callable[[], None], failures: Streak, emit: Callable[..., Any],
                alert: Callable[..., None]) -> bool:
    """Run one cycle that no exception escapes (a bug must not silence a long-running service):
    failures in a row are logged with their count (the 1st, 2nd, 4th, 8th, ... and whenever the
    error changes) and alerted (see Streak); the first good cycle after them says how many there
    were. drctl watch and drctl guard run every cycle through this."""
    try:
        cycle()
    except Exception as err:
        error = f"{type(err).__name__}: {err}"
        changed = error != failures.last_error
        should_alert = failures.failed(error)
        count = failures.count
        if changed or count & (count - 1) == 0 or should_alert:
            emit("cycle_failed", error=error, count=count)
        if should_alert:
            alert("cycle_failing", count=count, error=error)
        return False
    failed = failures.reset()
    if failed:
        emit("cycle_ok", failed_before=failed)
    return True


@dataclass
class EventLog:
    """JSON lines, one per event: {"ts": ..., "event": ..., ...}."""

    stream: TextIO
    wall: Callable[[], float] = time.time
    context: dict[str, Any] = field(default_factory=dict)

    def emit(self, event: str, **fields: Any) -> dict[str, Any]:
        doc = {"ts": datetime.fromtimestamp(self.wall(), UTC).isoformat(timespec="milliseconds"),
               "event": event, **self.context, **fields}
        self.stream.write(json.dumps(doc) + "\n")
        self.stream.flush()
        return doc


@dataclass
class CycleReport:
    probes: dict[str, ProbeResult]
    states: dict[str, str]
    records: RecordSet | None = None
    decision: Decision | None = None
    switched: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def record_region(self) -> str | None:
        return self.records.region if self.records else None


class Watchdog:
    def __init__(self, *, stack: str, domain: str, regions: Sequence[RegionAddresses], dns: DnsFailover,
                 probe: Callable[[str], ProbeResult], lease: Lease, settings: WatchSettings, log: EventLog,
                 metrics: WatchMetrics | None = None, alerter: Alerter | None = None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time):
        self.stack, self.domain, self.regions = stack, domain, tuple(regions)
        self.dns, self.probe, self.lease, self.settings = dns, probe, lease, settings
        self.log, self.metrics, self.alerter = log, metrics, alerter or Alerter()
        self.clock, self.wall = clock, wall
        self.trackers = {r.region: HealthTracker(settings.fall, settings.rise) for r in self.regions}
        self._pool = ThreadPoolExecutor(max_workers=len(self.regions), thread_name_prefix="drctl-probe")
        self._records: RecordSet | None = None
        self._records_at = float("-inf")
        self._logged: dict[str, Any] = {}  # last logged value per topic: log on change only
        self._errors: list[CloudflareApiError] = []
        self.switch_failures = Streak(settings.alert_after)
        self.cycle_failures = Streak(settings.alert_after)

    # -- the cycle -----------------------------------------------------------------------------

    def run_cycle(self) -> CycleReport:
        probes = self.probe_round()
        return self.act(probes)

    def probe_round(self) -> dict[str, ProbeResult]:
        results = probe_all(self.probe, {r.region: r.ipv4 for r in self.regions}, self._pool)
        now = self.clock()
        for region, result in results.items():
            self._observe(region, result, now)
        return results

    def act(self, probes: dict[str, ProbeResult]) -> CycleReport:
        """Decide on the current health and, if called for and allowed, repoint the records."""
        self._errors = []
        report = CycleReport(probes, {name: t.state for name, t in self.trackers.items()})
        self._note_lease(self._guard(self.lease.refresh) or self.lease.state())
        records = self._guard(self._current_records)
        if records is not None:
            report.records = records
            report.decision = self._decide(records)
            if report.decision.switch:
                report.decision, report.switched = self._switch(report.decision)
                report.records = self._records or records
            self._note_decision(report.decision)
        report.errors = [str(e) for e in self._errors]
        self._note_api_health()
        return report

    def run(self, stop: threading.Event) -> None:
        """Cycle every `interval` seconds (fixed rate; `fast_interval` while a region confirms a
        failure) until `stop` is set; after a failed cycle, wait a whole interval."""
        self.log.emit("start", regions=[r.region for r in self.regions], holder=self.lease.holder,
                      **asdict(self.settings))
        interval = self.settings.interval
        next_start = self.clock()
        while not stop.is_set():
            ok = self.guarded_cycle()
            next_start += self.next_delay()
            now = self.clock()
            if next_start < now:  # overran (slow API): start again now rather than bunching cycles
                next_start = now
            if not ok:  # whatever failed may fail again at once: never retry it without a pause
                next_start = max(next_start, now + interval)
            stop.wait(next_start - now)

    def next_delay(self) -> float:
        """Seconds from this cycle's start to the next: fast confirm (watch/policy.py)."""
        return next_probe_delay(self.trackers.values(), self.settings.interval, self.settings.fast_interval)

    def guarded_cycle(self) -> bool:
        """One cycle that no exception escapes (run_guarded): a bug must not silence the watchdog."""
        return run_guarded(self.run_cycle, self.cycle_failures, self.log.emit, self._alert)

    def close(self) -> None:
        """Let go of the lease (a standby takes over at once instead of after expiry)."""
        held = self.lease.state().held
        self.lease.release()
        self._pool.shutdown(wait=False)
        self.log.emit("stop", released_lease=held and not self.settings.dry_run)

    # -- steps ---------------------------------------------------------------------------------

    def _observe(self, region: str, result: ProbeResult, now: float) -> None:
        tracker = self.trackers[region]
        before = tracker.state
        changed = tracker.observe(result.ok, now)
        if self.metrics:
            self.metrics.probes.labels(region=region, result="success" if result.ok else "failure").inc()
            self.metrics.probe_seconds.labels(region=region).observe(result.latency)
        if changed:
            if self.metrics:
                self.metrics.region_state.labels(region=region).state(changed)
            self.log.emit("region_state", region=region, state=changed, previous=before,
                          consecutive=tracker.successes if result.ok else tracker.failures, probe=result.describe())

    def _health(self) -> list[RegionHealth]:
        now = self.clock()
        health = []
        for r in self.regions:
            t = self.trackers[r.region]
            health.append(RegionHealth(r.region, t.state, t.up_for(now), failing=t.state == UP and not t.passing))
        return health

    def _decide(self, records: RecordSet) -> Decision:
        return decide(self._health(), records.region, auto_failback=self.settings.auto_failback,
                      stability_window=self.settings.stability_window)

    def _current_records(self) -> RecordSet:
        if self._records is None or self.clock() - self._records_at >= self.settings.record_refresh:
            self._set_records(self.dns.read())
        assert self._records is not None
        return self._records

    def _set_records(self, records: RecordSet) -> None:
        self._records, self._records_at = records, self.clock()
        where = records.by_type()
        if self._changed("record", where):
            if self.metrics:
                self.metrics.point_at(records.region, [r.region for r in self.regions])
            self.log.emit("record", region=records.region, records=where,
                          content={r.type: r.content for r in records.records})

    def _switch(self, planned: Decision) -> tuple[Decision, bool]:
        """Re-read, re-decide, and write only if the fresh read still calls for it."""
        fresh = self._guard(self.dns.read)
        if fresh is None:  # the switch did not happen: it counts as a failed one
            self._switch_failed(self._records.region if self._records else None, planned, self._errors[-1])
            return planned, False
        self._set_records(fresh)
        decision = self._decide(fresh)
        if not decision.switch:
            return decision, False
        source = fresh.region
        if self.settings.dry_run:
            if self._changed("planned", (source, decision.target)):
                self.log.emit("switch_planned", dry_run=True, from_region=source, to_region=decision.target,
                              kind=decision.kind, reason=decision.reason)
            return decision, False
        fence = self.lease.fence()
        if fence is None:
            if self._changed("deferred", (source, decision.target, self.lease.state().holder)):
                self.log.emit("switch_deferred", from_region=source, to_region=decision.target,
                              reason=f"lease {self.lease.state().describe()}: that watchdog acts")
            return decision, False
        try:
            records, result = self.dns.point_to(decision.target or "", fresh, deletes=fence.deletes, posts=fence.posts)
        except CloudflareApiError as err:
            if isinstance(err, CloudflareRejected) and fence.deletes and replaced(err):
                self.lease.lost()  # the lease record we fenced with is gone: someone else holds it
            self._api_failed(err)
            self._switch_failed(source, decision, err)
            return decision, False
        self.lease.confirm(result)
        self._set_records(records)
        self.switch_failures.reset()
        if result is None:
            return decision, False
        self._record_switch(source, decision)
        return decision, True

    def _switch_failed(self, source: str | None, decision: Decision, err: CloudflareApiError) -> None:
        """A switch that keeps failing (a write Cloudflare refuses every time, an API that stays
        down) is an outage nobody sees in the records: alert it, with the count and the error."""
        if self.switch_failures.failed(str(err)):
            fields = {"from_region": source, "to_region": decision.target, "count": self.switch_failures.count,
                      "kind": err.kind, "error": str(err)}
            self.log.emit("switch_failing", **fields)
            self._alert("switch_failing", **fields)

    def _record_switch(self, source: str | None, decision: Decision) -> None:
        at = self.wall()
        if self.metrics:
            self.metrics.switches.labels(from_region=source or "", to_region=decision.target or "",
                                         kind=decision.kind or "").inc()
            self.metrics.last_switch.set(at)
        self.log.emit("switch", from_region=source, to_region=decision.target, kind=decision.kind,
                      reason=decision.reason)
        self._alert("switch", from_region=source, to_region=decision.target, kind=decision.kind, reason=decision.reason)

    def _note_decision(self, decision: Decision) -> None:
        if decision.action == "switch":
            return
        self.switch_failures.reset()  # no switch called for any more: a later failure starts afresh
        for topic in ("planned", "deferred"):  # the next planned/deferred switch is news again
            self._logged.pop(topic, None)
        if not self._changed("decision", (decision.action, decision.target)):
            return
        self.log.emit("decision", action=decision.action, reason=decision.reason)
        if decision.action in ("all_down", "stranded"):
            self._alert(decision.action, region=self._records.region if self._records else None,
                        reason=decision.reason)

    def _note_lease(self, state: LeaseState) -> None:
        if self.metrics:
            self.metrics.lease_held.set(1 if state.held else 0)
        if self._changed("lease", (state.held, state.holder)):
            self.log.emit("lease", held=state.held, holder=state.holder, state=state.describe())

    def _note_api_health(self) -> None:
        signature = sorted({(e.kind, e.operation) for e in self._errors})
        if not self._changed("api", signature):
            return
        if signature:
            for err in self._errors:
                self.log.emit("api_error", kind=err.kind, operation=err.operation, status=err.status, error=str(err))
        else:
            self.log.emit("api_ok")

    def _guard(self, step: Callable[[], Any]) -> Any:
        """Run one API step; on a Cloudflare error count it, keep it for the report, return None."""
        try:
            return step()
        except CloudflareApiError as err:
            self._api_failed(err)
            return None

    def _api_failed(self, err: CloudflareApiError) -> None:
        self._errors.append(err)
        if self.metrics and not (isinstance(err, CloudflareRateLimited) and not err.sent):
            self.metrics.api_errors.labels(kind=err.kind).inc()

    def _alert(self, name: str, **details: Any) -> None:
        deliver(self.alerter, name, details, stack=self.stack, domain=self.domain, at=self.wall(),
                dry_run=self.settings.dry_run, log=self.log.emit, counted=self.metrics.count_alert if self.metrics else None)

    def _changed(self, topic: str, value: Any) -> bool:
        if topic in self._logged and self._logged[topic] == value:
            return False
        self._logged[topic] = value
        return True

    @property
    def settled(self) -> bool:
        """Every region has met its fall or rise threshold at least once."""
        return all(t.state != UNKNOWN for t in self.trackers.values())
