"""A new Linode part of the price list from what Linode's public price endpoints answered
(drctl/cloud/linode_prices.py reads them): every Linode type, NodeBalancer and managed MySQL price
the API lists, each sourced to the endpoint and the day it was read.

The API is the authority for what it lists, so its answer replaces the hand-kept entries; what it
does not list stays as it was: the included allowances (the API gives figures, not wording), the
usage-priced rates, and the whole Cloudflare part.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from drctl.cloud.linode_prices import PRICE_ENDPOINTS
from drctl.plan.prices import (
    DatabaseType,
    InstanceType,
    ObjectStorage,
    Price,
    PriceList,
    Source,
    parse_price_list,
    source_names,
)

SOURCE_PREFIX = "linode-api-"  # the sources a refresh writes, and replaces on the next one


class RefreshError(Exception):
    """The API's answer cannot make a price list; nothing was written."""


@dataclass
class Changes:
    """What a refresh changed, for people to check before committing the new list."""

    changed: list[str] = field(default_factory=list)  # "g6-standard-2: 24.00 -> 26.00"
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"    changed: {c}" for c in self.changed]
        if self.added:
            out.append(f"    new: {', '.join(self.added)}")
        if self.removed:
            out.append(f"    no longer listed: {', '.join(self.removed)}")
        return out or ["    no price changed"]


def refreshed(prices: PriceList, catalog: dict[str, list[dict[str, Any]]], base_url: str,
              on: datetime.date) -> tuple[PriceList, Changes]:
    """`prices` with its Linode part rewritten from `catalog` (PRICE_ENDPOINTS' answers)."""
    sources = {name: s for name, s in prices.sources.items() if not name.startswith(SOURCE_PREFIX)}
    read = {}
    for endpoint, path in PRICE_ENDPOINTS.items():
        read[endpoint] = name = SOURCE_PREFIX + endpoint.replace("_", "-")
        count = len(catalog.get(endpoint, []))
        sources[name] = Source(url=f"{base_url}{path}",
                               found=f"read {on.isoformat()} by `drctl prices --refresh`: {count} entr{'y' if count == 1 else 'ies'}")
    types = _instance_types(catalog.get("linode_types", []), read["linode_types"])
    if not types:
        raise RefreshError("the API listed no Linode types: the price list was not changed")
    old = prices.linode
    linode = old.model_copy(update={
        "checked": on,
        "instance_types": types,
        "nodebalancer": _nodebalancer(catalog.get("nodebalancer_types", []), read["nodebalancer_types"])
        or old.nodebalancer,
        "managed_mysql": _managed_mysql(catalog.get("database_types", []), read["database_types"])
        or old.managed_mysql,
        "object_storage": _object_storage(catalog.get("object_storage_types", []), read["object_storage_types"],
                                          old.object_storage),
    })
    new = prices.model_copy(update={"linode": linode, "sources": sources})
    # Drop the sources nothing names any more, and check the result as a loaded list would be.
    used = set(source_names(new.model_dump()))
    raw = new.model_dump(mode="json")
    raw["sources"] = {name: s for name, s in raw["sources"].items() if name in used}
    result = parse_price_list(raw, "refreshed from the API")
    return result, _changes(old, result.linode)


def _instance_types(items: list[dict[str, Any]], source: str) -> dict[str, InstanceType]:
    types = {}
    for item in items:
        if not isinstance(item, dict) or not item.get("id"):
            continue
        price = _price(item, source)
        backups = ((item.get("addons") or {}).get("backups")) or None
        types[item["id"]] = InstanceType(
            **price.model_dump(),
            label=str(item.get("label") or item["id"]),
            transfer_gb=item.get("transfer") if isinstance(item.get("transfer"), int) else None,
            backups=_price(backups, source) if isinstance(backups, dict) else None,
        )
    return types


def _nodebalancer(items: list[dict[str, Any]], source: str) -> Price | None:
    found = next((i for i in items if isinstance(i, dict) and i.get("id") == "nodebalancer"), None)
    return _price(found, source) if found else None


def _managed_mysql(items: list[dict[str, Any]], source: str) -> dict[str, DatabaseType]:
    types = {}
    for item in items:
        mysql = ((item.get("engines") or {}).get("mysql") or []) if isinstance(item, dict) else []
        sizes = {e["quantity"]: _monthly((e.get("price") or {}).get("monthly"))
                 for e in mysql if isinstance(e, dict) and isinstance(e.get("quantity"), int)}
        if not item.get("id") or not sizes:
            continue
        types[item["id"]] = DatabaseType(
            label=str(item.get("label") or item["id"]), cluster_monthly=sizes, sources=(source,),
            unconfirmed=None if None not in sizes.values() else "the API gave no monthly price for some cluster sizes",
        )
    return types


def _object_storage(items: list[dict[str, Any]], source: str, old: ObjectStorage) -> ObjectStorage:
    # The subscription is the `objectstorage` type; what it includes is wording the API does not give.
    found = next((i for i in items if isinstance(i, dict) and i.get("id") == "objectstorage"), None)
    if found is None or _monthly((found.get("price") or {}).get("monthly")) is None:
        return old
    return ObjectStorage(**_price(found, source).model_dump(), included=old.included)


def _price(item: dict[str, Any], source: str) -> Price:
    monthly = _monthly((item.get("price") or {}).get("monthly"))
    regions = {r["id"]: m for r in item.get("region_prices") or []
               if isinstance(r, dict) and isinstance(r.get("id"), str) and (m := _monthly(r.get("monthly"))) is not None}
    return Price(monthly=monthly, region_monthly=regions, sources=(source,),
                 unconfirmed=None if monthly is not None else "the API gave no monthly price")


def _monthly(value: Any) -> float | None:
    # 0 is how the public endpoint shows a price it does not publish (GPU plans): not "free".
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return float(value)


def _changes(old: Any, new: Any) -> Changes:
    """Monthly figures that differ between two Linode parts (LinodePrices)."""
    before, after = _figures(old), _figures(new)
    changes = Changes(added=sorted(set(after) - set(before)), removed=sorted(set(before) - set(after)))
    changes.changed = [f"{what}: {_shown(before[what])} -> {_shown(after[what])}"
                       for what in sorted(set(before) & set(after)) if before[what] != after[what]]
    return changes


def _figures(linode: Any) -> dict[str, float | None]:
    figures: dict[str, float | None] = {f"Linode {t}": p.monthly for t, p in linode.instance_types.items()}
    figures["NodeBalancer"] = linode.nodebalancer.monthly
    figures["Object Storage"] = linode.object_storage.monthly
    for type_id, db in linode.managed_mysql.items():
        figures.update({f"managed MySQL {type_id} x {n}": m for n, m in db.cluster_monthly.items()})
    return figures


def _shown(value: float | None) -> str:
    return "unknown" if value is None else f"{value:,.2f}"
