"""`drctl plan`: what `pulumi up --stack S` would create and what it costs a month, computed offline.

Runs the real `__main__.py` under the Pulumi SDK's mock engine with the stack file loaded (the same
loader and engine the tests use) and prints the resource tree, the stack outputs, a count and the
monthly cost from the price list in drctl/plan/prices.json. Values the providers assign print as
"(known after apply)", secrets as "[secret]". With --compare or --compare-file it prints only the
cost of two stacks side by side, line by line, for a pull request.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from drctl.plan import prices as price_list
from drctl.plan.cost import CostReport, cost_of, stack_regions
from drctl.plan.cost_table import Costed, compare_document, cost_document, render_compare, render_cost, stale_warning
from drctl.plan.prices import PriceList, PriceListError, load_price_list
from drctl.stack.command_line import EXIT_FAILED, EXIT_OK, EXIT_USAGE, add_output_argument, fail
from drctl.stack.files import StackFile, StackFileError, load_stack_file

ENGINE_NOTE = (
    "Offline plan: __main__.py ran under the Pulumi SDK's mock engine with {file}; "
    "no cloud API was contacted and no credentials were used."
)
_LONG = 100


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "plan",
        help="show what a stack would create and cost a month, offline (no credentials, no Pulumi CLI)",
        description=__doc__.split("\n\n")[1],
    )
    p.add_argument("-s", "--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    p.add_argument("--stack-file", metavar="PATH", help="plan this file instead of Pulumi.<stack>.yaml")
    other = p.add_mutually_exclusive_group()
    other.add_argument("--compare", metavar="STACK",
                       help="print only the monthly cost of this stack and of STACK, line by line")
    other.add_argument("--compare-file", metavar="PATH",
                       help="the same against PATH, a changed stack file of this stack (a pull request's)")
    p.add_argument("--price-list", metavar="PATH",
                   help="cost with this price list instead of drctl/plan/prices.json (one from `drctl prices --refresh --file`)")
    add_output_argument(p)
    p.set_defaults(func=run)


class _Refused(Exception):
    def __init__(self, code: int):
        self.code = code


def run(args: argparse.Namespace) -> int:
    try:
        stack = load_stack_file(args.stack, path=Path(args.stack_file) if args.stack_file else None)
        compared = None
        if args.compare or args.compare_file:
            compared = _compared_stack_file(args)
        prices = load_price_list(Path(args.price_list) if args.price_list else None)
    except StackFileError as err:
        fail("plan", str(err))
        return EXIT_USAGE
    except PriceListError as err:
        fail("plan", str(err))
        return EXIT_USAGE if args.price_list else EXIT_FAILED
    on = price_list.today()
    try:
        result = _planned(stack)
        if compared is not None:
            same_stack = stack.stack == compared.stack
            costs = [Costed(_label(s), Path(s.source).name if same_stack else s.stack, _cost(r, prices))
                     for s, r in ((stack, result), (compared, _planned(compared)))]
            _print(args, compare_document(*costs, prices, on), render_compare(*costs, prices, on))
            return EXIT_OK
    except _Refused as refused:
        return refused.code
    report = _cost(result, prices)
    if args.output == "json":
        document = plan_document(result)
        document["cost"] = cost_document(report, prices, on)
        warning = stale_warning(prices, on)
        if warning:
            document["warnings"].append(warning)
        _print(args, document, [])
    else:
        sys.stdout.write(render_text(result, render_cost(report, prices, on)))
    return EXIT_OK


def _compared_stack_file(args: argparse.Namespace) -> StackFile:
    """The second stack: another stack by name, or a changed file of this one."""
    try:
        if args.compare:
            return load_stack_file(args.compare)
        return load_stack_file(args.stack, path=Path(args.compare_file))
    except StackFileError as err:
        # The loader names the flags of the first stack; say which flag named this one.
        message = str(err).replace("--stack-file:", "--compare-file:", 1).replace("--stack:", "--compare:", 1)
        raise StackFileError(message) from None


def _planned(stack: StackFile):
    from drctl.plan.engine import run_program  # imports Pulumi: only the plan needs it

    result = run_program(stack, preview=True)
    if result.error is not None:
        fail("plan", f"stack {stack.stack!r} ({stack.source}) cannot be planned:\n{result.error}")
        raise _Refused(EXIT_USAGE if result.refused_input else EXIT_FAILED)
    return result


def _cost(result, prices: PriceList) -> CostReport:
    return cost_of(result.resources, prices, regions=stack_regions(result.stack.config))


def _label(stack: StackFile) -> str:
    return f"{stack.stack} ({Path(stack.source).name})"


def _print(args: argparse.Namespace, document: dict[str, Any], text: list[str]) -> None:
    if args.output == "json":
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write("\n".join(text) + "\n")


def plan_document(result) -> dict[str, Any]:
    resources = [
        {
            "urn": r.urn,
            "type": r.type,
            "name": r.name,
            "parent": r.parent or None,
            "kind": "resource" if r.custom else "component",
            "inputs": _printable(r.inputs),
            **({"ignoreChanges": list(r.ignore_changes)} if r.ignore_changes else {}),
        }
        for r in result.resources
    ]
    return {
        "project": result.stack.project,
        "stack": result.stack.stack,
        "engine": ENGINE_NOTE.format(file=result.stack.source),
        "resources": resources,
        "outputs": _printable(result.outputs),
        "summary": _summary(result),
        "warnings": [msg for level, msg in result.logs if level in ("warning", "error")],
    }


def _summary(result) -> dict[str, Any]:
    custom = [r for r in result.resources if r.custom]
    return {
        "toCreate": len(result.resources),
        "components": len(result.resources) - len(custom),
        "cloudResources": len(custom),
        "byType": dict(sorted(Counter(r.type for r in custom).items())),
    }


def render_text(result, cost_lines: list[str] | None = None) -> str:
    lines = [ENGINE_NOTE.format(file=result.stack.source), ""]
    lines.append(f"Plan for stack {result.stack.stack!r} of project {result.stack.project!r}:")
    lines.append("")

    def walk(parent: str, depth: int) -> None:
        # Registration order depends on when each resource's inputs resolved; names read better.
        for r in sorted(result.children(parent), key=lambda r: r.name):
            pad = "    " * depth
            lines.append(f"{pad}+ {r.type}  {r.name}")
            for key, value in sorted(r.inputs.items()):
                lines.extend(_field_lines(key, value, pad + "      "))
            if r.ignore_changes:
                lines.append(f"{pad}      (drift ignored by Pulumi: {', '.join(r.ignore_changes)})")
            walk(r.urn, depth + 1)

    lines.append(f"+ pulumi:pulumi:Stack  {result.stack.project}-{result.stack.stack}")
    for root in sorted({r.parent for r in result.resources if r.parent and not _registered(result, r.parent)}):
        walk(root, 1)
    lines.append("")
    lines.append("Outputs:")
    for key, value in result.outputs.items():
        lines.extend(_field_lines(key, value, "    "))
    warnings = [msg for level, msg in result.logs if level in ("warning", "error")]
    if warnings:
        lines.append("")
        lines.append("Warnings:")
        lines.extend(f"    {w}" for w in warnings)
    s = _summary(result)
    lines.append("")
    lines.append(
        f"Resources: {s['toCreate']} to create ({s['cloudResources']} cloud resources in "
        f"{s['components']} components)"
    )
    for type_token, count in s["byType"].items():
        lines.append(f"    {count:3d} x {type_token}")
    if cost_lines:
        lines.append("")
        lines.extend(cost_lines)
    return "\n".join(lines) + "\n"


def _registered(result, urn: str) -> bool:
    return any(r.urn == urn for r in result.resources)


def _field_lines(key: str, value: Any, pad: str) -> list[str]:
    printable = _printable(value)
    compact = json.dumps(printable, ensure_ascii=False) if not isinstance(printable, str) else printable
    if len(compact) <= _LONG or not isinstance(printable, dict | list):
        return [f"{pad}{key}: {_shorten(compact)}"]
    lines = [f"{pad}{key}:"]
    items = printable.items() if isinstance(printable, dict) else ((f"[{i}]", v) for i, v in enumerate(printable))
    for k, v in items:
        lines.extend(_field_lines(k, v, pad + "    "))
    return lines


def _shorten(text: str) -> str:
    if len(text) <= _LONG:
        return text
    return f"<{len(text)} characters, begins {text[:40]!r}>"


def _printable(value: Any) -> Any:
    """Replace markers by their printed form; a secret's contents are never looked at."""
    from drctl.plan.engine import ResourceRef, Secret, Unknown

    if isinstance(value, Secret):
        return "[secret]"
    if isinstance(value, Unknown):
        return "(known after apply)"
    if isinstance(value, ResourceRef):
        return f"(resource {value.urn.rsplit('::', 1)[-1]})"
    if isinstance(value, dict):
        return {k: _printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_printable(v) for v in value]
    return value
