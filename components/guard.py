"""The guard Linodes: with `automation.promote: automatic`, one small Linode per `automation.guards`
region (never a shop region) running `drctl guard` (and `drctl watch` in dns-failover mode).

Each guard's public IPv4 is a Linode reserved IP (components/guard_addresses.py), created first: the database
firewalls, the managed allow-list and the NodeBalancer firewalls admit it, and the guard's user data
carries the stack outputs, firewall ids included. An address that only exists once the Linode does
would make that a cycle (firewall -> guard address, guard user data -> firewall id); a reserved one
also outlives a rebuilt or replaced guard, so no firewall changes when a guard does.

The guard's firewall admits SSH from `access.operatorCidrs` and nothing else: it serves nothing.
Its tokens (`guardLinodeToken`, `guardCloudflareToken`) reach it as secrets in its user data only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_linode as linode
import pulumi_random as random

from components import firewall_rules, guard_cloud_init
from components.config import StackConfig
from components.drctl_output import drctl_output
from components.guard_addresses import ROLE, GuardAddresses
from components.tags import label, tags


@dataclass(frozen=True)
class GuardTierArgs:
    regions: tuple[str, ...]
    instance_type: str
    image: str
    repo: str
    commit: str
    operator_cidrs: tuple[str, ...]
    ssh_keys: tuple[str, ...]
    run_watch: bool
    alert_webhook: str | None  # traffic.alerts.webhookUrl: where a guard calls for a person
    linode_token: pulumi.Input[str]
    cloudflare_token: pulumi.Input[str]

    @classmethod
    def from_config(cls, config: StackConfig) -> GuardTierArgs:
        automation, source = config.automation, config.automation.drctl_source
        if not config.automatic or source is None or not config.guard_linode_token or not config.guard_cloudflare_token:
            raise ValueError("guards are deployed only with automation.promote automatic (components/config.py)")
        return cls(
            regions=automation.guards, instance_type=automation.guard_type, image=automation.guard_image,
            repo=source.repo, commit=source.commit, operator_cidrs=config.access.operator_cidrs,
            ssh_keys=config.access.ssh_keys, run_watch=config.traffic.mode == "dns-failover",
            alert_webhook=config.traffic.alerts.webhook_url,
            linode_token=pulumi.Output.secret(config.guard_linode_token.get_secret_value()),
            cloudflare_token=pulumi.Output.secret(config.guard_cloudflare_token.get_secret_value()),
        )


class GuardTier(pulumi.ComponentResource):
    """A guard Linode per region, at its reserved address, with the guards' copy of `document`
    (the drctl stack outputs) in its user data."""

    def __init__(self, name: str, args: GuardTierArgs, addresses: GuardAddresses, document: Mapping[str, Any],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("woocommerce-dr:index:GuardTier", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stack = pulumi.get_stack()
        self.labels = {region: label("instance", pulumi.get_project(), stack, ROLE, region) for region in args.regions}
        reserved = {region: addresses.addresses[region].address for region in args.regions}
        # Every guard's copy of the outputs names all guards, by the addresses known before they exist.
        own_copy = drctl_output({**document, "automation": {**document["automation"], "guards": [
            {"region": region, "label": self.labels[region], "ipv4": reserved[region]} for region in args.regions
        ]}})
        # A guard that stops short of promoting (RPO exceeded, a journal open) alerts a person here.
        alerts = f"--alert-webhook {args.alert_webhook}" if args.alert_webhook else ""
        self.instances: dict[str, linode.Instance] = {}
        self.firewalls: dict[str, linode.Firewall] = {}
        for region in args.regions:
            # The API wants a root password with an image; nobody logs in with it (SSH keys only).
            root = random.RandomPassword(f"{name}-{region}-root", length=40, special=False, opts=child)
            user_data = pulumi.Output.all(own_copy, args.linode_token, args.cloudflare_token).apply(
                lambda v, region=region: guard_cloud_init.user_data(guard_cloud_init.GuardNode(
                    stack=stack, region=region, hostname=self.labels[region], repo=args.repo, commit=args.commit,
                    outputs=v[0], linode_token=v[1], cloudflare_token=v[2], run_watch=args.run_watch,
                    guard_args=alerts, watch_args=alerts)))
            self.instances[region] = linode.Instance(
                f"{name}-{region}",
                label=self.labels[region],
                region=region,
                type=args.instance_type,
                image=args.image,
                ipv4s=[reserved[region]],
                root_pass=root.result,
                authorized_keys=list(args.ssh_keys) or None,
                tags=tags(region, ROLE),
                # Secret: the tokens and the database passwords. A change rebuilds the guard with the
                # new outputs (its address stays: reserved): a guard acting on stale outputs (a
                # replaced firewall, a rotated password) would fail mid-promotion. The rebuild starts
                # its state directory afresh (docs/guard.md says when not to).
                metadatas=[linode.InstanceMetadataArgs(user_data=pulumi.Output.secret(user_data))],
                opts=child,
            )
            # One each, in its region: a guard admits SSH from the operators' networks and nothing else.
            self.firewalls[region] = linode.Firewall(
                f"{name}-{region}-firewall",
                label=label("firewall", stack, ROLE, region),
                inbound_policy="DROP",
                outbound_policy="ACCEPT",
                inbounds=firewall_rules.guard_inbound(args.operator_cidrs),
                linodes=[self.instances[region].id.apply(int)],
                tags=tags(region, "guard-firewall"),
                opts=child,
            )
        self.entries = [
            {"region": region, "label": self.labels[region], "ipv4": reserved[region],
             "ipv6": instance.ipv6.apply(_address)}
            for region, instance in self.instances.items()
        ]
        self.register_outputs({"guards": self.entries})


def _address(ipv6: str | None) -> str | None:
    """Linode reports the SLAAC address as a /128; the contract holds addresses."""
    return str(ipaddress.ip_interface(ipv6).ip) if ipv6 else None
