"""The single-writer lease: two watchdogs never fight over the record."""

from __future__ import annotations

import threading
import time

from drctl.cloud.cloudflare import CloudflareApi
from drctl.watch.lease import CloudflareLease, FileLease
from tests.support.https_origins import DOMAIN
from tests.support.watch_shop import ZONE, Shop

LEASE_NAME = f"_drctl-watch.{DOMAIN}"


class Wall:
    """A wall clock the test moves by hand."""

    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def lease_holders(shop: Shop) -> list[str]:
    return [r["content"].split("holder=")[1].split()[0] for r in shop.fake.find(name=LEASE_NAME, type="TXT")]


def test_two_watchers_one_writes_the_other_observes(shop: Shop):
    w1 = shop.watchdog("--holder-id", "w1")
    w2 = shop.watchdog("--holder-id", "w2")
    for _ in range(2):
        w1.run_cycle()
        w2.run_cycle()
    assert lease_holders(shop) == ["w1"]
    shop.origin("us-east").healthy = False
    for _ in range(3):
        w2.run_cycle()  # w2 sees the outage first, and must leave the write to w1
        w1.run_cycle()
    assert shop.record_writes() == 1 and shop.region_pointed_at() == "eu-west"
    assert shop.events(w1, "switch") and not shop.events(w2, "switch")
    [deferred] = shop.events(w2, "switch_deferred")
    assert "held by w1" in deferred["reason"]


def test_two_watcher_loops_running_together_write_once(shop: Shop):
    watchdogs = [shop.watchdog("--holder-id", f"w{i}") for i in (1, 2)]
    stop = threading.Event()
    loops = [threading.Thread(target=wd.run, args=(stop,)) for wd in watchdogs]
    for loop in loops:
        loop.start()
    try:
        time.sleep(0.3)
        shop.origin("us-east").healthy = False
        deadline = time.monotonic() + 20
        while shop.region_pointed_at() != "eu-west" and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        stop.set()
        for loop in loops:
            loop.join(10)
    assert shop.region_pointed_at() == "eu-west" and shop.record_writes() == 1
    assert sum(len(shop.events(wd, "switch")) for wd in watchdogs) == 1


def holder_and_standby(shop: Shop, wall: Wall):
    """w1 takes a 120 s lease, w2 finds it taken."""
    w1, w2 = (shop.watchdog("--holder-id", name, "--lease-ttl", "120", wall=wall) for name in ("w1", "w2"))
    w1.run_cycle()
    w2.run_cycle()
    return w1, w2


def test_a_dead_holder_is_replaced_after_its_lease_expires(shop: Shop):
    wall = Wall()
    _, w2 = holder_and_standby(shop, wall)
    # w1 dies without a word. Until its lease (120 s) and the clock-skew allowance (10 s) run out,
    # w2 only observes, even with the primary down.
    shop.origin("us-east").healthy = False
    wall.now += 125
    for _ in range(3):
        w2.run_cycle()
    assert shop.record_writes() == 0 and lease_holders(shop) == ["w1"]
    wall.now += 10
    w2.run_cycle()
    assert lease_holders(shop) == ["w2"]
    assert shop.region_pointed_at() == "eu-west" and shop.events(w2, "switch")


def test_a_holder_that_stops_cleanly_hands_over_within_a_quarter_ttl(shop: Shop):
    wall = Wall()
    w1, w2 = holder_and_standby(shop, wall)
    w1.close()
    assert lease_holders(shop) == []
    wall.now += 30
    w2.run_cycle()
    assert lease_holders(shop) == ["w2"]


def test_the_holder_renews_at_half_its_ttl(shop: Shop):
    wall = Wall()
    wd = shop.watchdog("--lease-ttl", "120", wall=wall)
    wd.run_cycle()
    batches = lambda: len(shop.fake.log(method="POST", path="/batch$", ok=True))  # noqa: E731
    assert batches() == 1
    wall.now += 59
    wd.run_cycle()
    assert batches() == 1
    wall.now += 1
    wd.run_cycle()
    assert batches() == 2 and len(shop.fake.find(name=LEASE_NAME)) == 1


def test_a_watchdog_that_lost_its_lease_cannot_write(shop: Shop):
    w1 = shop.watchdog("--holder-id", "w1")
    settle = [w1.run_cycle() for _ in range(2)]
    assert settle[-1].states == {"us-east": "up", "eu-west": "up"}
    # Someone else takes the lease behind w1's back (as if w1 had stalled past its expiry).
    [mine] = shop.fake.find(name=LEASE_NAME)
    del shop.fake.records_by_id[mine["id"]]
    shop.fake.add_record(ZONE, "TXT", LEASE_NAME, f'"drctl-watch holder=w9 expires={int(time.time()) + 600}"')
    shop.origin("us-east").healthy = False
    for _ in range(3):
        report = w1.run_cycle()
    assert shop.record_writes() == 0 and not report.switched
    assert shop.events(w1, "lease")[-1]["holder"] == "w9"


def test_simultaneous_creation_leaves_one_lease_and_the_younger_creator_stands_by(fake_cf, monkeypatch):
    api = CloudflareApi.from_env(environ={"CLOUDFLARE_API_TOKEN": fake_cf.token,
                                          "DRCTL_CLOUDFLARE_BASE_URL": fake_cf.base_url})
    wall = Wall()
    first = CloudflareLease(api, ZONE, DOMAIN, "w1", 120, wall)
    second = CloudflareLease(api, ZONE, DOMAIN, "w2", 120, wall)
    assert first.refresh().held
    # w2 read "no lease" just before w1 created it: it creates one too, then must back off.
    real_list, reads = api.list_dns_records, []

    def stale_first_read(*args, **kwargs):
        reads.append(1)
        return [] if len(reads) == 1 else real_list(*args, **kwargs)

    monkeypatch.setattr(api, "list_dns_records", stale_first_read)
    state = second.refresh()
    assert not state.held and state.holder == "w1"
    contents = [r["content"] for r in fake_cf.find(name=LEASE_NAME, type="TXT")]
    assert len(contents) == 1 and "holder=w1" in contents[0]
    assert first.refresh().held


def test_an_unreadable_lease_record_counts_as_expired(fake_cf):
    api = CloudflareApi.from_env(environ={"CLOUDFLARE_API_TOKEN": fake_cf.token,
                                          "DRCTL_CLOUDFLARE_BASE_URL": fake_cf.base_url})
    fake_cf.add_record(ZONE, "TXT", LEASE_NAME, '"edited by hand"')
    lease = CloudflareLease(api, ZONE, DOMAIN, "w1", 120, Wall())
    assert lease.refresh().held
    [record] = fake_cf.find(name=LEASE_NAME)
    assert "holder=w1" in record["content"]


def test_file_lease_admits_one_holder_per_host_and_frees_on_release(tmp_path):
    path = str(tmp_path / "watch.lock")
    first, second = FileLease("w1", path), FileLease("w2", path)
    assert first.refresh().held
    state = second.refresh()
    assert not state.held and state.holder == "w1"
    assert second.fence() is None
    first.release()
    assert second.refresh().held
