"""`drctl prices`: the price list `drctl plan` costs stacks with (its age, the figures no source
confirms, what is usage-priced or free and why, every source), and `--refresh` to rewrite its
Linode part from Linode's public price endpoints, which need no token.

The Cloudflare part has no API to refresh from: check it by hand against the sources listed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from drctl.plan import prices as price_list
from drctl.plan.cost_table import price_list_line, stale_warning
from drctl.plan.prices import PRICE_LIST, PriceList, PriceListError, load_price_list, unconfirmed_entries
from drctl.stack.command_line import EXIT_FAILED, EXIT_OK, EXIT_USAGE, add_output_argument, fail


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "prices",
        help="show the price list drctl plan uses; --refresh its Linode part from Linode's public API",
        description=__doc__.split("\n\n")[0].replace("`drctl prices`: the", "The", 1),
    )
    p.add_argument("--refresh", action="store_true",
                   help="read Linode's public price endpoints (DRCTL_LINODE_BASE_URL, else api.linode.com; no "
                        "token needed) and rewrite the Linode part of the list")
    p.add_argument("--dry-run", action="store_true", help="with --refresh: say what would change, write nothing")
    p.add_argument("--file", metavar="PATH", help=f"the price list to read and write (default {_shown(PRICE_LIST)})")
    add_output_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.dry_run and not args.refresh:
        fail("prices", "--dry-run: only with --refresh (got --dry-run alone; allowed: --refresh --dry-run)")
        return EXIT_USAGE
    path = Path(args.file) if args.file else PRICE_LIST
    try:
        prices = load_price_list(path)
    except PriceListError as err:
        fail("prices", str(err))
        return EXIT_USAGE if args.file else EXIT_FAILED
    if args.refresh:
        return refresh(args, prices, path)
    if args.output == "json":
        _dump(show_document(prices, path))
    else:
        sys.stdout.write("\n".join(show_text(prices, path)) + "\n")
    return EXIT_OK


def refresh(args: argparse.Namespace, prices: PriceList, path: Path) -> int:
    # Only the refresh talks to an API; `drctl plan` and `drctl prices` without it stay offline.
    from drctl.cloud.linode import LinodeAPIError
    from drctl.cloud.linode_prices import read_price_catalog
    from drctl.plan.price_refresh import RefreshError, refreshed
    from drctl.plan.prices import write_price_list

    on = price_list.today()
    try:
        base_url, catalog = read_price_catalog()
        new, changes = refreshed(prices, catalog, base_url, on)
    except (LinodeAPIError, RefreshError) as err:
        fail("prices", f"--refresh: {err}; the price list was not changed")
        return EXIT_FAILED
    if not args.dry_run:
        write_price_list(new, path)
    done = "would write" if args.dry_run else "wrote"
    if args.output == "json":
        _dump({"file": str(path), "written": not args.dry_run, "source": base_url, "checked": on.isoformat(),
               "changed": changes.changed, "added": changes.added, "removed": changes.removed})
        return EXIT_OK
    counts = f"{len(new.linode.instance_types)} Linode types, {len(new.linode.managed_mysql)} managed MySQL plans"
    lines = [f"Read Linode's prices from {base_url} ({counts}); {done} {_shown(path)}, Linode part checked "
             f"{on.isoformat()}:", *changes.lines()]
    lines.append("The Cloudflare part is unchanged (no price API): check it by hand, see `drctl prices`.")
    sys.stdout.write("\n".join(lines) + "\n")
    return EXIT_OK


def show_text(prices: PriceList, path: Path) -> list[str]:
    on = price_list.today()
    linode = prices.linode
    lines = [f"Price list {_shown(path)}: {price_list_line(prices, on)}; Linode part checked "
             f"{linode.checked.isoformat()}, Cloudflare part {prices.cloudflare.checked.isoformat()}."]
    warning = stale_warning(prices, on)
    if warning:
        lines.append(f"Warning: {warning}")
    lines.append(f"Linode: {len(linode.instance_types)} Linode types, NodeBalancer {_money(linode.nodebalancer.monthly)}, "
                 f"{len(linode.managed_mysql)} managed MySQL plans, Object Storage {_money(linode.object_storage.monthly)}"
                 f" ({linode.object_storage.included}).")
    lines.append("")
    lines.append("Figures no source confirms, or nobody found (plan marks them * and ?):")
    lines += [f"    {where}: {figure}: {why}" for where, figure, why in unconfirmed_entries(prices)] or ["    none"]
    lines.append("")
    lines.append("Usage-priced, listed beside a stack's total, never in it:")
    for u in prices.usage():
        rate = "no figure" if u.rate is None else f"${u.rate:g} per {u.unit}"
        lines.append(f"    {u.what}. Included: {u.included}. Beyond: {rate}.")
    lines.append("")
    lines.append("Not billed:")
    lines += [f"    {kind}: {free.why}" for kind, free in prices.free.items()]
    lines.append("")
    lines.append("Sources:")
    for name, source in prices.sources.items():
        lines.append(f"    [{name}] {source.url or '(not a public page)'}")
        lines.append(f"        {source.found}")
    return lines


def show_document(prices: PriceList, path: Path) -> dict[str, Any]:
    on = price_list.today()
    return {
        "file": str(path),
        "date": prices.date.isoformat(),
        "ageDays": prices.age_days(on),
        "stale": prices.stale(on),
        "unconfirmed": [{"where": w, "figure": f, "why": why} for w, f, why in unconfirmed_entries(prices)],
        "prices": prices.model_dump(mode="json"),
    }


def _dump(document: dict[str, Any]) -> None:
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _money(value: float | None) -> str:
    return "no figure" if value is None else f"{value:,.2f}"


def _shown(path: Path) -> str:
    """A path relative to the working directory when it is under it (drctl/plan/prices.json)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
