"""The guard Linodes' reserved IPv4 addresses (components/guard.py), created before anything else:
the database firewalls, the managed allow-list and the NodeBalancer firewalls admit them, and the
guards themselves are created last, at these addresses, with those firewalls' ids in their user data."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_linode as linode

from components.tags import tags

ROLE = "guard"


class GuardAddresses(pulumi.ComponentResource):
    """The guards' reserved IPv4 addresses, which the database and web tiers admit."""

    def __init__(self, name: str, regions: Sequence[str], opts: pulumi.ResourceOptions | None = None):
        super().__init__("woocommerce-dr:index:GuardAddresses", name, None, opts)
        self.addresses: dict[str, linode.ReservedIp] = {
            region: linode.ReservedIp(f"{name}-{region}", region=region, tags=tags(region, ROLE),
                                      opts=pulumi.ResourceOptions(parent=self))
            for region in regions
        }
        self.ipv4s: pulumi.Output[list[str]] = pulumi.Output.all(*(r.address for r in self.addresses.values()))
        self.register_outputs({"ipv4s": self.ipv4s})
