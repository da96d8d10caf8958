"""Deadlines for API operations: one point in time that bounds an operation's retries, the waits a
server asks for (Retry-After) and every socket timeout, so a hung or throttling API costs a known
number of seconds instead of eating the RTO.

Each client gives every operation a budget of its own (`api_budget` derives the runbook's from
objectives.rtoSeconds); a caller narrows it for a stretch of work with `DeadlineScope.within`, and
the reads an operation makes to check its own write share the operation's deadline.
"""

from __future__ import annotations

import contextlib
import email.utils
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

DEFAULT_BUDGET = 30.0  # seconds per API operation when nothing better is known
MIN_BUDGET = 10.0
RTO_SHARE = 10  # an API operation of the runbook may use this fraction (1/N) of the RTO


def api_budget(rto_seconds: float) -> float:
    """Seconds one API operation may take, all attempts included, when the RTO is `rto_seconds`:
    a tenth of it (30 s of the default 300 s), never below MIN_BUDGET. A promotion makes a handful
    of calls on its critical path; a hung one must leave time to report it and act."""
    return max(MIN_BUDGET, rto_seconds / RTO_SHARE)


@dataclass(frozen=True)
class Deadline:
    at: float  # on `clock`
    what: str  # how the bound came about, for messages: "the 30 s budget of one API operation"
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def after(cls, seconds: float, what: str, clock: Callable[[], float] = time.monotonic) -> Deadline:
        return cls(clock() + seconds, what, clock)

    def remaining(self) -> float:
        return max(0.0, self.at - self.clock())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def allows(self, wait: float) -> bool:
        """Whether waiting `wait` seconds still leaves time for another attempt."""
        return wait < self.remaining()


def earliest(*deadlines: Deadline | None) -> Deadline:
    found = [d for d in deadlines if d is not None]
    if not found:
        raise ValueError("no deadline given")
    return min(found, key=lambda d: d.at - d.clock())


class DeadlineScope:
    """The deadlines callers have set around the current stretch of calls, per thread (a client
    may be shared by a probe pool and the main loop)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _stack(self) -> list[Deadline]:
        if not hasattr(self._local, "stack"):
            self._local.stack = []
        return self._local.stack

    @contextlib.contextmanager
    def within(self, deadline: Deadline) -> Iterator[Deadline]:
        """Every operation started inside ends by `deadline` (or its own budget, if sooner)."""
        stack = self._stack()
        stack.append(deadline)
        try:
            yield deadline
        finally:
            stack.pop()

    def current(self) -> Deadline | None:
        stack = self._stack()
        return earliest(*stack) if stack else None


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header as seconds from now (it may be a number of seconds or an HTTP date);
    None when absent or unreadable. Both APIs send it; the deadline decides whether to honour it."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(value)
    return None if parsed is None else max(0.0, email.utils.mktime_tz(parsed) - time.time())
