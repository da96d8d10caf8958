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
    # Set when `host` is a name only this stack knows (the MySQL Linodes' certificates name the
    # server, because its IP exists only after the certificate is made): clients map `host` to this
    # IP (an /etc/hosts line) and verify the certificate by name. None: `host` is in public DNS.
    address: pulumi.Input[str] | None = None
