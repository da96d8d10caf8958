"""What a stack costs a month: the resources the program registers under the mock engine, priced
with the price list (drctl/plan/prices.py), per region and per kind of resource.

The input is the registrations themselves, not the stack config, so what is priced is what
`pulumi up` would create: a component that starts creating a new kind of resource shows up here
at once, and a kind with neither a price nor a reason to be free is reported as unpriced (and a
test fails) instead of being silently free.

Some things are billed once per account however many resources use them (the Object Storage
subscription, the Cloudflare Load Balancing plan); they are costed once per stack, as if the stack
had the account to itself.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from drctl.plan.prices import PriceList, UsagePrice

INSTANCE = "linode:index/instance:Instance"
NODEBALANCER = "linode:index/nodeBalancer:NodeBalancer"
MYSQL = "linode:index/databaseMysqlV2:DatabaseMysqlV2"
RESERVED_IP = "linode:index/reservedIp:ReservedIp"
BUCKET = "linode:index/objectStorageBucket:ObjectStorageBucket"
LOAD_BALANCER = "cloudflare:index/loadBalancer:LoadBalancer"
POOL = "cloudflare:index/loadBalancerPool:LoadBalancerPool"
WORKER = "cloudflare:index/workersScript:WorkersScript"

ACCOUNT = "account"  # the Linode account, for what is billed once per account
CLOUDFLARE = "cloudflare"  # Cloudflare's part, which belongs to no Linode region

# The `role:` tag each Linode carries (components/tags.py) names what it is for.
ROLE_KINDS = {
    "web": "web Linodes",
    "database-primary": "MySQL primary Linode",
    "database-replica": "MySQL replica Linode",
    "guard": "guard Linode",
    "watchdog": "watchdog Linode",
}
KIND_ORDER = ("web Linodes", "NodeBalancer", "managed MySQL cluster", "MySQL primary Linode",
              "MySQL replica Linode", "guard Linode", "guard reserved IPv4", "watchdog Linode", "Object Storage",
              "Load Balancing plan", "Load Balancing origins", "Load Balancing check regions", "Workers plan")


@dataclass(frozen=True)
class CostLine:
    region: str  # a Linode region, ACCOUNT or CLOUDFLARE
    kind: str  # what it is, for people: "web Linodes", "NodeBalancer", ...
    detail: str  # which plan or type, or what the line counts
    count: int
    each: Decimal | None  # monthly price of one; None: no figure in the price list
    unconfirmed: bool = False  # the figure is in the list but no source confirms it
    note: str = ""  # what the count is made of; not part of what the line is, so stacks still compare

    @property
    def monthly(self) -> Decimal | None:
        if self.count == 0:
            return Decimal(0)
        return None if self.each is None else self.each * self.count

    @property
    def key(self) -> tuple[str, str, str]:
        return self.region, self.kind, self.detail


@dataclass(frozen=True)
class UsageLine:
    """A charge that depends on usage: what it is, what is included, the rate beyond."""

    what: str
    included: str
    rate: str  # "$0.02 per GB", or why there is no figure
    unconfirmed: bool


@dataclass
class CostReport:
    lines: list[CostLine]
    usage: list[UsageLine]
    free: dict[str, int]  # type token -> how many; why is in the price list
    unpriced: dict[str, int]  # type tokens with no price and no reason to be free: a gap in the list
    regions: list[str] = field(default_factory=list)  # in the stack's failover order

    @property
    def total(self) -> Decimal:
        """What the lines with a known price add up to."""
        return sum((line.monthly for line in self.lines if line.monthly is not None), Decimal(0))

    @property
    def unknown(self) -> int:
        return sum(1 for line in self.lines if line.monthly is None)

    @property
    def unconfirmed(self) -> int:
        return sum(1 for line in self.lines if line.unconfirmed and line.count)

    def by_region(self) -> dict[str, tuple[Decimal, int]]:
        """region -> (known monthly total, lines of unknown price)."""
        totals: dict[str, tuple[Decimal, int]] = {}
        for line in self.lines:
            known, unknown = totals.get(line.region, (Decimal(0), 0))
            if line.monthly is None:
                totals[line.region] = (known, unknown + 1)
            else:
                totals[line.region] = (known + line.monthly, unknown)
        return totals


def cost_of(resources: Sequence[Any], prices: PriceList, regions: Sequence[str] = ()) -> CostReport:
    """Price the registrations of one program run (drctl.plan.engine.Registration objects).
    `regions` orders the table as the stack lists its regions (the failover order)."""
    custom = [r for r in resources if r.custom]
    lines: list[CostLine] = []
    free: Counter[str] = Counter()
    unpriced: Counter[str] = Counter()
    for r in custom:
        if r.type in PER_RESOURCE:
            lines.extend(PER_RESOURCE[r.type](r, prices))
        elif r.type in ACCOUNT_WIDE:
            continue  # priced once for all of them, below
        elif r.type in prices.free:
            free[r.type] += 1
        else:
            unpriced[r.type] += 1
    for types, rule in ACCOUNT_WIDE_RULES:
        found = [r for r in custom if r.type in types]
        if found:
            lines.extend(rule(found, prices))
    lines.extend(CostLine(_region(r), "no price", r.type, 1, None) for r in custom if r.type in unpriced)
    present = {r.type for r in custom}
    usage = [_usage_line(u, custom, prices) for u in prices.usage() if present & set(u.applies_to)]
    order = list(dict.fromkeys([*regions, *sorted({line.region for line in lines} - {ACCOUNT, CLOUDFLARE})]))
    order += [ACCOUNT, CLOUDFLARE]
    return CostReport(lines=_merged(lines, order), usage=usage, free=dict(sorted(free.items())),
                      unpriced=dict(sorted(unpriced.items())), regions=order)


def stack_regions(config: dict[str, str]) -> list[str]:
    """The stack's regions in failover order, from the config the program ran with."""
    raw = config.get("woocommerce-dr:regions", "[]")
    try:
        return [r["region"] for r in json.loads(raw) if isinstance(r, dict) and "region" in r]
    except (ValueError, TypeError):
        return []


# --- per resource ----------------------------------------------------------------------------------


def _instance(r: Any, prices: PriceList) -> list[CostLine]:
    type_id, region = _text(r.plain("type")), _region(r)
    kind = _role_kind(r.plain("tags"))
    plan = prices.linode.instance_types.get(type_id)
    if plan is None:
        return [CostLine(region, kind, f"{type_id} (not in the price list)", 1, None)]
    lines = [CostLine(region, kind, f"{type_id} ({plan.label})", 1, plan.in_region(region), bool(plan.unconfirmed))]
    if r.plain("backupsEnabled") is True:
        backups = plan.backups
        each = backups.in_region(region) if backups else None
        lines.append(CostLine(region, f"{kind}: backups", type_id, 1, each, bool(backups and backups.unconfirmed)))
    return lines


def _nodebalancer(r: Any, prices: PriceList) -> list[CostLine]:
    price, region = prices.linode.nodebalancer, _region(r)
    return [CostLine(region, "NodeBalancer", "", 1, price.in_region(region), bool(price.unconfirmed))]


def _reserved_ip(r: Any, prices: PriceList) -> list[CostLine]:
    # Billed while reserved, assigned or not; the role tag says whose address it is.
    price, region = prices.linode.reserved_ipv4, _region(r)
    kind = f"{_role_kind(r.plain('tags')).removesuffix(' Linode').removesuffix(' Linodes')} reserved IPv4"
    if price is None:
        return [CostLine(region, kind, "(not in the price list)", 1, None)]
    return [CostLine(region, kind, "", 1, price.in_region(region), bool(price.unconfirmed))]


def _mysql(r: Any, prices: PriceList) -> list[CostLine]:
    type_id, region = _text(r.plain("type")), _region(r)
    nodes = r.plain("clusterSize") or 1  # the provider's default
    plan = prices.linode.managed_mysql.get(type_id)
    label = f"{type_id} ({plan.label})" if plan else f"{type_id} (not in the price list)"
    detail = f"{label}, {nodes} node{'s' if nodes != 1 else ''}"
    each = plan.for_nodes(nodes) if plan else None
    return [CostLine(region, "managed MySQL cluster", detail, 1, each, bool(plan and plan.unconfirmed))]


PER_RESOURCE: dict[str, Callable[[Any, PriceList], list[CostLine]]] = {
    INSTANCE: _instance,
    NODEBALANCER: _nodebalancer,
    MYSQL: _mysql,
    RESERVED_IP: _reserved_ip,
}


# --- once per account ------------------------------------------------------------------------------


def _object_storage(buckets: list[Any], prices: PriceList) -> list[CostLine]:
    # A flat subscription per account, whatever the number of buckets or regions; what it includes is
    # shown with the usage-priced lines, not here, so the table keeps its width.
    price = prices.linode.object_storage
    detail = f"subscription, {len(buckets)} bucket{'s' if len(buckets) != 1 else ''}"
    return [CostLine(ACCOUNT, "Object Storage", detail, 1, price.in_region(None), bool(price.unconfirmed))]


def _load_balancing(found: list[Any], prices: PriceList) -> list[CostLine]:
    lb = prices.cloudflare.load_balancing
    pools = [r for r in found if r.type == POOL]
    origins = sum(len(r.plain("origins") or []) for r in pools)
    check_regions = sorted({c for r in pools for c in (r.plain("checkRegions") or []) if isinstance(c, str)})
    extra = max(0, origins - lb.included_origins)
    lines = [
        CostLine(CLOUDFLARE, "Load Balancing plan", f"{lb.included_origins} origins included", 1,
                 lb.base.in_region(None), bool(lb.base.unconfirmed)),
        CostLine(CLOUDFLARE, "Load Balancing origins", f"beyond the {lb.included_origins} included",
                 extra, lb.additional_origin.in_region(None), bool(lb.additional_origin.unconfirmed),
                 note=f"{origins} in {len(pools)} pool{'s' if len(pools) != 1 else ''}"),
    ]
    if check_regions:
        covered = lb.check_regions.included
        # Without a known number of included regions, every region is counted at an unknown price.
        beyond = len(check_regions) if covered is None else max(0, len(check_regions) - covered)
        detail = "" if covered is None else f"{covered} included"
        per = lb.check_regions.per_region
        lines.append(CostLine(CLOUDFLARE, "Load Balancing check regions", detail, beyond, per.in_region(None),
                              bool(per.unconfirmed), note=", ".join(check_regions)))
    return lines


def _workers(scripts: list[Any], prices: PriceList) -> list[CostLine]:
    # Workers Paid is one subscription per account, whatever the number of scripts. Every request
    # to the shop runs the fallback page's Worker, so a shop outgrows Free's 100,000 a day.
    price = prices.cloudflare.workers
    detail = f"Workers Paid, for {len(scripts)} script{'s' if len(scripts) != 1 else ''}"
    if price is None:
        return [CostLine(CLOUDFLARE, "Workers plan", detail, 1, None)]
    return [CostLine(CLOUDFLARE, "Workers plan", detail, 1, price.in_region(None), bool(price.unconfirmed))]


ACCOUNT_WIDE_RULES: tuple[tuple[frozenset[str], Callable[[list[Any], PriceList], list[CostLine]]], ...] = (
    (frozenset({BUCKET}), _object_storage),
    (frozenset({LOAD_BALANCER, POOL}), _load_balancing),
    (frozenset({WORKER}), _workers),
)
ACCOUNT_WIDE = frozenset().union(*(types for types, _ in ACCOUNT_WIDE_RULES))
PRICED_TYPES = frozenset(PER_RESOURCE) | ACCOUNT_WIDE


# --- usage ----------------------------------------------------------------------------------------


def _usage_line(usage: UsagePrice, custom: list[Any], prices: PriceList) -> UsageLine:
    included = usage.included
    if usage.id == "network-transfer":
        pooled = _pooled_transfer_gb(custom, prices)
        included = f"{pooled:,} GB a month for this stack's Linodes: {usage.included}"
    if usage.rate is None:
        rate = "rate not in the price list"
    else:
        rate = f"${usage.rate:g} per {usage.unit}"
        if usage.region_rate:
            rate += " (" + ", ".join(f"{r}: ${v:g}" for r, v in usage.region_rate.items()) + ")"
    return UsageLine(what=usage.what, included=included, rate=rate, unconfirmed=bool(usage.unconfirmed))


def _pooled_transfer_gb(custom: list[Any], prices: PriceList) -> int:
    types = prices.linode.instance_types
    return sum(types[t].transfer_gb or 0 for r in custom if r.type == INSTANCE
               and (t := _text(r.plain("type"))) in types)


# --- helpers --------------------------------------------------------------------------------------


def _merged(lines: Iterable[CostLine], region_order: list[str]) -> list[CostLine]:
    """Equal lines (same region, kind, detail and price) become one line with their count."""
    counts: Counter[CostLine] = Counter()
    for line in lines:
        counts[replace(line, count=0)] += line.count
    merged = [replace(k, count=n) for k, n in counts.items()]
    return sorted(merged, key=lambda line: line_order(line.key, region_order))


def region_order(*reports: CostReport) -> list[str]:
    """The regions of several reports: Linode regions in the order they come, then the account-wide ones."""
    regions = dict.fromkeys(r for report in reports for r in report.regions if r not in (ACCOUNT, CLOUDFLARE))
    return [*regions, ACCOUNT, CLOUDFLARE]


def line_order(key: tuple[str, str, str], region_order: Sequence[str]) -> tuple[int, int, str, str]:
    """Sort key of a line: its region in failover order, then what it is, most of the bill first."""
    region, kind, detail = key
    kinds = {k: i for i, k in enumerate(KIND_ORDER)}
    where = region_order.index(region) if region in region_order else len(region_order)
    return where, kinds.get(kind, len(kinds)), kind, detail


def _role_kind(tags: Any) -> str:
    roles = [t.removeprefix("role:") for t in (tags or []) if isinstance(t, str) and t.startswith("role:")]
    if not roles:
        return "Linodes"
    return ROLE_KINDS.get(roles[0], f"{roles[0]} Linodes")


def _region(r: Any) -> str:
    return _text(r.plain("region"), ACCOUNT)


def _text(value: Any, default: str = "(known after apply)") -> str:
    return value if isinstance(value, str) and value else default
