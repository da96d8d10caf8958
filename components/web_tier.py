"""One region's web tier: WooCommerce Linodes behind a NodeBalancer, both behind Cloud Firewalls.

Each region can serve the whole shop on its own and is reachable only through Cloudflare:
Cloudflare -> NodeBalancer (TCP passthrough, firewalled to Cloudflare's ranges) -> web nodes
(firewalled to the NodeBalancer's network), which end TLS with a Cloudflare Origin CA certificate
and talk to this region's database endpoint (the primary, or the local read-only replica).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_cloudflare as cloudflare
import pulumi_linode as linode
import pulumi_random as random
import pulumi_tls as tls

from components import firewall_rules, media_storage, web_node
from components.config import AccessSpec, NodeBalancerSpec, RegionSpec, StackConfig
from components.endpoints import DatabaseEndpoint
from components.heartbeat import HEARTBEAT_WRITER_PACKAGES, HEARTBEAT_WRITER_RUNCMD
from components.origin_pulls import OriginPulls
from components.tags import label, tags
from components.wordpress_site import WordPressSite

# The NodeBalancer passes both ports through as TCP: TLS ends on the web nodes, and port 80 only
# redirects to HTTPS (and answers /healthz).
PORTS = (443, 80)

ORIGIN_CERTIFICATE_DAYS = 5475  # Cloudflare's longest Origin CA validity: nothing to renew on the nodes


@dataclass(frozen=True)
class RegionalWebTierArgs:
    region: RegionSpec
    primary: bool  # the first region in the stack: its first node installs the site
    domain: str
    node_balancer: NodeBalancerSpec
    access: AccessSpec
    database: DatabaseEndpoint
    site: WordPressSite
    # The CA of the zone's origin-pull client certificate (components/origin_pulls.py).
    origin_pull_ca_pem: pulumi.Input[str]
    rpo_seconds: int  # objectives.rpoSeconds, for /healthz's verdict on a replica region
    # Primary region only, when the database runs no heartbeat event of its own (managed mode):
    # the writer's cloud-init files (`components.heartbeat.heartbeat_writer_files`, a secret Output)
    # for the region's first node.
    heartbeat_writer: pulumi.Input[list[dict]] | None = None
    # The shop's media buckets and keys (components/media_storage.py); every node gets its region's.
    media: media_storage.MediaStorage | None = None
    max_upload_megabytes: int = 16
    media_rpo_seconds: int = 300
    # The guard Linodes' IPv4 addresses (components/guard.py), admitted to the NodeBalancer: the
    # guards probe its health path directly. Empty with manual promotion.
    guard_ips: pulumi.Input[Sequence[str]] = ()
    guard_count: int = 0  # how many addresses guard_ips will hold

    @classmethod
    def from_config(
        cls, config: StackConfig, region: RegionSpec, database: DatabaseEndpoint, site: WordPressSite,
        origin_pull_ca_pem: pulumi.Input[str], heartbeat_writer: pulumi.Input[list[dict]] | None = None,
        guard_ips: pulumi.Input[Sequence[str]] = (), media: media_storage.MediaStorage | None = None,
    ) -> RegionalWebTierArgs:
        if database.region != region.region:
            raise ValueError(f"the web tier in {region.region} was given the database endpoint of {database.region}")
        primary = region.region == config.primary.region
        return cls(region=region, primary=primary, domain=config.domain, node_balancer=config.node_balancer,
                   access=config.access, database=database, site=site, origin_pull_ca_pem=origin_pull_ca_pem,
                   rpo_seconds=config.objectives.rpo_seconds,
                   heartbeat_writer=heartbeat_writer if primary else None, guard_ips=guard_ips,
                   guard_count=len(config.automation.guards) if config.automatic else 0, media=media,
                   max_upload_megabytes=config.media.max_upload_megabytes,
                   media_rpo_seconds=config.objectives.media_rpo_seconds)


@dataclass(frozen=True)
class WebTiers:
    """Every region's web tier, in failover order, and the site they share."""

    site: WordPressSite
    origin_pulls: OriginPulls
    regions: dict[str, RegionalWebTier]


def build_web_tiers(
    config: StackConfig, endpoints: Mapping[str, DatabaseEndpoint],
    heartbeat_writer: pulumi.Input[list[dict]] | None = None, guard_ips: pulumi.Input[Sequence[str]] = (),
    media: media_storage.MediaStorage | None = None,
) -> WebTiers:
    """One RegionalWebTier per configured region, each using `endpoints[region]`. `heartbeat_writer`
    (when the database tier needs one) goes to the primary region's first node only."""
    missing = [r.region for r in config.regions if r.region not in endpoints]
    if missing:
        raise pulumi.RunError(f"no database endpoint for region(s) {', '.join(missing)}: the web tier needs one per region")
    site = WordPressSite("site", config.domain)
    origin_pulls = OriginPulls("origin-pulls", config.traffic.zone_id, config.domain)
    tiers = {
        r.region: RegionalWebTier(r.region, RegionalWebTierArgs.from_config(
            config, r, endpoints[r.region], site, origin_pulls.ca_certificate_pem,
            heartbeat_writer=heartbeat_writer, guard_ips=guard_ips, media=media))
        for r in config.regions
    }
    return WebTiers(site=site, origin_pulls=origin_pulls, regions=tiers)


class RegionalWebTier(pulumi.ComponentResource):
    """Typed outputs for the traffic tier (pool origins) and the drctl outputs contract."""

    nodebalancer_id: pulumi.Output[str]
    nodebalancer_ipv4: pulumi.Output[str]
    nodebalancer_ipv6: pulumi.Output[str]
    nodebalancer_hostname: pulumi.Output[str]
    instance_ids: list[pulumi.Output[str]]
    instance_labels: list[pulumi.Output[str]]
    private_ips: list[pulumi.Output[str]]
    public_ipv4s: list[pulumi.Output[str]]  # what the database allow-lists need
    web_firewall_id: pulumi.Output[str]
    nodebalancer_firewall_id: pulumi.Output[str]

    def __init__(self, name: str, args: RegionalWebTierArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("woocommerce-dr:index:RegionalWebTier", name, None, opts)
        self.region = args.region.region
        self._child = pulumi.ResourceOptions(parent=self)
        certificate, private_key = self._origin_certificate(name, args.domain)
        instances = [self._web_node(name, i, args, certificate, private_key) for i in range(args.region.web_nodes)]
        nodebalancer = self._nodebalancer(name, args.node_balancer, instances)
        web_firewall, nodebalancer_firewall = self._firewalls(name, args.access, instances, nodebalancer, args.guard_ips,
                                                              args.guard_count)

        self.nodebalancer_id = nodebalancer.id
        self.nodebalancer_ipv4 = nodebalancer.ipv4
        self.nodebalancer_ipv6 = nodebalancer.ipv6
        self.nodebalancer_hostname = nodebalancer.hostname
        self.instance_ids = [i.id for i in instances]
        self.instance_labels = [i.label for i in instances]
        self.private_ips = [i.private_ip_address for i in instances]
        self.public_ipv4s = [i.ipv4s.apply(_public_ipv4) for i in instances]
        self.web_firewall_id = web_firewall.id
        self.nodebalancer_firewall_id = nodebalancer_firewall.id
        self.register_outputs({**self.outputs, "publicIpv4s": self.public_ipv4s})

    @property
    def outputs(self) -> dict[str, Any]:
        """This region's part of the drctl stack-outputs contract (`drctl.stack.outputs.RegionOut`,
        camelCase), less what other tiers add: the region's role and its load-balancer pool."""
        return {
            "region": self.region,
            "nodeBalancer": {
                "id": self.nodebalancer_id.apply(int),
                "ipv4": self.nodebalancer_ipv4,
                "ipv6": self.nodebalancer_ipv6,
                "hostname": self.nodebalancer_hostname,
            },
            "webInstances": [
                {"id": instance_id.apply(int), "label": instance_label, "privateIp": private_ip}
                for instance_id, instance_label, private_ip in zip(
                    self.instance_ids, self.instance_labels, self.private_ips, strict=True
                )
            ],
            "webFirewallId": self.web_firewall_id.apply(int),
            "nodeBalancerFirewallId": self.nodebalancer_firewall_id.apply(int),
        }

    # --- origin TLS ----------------------------------------------------------------------------------

    def _origin_certificate(self, name: str, domain: str) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        """A key made here and a certificate from Cloudflare's Origin CA, which Cloudflare trusts in
        "Full (strict)" mode; the key never leaves the stack's secrets and the nodes."""
        key = tls.PrivateKey(f"{name}-origin-key", algorithm="ECDSA", ecdsa_curve="P256", opts=self._child)
        csr = tls.CertRequest(
            f"{name}-origin-csr", private_key_pem=key.private_key_pem,
            subject={"common_name": domain}, dns_names=[domain], opts=self._child,
        )
        certificate = cloudflare.OriginCaCertificate(
            f"{name}-origin-certificate", csr=csr.cert_request_pem, hostnames=[domain],
            request_type="origin-ecc", requested_validity=ORIGIN_CERTIFICATE_DAYS, opts=self._child,
        )
        return certificate.certificate, key.private_key_pem

    # --- web nodes -----------------------------------------------------------------------------------

    def _web_node(
        self, name: str, index: int, args: RegionalWebTierArgs, certificate: pulumi.Output[str],
        private_key: pulumi.Output[str],
    ) -> linode.Instance:
        root_password = random.RandomPassword(f"{name}-web-{index}-root-password", length=32, special=True,
                                              opts=self._child)
        return linode.Instance(
            f"{name}-web-{index}",
            label=label("instance", pulumi.get_stack(), self.region, "web", str(index)),
            region=self.region,
            type=args.region.instance_type,
            image=args.region.image,
            private_ip=True,
            tags=tags(self.region, "web"),
            authorized_keys=list(args.access.ssh_keys) or None,
            root_pass=root_password.result,
            metadatas=[linode.InstanceMetadataArgs(user_data=_user_data(args, index, certificate, private_key))],
            opts=self._child,
        )

    # --- NodeBalancer --------------------------------------------------------------------------------

    def _nodebalancer(self, name: str, spec: NodeBalancerSpec, instances: Sequence[linode.Instance]) -> linode.NodeBalancer:
        nodebalancer = linode.NodeBalancer(
            f"{name}-nb", label=label("nodebalancer", pulumi.get_stack(), self.region),
            region=self.region, tags=tags(self.region, "nodebalancer"), opts=self._child,
        )
        nodebalancer_id = nodebalancer.id.apply(int)
        for port in PORTS:
            config = linode.NodeBalancerConfig(
                f"{name}-nb-{port}", nodebalancer_id=nodebalancer_id, port=port, protocol="tcp",
                algorithm=spec.algorithm, **_check_args(spec, port), opts=self._child,
            )
            for index, instance in enumerate(instances):
                linode.NodeBalancerNode(
                    f"{name}-nb-{port}-web-{index}",
                    nodebalancer_id=nodebalancer_id,
                    config_id=config.id.apply(int),
                    label=f"web-{index}",
                    address=instance.private_ip_address.apply(lambda ip, port=port: f"{ip}:{port}"),
                    mode="accept",
                    opts=self._child,
                )
        return nodebalancer

    # --- Cloud Firewalls -----------------------------------------------------------------------------

    def _firewalls(
        self, name: str, access: AccessSpec, instances: Sequence[linode.Instance], nodebalancer: linode.NodeBalancer,
        guard_ips: pulumi.Input[Sequence[str]] = (), guard_count: int = 0,
    ) -> tuple[linode.Firewall, linode.Firewall]:
        # Attached from the firewall's side: `firewall_id` on an Instance or NodeBalancer forces its
        # replacement, and a new NodeBalancer IP would break the Cloudflare origins.
        stack = pulumi.get_stack()
        ranges = cloudflare.get_ip_ranges()
        # How many adminCidrs fit is a config rule (components/config.py); Cloudflare's ranges are
        # known only now.
        web_rules = firewall_rules.web_node_inbound(access.admin_cidrs)
        cloudflare_ipv4, cloudflare_ipv6 = ranges.ipv4_cidrs or [], ranges.ipv6_cidrs or []

        def nodebalancer_rules(guards: Sequence[str]) -> list[dict[str, Any]]:
            try:
                return firewall_rules.nodebalancer_inbound(
                    cloudflare_ipv4, cloudflare_ipv6, access.watchdog_cidrs, access.operator_cidrs,
                    [f"{ip}/32" for ip in guards])
            except firewall_rules.FirewallRuleError as err:
                raise pulumi.RunError(
                    f"Cloudflare IP ranges, woocommerce-dr:access.watchdogCidrs, access.operatorCidrs and the guards "
                    f"for the {self.region} NodeBalancer: {err}"
                ) from None

        # Checked now, so a preview fails before anything is created: the configured networks, and as
        # many stand-in addresses (TEST-NET-1) as there are guards, whose own are known only later.
        nodebalancer_rules([f"192.0.2.{i + 1}" for i in range(guard_count)])
        nodebalancer_inbounds = pulumi.Output.from_input(guard_ips).apply(lambda ips: nodebalancer_rules(list(ips or ())))
        web = linode.Firewall(
            f"{name}-web-firewall", label=label("firewall", stack, self.region, "web"),
            inbound_policy="DROP", outbound_policy="ACCEPT", inbounds=web_rules,
            linodes=[i.id.apply(int) for i in instances], tags=tags(self.region, "web"), opts=self._child,
        )
        nb = linode.Firewall(
            f"{name}-nb-firewall", label=label("firewall", stack, self.region, "nb"),
            inbound_policy="DROP", outbound_policy="ACCEPT", inbounds=nodebalancer_inbounds,
            nodebalancers=[nodebalancer.id.apply(int)], tags=tags(self.region, "nodebalancer"), opts=self._child,
        )
        return web, nb


def _user_data(
    args: RegionalWebTierArgs, index: int, certificate: pulumi.Output[str], private_key: pulumi.Output[str]
) -> pulumi.Output[str]:
    """The node's cloud-init, rendered once every input is known and always secret: it carries the
    database password, the WordPress keys and the origin private key."""
    db, site = args.database, args.site
    installs_site = args.primary and index == 0
    # The same node as the site install: exactly one writer, in the primary region.
    writes_heartbeat = installs_site and args.heartbeat_writer is not None

    def render(values: dict[str, Any]) -> str:
        admin = None
        if installs_site:
            admin = web_node.SiteAdmin(user=site.admin_user, email=site.admin_email,
                                       password=values["admin_password"], title=args.domain)
        services = ()
        if writes_heartbeat:
            services = (web_node.ExtraService(files=tuple(values["heartbeat_files"]),
                                              packages=HEARTBEAT_WRITER_PACKAGES, runcmd=HEARTBEAT_WRITER_RUNCMD),)
        if args.media is not None:
            node = media_storage.media_node(args.region.region, index == 0, values, args.max_upload_megabytes,
                                            args.media_rpo_seconds)
            services += (web_node.ExtraService(files=tuple(media_storage.node_files(node)),
                                               packages=media_storage.PACKAGES, runcmd=media_storage.RUNCMD),)
        return web_node.user_data(web_node.WebNode(
            region=args.region.region,
            domain=args.domain,
            database=web_node.DatabaseSettings(
                host=values["host"], port=values["port"], user=values["user"], password=values["password"],
                database=db.database, ca_pem=values["ca"], address=values.get("address"),
            ),
            wordpress_keys=values["keys"],
            origin_certificate_pem=values["certificate"],
            origin_private_key_pem=values["private_key"],
            run_cron=index == 0,  # WordPress cron on exactly one node per region
            rotation=web_node.Rotation(ports=PORTS, source=firewall_rules.NODEBALANCER_NETWORK),
            origin_pull_ca_pem=values["origin_pull_ca"],
            rpo_seconds=args.rpo_seconds,
            site_admin=admin,
            services=services,
        ))

    inputs: dict[str, Any] = {
        "host": db.host, "port": db.port, "user": db.user, "password": db.password, "ca": db.ca_cert_pem,
        "keys": site.keys, "certificate": certificate, "private_key": private_key,
        "origin_pull_ca": args.origin_pull_ca_pem,
    }
    if db.address is not None:
        inputs["address"] = db.address
    if installs_site:
        inputs["admin_password"] = site.admin_password
    if writes_heartbeat:
        inputs["heartbeat_files"] = args.heartbeat_writer
    if args.media is not None:
        inputs.update(args.media.node_inputs(args.region.region))
    return pulumi.Output.secret(pulumi.Output.all(**inputs).apply(render))


def _public_ipv4(addresses: Sequence[str]) -> str | None:
    return next((a for a in addresses if not ipaddress.ip_address(a).is_private), None)


def _check_args(spec: NodeBalancerSpec, port: int) -> dict[str, Any]:
    # An http/http_body check speaks plain HTTP to the node's port; on the 443 passthrough config that
    # port speaks TLS, so the check would fail on every node and empty the region. There the check
    # falls back to a TCP connect; the port-80 config (where /healthz is served without redirect)
    # carries the HTTP check.
    kind = spec.check if port == 80 else "connection"
    check: dict[str, Any] = {
        "check": kind,
        "check_interval": spec.check_interval,
        "check_timeout": spec.check_timeout,
        "check_attempts": spec.check_attempts,
        # Always on (and required by the policy pack): a node refusing live connections leaves at once.
        "check_passive": True,
    }
    if kind in ("http", "http_body"):
        check["check_path"] = spec.check_path
    if kind == "http_body":
        check["check_body"] = spec.check_body
    return check
