"""Tags on every Linode resource: who owns it (project, stack), where it is and what it does, so a
human in Cloud Manager and drctl's Linode lookups can both tell resources of two stacks apart."""

from __future__ import annotations

import pulumi


def tags(region: str, role: str) -> list[str]:
    return [
        f"project:{pulumi.get_project()}",
        f"stack:{pulumi.get_stack()}",
        f"region:{region}",
        f"role:{role}",
    ]
