"""The command-line conventions every drctl command shares, in one place (as kubectl and pulumi
have them): which stack (`-s/--stack` or `--outputs FILE`), `-o/--output text|json`, exit codes
0 ok / 1 failed or degraded / 2 usage, one `UsageError`, and argument types for numbers that
refuse what would make a command misbehave (`nan` never compares, `inf` never times out).

It lives beside the stack-outputs contract because every command package may import drctl/stack
and nothing else in common.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """The command line asks for something impossible (exit 2); the message names the flag, what
    was given and what is allowed."""


def fail(command: str, message: str) -> None:
    """The one line a refused command prints: `drctl COMMAND: message` on stderr."""
    print(f"drctl {command}: {message}", file=sys.stderr, flush=True)


# --- numbers --------------------------------------------------------------------------------------

DAY = 86400.0  # the longest wait any drctl timeout or period may ask for
HOUR = 3600.0


def number(kind: type, minimum: float, *, above: bool = False, maximum: float | None = None,
           unit: str = "") -> Callable[[str], Any]:
    """An argparse type: an int or a finite float of at least `minimum` (above it, with `above`),
    at most `maximum`. Every refusal states the whole allowed range and what was given."""
    allowed = _range(kind, minimum, above, maximum, unit)

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if (value is None or not math.isfinite(value) or value < minimum or (above and value == minimum)
                or (maximum is not None and value > maximum)):
            raise argparse.ArgumentTypeError(f"must be {allowed} (got {_shown(text)})")
        return value
    parse.allowed, parse.maximum = allowed, maximum  # type: ignore[attr-defined]  # for --help and the tests
    return parse


def _range(kind: type, minimum: float, above: bool, maximum: float | None, unit: str) -> str:
    what = "an integer" if kind is int else "a number"
    unit = f" {unit}" if unit else ""
    low = _plain(minimum)
    if maximum is None:
        return f"{what} {'above' if above else 'at least'} {low}{unit}"
    if above:
        return f"{what} above {low} and at most {_plain(maximum)}{unit}"
    return f"{what} from {low} to {_plain(maximum)}{unit}"


def _plain(value: float) -> str:
    """2592000, not 2.592e+06: a limit is read and typed back."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _shown(text: str) -> str:
    return text if text and text.isprintable() and not any(c.isspace() for c in text) else repr(text)


seconds = number(float, 0, maximum=DAY, unit="s")  # a wait or a period: 0 up to a day
positive_seconds = number(float, 0, above=True, maximum=DAY, unit="s")  # a timeout or poll: 0 would spin or give up at once


def past_time(text: str, now: Callable[[], float] | None = None) -> float:
    """An argparse type: a moment that has passed, as ISO-8601 with its time zone
    (2026-11-29T14:03:00Z, 2026-11-29T15:03:00+01:00); seconds since the epoch. A time without a zone
    would be read in whatever zone this host is set to, so it is refused."""
    allowed = "an ISO-8601 time with its time zone, not in the future, e.g. 2026-11-29T14:03:00Z"
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time (got {_shown(text)}; allowed: {allowed})") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"no time zone (got {_shown(text)}; allowed: {allowed})")
    value = moment.timestamp()
    current = (now or time.time)()
    if value > current:
        raise argparse.ArgumentTypeError(f"in the future, {value - current:.0f} s from now (got {_shown(text)}; "
                                         f"allowed: {allowed})")
    return value


def iso_time(value: float) -> str:
    """Seconds since the epoch as the ISO-8601 UTC time `past_time` reads back."""
    return dt.datetime.fromtimestamp(value, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def tcp_port(minimum: int = 1) -> Callable[[str], int]:
    """A TCP port (0 where "any free port" makes sense)."""
    return number(int, minimum, maximum=65535)


# --- paths ----------------------------------------------------------------------------------------


def readable_file(text: str) -> str:
    """An argparse type: a file that exists and can be read, checked before anything runs."""
    path = Path(text)
    if not path.is_file():
        why = "is a directory" if path.is_dir() else "no such file"
        raise argparse.ArgumentTypeError(f"{why} (got {_shown(text)}; allowed: a readable file)")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"cannot read the file (got {_shown(text)}; allowed: a readable file)")
    return text


def writable_dir(text: str) -> Path:
    """An argparse type: a directory drctl can write into, or one it can create (its nearest existing
    parent is a writable directory); checked before anything runs, created only when written to."""
    path = Path(text)
    allowed = "a writable directory, or a new one in a writable directory"
    if not text:
        raise argparse.ArgumentTypeError(f"empty path (got ''; allowed: {allowed})")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == path else f"{existing} is a file"
        raise argparse.ArgumentTypeError(f"{where} (got {_shown(text)}; allowed: {allowed})")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{existing} is not writable (got {_shown(text)}; allowed: {allowed})")
    return path


def program(text: str) -> str:
    """An argparse type: a command line run without a shell (hooks, alert commands) whose program
    exists and is executable, checked before anything runs."""
    try:
        argv = shlex.split(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"cannot split into words: {err} (got {text!r}; allowed: PROGRAM [ARGS...] "
                                         "with balanced quotes)") from None
    if not argv:
        raise argparse.ArgumentTypeError(f"empty command (got {text!r}; allowed: PROGRAM [ARGS...])")
    if shutil.which(argv[0]) is None:
        raise argparse.ArgumentTypeError(f"no executable {argv[0]!r} (got {text!r}; allowed: a program on PATH or "
                                         "the path of an executable, then its arguments)")
    return text


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


def source_flag(args: argparse.Namespace) -> str:
    """The flag and value the stack outputs came from, for a message about what they hold."""
    outputs = getattr(args, "outputs", None)
    return f"--outputs {outputs}" if outputs else f"-s/--stack {getattr(args, 'stack', None)}"


def add_output_argument(p: argparse.ArgumentParser, what: str = "output format") -> None:
    p.add_argument("-o", "--output", choices=("text", "json"), default="text", help=f"{what} (default text)")


def printer(args: argparse.Namespace) -> Callable[[str], None]:
    """Progress goes to stdout for people, to stderr when stdout carries JSON."""
    stream = sys.stderr if getattr(args, "output", "text") == "json" else sys.stdout

    def say(line: str) -> None:
        print(line, file=stream, flush=True)
    return say
