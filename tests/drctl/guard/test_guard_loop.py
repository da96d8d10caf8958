"""The guard loop against real MariaDB servers (a primary and its replica), the Cloudflare fake
(pool health, the lease and the votes as TXT records) and the Linode fake (fencing): it promotes
only when every signal agrees for the confirm time, through the runbook's unplanned promote, and
refuses, alerts or waits where the decision says so. Time is simulated (the confirm time passes
without waiting); the databases and APIs are real calls."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from drctl.cloud.cloudflare import CloudflareApi
from drctl.cloud.origin_probe import ProbeResult
from drctl.guard.command import GUARD_LEASE_PREFIX
from drctl.guard.loop import Guard, GuardSettings, cloudflare_view_from
from drctl.guard.metrics import GuardMetrics
from drctl.guard.probes import DatabaseProbe
from drctl.guard.votes import CloudflareVotes
from drctl.mysql import replication as r
from drctl.runbook.journal import Journal
from drctl.stack.command_line import iso_time
from drctl.watch.alerts import Alerter
from drctl.watch.lease import CloudflareLease, NoLease
from drctl.watch.loop import EventLog
from tests.support.runbook_support import ZONE, Shop, app_insert, order_ids, wait_caught_up
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration
EPOCH = 1_900_000_000.0
DOMAIN = "shop.example.com"


class SimClock:
    def __init__(self) -> None:
        self.now = EPOCH

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    shop: Shop
    cloud: object
    clock: SimClock
    healthz_ok: dict[str, bool] = field(default_factory=lambda: {"us-east": True})
    log: io.StringIO = field(default_factory=io.StringIO)
    alerts: Path | None = None

    def api(self) -> CloudflareApi:
        c = self.cloud.cloudflare
        return CloudflareApi.from_env(environ={"CLOUDFLARE_API_TOKEN": c.token, "DRCTL_CLOUDFLARE_BASE_URL": c.base_url})

    def guard(self, name: str = "guard-a", *, dry_run: bool = False, lease: bool = True, confirm: float = 60.0) -> Guard:
        rb = self.shop.runbook(self.cloud.load_balancer())
        api = self.api()
        settings = GuardSettings(interval=60, fast_interval=5, fall=2, rise=2, confirm_seconds=confirm,
                                 block_seconds=3600, vote_ttl=180, dry_run=dry_run, apply_timeout=10,
                                 catch_up_timeout=10, traffic_timeout=10)
        return Guard(
            guard_id=name, rb=rb,
            healthz=lambda region: ProbeResult(self.healthz_ok.get(region, True), 0.01, None,
                                               None if self.healthz_ok.get(region, True) else "timed out"),
            database=DatabaseProbe(rb.servers, timeout=1),
            cloudflare_view=cloudflare_view_from(rb),
            votes=CloudflareVotes(api, ZONE, DOMAIN, name, refresh=60, wall=self.clock),
            lease=(CloudflareLease(api, ZONE, DOMAIN, name, 600, self.clock, prefix=GUARD_LEASE_PREFIX,
                                   service="drctl-guard") if lease and not dry_run else NoLease(name)),
            settings=settings, log=EventLog(self.log, self.clock), metrics=GuardMetrics(),
            alerter=Alerter(command=f"sh -c 'cat >> {self.alerts}; echo >> {self.alerts}'") if self.alerts else None,
            clock=self.clock, wall=self.clock,
        )

    def other_guard_votes(self, lost: bool) -> None:
        CloudflareVotes(self.api(), ZONE, DOMAIN, "guard-b", refresh=60, wall=self.clock).cast(lost)

    def primary_region_dies(self) -> None:
        self.shop["us-east"].kill()
        self.healthz_ok["us-east"] = False
        self.cloud.cloudflare.set_pool_health("pool-us-east", False)

    def cycles(self, guard: Guard, seconds: float) -> list:
        """Cycles as `Guard.run` schedules them, for `seconds` of simulated time."""
        reports, end = [], self.clock.now + seconds
        while self.clock.now < end:
            reports.append(guard.run_cycle())
            self.clock.now += guard.next_delay()
        return reports

    def events(self, name: str) -> list[dict]:
        return [e for e in map(json.loads, self.log.getvalue().splitlines()) if e["event"] == name]

    def alerted(self) -> list[str]:
        if not self.alerts or not self.alerts.exists():
            return []
        return [json.loads(line)["event"] for line in self.alerts.read_text().splitlines() if line.strip()]


@pytest.fixture
def rig(mariadb_pair, tmp_path, cloud) -> Rig:
    shop = Shop.build(list(mariadb_pair), tmp_path, cloud.linode)
    return Rig(shop, cloud, SimClock(), alerts=tmp_path / "alerts.jsonl")


def writable(server) -> bool:
    with contextlib.closing(server.connect()) as conn:
        return not r.read_only_state(conn, r.Dialect.MARIADB).read_only


def test_healthy_primary_no_action(rig: Rig):
    guard = rig.guard()
    reports = rig.cycles(guard, 600)
    assert {rep.verdict.action for rep in reports[2:]} == {"healthy"}
    assert guard.next_delay() == 60


def test_a_read_only_primary_answers_but_is_not_seen_taking_writes(rig: Rig):
    guard = rig.guard()
    rig.cycles(guard, 120)
    seen = guard.primary_last_seen
    assert seen is not None
    rig.shop["us-east"].execute("SET GLOBAL read_only = ON")
    reports = rig.cycles(guard, 120)
    assert reports[-1].verdict.action == "healthy"  # it answers: not lost
    assert guard.primary_last_seen == seen  # but its last sighting taking writes stays where it was


def test_the_primary_region_lost_is_promoted_after_the_confirm_time_and_stays_fenced(rig: Rig):
    for i in range(1, 6):
        app_insert(rig.shop["us-east"], i)
    wait_caught_up(rig.shop["us-east"], rig.shop["eu-west"])
    guard = rig.guard()
    rig.cycles(guard, 180)
    rig.other_guard_votes(lost=True)
    rig.primary_region_dies()
    died = rig.clock.now
    reports = rig.cycles(guard, 300)
    promoted = [rep for rep in reports if rep.promotion is not None]
    assert len(promoted) == 1 and promoted[0].promotion.outcome == "done", promoted[0].promotion.message
    decided = rig.events("promote_start")[0]
    assert decided["target"] == "eu-west"
    confirming = rig.events("verdict")
    assert [e["action"] for e in confirming][-3:] == ["confirming", "promote", "promoted"]
    assert rig.clock.now - died >= 60
    assert writable(rig.shop["eu-west"]) and order_ids(rig.shop["eu-west"]) == {1, 2, 3, 4, 5}
    assert rig.cloud.serving() == "eu-west"
    assert rig.cloud.linode.firewalls[301]["inbound_policy"] == "DROP" and not rig.cloud.linode.firewalls[301]["inbound"]
    assert "promote_start" in rig.alerted() and "promoted" in rig.alerted()

    # The old primary comes back: it stays fenced, the guard never fails back.
    rig.shop["us-east"].start()
    rig.healthz_ok["us-east"] = True
    rig.cloud.cloudflare.set_pool_health("pool-us-east", True)
    after = rig.cycles(guard, 600)
    assert {rep.verdict.action for rep in after} == {"promoted"}
    assert not any(rep.promotion for rep in after)
    assert rig.cloud.linode.firewalls[301]["inbound_policy"] == "DROP"
    assert rig.cloud.serving() == "eu-west"


def test_a_guard_cut_off_from_the_primary_never_promotes(rig: Rig):
    guard = rig.guard()
    rig.cycles(guard, 180)
    rig.other_guard_votes(lost=False)
    rig.healthz_ok["us-east"] = False  # this guard cannot reach the NodeBalancer...
    guard.database = lambda region: ProbeResult(False, 1.0, None, "timed out")  # ...nor the database
    reports = rig.cycles(guard, 600)  # several times what a real loss takes to be promoted (the test above)
    assert "disagree" in {rep.verdict.action for rep in reports}
    assert not any(rep.promotion for rep in reports)
    assert writable(rig.shop["us-east"]) and not writable(rig.shop["eu-west"])
    assert rig.cloud.linode.writes() == [] and rig.alerted() == ["disagree"]


def test_cloudflare_unreachable_means_no_promotion(rig: Rig):
    guard = rig.guard(lease=False)
    rig.cycles(guard, 180)
    rig.other_guard_votes(lost=True)
    rig.primary_region_dies()
    rig.cloud.cloudflare.fail(403, times=10**6, message="the API refuses everything")
    reports = rig.cycles(guard, 600)
    assert {rep.verdict.action for rep in reports[-5:]} == {"undecided"}
    assert not any(rep.promotion for rep in reports)
    assert not writable(rig.shop["eu-west"])
    assert any("cloudflare" in e for rep in reports for e in rep.errors)


def test_another_operations_open_journal_is_never_run_beside(rig: Rig):
    rb = rig.shop.runbook()
    journal = Journal(rb.journal_path, "failback", {"to": "us-east"})
    journal.open()
    guard = rig.guard()
    rig.cycles(guard, 180)
    rig.other_guard_votes(lost=True)
    rig.primary_region_dies()
    reports = rig.cycles(guard, 600)
    assert reports[-1].verdict.action == "journal_open"
    assert "unfinished failback to=us-east" in reports[-1].verdict.reason
    assert not any(rep.promotion for rep in reports) and not writable(rig.shop["eu-west"])
    assert "journal_open" in rig.alerted()


def heartbeat_age(server) -> float:
    with contextlib.closing(server.connect()) as conn:
        return r.heartbeat_lag(conn) or 0.0


def test_loss_beyond_the_rpo_is_never_accepted_by_the_guard(mariadb_pair, tmp_path, cloud):
    # The replica stops receiving while the primary keeps taking writes, and the guard still sees the
    # primary answer and take writes well after the replica's newest data: beyond the RPO.
    shop = Shop.build(list(mariadb_pair), tmp_path, cloud.linode, rpo_seconds=2)
    rig = Rig(shop, cloud, SimClock(), alerts=tmp_path / "alerts.jsonl")
    guard = rig.guard()
    rig.cycles(guard, 180)
    with contextlib.closing(shop["eu-west"].connect()) as conn:
        r.stop_io_thread(conn, r.Dialect.MARIADB)
    app_insert(shop["us-east"], 1)
    wait_until(lambda: heartbeat_age(shop["eu-west"]) > 4, timeout=30, what="the cut-off replica to fall behind")
    rig.cycles(guard, 60)  # a good probe of the primary, now
    last_seen = guard.primary_last_seen
    rig.other_guard_votes(lost=True)
    rig.primary_region_dies()
    reports = rig.cycles(guard, 900)
    assert reports[-1].verdict.action == "await_operator"
    assert "drctl promote --accept-data-loss" in reports[-1].verdict.reason
    assert not any(rep.promotion for rep in reports)
    assert not writable(shop["eu-west"]) and cloud.linode.writes() == []
    assert rig.alerted().count("await_operator") == 1
    [assessed] = rig.events("assess")
    assert assessed["primary_last_seen"] == iso_time(last_seen) and assessed["loss_window"] > 4
    assert assessed["exceeds_rpo"] is True


def test_a_primary_dead_longer_than_the_rpo_is_promoted_when_its_last_sighting_is_within_it(
        mariadb_pair, tmp_path, cloud):
    # Detection and confirmation take longer than the RPO (the surviving data is older than it when
    # promote runs), but the guard saw the primary alive with no more data than the replica holds.
    shop = Shop.build(list(mariadb_pair), tmp_path, cloud.linode, rpo_seconds=3)
    rig = Rig(shop, cloud, SimClock(), alerts=tmp_path / "alerts.jsonl")
    guard = rig.guard()
    rig.cycles(guard, 180)
    app_insert(shop["us-east"], 1)
    with contextlib.closing(shop["us-east"].connect()) as conn, conn.cursor() as cur:
        cur.execute(r.HEARTBEAT_WRITE)  # the newest data is at least this new, whenever the event fires
    wait_caught_up(shop["us-east"], shop["eu-west"])
    rig.cycles(guard, 60)  # a good probe of the primary, with the replica caught up
    last_seen = guard.primary_last_seen
    assert last_seen is not None
    rig.other_guard_votes(lost=True)
    rig.primary_region_dies()
    wait_until(lambda: heartbeat_age(shop["eu-west"]) > 7, timeout=30, what="the surviving data to age past the RPO")
    reports = rig.cycles(guard, 600)
    [promotion] = [rep.promotion for rep in reports if rep.promotion is not None]
    assert promotion.outcome == "done", promotion.message
    loss = promotion.loss
    assert loss["dataAgeSeconds"] > 7 and loss["lossWindowSeconds"] <= 3 and not loss["exceedsRpo"]
    assert loss["primaryLastSeen"] == iso_time(last_seen) and loss["primaryLastSeenBy"] == "by drctl guard"
    assert "seen alive (at" in loss["summary"] and "by drctl guard" in loss["summary"]
    assert writable(shop["eu-west"]) and order_ids(shop["eu-west"]) == {1}


def test_dry_run_says_it_would_promote_and_changes_nothing(rig: Rig):
    guard = rig.guard(dry_run=True)
    rig.cycles(guard, 180)
    rig.other_guard_votes(lost=True)
    rig.primary_region_dies()
    rig.cycles(guard, 300)
    planned = rig.events("promote_planned")
    assert len(planned) == 1 and planned[0]["target"] == "eu-west"
    assert not writable(rig.shop["eu-west"])
    assert rig.cloud.linode.writes() == [] and rig.alerted() == []
    assert rig.cloud.cloudflare.find(name=f"{GUARD_LEASE_PREFIX}.{DOMAIN}") == []  # no lease taken
    votes = rig.cloud.cloudflare.find(name=f"_drctl-guard-vote.{DOMAIN}")
    assert [v["content"] for v in votes] == [f'"drctl-guard vote holder=guard-b lost=1 at={int(EPOCH + 180)}"']


def test_a_promotion_that_fails_part_way_is_resumed_from_its_journal_an_interval_later(rig: Rig):
    guard = rig.guard()
    rig.cycles(guard, 180)
    rig.other_guard_votes(lost=True)
    rig.primary_region_dies()
    rig.cloud.cloudflare.fail(403, times=1, method="PATCH", path=r"/zones/[^/]+/load_balancers/lb$",
                              message="the load balancer refuses this once")
    reports = rig.cycles(guard, 400)
    attempts = [(rep.observation.now, rep.promotion) for rep in reports if rep.promotion is not None]
    assert [p.outcome for _, p in attempts] == ["failed", "done"], [p.message for _, p in attempts]
    assert attempts[1][0] - attempts[0][0] >= 60  # not at every fast cycle
    steps = [s["name"] for s in attempts[1][1].steps]
    assert steps[:2] == ["assess", "fence-old-primary"]  # the same journal, resumed
    assert writable(rig.shop["eu-west"]) and rig.cloud.serving() == "eu-west"
    assert rig.alerted().count("promote_failed") == 1
