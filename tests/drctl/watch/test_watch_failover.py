"""drctl watch against real HTTPS origins and the Cloudflare DNS fake: the issue's scenarios."""

from __future__ import annotations

import json
import sys
import threading
import time

import pytest

from drctl.cloud.cloudflare import RetryPolicy
from drctl.cloud.origin_probe import ProbeResult
from drctl.watch.loop import WatchSettings
from tests.support.watch_shop import Shop

QUICK_RETRIES = RetryPolicy(base_delay=0.01, max_delay=0.02)


def settle(watchdog, cycles: int = 2) -> None:
    """`rise` (2) good rounds: every region is up, the lease is taken."""
    for _ in range(cycles):
        watchdog.run_cycle()


def alert_command(tmp_path) -> tuple[str, object]:
    """An --alert-command that appends each event (JSON on stdin) to a file."""
    out = tmp_path / "alerts.jsonl"
    script = f"import sys; open({str(out)!r}, 'a').write(sys.stdin.read() + '\\n')"
    return f"{sys.executable} -c \"{script}\"", out


def read_alerts(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_primary_down_switches_once_after_fall_cycles_to_the_dr_nodebalancer(shop: Shop):
    wd = shop.watchdog()
    settle(wd)
    shop.origin("us-east").healthy = False

    first = wd.run_cycle()
    assert not first.switched and shop.record_writes() == 0  # one failure is not `fall`
    second = wd.run_cycle()
    assert second.switched and shop.record_writes() == 1
    assert shop.region_pointed_at() == "eu-west"
    for _ in range(5):
        wd.run_cycle()
    assert shop.record_writes() == 1
    [switch] = shop.events(wd, "switch")
    assert (switch["from_region"], switch["to_region"], switch["kind"]) == ("us-east", "eu-west", "failover")


def test_a_and_aaaa_move_in_one_write(shop: Shop):
    wd = shop.watchdog()
    settle(wd)
    shop.origin("us-east").healthy = False
    settle(wd)
    [write] = shop.fake.record_writes(shop.a_id, shop.aaaa_id)
    assert write.path.endswith("/batch")
    assert {p["type"] for p in write.body["patches"]} == {"A", "AAAA"}
    assert shop.points_at() == ("127.0.0.3", "2600:3c03::3")


def test_flapping_primary_never_switches(shop: Shop):
    shop.origin("us-east").script = [False, True] * 20  # every other probe fails
    wd = shop.watchdog()
    for _ in range(40):
        wd.run_cycle()
    assert shop.record_writes() == 0
    assert shop.region_pointed_at() == "us-east"
    assert not [e for e in shop.events(wd, "region_state") if e["state"] == "down"]


def test_steady_state_makes_no_record_writes_and_one_lease_write(shop: Shop):
    wd = shop.watchdog()
    for _ in range(100):
        wd.run_cycle()
    assert shop.record_writes() == 0
    assert len(shop.fake.writes()) == 1  # taking the lease; renewal is due only after ttl/2 = 300 s
    # Quiet logs too: one line per change of state, not per probe.
    assert len(shop.events(wd, "region_state")) == 2


def test_all_regions_down_writes_nothing_and_alerts_once(shop: Shop, tmp_path):
    command, alerts = alert_command(tmp_path)
    wd = shop.watchdog("--alert-command", command)
    settle(wd)
    for origin in shop.origins:
        origin.healthy = False
    for _ in range(6):
        report = wd.run_cycle()
    assert report.decision.action == "all_down"
    assert shop.record_writes() == 0 and shop.region_pointed_at() == "us-east"
    [alert] = read_alerts(alerts)
    assert alert["event"] == "all_down" and alert["stack"] == "watch-test"


def test_every_switch_alerts_through_the_command_with_the_regions(shop: Shop, tmp_path):
    command, alerts = alert_command(tmp_path)
    wd = shop.watchdog("--alert-command", command)
    settle(wd)
    shop.origin("us-east").healthy = False
    settle(wd)
    [alert] = read_alerts(alerts)
    assert (alert["event"], alert["from_region"], alert["to_region"]) == ("switch", "us-east", "eu-west")


def test_rate_limited_switch_happens_after_the_retry_after_wait(shop: Shop):
    wd = shop.watchdog()
    settle(wd)
    shop.fake.fail(429, retry_after="1", method="POST", path="/batch$")
    shop.origin("us-east").healthy = False
    wd.run_cycle()
    report = wd.run_cycle()
    assert report.switched and shop.region_pointed_at() == "eu-west"
    refused, applied = shop.fake.log(method="POST", path="/batch$")[-2:]
    assert refused.status == 429 and applied.status == 200
    assert applied.at - refused.at >= 1.0
    assert shop.record_writes() == 1


def test_long_retry_after_defers_the_switch_to_a_later_cycle_without_calling_cloudflare(shop: Shop):
    wd = shop.watchdog()
    api = wd.dns.api
    now = [1000.0]
    api.clock = lambda: now[0]
    settle(wd)
    shop.fake.fail(429, retry_after="300", method="POST", path="/batch$")
    shop.origin("us-east").healthy = False
    settle(wd)
    assert shop.record_writes() == 0
    sent = len(shop.fake.requests)
    for _ in range(3):
        report = wd.run_cycle()
    assert len(shop.fake.requests) == sent  # the gate holds every call back
    assert "rate limit" in report.errors[0]
    now[0] += 300
    assert wd.run_cycle().switched and shop.region_pointed_at() == "eu-west"


def test_missing_dns_write_permission_is_named_and_the_loop_carries_on(shop: Shop):
    wd = shop.watchdog()
    settle(wd)
    shop.fake.writes_denied = True
    shop.origin("us-east").healthy = False
    for _ in range(4):
        report = wd.run_cycle()
    assert not report.switched and 'zone "DNS Write"' in report.errors[0]
    [logged] = shop.events(wd, "api_error")  # once, not once per cycle
    assert logged["kind"] == "permission" and 'zone "DNS Write"' in logged["error"]
    shop.fake.writes_denied = False
    assert wd.run_cycle().switched
    assert shop.events(wd, "api_ok")


def test_the_loop_survives_api_errors_and_switches_once_they_clear(shop: Shop):
    wd = shop.watchdog()
    wd.dns.api.retry = QUICK_RETRIES
    shop.fake.fail(500, times=10_000)
    stop = threading.Event()
    loop = threading.Thread(target=wd.run, args=(stop,))
    loop.start()
    try:
        shop.origin("us-east").healthy = False
        time.sleep(1.0)
        assert loop.is_alive() and shop.record_writes() == 0
        shop.fake.faults.clear()
        deadline = time.monotonic() + 20
        while shop.region_pointed_at() != "eu-west" and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        loop.join(10)
    assert shop.region_pointed_at() == "eu-west" and shop.record_writes() == 1
    assert not shop.events(wd, "cycle_failed")


def test_the_api_token_appears_in_no_log_line(shop: Shop):
    wd = shop.watchdog()
    wd.dns.api.retry = QUICK_RETRIES
    settle(wd)
    shop.fake.writes_denied = True
    shop.origin("us-east").healthy = False
    settle(wd, 3)
    shop.fake.fail(500, times=100)
    settle(wd, 2)
    text = wd.log.stream.getvalue()
    assert "api_error" in text and shop.fake.token not in text


def test_dry_run_writes_nothing_at_all(shop: Shop, tmp_path):
    command, alerts = alert_command(tmp_path)
    wd = shop.watchdog("--dry-run", "--alert-command", command)
    settle(wd)
    shop.origin("us-east").healthy = False
    for _ in range(5):
        wd.run_cycle()
    assert shop.fake.writes() == []  # no record change, no lease
    assert {r.method for r in shop.fake.requests} == {"GET"}
    [planned] = shop.events(wd, "switch_planned")
    assert planned["to_region"] == "eu-west"
    assert read_alerts(alerts) == []


def test_never_moves_to_a_later_region_that_is_down_but_skips_to_one_that_is_up(shop3: Shop):
    wd = shop3.watchdog()
    settle(wd)
    shop3.origin("us-east").healthy = False
    shop3.origin("eu-west").healthy = False
    settle(wd, 4)
    assert shop3.region_pointed_at() == "ap-south" and shop3.record_writes() == 1


def test_primary_recovery_does_not_fail_back_by_default(shop: Shop):
    wd = shop.watchdog()
    settle(wd)
    shop.origin("us-east").healthy = False
    settle(wd)
    shop.origin("us-east").healthy = True
    settle(wd, 10)
    assert shop.region_pointed_at() == "eu-west" and shop.record_writes() == 1


def test_auto_failback_waits_for_rise_and_the_stability_window(shop: Shop):
    wd = shop.watchdog("--auto-failback", "--stability-window", "60")
    now = [0.0]
    wd.clock = lambda: now[0]
    settle(wd)
    shop.origin("us-east").healthy = False
    settle(wd)
    assert shop.region_pointed_at() == "eu-west"
    shop.origin("us-east").healthy = True
    settle(wd)  # up again after `rise` probes, at now = 0
    now[0] = 59.0
    wd.run_cycle()
    assert shop.region_pointed_at() == "eu-west"
    now[0] = 60.0
    report = wd.run_cycle()
    assert report.switched and report.decision.kind == "failback"
    assert shop.region_pointed_at() == "us-east" and shop.record_writes() == 2


def test_a_record_pointing_elsewhere_is_left_alone(shop: Shop):
    shop.fake.records_by_id[shop.a_id]["content"] = "192.0.2.80"  # e.g. a maintenance page, set by hand
    wd = shop.watchdog()
    settle(wd)
    shop.origin("us-east").healthy = False
    settle(wd, 3)
    assert shop.record_writes() == 0
    [decision] = shop.events(wd, "decision")
    assert decision["action"] == "foreign"


# -- faults (issue 16) -----------------------------------------------------------------------------

def scripted(watchdog, answers: dict[str, list[bool]]) -> None:
    """Probe results from a script per region instead of sockets: the order in which regions fail
    is set by the test, not by timing."""
    left = {r.ipv4: list(answers[r.region]) for r in watchdog.regions}

    def probe(address: str) -> ProbeResult:
        ok = left[address].pop(0)
        return ProbeResult(ok, 0.001, 200 if ok else 503, None if ok else "HTTP 503 (expected 200)")

    watchdog.probe = probe


def test_every_region_down_at_once_never_switches_to_one_whose_latest_probe_failed(shop: Shop, tmp_path):
    """As seen against an independent fake: eu-west's first failed probe comes one round after
    us-east's, so us-east reaches `fall` while eu-west is still up on paper, its latest probe failed."""
    command, alerts = alert_command(tmp_path)
    wd = shop.watchdog("--alert-command", command)
    scripted(wd, {"us-east": [True, True, False, False, False], "eu-west": [True, True, True, False, False]})
    actions = [wd.run_cycle().decision.action for _ in range(5)]
    assert actions == ["stay", "stay", "stay", "hold", "all_down"]
    assert shop.record_writes() == 0 and shop.region_pointed_at() == "us-east"
    assert [a["event"] for a in read_alerts(alerts)] == ["all_down"]


def test_a_region_that_failed_a_probe_is_switched_to_only_after_rise_good_ones(shop: Shop):
    wd = shop.watchdog()
    scripted(wd, {"us-east": [True, True, False, False, False, False],
                  "eu-west": [True, True, True, False, True, True]})
    reports = [wd.run_cycle() for _ in range(6)]
    assert [r.decision.action for r in reports] == ["stay", "stay", "stay", "hold", "hold", "switch"]
    assert reports[-1].switched and shop.region_pointed_at() == "eu-west" and shop.record_writes() == 1


@pytest.mark.parametrize("how", ["dropped", "late"])
def test_a_switch_applied_but_its_answer_lost_is_recognised_logged_and_alerted_once(shop: Shop, tmp_path, how):
    command, alerts = alert_command(tmp_path)
    wd = shop.watchdog("--alert-command", command)
    wd.dns.api.retry, wd.dns.api.timeout = QUICK_RETRIES, 0.5
    settle(wd)
    shop.fake.lose_answer(method="POST", path="/batch$", late=1.0 if how == "late" else 0.0)
    shop.origin("us-east").healthy = False
    reports = [wd.run_cycle() for _ in range(4)]
    assert [r.switched for r in reports] == [False, True, False, False]
    assert shop.region_pointed_at() == "eu-west" and shop.record_writes() == 1
    assert len(shop.fake.log(method="POST", path="/batch$")) == 2  # taking the lease, the switch: never re-sent
    [switch] = shop.events(wd, "switch")
    assert (switch["from_region"], switch["to_region"]) == ("us-east", "eu-west")
    assert [a["event"] for a in read_alerts(alerts)] == ["switch"]
    assert not shop.events(wd, "api_error") and shop.events(wd, "lease")[-1]["held"]
    [lease] = shop.fake.find(type="TXT")
    assert wd.lease.fence().deletes == (lease["id"],)  # the lease posted with the switch is known as ours


def test_a_dns_only_record_with_a_custom_ttl_fails_over_and_keeps_its_ttl(shop: Shop):
    for record_id in (shop.a_id, shop.aaaa_id):
        shop.fake.records_by_id[record_id].update(proxied=False, ttl=300)
    wd = shop.watchdog()
    settle(wd)
    shop.origin("us-east").healthy = False
    settle(wd)
    assert shop.region_pointed_at() == "eu-west" and shop.record_writes() == 1
    records = [shop.fake.record(i) for i in (shop.a_id, shop.aaaa_id)]
    assert [(r["ttl"], r["proxied"]) for r in records] == [(300, False), (300, False)]


def test_a_switch_refused_again_and_again_alerts_with_the_count(shop: Shop, tmp_path):
    command, alerts = alert_command(tmp_path)
    wd = shop.watchdog("--alert-command", command)
    settle(wd)
    shop.fake.fail(400, code=9208, message="ttl must be a number", method="POST", path="/batch$", times=100)
    shop.origin("us-east").healthy = False
    for _ in range(8):  # `fall` is reached on the 2nd: seven refused switches
        wd.run_cycle()
    failing = [a for a in read_alerts(alerts) if a["event"] == "switch_failing"]
    assert [a["count"] for a in failing] == [3, 6]
    assert failing[0]["to_region"] == "eu-west" and "9208: ttl must be a number" in failing[0]["error"]
    assert [e["count"] for e in shop.events(wd, "switch_failing")] == [3, 6]
    assert shop.record_writes() == 0 and shop.events(wd, "lease")[-1]["held"]  # a 400 is not a lost lease


class StopAfter(threading.Event):
    """A stop event that records each wait instead of waiting, and stops the loop after `cycles`."""

    def __init__(self, cycles: int):
        super().__init__()
        self.cycles, self.waits = cycles, []

    def wait(self, timeout=None) -> bool:
        self.waits.append(timeout)
        if len(self.waits) >= self.cycles:
            self.set()
        return self.is_set()


def test_failing_cycles_still_wait_their_interval_and_are_counted_and_alerted(shop: Shop, tmp_path):
    command, alerts = alert_command(tmp_path)
    wd = shop.watchdog("--alert-command", command, "--interval", "0.05", "--timeout", "0.04")
    now = [0.0]
    wd.clock = lambda: now[0]

    def broken_round():
        now[0] += 0.2  # longer than the 0.05 s interval, then fails
        raise RuntimeError("probe pool is gone")

    wd.probe_round = broken_round
    stop = StopAfter(7)
    wd.run(stop)
    assert stop.waits == pytest.approx([0.05] * 7)  # never at once, however long the failed cycle took
    logged = shop.events(wd, "cycle_failed")
    assert [e["count"] for e in logged] == [1, 2, 3, 4, 6]  # the 1st, powers of two, and each alert
    assert logged[0]["error"] == "RuntimeError: probe pool is gone"
    assert [(a["event"], a["count"]) for a in read_alerts(alerts)] == [("cycle_failing", 3), ("cycle_failing", 6)]
    del wd.probe_round
    assert wd.guarded_cycle()
    [recovered] = shop.events(wd, "cycle_ok")
    assert recovered["failed_before"] == 7


@pytest.mark.parametrize("field", ["interval", "record_refresh", "stability_window"])
def test_watch_settings_refuse_a_nan_so_the_loop_cannot_spin(field):
    with pytest.raises(ValueError, match=f"WatchSettings.{field} must be a finite number of seconds"):
        WatchSettings(**{"interval": 1.0, "fall": 2, "rise": 2, field: float("nan")})
