"""The monthly cost as people read it (a table under the plan, or two stacks side by side for a pull
request) and as `--output json` carries it. Same numbers in both: the text is made from them.

Marks: `*` a figure no source confirms, `?` no figure at all (left out of every total, and said so).
"""

from __future__ import annotations

import datetime
import textwrap
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from drctl.plan.cost import CostLine, CostReport, line_order, region_order
from drctl.plan.prices import STALE_AFTER_DAYS, PriceList

UNCONFIRMED_MARK, UNKNOWN = "*", "?"
_WIDTH = 110


@dataclass(frozen=True)
class Costed:
    """One stack's cost and what to call it in a comparison."""

    label: str  # "prod (Pulumi.prod.yaml)"
    heading: str  # its column's heading: the stack, or the file when both are one stack
    report: CostReport


def price_list_line(prices: PriceList, on: datetime.date) -> str:
    age = prices.age_days(on)
    return f"price list of {prices.date.isoformat()} ({age} day{'s' if age != 1 else ''} old)"


def stale_warning(prices: PriceList, on: datetime.date) -> str | None:
    if not prices.stale(on):
        return None
    return (f"the price list is {prices.age_days(on)} days old (more than {STALE_AFTER_DAYS}): prices may have "
            "changed. Run `drctl prices --refresh` for Linode's, and check the Cloudflare part by hand "
            "(`drctl prices` lists the sources).")


# --- one stack ------------------------------------------------------------------------------------


def render_cost(report: CostReport, prices: PriceList, on: datetime.date) -> list[str]:
    lines = [f"Monthly cost ({prices.currency}), {price_list_line(prices, on)}:"]
    warning = stale_warning(prices, on)
    if warning:
        lines.append(f"    Warning: {warning}")
    rows = [("REGION", "KIND", "DETAIL", "COUNT", "EACH", "MONTHLY")]
    rows += [(c.region, c.kind, _detail(c.detail, c, c), str(c.count), _each(c), _money(c.monthly, c.unconfirmed))
             for c in report.lines]
    lines += _table(rows, right=(3, 4, 5))
    lines.append("")
    lines.append("    By region: " + ", ".join(
        f"{region} {_sum(known, unknown)}" for region, (known, unknown) in _regions(report)))
    lines.append(f"    Total: {_sum(report.total, report.unknown)} a month")
    lines += _legend(report.lines)
    if report.usage:
        lines.append("    Usage-priced, not in the total:")
        for u in report.usage:
            rate = u.rate + (UNCONFIRMED_MARK if u.unconfirmed and u.rate.startswith("$") else "")
            lines += _wrapped(f"- {u.what}. Included: {u.included}. Beyond: {rate}.", "      ", "        ")
    if report.free:
        lines += _wrapped("Not billed (why: `drctl prices`): " + ", ".join(
            f"{_short(t)}({n})" for t, n in report.free.items()) + ".", "    ", "        ")
    if report.unpriced:
        lines += _wrapped("No price and no reason to be free (add them to drctl/plan/prices.json): " + ", ".join(
            f"{t}({n})" for t, n in report.unpriced.items()) + ".", "    ", "        ")
    return lines


def cost_document(report: CostReport, prices: PriceList, on: datetime.date) -> dict[str, Any]:
    return {
        "currency": prices.currency,
        "priceList": {"date": prices.date.isoformat(), "ageDays": prices.age_days(on), "stale": prices.stale(on)},
        "lines": [_line_document(c) for c in report.lines],
        "byRegion": {region: {"monthly": _number(known), "unknownItems": unknown}
                     for region, (known, unknown) in _regions(report)},
        "total": {"monthly": _number(report.total), "unknownItems": report.unknown,
                  "unconfirmedItems": report.unconfirmed},
        "usagePriced": [{"what": u.what, "included": u.included, "rate": u.rate, "unconfirmed": u.unconfirmed}
                        for u in report.usage],
        "notBilled": {t: {"count": n, "why": prices.free[t].why} for t, n in report.free.items()},
        "unpriced": report.unpriced,
    }


# --- two stacks -----------------------------------------------------------------------------------


def render_compare(base: Costed, other: Costed, prices: PriceList, on: datetime.date) -> list[str]:
    lines = [f"Monthly cost ({prices.currency}): {base.label} -> {other.label}, {price_list_line(prices, on)}"]
    warning = stale_warning(prices, on)
    if warning:
        lines.append(f"    Warning: {warning}")
    rows = [("REGION", "KIND", "DETAIL", base.heading, other.heading, "CHANGE")]
    for (region, kind, detail), a, b in _paired(base.report, other.report):
        rows.append((region, kind, _detail(detail, a, b), _side(a), _side(b), _change(a, b)))
    rows.append(("TOTAL", "", "", _sum(base.report.total, base.report.unknown),
                 _sum(other.report.total, other.report.unknown), _signed(other.report.total - base.report.total)))
    lines += _table(rows, right=(3, 4, 5))
    lines += _legend([*base.report.lines, *other.report.lines])
    if base.report.unknown or other.report.unknown:
        lines.append(f"    CHANGE of the total counts the known prices only ({UNKNOWN} items are in neither total).")
    return lines


def compare_document(base: Costed, other: Costed, prices: PriceList, on: datetime.date) -> dict[str, Any]:
    return {
        "currency": prices.currency,
        "priceList": {"date": prices.date.isoformat(), "ageDays": prices.age_days(on), "stale": prices.stale(on)},
        "base": {"label": base.label, "cost": cost_document(base.report, prices, on)},
        "compare": {"label": other.label, "cost": cost_document(other.report, prices, on)},
        "lines": [
            {"region": key[0], "kind": key[1], "detail": key[2], "base": _side_document(a),
             "compare": _side_document(b), "change": _number(_difference(a, b))}
            for key, a, b in _paired(base.report, other.report)
        ],
        "total": {"base": _number(base.report.total), "compare": _number(other.report.total),
                  "change": _number(other.report.total - base.report.total),
                  "unknownItems": {"base": base.report.unknown, "compare": other.report.unknown}},
    }


def _paired(a: CostReport, b: CostReport) -> list[tuple[tuple[str, str, str], CostLine | None, CostLine | None]]:
    """Lines of both reports matched by (region, kind, detail), in the order they come in either."""
    left, right = {c.key: c for c in a.lines}, {c.key: c for c in b.lines}
    regions = region_order(a, b)
    keys = sorted(dict.fromkeys([*left, *right]), key=lambda k: line_order(k, regions))
    return [(k, left.get(k), right.get(k)) for k in keys]


def _difference(a: CostLine | None, b: CostLine | None) -> Decimal | None:
    before = Decimal(0) if a is None else a.monthly
    after = Decimal(0) if b is None else b.monthly
    return None if before is None or after is None else after - before


def _change(a: CostLine | None, b: CostLine | None) -> str:
    diff = _difference(a, b)
    return UNKNOWN if diff is None else _signed(diff)


def _side(line: CostLine | None) -> str:
    if line is None:
        return "-"
    return f"{line.count} x {_each(line)} = {_money(line.monthly, line.unconfirmed)}"


def _side_document(line: CostLine | None) -> dict[str, Any] | None:
    if line is None:
        return None
    return {"count": line.count, "each": _number(line.each), "monthly": _number(line.monthly),
            "unconfirmed": line.unconfirmed, **({"note": line.note} if line.note else {})}


def _detail(detail: str, a: CostLine | None, b: CostLine | None) -> str:
    """The detail with what the count is made of; a change of it shows as before -> after."""
    notes = [line.note for line in (a, b) if line is not None and line.note]
    if not notes:
        return detail
    made_of = notes[0] if len(set(notes)) == 1 or a is None or b is None else f"{a.note} -> {b.note}"
    return f"{detail} ({made_of})" if detail else made_of


# --- formatting -----------------------------------------------------------------------------------


def _line_document(c: CostLine) -> dict[str, Any]:
    return {"region": c.region, "kind": c.kind, "detail": c.detail, **({"note": c.note} if c.note else {}),
            "count": c.count, "each": _number(c.each), "monthly": _number(c.monthly), "unconfirmed": c.unconfirmed}


def _regions(report: CostReport) -> list[tuple[str, tuple[Decimal, int]]]:
    totals = report.by_region()
    return [(region, totals[region]) for region in report.regions if region in totals]


def _table(rows: list[tuple[str, ...]], right: tuple[int, ...]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for row in rows:
        cells = [cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))]
        out.append(("    " + "  ".join(cells)).rstrip())
    return out


def _wrapped(text: str, first: str, rest: str) -> list[str]:
    return textwrap.wrap(text, width=_WIDTH, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False)


def _legend(lines: list[CostLine]) -> list[str]:
    notes = []
    if any(c.unconfirmed and c.count for c in lines):
        notes.append(f"{UNCONFIRMED_MARK} a figure no source confirms")
    if any(c.monthly is None for c in lines):
        notes.append(f"{UNKNOWN} no figure in the price list, left out of the totals")
    return [f"    ({'; '.join(notes)}: `drctl prices` says which and why)"] if notes else []


def _each(c: CostLine) -> str:
    return _money(c.each, c.unconfirmed)


def _money(value: Decimal | None, unconfirmed: bool = False) -> str:
    if value is None:
        return UNKNOWN
    return f"{value:,.2f}" + (UNCONFIRMED_MARK if unconfirmed and value else "")


def _signed(value: Decimal) -> str:
    return f"{value:+,.2f}" if value else "0.00"


def _sum(known: Decimal, unknown: int) -> str:
    return f"{known:,.2f}" + (f" + {unknown} x {UNKNOWN}" if unknown else "")


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(round(value, 2))


def _short(type_token: str) -> str:
    """cloudflare:index/dnsRecord:DnsRecord -> cloudflare:DnsRecord"""
    return f"{type_token.split(':', 1)[0]}:{type_token.rsplit(':', 1)[-1]}"
