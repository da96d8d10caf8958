"""The command-line conventions every drctl command shares, in one place (as kubectl and pulumi
have them): which stack (`-s/--stack` or `--outputs FILE`), `-o/--output text|json`, exit codes
0 ok / 1 failed or degraded / 2 usage, one `UsageError`, and argument types for numbers that
refuse what would make a command misbehave (`nan` never compares, `inf` never times out).

It lives beside the stack-outputs contract because every command package may import drctl/stack
and nothing else in common.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """The command line asks for something impossible (exit 2); the message names the flag, what
    was given and what is allowed."""


def fail(command: str, message: str) -> None:
    """The one line a refused command prints: `drctl COMMAND: message` on stderr."""
    print(f"drctl {command}: {message}", file=sys.stderr, flush=True)


# --- numbers --------------------------------------------------------------------------------------


def number(kind: type, minimum: float, *, above: bool = False, maximum: float | None = None) -> Callable[[str], Any]:
    """An argparse type: an int or a finite float of at least `minimum` (above it, with `above`),
    at most `maximum`."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a{'n integer' if kind is int else ' number'}: {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number (got {text})")
        if value < minimum or (above and value == minimum):
            raise argparse.ArgumentTypeError(f"must be {'above' if above else 'at least'} {minimum:g} (got {text})")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum:g} (got {text})")
        return value
    return parse


seconds = number(float, 0)  # a wait or a period: 0 or more, finite
positive_seconds = number(float, 0, above=True)  # a poll interval or timeout: 0 would spin


# --- which stack ----------------------------------------------------------------------------------


def add_stack_arguments(p: argparse.ArgumentParser) -> None:
    """`-s/--stack STACK` or `--outputs FILE`, one of them (checked by `stack_source`)."""
    source = p.add_mutually_exclusive_group()
    source.add_argument("-s", "--stack", help="stack name: reads `pulumi stack output` (needs the Pulumi CLI)")
    source.add_argument("--outputs", metavar="FILE", help="read the stack outputs from FILE instead "
                                                          "(`pulumi stack output --json --show-secrets > FILE`)")


def stack_source(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """(stack, outputs file) as the command line names them; UsageError when it names neither.
    Reading them (and a file that cannot be read) is `drctl.stack.outputs.load_outputs`'s."""
    stack, outputs = getattr(args, "stack", None), getattr(args, "outputs", None)
    if not stack and not outputs:
        raise UsageError("give -s/--stack STACK or --outputs FILE")
    return stack, outputs


def add_output_argument(p: argparse.ArgumentParser, what: str = "output format") -> None:
    p.add_argument("-o", "--output", choices=("text", "json"), default="text", help=f"{what} (default text)")


def printer(args: argparse.Namespace) -> Callable[[str], None]:
    """Progress goes to stdout for people, to stderr when stdout carries JSON."""
    stream = sys.stderr if getattr(args, "output", "text") == "json" else sys.stdout

    def say(line: str) -> None:
        print(line, file=stream, flush=True)
    return say
