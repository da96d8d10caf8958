"""The command-line side of scratch Linodes, shared by `drctl restore --target linode[:REGION]` and
`drctl drill --restore`: their flags, the request they make, what `--dry-run` says (with the
monthly price from drctl/plan/prices.json), and `drctl restore --list-scratch` / `--delete-scratch`.
The Linode work itself is drctl/backup/scratch_linode.py's."""

from __future__ import annotations

import argparse
import ipaddress
import json
from collections.abc import Callable

from drctl.backup import scratch_linode as scratch
from drctl.cloud.linode import LinodeAPI, LinodeAPIError
from drctl.stack.command_line import DAY, EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, fail, number
from drctl.stack.outputs import StackOutputs

# The widest network --allow-from may admit to a scratch full of the shop's data, per family: the
# numbers components/firewall_rules.py holds every other database firewall to.
MAX_SOURCE_PREFIX = {4: 8, 6: 32}
DEFAULT_TIMEOUT = 1200.0  # a Linode boots in about a minute; cloud-init's apt install takes a few more


def scratch_type(text: str) -> str:
    try:
        return scratch.linode_type(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def region(text: str) -> str:
    try:
        return scratch.region_id(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def source_network(text: str) -> str:
    allowed = "an IPv4 or IPv6 address or network such as 203.0.113.7/32, this machine's public address"
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an address or network (got {text!r}; allowed: {allowed})") from None
    if net.prefixlen < MAX_SOURCE_PREFIX[net.version]:
        raise argparse.ArgumentTypeError(f"too wide: /{net.prefixlen} would open the restored data to a large part of "
                                         f"the internet (got {text!r}; allowed: a prefix of at least "
                                         f"/{MAX_SOURCE_PREFIX[net.version]})")
    return str(net)


def add_scratch_arguments(p: argparse.ArgumentParser, *, keep_flag: bool) -> None:
    p.add_argument("--scratch-type", type=scratch_type, default=scratch.DEFAULT_TYPE, metavar="TYPE",
                   help=f"the scratch Linode's plan (default {scratch.DEFAULT_TYPE})")
    p.add_argument("--allow-from", type=source_network, action="append", default=[], metavar="CIDR",
                   help="admit MySQL on the scratch Linode from this network too (repeatable; the stack's "
                        "access.operatorCidrs always are): this machine's public address")
    timeout = number(float, 60, maximum=DAY, unit="s")
    p.add_argument("--scratch-timeout", type=timeout, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help=f"how long to wait for the scratch Linode to answer: {timeout.allowed} "  # type: ignore[attr-defined]
                        f"(default {DEFAULT_TIMEOUT:g})")
    if keep_flag:
        p.add_argument("--keep-scratch", action="store_true",
                       help="keep the scratch Linode afterwards for inspection (delete it with drctl restore "
                            "--delete-scratch LABEL --yes)")


def sources(outputs: StackOutputs, allow_from: list[str], flag: str = "--allow-from") -> tuple[str, ...]:
    found = scratch.allowed_sources(outputs.access.operator_cidrs, allow_from)
    if not found:
        raise UsageError(f"{flag}: stack {outputs.stack!r} has no access.operatorCidrs and no {flag} was given, so the "
                         "scratch Linode would admit nobody (allowed: --allow-from CIDR, this machine's public "
                         "address such as 203.0.113.7/32)")
    return tuple(found)


def monthly_price(linode_type: str, region_name: str) -> str:
    """The plan's price from the price list drctl plan uses, or why there is none."""
    from drctl.plan.prices import PriceListError, load_price_list

    try:
        prices = load_price_list()
    except PriceListError as err:
        return f"price unknown ({err})"
    kind = prices.linode.instance_types.get(linode_type)
    figure = kind.in_region(region_name) if kind is not None else None
    if figure is None:
        return f"price unknown: {linode_type} has no price in drctl/plan/prices.json"
    return f"US${figure:.2f}/month, billed by the hour while it exists (drctl/plan/prices.json, checked {prices.linode.checked})"


def plan_lines(request: scratch.ScratchRequest, keep: bool) -> list[str]:
    after = "kept for inspection" if keep else "deleted afterwards, even on failure or Ctrl-C"
    return [f"would create {request.describe()}", f"  {monthly_price(request.type, request.region)}; {after}"]


def linode_api() -> LinodeAPI:
    """LINODE_TOKEN and DRCTL_LINODE_BASE_URL from the environment; UsageError without a token."""
    try:
        return LinodeAPI()
    except LinodeAPIError as err:
        raise UsageError(str(err)) from None


def list_and_delete(args: argparse.Namespace, outputs: StackOutputs, say: Callable[[str], None]) -> int:
    """`--list-scratch` and `--delete-scratch LABEL`."""
    try:
        if args.delete_scratch and not args.delete_scratch.startswith(f"{scratch.SCRATCH_TAG}-"):
            raise UsageError(f"--delete-scratch: not a scratch Linode's label (got {args.delete_scratch!r}; allowed: a "
                             f"label starting {scratch.SCRATCH_TAG}-, as --list-scratch shows)")
        if args.delete_scratch and not args.yes:
            raise UsageError(f"--delete-scratch deletes Linode {args.delete_scratch} and what it holds: pass --yes")
        api = linode_api()
    except UsageError as err:
        fail("restore", str(err))
        return EXIT_USAGE
    try:
        if args.delete_scratch:
            if not scratch.delete_scratch(api, outputs.stack, args.delete_scratch, say):
                say(f"no scratch Linode {args.delete_scratch}: nothing to delete")
            return EXIT_OK
        found = scratch.list_scratch(api, outputs.stack)
    except LinodeAPIError as err:
        fail("restore", str(err))
        return EXIT_FAILED
    rows = [{"label": i.get("label"), "id": i.get("id"), "region": i.get("region"), "type": i.get("type"),
             "status": i.get("status"), "address": scratch.public_address(i),
             "created": next((t[len("created:"):] for t in i.get("tags", ()) if t.startswith("created:")), None)}
            for i in found]
    if args.output == "json":
        print(json.dumps({"scratch": rows}, indent=2))
    elif not rows:
        say(f"no scratch Linodes of stack {outputs.stack}")
    else:
        for r in rows:
            say(f"{r['label']}  id {r['id']}  {r['region']}  {r['type']}  {r['status']}  {r['address']}  "
                f"created {r['created']}")
    return EXIT_OK
