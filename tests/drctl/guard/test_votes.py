"""The guards' votes and lease in the shop's zone (the Cloudflare fake, through the official SDK):
one vote record per guard, replaced only when the vote changes or is due again; a lease of their own,
apart from the watchdog's."""

from __future__ import annotations

import pytest

from drctl.cloud.cloudflare import CloudflareApi
from drctl.guard.command import GUARD_LEASE_PREFIX
from drctl.guard.decision import Vote
from drctl.guard.votes import CloudflareVotes, FileVotes
from drctl.watch.lease import CloudflareLease
from tests.support.fake_cloudflare import FakeCloudflare

ZONE, DOMAIN = "z" * 32, "shop.example.com"
VOTES = f"_drctl-guard-vote.{DOMAIN}"


class Wall:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake():
    fake = FakeCloudflare().start()
    yield fake
    fake.stop()


def api(fake: FakeCloudflare) -> CloudflareApi:
    return CloudflareApi.from_env(environ={"CLOUDFLARE_API_TOKEN": fake.token, "DRCTL_CLOUDFLARE_BASE_URL": fake.base_url})


def test_each_guard_keeps_one_vote_and_reads_the_others(fake):
    wall = Wall()
    a, b = (CloudflareVotes(api(fake), ZONE, DOMAIN, name, refresh=60, wall=wall) for name in ("g-a", "g-b"))
    a.cast(False)
    b.cast(True)
    wall.now += 61
    a.cast(True)  # changed: replaced, not added
    assert sorted(r["content"] for r in fake.find(name=VOTES)) == [
        f'"drctl-guard vote holder=g-a lost=1 at={int(wall.now)}"',
        f'"drctl-guard vote holder=g-b lost=1 at={int(wall.now) - 61}"']
    assert a.others() == {"g-b": Vote(True, wall.now - 61)}
    assert b.others() == {"g-a": Vote(True, wall.now)}


def test_an_unchanged_vote_is_written_again_only_when_due(fake):
    wall = Wall()
    a = CloudflareVotes(api(fake), ZONE, DOMAIN, "g-a", refresh=60, wall=wall)
    a.cast(False)
    for _ in range(5):
        wall.now += 10
        a.cast(False)
    assert len(fake.writes()) == 1
    wall.now += 15
    a.cast(False)  # 65 s after the first: due, so its age tells the others this guard is alive
    assert len(fake.writes()) == 2


def test_records_that_are_not_votes_are_ignored(fake):
    fake.add_record(ZONE, "TXT", VOTES, '"left by hand"')
    fake.add_record(ZONE, "TXT", VOTES, '"drctl-guard vote holder=g-b lost=2 at=5"')
    assert CloudflareVotes(api(fake), ZONE, DOMAIN, "g-a", refresh=60).others() == {}


def test_the_guards_lease_is_not_the_watchdogs(fake):
    wall = Wall()
    watch = CloudflareLease(api(fake), ZONE, DOMAIN, "host-1", 600, wall)
    guard = CloudflareLease(api(fake), ZONE, DOMAIN, "host-1", 600, wall, prefix=GUARD_LEASE_PREFIX,
                            service="drctl-guard")
    assert watch.refresh().held and guard.refresh().held  # the same host runs both in dns-failover mode
    [guard_record] = fake.find(name=f"_drctl-guard.{DOMAIN}")
    assert guard_record["content"] == f'"drctl-guard holder=host-1 expires={int(wall.now) + 600}"'
    assert len(fake.find(name=f"_drctl-watch.{DOMAIN}")) == 1


def test_file_votes_for_guards_on_one_host(tmp_path):
    wall = Wall()
    a, b = FileVotes(tmp_path, "g1", wall), FileVotes(tmp_path, "g2", wall)
    a.cast(True)
    b.cast(False)
    (tmp_path / "torn.json").write_text("{")  # a half-written file is not a vote
    assert a.others() == {"g2": Vote(False, wall.now)}
    assert b.others() == {"g1": Vote(True, wall.now)}
