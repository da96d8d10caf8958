"""What a drill measured and how it went: the step log, RTO and RPO from the order writer's record,
and `report.json` / `report.md`.

RTO is the customer's outage: from the last order the old primary acknowledged to the first the
new primary acknowledged. RPO is what was lost: orders acknowledged (by the old primary, before the
first write on the new one) that the new primary does not have after promotion, counted exactly by
sequence number, and as time, the span from the last order the new primary kept to the last one it
lost. The breakdown splits the outage the way an operator can act on it: detection (fault to
traffic leaving the region), promotion (promote started to the new primary writable), traffic
switch (writable to the first order acknowledged there).

A full outage (`all-regions-down`, drctl/drill/outage.py) has no failover and no orders: its
report shows the fallback page shoppers got and the recovery time instead.

Reports hold no secret: passwords and tokens never enter a step's detail (the runbook's details
are built without them), and the report only prints what the drill put in.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drctl.cloud.edge_probe import FALLBACK_MARKER
from drctl.drill.faults import ALL_REGIONS_DOWN
from drctl.drill.orders import Write, summarize
from drctl.stack.state_files import write_private


@dataclass(frozen=True)
class Outage:
    last_old: Write | None  # the last order acknowledged in the old primary region before the switch
    first_new: Write | None  # the first acknowledged in the new one

    @property
    def rto_seconds(self) -> float | None:
        if self.first_new is None:
            return None
        start = self.last_old.finished if self.last_old else self.first_new.started
        return max(0.0, self.first_new.finished - start)


def outage(writes: Sequence[Write], old_region: str, new_region: str, since: float = 0.0) -> Outage:
    """The switch from `old_region` to `new_region` that happened after `since`."""
    first_new = next((w for w in writes if w.ok and w.region == new_region and w.finished >= since), None)
    cutoff = first_new.finished if first_new else float("inf")
    olds = [w for w in writes if w.ok and w.region == old_region and w.finished < cutoff]
    return Outage(max(olds, key=lambda w: w.finished) if olds else None, first_new)


def acknowledged_by(writes: Iterable[Write], region: str, before: float) -> list[Write]:
    return [w for w in writes if w.ok and w.region == region and w.finished < before]


def lost_orders(acknowledged: Sequence[Write], present: set[int]) -> list[int]:
    return sorted(w.seq for w in acknowledged if w.seq not in present)


def loss_window_seconds(acknowledged: Sequence[Write], lost: Sequence[int]) -> float:
    """From the last order kept before the first loss to the last order lost (0 when none was)."""
    if not lost:
        return 0.0
    lost_set = set(lost)
    ordered = sorted(acknowledged, key=lambda w: w.finished)
    first_lost = next(i for i, w in enumerate(ordered) if w.seq in lost_set)
    last_lost = max(w.finished for w in ordered if w.seq in lost_set)
    kept_before = ordered[first_lost - 1].finished if first_lost else ordered[first_lost].started
    return last_lost - kept_before


@dataclass
class StepRecord:
    at: float
    name: str
    status: str  # ok | failed | skipped | info
    detail: Any = None
    seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"at": _iso(self.at), "step": self.name, "status": self.status, "seconds": _round(self.seconds),
                "detail": self.detail}


@dataclass
class Check:
    name: str
    passed: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.name, "passed": self.passed, "detail": self.detail}


@dataclass
class DrillReport:
    kind: str  # drill | rehearsal
    stack: str
    primary: str
    target: str
    fault: str
    objectives: dict[str, Any]  # rtoSeconds, rpoSeconds (+ how a rehearsal scaled them)
    options: dict[str, Any]
    clock: Callable[[], float] = time.time
    say: Callable[[str], None] = lambda _: None
    started: float = field(default=0.0)
    finished: float | None = None
    steps: list[StepRecord] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    measured: dict[str, Any] = field(default_factory=dict)
    writer: dict[str, Any] = field(default_factory=dict)
    aborted: str | None = None  # why the drill stopped early (stop condition, Ctrl-C, failed step)

    def __post_init__(self) -> None:
        self.started = self.started or self.clock()

    # --- recording -----------------------------------------------------------------------------
    def log(self, name: str, status: str, detail: Any = None, seconds: float | None = None) -> StepRecord:
        record = StepRecord(self.clock(), name, status, detail, seconds)
        self.steps.append(record)
        mark = {"ok": "ok", "failed": "FAILED", "skipped": "skipped", "info": "--"}[status]
        text = f" {detail}" if isinstance(detail, str) and detail else ""
        took = f" ({seconds:.2f} s)" if seconds is not None else ""
        self.say(f"  [{mark}] {name}{took}{text}")
        return record

    def check(self, name: str, passed: bool, detail: str) -> None:
        self.checks.append(Check(name, passed, detail))

    def measure_writes(self, writes: Sequence[Write], *, promoted_at: float | None, promotion_started: float | None,
                       fault_at: float | None, detected_at: float | None, present_after_promotion: set[int] | None,
                       checked_before: float | None) -> None:
        """Fill `measured` from the writer's record and the times of the drill's steps."""
        self.writer = summarize(writes)
        if fault_at is None:
            return
        out = outage(writes, self.primary, self.target, since=fault_at)
        if promoted_at and out.first_new:
            # The runbook notes the promotion done after its step returns; orders may land between
            # read-only going off and that note. Writable no later than the first order it took.
            promoted_at = min(promoted_at, out.first_new.finished)
        m: dict[str, Any] = {
            "rtoSeconds": _round(out.rto_seconds),
            "lastWriteOldPrimary": _write(out.last_old),
            "firstWriteNewPrimary": _write(out.first_new),
            "detectionSeconds": _round(detected_at - fault_at) if detected_at else None,
            "promotionSeconds": _round(promoted_at - promotion_started) if promoted_at and promotion_started else None,
            "trafficSwitchSeconds": _round(out.first_new.finished - promoted_at)
            if out.first_new and promoted_at else None,
            "faultToFirstNewWriteSeconds": _round(out.first_new.finished - fault_at) if out.first_new else None,
        }
        if present_after_promotion is not None and checked_before is not None:
            acknowledged = acknowledged_by(writes, self.primary, checked_before)
            lost = lost_orders(acknowledged, present_after_promotion)
            m.update(ordersAcknowledgedByOldPrimary=len(acknowledged), ordersLost=len(lost),
                     lostSequenceNumbers=lost[:200], rpoSeconds=_round(loss_window_seconds(acknowledged, lost)))
        self.measured = m

    # --- verdict -------------------------------------------------------------------------------
    @property
    def passed(self) -> bool:
        return (self.aborted is None and not any(s.status == "failed" for s in self.steps)
                and bool(self.checks) and all(c.passed for c in self.checks))

    @property
    def outcome(self) -> str:
        if self.aborted is not None:
            return "aborted"
        return "passed" if self.passed else "failed"

    def finish(self) -> None:
        self.finished = self.clock()

    # --- output --------------------------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "stack": self.stack, "outcome": self.outcome, "aborted": self.aborted,
            "startedAt": _iso(self.started), "finishedAt": _iso(self.finished) if self.finished else None,
            "durationSeconds": _round((self.finished or self.clock()) - self.started),
            "primary": self.primary, "target": self.target, "fault": self.fault,
            "options": self.options, "objectives": self.objectives, "measured": self.measured,
            "writer": self.writer, "checks": [c.as_dict() for c in self.checks],
            "restored": self.restored, "steps": [s.as_dict() for s in self.steps],
        }

    def markdown(self) -> str:
        if self.fault == ALL_REGIONS_DOWN:
            return self._outage_markdown()
        d, m, o = self.as_dict(), self.measured, self.objectives
        title = "Rehearsal" if self.kind == "rehearsal" else "DR drill"
        lines = [
            f"# {title} of `{self.stack}`: {d['outcome'].upper()}",
            "",
            f"{d['startedAt']} to {d['finishedAt']} ({d['durationSeconds']} s). Fault: `{self.fault}` in "
            f"{self.primary}; promoted {self.target}, then failed back to {self.primary}.",
        ]
        if self.aborted:
            lines += ["", f"**Stopped early:** {_cell(self.aborted)}"]
        if o.get("note"):
            lines += ["", o["note"]]
        lines += [
            "", "## Objectives", "",
            "| | objective | measured | |",
            "|---|---|---|---|",
            f"| RTO | {o.get('rtoSeconds')} s | {_show(m.get('rtoSeconds'), ' s')} | {_verdict(self, 'RTO')} |",
            f"| RPO | {o.get('rpoSeconds')} s | {_show(m.get('rpoSeconds'), ' s')} "
            f"({_show(m.get('ordersLost'), ' orders')} lost) | {_verdict(self, 'RPO')} |",
            *([f"| media RPO | {o['mediaRpoSeconds']} s | {_show(m.get('mediaServedSeconds'), ' s')} (drill object "
               f"upload to served in {self.target}"
               + (f"; in its copy after {_show(m['mediaReplicatedSeconds'], ' s')}" if "mediaReplicatedSeconds" in m
                  else "") + f") | {_verdict(self, 'media RPO')} |"] if "mediaRpoSeconds" in o else []),
            "", "## Where the outage went", "",
            "| phase | seconds |", "|---|---|",
            f"| detection (fault to traffic leaving {self.primary}) | {_show(m.get('detectionSeconds'))} |",
            f"| promotion (promote started to {self.target}'s database writable) | {_show(m.get('promotionSeconds'))} |",
            f"| traffic switch ({self.target} writable to its first order) | {_show(m.get('trafficSwitchSeconds'))} |",
            f"| fault to first order in {self.target} | {_show(m.get('faultToFirstNewWriteSeconds'))} |",
            "", "## Orders", "",
            f"{self.writer.get('attempted', 0)} attempted, {self.writer.get('acknowledged', 0)} acknowledged, "
            f"{self.writer.get('failed', 0)} failed ({self.writer.get('ordersPerSecond', 0)} orders/s acknowledged).",
        ]
        if m.get("lostSequenceNumbers"):
            lines.append(f"Lost (acknowledged, missing after promotion): {_seqs(m['lostSequenceNumbers'])}.")
        return "\n".join(lines + self._closing_lines()) + "\n"

    def _outage_markdown(self) -> str:
        """A full outage: the fallback page shoppers got, and how soon the shop came back."""
        d, m, o = self.as_dict(), self.measured, self.objectives
        title = "Rehearsal" if self.kind == "rehearsal" else "DR drill"
        down = ", ".join(m.get("regionsDown", [])) or "every region"
        lines = [
            f"# {title} of `{self.stack}`: {d['outcome'].upper()}",
            "",
            f"{d['startedAt']} to {d['finishedAt']} ({d['durationSeconds']} s). Fault: `{self.fault}` ({down} down at "
            f"once); {self.primary} brought back first, then the rest. Every request below went through the edge, "
            "as a shopper's does.",
        ]
        if self.aborted:
            lines += ["", f"**Stopped early:** {_cell(self.aborted)}"]
        if o.get("note"):
            lines += ["", o["note"]]
        page, health = m.get("fallbackPage") or {}, m.get("healthPath") or {}
        served = (f"{m['outagePageAnswers']} of {m['outageRequests']}" if "outageRequests" in m else "n/a")
        health_answer = (health.get("error") or f"HTTP {health.get('status')}") if health else "n/a"
        lines += [
            "", "## The fallback page", "",
            "| | seen through the edge |", "|---|---|",
            f"| first served | {_show(page.get('servedAfterSeconds'), ' s')} after every region went down |",
            f"| status | {_show(page.get('status'))} |",
            f"| Retry-After | {_show(page.get('retryAfter'))} |",
            f"| Cache-Control | {_show(page.get('cacheControl'))} |",
            f"| {FALLBACK_MARKER} | {_cell(_show(page.get('marker')))} |",
            f"| title | {_cell(_show(page.get('title')))} |",
            f"| shopper requests that got it during the outage | {served} |",
            f"| health path `{health.get('path', '-')}` | {_cell(health_answer)}"
            f"{' (the page!)' if health.get('answeredByThePage') else ''} |",
            "", "## Recovery", "",
            "| | objective | measured | |", "|---|---|---|---|",
            f"| {self.primary} restored to the first shop page through the edge | {o.get('rtoSeconds')} s | "
            f"{_show(m.get('recoverySeconds'), ' s')} | {_verdict(self, 'recovery')} |",
            "",
            f"Pages served to shoppers after {self.primary} was restored: {_show(m.get('pagesWhileRecovering'))}.",
        ]
        return "\n".join(lines + self._closing_lines()) + "\n"

    def _closing_lines(self) -> list[str]:
        lines = ["", "## Checks", ""]
        lines += [f"- {'PASS' if c.passed else 'FAIL'} {c.name}: {c.detail}" for c in self.checks] or ["- none ran"]
        lines += ["", "## Restored", ""]
        lines += [f"- {_cell(item)}" for item in self.restored] or ["- nothing needed restoring"]
        lines += ["", "## Step log", "", "| time (UTC) | step | status | seconds | detail |", "|---|---|---|---|---|"]
        for s in self.steps:
            detail = s.detail if isinstance(s.detail, str) else json.dumps(s.detail, default=str) if s.detail else ""
            lines.append(f"| {_iso(s.at)[11:23]} | {s.name} | {s.status} | {_show(_round(s.seconds))} | "
                         f"{_cell(detail)} |")
        return lines

    def write(self, directory: Path) -> tuple[Path, Path]:
        # Order numbers and the stack's topology: the operator's to share, 0600 until they do.
        json_path, md_path = Path(directory) / "report.json", Path(directory) / "report.md"
        write_private(json_path, json.dumps(self.as_dict(), indent=2, default=str) + "\n")
        write_private(md_path, self.markdown())
        return json_path, md_path


def _cell(text: str) -> str:
    """One line, safe inside a Markdown table (the runbook's messages span several lines)."""
    return " / ".join(line.strip() for line in str(text).splitlines() if line.strip()).replace("|", "/")


def _verdict(report: DrillReport, name: str) -> str:
    check = next((c for c in report.checks if c.name.startswith(name)), None)
    return "" if check is None else ("met" if check.passed else "MISSED")


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _show(value: Any, unit: str = "") -> str:
    return "n/a" if value is None else f"{value}{unit}"


def _write(w: Write | None) -> dict[str, Any] | None:
    return None if w is None else {"seq": w.seq, "at": _iso(w.finished), "region": w.region, "server": w.server}


def _seqs(seqs: Sequence[int]) -> str:
    return ", ".join(str(s) for s in seqs[:20]) + (f" and {len(seqs) - 20} more" if len(seqs) > 20 else "")
