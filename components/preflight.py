"""Deploy-time checks that must pass before any resource is created.

Region capabilities differ and change (a recorded list showed eu-west without Managed Databases),
so they are asked of the Linode API with the `linode.get_region` invoke at the start of every
preview and up. Failing here costs nothing; failing half-way through an `up` leaves orphans.
"""

from __future__ import annotations

import pulumi
import pulumi_linode as linode

from components.config import StackConfig
from components.regions import GUARD_CAPABILITIES, REQUIRED_CAPABILITIES


def required_capabilities(config: StackConfig) -> dict[str, tuple[str, ...]]:
    """Region id -> capabilities this stack needs there."""
    needs = {r.region: REQUIRED_CAPABILITIES for r in config.regions}
    if config.database.mode == "managed":
        needs[config.primary.region] = (*needs[config.primary.region], "Managed Databases")
    if config.automatic:
        for region in config.automation.guards:  # never a shop region (components/config.py)
            needs[region] = GUARD_CAPABILITIES
    return needs


def check_regions(config: StackConfig) -> None:
    """Raise pulumi.RunError naming every missing capability of every region."""
    missing = []
    guard_regions = set(config.automation.guards) if config.automatic else set()
    for region, needed in required_capabilities(config).items():
        offered = set(linode.get_region(id=region).capabilities or ())
        lacking = [c for c in needed if c not in offered]
        if lacking:
            missing.append(
                f"woocommerce-dr:{'automation.guards' if region in guard_regions else 'regions'}: "
                f"region {region!r} lacks {', '.join(lacking)} "
                f"(got capabilities: {', '.join(sorted(offered)) or 'none'}; allowed: a region offering "
                f"{', '.join(needed)})"
            )
    if missing:
        raise pulumi.RunError("the configured regions cannot host this stack:\n" + "\n".join(missing))
