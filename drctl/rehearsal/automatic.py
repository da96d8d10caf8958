"""`drctl rehearse --automatic`: the local rehearsal where nobody calls promote. Two guards
(drctl/guard/, in this process, each in its own thread, each reaching the regions through its own
HAProxy path) watch the primary region; the rehearsal kills the region and measures how long they
take to detect, confirm and promote, and how long until the front door takes orders again.

Two scenarios, in one topology each:
- `region-down`: the primary region dies (database and shop origins SIGKILLed). The guards must
  detect it, agree with each other and with the stand-in for Cloudflare's monitors (the `cloudflare`
  HAProxy proxy's health checks, read through the traffic backend as drctl reads Cloudflare's pool
  health), wait out the confirm time and promote; exactly one of them does (the lease).
- `partition`: guard g1's own paths to the primary region are cut (its HAProxy vantage proxies in
  maintenance): it sees the primary dead, Cloudflare and guard g2 see it up. Nothing may be promoted
  in three times the longest a real loss would take to be promoted.

RTO by phase, from the moment the region dies: detect (a guard's own probes call both the
NodeBalancer and the database down), confirm (every signal agrees, the confirm time waited out:
the promotion starts), promote (fencing, catch-up and the promotion, from the journal), traffic (the
traffic step of the journal), and the front door (the first order accepted through the `cloudflare`
proxy after the kill). Periods are the stack's times --time-scale, as in `drctl rehearse`.
"""

from __future__ import annotations

import dataclasses
import io
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from drctl.cloud.origin_probe import HttpsProbe, ProbeResult
from drctl.drill.orders import OrderRejected
from drctl.guard.loop import Guard, GuardSettings, cloudflare_view_from
from drctl.guard.metrics import GuardMetrics
from drctl.guard.probes import DatabaseProbe
from drctl.guard.votes import FileVotes
from drctl.rehearsal.topology import LocalTopology, RehearsalSpec
from drctl.runbook.context import Runbook
from drctl.runbook.journal import Journal
from drctl.watch.lease import FileLease
from drctl.watch.loop import EventLog

GUARDS = ("g1", "g2")
SCENARIOS = ("region-down", "partition")


@dataclass
class AutomaticResult:
    scenario: str
    promoted: bool
    passed: bool
    verdict: str  # one line: why it passed or failed
    phases: dict[str, float] = field(default_factory=dict)  # phase -> seconds since the region died (or was cut)
    promoted_by: str | None = None
    guard_verdicts: dict[str, str] = field(default_factory=dict)  # guard -> its last verdict
    objective_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def markdown(self) -> str:
        lines = [f"### {self.scenario}: {'PASSED' if self.passed else 'FAILED'}", "", self.verdict, ""]
        if self.phases:
            lines += ["| phase | seconds after the fault | seconds in the phase |", "|---|---|---|"]
            previous = 0.0
            for phase, at in self.phases.items():
                lines.append(f"| {phase} | {at:.2f} | {at - previous:.2f} |")
                previous = at
            lines.append("")
        lines.append("guards' last verdicts: " + ", ".join(f"{g} {v}" for g, v in self.guard_verdicts.items()))
        return "\n".join(lines) + "\n"


class _Guards:
    """Two guards on the topology, each with its own paths, sharing a lease and votes in files."""

    def __init__(self, topo: LocalTopology, say: Callable[[str], None]):
        self.topo, self.say = topo, say
        self.logs = {g: io.StringIO() for g in GUARDS}
        self.guards = {g: self._guard(g) for g in GUARDS}
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=guard.run, args=(self.stop,), name=f"guard-{g}", daemon=True)
                        for g, guard in self.guards.items()]

    def _guard(self, name: str) -> Guard:
        topo, spec = self.topo, self.topo.spec
        rb = Runbook(outputs=topo.outputs(), state_dir=topo.dir / "state",
                     say=lambda line: None, traffic_factory=lambda: topo.traffic, linode_factory=lambda: topo.linode)
        timeout = spec.monitor_timeout_ms / 1000
        probes = {region: HttpsProbe(spec.domain, spec.health_path, timeout, spec.expected_codes,
                                     port=topo.vantages[(name, "nb", region)]) for region in spec.regions}

        def healthz(region: str) -> ProbeResult:
            return probes[region]("127.0.0.1")

        servers = {region: dataclasses.replace(server, port=topo.vantages[(name, "db", region)])
                   for region, server in rb.servers.items()}
        interval = spec.monitor_interval_ms / 1000
        settings = GuardSettings(
            interval=interval, fast_interval=min(interval, spec.fast_interval_ms / 1000), fall=spec.monitor_fall,
            rise=spec.monitor_rise, confirm_seconds=spec.confirm_ms / 1000, block_seconds=3600, vote_ttl=3 * interval,
            apply_timeout=30, catch_up_timeout=30, traffic_timeout=30,
        )
        shared = topo.dir / "guards"
        shared.mkdir(exist_ok=True)
        return Guard(guard_id=name, rb=rb, healthz=healthz, database=DatabaseProbe(servers, timeout),
                     cloudflare_view=cloudflare_view_from(rb), votes=FileVotes(shared / "votes", name),
                     lease=FileLease(name, str(shared / "lease")), settings=settings,
                     log=EventLog(self.logs[name], context={"guard": name}), metrics=GuardMetrics())

    def __enter__(self) -> _Guards:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)
        for guard in self.guards.values():
            guard.close()

    def events(self, guard: str | None = None) -> list[dict[str, Any]]:
        names = [guard] if guard else list(GUARDS)
        found = [e for g in names for e in map(json.loads, self.logs[g].getvalue().splitlines())]
        return sorted(found, key=lambda e: e["ts"])

    def wait_settled(self, timeout: float) -> None:
        """Until every guard has seen the primary up on both signals and said so."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(all(t.state == "up" for t in guard.trackers.values()) for guard in self.guards.values()):
                return
            time.sleep(0.05)
        raise TimeoutError(f"the guards did not see the primary up within {timeout:.0f} s")

    def verdicts(self) -> dict[str, str]:
        return {g: (self._last(g, "verdict") or {}).get("action", "?") for g in self.guards}

    def _last(self, guard: str, event: str) -> dict[str, Any] | None:
        found = [e for e in self.events(guard) if e["event"] == event]
        return found[-1] if found else None


def _ts(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["ts"]).timestamp()


def region_down(spec: RehearsalSpec, say: Callable[[str], None] = print, template: Path | None = None,
                limit: float = 60.0) -> AutomaticResult:
    with LocalTopology(spec, template=template, guards=GUARDS) as topo, _Guards(topo, say) as guards:
        guards.wait_settled(30)
        primary, target = spec.regions[0], spec.regions[1]
        sink = topo.order_sink()
        say(f"  guards settled; killing {primary} (database and shop origins)")
        died = time.time()
        topo.region_down(primary)
        accepted_at = _first_order_after(sink, died, limit)
        promoted = _wait(lambda: any(e["event"] == "promote" for e in guards.events()), limit - (time.time() - died))
        result = AutomaticResult("region-down", promoted, False, "", objective_seconds=float(spec.rto_seconds))
        result.guard_verdicts = guards.verdicts()
        if not promoted:
            result.verdict = f"no guard promoted {target} within {limit:.0f} s"
            return result
        events = guards.events()
        done = next(e for e in events if e["event"] == "promote")
        result.promoted_by = done["guard"]
        result.phases = _phases(events, done["guard"], died, topo.dir / "state", accepted_at)
        outcome_ok = done["outcome"] == "done"
        starts = [e for e in events if e["event"] == "promote_start"]
        rto = result.phases.get("front door takes orders")
        # Passed: promoted once, by the guards alone, and the shop takes orders again. The RTO against
        # the (scaled) objective is reported, not judged: on a loaded machine it measures the machine.
        result.passed = outcome_ok and len(starts) == 1 and rto is not None
        result.verdict = (f"{done['guard']} promoted {target}: {done['outcome']}; {len(starts)} promotion(s) started; "
                          f"orders accepted again {rto:.2f} s after the region died" if rto is not None else
                          f"{done['guard']} promoted {target}: {done['outcome']}; the front door took no order within "
                          f"{limit:.0f} s")
        if rto is not None:
            met = "met" if rto <= spec.rto_seconds else "missed"
            result.verdict += f" (RTO objective, scaled: {spec.rto_seconds} s: {met})"
        return result


def partition(spec: RehearsalSpec, say: Callable[[str], None] = print, template: Path | None = None) -> AutomaticResult:
    with LocalTopology(spec, template=template, guards=GUARDS) as topo, _Guards(topo, say) as guards:
        guards.wait_settled(30)
        primary = spec.regions[0]
        say(f"  guards settled; cutting g1's own paths to {primary}")
        cut = time.time()
        topo.cut_off("g1", primary)
        # Three times the longest a real loss takes to be promoted: detection by the guard (fast
        # confirm) and by the monitors, then the confirm time.
        worst = (spec.monitor_interval_ms * spec.monitor_fall + spec.monitor_timeout_ms * 2 + spec.confirm_ms) / 1000
        saw_it = _wait(lambda: any(e["event"] == "verdict" and e["action"] == "disagree" for e in guards.events("g1")),
                       3 * worst)
        time.sleep(max(0.0, cut + 3 * worst - time.time()))  # the window in which a promotion would have happened
        promoted = any(e["event"] in ("promote_start", "promote") for e in guards.events())
        history = Runbook(outputs=topo.outputs(), state_dir=topo.dir / "state").history().entries()
        result = AutomaticResult("partition", promoted or bool(history), False, "")
        result.guard_verdicts = guards.verdicts()
        disagreed = [e for e in guards.events("g1") if e["event"] == "verdict" and e["action"] == "disagree"]
        if disagreed:
            result.phases = {"g1 sees the primary lost, others do not (disagree)": _ts(disagreed[0]) - cut}
        result.passed = saw_it and not result.promoted
        result.verdict = (f"g1, cut off from {primary}, saw it down and held (disagree); nothing was promoted in "
                          f"{time.time() - cut:.1f} s" if result.passed else
                          "a guard cut off from the primary " + ("promoted" if result.promoted else
                                                                 "never reported the disagreement"))
        return result


def _first_order_after(sink, since: float, limit: float) -> float | None:
    """Seconds from `since` to the first order the front door accepts (None past `limit`)."""
    seq = 10_000_000
    while time.time() - since < limit:
        seq += 1
        try:
            sink.write(seq)
            return time.time() - since
        except OrderRejected:
            time.sleep(0.05)
    return None


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + max(0.0, timeout)
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _phases(events: list[dict[str, Any]], guard: str, died: float, state_dir: Path,
            accepted: float | None) -> dict[str, float]:
    mine = [e for e in events if e.get("guard") == guard]
    down = {e["signal"]: _ts(e) for e in mine if e["event"] == "signal" and e["state"] == "down"}
    phases: dict[str, float] = {}
    if len(down) == 2:
        phases["detect (own probes: healthz and database down)"] = max(down.values()) - died
    start = next(e for e in mine if e["event"] == "promote_start")
    phases["confirm (every signal agreed, confirm time waited out)"] = _ts(start) - died
    journal = _journal(state_dir)
    steps = {s["name"]: s for s in journal.get("steps", [])}
    if "promote" in steps:
        phases["promote (fenced, caught up, promoted)"] = steps["promote"]["finished"] - died
    if "switch-traffic" in steps:
        phases["traffic (routed to the new primary's region)"] = steps["switch-traffic"]["finished"] - died
    if accepted is not None:
        phases["front door takes orders"] = accepted
    return dict(sorted(phases.items(), key=lambda kv: kv[1]))


def _journal(state_dir: Path) -> dict[str, Any]:
    for path in [state_dir / "journal.json", *sorted((state_dir / "journals").glob("*-promote.json"))]:
        doc = Journal(path, "", {}).read()
        if doc and doc.get("operation") == "promote":
            return doc
    return {}
