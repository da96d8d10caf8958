"""What the whole shop shares across regions: WordPress's keys and salts and the first administrator.

One set per stack, handed to every region's web tier: with different salts a shopper's login and
cart cookie would stop working the moment Cloudflare fails over to another region.
"""

from __future__ import annotations

import pulumi
import pulumi_random as random

from components.web_node import WORDPRESS_KEY_NAMES

ADMIN_USER = "shopadmin"


class WordPressSite(pulumi.ComponentResource):
    keys: dict[str, pulumi.Output[str]]
    admin_password: pulumi.Output[str]

    def __init__(self, name: str, domain: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("woocommerce-dr:index:WordPressSite", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.domain = domain
        self.admin_user = ADMIN_USER
        # WordPress mails this address; change it in the dashboard after the first login.
        self.admin_email = f"webmaster@{domain}"
        self.keys = {
            key: random.RandomPassword(
                f"{name}-{key.lower().replace('_', '-')}", length=64, special=True,
                # Quotes and backslashes are safe in JSON, but keep the keys copy-pasteable anyway.
                override_special="!#%&()*+,-.:;<=>?@[]^_{|}~", opts=child,
            ).result
            for key in WORDPRESS_KEY_NAMES
        }
        self.admin_password = random.RandomPassword(f"{name}-admin-password", length=24, special=False, opts=child).result
        self.register_outputs({"adminUser": self.admin_user, "adminEmail": self.admin_email,
                               "adminPassword": self.admin_password})
