"""Tags and labels of Linode resources. Tags: who owns it (project, stack), where it is and what it
does, so a human in Cloud Manager and drctl's Linode lookups can both tell resources of two stacks
apart. Labels: unique in the account, so built from stack and region."""

from __future__ import annotations

import pulumi


def tags(region: str, role: str) -> list[str]:
    return [
        f"project:{pulumi.get_project()}",
        f"stack:{pulumi.get_stack()}",
        f"region:{region}",
        f"role:{role}",
    ]


# Longest labels the Linode API accepts for each kind of resource.
LABEL_LIMITS = {"instance": 64, "nodebalancer": 32, "firewall": 32, "database": 32}


def label(kind: str, *parts: str) -> str:
    """An account-unique Linode label from stack and region (two stacks share one account). Never
    cut short: a cut could drop the region and give two regions' resources the same label."""
    text = "-".join(parts)
    limit = LABEL_LIMITS[kind]
    if len(text) > limit:
        raise pulumi.RunError(
            f"the {kind} label {text!r} is {len(text)} characters (allowed: at most {limit}); use a shorter stack name"
        )
    return text
