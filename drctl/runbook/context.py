"""What status, promote and failback share: the stack they act on, the clients they use, the
journal and hooks around state-changing runs, and the command-line conventions.

`Runbook` is also the entry point for code that drives these commands (drctl drill / rehearse):
build one with the traffic backend of your choice and call `promote.promote(...)` or
`failback.failback(...)` with their options objects.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drctl.cloud.deadline import api_budget
from drctl.cloud.linode import LinodeAPI, LinodeAPIError
from drctl.cloud.traffic import TrafficBackend, TrafficError
from drctl.mysql.topology import DbServer, servers_from_outputs
from drctl.runbook.hooks import HookFailed, run_hooks
from drctl.runbook.journal import Journal, JournalError, PromotionHistory, RunLock, Step, state_dir
from drctl.stack.command_line import (
    EXIT_FAILED,
    EXIT_USAGE,
    UsageError,
    add_output_argument,
    add_stack_arguments,
    fail,
    positive_seconds,
    printer,
    program,
    stack_source,
)
from drctl.stack.outputs import OutputsError, StackOutputs, load_outputs
from drctl.stack.state_files import private_dir

JOURNAL_FILE = "journal.json"
LOCK_FILE = "lock"
HISTORY_FILE = "promotions.json"
FENCES_FILE = "fences.json"
DEFAULT_BLOCK_SECONDS = 3600


class Refused(Exception):
    """A safety check said no. The message says why and what would make it safe; nothing changed
    unless the message says so."""


@dataclass
class Runbook:
    outputs: StackOutputs
    state_dir: Path
    say: Callable[[str], None] = print
    traffic_factory: Callable[[], TrafficBackend] | None = None
    linode_factory: Callable[[], LinodeAPI] | None = None
    clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    servers: dict[str, DbServer] = field(init=False)
    _traffic: TrafficBackend | None = field(default=None, init=False, repr=False)
    _linode: LinodeAPI | None = field(default=None, init=False, repr=False)
    _lock: RunLock | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.servers = servers_from_outputs(self.outputs)

    @property
    def stack(self) -> str:
        return self.outputs.stack

    def server(self, region: str, flag: str | None = None) -> DbServer:
        """The database server of `region`; UsageError naming `flag` (the option that gave it) otherwise."""
        if region not in self.servers:
            raise UsageError(f"{flag + ': ' if flag else ''}no database server in region {region!r} of stack "
                             f"{self.stack!r} (got {region!r}; allowed: {', '.join(self.servers)})")
        return self.servers[region]

    def traffic(self) -> TrafficBackend:
        """The stack's traffic backend; TrafficError when it cannot be built (no token, ...)."""
        if self._traffic is None:
            if self.traffic_factory is None:
                raise TrafficError("no traffic backend configured")
            self._traffic = self.traffic_factory()
        return self._traffic

    def linode(self) -> LinodeAPI:
        """The Linode API client; LinodeAPIError when it cannot be built (no token)."""
        if self._linode is None:
            if self.linode_factory is None:
                raise LinodeAPIError("no Linode API client configured")
            self._linode = self.linode_factory()
        return self._linode

    def try_traffic(self) -> tuple[TrafficBackend | None, str | None]:
        try:
            return self.traffic(), None
        except (TrafficError, OutputsError) as err:
            return None, str(err)

    def try_linode(self) -> tuple[LinodeAPI | None, str | None]:
        try:
            return self.linode(), None
        except LinodeAPIError as err:
            return None, str(err)

    # --- files ---------------------------------------------------------------------------------
    @property
    def journal_path(self) -> Path:
        return self.state_dir / JOURNAL_FILE

    def history(self) -> PromotionHistory:
        return PromotionHistory(self.state_dir / HISTORY_FILE, clock=self.clock)

    def open_journal(self, operation: str, params: dict[str, Any], abandon: bool) -> tuple[Journal, bool]:
        """The journal for this run: resumed when an unfinished one matches, else a new one (a
        finished predecessor is kept under journals/)."""
        if self._lock is None:
            self._lock = RunLock(self.state_dir / LOCK_FILE, clock=self.clock)
        holder = self._lock.acquire(operation)  # before the journal: two runs must not both read it open
        journal = Journal(self.journal_path, operation, params, clock=self.clock)
        self._archive_finished()
        resumed = journal.open(abandon=abandon)
        journal.doc["holder"] = holder  # who runs it now: a resumed journal names the latest run
        return journal, resumed

    def release_lock(self) -> None:
        """Let the next run of this stack start (the process's exit does the same)."""
        if self._lock is not None:
            self._lock.release()

    def peek_journal(self, operation: str, params: dict[str, Any], abandon: bool) -> Journal | None:
        """For --dry-run: the unfinished journal of this very operation (read-only), None when there is
        none, JournalError when the real run would be refused for another operation's journal."""
        journal = Journal(self.journal_path, operation, params, clock=self.clock)
        return journal if journal.peek(abandon) else None

    def _archive_finished(self) -> None:
        journal = Journal(self.journal_path, "", {})
        existing = journal.read()
        if existing and existing.get("finished"):
            archive = private_dir(self.state_dir / "journals")
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(existing.get("started") or 0))
            shutil.move(str(self.journal_path), archive / f"{stamp}-{existing['operation']}.json")

    # --- hooks ---------------------------------------------------------------------------------
    def hook_env(self, operation: str, phase: str, from_region: str, to_region: str, mode: str,
                 dry_run: bool, result: str | None = None) -> dict[str, str]:
        env = {"DRCTL_OPERATION": operation, "DRCTL_PHASE": phase, "DRCTL_STACK": self.stack,
               "DRCTL_FROM_REGION": from_region, "DRCTL_TO_REGION": to_region, "DRCTL_MODE": mode,
               "DRCTL_DRY_RUN": "1" if dry_run else "0", "DRCTL_JOURNAL": str(self.journal_path)}
        if result is not None:
            env["DRCTL_RESULT"] = result
        return env

    def pre_hook_step(self, hooks: list[str], env: dict[str, str]) -> Step:
        def run() -> Any:
            try:
                return {"hooks": len(hooks), "output": run_hooks(hooks, env)}
            except HookFailed as err:
                raise Refused(f"pre-hook failed, nothing was changed: {err}") from None
        return Step("pre-hooks", f"run {len(hooks)} pre-hook(s)", run)

    def run_post_hooks(self, hooks: list[str], env: dict[str, str]) -> str | None:
        """Run post-hooks; a failure is returned as a warning (what is done stays done)."""
        if not hooks:
            return None
        try:
            run_hooks(hooks, env)
        except HookFailed as err:
            return f"post-hook failed: {err}"
        return None


# --- command line -----------------------------------------------------------------------------------


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    add_stack_arguments(p)
    add_output_argument(p)


def add_command(subparsers: argparse._SubParsersAction, name: str, summary: str, doc: str) -> argparse.ArgumentParser:
    """A runbook sub-command: its module docstring (past the first line) as the description, and
    the arguments every runbook command takes."""
    p = subparsers.add_parser(name, help=summary, description=doc.split("\n", 1)[1].strip(),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(p)
    return p


@dataclass(frozen=True, kw_only=True)
class ChangeOptions:
    """The flags of every command that changes which database takes writes (promote, failback, and
    the drill's promote and failback): declared, parsed and passed on from this one place."""

    yes: bool = False
    dry_run: bool = False
    catch_up_timeout: float = 300.0
    traffic_timeout: float = 120.0
    skip_traffic: bool = False
    pre_hooks: tuple[str, ...] = ()
    post_hooks: tuple[str, ...] = ()
    abandon_journal: bool = False

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dry-run", action="store_true", help="print every step and change nothing")
        p.add_argument("--yes", action="store_true", help="act (required unless --dry-run)")
        p.add_argument("--pre-hook", action="append", default=[], type=program, metavar="CMD",
                       help="executable run before any change; failing aborts (repeatable; see drctl/runbook/hooks.py)")
        p.add_argument("--post-hook", action="append", default=[], type=program, metavar="CMD",
                       help="executable run after the operation, DRCTL_RESULT=success|failed (repeatable)")
        p.add_argument("--catch-up-timeout", type=positive_seconds, default=300.0, metavar="SECONDS",
                       help="longest wait for a server to apply the transactions it must have (default 300; "
                            "above 0, at most 86400)")
        p.add_argument("--traffic-timeout", type=positive_seconds, default=120.0, metavar="SECONDS",
                       help="longest wait for traffic to reach the new primary's region (default 120; above 0, "
                            "at most 86400)")
        p.add_argument("--skip-traffic", action="store_true",
                       help="leave traffic alone (you move it yourself); drctl says so in its report")
        p.add_argument("--abandon-journal", action="store_true",
                       help="start afresh although an unfinished operation is recorded in the journal")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ChangeOptions:
        return cls(yes=args.yes, dry_run=args.dry_run, catch_up_timeout=args.catch_up_timeout,
                   traffic_timeout=args.traffic_timeout, skip_traffic=args.skip_traffic,
                   pre_hooks=tuple(args.pre_hook), post_hooks=tuple(args.post_hook),
                   abandon_journal=args.abandon_journal)

    def change_fields(self) -> dict[str, Any]:
        """These options alone, to build a command's own options from (`PromoteOptions(**...)`)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(ChangeOptions)}


def runbook_from_args(args: argparse.Namespace, say: Callable[[str], None]) -> Runbook:
    """Load the stack outputs and wire the real clients (tokens and base URLs from the environment:
    LINODE_TOKEN, DRCTL_LINODE_BASE_URL, CLOUDFLARE_API_TOKEN, DRCTL_CLOUDFLARE_BASE_URL). Each of
    their API operations gets a deadline derived from objectives.rtoSeconds (cloud/deadline.py)."""
    stack, outputs_file = stack_source(args)
    outputs = load_outputs(stack, outputs_file)
    from drctl.cloud.traffic import backend_for  # imports the Cloudflare SDK: only when needed

    return Runbook(
        outputs=outputs,
        state_dir=state_dir(stack or outputs.stack),
        say=say,
        traffic_factory=lambda: backend_for(outputs),
        linode_factory=lambda: LinodeAPI(budget=api_budget(outputs.objectives.rto_seconds)),
    )


def checked_run(command: str, args: argparse.Namespace, body: Callable[[Runbook], int]) -> int:
    """Build the runbook and run `body`, turning the errors every command shares into exit codes."""
    try:
        rb = runbook_from_args(args, printer(args))
    except (UsageError, OutputsError) as err:
        fail(command, str(err))
        return EXIT_USAGE
    try:
        return body(rb)
    except UsageError as err:
        fail(command, str(err))
        return EXIT_USAGE
    except (Refused, JournalError) as err:
        fail(command, f"refused: {err}")
        return EXIT_FAILED

