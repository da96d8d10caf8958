"""Benchmark: drctl watch's failover policy against the seed's naive watchdog, on a simulated clock.

Both run the same scripted timelines, deterministically, with the prod stack's monitor settings
(interval 60 s, timeout 5 s, fall = consecutiveDown 2, rise = consecutiveUp 2):
- outage: the primary dies (probes hang until the timeout) at 13 offsets across a probe interval;
  detection-to-switch latency is measured from the moment it dies to the DNS write, and compared
  with the bound fall x interval + timeout;
- steady state: one simulated day with every region healthy: DNS record writes, lease writes and
  Cloudflare API requests per day (the rate limit is 1200 requests / 5 min);
- flapping: one simulated day of a primary that fails every other probe, and one that goes down for
  2 probes and up for 2: traffic switches per day;
- recovery: the primary is dead for 10 minutes, then healthy: how long until traffic is back on it;
- fast confirm (issue 15): the same with `--fast-interval` (after a first failed probe, probe every
  fast interval until fall), at the monitor's interval and at a shorter one; its bound is
  interval + (fall - 1) x fast interval + timeout. Besides the per-probe flapping patterns, a
  primary that blips (down 20 s every 7 min 13 s, whatever the probes): fast confirm trades
  immunity to short blips in *time* for speed, the counts (fall consecutive failures) stay the same.

drctl's side is the real code: `Watchdog` (fall/rise trackers, `drctl.watch.policy.decide`, the
record cache, `CloudflareLease`, `DnsFailover`) with `CloudflareApi` talking through the official
SDK to the Cloudflare fake from tests/, so writes and requests are counted at the "API". Only the
probes are simulated (a healthy origin answers in 50 ms, a dead one hangs until the timeout) and
cycles are started by this script when `Watchdog.next_delay()` says (the interval, or the fast
interval while a region confirms a failure), which is what `Watchdog.run` does when a cycle does
not overrun. The seed's policy is its script's loop: one check, then PUT the record every cycle.

Run: ./venv/bin/python bench/watch_policy.py
"""

from __future__ import annotations

import io
import statistics
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drctl.cloud.cloudflare import CloudflareApi
from drctl.cloud.dns_records import DnsFailover, RegionAddresses
from drctl.cloud.origin_probe import ProbeResult
from drctl.watch.lease import CloudflareLease
from drctl.watch.loop import EventLog, Watchdog, WatchSettings
from tests.support.fake_cloudflare import FakeCloudflare

INTERVAL, TIMEOUT, FALL, RISE = 60.0, 5.0, 2, 2
FAST = 5.0  # traffic.monitor.fastInterval's default
SEED_BOUND = INTERVAL + TIMEOUT  # the seed's script: one failed check, 60 s apart, 5 s timeout
HEALTHY_LATENCY = 0.05
DAY = 86_400.0
EPOCH = 1_800_000_000.0
ZONE, DOMAIN = "0" * 32, "shop.example.com"
PRIMARY = RegionAddresses("us-east", "203.0.113.10", "2001:db8:1::10")
DR = RegionAddresses("eu-west", "203.0.113.20", "2001:db8:2::20")

Health = Callable[[float, int], bool]  # (time the probe starts, probe number) -> does the primary answer


class SimClock:
    """Simulated seconds since the start of a scenario; probes running in parallel push it to the
    end of the slowest one, as real time would."""

    def __init__(self) -> None:
        self.now = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        return EPOCH + self.now

    def advance_to(self, t: float) -> None:
        with self._lock:
            self.now = max(self.now, t)


@dataclass
class Result:
    fall: int
    latencies: list[float]
    interval: float = INTERVAL
    fast_interval: float | None = None
    back_after: float | None = None  # seconds from the primary's recovery to traffic back on it
    record_writes_per_day: float | None = None
    lease_writes_per_day: float | None = None
    requests_per_day: float | None = None
    flap_alternating: int | None = None
    flap_two_two: int | None = None
    flap_blips: int | None = None


class Scenario:
    """One fake Cloudflare zone with the shop's A and AAAA records, and a simulated primary."""

    def __init__(self, primary_health: Health):
        self.clock = SimClock()
        self.health = primary_health
        self.fake = FakeCloudflare().start()
        self.a = self.fake.add_record(ZONE, "A", DOMAIN, PRIMARY.ipv4, proxied=True)["id"]
        self.aaaa = self.fake.add_record(ZONE, "AAAA", DOMAIN, PRIMARY.ipv6, proxied=True)["id"]
        self.api = CloudflareApi.from_env(environ={"CLOUDFLARE_API_TOKEN": self.fake.token,
                                                   "DRCTL_CLOUDFLARE_BASE_URL": self.fake.base_url},
                                          clock=self.clock)
        self.cycle_start = 0.0
        self.probes = 0
        self._lock = threading.Lock()

    def probe(self, address: str) -> ProbeResult:
        with self._lock:
            number = self.probes if address == PRIMARY.ipv4 else -1
            self.probes += address == PRIMARY.ipv4
        up = address != PRIMARY.ipv4 or self.health(self.cycle_start, number)
        latency = HEALTHY_LATENCY if up else TIMEOUT
        self.clock.advance_to(self.cycle_start + latency)
        return ProbeResult(up, latency, 200 if up else None, None if up else "timed out")

    def points_at_dr(self) -> bool:
        return self.fake.record(self.a)["content"] == DR.ipv4

    def close(self) -> None:
        self.fake.stop()


class DrctlPolicy:
    name = "drctl watch"
    fall = FALL

    def __init__(self, scenario: Scenario, auto_failback: bool = False, interval: float = INTERVAL,
                 fast_interval: float | None = None):
        s = scenario
        dns = DnsFailover(s.api, ZONE, DOMAIN, (s.a, s.aaaa), (PRIMARY, DR))
        lease = CloudflareLease(s.api, ZONE, DOMAIN, "bench", max(600.0, 4 * interval), s.clock.wall)
        settings = WatchSettings(interval, FALL, RISE, auto_failback=auto_failback, stability_window=300.0,
                                 fast_interval=fast_interval)
        self.watchdog = Watchdog(stack="bench", domain=DOMAIN, regions=(PRIMARY, DR), dns=dns, probe=s.probe,
                                 lease=lease, settings=settings, log=EventLog(io.StringIO(), s.clock.wall),
                                 clock=s.clock, wall=s.clock.wall)

    def cycle(self) -> bool:
        return self.watchdog.run_cycle().switched

    def next_delay(self) -> float:
        return self.watchdog.next_delay()


class SeedPolicy:
    """The seed's script: GET /healthz on the primary (timeout 5 s); PUT the A record to the primary
    when it answered 200, else to the DR NodeBalancer; every cycle."""

    name = "seed (naive)"
    fall = 1  # one failed check switches

    def __init__(self, scenario: Scenario):
        self.s = scenario

    def cycle(self) -> bool:
        s = self.s
        healthy = s.probe(PRIMARY.ipv4).ok
        before = s.fake.record(s.a)["content"]
        target = PRIMARY.ipv4 if healthy else DR.ipv4
        s.api.client.dns.records.update(s.a, zone_id=ZONE, type="A", name=DOMAIN, content=target, ttl=1, proxied=True)
        return before != target

    def next_delay(self) -> float:
        return INTERVAL  # time.sleep(60) after each check


def run(make_policy: Callable[[Scenario], object], health: Health, duration: float,
        stop_at_switch: bool = False) -> tuple[Scenario, list[float]]:
    """Cycles when the policy says (fixed rate, never before the last one ended) for `duration`;
    returns the scenario and the times of each switch."""
    scenario = Scenario(health)
    policy = make_policy(scenario)
    switches = []
    start = 0.0
    while start < duration:
        scenario.cycle_start = start
        scenario.clock.advance_to(start)
        if policy.cycle():
            switches.append(scenario.clock())
            if stop_at_switch:
                break
        start = max(start + policy.next_delay(), scenario.clock())
    return scenario, switches


def outage_latencies(make_policy: Callable[[Scenario], object]) -> list[float]:
    settled = 10 * INTERVAL
    latencies = []
    for offset in [0.001, *range(5, 60, 5), INTERVAL - 0.001]:
        dies_at = settled + offset
        scenario, switches = run(make_policy, lambda t, _n, d=dies_at: t < d, settled + 10 * INTERVAL,
                                 stop_at_switch=True)
        scenario.close()
        latencies.append(switches[0] - dies_at)
    return latencies


def steady_day(make_policy: Callable[[Scenario], object]) -> tuple[float, float, float]:
    scenario, _ = run(make_policy, lambda t, n: True, DAY)
    record = len(scenario.fake.record_writes(scenario.a, scenario.aaaa))
    writes = len(scenario.fake.writes())
    requests = len(scenario.fake.requests)
    scenario.close()
    return record, writes - record, requests


def flapping_switches(make_policy: Callable[[Scenario], object], health: Health) -> int:
    scenario, switches = run(make_policy, health, DAY)
    scenario.close()
    return len(switches)


def back_on_primary_after(make_policy: Callable[[Scenario], object]) -> float | None:
    dies, recovers = 10 * INTERVAL, 20 * INTERVAL
    scenario, switches = run(make_policy, lambda t, _n: not dies <= t < recovers, 3_600.0)
    scenario.close()
    back = [t for t in switches[1:] if t >= recovers]
    return back[0] - recovers if back else None


BLIP, BLIP_EVERY = 20.0, 433.0  # not a multiple of any interval: probes land at every phase of a blip


def blips(t: float, _n: int) -> bool:
    """Down for 20 s every 7 min 13 s, up in between."""
    return t % BLIP_EVERY >= BLIP


def measure(make_policy: Callable[[Scenario], object], fall: int, interval: float = INTERVAL,
            fast_interval: float | None = None) -> Result:
    record, lease, requests = steady_day(make_policy)
    return Result(
        fall=fall, interval=interval, fast_interval=fast_interval,
        latencies=outage_latencies(make_policy),
        back_after=back_on_primary_after(make_policy),
        record_writes_per_day=record, lease_writes_per_day=lease, requests_per_day=requests,
        flap_alternating=flapping_switches(make_policy, lambda t, n: n % 2 == 0),
        flap_two_two=flapping_switches(make_policy, lambda t, n: n % 4 < 2),
        flap_blips=flapping_switches(make_policy, blips),
    )


def table(rows: list[tuple[str, Result]]) -> str:
    head = ("policy", "detect->switch p50 / max (s)", "detection bound (s)",
            "record writes/day", "lease writes/day", "API requests/day",
            "switches/day: flap 1-1", "switches/day: flap 2-2", "switches/day: 20 s blips",
            "back on primary after recovery (s)")
    body = []
    for name, r in rows:
        # fall x interval + timeout; with fast confirm interval + (fall - 1) x fast interval + timeout
        bound = (r.interval + (r.fall - 1) * r.fast_interval + TIMEOUT if r.fast_interval
                 else r.fall * r.interval + TIMEOUT)
        body.append((
            name,
            f"{statistics.median(r.latencies):.1f} / {max(r.latencies):.1f}",
            f"{bound:.0f} ({'met' if max(r.latencies) <= bound else 'EXCEEDED'})",
            f"{r.record_writes_per_day:.0f}", f"{r.lease_writes_per_day:.0f}", f"{r.requests_per_day:.0f}",
            f"{r.flap_alternating}", f"{r.flap_two_two}", f"{r.flap_blips}",
            "manual" if r.back_after is None else f"{r.back_after:.0f}",
        ))
    widths = [max(len(str(row[i])) for row in (head, *body)) for i in range(len(head))]
    line = lambda row: "| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, body)])


def main() -> None:
    rows = [
        (SeedPolicy.name, measure(SeedPolicy, SeedPolicy.fall)),
        (DrctlPolicy.name, measure(DrctlPolicy, DrctlPolicy.fall)),
        (f"{DrctlPolicy.name} --auto-failback (window 300 s)",
         measure(lambda s: DrctlPolicy(s, auto_failback=True), DrctlPolicy.fall)),
    ]
    for interval in (INTERVAL, SEED_BOUND - FAST - TIMEOUT):
        rows.append((f"{DrctlPolicy.name} --interval {interval:g} --fast-interval {FAST:g}",
                     measure(lambda s, i=interval: DrctlPolicy(s, interval=i, fast_interval=FAST), DrctlPolicy.fall,
                             interval, FAST)))
    print(f"Monitor: interval {INTERVAL:.0f} s, timeout {TIMEOUT:.0f} s, fall {FALL}, rise {RISE}; "
          f"outage at 13 offsets within an interval; one simulated day per steady/flapping figure.")
    print("flap 1-1: the primary fails every other probe; flap 2-2: down 2 probes, up 2, repeated; "
          "20 s blips: down 20 s every 7 min 13 s; recovery: primary dead for 10 min.")
    print("Detection bound: fall x interval + timeout; with --fast-interval, interval + (fall - 1) x fast interval + "
          "timeout.")
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
