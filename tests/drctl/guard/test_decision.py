"""The guard's decision as a table of scenarios on a simulated clock, at prod's scale: the guard
probes every 60 s (fast confirm every 5 s, fall 2, rise 2, timeout 5 s), Cloudflare's monitor sees
the primary's pool down about two intervals after it dies, confirmSeconds is 60.

Each scenario is a world (what this guard's probes see, what Cloudflare says, what the other guard
votes, the loss estimate, the journal, the history) and an expectation: promoted or not, and the
verdicts that must (or must not) have been given. The runner is the guard loop's schedule without
its I/O: trackers, fast confirm (drctl/watch/policy.py), `decide`, and on "assess" the loss estimate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from drctl.cloud.origin_probe import HealthTracker
from drctl.guard.decision import Loss, Memory, Observation, Settings, Vote, decide, next_cycle_delay, quorum

INTERVAL, FAST, TIMEOUT, FALL, RISE = 60.0, 5.0, 5.0, 2, 2
CONFIRM, BLOCK, VOTE_TTL = 60.0, 3600.0, 180.0
DIES = 600.0
CLOUDFLARE_SEES_IT = 2 * INTERVAL + 3 * TIMEOUT  # consecutiveDown 2, each probe with 2 retries
SETTINGS = Settings(confirm_seconds=CONFIRM, block_seconds=BLOCK, vote_ttl=VOTE_TTL)
WITHIN_RPO = Loss(False, "the newest surviving data is 0.9 s old (objective: 15 s)")
BEYOND_RPO = Loss(True, "the newest surviving data is 42.0 s old (objective: 15 s)")


def dead_after(t0: float) -> Callable[[float], bool]:
    return lambda t: t < t0


def cloudflare_after(t0: float) -> Callable[[float], str]:
    return lambda t: "unhealthy" if t >= t0 + CLOUDFLARE_SEES_IT else "healthy"


def cloudflare_monitor(alive: Callable[[float], bool]) -> Callable[[float], str]:
    """Cloudflare's monitor on the same primary: a probe every interval (17 s past), consecutiveDown
    and consecutiveUp 2, each probe taking its timeout (with retries) when the primary is dead."""
    def view(t: float) -> str:
        tracker = HealthTracker(FALL, RISE)
        k = 0
        while (start := k * INTERVAL + 17) + 3 * TIMEOUT <= t:
            tracker.observe(alive(start), start)
            k += 1
        return "unhealthy" if tracker.state == "down" else "healthy"
    return view


def other_guard_votes_lost_after(t0: float) -> Callable[[float], Vote | None]:
    return lambda t: Vote(lost=t >= t0 + INTERVAL + FAST + TIMEOUT, at=t - 1)


@dataclass
class World:
    alive: Callable[[float], bool] = field(default_factory=lambda: dead_after(DIES))  # this guard's probes
    cloudflare: Callable[[float], str] = field(default_factory=lambda: cloudflare_after(DIES))
    other_guard: Callable[[float], Vote | None] = field(default_factory=lambda: other_guard_votes_lost_after(DIES))
    loss: Loss = WITHIN_RPO
    lease_held: bool = True
    other_journal: str | None = None
    last_promotion_age: float | None = None
    until: float = 3 * 3600.0


@dataclass
class Run:
    promoted_at: float | None = None
    actions: list[tuple[float, str]] = field(default_factory=list)

    def seen(self, action: str) -> bool:
        return any(a == action for _, a in self.actions)


def simulate(world: World) -> Run:
    healthz, database = HealthTracker(FALL, RISE), HealthTracker(FALL, RISE)
    memory, run, t = Memory(), Run(), 0.0
    while t < world.until:
        ok = world.alive(t)
        done = t + (0.05 if ok else TIMEOUT)
        healthz.observe(ok, done)
        database.observe(ok, done)
        vote = world.other_guard(done)
        obs = Observation(
            now=done, primary="us-east", target="eu-west", healthz=healthz.state, database=database.state,
            cloudflare=world.cloudflare(done), votes={"guard-b": vote} if vote else {},
            lease_held=world.lease_held, lease_holder=None if world.lease_held else "guard-b",
            other_journal=world.other_journal, promoted_from_primary=run.promoted_at is not None,
            last_promotion_age=(world.last_promotion_age + done if world.last_promotion_age is not None else
                                done - run.promoted_at if run.promoted_at is not None else None),
        )
        verdict, memory = decide(obs, memory, SETTINGS)
        if verdict.action == "assess":
            verdict, memory = decide(Observation(**{**obs.__dict__, "loss": world.loss}), memory, SETTINGS)
        if not run.actions or run.actions[-1][1] != verdict.action:
            run.actions.append((done, verdict.action))
        if verdict.acts:
            assert run.promoted_at is None, "promoted twice"
            run.promoted_at = done
        t = max(t + next_cycle_delay(verdict.action, [healthz, database], INTERVAL, FAST), done)
    return run


def alternating(t: float) -> bool:
    """Up, then a probe in two fails (whatever the probe rate)."""
    return t < DIES or int(t // FAST) % 2 == 0


def down_briefly_every_five_minutes(t: float) -> bool:
    """Down for 70 s (long enough to be seen down) every 5 minutes, up in between."""
    return t < DIES or (t - DIES) % 300 >= 70


NEVER_VOTES: Callable[[float], Vote | None] = lambda t: None  # noqa: E731 - the other guard is down
SEES_IT_UP: Callable[[float], Vote | None] = lambda t: Vote(lost=False, at=t - 1)  # noqa: E731

# name, world, promotes, verdicts that must be seen
SCENARIOS = [
    ("primary-dead", World(), True, {"confirming", "promote"}),
    ("primary-dead-cloudflare-monitor", World(cloudflare=cloudflare_monitor(dead_after(DIES))), True, {"promote"}),
    ("guard-partitioned-from-the-primary", World(cloudflare=lambda t: "healthy", other_guard=SEES_IT_UP),
     False, {"disagree"}),
    ("partitioned-and-cloudflare-slow-to-see-it-up", World(other_guard=SEES_IT_UP), False, {"disagree"}),
    ("cloudflare-api-down", World(cloudflare=lambda t: "unknown"), False, {"undecided"}),
    ("dns-failover-mode-two-guards-agree", World(cloudflare=lambda t: "absent"), True, {"promote"}),
    ("dns-failover-mode-other-guard-down", World(cloudflare=lambda t: "absent", other_guard=NEVER_VOTES), False,
     {"disagree"}),
    ("one-of-two-guards-down", World(other_guard=NEVER_VOTES), True, {"promote"}),
    ("flapping-primary", World(alive=alternating, cloudflare=cloudflare_monitor(alternating)), False, set()),
    ("primary-down-70-s-every-5-minutes", World(alive=down_briefly_every_five_minutes,
                                                cloudflare=cloudflare_monitor(down_briefly_every_five_minutes),
                                                other_guard=lambda t: None), False, {"disagree"}),
    ("primary-back-after-promotion", World(alive=lambda t: not DIES <= t < DIES + 900), True, {"promoted"}),
    ("rpo-exceeded", World(loss=BEYOND_RPO), False, {"await_operator"}),
    ("another-journal-open", World(other_journal="an unfinished failback to=us-east is recorded"), False,
     {"journal_open"}),
    ("within-the-block-period", World(last_promotion_age=-DIES, until=DIES + BLOCK - 60), False, {"blocked"}),
    ("another-guard-holds-the-lease", World(lease_held=False), False, {"standby"}),
]


@pytest.mark.parametrize(("world", "promotes", "verdicts"), [s[1:] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS])
def test_scenario(world: World, promotes: bool, verdicts: set[str]):
    run = simulate(world)
    assert (run.promoted_at is not None) == promotes, run.actions
    assert verdicts <= {a for _, a in run.actions}, run.actions


def test_a_dead_primary_is_promoted_within_detection_plus_cloudflare_plus_confirm():
    run = simulate(World())
    # Every signal agrees once Cloudflare sees it (the slowest); then confirmSeconds. While it waits on
    # them the guard looks every fast interval, not every interval.
    assert DIES + CLOUDFLARE_SEES_IT + CONFIRM <= run.promoted_at <= DIES + CLOUDFLARE_SEES_IT + CONFIRM + 2 * FAST


def test_the_guard_looks_again_every_fast_interval_only_while_its_own_probes_say_lost_and_it_waits():
    down, up = HealthTracker(FALL, RISE), HealthTracker(FALL, RISE)
    for t in (0, 5):
        down.observe(False, t)
    for t in (0, 60):
        up.observe(True, t)
    assert next_cycle_delay("confirming", [down, down], INTERVAL, FAST) == FAST
    assert next_cycle_delay("disagree", [down, down], INTERVAL, FAST) == FAST
    assert next_cycle_delay("promoted", [down, down], INTERVAL, FAST) == INTERVAL
    assert next_cycle_delay("standby", [down, down], INTERVAL, FAST) == INTERVAL
    assert next_cycle_delay("healthy", [down, up], INTERVAL, FAST) == INTERVAL
    assert next_cycle_delay("confirming", [down, down], INTERVAL, None) == INTERVAL


def test_after_a_promotion_the_old_primary_stays_promoted_away_from_whatever_its_probes_say():
    run = simulate(World(alive=lambda t: not DIES <= t < DIES + 900))
    after = [a for at, a in run.actions if at > run.promoted_at]
    assert after == ["promoted"]


def test_the_rpo_gate_is_not_retried_until_the_primary_answers_again():
    run = simulate(World(loss=BEYOND_RPO))
    assert [a for _, a in run.actions][-1] == "await_operator"
    assert not run.seen("assess")  # decided on the first estimate and kept waiting


def test_a_confirm_interrupted_by_one_good_answer_starts_again():
    base = Observation(now=0, primary="us-east", target="eu-west", healthz="down", database="down",
                       cloudflare="unhealthy", votes={}, lease_held=True)
    v, m = decide(base, Memory(), SETTINGS)
    assert v.action == "confirming"
    v, m = decide(Observation(**{**base.__dict__, "now": 50, "healthz": "up"}), m, SETTINGS)
    assert v.action == "healthy" and m.lost_since is None
    v, m = decide(Observation(**{**base.__dict__, "now": 100}), m, SETTINGS)
    assert v.action == "confirming" and v.confirmed_for == 0


def test_one_signal_up_is_enough_to_stay():
    base = Observation(now=0, primary="us-east", target="eu-west", healthz="down", database="up",
                       cloudflare="unhealthy", votes={}, lease_held=True)
    assert decide(base, Memory(lost_since=-1000), SETTINGS)[0].action == "healthy"


def test_quorum_counts_fresh_votes_and_this_guard():
    votes = {"b": Vote(True, 95), "c": Vote(False, 99), "d": Vote(True, 0)}  # d is stale
    assert quorum(True, votes, 100, ttl=30) == (2, 3)
    assert quorum(False, votes, 100, ttl=30) == (1, 3)


def test_three_guards_two_seeing_it_up_block():
    obs = Observation(now=100, primary="us-east", target="eu-west", healthz="down", database="down",
                      cloudflare="unhealthy", votes={"b": Vote(False, 99), "c": Vote(False, 99)}, lease_held=True)
    verdict, _ = decide(obs, Memory(lost_since=0), SETTINGS)
    assert verdict.action == "disagree" and "only 1 of 3 guards" in verdict.reason


def test_no_replica_left_means_nothing_to_promote():
    obs = Observation(now=0, primary="eu-west", target=None, healthz="down", database="down",
                      cloudflare="unhealthy", votes={}, lease_held=True)
    assert decide(obs, Memory(), SETTINGS)[0].action == "no_target"
