"""The stack output `drctl`: everything the operations CLI needs, in the shape of the contract model
`drctl.stack.outputs.StackOutputs`, exported as one secret.

Each tier already shapes its own part (`RegionalWebTier.outputs`, `DatabaseTier.outputs()`); this
module adds what only the whole stack knows (project, stack, roles in failover order, Cloudflare ids,
monitor and objectives) and checks the result against the model twice:

- at once, with every computed value left out, so a document that does not fit the contract (a
  missing, misspelt or mistyped field) fails `pulumi preview` and `drctl plan`, before anything is
  created, even though a first preview knows no ids or IPs yet;
- in full inside the apply, once every value is known, so `pulumi up` never stores an output that
  drctl would reject.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
from pydantic import ValidationError

from components.backups import BinlogArchive
from components.config import StackConfig
from components.database import DatabaseTier
from components.media_storage import MediaStorage
from components.traffic import Traffic
from components.web_tier import WebTiers
from drctl.stack.outputs import StackOutputs


def drctl_document(config: StackConfig, web: WebTiers, database: DatabaseTier, traffic: Traffic,
                   guards: Sequence[Mapping[str, Any]] = (), media: MediaStorage | None = None,
                   archive: BinlogArchive | None = None) -> dict[str, Any]:
    """The contract's JSON document (camelCase), with Outputs where values are computed. `guards`:
    the guard Linodes' entries (`drctl.stack.outputs.GuardOut`), empty with manual promotion; `media`:
    the shop's media buckets and drctl's key to them; `archive`: the binlog archive (backups)."""
    monitor = config.traffic.monitor
    return {
        "project": pulumi.get_project(),
        "stack": pulumi.get_stack(),
        "domain": config.domain,
        "trafficMode": config.traffic.mode,
        "healthPath": monitor.path,
        "regions": [
            {
                **web.regions[spec.region].outputs,
                # As deployed; after a promotion drctl finds the live roles itself.
                "role": "primary" if index == 0 else "dr",
                "poolId": traffic.pool_ids.get(spec.region),
            }
            for index, spec in enumerate(config.regions)
        ],
        "monitor": {
            "interval": monitor.interval,
            "timeout": monitor.timeout,
            "retries": monitor.retries,
            "consecutiveDown": monitor.consecutive_down,
            "consecutiveUp": monitor.consecutive_up,
            "expectedCodes": monitor.expected_codes,
        },
        "cloudflare": {
            "accountId": config.traffic.account_id,
            "zoneId": config.traffic.zone_id,
            "monitorId": traffic.monitor_id,
            "loadBalancerId": traffic.load_balancer_id,
            "dnsRecordIds": list(traffic.dns_record_ids),
        },
        "fallbackPage": {
            "scriptName": traffic.fallback.script_name,
            "routePattern": traffic.fallback.route_pattern,
        } if traffic.fallback else None,
        "database": database.outputs(),
        "objectives": {
            "rtoSeconds": config.objectives.rto_seconds,
            "rpoSeconds": config.objectives.rpo_seconds,
            "worstCaseDetectionSeconds": monitor.worst_case_detection_seconds,
        },
        "automation": {
            "promote": config.automation.promote,
            "confirmSeconds": config.automation.confirm_seconds,
            "fastInterval": monitor.fast_interval,
            "guards": list(guards),
        },
        "access": {"operatorCidrs": list(config.access.operator_cidrs)},
        "media": media.drctl_outputs() if media is not None else None,
        "backups": archive.drctl_outputs() if archive is not None else None,
    }


def drctl_output(document: Mapping[str, Any]) -> pulumi.Output[dict[str, Any]]:
    """`document` checked against the contract now and again once known; the JSON drctl reads,
    secrets revealed inside one secret Output (Pulumi encrypts it in the state)."""
    check_known_parts(document)

    def validated(doc: dict[str, Any]) -> dict[str, Any]:
        try:
            return StackOutputs.model_validate(doc).export()
        except ValidationError as err:
            raise pulumi.RunError(_mismatch(err.errors(include_url=False))) from None

    return pulumi.Output.secret(pulumi.Output.from_input(document).apply(validated))


def check_known_parts(document: Mapping[str, Any]) -> None:
    """Validate `document` with each Output taken as "not known yet": raise `pulumi.RunError` for
    every problem except those at a place an Output fills, which the apply checks."""
    pending: list[tuple[Any, ...]] = []
    known = _without_outputs(document, (), pending)
    try:
        StackOutputs.model_validate(known)
    except ValidationError as err:
        problems = [e for e in err.errors(include_url=False) if not _about_pending(tuple(e["loc"]), pending)]
        if problems:
            raise pulumi.RunError(_mismatch(problems)) from None


def _about_pending(location: tuple[Any, ...], pending: list[tuple[Any, ...]]) -> bool:
    """An error at a computed value, or at a list holding one (whose items that failed for now do
    not count towards its length)."""
    return any(location[:len(path)] == path or path[:len(location)] == location for path in pending)


def _without_outputs(value: Any, path: tuple[Any, ...], pending: list[tuple[Any, ...]]) -> Any:
    if isinstance(value, pulumi.Output):
        pending.append(path)
        return None
    if isinstance(value, Mapping):
        return {k: _without_outputs(v, (*path, k), pending) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_outputs(v, (*path, i), pending) for i, v in enumerate(value)]
    return value


def _mismatch(errors: list[Any]) -> str:
    # A list whose item failed is also "too short" after validation: say only what is wrong.
    errors = [e for e in errors if not (e["type"] == "too_short" and any(
        len(o["loc"]) > len(e["loc"]) and tuple(o["loc"][:len(e["loc"])]) == tuple(e["loc"]) for o in errors))]
    # Locations and messages only: an error's input could be a password.
    lines = [f"drctl.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors]
    return "the drctl stack output does not match drctl.stack.outputs.StackOutputs:\n" + "\n".join(lines)
