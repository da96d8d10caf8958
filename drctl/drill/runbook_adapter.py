"""The drill's hold on the runbook: the same `status`, `promote` and `failback` code paths an
operator runs (drctl/runbook/status.py, drctl/runbook/promote.py, drctl/runbook/failback.py).

A drill promotes and fails back on purpose, within minutes: the anti-flapping block period would
refuse the second drill of the day, so the drill's own promotions run with a block period of zero
(the report says so). Everything else is the runbook's, unchanged: fencing, catch-up waits, the RPO
gate (`--accept-data-loss` passes through), errant-transaction handling on failback
(`--discard-errant` passes through), traffic moves, the journal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drctl.drill import orders
from drctl.drill.drill import Health
from drctl.mysql.topology import connect, discover, session
from drctl.runbook import status
from drctl.runbook.context import ChangeOptions, Runbook
from drctl.runbook.failback import FailbackOptions, failback
from drctl.runbook.promote import PromoteOptions, promote
from drctl.runbook.switchover import RunResult


class RunbookStepFailed(Exception):
    """promote or failback did not finish; the message is the runbook's own account."""


@dataclass
class RunbookAdapter:
    rb: Runbook
    change: ChangeOptions = field(default_factory=ChangeOptions)  # the drill's own flags, passed on
    accept_data_loss: bool = False
    discard_errant: bool = False
    export_dir: Path | None = None

    def health(self) -> Health:
        """`drctl status`'s verdict (traffic, NodeBalancer nodes, every database), and the worst
        replica lag from the heartbeat."""
        doc = status.collect(self.rb)
        verdict = doc["verdict"]
        lags = [r["database"].get("lagSeconds") for r in doc["regions"] if r["database"].get("role") == "replica"]
        return Health(healthy=verdict["healthy"], lag_seconds=max(lags) if lags and None not in lags else None,
                      problems=tuple(verdict["problems"]), primary=doc["primary"])

    def promote(self, region: str) -> dict[str, Any]:
        result = promote(self.rb, PromoteOptions(region=region, block_seconds=0,
                                                 accept_data_loss=self.accept_data_loss, **self._change()))
        detail = _done(result)
        detail.update(self._timings())
        return detail

    def failback(self, region: str) -> dict[str, Any]:
        result = failback(self.rb, FailbackOptions(to=region, discard_errant=self.discard_errant,
                                                   export_dir=self.export_dir, **self._change()))
        return _done(result)

    def _change(self) -> dict[str, Any]:
        """The drill's change flags for its promote and failback: --yes was the drill's to give, and
        a drill that runs does not dry-run its steps."""
        return {**self.change.change_fields(), "yes": True, "dry_run": False}

    def _timings(self) -> dict[str, Any]:
        """When the promoted database became writable, and how long the traffic step took, from the
        journal the runbook just finished (its steps carry start and finish times)."""
        try:
            steps = json.loads(self.rb.journal_path.read_text(encoding="utf-8")).get("steps", [])
        except (OSError, ValueError):
            return {}
        found: dict[str, Any] = {}
        for step in steps:
            if step.get("status") != "done" or not step.get("finished"):
                continue
            if step["name"] == "promote":
                found["writableAt"] = step["finished"]
            elif step["name"] == "switch-traffic":
                found["trafficStepSeconds"] = round(step["finished"] - step["started"], 3)
        return found

    def orders_present(self, region: str, seqs: set[int]) -> set[int]:
        with session(self.rb.server(region)) as conn:
            return orders.orders_present(conn, seqs)

    def prepare(self) -> None:
        """The orders table on the current primary; replication carries it to the others."""
        primary = discover(self.rb.servers).primary
        if primary is None:
            raise RunbookStepFailed("no single writable primary to create drctl_drill.orders on")
        with session(primary.server) as conn:
            orders.create_schema(conn)

    def order_targets(self) -> list[tuple[str, Any]]:
        """(region, connect) for every database in failover order: the real drill's order path."""
        return [(region, lambda s=server: connect(s, timeout=2.0)) for region, server in self.rb.servers.items()]


def _done(result: RunResult) -> dict[str, Any]:
    if result.outcome not in ("done", "nothing-to-do"):
        raise RunbookStepFailed(result.render().strip())
    detail = {"mode": result.mode, "from": result.source, "outcome": result.outcome}
    if result.loss:
        detail["loss"] = result.loss.get("summary")
    fences = [f"{'fenced' if f['done'] else 'NOT fenced'} [{f['layer']}]: {f['description']}" for f in result.fencing]
    if fences:
        detail["fencing"] = fences
    if result.warnings:
        detail["warnings"] = result.warnings
    if result.export:
        detail["errantExport"] = result.export
    return detail
