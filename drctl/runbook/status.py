"""`drctl status`: the truth about a stack, per region, in one screen (or one JSON document).

For every region: where Cloudflare sends traffic and how healthy the region's pool is (load-balancer
mode) or where the DNS records point (dns-failover mode); the NodeBalancer's node statuses (Linode
API); the database's live role, read_only, replication threads, lag from the heartbeat, GTIDs, and
whether a replica misses any of the primary's transactions or has errant ones of its own; whether
the fallback page (the maintenance page Cloudflare's edge answers when no region can) is armed or
serving. Then one verdict line. A component that does not answer is reported as such, never as a traceback.

Exit 0 healthy, 1 degraded, 2 usage error.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from typing import Any

from drctl.cloud.archive_status import archive_bucket, archive_problems, archive_status
from drctl.cloud.object_storage import MediaBuckets, media_lag, media_problems
from drctl.mysql.topology import ServerState, Topology, compare, discover
from drctl.runbook.context import Runbook, add_common_arguments, checked_run
from drctl.runbook.switchover import source_region
from drctl.stack.command_line import EXIT_FAILED, EXIT_OK

PRIMARY_HEARTBEAT_STALE_SECONDS = 5.0


def collect(rb: Runbook) -> dict[str, Any]:
    """The status document; every part that cannot be read carries an `error` instead."""
    topo = discover(rb.servers)
    traffic = _traffic(rb)
    nodes = _nodebalancers(rb)
    primary = topo.primary
    regions = []
    for region in rb.outputs.regions:
        state = topo.states.get(region.region)
        regions.append({
            "region": region.region,
            "deployedRole": region.role,
            "traffic": _region_traffic(traffic, region.region),
            "nodeBalancer": nodes[region.region],
            "database": _database(rb, state, primary) if state is not None else {"error": "no database server"},
        })
    problems = _problems(rb, topo, traffic, regions)
    media = None
    if rb.outputs.media is not None:
        media = media_lag(MediaBuckets(rb.outputs.media), primary.region if primary else None, rb.clock())
        problems += media_problems(media, primary.region if primary else None, rb.outputs.media.media_rpo_seconds)
    archive = None
    if rb.outputs.backups is not None:
        archive = archive_status(archive_bucket(rb.outputs.backups), rb.clock())
        problems += archive_problems(archive, rb.outputs.backups, database_family(topo))
    fallback = fallback_page_state(rb.outputs, traffic)
    if fallback["state"] == "serving":
        problems.append(f"shoppers get the maintenance page: {fallback['detail']}")
    doc = {
        "stack": rb.stack,
        "trafficMode": rb.outputs.traffic_mode,
        "checkedAt": datetime.datetime.fromtimestamp(rb.clock(), datetime.UTC).isoformat(timespec="seconds"),
        "primary": primary.region if primary else None,
        "traffic": traffic,
        "regions": regions,
        "fallbackPage": fallback,
        "media": media,
        "archive": archive,
        "objectives": {"rpoSeconds": rb.outputs.objectives.rpo_seconds,
                       "mediaRpoSeconds": rb.outputs.media.media_rpo_seconds if rb.outputs.media else None,
                       "backupRpoSeconds": rb.outputs.backups.backup_rpo_seconds if rb.outputs.backups else None},
    }
    doc["verdict"] = _verdict(doc, topo, problems)
    return doc


def database_family(topo: Topology) -> str | None:
    """"mariadb" or "mysql", as the primary (else the first server that answers) says."""
    states = [topo.primary] if topo.primary is not None else list(topo.states.values())
    dialects = [s.dialect for s in states if s.reachable and s.dialect is not None]
    return dialects[0].family if dialects else None


def _traffic(rb: Runbook) -> dict[str, Any]:
    try:
        return rb.traffic().state().as_dict()
    except Exception as err:  # no token, API down: say so, keep going
        return {"error": str(err)}


def fallback_page_state(outputs: Any, traffic: dict[str, Any]) -> dict[str, Any]:
    """Whether the maintenance page is off, armed or serving, told from what Cloudflare reports.

    The Worker tries the origin on every request, so it serves exactly when no region answers. In
    load-balancer mode Cloudflare's pool health says so: every pool unhealthy means the page is what
    shoppers get. In dns-failover mode nothing here measures the front door, so it is only armed,
    and the detail says how to look."""
    page = outputs.fallback_page
    if page is None:
        return {"state": "off", "script": None, "route": None,
                "detail": "no fallback page: shoppers get Cloudflare's error page when every region is down"}
    found = {"script": page.script_name, "route": page.route_pattern}
    if "error" in traffic:
        return {"state": "unknown", **found, "detail": f"traffic state unreadable: {traffic['error']}"}
    health = [r.get("healthy") for r in traffic.get("regions", {}).values()]
    if health and all(h is False for h in health):
        return {"state": "serving", **found, "detail": "Cloudflare sees every region's pool unhealthy"}
    if any(h is True for h in health):
        up = sorted(name for name, r in traffic["regions"].items() if r.get("healthy"))
        return {"state": "armed", **found, "detail": f"steps aside: {', '.join(up)} healthy"}
    how = f"`curl -sI https://{page.route_pattern.removesuffix('/*')}/` shows x-woocommerce-dr-fallback when it serves"
    return {"state": "armed", **found, "detail": f"no pool health to tell whether it serves; {how}"}


def _region_traffic(traffic: dict[str, Any], region: str) -> dict[str, Any]:
    if "error" in traffic:
        return {"error": traffic["error"]}
    seen = traffic["regions"].get(region, {})
    return {"serving": traffic["serving"] == region, "enabled": seen.get("enabled"),
            "healthy": seen.get("healthy"), "detail": seen.get("detail", "")}


def _nodebalancers(rb: Runbook) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    linode, error = rb.try_linode()
    for region in rb.outputs.regions:
        nb = region.node_balancer
        if linode is None:
            found[region.region] = {"id": nb.id, "error": error}
            continue
        try:
            nodes = linode.node_statuses(nb.id)
        except Exception as err:
            found[region.region] = {"id": nb.id, "error": str(err)}
            continue
        found[region.region] = {
            "id": nb.id,
            "nodes": [{"label": n.label, "address": n.address, "port": n.port, "status": n.status, "mode": n.mode}
                      for n in nodes],
            "up": sum(n.status == "UP" for n in nodes), "total": len(nodes),
        }
    return found


def _database(rb: Runbook, state: ServerState, primary: ServerState | None) -> dict[str, Any]:
    if not state.reachable:
        return {"role": "unreachable", "error": state.error}
    doc: dict[str, Any] = {
        "role": state.role,
        "version": state.version,
        "serverId": state.server_id,
        "readOnly": state.read_only.read_only if state.read_only else None,
        "superReadOnly": state.read_only.super_read_only if state.read_only else None,
        "lagSeconds": None if state.heartbeat_lag is None else round(state.heartbeat_lag, 3),
        "heartbeatWriter": state.heartbeat_writer,
        "gtidExecuted": state.executed,
    }
    if state.replica is not None:
        doc["replication"] = {
            "source": source_region(rb, state) or f"{state.replica.source_host}:{state.replica.source_port}",
            "ioThread": state.replica.io_thread, "sqlThread": state.replica.sql_thread,
            "problems": state.replica.problems(),
        }
    if primary is not None and state.region != primary.region:
        diff = compare(primary, state)
        if diff is not None:
            doc["missing"] = {"count": diff.missing_count, "gtids": diff.missing}
            doc["errant"] = {"count": diff.errant_count, "gtids": diff.errant}
    return doc


def _problems(rb: Runbook, topo: Topology, traffic: dict[str, Any], regions: list[dict[str, Any]]) -> list[str]:
    rpo = rb.outputs.objectives.rpo_seconds
    problems: list[str] = []
    primaries = topo.primaries
    primary = topo.primary
    if not primaries:
        problems.append("no writable primary database: the shop cannot take orders")
    elif len(primaries) > 1:
        problems.append(f"split brain: {', '.join(s.region for s in primaries)} all take writes")
    if "error" in traffic:
        problems.append(f"traffic: {traffic['error']}")
    elif primary is not None and traffic["serving"] != primary.region:
        problems.append(f"traffic goes to {traffic['serving'] or 'no region'} but the primary database is in "
                        f"{primary.region}")
    for entry in regions:
        region, db = entry["region"], entry["database"]
        t = entry["traffic"]
        if "error" not in t:
            if t["enabled"] is False:
                problems.append(f"{region}: taken out of the load balancer (origins disabled)")
            elif t["healthy"] is False:
                problems.append(f"{region}: Cloudflare sees its pool unhealthy ({t['detail']})")
        nb = entry["nodeBalancer"]
        if "error" in nb:
            problems.append(f"{region}: NodeBalancer {nb['id']}: {nb['error']}")
        elif nb["up"] < nb["total"] or not nb["total"]:
            down = [f"{n['label']}:{n['port']} {n['status']}" for n in nb["nodes"] if n["status"] != "UP"]
            problems.append(f"{region}: NodeBalancer nodes not UP: {', '.join(down) or 'no nodes'}")
        problems += [f"{region}: database {p}" for p in _database_problems(db, primary, rpo, region)]
    return problems


def _database_problems(db: dict[str, Any], primary: ServerState | None, rpo: int, region: str) -> list[str]:
    role = db.get("role")
    if role == "unreachable" or "error" in db:
        return [f"unreachable: {db.get('error')}"]
    found = []
    lag = db.get("lagSeconds")
    if role == "primary":
        if db.get("heartbeatWriter") not in (None, "ENABLED") and primary is not None and primary.region == region \
                and primary.server.writes_heartbeat_event:
            found.append("heartbeat writer is not enabled: replica lag cannot be measured")
        if lag is not None and lag > PRIMARY_HEARTBEAT_STALE_SECONDS:
            found.append(f"heartbeat {lag:.0f} s old on the primary: nothing writes it")
        return found
    if role == "fenced":
        return [f"fenced (read-only, replicating from nobody): rejoin it with drctl failback --to {region}"]
    repl = db.get("replication", {})
    found += repl.get("problems", [])
    if primary is not None and repl.get("source") != primary.region:
        found.append(f"replicates from {repl.get('source')}, not from the primary in {primary.region}")
    if db.get("readOnly") is False:
        found.append("is a replica but writable (read_only off)")
    if lag is None:
        found.append("no heartbeat row: lag unknown")
    elif lag > rpo:
        found.append(f"lag {lag:.1f} s, beyond the recovery point objective ({rpo} s)")
    if db.get("errant", {}).get("count"):
        found.append(f"has {db['errant']['count']} errant transaction(s) the primary lacks: {db['errant']['gtids']}")
    return found


def _verdict(doc: dict[str, Any], topo: Topology, problems: list[str]) -> dict[str, Any]:
    if problems:
        return {"healthy": False, "summary": f"DEGRADED: {len(problems)} problem(s)", "problems": problems}
    replicas = [s for s in topo.states.values() if s.role == "replica"]
    lags = [s.heartbeat_lag for s in replicas if s.heartbeat_lag is not None]
    lag = f", max lag {max(lags):.1f} s" if lags else ""
    summary = (f"HEALTHY: primary {doc['primary']}, traffic {doc['traffic']['serving']}, "
               f"{len(replicas)} replica(s) replicating{lag}")
    return {"healthy": True, "summary": summary, "problems": []}


# --- presentation ---------------------------------------------------------------------------------


def render(doc: dict[str, Any]) -> str:
    head = ["REGION", "TRAFFIC", "NODEBALANCER", "DATABASE", "READ-ONLY", "IO/SQL", "LAG", "MISSING", "ERRANT"]
    rows = [head]
    for entry in doc["regions"]:
        db, t, nb = entry["database"], entry["traffic"], entry["nodeBalancer"]
        rows.append([
            entry["region"],
            _traffic_cell(t),
            "unknown" if "error" in nb else f"{nb['up']}/{nb['total']} UP",
            db.get("role", "?") + (f" <- {db['replication']['source']}" if db.get("replication") else ""),
            "-" if db.get("readOnly") is None else ("on" if db["readOnly"] else "off"),
            f"{db['replication']['ioThread']}/{db['replication']['sqlThread']}" if db.get("replication") else "-",
            "-" if db.get("lagSeconds") is None else f"{db['lagSeconds']:.1f}s",
            str(db["missing"]["count"]) if "missing" in db else "-",
            str(db["errant"]["count"]) if "errant" in db else "-",
        ])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [f"stack {doc['stack']}   traffic mode {doc['trafficMode']}   checked {doc['checkedAt']}", ""]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.append("")
    for entry in doc["regions"]:
        db = entry["database"]
        if db.get("gtidExecuted") is not None:
            lines.append(f"{entry['region']} GTIDs: {db['gtidExecuted'] or '(none)'}")
    for entry in doc["regions"]:
        for key in ("nodeBalancer", "traffic"):
            if "error" in entry[key]:
                lines.append(f"{entry['region']} {key}: {entry[key]['error']}")
                break
    fb = doc["fallbackPage"]
    where = f" (Worker {fb['script']} on {fb['route']})" if fb["script"] else ""
    lines += ["", f"fallback page: {fb['state'].upper() if fb['state'] == 'serving' else fb['state']}{where}: "
                  f"{fb['detail']}"]
    lines += media_lines(doc.get("media"))
    lines += _archive_lines(doc.get("archive"))
    lines += ["", doc["verdict"]["summary"]]
    lines += [f"  - {p}" for p in doc["verdict"]["problems"]]
    return "\n".join(lines) + "\n"


def _archive_lines(archive: dict[str, Any] | None) -> list[str]:
    if archive is None:
        return []
    if "error" in archive:
        return ["", f"binlog archive ({archive['bucket']}): unreadable: {archive['error']}"]
    lag = archive["lagSeconds"]
    newest = "nothing archived yet" if lag is None else f"lag {lag:.1f}s"
    base = archive["lastBase"]
    last = "no base backup yet" if base is None else f"last base backup {base['stamp']} ({base['ageSeconds'] / 3600:.1f} h ago)"
    family = {"mysql": "MySQL 8 binlog, ", "mariadb": "MariaDB binlog, "}.get(archive.get("flavour") or "", "")
    return ["", f"binlog archive ({archive['bucket']}): {family}{newest}, {last}"]


def media_lines(media: dict[str, dict[str, Any]] | None) -> list[str]:
    if media is None:
        return []
    lines = ["", "media (uploads bucket per region):"]
    for region, m in media.items():
        if "error" in m:
            state = f"unreadable: {m['error']}"
        elif m["role"] == "primary":
            age = m["heartbeatAgeSeconds"]
            state = "primary, heartbeat " + ("missing" if age is None else f"{age:.1f}s old")
        else:
            lag = m["lagSeconds"]
            state = "never copied" if lag is None else f"copy of {m['source']}, lag {lag:.1f}s"
        lines.append(f"  {region:<14} {m['bucket']} ({m['storageRegion']}): {state}")
    return lines


def _traffic_cell(t: dict[str, Any]) -> str:
    if "error" in t:
        return "unknown"
    words = ["serving" if t["serving"] else "standby"]
    if t["enabled"] is False:
        words.append("disabled")
    if t["healthy"] is not None:
        words.append("healthy" if t["healthy"] else "UNHEALTHY")
    return ", ".join(words)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("status", help="traffic, NodeBalancers and databases per region, with a verdict",
                              description=__doc__.split("\n\n")[1])
    add_common_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    def body(rb: Runbook) -> int:
        doc = collect(rb)
        if args.output == "json":
            json.dump(doc, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            sys.stdout.write(render(doc))
        return EXIT_OK if doc["verdict"]["healthy"] else EXIT_FAILED
    return checked_run("status", args, body)
