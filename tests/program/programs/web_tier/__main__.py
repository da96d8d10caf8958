"""The web tier as __main__.py composes it, with each region's database endpoint made here in place of
the database tier's: literal hosts, and the CA, user and password as secrets, as the real ones are."""

import pulumi

from components import preflight
from components.config import load_stack_config
from components.endpoints import DatabaseEndpoint
from components.web_tier import build_web_tiers

config = load_stack_config()
preflight.check_regions(config)

endpoints = {
    r.region: DatabaseEndpoint(
        region=r.region,
        role="primary" if r == config.primary else "replica",
        host=f"db-{r.region}.test.invalid",
        port=3306 if r == config.primary else 3307,
        ca_cert_pem=pulumi.Output.secret(f"-----BEGIN CERTIFICATE-----\nCA-{r.region}\n-----END CERTIFICATE-----\n"),
        user=pulumi.Output.secret("woocommerce"),
        password=pulumi.Output.secret(f"db-password-{r.region}"),
    )
    for r in config.regions
}
web = build_web_tiers(config, endpoints)

pulumi.export("web", {region: tier.outputs for region, tier in web.regions.items()})
pulumi.export("webPublicIpv4s", {region: tier.public_ipv4s for region, tier in web.regions.items()})
pulumi.export("wordpressAdminPassword", web.site.admin_password)
