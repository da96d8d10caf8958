"""Resumable runbooks: every state-changing drctl command is a list of named steps whose progress is
written to a journal file after each step.

Re-running the same command after a crash (or a Ctrl-C, or a lost laptop) continues from the first
step not yet done, so no finished step runs twice; a different command against the same stack is
refused until the open journal is finished or explicitly abandoned. The journal is the record an
operator reads to know exactly where things stand: it is written atomically, so a crash mid-write
never leaves half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class JournalError(Exception):
    """The journal refuses the run; the message says why and what to do."""


@dataclass(frozen=True)
class Step:
    name: str  # stable identifier, stored in the journal
    description: str  # what --dry-run prints
    run: Callable[[], Any]  # returns a JSON-able detail for the journal (or None)


def state_dir(stack: str) -> Path:
    """Where journals and promotion history live: $DRCTL_STATE_DIR, else ~/.local/state/drctl."""
    base = os.environ.get("DRCTL_STATE_DIR") or Path.home() / ".local" / "state" / "drctl"
    return Path(base) / stack


class Journal:
    def __init__(self, path: Path, operation: str, params: dict[str, Any], clock: Callable[[], float] = time.time):
        self.path, self.operation, self.params, self.clock = path, operation, params, clock
        self.doc: dict[str, Any] = {}

    def open(self, abandon: bool = False) -> bool:
        """Load an unfinished journal for the same operation and parameters (resume, returns True),
        or start a new one. Refuse if an unfinished journal belongs to something else."""
        if self.peek(abandon):
            return True
        self.doc = {"operation": self.operation, "params": self.params, "started": self.clock(),
                    "finished": None, "outcome": None, "steps": []}
        self._write()
        return False

    def peek(self, abandon: bool = False) -> bool:
        """What `open` would decide, without writing: True (and the journal loaded) when an
        unfinished journal of this operation and parameters exists; JournalError when an unfinished
        one belongs to something else (so --dry-run refuses exactly where the real run would)."""
        existing = self.read()
        if not existing or existing.get("finished"):
            return False
        if abandon:
            return False
        if existing["operation"] == self.operation and existing["params"] == self.params:
            self.doc = existing
            return True
        raise JournalError(
            f"an unfinished {existing['operation']} {_describe(existing['params'])} is recorded in "
            f"{self.path} (last step done: {self.last_done(existing) or 'none'}); finish it by re-running "
            f"that command, or pass --abandon-journal to start {self.operation} anyway"
        )

    @staticmethod
    def last_done(doc: dict[str, Any]) -> str | None:
        done = [s["name"] for s in doc.get("steps", []) if s["status"] == "done"]
        return done[-1] if done else None

    def done(self, name: str) -> bool:
        return any(s["name"] == name and s["status"] == "done" for s in self.doc["steps"])

    def detail(self, name: str) -> Any:
        """What a finished step returned (None when it has not finished): later steps, and a
        resumed run, read earlier results from here instead of asking the servers again."""
        for s in self.doc.get("steps", []):
            if s["name"] == name and s["status"] == "done":
                return s.get("detail")
        return None

    def run(self, steps: Iterable[Step], say: Callable[[str], None]) -> None:
        """Run every step not yet done, recording each; a failing step is recorded and re-raised."""
        for step in steps:
            if self.done(step.name):
                say(f"  = {step.description} (done in an earlier run)")
                continue
            say(f"  > {step.description}")
            record = {"name": step.name, "status": "running", "started": self.clock(), "finished": None}
            self._upsert(record)
            try:
                detail = step.run()
            except BaseException as err:
                record.update(status="failed", finished=self.clock(), error=str(err) or type(err).__name__)
                self._upsert(record)
                raise
            record.update(status="done", finished=self.clock(), detail=detail)
            self._upsert(record)

    def finish(self, outcome: str) -> None:
        self.doc.update(finished=self.clock(), outcome=outcome)
        self._write()

    def _upsert(self, record: dict[str, Any]) -> None:
        steps = [s for s in self.doc["steps"] if s["name"] != record["name"]]
        self.doc["steps"] = [*steps, record]
        self._write()

    def read(self) -> dict[str, Any] | None:
        """The journal file as it stands (None when there is none); JournalError when unreadable."""
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError as err:
            raise JournalError(f"journal {self.path} is not valid JSON ({err}); move it aside to continue") from None

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(self.doc, f, indent=2, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


def _describe(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(params.items()))


class PromotionHistory:
    """When the last promotions happened, for the anti-flapping block period: a second promotion
    soon after the first is far more often a flapping monitor than a second disaster."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time):
        self.path, self.clock = path, clock

    def last(self) -> dict[str, Any] | None:
        try:
            entries = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        return entries[-1] if entries else None

    def check(self, block_seconds: int, force: bool) -> None:
        last = self.last()
        if not last or force:
            return
        age = self.clock() - last["at"]
        if age < block_seconds:
            raise JournalError(
                f"the last promotion ({last['from']} -> {last['to']}) was {int(age)} s ago, within the "
                f"{block_seconds} s block period (--block-seconds); pass --force if this really is a second failure"
            )

    def record(self, from_region: str, to_region: str, **details: Any) -> None:
        """Add a promotion; `details` (JSON-able, no secrets) ride along, e.g. the GTID position the
        new primary started from, which failback uses to tell the old primary's own transactions."""
        try:
            entries = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            entries = []
        entries.append({"at": self.clock(), "from": from_region, "to": to_region, **details})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(entries[-50:], indent=2), encoding="utf-8")
