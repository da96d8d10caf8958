"""The guard's Prometheus metrics, in a registry of their own (the rehearsal runs two guards in one
process), served on --metrics-port like drctl watch's (drctl/watch/metrics.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import get_args

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge

from drctl.cloud.origin_probe import DOWN, UNKNOWN, UP
from drctl.guard.decision import Action, Cloudflare
from drctl.watch.metrics import MetricsEndpoint

SIGNALS = ("healthz", "database")


@dataclass
class GuardMetrics(MetricsEndpoint):
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.probes = Counter("drctl_guard_probes", "Probes of the primary by signal and result", ["signal", "result"],
                              registry=r)
        self.signal_state = Enum("drctl_guard_signal_state", "The primary's healthz and database after fall/rise",
                                 ["signal"], states=[UNKNOWN, UP, DOWN], registry=r)
        self.cloudflare_view = Enum("drctl_guard_cloudflare_view", "The primary pool's health as Cloudflare reports it",
                                    states=list(get_args(Cloudflare)), registry=r)
        self.verdict = Enum("drctl_guard_verdict", "The latest decision (docs/guard.md)", states=list(get_args(Action)),
                            registry=r)
        self.confirmed_for = Gauge("drctl_guard_confirmed_seconds", "Seconds every signal has said the primary is lost",
                                   registry=r)
        self.lease_held = Gauge("drctl_guard_lease_held", "1 while this guard holds the single-writer lease", registry=r)
        self.promotions = Counter("drctl_guard_promotions", "Promotions run, by outcome", ["outcome"], registry=r)
        self.promote_seconds = Gauge("drctl_guard_last_promote_duration_seconds", "How long the last promotion took",
                                     registry=r)
        self.errors = Counter("drctl_guard_errors", "Failed reads and writes by source (cloudflare, votes, lease, "
                              "assess)", ["source"], registry=r)
        self.alerts = Counter("drctl_guard_alerts", "Alerts sent", ["kind"], registry=r)
        self.alert_failures = Counter("drctl_guard_alert_failures", "Alert hook failures", registry=r)
        for signal in SIGNALS:
            self.signal_state.labels(signal=signal).state(UNKNOWN)
            for result in ("success", "failure"):
                self.probes.labels(signal=signal, result=result)
        self.cloudflare_view.state("unknown")
        self.verdict.state("healthy")
