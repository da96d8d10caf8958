"""What promote and failback share: the planned switchover (fence, catch up, promote, repoint,
traffic, verify), the result both report, and running steps under the journal (for real or as a
--dry-run listing) with the command-line wrapper around them.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from drctl.cloud.object_storage import HEARTBEAT, REPLICATED, MediaBuckets, ObjectStorageError
from drctl.cloud.traffic import wait_until_serving
from drctl.mysql import gtid
from drctl.mysql import replication as r
from drctl.mysql.topology import DbServer, ServerState, session
from drctl.runbook import fencing
from drctl.runbook.context import ChangeOptions, Refused, Runbook, checked_run
from drctl.runbook.journal import Journal, JournalError, Step
from drctl.stack.command_line import EXIT_FAILED, EXIT_OK, UsageError

PROGRESS_EVERY_SECONDS = 5.0


class Aborted(Exception):
    """The operation stopped and undid what it had changed; the message says what stands."""


@dataclass
class RunResult:
    """What a promote or failback did, for people (text) and machines (--output json)."""

    operation: str
    target: str
    outcome: str = "failed"  # done | nothing-to-do | dry-run | refused | aborted | failed
    mode: str | None = None
    source: str | None = None  # the region that was primary
    steps: list[dict[str, Any]] = field(default_factory=list)
    loss: dict[str, Any] | None = None
    fencing: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    message: str = ""
    journal: str | None = None
    export: str | None = None  # failback: the errant-transaction export

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.outcome in ("done", "nothing-to-do", "dry-run") else EXIT_FAILED

    def as_dict(self) -> dict[str, Any]:
        return {"operation": self.operation, "target": self.target, "outcome": self.outcome, "mode": self.mode,
                "from": self.source, "steps": self.steps, "loss": self.loss, "fencing": self.fencing,
                "warnings": self.warnings, "message": self.message, "journal": self.journal,
                "export": self.export}

    def render(self) -> str:
        head = f"{self.operation} {self.target}: {self.outcome}"
        if self.mode:
            head += f" ({self.mode}" + (f", from {self.source})" if self.source else ")")
        lines = [head]
        if self.message:
            lines.append(f"  {self.message}")
        if self.loss:
            lines.append(f"  data loss: {self.loss['summary']}")
        for action in self.fencing:
            mark = "fenced" if action["done"] else "NOT FENCED"
            lines.append(f"  {mark} [{action['layer']}]: {action['description']}")
        lines.extend(f"  warning: {w}" for w in self.warnings)
        if self.export:
            lines.append(f"  errant transactions exported to {self.export}")
        if self.journal:
            lines.append(f"  journal: {self.journal}")
        return "\n".join(lines) + "\n"


# --- shared pieces of promote and failback --------------------------------------------------------


def source_region(rb: Runbook, state: ServerState) -> str | None:
    """The region a replica replicates from, recognised by host and port."""
    if state.replica is None:
        return None
    host, port = state.replica.source_host, state.replica.source_port
    for region, server in rb.servers.items():
        if port == server.port and host in (server.peer_host, server.host):
            return region
    return None


def wait_for(rb: Runbook, conn, dialect: r.Dialect, gtids: str, timeout: float, label: str) -> bool:
    """Wait (bounded) until the server behind `conn` has applied `gtids`, telling every few seconds
    how many transactions are still to apply. True when it has."""
    target = gtid.parse_gtids(dialect, gtids)
    start = rb.monotonic()
    while True:
        elapsed = rb.monotonic() - start
        chunk = min(PROGRESS_EVERY_SECONDS, max(0.0, timeout - elapsed))
        if r.wait_for_gtids(conn, dialect, target, chunk):
            return True
        elapsed = rb.monotonic() - start
        if elapsed >= timeout:
            return False
        behind = gtid.compare_gtids(target, r.executed_gtids(conn, dialect)).missing_count
        rb.say(f"    {label}: {behind} transaction(s) still to apply ({elapsed:.0f} s of {timeout:.0f} s)")


class Switchover:
    """The steps that move the primary role from `source` to `target` when `source` answers (planned
    promote, and the second half of failback). Step names get `prefix` so one journal can hold two."""

    def __init__(self, rb: Runbook, journal: Journal, source: str, target: str, repoint: list[str],
                 catch_up_timeout: float, traffic_timeout: float, skip_traffic: bool, prefix: str = ""):
        self.rb, self.journal = rb, journal
        self.source, self.target, self.repoint = source, target, repoint
        self.catch_up_timeout, self.traffic_timeout, self.skip_traffic = catch_up_timeout, traffic_timeout, skip_traffic
        self.prefix = prefix

    def name(self, step: str) -> str:
        return self.prefix + step

    def steps(self) -> list[Step]:
        s, t = self.source, self.target
        return [
            Step(self.name("fence-primary"), f"fence the primary in {s}: stop its heartbeat writer, read-only on, "
                                             "verified; note its final GTID set", self.fence_primary),
            Step(self.name("catch-up"), f"wait until {t} has applied every transaction of {s} "
                                        f"(at most {self.catch_up_timeout:.0f} s; on timeout {s} is opened again)",
                 self.catch_up),
            *promotion_steps(self.rb, self.journal, t, self.repoint, self.traffic_timeout, self.skip_traffic,
                             self.prefix, self.catch_up_timeout),
        ]

    def fence_primary(self) -> dict[str, Any]:
        server = self.rb.server(self.source)
        with session(server) as conn:
            dialect = r.detect_dialect(conn)
            detail = fencing.fence_sql(conn, dialect)
            detail["gtids"] = str(r.executed_gtids(conn, dialect))
        return detail

    def catch_up(self) -> dict[str, Any]:
        fenced = self.journal.detail(self.name("fence-primary"))
        with session(self.rb.server(self.target)) as conn:
            dialect = r.detect_dialect(conn)
            status = r.replica_status(conn, dialect)
            if status is not None and not status.sql_running and not status.last_sql_errno:
                r.start_replica(conn, dialect)
            if wait_for(self.rb, conn, dialect, fenced["gtids"], self.catch_up_timeout, self.target):
                return {"gtids": fenced["gtids"]}
            behind = gtid.compare_gtids(gtid.parse_gtids(dialect, fenced["gtids"]), r.executed_gtids(conn, dialect))
        self.unfence(fenced)
        raise Aborted(
            f"{self.target} did not apply the primary's transactions within {self.catch_up_timeout:.0f} s "
            f"({behind.missing_count} missing: {behind.missing}); the primary in {self.source} was opened for "
            "writes again and nothing else changed. Find out why the replica is slow (drctl status), "
            "then run promote again, with a longer --catch-up-timeout if need be"
        )

    def unfence(self, fenced: dict[str, Any]) -> None:
        with session(self.rb.server(self.source)) as conn:
            fencing.unfence_sql(conn, r.detect_dialect(conn), restart_heartbeat=fenced["heartbeatWriterStopped"])


def promotion_steps(rb: Runbook, journal: Journal, target: str, repoint: list[str], traffic_timeout: float,
                    skip_traffic: bool, prefix: str = "", catch_up_timeout: float = 60.0) -> list[Step]:
    """Promote `target`, repoint `repoint` to it (the old primary too, when it answers), move
    traffic, verify: the common tail of every promotion."""
    server = rb.server(target)

    def promote_target() -> dict[str, Any]:
        with session(server) as conn:
            dialect = r.detect_dialect(conn)
            fork = str(r.executed_gtids(conn, dialect))
            state = r.promote_to_primary(conn, dialect, heartbeat_event=server.writes_heartbeat_event)
            return {"gtids": fork, "readOnly": state.read_only,
                    "heartbeatWriter": r.heartbeat_writer_state(conn)}

    def repoint_servers() -> dict[str, str]:
        results = {}
        for region in repoint:
            results[region] = repoint_one(rb, rb.server(region), server, catch_up_timeout)
            rb.say(f"    {region}: {results[region]}")
        return results

    def switch_traffic() -> dict[str, Any]:
        backend = rb.traffic()
        change = backend.route_to(target)
        rb.say(f"    {change.description}")
        state = wait_until_serving(backend, target, traffic_timeout, say=rb.say, clock=rb.monotonic, sleep=rb.sleep)
        return {"change": change.as_dict(), "serving": state.serving, "order": list(state.order)}

    def verify() -> dict[str, Any]:
        found = verify_promotion(rb, target, journal.detail(prefix + "repoint") or {})
        for problem in found["problems"]:
            rb.say(f"    problem: {problem}")
        return found

    steps = [
        Step(prefix + "promote", f"promote {target}: stop and forget replication, read-only off (verified), "
                                 "heartbeat written there", promote_target),
        Step(prefix + "repoint", f"repoint {', '.join(repoint) or 'no other server'} to {target} "
                                 "(GTID auto-position, verified TLS)", repoint_servers),
    ]
    if skip_traffic:
        steps.append(Step(prefix + "switch-traffic", "leave traffic alone (--skip-traffic)",
                          lambda: {"skipped": True}))
    else:
        steps.append(Step(prefix + "switch-traffic", f"send traffic to {target} and wait until it serves "
                                                     f"(at most {traffic_timeout:.0f} s)", switch_traffic))
    steps.append(Step(prefix + "verify", f"verify: {target} writable, the others replicate from it", verify))
    return steps


def repoint_one(rb: Runbook, server: DbServer, new_primary: DbServer, apply_timeout: float) -> str:
    """Make one server a replica of the new primary; returns what happened in one line. Never
    repoints a server that has transactions the new primary lacks (it would diverge)."""
    try:
        with session(server) as conn, session(new_primary) as primary_conn:
            dialect = r.detect_dialect(conn)
            status = r.replica_status(conn, dialect)
            if status is not None:
                pending, count = r.retrieved_not_applied(conn, dialect, status)
                if count and status.sql_running:
                    wait_for(rb, conn, dialect, str(pending), apply_timeout, server.region)
            diff = r.compare_servers(primary_conn, conn, dialect)
            if diff.errant_count:
                return (f"NOT repointed: it has {diff.errant_count} transaction(s) {new_primary.region} lacks "
                        f"({diff.errant}); rebuild it from {new_primary.region} (drctl failback --to "
                        f"{server.region} --discard-errant reseeds it)")
            fencing.fence_sql(conn, dialect)  # a demoted primary: read-only before it follows anyone
            r.repoint(conn, dialect, new_primary.as_source(), timeout=60)
            return f"replicating from {new_primary.region}"
    except Exception as err:  # one server failing must not stop the others; verify reports it
        return f"NOT repointed: {err}"


def verify_promotion(rb: Runbook, target: str, repointed: dict[str, str]) -> dict[str, Any]:
    """The promotion stands or falls with the new primary (raises when it is not a writable primary);
    a server that does not follow it is a problem to report, not a reason to stop."""
    server = rb.server(target)
    with session(server) as conn:
        dialect = r.detect_dialect(conn)
        ro = r.read_only_state(conn, dialect)
        if ro.read_only or r.replica_status(conn, dialect) is not None:
            raise r.ReplicationError(f"verification failed: {target} is not a writable primary "
                                     f"(read_only={ro.read_only})")
        problems = []
        if server.writes_heartbeat_event and r.heartbeat_writer_state(conn) != "ENABLED":
            problems.append(f"{target}'s heartbeat writer is not enabled: replica lag cannot be measured")
        r.write_heartbeat(conn)  # a fresh transaction every replica must receive
        gtids = r.executed_gtids(conn, dialect)
    checks = {target: "writable primary"}
    for region, outcome in repointed.items():
        if not outcome.startswith("replicating"):
            problems.append(f"{region}: {outcome}")
            continue
        try:
            with session(rb.server(region)) as conn:
                status = r.replica_status(conn, dialect)
                if status is None or not status.replicating:
                    why = "; ".join(status.problems()) if status else "no source"
                    problems.append(f"{region} does not replicate from {target}: {why}")
                elif not r.wait_for_gtids(conn, dialect, gtids, 20):  # under the connection's read timeout
                    problems.append(f"{region} did not receive {target}'s newest transaction within 20 s")
                elif not r.read_only_state(conn, dialect).fenced:
                    problems.append(f"{region} replicates from {target} but is writable")
                else:
                    checks[region] = f"replicating from {target}, read-only"
        except Exception as err:
            problems.append(f"{region}: {err}")
    return {"checks": checks, "problems": problems}


# --- media: the uploads follow the primary role ------------------------------------------------------

MEDIA_CHECK_SECONDS = 20.0  # reading one small object from each bucket, before any change


def copy_media(rb: Runbook, source: str, target: str, why: str, timeout: float = 3600,
               read_timeout: float = 60.0) -> dict[str, Any]:
    """Make `target`'s bucket hold every upload `source`'s has (what the copy replaces or deletes
    goes to `target`'s attic, never away): failback's copy home and a planned promotion's copy to
    the new primary. Idempotent (rclone sync copies only what differs). A failure stops the run where
    it stands (journaled, resumable): running the same command again picks up right here."""
    buckets = MediaBuckets(rb.outputs.media, timeout=read_timeout)
    try:
        return buckets.copy_home(source, target, rb.clock(), timeout=timeout, why=why)
    except ObjectStorageError as err:
        raise ObjectStorageError(f"media not copied from {source} to {target}: {err}") from None


def media_copy_steps(rb: Runbook, switch: list[Step], source: str, target: str, why: str, first: str,
                     second: str, prefix: str = "") -> list[Step]:
    """`switch` (a Switchover's steps) with the media copy from `source` to `target` run twice: the
    bulk before it, while the shop still sells, and again between its catch-up (`source` fenced,
    so no new upload's order can commit) and its promotion, before traffic moves (after the
    promotion, `source`'s agent would start copying from `target`). Nothing when the stack has no
    media buckets."""
    if rb.outputs.media is None:
        return switch
    what = f"copy the uploads {source}'s bucket has to {target}'s (what the copy replaces or deletes goes to " \
           f"{target}'s attic, never away)"
    steps = [Step(first, what, lambda: copy_media(rb, source, target, why)), *switch]
    at = next(i for i, s in enumerate(steps) if s.name == prefix + "promote")
    steps.insert(at, Step(second, f"again, with {source} fenced: {what}", lambda: copy_media(rb, source, target, why)))
    return steps


def media_unreachable(rb: Runbook, regions: tuple[str, ...]) -> str | None:
    """Why the media copy between `regions` cannot run now (None: both buckets answer): read before
    any change, so an unreachable bucket refuses the whole operation instead of stopping it half-way."""
    if rb.outputs.media is None:
        return None
    buckets = MediaBuckets(rb.outputs.media, timeout=MEDIA_CHECK_SECONDS)
    for region, key in zip(regions, (HEARTBEAT, REPLICATED), strict=True):
        try:
            buckets.read_json(region, key)
        except ObjectStorageError as err:
            return f"{region}'s media bucket cannot be read ({err}), so the uploads cannot be copied before traffic moves"
    return None


TARGET_FLAGS = {"promote": "--region", "failback": "--to"}  # the option naming the region each one acts on


def begin(rb: Runbook, operation: str, target: str, params: dict[str, Any],
          change: ChangeOptions) -> tuple[RunResult, Journal | None, dict[str, Any] | None]:
    """How promote and failback start: --yes or --dry-run, a region the stack has, the journal
    (opened and resumed; only looked at in a dry run, None when there is none), and the plan an
    earlier run of this operation recorded (None when it must be made now)."""
    if not change.dry_run and not change.yes:
        raise UsageError(f"{operation} changes which database takes writes: pass --yes to act, or --dry-run to "
                         "see the steps")
    rb.server(target, TARGET_FLAGS[operation])
    result = RunResult(operation, target, journal=str(rb.journal_path))
    if change.dry_run:
        journal = rb.peek_journal(operation, params, change.abandon_journal)
    else:
        journal, _ = rb.open_journal(operation, params, change.abandon_journal)
    plan = journal.detail("assess") if journal is not None else None
    if plan is not None:
        rb.say("  = read every server and decide (done in an earlier run)")
    return result, journal, plan


def holding_run_lock(run: Callable[[Runbook, Any], RunResult]) -> Callable[[Runbook, Any], RunResult]:
    """Wrap promote or failback: the stack's run lock (taken when the journal opens) is let go
    when the run returns, however it returns, so the next run in this process can start."""
    @functools.wraps(run)
    def locked(rb: Runbook, opts: Any) -> RunResult:
        try:
            return run(rb, opts)
        finally:
            rb.release_lock()
    return locked


# --- running the steps ---------------------------------------------------------------------------


class NullJournal(Journal):
    """Stands in for the journal in --dry-run: nothing is done, nothing is written."""

    def __init__(self) -> None:
        super().__init__(path=None, operation="", params={})  # type: ignore[arg-type]
        self.doc = {"steps": []}


def dry_run(rb: Runbook, result: RunResult, steps: list[Step], journal: Journal | None,
            refusal: str | None = None) -> RunResult:
    """What a --dry-run of promote or failback reports: every step, and which a resumed run skips."""
    result.outcome = "dry-run"
    for step in steps:
        done = journal is not None and journal.done(step.name)
        result.steps.append({"name": step.name, "description": step.description,
                             "status": "done in an earlier run" if done else "would run"})
        rb.say(f"  {'=' if done else '>'} {step.description}" + (" (done in an earlier run)" if done else ""))
    result.message = "dry run: nothing was changed"
    if refusal:
        result.message += f"; as things stand the promotion would be refused: {refusal}"
    return result


def execute(rb: Runbook, result: RunResult, journal: Journal, steps: list[Step], plan: dict[str, Any],
             opts: Any, operation: str) -> RunResult:
    outcome = "failed"
    try:
        journal.run(steps, rb.say)
        outcome, result.message = "done", f"{plan['to']} is the primary"
    except Aborted as err:
        outcome, result.message = "aborted", str(err)
    except Refused as err:
        outcome, result.message = "refused", str(err)
    except (Exception, KeyboardInterrupt) as err:
        interrupted = isinstance(err, KeyboardInterrupt)
        stopped = next((s["name"] for s in journal.doc["steps"] if s["status"] == "failed"), "?")
        result.message = (f"stopped at step {stopped}: {'interrupted' if interrupted else err}. Last step done: "
                          f"{Journal.last_done(journal.doc) or 'none'}. Fix the cause and run the same command again "
                          f"to continue (journal: {journal.path})")
        if interrupted:
            # The caller sees only the interrupt: say here where things stand (a primary may be fenced).
            rb.say(f"{operation} {plan['to']}: {result.message}")
            raise
    finally:
        result.steps = [{k: s.get(k) for k in ("name", "status", "error")} for s in journal.doc["steps"]]
        fenced = journal.detail("fence-old-primary")
        if fenced:
            result.fencing = fenced
            # An unreachable server cannot be fenced in SQL, which is expected; the other layers matter.
            result.warnings += [f"could not fence: {a['description']}" for a in fenced
                                if not a["done"] and a["layer"] != "sql"]
        media = journal.detail("media-copy") or {}
        if media.get("note"):
            result.warnings.append(media["note"])
        verified = journal.detail("verify") or journal.detail("switch-verify") or {}
        result.warnings += verified.get("problems", [])
        if opts.skip_traffic:
            result.warnings.append("traffic was not moved (--skip-traffic): move it to "
                                   f"{plan['to']} yourself")
    result.outcome = outcome
    if outcome in ("done", "aborted", "refused"):
        journal.finish(outcome)
    mode = plan["mode"] if plan["mode"] in ("planned", "unplanned") else "planned"
    warning = rb.run_post_hooks(opts.post_hooks, rb.hook_env(
        operation, "post", plan["from"] or "", plan["to"], mode, False,
        "success" if outcome == "done" else "failed"))
    if warning:
        result.warnings.append(warning)
    return result


# --- command line ---------------------------------------------------------------------------------


def run_command(operation: str, target: str, args: argparse.Namespace, body: Callable[[Runbook], RunResult]) -> int:
    """The command line around promote and failback: a refusal before any change becomes a result
    too, so `-o json` always prints a document."""
    def reported(rb: Runbook) -> int:
        try:
            result = body(rb)
        except (Refused, JournalError) as err:
            result = RunResult(operation, target, outcome="refused", message=str(err), journal=str(rb.journal_path))
        return report(result, args)
    return checked_run(operation, args, reported)


def report(result: RunResult, args: argparse.Namespace) -> int:
    if args.output == "json":
        json.dump(result.as_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(result.render())
    return result.exit_code
