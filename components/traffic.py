"""Cloudflare in front of the regions: a load balancer with failover pools, or a DNS record that
`drctl watch` repoints (for zones without Cloudflare Load Balancing).

Load-balancer mode follows Cloudflare's failover pattern: one pool per region in config order,
`steering_policy="off"` so traffic goes to the first healthy pool, the last region as the
fallback pool. The load balancer's hostname is the shop's domain, so no DNS record of that name is
ever created beside it (the load balancer would shadow it, and `pulumi up` would fight drctl).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_cloudflare as cloudflare

from components.config import StackConfig
from components.fallback_page import FallbackPage


@dataclass(frozen=True)
class RegionOrigin:
    """A region's public entry point: its NodeBalancer's computed addresses."""

    region: str
    ipv4: pulumi.Input[str]
    ipv6: pulumi.Input[str | None]


class Traffic(pulumi.ComponentResource):
    monitor_id: pulumi.Output[str] | None
    pool_ids: dict[str, pulumi.Output[str]]
    load_balancer_id: pulumi.Output[str] | None
    dns_record_ids: list[pulumi.Output[str]]
    fallback: FallbackPage | None

    def __init__(self, name: str, config: StackConfig, origins: list[RegionOrigin],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("woocommerce-dr:index:Traffic", name, None, opts)
        self._name, self._config = name, config
        self.monitor_id, self.load_balancer_id = None, None
        self.pool_ids, self.dns_record_ids = {}, []
        if config.traffic.mode == "load-balancer":
            self._load_balancer(origins)
        else:
            self._dns_record(origins[0])
        # The maintenance page sits in front of either mode: it answers only when no origin does.
        self.fallback = (FallbackPage(f"{name}-fallback", config, opts=self._child())
                         if config.traffic.fallback_page.enabled else None)
        self.register_outputs({
            "monitorId": self.monitor_id,
            "poolIds": self.pool_ids,
            "loadBalancerId": self.load_balancer_id,
            "dnsRecordIds": self.dns_record_ids,
            "fallbackScriptName": self.fallback.script_name if self.fallback else None,
        })

    def _child(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self)

    def _load_balancer(self, origins: list[RegionOrigin]) -> None:
        cfg, t, m = self._config, self._config.traffic, self._config.traffic.monitor
        monitor = cloudflare.LoadBalancerMonitor(
            f"{self._name}-monitor",
            account_id=t.account_id,
            type="https",
            port=443,  # explicit: left unset, Cloudflare reports 0 and every preview shows a diff
            method="GET",
            path=m.path,
            expected_codes=m.expected_codes,
            interval=m.interval,
            timeout=m.timeout,
            retries=m.retries,
            consecutive_down=m.consecutive_down,
            consecutive_up=m.consecutive_up,
            header={"Host": [cfg.domain]},
            follow_redirects=False,  # /healthz never redirects; a redirect means a broken origin
            allow_insecure=False,  # origins serve a Cloudflare Origin CA certificate, which Cloudflare trusts
            description=f"{pulumi.get_project()} {pulumi.get_stack()}: {m.path} on every region",
            opts=self._child(),
        )
        self.monitor_id = monitor.id
        pools = []
        for origin in origins:
            pool = cloudflare.LoadBalancerPool(
                f"{self._name}-pool-{origin.region}",
                account_id=t.account_id,
                name=f"{pulumi.get_stack()}-{origin.region}",
                description=f"{pulumi.get_project()} {pulumi.get_stack()}: NodeBalancer in {origin.region}",
                # No origin port: Cloudflare fills in 0 and the provider then reports drift forever.
                origins=[{"name": f"{origin.region}-nodebalancer", "address": origin.ipv4, "enabled": True}],
                monitor=monitor.id,
                check_regions=list(cfg.check_regions_for(origin.region)),
                minimum_origins=1,
                enabled=True,
                opts=self._child(),
            )
            self.pool_ids[origin.region] = pool.id
            pools.append(pool)
        lb = cloudflare.LoadBalancer(
            f"{self._name}-lb",
            zone_id=t.zone_id,
            name=cfg.domain,
            description=f"{pulumi.get_project()} {pulumi.get_stack()}: failover in region order",
            default_pools=[p.id for p in pools],
            fallback_pool=pools[-1].id,
            steering_policy="off",
            proxied=True,
            session_affinity=t.session_affinity,
            adaptive_routing={"failover_across_pools": True},
            opts=self._child(),
        )
        self.load_balancer_id = lb.id
        self._alerts(pools)

    def _alerts(self, pools: list[cloudflare.LoadBalancerPool]) -> None:
        alerts, account = self._config.traffic.alerts, self._config.traffic.account_id
        if not (alerts.email or alerts.webhook_url):
            return
        mechanisms: dict[str, list[dict[str, pulumi.Input[str]]]] = {}
        if alerts.email:
            mechanisms["emails"] = [{"id": alerts.email}]
        if alerts.webhook_url:
            hook = cloudflare.NotificationPolicyWebhooks(
                f"{self._name}-alert-webhook",
                account_id=account,
                name=f"{pulumi.get_project()}-{pulumi.get_stack()}",
                url=alerts.webhook_url,
                opts=self._child(),
            )
            mechanisms["webhooks"] = [{"id": hook.id}]
        cloudflare.NotificationPolicy(
            f"{self._name}-alerts",
            account_id=account,
            name=f"{pulumi.get_project()} {pulumi.get_stack()}: pool health",
            description="A region's pool changed health: failover or failback is under way.",
            alert_type="load_balancing_health_alert",
            enabled=True,
            filters={"pool_ids": [p.id for p in pools], "new_healths": ["Healthy", "Unhealthy"]},
            mechanisms=mechanisms,
            opts=self._child(),
        )

    def _dns_record(self, primary: RegionOrigin) -> None:
        cfg = self._config
        # After creation the record's content belongs to `drctl watch`: a later `pulumi up` must
        # not point traffic back at a region the watchdog moved away from.
        owned_by_watchdog = pulumi.ResourceOptions(parent=self, ignore_changes=["content"])
        comment = f"{pulumi.get_project()} {pulumi.get_stack()}: drctl watch may repoint this record on failover"
        a = cloudflare.DnsRecord(
            f"{self._name}-a", zone_id=cfg.traffic.zone_id, name=cfg.domain, type="A", content=primary.ipv4,
            proxied=True, ttl=1, comment=comment, opts=owned_by_watchdog,
        )
        aaaa = cloudflare.DnsRecord(
            f"{self._name}-aaaa", zone_id=cfg.traffic.zone_id, name=cfg.domain, type="AAAA",
            content=pulumi.Output.from_input(primary.ipv6).apply(lambda ip: ip.split("/")[0] if ip else ip),
            proxied=True, ttl=1, comment=comment, opts=owned_by_watchdog,
        )
        self.dns_record_ids = [a.id, aaaa.id]
