"""Resumable runbooks: every state-changing drctl command is a list of named steps whose progress is
written to a journal file after each step.

Re-running the same command after a crash (or a Ctrl-C, or a lost laptop) continues from the first
step not yet done, so no finished step runs twice; a different command against the same stack is
refused until the open journal is finished or explicitly abandoned. The journal is the record an
operator reads to know exactly where things stand: it is written atomically, so a crash mid-write
never leaves half a file.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drctl.stack.state_files import StateFileError, private_dir, read_json, write_json


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
            return read_json(self.path, "journal")
        except StateFileError as err:
            raise JournalError(str(err)) from None

    def _write(self) -> None:
        write_json(self.path, self.doc)


def _describe(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(params.items()))


class PromotionHistory:
    """When the last promotions happened, for the anti-flapping block period: a second promotion
    soon after the first is far more often a flapping monitor than a second disaster."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time):
        self.path, self.clock = path, clock

    def entries(self) -> list[dict[str, Any]]:
        """Every recorded promotion, oldest first. A history that cannot be read refuses
        (JournalError): an unreadable record must not let a flapping promotion through."""
        try:
            entries = read_json(self.path, "promotion history")
        except StateFileError as err:
            raise JournalError(f"{err} (it holds the anti-flapping record of past promotions)") from None
        if entries is None:
            return []
        if not isinstance(entries, list) or not all(isinstance(e, dict) and "at" in e for e in entries):
            raise JournalError(f"promotion history {self.path} is not a list of promotions; drctl will not guess "
                               "what it held: repair it or move it aside, then run again")
        return entries

    def last(self) -> dict[str, Any] | None:
        entries = self.entries()
        return entries[-1] if entries else None

    def check(self, block_seconds: int, force: bool) -> None:
        if force:
            return
        last = self.last()
        if not last:
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
        entries = self.entries()
        entries.append({"at": self.clock(), "from": from_region, "to": to_region, **details})
        write_json(self.path, entries[-50:])


class RunLock:
    """One state-changing run (promote, failback) per stack on this machine at a time: an exclusive
    lock on `<state dir>/lock`, whose file names the holder for the refusal. Without it two
    `promote --yes` started together would both fence and both promote. The kernel drops the lock
    when the holder exits, however it exits, so a crash never leaves it stuck."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time):
        self.path, self.clock = path, clock
        self._fd: int | None = None
        self.holder: dict[str, Any] | None = None

    def acquire(self, operation: str) -> dict[str, Any]:
        """Take the lock (again is a no-op) and return who holds it now; JournalError naming the
        other holder when another run has it."""
        if self._fd is not None:
            return self.holder or {}
        private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = _holder_of(fd)
            os.close(fd)
            raise JournalError(
                f"another drctl {other.get('operation', 'run')} is running on this stack (pid {other.get('pid', '?')} "
                f"on {other.get('host', '?')}, since {_clock(other.get('since'))}; lock {self.path}): wait for it "
                "to finish, or stop it first; two runs at once would both fence and promote") from None
        self.holder = {"operation": operation, "pid": os.getpid(), "host": socket.gethostname(), "since": self.clock()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(self.holder).encode(), 0)
        self._fd = fd
        return self.holder

    def release(self) -> None:
        if self._fd is None:
            return
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd, self.holder = None, None


def _holder_of(fd: int) -> dict[str, Any]:
    try:
        holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}


def _clock(at: Any) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at)) if isinstance(at, int | float) else "?"
