"""The watchdog's Prometheus metrics, in a registry of their own (a test may run several
watchdogs in one process). Served by `serve()` on --metrics-port; drctl guard serves its own
(drctl/guard/metrics.py) the same way."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, start_http_server

from drctl.cloud.origin_probe import DOWN, UNKNOWN, UP


class MetricsEndpoint:
    """A registry of one service's metrics and the /metrics endpoint that serves it (drctl watch and
    drctl guard alike)."""

    registry: CollectorRegistry
    alerts: Counter  # by kind
    alert_failures: Counter

    def count_alert(self, name: str, failures: int) -> None:
        """One alert sent, and the hook failures on its way (alerts.deliver's `counted`)."""
        self.alerts.labels(kind=name).inc()
        if failures:
            self.alert_failures.inc(failures)

    def serve(self, port: int, address: str) -> int:
        """Start the /metrics endpoint in a daemon thread; return the bound port (port 0 picks one)."""
        self._server, _thread = start_http_server(port, addr=address, registry=self.registry)
        return self._server.server_address[1]

    def close(self) -> None:
        server = getattr(self, "_server", None)
        if server is not None:
            server.shutdown()
            server.server_close()
            self._server = None


@dataclass
class WatchMetrics(MetricsEndpoint):
    regions: Iterable[str]
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.probes = Counter("drctl_watch_probes", "Origin probes by result", ["region", "result"], registry=r)
        self.probe_seconds = Histogram("drctl_watch_probe_duration_seconds", "Origin probe duration", ["region"],
                                       buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10), registry=r)
        self.region_state = Enum("drctl_watch_region_state", "Region health after fall/rise", ["region"],
                                 states=[UNKNOWN, UP, DOWN], registry=r)
        self.record_region = Gauge("drctl_watch_record_region", "1 for the region the DNS record points at",
                                   ["region"], registry=r)
        self.switches = Counter("drctl_watch_switches", "DNS record switches made", ["from_region", "to_region", "kind"],
                                registry=r)
        self.last_switch = Gauge("drctl_watch_last_switch_timestamp_seconds", "Unix time of the last switch",
                                 registry=r)
        self.api_errors = Counter("drctl_watch_api_errors", "Failed Cloudflare API operations", ["kind"], registry=r)
        self.lease_held = Gauge("drctl_watch_lease_held", "1 while this watchdog holds the writer lease", registry=r)
        self.alerts = Counter("drctl_watch_alerts", "Alerts sent", ["kind"], registry=r)
        self.alert_failures = Counter("drctl_watch_alert_failures", "Alert hook failures", registry=r)
        for region in self.regions:
            self.region_state.labels(region=region).state(UNKNOWN)
            self.record_region.labels(region=region).set(0)
            for result in ("success", "failure"):
                self.probes.labels(region=region, result=result)

    def point_at(self, region: str | None, regions: Iterable[str]) -> None:
        for name in regions:
            self.record_region.labels(region=name).set(1 if name == region else 0)
