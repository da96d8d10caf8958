"""`drctl promote --region R`: make R's replica the primary, safely.

Planned (the primary answers): fence it (heartbeat writer stopped, read-only on, verified), wait
until R has applied every transaction the fenced primary has (bounded; on timeout the primary is
opened again and nothing else changed), promote R (replication stopped and forgotten, writable,
heartbeat written there), repoint every other server, the old primary included, to R with GTID
auto-positioning, move traffic, verify. No committed transaction can be lost: R is promoted only
once it holds the fenced primary's whole GTID set.

Unplanned (the primary does not answer): the RPO gate first. R applies what it already received
(bounded wait); transactions another surviving replica has and R lacks are fetched from it; what
may still be lost is estimated from the heartbeat and stated: the loss window is how much older the
newest surviving data is than the last time the old primary was seen alive and taking writes
(`--primary-last-seen`, or drctl guard's last good probe of it; without either, now: the window is
then the age of that data, never smaller than the truth). Above `objectives.rpoSeconds`, or with
received transactions that cannot be applied, `--accept-data-loss` is required. Then fence the old primary as far as possible (SQL if it answers,
its Cloud Firewall or allow-list through the Linode API, its traffic) and report what could not be
fenced; promote R, repoint the surviving replicas, move traffic, verify.

Media (stacks with media buckets, docs/media.md): a planned promotion copies the old primary
region's bucket to R's before traffic moves, and once more with the old primary fenced, so no upload
is lost (as no order is); a bucket that cannot be read refuses the promotion before any change. An
unplanned one makes one short, bounded attempt at the same copy and goes on without it: uploads the
DR copy had not taken yet are within objectives.mediaRpoSeconds, and stay in the old primary's bucket.

Every change is a journal step (`drctl.runbook.journal`): a crash or Ctrl-C mid-way is resumed by running
the same command again, and no finished step runs twice. A second promotion within the block
period is refused unless `--force` (anti-flapping).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from drctl.cloud.object_storage import ObjectStorageError
from drctl.mysql import replication as r
from drctl.mysql.topology import DbServer, ServerState, Topology, compare, discover, session
from drctl.runbook import fencing
from drctl.runbook.context import (
    DEFAULT_BLOCK_SECONDS,
    FENCES_FILE,
    ChangeOptions,
    Refused,
    Runbook,
    add_command,
)
from drctl.runbook.journal import Journal, JournalError, Step
from drctl.runbook.switchover import (
    NullJournal,
    RunResult,
    Switchover,
    begin,
    copy_media,
    dry_run,
    execute,
    holding_run_lock,
    media_copy_steps,
    media_unreachable,
    promotion_steps,
    run_command,
    source_region,
    wait_for,
)
from drctl.stack.command_line import iso_time, number, past_time, positive_seconds

MAX_BLOCK_SECONDS = 30 * 86400  # a block period longer than a month is a typo, not a policy
# Unplanned: the old primary region's bucket gets one attempt this long in all (a sixth for each of
# the two small reads and writes, the rest for the sync); the promotion never waits longer for
# media, whose loss there is within the objective.
UNPLANNED_MEDIA_ATTEMPT_SECONDS = 30.0

# --- options and results --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PromoteOptions(ChangeOptions):
    region: str
    force: bool = False  # past the block period, and past an errant target
    accept_data_loss: bool = False
    block_seconds: int = DEFAULT_BLOCK_SECONDS
    apply_timeout: float = 60.0  # unplanned: how long to let the relay log apply
    # unplanned: when the old primary was last seen alive and taking writes (seconds since the epoch,
    # on this host's clock), and who saw it; None: not known, the window is measured to now.
    primary_last_seen: float | None = None
    primary_last_seen_by: str = "given by --primary-last-seen"

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> PromoteOptions:
        return cls(region=args.region, force=args.force, accept_data_loss=args.accept_data_loss,
                   block_seconds=args.block_seconds, apply_timeout=args.apply_timeout,
                   primary_last_seen=args.primary_last_seen, **ChangeOptions.from_args(args).change_fields())


def loss_window(newest_data_at: float, primary_last_seen: float | None, now: float) -> float:
    """Seconds of the old primary's writes the surviving servers may lack: from their newest data
    (the heartbeat's time, `newest_data_at`) to the last time the primary was seen alive and taking
    writes. Unknown, that last sighting is taken as `now`, which is never less careful. What the
    primary committed after its last sighting is not seen here (docs/guard.md, the residual risk)."""
    seen = now if primary_last_seen is None else min(primary_last_seen, now)
    return max(0.0, seen - newest_data_at)


# --- promote ------------------------------------------------------------------------------------


def assess(rb: Runbook, opts: PromoteOptions, topo: Topology) -> dict[str, Any]:
    """Decide planned or unplanned and check everything that can refuse, before any change."""
    region = opts.region
    rb.server(region)
    t = topo[region]
    if not t.reachable:
        raise Refused(f"drctl cannot read the database in {region}, so it cannot be promoted: {t.error}")
    if len(topo.primaries) > 1:
        names = ", ".join(s.region for s in topo.primaries)
        raise Refused(f"more than one writable primary ({names}): a split brain. Fence all but one by hand "
                      "(SET GLOBAL read_only = ON) and compare them (drctl status) before promoting anything")
    primary = topo.primary
    if primary is not None and primary.region == region:
        return {"mode": "none", "from": region, "to": region}
    if t.role != "replica":
        raise Refused(f"the database in {region} is {t.role}, not a replica: only a replica can be promoted "
                      f"(a fenced old primary rejoins with drctl failback --to {region})")
    others = [s.region for s in topo.states.values() if s.region != region and s.role == "replica"]
    if primary is not None:
        return assess_planned(rb, opts, topo, t, primary, others)
    return assess_unplanned(rb, opts, topo, t, others)


def assess_planned(rb: Runbook, opts: PromoteOptions, topo: Topology, t: ServerState, primary: ServerState,
                   others: list[str]) -> dict[str, Any]:
    follows = source_region(rb, t)
    if follows != primary.region:
        raise Refused(f"{t.region} replicates from {follows or 'an unknown source'}, not from the primary in "
                      f"{primary.region}: repoint it first (or promote a replica of {primary.region})")
    if t.replica and t.replica.last_sql_errno:
        raise Refused(f"{t.region} cannot apply transactions (SQL thread error {t.replica.last_sql_errno}: "
                      f"{t.replica.last_sql_error}); it would never catch up. Fix replication first")
    diff = compare(primary, t)
    if diff and diff.errant_count and not opts.force:
        raise Refused(f"{t.region} has {diff.errant_count} transaction(s) the primary never had ({diff.errant}): "
                      "promoting it would make them part of the shop's history. Inspect them, or pass --force")
    return {
        "mode": "planned", "from": primary.region, "to": t.region,
        "repoint": [*others, primary.region],
        "behind": diff.missing_count if diff else None,
        "lagSeconds": t.heartbeat_lag,
        "loss": {"transactions": 0, "summary": f"none: {primary.region} is fenced first and {t.region} is promoted "
                                               "only once it has applied every one of its transactions"},
    }


def assess_unplanned(rb: Runbook, opts: PromoteOptions, topo: Topology, t: ServerState,
                     others: list[str]) -> dict[str, Any]:
    lost_region = source_region(rb, t) or next(
        (s.region for s in rb.servers.values() if s.deployed_role == "primary"), None)
    if lost_region == t.region:
        lost_region = None
    loss = estimate_loss(rb, opts, topo, t, others, wait=not opts.dry_run)
    return {"mode": "unplanned", "from": lost_region, "to": t.region, "repoint": others, "loss": loss}


def estimate_loss(rb: Runbook, opts: PromoteOptions, topo: Topology, t: ServerState, others: list[str],
                  wait: bool) -> dict[str, Any]:
    """What promoting `t` now may lose, from what the surviving servers hold."""
    rpo = rb.outputs.objectives.rpo_seconds
    server = rb.server(t.region)
    with session(server) as conn:
        dialect = r.detect_dialect(conn)
        status = r.replica_status(conn, dialect)
        pending, unapplied = r.retrieved_not_applied(conn, dialect, status)
        blocked = bool(status and not status.sql_running and status.last_sql_errno)
        if unapplied and wait and status and status.sql_running:
            rb.say(f"    {t.region}: applying {unapplied} received transaction(s) (at most {opts.apply_timeout:.0f} s)")
            wait_for(rb, conn, dialect, str(pending), opts.apply_timeout, t.region)
            pending, unapplied = r.retrieved_not_applied(conn, dialect)
        executed = str(r.executed_gtids(conn, dialect))
        binlog = str(r.binlog_state(conn)) if dialect.is_mariadb else ""
        age = r.heartbeat_lag(conn)
        measured_at = rb.clock()
    mine = ServerState(server, dialect=dialect, executed=executed, binlog_state=binlog, heartbeat_lag=age)
    # The newest surviving data as a time on this host's clock (the heartbeat's age is measured on
    # the replica, against its own clock: both are NTP-synced).
    newest = None if age is None else measured_at - age
    ahead: dict[str, int] = {}
    for region in others:
        diff = compare(topo[region], mine)
        if diff and diff.missing_count:
            ahead[region] = diff.missing_count
            other = _newest_data_at(rb, region)
            if other is not None and (newest is None or other > newest):
                newest = other
    age = None if newest is None else measured_at - newest
    seen = opts.primary_last_seen
    window = None if newest is None else loss_window(newest, seen, measured_at)
    # A stopped SQL thread without an error is started before the promotion; one that failed will
    # not apply what it holds.
    lost_unapplied = unapplied if blocked else 0
    pending_ok = unapplied - lost_unapplied
    exceeds = window is None or window > rpo or lost_unapplied > 0
    parts = []
    if lost_unapplied:
        parts.append(f"{lost_unapplied} received transaction(s) {t.region} cannot apply ({pending}) will be lost")
    if pending_ok:
        parts.append(f"{pending_ok} received transaction(s) are applied before the promotion")
    if ahead:
        parts.append("fetched first from " + ", ".join(f"{k} ({v} transaction(s) {t.region} lacks)"
                                                        for k, v in ahead.items()))
    if window is None or age is None:
        parts.append("no heartbeat on the surviving servers, so the loss window is unknown")
    elif seen is None:
        parts.append(f"the newest surviving data is {age:.1f} s old and the old primary's last sighting is not "
                     f"known (--primary-last-seen), so it counts as now: up to {window:.1f} s of orders may be "
                     f"lost (objective {rpo} s)")
    else:
        parts.append(f"the newest surviving data is {window:.1f} s older than the last time the old primary was "
                     f"seen alive (at {iso_time(seen)}, {opts.primary_last_seen_by}): up to {window:.1f} s of "
                     f"orders may be lost (objective {rpo} s); it is {age:.1f} s old now")
    return {
        "unappliedLost": lost_unapplied, "unappliedLostGtids": str(pending) if lost_unapplied else "",
        "pendingApplied": pending_ok, "recoverFrom": ahead, "dataAgeSeconds": age,
        "primaryLastSeen": iso_time(seen) if seen is not None else None,
        "primaryLastSeenBy": opts.primary_last_seen_by if seen is not None else None,
        "lossWindowSeconds": window, "rpoSeconds": rpo, "exceedsRpo": exceeds, "measuredAt": measured_at,
        "summary": "; ".join(parts),
    }


def _newest_data_at(rb: Runbook, region: str) -> float | None:
    """The newest heartbeat on another surviving replica, as a time on this host's clock; None when it
    cannot be read now (then only the target's counts: the window can only come out larger)."""
    try:
        with session(rb.server(region)) as conn:
            age = r.heartbeat_lag(conn)
            at = rb.clock()
    except Exception:
        return None
    return None if age is None else at - age


def unplanned_steps(rb: Runbook, journal: Journal, plan: dict[str, Any], opts: PromoteOptions) -> list[Step]:
    target, lost = plan["to"], plan["from"]

    def fence_old() -> list[dict[str, Any]]:
        return [a.as_dict() for a in fence_lost_primary(rb, lost, skip_traffic=opts.skip_traffic)]

    def catch_up() -> dict[str, Any]:
        return catch_up_unplanned(rb, target, plan, opts)

    return [
        Step("fence-old-primary", f"fence the old primary in {lost or '(unknown)'} as far as possible: SQL if it "
                                  "answers, Cloud Firewall / allow-list via the Linode API, its traffic",
             fence_old),
        Step("catch-up", f"stop {target} receiving, let it apply its relay log (at most {opts.apply_timeout:.0f} s)"
                         + (f", fetch what {', '.join(plan['loss']['recoverFrom'])} has and it lacks"
                            if plan["loss"]["recoverFrom"] else ""), catch_up),
        *([Step("media-copy", f"one attempt (at most {UNPLANNED_MEDIA_ATTEMPT_SECONDS:.0f} s) to copy the uploads "
                              f"{lost}'s bucket has to {target}'s; without it the promotion goes on (uploads the DR "
                              "copy had not taken are within objectives.mediaRpoSeconds)",
                lambda: try_media_copy(rb, lost, target))] if rb.outputs.media is not None and lost else []),
        *promotion_steps(rb, journal, target, plan["repoint"], opts.traffic_timeout, opts.skip_traffic,
                         catch_up_timeout=opts.catch_up_timeout),
    ]


def try_media_copy(rb: Runbook, lost: str, target: str) -> dict[str, Any]:
    """Unplanned: copy what the old primary region's bucket has, if its Object Storage (another
    service than the region's servers) answers at once; never fails the promotion."""
    try:
        return copy_media(rb, lost, target, "promote", timeout=UNPLANNED_MEDIA_ATTEMPT_SECONDS * 2 / 3,
                          read_timeout=UNPLANNED_MEDIA_ATTEMPT_SECONDS / 6)
    except ObjectStorageError as err:
        note = (f"media: {err}. Promoted without that copy: uploads {lost} took after {target}'s last DR copy "
                f"are not in {target}'s bucket (within objectives.mediaRpoSeconds, "
                f"{rb.outputs.media.media_rpo_seconds} s); they stay in {lost}'s bucket, and failback's copy home "
                f"moves them to its attic")
        rb.say(f"    {note}")
        return {"copied": False, "note": note}


def fence_lost_primary(rb: Runbook, region: str | None, skip_traffic: bool) -> list[fencing.FenceAction]:
    if region is None:
        return [fencing.FenceAction("sql", False, "the old primary's region is unknown: nothing was fenced")]
    server = rb.server(region)
    actions = []
    try:
        with session(server, timeout=3) as conn:
            fencing.fence_sql(conn, r.detect_dialect(conn))
        actions.append(fencing.FenceAction("sql", True, f"{region}: read-only on, heartbeat writer stopped"))
    except Exception as err:
        actions.append(fencing.FenceAction("sql", False, f"{region}: {err}"))
    linode, linode_error = rb.try_linode()
    actions.append(fencing.fence_network(server, linode, fencing.FenceStore(rb.state_dir / FENCES_FILE),
                                         linode_error))
    if skip_traffic:
        actions.append(fencing.FenceAction("traffic", False, f"{region}: left in rotation (--skip-traffic)"))
    else:
        backend, error = rb.try_traffic()
        actions.append(fencing.fence_traffic(region, backend, error))
    for a in actions:
        rb.say(f"    {'fenced' if a.done else 'NOT FENCED'} [{a.layer}]: {a.description}")
    return actions


def catch_up_unplanned(rb: Runbook, target: str, plan: dict[str, Any], opts: PromoteOptions) -> dict[str, Any]:
    server = rb.server(target)
    with session(server) as conn:
        dialect = r.detect_dialect(conn)
        status = r.replica_status(conn, dialect)
        if status is not None:
            r.stop_io_thread(conn, dialect)
            if not status.sql_running and not status.last_sql_errno:
                r.start_replica(conn, dialect)
            pending, count = r.retrieved_not_applied(conn, dialect)
            if count:
                wait_for(rb, conn, dialect, str(pending), opts.apply_timeout, target)
            _, left = r.retrieved_not_applied(conn, dialect)
            if left > plan["loss"]["unappliedLost"] and not opts.accept_data_loss:
                raise Refused(f"{target} could not apply {left} received transaction(s) within "
                              f"{opts.apply_timeout:.0f} s; the old primary was fenced, {target} is not promoted. "
                              "Re-run to wait again, or pass --accept-data-loss to promote without them")
        fetched = {}
        for region in plan["loss"]["recoverFrom"]:
            fetched[region] = fetch_from(rb, conn, dialect, rb.server(region), opts.catch_up_timeout)
        return {"gtids": str(r.executed_gtids(conn, dialect)), "fetched": fetched}


def fetch_from(rb: Runbook, conn, dialect: r.Dialect, donor: DbServer, timeout: float) -> str:
    """Replicate `donor`'s extra transactions into the server behind `conn`, then stop."""
    with session(donor) as donor_conn:
        wanted = str(r.executed_gtids(donor_conn, dialect))
    r.repoint(conn, dialect, donor.as_source(), timeout=30)
    done = wait_for(rb, conn, dialect, wanted, timeout, f"fetching from {donor.region}")
    r.stop_replica(conn, dialect)
    if not done:
        raise r.ReplicationError(f"could not fetch {donor.region}'s transactions within {timeout:.0f} s")
    return wanted


@holding_run_lock
def promote(rb: Runbook, opts: PromoteOptions) -> RunResult:
    """Run (or --dry-run) a promotion. Raises Refused / UsageError / JournalError before any change;
    after that, failures are recorded in the result and the journal."""
    result, journal, plan = begin(rb, "promote", opts.region, {"region": opts.region}, opts)
    blocked = None
    if plan is None:
        try:
            rb.history().check(opts.block_seconds, opts.force)
        except JournalError as err:
            if not opts.dry_run:
                journal.finish("refused")
                raise
            blocked = str(err)
        plan = _assess_or_close(rb, opts, journal if not opts.dry_run else None)
    result.mode, result.source, result.loss = plan["mode"], plan.get("from"), plan.get("loss")
    if plan["mode"] == "none":
        result.outcome, result.message = "nothing-to-do", f"{opts.region} is already the primary"
        if not opts.dry_run and journal is not None:
            journal.finish("nothing-to-do")
        return result
    steps = _plan_steps(rb, journal, plan, opts)
    gate_refusal = _rpo_gate(plan, opts) or _media_gate(rb, plan, steps, journal)
    if opts.dry_run:
        return dry_run(rb, result, steps, journal, blocked or gate_refusal)
    assert journal is not None
    if gate_refusal:
        journal.finish("refused")
        raise Refused(gate_refusal)
    return execute(rb, result, journal, steps, plan, opts, "promote")


def _assess_or_close(rb: Runbook, opts: PromoteOptions, journal: Journal | None) -> dict[str, Any]:
    try:
        topo = discover(rb.servers)
        plan = assess(rb, opts, topo)
        plan["acceptedDataLoss"] = opts.accept_data_loss
    except BaseException:
        if journal is not None:
            journal.finish("refused")
        raise
    if journal is not None:
        journal.run([Step("assess", "read every server and decide", lambda: plan)], rb.say)
    return plan


def _rpo_gate(plan: dict[str, Any], opts: PromoteOptions) -> str | None:
    loss = plan.get("loss") or {}
    accepted = opts.accept_data_loss or plan.get("acceptedDataLoss")  # a resumed run keeps the first answer
    if plan["mode"] != "unplanned" or not loss.get("exceedsRpo") or accepted:
        return None
    return (f"the primary in {plan['from']} does not answer and promoting {plan['to']} may lose data beyond the "
            f"recovery point objective: {loss['summary']}. Nothing was changed. Pass --accept-data-loss to "
            "promote anyway (after a last try to bring the primary back)")


def _media_gate(rb: Runbook, plan: dict[str, Any], steps: list, journal: Journal | None) -> str | None:
    """A planned promotion copies the media before traffic moves: refuse it, before any change, when
    a bucket cannot be read. A run resumed past its first change goes on (its copy steps say why
    they fail), so a fenced primary is never left behind by a refusal."""
    if plan["mode"] != "planned" or (journal is not None and any(journal.done(s.name) for s in steps)):
        return None
    problem = media_unreachable(rb, (plan["from"], plan["to"]))
    if problem is None:
        return None
    return (f"{problem}. Nothing was changed. A planned promotion must not leave uploads behind: bring the "
            f"bucket back, then run promote again")


def _plan_steps(rb: Runbook, journal: Journal | None, plan: dict[str, Any], opts: PromoteOptions) -> list[Step]:
    steps: list[Step] = []
    if opts.pre_hooks:
        steps.append(rb.pre_hook_step(opts.pre_hooks, rb.hook_env("promote", "pre", plan["from"] or "", plan["to"],
                                                                  plan["mode"], opts.dry_run)))
    j = journal or NullJournal()
    if plan["mode"] == "planned":
        switch = Switchover(rb, j, plan["from"], plan["to"], plan["repoint"], opts.catch_up_timeout,
                            opts.traffic_timeout, opts.skip_traffic).steps()
        # Uploads move with the role as orders do: nothing the old primary took may be left behind.
        steps += media_copy_steps(rb, switch, plan["from"], plan["to"], "switchover", "media-copy",
                                  "media-copy-fenced")
    else:
        steps += unplanned_steps(rb, j, plan, opts)
    steps.append(Step("record", "record the promotion (anti-flapping block period)",
                      lambda: _record(rb, plan, j)))
    return steps


def _record(rb: Runbook, plan: dict[str, Any], journal: Journal) -> dict[str, Any]:
    promoted = journal.detail("promote") or journal.detail("switch-promote") or {}
    rb.history().record(plan["from"] or "unknown", plan["to"], mode=plan["mode"], gtids=promoted.get("gtids"))
    return {"from": plan["from"], "to": plan["to"]}


# --- command line ---------------------------------------------------------------------------------


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "promote", "make a region's replica the primary (planned or after losing the primary)", __doc__)
    p.add_argument("--region", required=True, help="the region whose replica becomes the primary")
    ChangeOptions.add_arguments(p)
    p.add_argument("--accept-data-loss", action="store_true",
                   help="unplanned: promote although transactions may be lost beyond objectives.rpoSeconds")
    p.add_argument("--primary-last-seen", type=past_time, metavar="TIME",
                   help="unplanned: when the old primary was last seen alive and taking writes (ISO-8601 with its "
                        "time zone, e.g. 2026-11-29T14:03:00Z; not in the future): the loss window is measured "
                        "from the newest surviving data to it, not to now")
    p.add_argument("--apply-timeout", type=positive_seconds, default=60.0, metavar="SECONDS",
                   help="unplanned: longest wait for the replica to apply its relay log (default 60; above 0, "
                        "at most 86400)")
    p.add_argument("--force", action="store_true",
                   help="promote within the block period after the last promotion, or a replica with errant transactions")
    p.add_argument("--block-seconds", type=number(int, 0, maximum=MAX_BLOCK_SECONDS, unit="s"),
                   default=DEFAULT_BLOCK_SECONDS, metavar="SECONDS",
                   help=f"anti-flapping block period after a promotion (default {DEFAULT_BLOCK_SECONDS}; 0 to "
                        f"{MAX_BLOCK_SECONDS}, 30 days)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    opts = PromoteOptions.from_args(args)
    return run_command("promote", opts.region, args, lambda rb: promote(rb, opts))


