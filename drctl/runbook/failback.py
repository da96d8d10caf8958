"""`drctl failback --to R`: bring the primary role back to R (usually the original primary region).

R first rejoins as a replica of the current primary:
- a network fence drctl put on R during an unplanned promotion is lifted (the saved firewall rules
  or allow-list restored), and R is fenced in SQL at once (heartbeat writer stopped, read-only);
- errant transactions are looked for: what R committed that the current primary never received
  (orders written after the last transaction that reached the replica, heartbeats of a restarted
  primary). Any found are exported to a JSON file (GTIDs, tables, statements, decoded rows) and,
  unless they only touched drctl's own heartbeat schema, failback refuses: review the export,
  re-enter what matters on the current primary, then run again with `--discard-errant`, which
  rebuilds R from a copy of the current primary (its errant changes are gone afterwards);
- R replicates from the current primary (GTID auto-position) and catches up.
Then a planned switchover back, exactly as `drctl promote` does it (fence, wait, promote, repoint
everyone including the current primary, traffic, verify), and R's traffic fence is lifted.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drctl.cloud.linode import LinodeAPIError
from drctl.mysql import errant, gtid, seeding
from drctl.mysql import replication as r
from drctl.mysql.reseed import copy_server, missing_clients
from drctl.mysql.topology import DatabaseUnreachable, DbServer, compare, discover, probe, session
from drctl.runbook import fencing
from drctl.runbook.context import FENCES_FILE, ChangeOptions, Refused, Runbook, add_command
from drctl.runbook.journal import Journal, Step
from drctl.runbook.switchover import (
    Aborted,
    NullJournal,
    RunResult,
    Switchover,
    begin,
    dry_run,
    execute,
    holding_run_lock,
    media_copy_steps,
    run_command,
    wait_for,
)
from drctl.stack.command_line import writable_dir

REACHABLE_AFTER_UNFENCE_SECONDS = 120.0
COPY_ATTEMPTS = 2  # --discard-errant's copy: once more after the source dropped the dump's connection


@dataclass(frozen=True, kw_only=True)
class FailbackOptions(ChangeOptions):
    to: str
    discard_errant: bool = False
    export_dir: Path | None = None  # default: <state dir>/errant

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> FailbackOptions:
        return cls(to=args.to, discard_errant=args.discard_errant, export_dir=args.export_dir,
                   **ChangeOptions.from_args(args).change_fields())


@holding_run_lock
def failback(rb: Runbook, opts: FailbackOptions) -> RunResult:
    result, journal, plan = begin(rb, "failback", opts.to, {"to": opts.to}, opts)
    if plan is None:
        try:
            plan = assess(rb, opts)
        except BaseException:
            if journal is not None and not opts.dry_run:
                journal.finish("refused")
            raise
        if not opts.dry_run:
            journal.run([Step("assess", "read every server and decide", lambda: plan)], rb.say)
    result.mode, result.source = plan["mode"], plan.get("from")
    if plan["mode"] == "none":
        result.outcome, result.message = "nothing-to-do", f"{opts.to} is already the primary"
        if journal is not None and not opts.dry_run:
            journal.finish("nothing-to-do")
        return result
    steps = plan_steps(rb, journal, plan, opts)
    if opts.dry_run:
        return dry_run_with_errant(rb, result, steps, journal, plan)
    assert journal is not None
    result = execute(rb, result, journal, steps, plan, opts, "failback")
    checked = journal.detail("check-errant") or (journal.doc.get("refusal") or {})
    result.export = checked.get("export") or result.export
    return result


def assess(rb: Runbook, opts: FailbackOptions) -> dict[str, Any]:
    topo = discover(rb.servers)
    if topo.primary is not None and topo.primary.region == opts.to:
        return {"mode": "none", "from": opts.to, "to": opts.to}
    # The server failing back may itself be writable (an old primary restarted without read_only):
    # it is fenced before anything else; the primary is the one writable server among the others.
    others = [s for s in topo.primaries if s.region != opts.to]
    if len(others) != 1:
        found = ", ".join(f"{s.region}: {s.role}" for s in topo.states.values())
        raise Refused(f"there is no single writable primary to fail back from ({found}); "
                      "use drctl promote to make one, then fail back")
    primary = others[0]
    target = topo[opts.to]
    fenced = fencing.FenceStore(rb.state_dir / FENCES_FILE).get(opts.to)
    if not target.reachable and not fenced:
        raise Refused(f"drctl cannot read the database in {opts.to} and holds no network fence of it to lift: "
                      f"{target.error}")
    if target.reachable:
        with session(rb.server(opts.to)) as conn:
            check_can_follow(conn, rb.server(opts.to))
    repoint = [s.region for s in topo.states.values() if s.region not in (opts.to, primary.region)
               and s.role == "replica"] + [primary.region]
    return {"mode": "failback", "from": primary.region, "to": opts.to, "liftFence": sorted(fenced),
            "repoint": repoint, "targetRole": target.role}


def plan_steps(rb: Runbook, journal: Journal | None, plan: dict[str, Any], opts: FailbackOptions) -> list[Step]:
    j = journal or NullJournal()
    current, target = plan["from"], plan["to"]
    steps: list[Step] = []
    if opts.pre_hooks:
        steps.append(rb.pre_hook_step(opts.pre_hooks, rb.hook_env("failback", "pre", current, target, "planned",
                                                                  opts.dry_run)))
    if plan["liftFence"]:
        steps.append(Step("lift-network-fence", f"restore {target}'s {' and '.join(plan['liftFence'])} saved when it "
                                                "was fenced, and wait until its database answers",
                          lambda: lift_fence(rb, target)))
    steps += [
        Step("fence-rejoining", f"fence {target} in SQL: heartbeat writer stopped, read-only on (it must not take "
                                "writes while it rejoins)", lambda: fence_rejoining(rb, target)),
        Step("check-errant", f"look for transactions {target} has and {current} lacks; export them; refuse unless "
                             "they only touched drctl's heartbeat or --discard-errant",
             lambda: check_errant(rb, j, target, current, opts)),
        Step("rejoin", f"make {target} a replica of {current} (rebuilt from a copy of {current} when errant "
                       "transactions are discarded)", lambda: rejoin(rb, j, target, current)),
        Step("catch-up", f"wait until {target} has applied every transaction of {current} "
                         f"(at most {opts.catch_up_timeout:.0f} s)", lambda: catch_up(rb, target, current, opts)),
    ]
    switch = Switchover(rb, j, current, target, plan["repoint"], opts.catch_up_timeout, opts.traffic_timeout,
                        opts.skip_traffic, prefix="switch-").steps()
    # Media taken in `current` during the outage goes home twice, the second time with `current`
    # fenced and before `target` is promoted.
    switch = media_copy_steps(rb, switch, current, target, "failback", "media-home", "switch-media-home",
                              prefix="switch-")
    steps += switch
    steps.append(Step("record", "record the switchover (anti-flapping history)", lambda: record(rb, j, plan)))
    return steps


def lift_fence(rb: Runbook, region: str) -> dict[str, Any]:
    server = rb.server(region)
    try:
        done = fencing.lift_network_fence(server, rb.linode(), fencing.FenceStore(rb.state_dir / FENCES_FILE))
    except LinodeAPIError as err:
        raise Aborted(f"could not lift the network fence of {region}: {err}") from None
    for line in done:
        rb.say(f"    {line}")
    deadline = rb.monotonic() + REACHABLE_AFTER_UNFENCE_SECONDS
    while True:
        state = probe(server, timeout=3)
        if state.reachable:
            return {"restored": done}
        if rb.monotonic() >= deadline:
            raise DatabaseUnreachable(f"{region} still does not answer {REACHABLE_AFTER_UNFENCE_SECONDS:.0f} s after "
                                      f"its fence was lifted: {state.error}")
        rb.sleep(2)


def fence_rejoining(rb: Runbook, region: str) -> dict[str, Any]:
    with session(rb.server(region)) as conn:
        check_can_follow(conn, rb.server(region))
        return fencing.fence_sql(conn, r.detect_dialect(conn))


# Any of these lets an account run CHANGE REPLICATION SOURCE / START REPLICA.
FOLLOW_PRIVILEGES = frozenset({"SUPER", "REPLICATION_SLAVE_ADMIN", "REPLICATION SLAVE ADMIN", "ALL PRIVILEGES", "ALL"})


def check_can_follow(conn, server: DbServer) -> None:
    """Refuse before any change when drctl's account there may not make the server a replica (a
    Linode Managed Database's admin account, for one, has no such privilege)."""
    if r.global_privileges(r.show_grants(conn)) & FOLLOW_PRIVILEGES:
        return
    what = "a Linode Managed Database" if server.managed else f"the server in {server.region}"
    raise Refused(f"{server.user!r} on {what} may not make it a replica (it needs REPLICATION_SLAVE_ADMIN or "
                  "SUPER), so it cannot rejoin and take the primary role back this way. Rebuild the primary "
                  "there from the current one instead (for a managed database: a new cluster seeded from a dump "
                  "of the current primary), then redeploy")


def check_errant(rb: Runbook, journal: Journal, target: str, current: str, opts: FailbackOptions) -> dict[str, Any]:
    # The rejoining server first: it is fenced, so it cannot grow; the primary read after it can only
    # be further ahead, never make the rejoining server look errant.
    t_state = probe(rb.server(target))
    p_state = probe(rb.server(current))
    diff = compare(p_state, t_state)
    if diff is None:
        raise DatabaseUnreachable(t_state.error or p_state.error or "the servers speak different dialects")
    if diff.errant_count == 0:
        if t_state.replica is not None and t_state.replica.replicating and \
                t_state.replica.source_port == rb.server(current).port:
            return {"errant": 0, "action": "none"}
        return {"errant": 0, "action": "repoint"}
    server = rb.server(target)
    with session(server) as conn:
        found = errant.examine(conn, server, r.detect_dialect(conn), current, diff)
    path = errant.write_export(found, opts.export_dir or rb.state_dir / "errant", rb.clock())
    rb.say(f"    {diff.errant_count} errant transaction(s) on {target} ({diff.errant}); exported to {path}")
    detail = {"errant": diff.errant_count, "gtids": diff.errant, "export": str(path),
              "dataTransactions": len(found.data_transactions)}
    if found.only_drctl:
        rb.say(f"    they only touched drctl's heartbeat: dropped from {target}'s GTID history, no shop data lost")
        return {**detail, "action": "rewind"}
    if opts.discard_errant:
        return {**detail, "action": "reseed"}
    journal.doc["refusal"] = {"export": str(path)}
    what = f"{len(found.data_transactions)} changed shop data" if found.complete else "some could not be read"
    raise Refused(
        f"{target} has {diff.errant_count} transaction(s) {current} never received ({what}): {diff.errant}. "
        f"They are exported to {path}. Review them and re-enter what matters on {current}; then run "
        f"drctl failback --to {target} --discard-errant, which rebuilds {target} from a copy of {current}. "
        f"{target} stays fenced (read-only) meanwhile"
    )


def rejoin(rb: Runbook, journal: Journal, target: str, current: str) -> dict[str, Any]:
    checked = journal.detail("check-errant") or {}
    action = checked.get("action", "repoint")
    server, source = rb.server(target), rb.server(current)
    if action == "none":
        return {"action": "none", "detail": f"{target} already replicates from {current}"}
    if action == "reseed":
        reseed(rb, server, source)
    with session(server) as conn:
        dialect = r.detect_dialect(conn)
        if action == "rewind":
            rewind(conn, dialect, checked["gtids"])
        status = r.repoint(conn, dialect, source.as_source(), timeout=60)
    return {"action": action, "source": f"{status.source_host}:{status.source_port}"}


def rewind(conn, dialect: r.Dialect, errant_gtids: str) -> None:
    """Forget errant transactions that changed only drctl's heartbeat (the data stays; the next
    heartbeat from the new source overwrites the row)."""
    if dialect.is_mariadb:
        history: Any = r.binlog_state(conn).without(gtid.parse_ranges(errant_gtids))
    else:
        history = r.executed_gtids(conn, dialect) - gtid.GtidSet.parse(errant_gtids)
    with r.lifted_super_read_only(conn, dialect):
        r.rewind_gtid_history(conn, dialect, history)


def reseed(rb: Runbook, server: DbServer, source: DbServer) -> None:
    """Rebuild `server`'s data from a consistent copy of `source`, through this machine: the dump
    client reads the source, the command-line client loads the server (outside its binary log),
    then the server's GTID history is the copy's. Its own errant changes are gone afterwards.
    A copy whose source dropped the dump's connection (a link that broke between regions) is made
    again once, from a fresh read of the source: the copy starts by emptying the server, and the
    history must be read before the dump it goes with."""
    for attempt in range(1, COPY_ATTEMPTS + 1):
        with session(source) as src:
            dialect = r.detect_dialect(src)
            databases = seeding.prepare_source(src)
            source_history = r.binlog_state(src) if dialect.is_mariadb else None
        missing = missing_clients(dialect)
        if missing:
            raise Aborted(f"--discard-errant copies {source.region} to {server.region} with {' and '.join(missing)}, "
                          "which are not installed here; nothing was changed")
        rb.say(f"    copying {', '.join(databases)} from {source.region} to {server.region}")
        try:
            copy_server(source, server, dialect, databases, source_history)
            return
        except seeding.SeedError as err:
            if not err.lost_connection or attempt == COPY_ATTEMPTS:
                raise r.ReplicationError(str(err)) from None
            rb.say(f"    {source.region} closed the copy's connection ({err}); copying again")


def catch_up(rb: Runbook, target: str, current: str, opts: FailbackOptions) -> dict[str, Any]:
    with session(rb.server(current)) as conn:
        wanted = str(r.executed_gtids(conn, r.detect_dialect(conn)))
    with session(rb.server(target)) as conn:
        dialect = r.detect_dialect(conn)
        if not wait_for(rb, conn, dialect, wanted, opts.catch_up_timeout, target):
            raise r.ReplicationError(f"{target} did not catch up with {current} within {opts.catch_up_timeout:.0f} s; "
                                     "it keeps replicating: run failback again to continue")
    return {"gtids": wanted}


def record(rb: Runbook, journal: Journal, plan: dict[str, Any]) -> dict[str, Any]:
    promoted = journal.detail("switch-promote") or {}
    rb.history().record(plan["from"], plan["to"], mode="failback", gtids=promoted.get("gtids"))
    return {"from": plan["from"], "to": plan["to"]}


def dry_run_with_errant(rb: Runbook, result: RunResult, steps: list[Step], journal: Journal | None,
                        plan: dict[str, Any]) -> RunResult:
    """The dry-run listing, and whether the real run would find errant transactions; a check that
    could not run says so (a dry run that stays silent would read as "none found")."""
    result = dry_run(rb, result, steps, journal)
    rejoining, current = probe(rb.server(plan["to"])), probe(rb.server(plan["from"]))
    unanswered = [state for state in (rejoining, current) if not state.reachable]
    diff = compare(current, rejoining)
    if unanswered or diff is None:
        why = "; ".join(str(state.error) for state in unanswered) or "the two servers speak different dialects"
        result.warnings.append(f"could not check {plan['to']} for errant transactions ({why}); the real run "
                               "checks again and refuses if it finds any")
    elif diff.errant_count:
        result.message += (f"; {plan['to']} has {diff.errant_count} errant transaction(s) ({diff.errant}): "
                           "failback will export them and refuse unless --discard-errant")
    return result


# --- command line ---------------------------------------------------------------------------------


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "failback", "return the primary role to a region whose old primary rejoins first", __doc__)
    p.add_argument("--to", required=True, help="the region that becomes the primary again")
    ChangeOptions.add_arguments(p)
    p.add_argument("--discard-errant", action="store_true",
                   help="rebuild the rejoining server from a copy of the current primary, dropping its errant "
                        "transactions (they are exported first)")
    p.add_argument("--export-dir", type=writable_dir, metavar="DIR",
                   help="where errant transactions are exported (default: the state directory's errant/); a "
                        "writable directory, or a new one in a writable directory")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    opts = FailbackOptions.from_args(args)
    return run_command("failback", opts.to, args, lambda rb: failback(rb, opts))
