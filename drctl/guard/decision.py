"""Whether the primary region is lost and the guard should promote: a pure function over what the
guard observed, with the time as an input, so tests and the benchmark run exactly this code.

The primary is declared lost only when independent signals agree, and keep agreeing for
`confirm_seconds` (a primary that answers once in between starts the count again):
- the guard's own probes: the primary's NodeBalancer /healthz *and* the primary database are both
  down (after fall/rise, with fast confirm: drctl/cloud/origin_probe.py, drctl/watch/policy.py);
- Cloudflare's own view: the primary's pool is unhealthy (its monitors probe from many places).
  When that view cannot be read (API down, rate-limited) nothing is confirmed: the guard's own
  vantage point alone is never enough. In dns-failover mode Cloudflare has no view of the origins
  ("absent"): the guards' majority must then count at least two guards;
- the guards: of the guards whose vote is fresh (this one included), a strict majority votes
  "lost". A guard that votes "up" blocks; a guard that has stopped voting (dead, or cut off from
  Cloudflare, where votes are kept) is not counted, and cannot act either: acting needs the lease,
  which is kept in Cloudflare too.
Then, and only then, the guard that holds the single-writer lease promotes, unless:
- another operation's journal is open (a person is at work: never run beside them);
- the anti-flapping block period after the last promotion has not passed;
- the promotion would lose data beyond objectives.rpoSeconds (or the loss cannot be told): the
  guard alerts and waits for a person (`drctl promote --accept-data-loss`). It never accepts loss.
  The loss window runs from the newest surviving data to the guard's last probe that found the
  primary database answering and writable (drctl/guard/loop.py passes it to promote).
After a promotion it never fails back: the old primary stays fenced whatever its probes say,
and failback is `drctl failback`, by a person.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from drctl.cloud.origin_probe import DOWN, HealthTracker
from drctl.watch.policy import next_probe_delay

Action = Literal[
    "healthy",  # some signal says the primary is up: nothing to do
    "disagree",  # own probes say lost, Cloudflare or the other guards say up: a partition, not a loss
    "undecided",  # own probes say lost, but Cloudflare's view cannot be read: nothing can be confirmed
    "confirming",  # every signal agrees: waiting out confirm_seconds
    "assess",  # confirmed: the loss estimate is needed before deciding (the caller reads it, asks again)
    "promote",  # confirmed, within the RPO, lease held: run the unplanned promote
    "standby",  # confirmed, but another guard holds the lease: that one promotes
    "await_operator",  # confirmed, but the loss would exceed the RPO: alert, wait for a person
    "blocked",  # confirmed, but within the anti-flapping block period
    "journal_open",  # confirmed, but another operation's journal is open
    "promoted",  # a promotion away from this primary happened: stay put, never fail back
    "no_target",  # there is no replica left to promote
]
Cloudflare = Literal["healthy", "unhealthy", "unknown", "absent"]  # absent: no pools (dns-failover mode)


@dataclass(frozen=True)
class Vote:
    lost: bool  # this guard's own probes see the primary lost
    at: float  # when it was cast (wall-clock seconds)


@dataclass(frozen=True)
class Loss:
    """What promoting now may lose (drctl/runbook/promote.py's estimate)."""

    exceeds_rpo: bool
    summary: str


@dataclass(frozen=True)
class Observation:
    now: float  # wall-clock seconds
    primary: str  # the region whose primary the guard watches
    target: str | None  # the replica's region it would promote (None: none left)
    healthz: str  # own probes of the primary's NodeBalancer /healthz: UP / DOWN / UNKNOWN
    database: str  # own probes of the primary database: UP / DOWN / UNKNOWN
    cloudflare: Cloudflare  # the primary pool's health as Cloudflare reports it
    votes: Mapping[str, Vote]  # every other guard's latest vote, by guard id
    lease_held: bool  # this guard holds the single-writer lease
    lease_holder: str | None = None  # who does, when another guard
    other_journal: str | None = None  # an unfinished journal of another operation, described
    last_promotion_age: float | None = None  # seconds since the last promotion of this stack
    promoted_from_primary: bool = False  # the promotion history shows this primary was promoted away from
    loss: Loss | None = None  # the loss estimate, once asked for (action "assess")

    @property
    def own_lost(self) -> bool:
        return self.healthz == DOWN and self.database == DOWN


@dataclass(frozen=True)
class Settings:
    confirm_seconds: float
    block_seconds: float
    vote_ttl: float  # a vote older than this is not counted (its guard is dead or cut off)


@dataclass(frozen=True)
class Memory:
    """What the decision carries from one call to the next."""

    lost_since: float | None = None  # when every signal first agreed, this time round
    awaiting_operator: bool = False  # the RPO gate refused: no new attempt until the primary answers again


@dataclass(frozen=True)
class Verdict:
    action: Action
    reason: str
    target: str | None = None
    confirmed_for: float = 0.0  # seconds every signal has agreed

    @property
    def acts(self) -> bool:
        return self.action == "promote"


def quorum(own_lost: bool, votes: Mapping[str, Vote], now: float, ttl: float) -> tuple[int, int]:
    """(votes for "lost", guards voting): this guard and every guard whose vote is fresh."""
    fresh = [v for v in votes.values() if now - v.at <= ttl]
    return own_lost + sum(v.lost for v in fresh), 1 + len(fresh)


def decide(obs: Observation, memory: Memory, settings: Settings) -> tuple[Verdict, Memory]:
    """The verdict on `obs`, and the memory to pass to the next call."""
    if obs.promoted_from_primary:
        return Verdict("promoted", f"{obs.primary} was promoted away from: it stays fenced whatever its probes "
                       "say; failing back is a person's decision (drctl failback)"), Memory()
    if obs.target is None:
        return Verdict("no_target", f"no replica left to promote if {obs.primary} is lost"), Memory()
    signals = _signals(obs, settings)
    if signals is not None:  # not every signal agrees: the count starts again
        return signals, Memory()
    since = memory.lost_since if memory.lost_since is not None else obs.now
    memory = replace(memory, lost_since=since)
    agreed = obs.now - since
    if agreed < settings.confirm_seconds:
        return Verdict("confirming", f"every signal says {obs.primary} is lost, for {agreed:.0f} s of the "
                       f"{settings.confirm_seconds:g} s confirm time", obs.target, agreed), memory
    return _act(obs, memory, settings, agreed)


def _signals(obs: Observation, settings: Settings) -> Verdict | None:
    """A verdict when the signals do not all say "lost"; None when they do."""
    p = obs.primary
    if not obs.own_lost:
        up = [name for name, state in (("healthz", obs.healthz), ("database", obs.database)) if state != DOWN]
        return Verdict("healthy", f"{p}: own probes of its {' and '.join(up)} do not say down "
                       f"(healthz {obs.healthz}, database {obs.database})")
    if obs.cloudflare == "unknown":
        return Verdict("undecided", f"own probes say {p} is down, but Cloudflare's view cannot be read: "
                       "one vantage point is never enough, nothing is confirmed")
    lost, voting = quorum(True, obs.votes, obs.now, settings.vote_ttl)
    blockers = []
    if obs.cloudflare == "healthy":
        blockers.append(f"Cloudflare sees {p}'s pool healthy")
    if lost * 2 <= voting:
        blockers.append(f"only {lost} of {voting} guards see it lost (a majority is needed)")
    elif obs.cloudflare == "absent" and lost < 2:
        blockers.append("Cloudflare has no view of the origins in dns-failover mode and no other guard votes with "
                        "this one")
    if blockers:
        return Verdict("disagree", f"own probes say {p} is down, but {'; '.join(blockers)}: this vantage point "
                       "may be cut off from it; no promotion")
    return None


def _act(obs: Observation, memory: Memory, settings: Settings, agreed: float) -> tuple[Verdict, Memory]:
    p, t = obs.primary, obs.target
    lost = f"{p} lost (every signal for {agreed:.0f} s)"
    if obs.other_journal:
        return Verdict("journal_open", f"{lost}, but {obs.other_journal}: refusing to run beside it", t, agreed), memory
    if obs.last_promotion_age is not None and obs.last_promotion_age < settings.block_seconds:
        return Verdict("blocked", f"{lost}, but the last promotion was {obs.last_promotion_age:.0f} s ago, within the "
                       f"{settings.block_seconds:g} s block period: a person decides (drctl promote --force)",
                       t, agreed), memory
    if memory.awaiting_operator:
        return Verdict("await_operator", f"{lost}; promoting {t} would lose data beyond the RPO: waiting for a "
                       "person (drctl promote --accept-data-loss)", t, agreed), memory
    if not obs.lease_held:
        holder = obs.lease_holder or "another guard (or nobody yet)"
        return Verdict("standby", f"{lost}; the lease is held by {holder}: that guard promotes", t, agreed), memory
    if obs.loss is None:
        return Verdict("assess", f"{lost}: estimating what promoting {t} may lose", t, agreed), memory
    if obs.loss.exceeds_rpo:
        return (Verdict("await_operator", f"{lost}; promoting {t} may lose data beyond the RPO ({obs.loss.summary}): "
                        "not promoting; a person decides (drctl promote --accept-data-loss)", t, agreed),
                replace(memory, awaiting_operator=True))
    return Verdict("promote", f"{lost}: promoting {t} ({obs.loss.summary})", t, agreed), memory



# The verdicts that wait on signals the guard does not schedule (Cloudflare's monitors, the other
# guards, the confirm time): while its own probes say lost, it looks again every fast interval, so a
# decision is not held up by up to a whole interval after Cloudflare or a vote changes.
PENDING = ("disagree", "undecided", "confirming", "assess")


def next_cycle_delay(action: str, trackers: Iterable[HealthTracker], interval: float,
                     fast_interval: float | None) -> float:
    """Seconds to the guard's next cycle: the fast interval while a probe failure is being confirmed
    (drctl/watch/policy.py) or while the decision is pending on the other signals, else the interval."""
    trackers = list(trackers)
    lost = bool(trackers) and all(t.state == DOWN for t in trackers)
    if fast_interval is not None and lost and action in PENDING:
        return min(interval, fast_interval)
    return next_probe_delay(trackers, interval, fast_interval)
