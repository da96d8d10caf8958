"""The shop's safety invariants as CrossGuard policies: what `pulumi preview` and `pulumi up` refuse.

Each policy reads a resource's inputs as the engine passes them (camelCase names, see
resource_props.py) and reports what is wrong and how to fix it. All are mandatory: a violation
stops the preview in CI and the update on a laptop. `__main__.py` serves them as the pack; tests
import this module directly, because building a `PolicyPack` starts a gRPC server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from itertools import chain
from typing import Any

from firewall_rules import ALL_PORTS, BUDGET, BadPortSpec, as_prefix, covers, is_whole_internet, port_ranges, too_wide
from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy
from resource_props import UNKNOWN, first_item, get, known_items, stack_and_project

NODEBALANCER_CONFIG = "linode:index/nodeBalancerConfig:NodeBalancerConfig"
FIREWALL = "linode:index/firewall:Firewall"
INSTANCE = "linode:index/instance:Instance"
NODEBALANCER = "linode:index/nodeBalancer:NodeBalancer"
DATABASE_ACCESS_CONTROLS = "linode:index/databaseAccessControls:DatabaseAccessControls"
DATABASE_MYSQL = "linode:index/databaseMysqlV2:DatabaseMysqlV2"
LOAD_BALANCER = "cloudflare:index/loadBalancer:LoadBalancer"
MONITOR = "cloudflare:index/loadBalancerMonitor:LoadBalancerMonitor"

ACTIVE_CHECKS = ("connection", "http", "http_body")
TAGGED = {INSTANCE: "Linode", NODEBALANCER: "NodeBalancer", FIREWALL: "Firewall"}
# Ports never to be reachable from the whole internet, and who should reach them instead.
ADMIN_PORTS = {
    22: ("SSH", "allow SSH only from woocommerce-dr:access.adminCidrs"),
    3306: ("MySQL", "allow MySQL only from the web and replica nodes' own addresses"),
}

# The services no list of sources may open to a large share of the internet (firewall_rules.py:
# MAX_SOURCE_PREFIX), and who should reach each instead.
GUARDED_SERVICES = (
    ("SSH", (22,), "list only your admins' networks in woocommerce-dr:access.adminCidrs"),
    ("MySQL", (3306,), "admit only the web and replica nodes' own addresses, the guards' and "
     "woocommerce-dr:access.operatorCidrs"),
    ("HTTP(S)", (80, 443), "list only the networks drctl watch and drctl run in, in woocommerce-dr:access.watchdogCidrs "
     "and access.operatorCidrs"),
)
# The NodeBalancers' rules for Cloudflare (components/firewall_rules.py): their sources are Cloudflare's
# published ranges, read from Cloudflare's API at deploy time, so no copy here can know them; they are
# not counted for HTTP(S). They count, like any rule, for every other service they might open.
CLOUDFLARE_RULES = ("http-from-cloudflare-ipv4", "http-from-cloudflare-ipv6")

Check = Callable[[Mapping[str, Any], ResourceValidationArgs, ReportViolation], None]

# Policy name -> the resource types it checks (tests prove each one sees real resources).
RESOURCE_TYPES: dict[str, frozenset[str]] = {}


def _policy(name: str, description: str, types: set[str]) -> Callable[[Check], ResourceValidationPolicy]:
    """A mandatory policy that runs `check(props, args, report)` on resources of `types` only."""

    def build(check: Check) -> ResourceValidationPolicy:
        RESOURCE_TYPES[name] = frozenset(types)

        def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
            if args.resource_type in types:
                check(args.props, args, report)

        return ResourceValidationPolicy(
            name=name, description=description, validate=validate,
            enforcement_level=EnforcementLevel.MANDATORY,
        )

    return build


def _shown(value: Any) -> str:
    return "unset" if value is None else repr(value)


@_policy(
    "nodebalancer-health-checks",
    "NodeBalancer configs run an active health check and passive checks, so a dead web node leaves rotation.",
    {NODEBALANCER_CONFIG},
)
def nodebalancer_health_checks(props, args, report):
    check = get(props, "check")
    if check is not UNKNOWN and check not in ACTIVE_CHECKS:
        what = "no health check (Linode's default is none)" if check is None else f"check {check!r}"
        report(f"NodeBalancer config '{args.name}' has {what}: set woocommerce-dr:nodeBalancer.check to "
               "connection (TCP), http or http_body so a dead web node is taken out of rotation.")
    passive = get(props, "checkPassive")
    if passive is not UNKNOWN and passive is not True:
        # Required explicitly, not left to the API default, so a changed default cannot turn it off.
        report(f"NodeBalancer config '{args.name}' has checkPassive {_shown(passive)}: set check_passive=True "
               "(components/web_tier.py always does) so a node failing live requests leaves "
               "rotation between active checks.")


@_policy(
    "firewall-default-deny",
    "Cloud Firewalls drop inbound traffic by default and let in only what a rule names.",
    {FIREWALL},
)
def firewall_default_deny(props, args, report):
    inbound = get(props, "inboundPolicy")
    if inbound is not UNKNOWN and str(inbound).upper() != "DROP":
        report(f"Firewall '{_label(props, args)}' has inboundPolicy {_shown(inbound)}: set inbound_policy=\"DROP\" "
               "and list what may come in as ACCEPT rules.")


@_policy(
    "firewall-no-public-admin-ports",
    "No firewall rule accepts SSH (TCP 22) or MySQL (TCP 3306) from the whole internet (0.0.0.0/0 or ::/0).",
    {FIREWALL},
)
def firewall_no_public_admin_ports(props, args, report):
    for rule in known_items(get(props, "inbounds")):
        protocol = str(get(rule, "protocol", "")).upper()
        if str(get(rule, "action", "")).upper() != "ACCEPT" or protocol not in ("TCP", "ALL"):
            continue
        world = [str(s) for s in chain(known_items(get(rule, "ipv4s")), known_items(get(rule, "ipv6s")))
                 if is_whole_internet(s)]
        ports = get(rule, "ports")
        if not world or ports is UNKNOWN:
            continue
        where = f"Firewall '{_label(props, args)}' rule '{get(rule, 'label', '?')}'"
        try:
            ranges = ALL_PORTS if protocol == "ALL" else port_ranges(ports)
        except BadPortSpec:
            report(f"{where} has ports {ports!r}, which is not a port list, open to {', '.join(world)}: "
                   "write ports like \"22\", \"80,443\" or \"1-65535\".")
            continue
        for port, (service, fix) in ADMIN_PORTS.items():
            if covers(ranges, port):
                report(f"{where} accepts {service} (TCP {port}) from {', '.join(world)}: {fix}.")


@_policy(
    "sources-not-a-large-share-of-the-internet",
    "SSH, MySQL and the origins' HTTP(S) are open to at most a /8 of IPv4 and a /32 of IPv6 in all, "
    "however the sources are split across entries and rules (Cloudflare's own NodeBalancer rules aside).",
    {FIREWALL, DATABASE_ACCESS_CONTROLS, DATABASE_MYSQL},
)
def sources_not_a_large_share_of_the_internet(props, args, report):
    if args.resource_type != FIREWALL:
        sources = [str(s) for s in known_items(get(props, "allowLists"))]
        wide = None if any(is_whole_internet(s) for s in sources) else too_wide(sources)  # /0: database-not-public
        if wide:
            report(f"Database '{args.name}' admits MySQL from {_share(*wide)} (allowed: {BUDGET}): "
                   "list only the web and replica nodes' own addresses.")
        return
    rules = [r for r in known_items(get(props, "inbounds"))
             if str(get(r, "action", "")).upper() == "ACCEPT" and str(get(r, "protocol", "")).upper() in ("TCP", "ALL")]
    for service, ports, fix in GUARDED_SERVICES:
        sources, labels = [], []
        for rule in rules:
            label = str(get(rule, "label", "?"))
            if not _opens(rule, ports) or (service == "HTTP(S)" and label in CLOUDFLARE_RULES):
                continue
            sources += [str(s) for s in chain(known_items(get(rule, "ipv4s")), known_items(get(rule, "ipv6s")))]
            labels.append(repr(label))
        if service != "HTTP(S)" and any(is_whole_internet(s) for s in sources):
            continue  # firewall-no-public-admin-ports names the rule
        wide = too_wide(sources)
        if wide:
            report(f"Firewall '{_label(props, args)}' opens {service} (TCP {', '.join(map(str, ports))}) to "
                   f"{_share(*wide)} through rule {', '.join(labels)} (allowed: {BUDGET}): {fix}.")


def _opens(rule: Any, ports: tuple[int, ...]) -> bool:
    """Whether an ACCEPT rule admits any of `ports`; an unknown or unreadable port list is another
    policy's (firewall-no-public-admin-ports reports an unreadable one)."""
    spec = get(rule, "ports")
    if spec is UNKNOWN:
        return False
    try:
        ranges = ALL_PORTS if str(get(rule, "protocol", "")).upper() == "ALL" else port_ranges(spec)
    except BadPortSpec:
        return False
    return any(covers(ranges, port) for port in ports)


def _share(version: int, addresses: int) -> str:
    amount = f"{addresses:,} addresses" if version == 4 else f"the space of {addresses / 2 ** 96:,g} /32s"
    return f"{as_prefix(version, addresses)} of IPv{version} ({amount})"


@_policy(
    "database-not-public",
    "Database allow-lists never include the whole internet.",
    {DATABASE_ACCESS_CONTROLS, DATABASE_MYSQL},
)
def database_not_public(props, args, report):
    where = (f"Database access controls '{args.name}' allow" if args.resource_type == DATABASE_ACCESS_CONTROLS
             else f"Managed database '{args.name}' allows")
    for entry in known_items(get(props, "allowLists")):
        if is_whole_internet(entry):
            report(f"{where} {entry}, the whole internet: list only the primary region's web nodes and the "
                   "replicas, as single addresses, in linode.DatabaseAccessControls.")


@_policy(
    "load-balancer-failover",
    "The Cloudflare load balancer fails over: two or more pools in region order, a fallback pool, steering off.",
    {LOAD_BALANCER},
)
def load_balancer_failover(props, args, report):
    where = f"Load balancer '{get(props, 'name') or args.name}'"
    pools = get(props, "defaultPools")
    if pools is not UNKNOWN and len(pools or ()) < 2:
        report(f"{where} has {len(pools or ())} default pool(s): list one pool per region, primary first "
               "(woocommerce-dr:regions needs at least two regions).")
    fallback = get(props, "fallbackPool")
    if not fallback:
        report(f"{where} has no fallback pool: set fallback_pool to the last region's pool, the one Cloudflare "
               "uses when every pool is unhealthy.")
    elif fallback is not UNKNOWN and fallback == first_item(pools):
        report(f"{where} falls back to its primary pool: set fallback_pool to the last region's pool.")
    steering = get(props, "steeringPolicy")
    if steering is not UNKNOWN and steering != "off":
        report(f"{where} has steeringPolicy {_shown(steering)}: set steering_policy=\"off\" so traffic goes to the "
               "first healthy pool in region order instead of being spread across regions.")


@_policy(
    "monitor-path-and-host",
    "The load-balancer monitor probes a health path and sends the shop's Host header.",
    {MONITOR},
)
def monitor_path_and_host(props, args, report):
    path = get(props, "path")
    if path is not UNKNOWN and not str(path or "").startswith("/"):
        report(f"Monitor '{args.name}' has path {_shown(path)}: set it to the health endpoint "
               "(woocommerce-dr:traffic.monitor.path, default /healthz).")
    header = get(props, "header")
    if header is UNKNOWN:
        return
    hosts = next((get(header, key) for key in list(header or {}) if key.lower() == "host"), None)
    if hosts is UNKNOWN:
        return
    if not [h for h in known_items(hosts) if h]:
        report(f"Monitor '{args.name}' sends no Host header: set header={{\"Host\": [<domain>]}} so every "
               "origin answers for the shop's domain, as it does for shoppers.")


@_policy(
    "linode-resources-tagged",
    "Linodes, NodeBalancers and firewalls carry the project and stack tags.",
    set(TAGGED),
)
def linode_resources_tagged(props, args, report):
    tags = get(props, "tags")
    if tags is UNKNOWN:
        return
    stack, project = stack_and_project(args.urn)
    present = {str(t) for t in known_items(tags)}
    missing = [t for t in (f"project:{project}", f"stack:{stack}") if t not in present]
    if missing:
        report(f"{TAGGED[args.resource_type]} '{args.name}' lacks the tag(s) {', '.join(missing)}: build tags "
               "with components.tags.tags(region, role) so Cloud Manager and drctl can tell the stacks apart.")


def _label(props: Mapping[str, Any], args: ResourceValidationArgs) -> str:
    label = get(props, "label")
    return args.name if label in (None, UNKNOWN) else str(label)


POLICIES = [
    nodebalancer_health_checks,
    firewall_default_deny,
    firewall_no_public_admin_ports,
    sources_not_a_large_share_of_the_internet,
    database_not_public,
    load_balancer_failover,
    monitor_path_and_host,
    linode_resources_tagged,
]
