"""The drctl command line: one sub-command per DR procedure, kubectl/pulumi conventions
(`-s/--stack`, `--output json`, `--dry-run`, `--yes`; exit 0 ok, 1 failed or degraded, 2 usage)."""

from __future__ import annotations

import argparse
import signal
import sys

from drctl.backup import archive_command as archive
from drctl.backup import command as restore
from drctl.backup import restore_drill
from drctl.drill import command as drill_command
from drctl.guard import command as guard
from drctl.plan import command as plan
from drctl.plan import prices_command as prices
from drctl.rehearsal import command as rehearse
from drctl.runbook import failback, promote, status
from drctl.watch import command as watch

# Each module adds its sub-command with add_parser(subparsers) and sets `func`; restore_drill adds
# `--restore` to the drill command declared before it (the drill package never imports the archive).
COMMANDS = (plan, prices, status, promote, failback, watch, guard, drill_command, rehearse, restore, archive,
            restore_drill)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="drctl",
        description="Operate a woocommerce-dr deployment: plan, prices, status, promote, failback, watch, guard, drill, "
                    "rehearse, restore, archive.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def answer_ctrl_c() -> None:
    """Make SIGINT raise KeyboardInterrupt even when drctl was started with it ignored (a shell's
    background job, a CI runner): an operator's Ctrl-C or `kill -INT` must stop a promote at once and
    have it say where things stand, not leave it running with a primary fenced."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    answer_ctrl_c()
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("drctl: interrupted", file=sys.stderr)
        return 130
