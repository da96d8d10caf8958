"""The price list `drctl plan` costs a stack with: prices.json beside this module.

Every figure names its sources (keys of `sources`, each a URL and what was found there). A figure
that no source confirms carries `unconfirmed` (why), and one nobody could find is null: the cost
table shows it as unknown instead of a guess. Prices that depend on usage (transfer, storage past
the included quota, load-balancer DNS queries) are listed with their included allowance, never
turned into a monthly figure.

Each provider's part has the day it was last checked against its sources; the list is as old as
its older part, and `drctl plan` warns past STALE_AFTER_DAYS.
"""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PRICE_LIST = Path(__file__).with_name("prices.json")
STALE_AFTER_DAYS = 90


def today() -> datetime.date:
    """The day prices are aged against (one place, so tests can fix it)."""
    return datetime.date.today()


class PriceListError(Exception):
    """The price list cannot be read or breaks its own rules; the message says where."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Source(_Model):
    url: str | None  # None: not a public page (then `found` says what it is)
    found: str = Field(min_length=1)


class Price(_Model):
    """One monthly figure, with the regions that are priced differently."""

    monthly: float | None = Field(ge=0)  # None: no figure could be found
    region_monthly: dict[str, float] = {}
    sources: tuple[str, ...] = ()
    unconfirmed: str | None = None  # why the figure is not confirmed, or missing
    note: str | None = None

    @model_validator(mode="after")
    def _unknown_or_unsourced_says_why(self):
        if (self.monthly is None or not self.sources) and not self.unconfirmed:
            raise ValueError("a figure that is null or has no sources must say why in `unconfirmed`")
        return self

    def in_region(self, region: str | None) -> Decimal | None:
        """The monthly price in `region`: its own figure where it has one (some regions cost more)."""
        figure = self.region_monthly.get(region or "", self.monthly)
        return None if figure is None else Decimal(str(figure))


class InstanceType(Price):
    label: str
    transfer_gb: int | None = Field(default=None, ge=0)
    backups: Price | None = None


class DatabaseType(_Model):
    label: str
    cluster_monthly: dict[int, float | None]  # nodes in the cluster -> monthly price
    sources: tuple[str, ...] = ()
    unconfirmed: str | None = None

    @model_validator(mode="after")
    def _unknown_says_why(self):
        if (None in self.cluster_monthly.values() or not self.sources) and not self.unconfirmed:
            raise ValueError("a null or unsourced cluster price must say why in `unconfirmed`")
        return self

    def for_nodes(self, nodes: int) -> Decimal | None:
        figure = self.cluster_monthly.get(nodes)
        return None if figure is None else Decimal(str(figure))


class ObjectStorage(Price):
    included: str


class UsagePrice(_Model):
    """A price that depends on how much is used: shown beside the total, never in it."""

    id: str
    what: str
    included: str
    rate: float | None = Field(ge=0)  # per `unit`; None: no figure could be found
    region_rate: dict[str, float] = {}
    unit: str
    applies_to: tuple[str, ...]  # the resource types that bring this charge along
    sources: tuple[str, ...] = ()
    unconfirmed: str | None = None

    @model_validator(mode="after")
    def _unknown_says_why(self):
        if (self.rate is None or not self.sources) and not self.unconfirmed:
            raise ValueError("a null or unsourced rate must say why in `unconfirmed`")
        return self


class LinodePrices(_Model):
    checked: datetime.date
    instance_types: dict[str, InstanceType]
    nodebalancer: Price
    reserved_ipv4: Price | None = None  # a reserved public IPv4 (the guards' addresses); None: older lists
    managed_mysql: dict[str, DatabaseType]
    object_storage: ObjectStorage
    usage: tuple[UsagePrice, ...]


class CheckRegions(_Model):
    included: int | None = Field(ge=0)  # regions the base plan covers; None: not known
    per_region: Price


class LoadBalancing(_Model):
    base: Price
    included_origins: int = Field(ge=0)
    additional_origin: Price
    check_regions: CheckRegions


class CloudflarePrices(_Model):
    checked: datetime.date
    load_balancing: LoadBalancing
    # The Workers plan, once per account (the fallback page's Worker); lists written before the
    # fallback page have none, and then the plan is costed as unknown.
    workers: Price | None = None
    usage: tuple[UsagePrice, ...]


class FreeKind(_Model):
    why: str = Field(min_length=1)
    sources: tuple[str, ...] = ()


class PriceList(_Model):
    about: str
    currency: str = Field(pattern="^USD$")
    sources: dict[str, Source]
    linode: LinodePrices
    cloudflare: CloudflarePrices
    free: dict[str, FreeKind]  # resource type token -> why it costs nothing

    @model_validator(mode="after")
    def _every_source_named_is_listed(self):
        missing = sorted(set(source_names(self.model_dump())) - set(self.sources))
        if missing:
            raise ValueError(f"sources named but not listed under `sources`: {', '.join(missing)}")
        return self

    @property
    def date(self) -> datetime.date:
        """The list is as old as its least recently checked part."""
        return min(self.linode.checked, self.cloudflare.checked)

    def age_days(self, on: datetime.date) -> int:
        return (on - self.date).days

    def stale(self, on: datetime.date) -> bool:
        return self.age_days(on) > STALE_AFTER_DAYS

    def usage(self) -> tuple[UsagePrice, ...]:
        return self.linode.usage + self.cloudflare.usage


def source_names(value: Any) -> list[str]:
    """Every name under a `sources` list anywhere in the dumped list (the top-level table is a dict)."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "sources" and isinstance(item, list | tuple):
                found.extend(item)
            else:
                found.extend(source_names(item))
    elif isinstance(value, list | tuple):
        for item in value:
            found.extend(source_names(item))
    return found


def load_price_list(path: Path | None = None) -> PriceList:
    path = path or PRICE_LIST
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise PriceListError(f"cannot read the price list {path}: {err}") from None
    return parse_price_list(raw, path)


def parse_price_list(raw: Any, where: Path | str = PRICE_LIST) -> PriceList:
    try:
        return PriceList.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in err.errors())
        raise PriceListError(f"the price list {where} is not valid: {problems}") from None


def write_price_list(prices: PriceList, path: Path) -> None:
    """One layout for the hand-kept and the refreshed list, so a refresh diffs line by line."""
    path.write_text(_layout(prices.model_dump(mode="json", exclude_defaults=True)) + "\n", encoding="utf-8")


_INLINE = 100


def _layout(value: Any, depth: int = 0) -> str:
    """JSON with two-space indents, short lists and objects kept on one line."""
    flat = json.dumps(value, ensure_ascii=False)
    if not isinstance(value, dict | list) or len(flat) + 2 * depth <= _INLINE or not value:
        return flat
    pad, inner = "  " * depth, "  " * (depth + 1)
    if isinstance(value, list):
        items = [inner + _layout(v, depth + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    items = [f"{inner}{json.dumps(k)}: {_layout(v, depth + 1)}" for k, v in value.items()]
    return "{\n" + ",\n".join(items) + "\n" + pad + "}"


def unconfirmed_entries(prices: PriceList) -> list[tuple[str, str, str]]:
    """(where in the list, the figure as shown, why) for every figure no source confirms or nobody found."""
    found: list[tuple[str, str, str]] = []

    def add(where: str, figure: float | None, why: str | None) -> None:
        if why:
            # Rates are fractions of a cent per GB: shown as written, not rounded to cents.
            shown = "no figure" if figure is None else f"{figure:g}" if figure < 1 else f"{figure:,.2f}"
            found.append((where, shown, why))

    linode, lb = prices.linode, prices.cloudflare.load_balancing
    for type_id, plan in linode.instance_types.items():
        add(f"linode.instance_types.{type_id}", plan.monthly, plan.unconfirmed)
        if plan.backups:
            add(f"linode.instance_types.{type_id}.backups", plan.backups.monthly, plan.backups.unconfirmed)
    add("linode.nodebalancer", linode.nodebalancer.monthly, linode.nodebalancer.unconfirmed)
    if linode.reserved_ipv4 is not None:
        add("linode.reserved_ipv4", linode.reserved_ipv4.monthly, linode.reserved_ipv4.unconfirmed)
    for type_id, db in linode.managed_mysql.items():
        for nodes, figure in db.cluster_monthly.items():
            add(f"linode.managed_mysql.{type_id} ({nodes} node{'s' if nodes != 1 else ''})", figure, db.unconfirmed)
    add("linode.object_storage", linode.object_storage.monthly, linode.object_storage.unconfirmed)
    add("cloudflare.load_balancing.base", lb.base.monthly, lb.base.unconfirmed)
    add("cloudflare.load_balancing.additional_origin", lb.additional_origin.monthly, lb.additional_origin.unconfirmed)
    add("cloudflare.load_balancing.check_regions.per_region", lb.check_regions.per_region.monthly,
        lb.check_regions.per_region.unconfirmed)
    if prices.cloudflare.workers is not None:
        add("cloudflare.workers", prices.cloudflare.workers.monthly, prices.cloudflare.workers.unconfirmed)
    for usage in prices.usage():
        add(f"usage.{usage.id} (per {usage.unit})", usage.rate, usage.unconfirmed)
    return found
