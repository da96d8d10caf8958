"""A DR drill: the seed's five failover test steps and four failback steps, run end to end, timed,
with exact RTO and RPO, and always put back.

    preflight        status healthy and replica lag within objectives.rpoSeconds (else refuse;
                     --force overrides and the report says so)
    writer           synthetic orders start (drctl/drill/orders.py) and are seen landing in the primary
    media copy       (media buckets, a fault that may make the promotion unplanned) the DR region's
                     copy marker must cover the drill's upload, bounded by objectives.mediaRpoSeconds
    fault            the primary region fails (drctl/drill/faults.py)
    detection        traffic leaves the primary region (pool health / DNS), bounded by the RTO
    promote          the DR region's database is promoted by the runbook's `promote`
    verify DR        orders land in the DR region; orders the old primary acknowledged and the
                     new one lacks are counted (RPO)
    restore          the fault is undone (the seed's failback step 1)
    failback         the runbook's `failback` makes the original region primary again
    verify           orders land in the original region, every acknowledged order is accounted
                     for, traffic and replication are back

Whatever happens (a step fails, the drill runs past --max-duration, the writer fails for longer
than --max-write-outage, Ctrl-C), the restore path runs: faults undone, and a promotion that was
made is failed back. The report lists what was restored, and what could not be.

The drill drives a stack through three interfaces and nothing else: the runbook (`DrillRunbook`:
health, promote, failback, orders present), the traffic backend and the fault injector. A real
drill gets Cloudflare and the Linode API; `drctl rehearse` gets the HAProxy stand-ins.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from drctl.cloud.object_storage import ObjectStorageError
from drctl.cloud.origin_probe import DOWN, UP, HealthTracker, ProbeResult
from drctl.cloud.traffic import TrafficBackend
from drctl.drill.faults import ALL_REGIONS_DOWN, WEB_TIER_FAULTS, FaultInjector
from drctl.drill.media import MediaProbe, drill_object
from drctl.drill.orders import OrderSink, OrderWriter, Write
from drctl.drill.report import DrillReport, acknowledged_by
from drctl.stack.outputs import StackOutputs


class StopDrill(Exception):
    """A stop condition fired; the message says which."""


class PreflightRefused(Exception):
    """The stack is not fit for a drill and --force was not given."""


@dataclass(frozen=True)
class Health:
    healthy: bool
    lag_seconds: float | None  # the worst replica's, from the heartbeat
    problems: tuple[str, ...] = ()
    primary: str | None = None  # the region whose database is primary now


class DrillRunbook(Protocol):
    """What the drill needs of the runbook (drctl/drill/runbook_adapter.py binds it to status, promote and
    failback)."""

    def health(self) -> Health: ...

    def prepare(self) -> None:
        """Make the orders table exist on the primary (idempotent)."""
        ...

    def promote(self, region: str) -> dict[str, Any]: ...

    def failback(self, region: str) -> dict[str, Any]: ...

    def orders_present(self, region: str, seqs: set[int]) -> set[int]: ...


@dataclass(frozen=True)
class DrillOptions:
    fault: str
    target: str | None = None  # the region to promote (default: the second in failover order)
    max_duration: float = 1800.0
    max_write_outage: float | None = None  # default: twice the RTO objective
    settle_seconds: float = 10.0  # orders written before the fault, and observed after each switch
    poll_seconds: float = 5.0  # traffic-state polls (Cloudflare allows 1200 requests per 5 minutes)
    force: bool = False
    writer_rate: float | None = 20.0  # orders/s; None: as fast as the path allows
    writer_threads: int = 2


def preflight_problems(outputs: StackOutputs, health: Health) -> list[str]:
    """Why this stack is not fit for a drill now (empty: it is): status healthy, replica lag known
    and within objectives.rpoSeconds, the primary database in the first region."""
    rpo, primary = outputs.objectives.rpo_seconds, outputs.regions[0].region
    problems = list(health.problems)
    if not health.healthy and not problems:
        problems.append("status is not healthy")
    if health.lag_seconds is None:
        problems.append("replica lag unknown (no heartbeat on a replica)")
    elif health.lag_seconds > rpo:
        problems.append(f"replica lag {health.lag_seconds:.1f} s exceeds objectives.rpoSeconds {rpo} s")
    if health.primary not in (None, primary):
        problems.append(f"the primary database is in {health.primary}, not {primary}: fail back first")
    return problems


class Drill:
    def __init__(self, outputs: StackOutputs, runbook: DrillRunbook, traffic: TrafficBackend,
                 faults: FaultInjector, sink: OrderSink, options: DrillOptions, *, kind: str = "drill",
                 objectives_note: str = "", say: Callable[[str], None] = print,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 hooks: dict[str, Callable[[], None]] | None = None,
                 origin_probe: Callable[[], ProbeResult] | None = None, media: MediaProbe | None = None):
        self.outputs, self.runbook, self.traffic, self.faults = outputs, runbook, traffic, faults
        self.sink, self.options, self.say, self.clock, self.sleep = sink, options, say, clock, sleep
        # "before-media-upload", "before-fault", "after-promotion": tests and the benchmark look in here
        self.hooks = hooks or {}
        # drctl watch's HTTPS probe of the primary region's NodeBalancer, with the monitor's fall/rise:
        # shows when the fault became visible from outside, and that the region answers again at the end.
        self.origin_probe = origin_probe
        # The media check (drctl/drill/media.py), when the stack has media buckets.
        self.media = media if outputs.media is not None else None
        self._media: dict[str, Any] = {}
        monitor = outputs.monitor
        self._tracker = HealthTracker(fall=monitor.fall, rise=monitor.rise)
        if options.fault == ALL_REGIONS_DOWN:
            raise ValueError(f"{ALL_REGIONS_DOWN} is no failover: drctl/drill/outage.py drills it")
        self.primary = outputs.regions[0].region
        self.target = options.target or outputs.regions[1].region
        outputs.region(self.target, "--target")  # refuse a region the stack does not have, before anything starts
        if self.target == self.primary:
            raise ValueError(f"--target must be a DR region, not the primary {self.primary}")
        self.max_write_outage = options.max_write_outage or 2.0 * outputs.objectives.rto_seconds
        self.report = DrillReport(
            kind=kind, stack=outputs.stack, primary=self.primary, target=self.target, fault=options.fault,
            objectives={"rtoSeconds": outputs.objectives.rto_seconds, "rpoSeconds": outputs.objectives.rpo_seconds,
                        **({"mediaRpoSeconds": outputs.media.media_rpo_seconds} if self.media else {}),
                        **({"note": objectives_note} if objectives_note else {})},
            options={"fault": options.fault, "force": options.force, "maxDurationSeconds": options.max_duration,
                     "maxWriteOutageSeconds": self.max_write_outage, "writerRate": options.writer_rate},
            clock=clock, say=say,
        )
        self.writer: OrderWriter | None = None
        self._started = time.monotonic()  # run() starts the clock again; a step run on its own has one too
        self._times: dict[str, float] = {}
        self._present_after_promotion: set[int] | None = None
        self._promoted = self._failed_back = False
        self._promotion_mode: str | None = None

    # --- the run -----------------------------------------------------------------------------------
    def run(self) -> DrillReport:
        self._started = time.monotonic()
        step = "preflight"
        try:
            self._preflight()
            step = "writer"
            self._start_writer()
            if self.waits_for_media_copy():
                step = "media copy"
                self.wait_for_media_copy()
            step = "fault"
            self._hook("before-fault")
            self._timed("fault", lambda: self.faults.inject(self.options.fault, self.primary), mark="fault")
            step = "detection"
            self._detect()
            step = "promote"
            self._promote()
            self._hook("after-promotion")
            step = "verify DR"
            self._verify_target()
            step = "restore"
            self.report.restored += self._restore_faults()
            step = "failback"
            self._failback()
            step = "verify"
            self._verify_primary()
        except (Exception, KeyboardInterrupt) as err:
            record_stop(self.report, step, err)
        finally:
            self._restore_path()
        return self.report

    # --- steps -------------------------------------------------------------------------------------
    def preflight_problems(self, health: Health) -> list[str]:
        """Why this stack is not fit for a drill now (empty: it is)."""
        return preflight_problems(self.outputs, health)

    def _preflight(self) -> None:
        started = self.clock()
        health = self.runbook.health()
        problems = self.preflight_problems(health)
        took = self.clock() - started
        if problems and not self.options.force:
            self.report.log("preflight", "failed", "; ".join(problems), took)
            raise PreflightRefused("; ".join(problems) + " (pass --force to drill anyway)")
        if problems:
            self.report.options["forcedPast"] = problems
            self.report.log("preflight", "ok", f"FORCED past: {'; '.join(problems)}", took)
        else:
            lag = f"{health.lag_seconds:.2f} s" if health.lag_seconds is not None else "n/a"
            self.report.log("preflight", "ok", f"healthy, replica lag {lag} "
                                               f"(objective {self.outputs.objectives.rpo_seconds} s)", took)

    def _start_writer(self) -> None:
        self.runbook.prepare()
        self.writer = OrderWriter(self.sink, rate=self.options.writer_rate, threads=self.options.writer_threads,
                                  clock=self.clock).start()
        first = self._wait_for_write(self.primary, since=0.0, timeout=max(30.0, self.options.settle_seconds),
                                     what=f"the first order in {self.primary}")
        self.report.log("writer", "ok", f"orders landing in {self.primary} (first: #{first.seq} via {first.server})")
        if self.media is not None:
            self.upload_media()
        self._pause(self.options.settle_seconds)

    def upload_media(self) -> None:
        """Put the drill's sequence-numbered media file in the primary's bucket (before the fault)."""
        self._hook("before-media-upload")
        seq = int(self.clock() * 1000)
        name, body = drill_object(self.outputs.stack, seq)
        started = self.clock()
        self.media.upload(self.primary, name, body)
        self._media = {"name": name, "body": body, "uploadedAt": self.clock()}
        self.report.log("media upload", "ok", f"uploads/{name} in {self.primary}'s bucket", self.clock() - started)

    def waits_for_media_copy(self) -> bool:
        """Whether the fault may make the promotion unplanned (it does more than fail the web tier),
        so the drill's upload must be in the DR copy before it: a planned promotion copies itself."""
        return bool(self._media) and self.options.fault not in WEB_TIER_FAULTS

    def wait_for_media_copy(self) -> None:
        """Before a fault that may make the promotion unplanned: wait until the DR region's copy
        covers the drill's upload (its marker's source heartbeat is past the upload), at most the
        media objective from the upload. An unplanned failover stops the copying, and an upload the
        copy has not taken yet may be missing in DR within the objective; waiting here makes the
        check test the copy and the serving path, not that race, and the wait is the replication
        part of the media RPO, measured. (A planned promotion copies the media itself.)"""
        uploaded, objective = self._media["uploadedAt"], self.outputs.media.media_rpo_seconds
        deadline, every = uploaded + objective, max(1.0, self.options.poll_seconds)
        started, problem = self.clock(), ""
        while True:
            try:
                covered = (self.media.copied_until(self.target) or 0.0) >= uploaded
                problem = ""
            except (ObjectStorageError, KeyError, TypeError, ValueError) as err:
                covered, problem = False, f"; its marker cannot be read: {err}"
            now = self.clock()
            if covered or now >= deadline:
                break
            self._check_stop()
            self.say(f"  waiting for {self.target}'s media copy to take the drill's upload: {now - uploaded:.0f} s "
                     f"since the upload, at most {objective} s{problem}")
            self.sleep(min(every, max(0.0, deadline - now)))
        self._media["replicatedAfterSeconds"] = round(now - uploaded, 3) if covered else None
        self.report.log("media copy", "ok" if covered else "failed",
                        f"{self.target}'s copy has the drill's upload {now - uploaded:.1f} s after it (objective "
                        f"{objective} s)" if covered else
                        f"{self.target}'s copy did not take the drill's upload within {objective} s{problem}",
                        now - started)

    def check_media(self) -> None:
        """Wait, up to the media objective from the upload, until the DR region serves the file."""
        name, body, uploaded = self._media["name"], self._media["body"], self._media["uploadedAt"]
        deadline = uploaded + self.outputs.media.media_rpo_seconds
        while True:
            served = self.media.served(self.target, name) == body
            now = self.clock()
            if served or now >= deadline:
                break
            self._check_stop()
            self.sleep(min(self.options.poll_seconds, max(0.0, deadline - now)))
        self._media["servedAfterSeconds"] = round(now - uploaded, 3) if served else None
        # The drill first looks after the switch: served then, but past the objective, is a miss too.
        within = served and now - uploaded <= self.outputs.media.media_rpo_seconds
        self.report.log("media in DR", "ok" if within else "failed",
                        f"/wp-content/uploads/{name} served by {self.target} {now - uploaded:.1f} s after upload"
                        if served else f"not served by {self.target} within {self.outputs.media.media_rpo_seconds} s")

    def _detect(self) -> None:
        """Until the load balancer (or the DNS) stops sending traffic to the primary region; the
        origin probe meanwhile says when the failure became visible at the NodeBalancer."""
        fault_at = self._times["fault"]
        deadline = time.monotonic() + max(self.outputs.objectives.rto_seconds, self.options.poll_seconds * 3)
        while True:
            self._check_stop()
            self._probe_origin(DOWN, "origin down")
            state = self.traffic.state()
            if state.serving != self.primary:
                self._times["detected"] = self.clock()
                self.report.log("detection", "ok", f"traffic left {self.primary} (now: {state.serving or 'no region'})",
                                self._times["detected"] - fault_at)
                if self.origin_probe is not None and "origin down" not in self._times:
                    self.report.log("origin probe", "info", f"{self.primary}'s NodeBalancer still answers: the "
                                                            "fault is in the load balancer, not the region")
                return
            if time.monotonic() > deadline:
                detail = state.regions.get(self.primary)
                raise StopDrill(f"traffic still goes to {self.primary} {self.clock() - fault_at:.1f} s after the "
                                f"fault ({detail.detail if detail else 'no detail'}): detection failed")
            self.sleep(self.options.poll_seconds)

    def _promote(self) -> None:
        self._check_stop()
        detail = self._timed("promote", lambda: self.runbook.promote(self.target), mark="promotion")
        self._promoted = True
        self._promotion_mode = (detail or {}).get("mode")
        self._times["promoted"] = self.clock()
        # The new primary took writes from the moment the runbook made it writable, which may be
        # before promote returned (it then moves traffic and verifies).
        self._times["writable"] = (detail or {}).get("writableAt") or self._times["promoted"]

    def _verify_target(self) -> None:
        first = self._wait_for_write(self.target, since=self._times["writable"] - 1e-3,
                                     timeout=self.max_write_outage, what=f"an order in {self.target}")
        # Every order the old primary acknowledged before the switch, looked up in the new primary.
        acknowledged = acknowledged_by(self.writer.snapshot(), self.primary, first.finished)
        self._times["checked_before"] = first.finished
        self._present_after_promotion = self.runbook.orders_present(self.target, {w.seq for w in acknowledged})
        missing = len(acknowledged) - len(self._present_after_promotion)
        self.report.log("verify DR", "ok", f"orders land in {self.target} (first: #{first.seq} via {first.server}); "
                                           f"{missing} of {len(acknowledged)} acknowledged orders missing there")
        if self._media:
            self.check_media()
        self._pause(self.options.settle_seconds)

    def _failback(self) -> None:
        self._check_stop()
        self._timed("failback", lambda: self.runbook.failback(self.primary))
        self._failed_back = True
        self._times["failed_back"] = self.clock()

    def _verify_primary(self) -> None:
        first = self._wait_for_write(self.primary, since=self._times["failed_back"] - 1e-3,
                                     timeout=self.max_write_outage, what=f"an order in {self.primary} after failback")
        self.report.log("verify", "ok", f"orders land in {self.primary} again (first: #{first.seq} via {first.server})")
        if self.origin_probe is not None:
            deadline = time.monotonic() + self.max_write_outage
            while not self._probe_origin(UP, "origin up"):
                if time.monotonic() > deadline:
                    raise StopDrill(f"{self.primary}'s NodeBalancer does not answer its health check after failback")
                self._pause(self.options.poll_seconds)
        self._pause(self.options.settle_seconds)

    # --- the restore path and the verdict ---------------------------------------------------------
    def _restore_path(self) -> None:
        if self.writer is not None:
            self.writer.stop()
        if self.faults.pending:
            self.report.restored += self._restore_faults()
        if self._promoted and not self._failed_back:
            try:
                self._timed("failback (restore)", lambda: self.runbook.failback(self.primary))
                self._failed_back = True
                self.report.restored.append(f"failed back: {self.primary} is primary again")
            except BaseException as err:  # a second Ctrl-C included: say what is left to do
                self.report.restored.append(f"NOT restored: {self.target} is still primary; run "
                                            f"`drctl failback --to {self.primary}` ({_describe(err)})")
        self._final_checks()
        self.report.finish()

    def _restore_faults(self) -> list[str]:
        started = self.clock()
        restored = self.faults.restore()
        if restored:
            failed = any(line.startswith("NOT restored") for line in restored)
            self.report.log("restore", "failed" if failed else "ok", "; ".join(restored), self.clock() - started)
        return restored

    def _final_checks(self) -> None:
        writes = self.writer.snapshot() if self.writer else []
        t = self._times
        self.report.measure_writes(writes, promoted_at=t.get("writable"), promotion_started=t.get("promotion"),
                                   fault_at=t.get("fault"), detected_at=t.get("detected"),
                                   present_after_promotion=self._present_after_promotion,
                                   checked_before=t.get("checked_before"))
        if self._media:
            self.report.measured["mediaServedSeconds"] = self._media.get("servedAfterSeconds")
            if "replicatedAfterSeconds" in self._media:
                self.report.measured["mediaReplicatedSeconds"] = self._media["replicatedAfterSeconds"]
        if self.writer is None:  # refused before anything changed
            return
        if self.report.aborted is not None:  # no verdict on objectives, but say where things stand
            return self._check_back_home()
        m, o = self.report.measured, self.report.objectives
        self.report.check("RTO within objective", m.get("rtoSeconds") is not None and m["rtoSeconds"] <= o["rtoSeconds"],
                          f"{m.get('rtoSeconds')} s measured, objective {o['rtoSeconds']} s")
        self.report.check("RPO within objective", m.get("rpoSeconds") is not None and m["rpoSeconds"] <= o["rpoSeconds"],
                          f"{m.get('rpoSeconds')} s of acknowledged orders lost ({m.get('ordersLost')} orders), "
                          f"objective {o['rpoSeconds']} s")
        if self._media:
            served = m.get("mediaServedSeconds")
            copied = "mediaReplicatedSeconds" not in m or m["mediaReplicatedSeconds"] is not None
            self.report.check("media RPO within objective",
                              copied and served is not None and served <= o["mediaRpoSeconds"],
                              (f"the drill's media object served by {self.target} {served} s after its upload, "
                               f"objective {o['mediaRpoSeconds']} s" if served is not None else
                               f"the drill's media object not served by {self.target} within {o['mediaRpoSeconds']} s")
                              + ("" if copied else f"; {self.target}'s copy did not take it within the objective")
                              + (f"; copied to {self.target} {m['mediaReplicatedSeconds']} s after its upload"
                                 if copied and m.get("mediaReplicatedSeconds") is not None else ""))
        if self._promotion_mode == "planned":
            self.report.check("planned promotion lost no order", m.get("ordersLost") == 0,
                              f"{m.get('ordersLost')} acknowledged orders missing after a planned promotion")
        self._check_all_orders(writes)
        self._check_back_home()

    def _check_all_orders(self, writes: list[Write]) -> None:
        """Every acknowledged order is in the primary at the end, but for those counted as lost."""
        acknowledged = {w.seq for w in writes if w.ok}
        lost = set(self.report.measured.get("lostSequenceNumbers", ()))
        if self.report.measured.get("ordersLost", 0) > len(lost):  # the report keeps the first 200
            return self.report.check("every acknowledged order accounted for", False,
                                     "too many orders lost to check one by one")
        try:
            present = self.runbook.orders_present(self.primary, acknowledged)
        except Exception as err:
            return self.report.check("every acknowledged order accounted for", False, _describe(err))
        unaccounted = sorted(acknowledged - present - lost)
        self.report.check("every acknowledged order accounted for", not unaccounted,
                          f"{len(acknowledged)} acknowledged, {len(lost)} lost at promotion, "
                          f"{len(unaccounted)} missing from {self.primary} besides"
                          + (f" (first: {unaccounted[:10]})" if unaccounted else ""))

    def _check_back_home(self) -> None:
        check_back_home(self.report, self.outputs, self.traffic, self.runbook, self.options.poll_seconds, self.sleep,
                        after="failback")

    # --- helpers -----------------------------------------------------------------------------------
    def _timed(self, name: str, fn: Callable[[], Any], mark: str | None = None) -> Any:
        started = self.clock()
        if mark:
            self._times[mark] = started
        detail = fn()
        self.report.log(name, "ok", detail, self.clock() - started)
        return detail

    def _probe_origin(self, wanted: str, mark: str) -> bool:
        """One probe of the primary's NodeBalancer; log (once) when it reaches `wanted`."""
        if self.origin_probe is None:
            return False
        result = self.origin_probe()
        self._tracker.observe(result.ok, time.monotonic())
        if self._tracker.state != wanted:
            return False
        if mark not in self._times:
            self._times[mark] = self.clock()
            since = self._times["fault"] if wanted == DOWN else self._times["failed_back"]
            self.report.log("origin probe", "ok", f"{self.primary}'s NodeBalancer {'down' if wanted == DOWN else 'up'} "
                                                  f"({result.describe()})", self._times[mark] - since)
        return True

    def _hook(self, name: str) -> None:
        if name in self.hooks:
            self.hooks[name]()

    def _check_stop(self) -> None:
        elapsed = time.monotonic() - self._started
        if elapsed > self.options.max_duration:
            raise StopDrill(f"the drill ran past --max-duration {self.options.max_duration:.0f} s")
        if self.writer is not None:
            if self.writer.crashed is not None:
                raise StopDrill(f"the order writer crashed ({_describe(self.writer.crashed)})")
            failing = self.writer.failing_for()
            if failing > self.max_write_outage:
                raise StopDrill(f"orders have been failing for {failing:.1f} s, beyond --max-write-outage "
                                f"{self.max_write_outage:.0f} s")

    def _stop_reason(self) -> str | None:
        try:
            self._check_stop()
        except StopDrill as err:
            return str(err)
        return None

    def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._check_stop()
            self.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    def _wait_for_write(self, region: str, since: float, timeout: float, what: str) -> Write:
        write = self.writer.wait_for_success(lambda w: w.region == region and w.finished >= since, timeout,
                                             should_stop=self._stop_reason)
        if write is None:
            self._check_stop()  # a stop condition explains it better than a timeout
            raise StopDrill(f"no acknowledged order in {region} within {timeout:.0f} s: waited for {what}")
        return write


def check_back_home(report: DrillReport, outputs: StackOutputs, traffic: TrafficBackend, runbook: DrillRunbook,
                    poll_seconds: float, sleep: Callable[[float], None], *, after: str, wait: bool = True) -> None:
    """Traffic and replication back as before the drill. A monitor needs up to its worst-case
    detection time to see the returned region healthy again, and a DR region's media copy, stale
    since the promotion, up to the media objective to be fresh again (the primary's agent must
    see its database writable, then the DR region's next copy run), so this waits that long at
    most (`wait=False`: look once, when something is known to be still broken)."""
    primary = outputs.regions[0].region
    longest = max(outputs.objectives.worst_case_detection_seconds, 3 * poll_seconds,
                  outputs.media.media_rpo_seconds if outputs.media is not None else 0)
    deadline = time.monotonic() + (longest if wait else 0.0)
    while True:
        try:
            state, health = traffic.state(), runbook.health()
        except Exception as err:
            return report.check(f"back to normal after {after}", False, _describe(err))
        settled = state.serving == primary and health.healthy and health.primary == primary
        if settled or time.monotonic() > deadline:
            break
        sleep(poll_seconds)
    report.check("traffic back in the primary region", state.serving == primary,
                 f"serving: {state.serving or 'no region'}")
    report.check(f"replication healthy after {after}", health.healthy and health.primary == primary,
                 f"primary database in {health.primary}; " + ("; ".join(health.problems) or "healthy"))


def _describe(err: BaseException) -> str:
    return str(err) or type(err).__name__


def record_stop(report: DrillReport, step: str, err: BaseException) -> None:
    """How a drill that stopped before its end says so in its report, at the step it was in: a
    refused preflight, a stop the drill decided (StopDrill), Ctrl-C, or a step that failed. The
    failover drill and the full-outage drill (outage.py) both end this way."""
    if isinstance(err, PreflightRefused):
        report.aborted = f"preflight refused: {err}"
    elif isinstance(err, StopDrill):
        report.log(step, "failed", f"stopped: {err}")
        report.aborted = str(err)
    elif isinstance(err, KeyboardInterrupt):
        report.log(step, "failed", "interrupted (Ctrl-C)")
        report.aborted = "interrupted (Ctrl-C)"
    else:
        report.log(step, "failed", _describe(err))
        report.aborted = f"step '{step}' failed: {_describe(err)}"

