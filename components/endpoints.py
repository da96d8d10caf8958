"""Typed hand-offs between components, so the database and web tiers meet through one shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pulumi


@dataclass(frozen=True)
class DatabaseEndpoint:
    """How one region's web nodes reach their database: the primary's endpoint in the primary
    region, the local replica elsewhere (read-only until `drctl promote`)."""

    region: str
    role: Literal["primary", "replica"]
    host: pulumi.Input[str]
    port: pulumi.Input[int]
    ca_cert_pem: pulumi.Input[str]  # secret Output
    user: pulumi.Input[str]
    password: pulumi.Input[str]  # secret Output
    database: str = "woocommerce"
    # Set for our MySQL Linodes: their private IP, which clients map `host` to (an /etc/hosts line)
    # and verify the certificate by name. Their public DNS record points at the public IP, where
    # the firewall admits only the other database servers; web nodes must come in over the
    # region's private network. None: a managed database, reached at its public name.
    address: pulumi.Input[str] | None = None
