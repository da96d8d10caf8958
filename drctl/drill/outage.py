"""`--fault all-regions-down`: the drill of a full outage. No failover can help when every region is
down; what shoppers get then is the fallback page from Cloudflare's edge (components/fallback_page.py),
and what counts is that they get it, and how soon the shop is back once one region returns.

    preflight        as the failover drill's (status healthy, lag within objectives), and the
                     stack has a fallback page
    edge before      a shopper's GET through the edge gets the shop
    fault            every region's NodeBalancer nodes set to reject, region by region (faults.py)
    fallback page    shopper GETs through the edge until one gets the page: 503, Retry-After,
                     Cache-Control, the Worker's marker header, the page's <title>
    outage           for --settle seconds every shopper GET must get the page; the health path,
                     fetched the same way, must get the origin's own answer, never the page
    restore          the primary region's nodes are put back (only it)
    recovery         shopper GETs until one gets the shop: the recovery time is from the region
                     being restored to that first good answer through the edge
    restore          the other regions are put back; traffic and replication must be as before

Whatever happens (a step fails, --max-duration, Ctrl-C), every region is put back. Nothing is
promoted and no order is written: the databases are not touched, only the web tier's front door.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from drctl.cloud.edge_probe import EdgeAnswer
from drctl.cloud.traffic import TrafficBackend
from drctl.drill.drill import (
    DrillOptions,
    DrillRunbook,
    PreflightRefused,
    StopDrill,
    check_back_home,
    preflight_problems,
    record_stop,
)
from drctl.drill.faults import ALL_REGIONS_DOWN, FaultInjector
from drctl.drill.report import DrillReport
from drctl.stack.outputs import StackOutputs

MAX_EDGE_POLL_SECONDS = 1.0  # shopper probes cost no API call: at least once a second, for the recovery time


class OutageDrill:
    def __init__(self, outputs: StackOutputs, runbook: DrillRunbook, traffic: TrafficBackend, faults: FaultInjector,
                 edge: Callable[[str], EdgeAnswer], options: DrillOptions, *, kind: str = "drill",
                 objectives_note: str = "", say: Callable[[str], None] = print,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 hooks: dict[str, Callable[[], None]] | None = None):
        """`edge(path)`: one shopper's GET of `path` through the edge (drctl/cloud/edge_probe.py)."""
        self.outputs, self.runbook, self.traffic, self.faults, self.edge = outputs, runbook, traffic, faults, edge
        self.options, self.say, self.clock, self.sleep = options, say, clock, sleep
        self.hooks = hooks or {}  # "before-fault", "during-outage", "after-recovery": tests look in here
        self.primary = outputs.regions[0].region
        self.edge_poll = min(options.poll_seconds, MAX_EDGE_POLL_SECONDS)
        self.report = DrillReport(
            kind=kind, stack=outputs.stack, primary=self.primary, target=self.primary, fault=ALL_REGIONS_DOWN,
            objectives={"rtoSeconds": outputs.objectives.rto_seconds, "rpoSeconds": outputs.objectives.rpo_seconds,
                        **({"note": objectives_note} if objectives_note else {})},
            options={"fault": ALL_REGIONS_DOWN, "force": options.force, "maxDurationSeconds": options.max_duration,
                     "settleSeconds": options.settle_seconds, "edgePollSeconds": self.edge_poll},
            clock=clock, say=say,
        )
        self._started = 0.0
        self._times: dict[str, float] = {}
        self._answers: dict[str, Any] = {}  # what the checks read

    # --- the run -----------------------------------------------------------------------------------
    def run(self) -> DrillReport:
        self._started = time.monotonic()
        step = "preflight"
        try:
            self._preflight()
            step = "edge before"
            self._edge_serves_the_shop()
            step = "fault"
            self._hook("before-fault")
            started = self._times["fault"] = self.clock()
            done = self.faults.inject(ALL_REGIONS_DOWN, self.primary)
            self.report.log("fault", "ok", f"every region down: {done}", self.clock() - started)
            step = "fallback page"
            self._wait_for_the_page()
            step = "outage"
            self._watch_the_outage()
            step = f"restore {self.primary}"
            self._restore_the_primary()
            step = "recovery"
            self._wait_for_the_shop()
            self._hook("after-recovery")
            step = "restore"
            self._restore_faults()
        except (Exception, KeyboardInterrupt) as err:
            record_stop(self.report, step, err)
        finally:
            self._restore_path()
        return self.report

    # --- steps -------------------------------------------------------------------------------------
    def preflight_problems(self, health) -> list[str]:
        problems = preflight_problems(self.outputs, health)
        if self.outputs.fallback_page is None:
            problems.append("the stack has no fallback page (traffic.fallbackPage.enabled is false, or its outputs "
                            "predate it): in a full outage shoppers would get Cloudflare's error page")
        return problems

    def _preflight(self) -> None:
        started = self.clock()
        health = self.runbook.health()
        problems = self.preflight_problems(health)
        took = self.clock() - started
        if self.outputs.fallback_page is None:  # nothing to drill: --force cannot help
            self.report.log("preflight", "failed", "; ".join(problems), took)
            raise PreflightRefused("; ".join(problems))
        if problems and not self.options.force:
            self.report.log("preflight", "failed", "; ".join(problems), took)
            raise PreflightRefused("; ".join(problems) + " (pass --force to drill anyway)")
        if problems:
            self.report.options["forcedPast"] = problems
        detail = f"FORCED past: {'; '.join(problems)}" if problems else \
            f"healthy; fallback page: Worker {self.outputs.fallback_page.script_name}"
        self.report.log("preflight", "ok", detail, took)

    def _edge_serves_the_shop(self) -> None:
        answer = self.edge("/")
        if not answer.is_shop:
            raise StopDrill(f"the edge does not serve the shop before the fault ({answer.describe()}): nothing to "
                            "compare the outage with")
        self.report.log("edge before", "ok", f"a shopper gets the shop: {answer.describe()}", answer.latency)

    def _wait_for_the_page(self) -> None:
        """Until a shopper gets the page; bounded by the RTO objective (the Worker answers it for the
        first request whose origin fails, so this is usually the first probe)."""
        fault_at = self._times["fault"]
        deadline = time.monotonic() + max(self.outputs.objectives.rto_seconds, 3 * self.edge_poll)
        others: list[str] = []
        while True:
            self._check_stop()
            answer = self.edge("/")
            if answer.is_fallback:
                break
            others.append(answer.describe())
            if time.monotonic() > deadline:
                raise StopDrill(f"no fallback page through the edge {self.clock() - fault_at:.1f} s after every region "
                                f"went down (last answer: {answer.describe()})")
            self.sleep(self.edge_poll)
        self._answers["page"] = answer
        self._times["page"] = answer.at
        before = f"; before it: {len(others)} other answer(s), last {others[-1]}" if others else ""
        self.report.log("fallback page", "ok", f"{answer.describe()}, title {answer.title!r}{before}",
                        answer.at - fault_at)

    def _watch_the_outage(self) -> None:
        """Every shopper gets the page for --settle seconds, and until the load balancer has seen
        every region down (as it has in a real outage, so the recovery that follows includes its
        monitor's way back up); the health path gets the origin's answer, never the page."""
        self._hook("during-outage")
        answers = [self._answers["page"]]
        o = self.outputs.objectives
        settled = time.monotonic() + self.options.settle_seconds
        # The monitor takes its worst-case detection time to see a region down; the RTO beyond that.
        give_up = time.monotonic() + max(self.options.settle_seconds, o.worst_case_detection_seconds + o.rto_seconds)
        next_state, seen_down = 0.0, None
        while True:
            self._check_stop()
            if seen_down is None and time.monotonic() >= next_state:
                seen_down = self._balancer_sees_every_region_down()
                next_state = time.monotonic() + self.options.poll_seconds
            now = time.monotonic()
            if now >= settled and (seen_down is not None or now >= give_up):
                break
            self.sleep(self.edge_poll)
            answers.append(self.edge("/"))
        health_path = self.outputs.health_path
        health = self._answers["health"] = self.edge(health_path)
        self._answers["outage"] = answers
        pages = sum(a.is_fallback for a in answers)
        others = sorted({a.describe() for a in answers if not a.is_fallback})
        if seen_down is not None:
            self._answers["balancerDownAfter"] = seen_down - self._times["fault"]
            balancer = f"; the load balancer saw every region down {seen_down - self._times['fault']:.2f} s after the fault"
        else:
            balancer = ("; the traffic backend did not report every region down (unreadable, or no pool health to "
                        "read: dns-failover)")
        self.report.log("outage", "ok" if pages == len(answers) else "failed",
                        f"{pages} of {len(answers)} shopper requests got the page"
                        + (f" (others: {', '.join(others[:3])})" if others else "")
                        + f"; {health_path} got {health.describe()}{balancer}",
                        self.clock() - self._times["page"])

    def _balancer_sees_every_region_down(self) -> float | None:
        """When the traffic backend reports no region healthy (its clock), else None. In dns-failover
        mode it reports no health at all: then only --settle counts."""
        try:
            state = self.traffic.state()
        except Exception:
            return None
        health = [r.healthy for r in state.regions.values()]
        return self.clock() if health and all(h is False for h in health) else None

    def _restore_the_primary(self) -> None:
        started = self.clock()
        lines = self.faults.restore(self.primary)
        self.report.restored += lines
        self._times["restored"] = self.clock()
        failed = [line for line in lines if line.startswith("NOT restored")]
        self.report.log(f"restore {self.primary}", "failed" if failed or not lines else "ok",
                        "; ".join(lines) or "nothing to restore", self._times["restored"] - started)
        if failed or not lines:
            raise StopDrill(f"{self.primary} could not be brought back: {'; '.join(failed) or 'nothing was down'}")

    def _wait_for_the_shop(self) -> None:
        """Until a shopper gets the shop again: the recovery time. The load balancer sees the region
        healthy after its monitor's consecutiveUp probes, so this waits the RTO objective and the
        worst-case detection time at most."""
        restored = self._times["restored"]
        o = self.outputs.objectives
        deadline = time.monotonic() + max(o.rto_seconds + o.worst_case_detection_seconds, 3 * self.edge_poll)
        pages = 0
        while True:
            self._check_stop()
            answer = self.edge("/")
            if answer.is_shop:
                break
            pages += answer.is_fallback
            if time.monotonic() > deadline:
                raise StopDrill(f"the shop is not back through the edge {self.clock() - restored:.1f} s after "
                                f"{self.primary} was restored (last answer: {answer.describe()})")
            self.sleep(self.edge_poll)
        self._answers["shop"] = answer
        self._answers["pagesWhileRecovering"] = pages
        self.report.log("recovery", "ok", f"a shopper gets the shop again: {answer.describe()}; {pages} page(s) "
                                          "served meanwhile", answer.at - restored)

    # --- the restore path and the verdict ---------------------------------------------------------
    def _restore_faults(self) -> None:
        started = self.clock()
        lines = self.faults.restore()
        if lines:
            self.report.restored += lines
            failed = any(line.startswith("NOT restored") for line in lines)
            self.report.log("restore", "failed" if failed else "ok", "; ".join(lines), self.clock() - started)

    def _restore_path(self) -> None:
        if self.faults.pending:
            self._restore_faults()
        self._measure()
        if self._times.get("fault") is not None:
            if self.report.aborted is None:
                self._checks()
            # A region that could not be put back cannot come back by waiting for it.
            check_back_home(self.report, self.outputs, self.traffic, self.runbook, self.options.poll_seconds,
                            self.sleep, after="the outage", wait=not self.faults.pending)
        self.report.finish()

    def _measure(self) -> None:
        a, t = self._answers, self._times
        m: dict[str, Any] = {"regionsDown": [r.region for r in self.outputs.regions], "restoredFirst": self.primary}
        if "page" in a:
            m["fallbackPage"] = {**a["page"].as_dict(), "servedAfterSeconds": _round(a["page"].at - t["fault"])}
        if "balancerDownAfter" in a:
            m["balancerSawEveryRegionDownAfterSeconds"] = _round(a["balancerDownAfter"])
        if "outage" in a:
            m["outageRequests"] = len(a["outage"])
            m["outagePageAnswers"] = sum(x.is_fallback for x in a["outage"])
            m["healthPath"] = {"path": self.outputs.health_path, **a["health"].as_dict(),
                               "answeredByThePage": a["health"].is_fallback}
        if "shop" in a:
            m["recoverySeconds"] = _round(a["shop"].at - t["restored"])
            m["firstShopAnswer"] = a["shop"].as_dict()
            m["pagesWhileRecovering"] = a["pagesWhileRecovering"]
        self.report.measured = m

    def _checks(self) -> None:
        m, rto = self.report.measured, self.outputs.objectives.rto_seconds
        page = m["fallbackPage"]
        self.report.check("fallback page served while every region was down",
                          m["outagePageAnswers"] == m["outageRequests"],
                          f"{m['outagePageAnswers']} of {m['outageRequests']} shopper requests got it (HTTP "
                          f"{page['status']}, title {page['title']!r}), the first {page['servedAfterSeconds']} s "
                          "after the fault")
        retry = page["retryAfter"] or ""
        self.report.check("the page asks clients to come back later",
                          retry.isdigit() and int(retry) > 0 and "no-store" in (page["cacheControl"] or ""),
                          f"Retry-After: {retry or 'missing'}; Cache-Control: {page['cacheControl'] or 'missing'}")
        health = m["healthPath"]
        self.report.check("health path never answered by the page", not health["answeredByThePage"],
                          f"{health['path']} through the edge: " + (health["error"] or f"HTTP {health['status']}"))
        self.report.check("recovery within objective", m["recoverySeconds"] <= rto,
                          f"{m['recoverySeconds']} s from {self.primary} restored to the first shop page through the "
                          f"edge, objective {rto} s")

    # --- helpers -----------------------------------------------------------------------------------
    def _hook(self, name: str) -> None:
        if name in self.hooks:
            self.hooks[name]()

    def _check_stop(self) -> None:
        if time.monotonic() - self._started > self.options.max_duration:
            raise StopDrill(f"the drill ran past --max-duration {self.options.max_duration:.0f} s")


def _round(value: float) -> float:
    return round(value, 3)
