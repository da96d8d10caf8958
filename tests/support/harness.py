"""Load any stack file (optionally changed) and run the real program under the mock engine.

The loader and the engine are drctl's own (`drctl.stack.files`, `drctl.plan.engine`), so a
test and `drctl plan` cannot disagree about what a stack file means.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from drctl.plan.engine import ProgramRun, run_program
from drctl.stack.files import REPO_ROOT, StackFile, config_from_mapping, project_name, read_stack_config

NS = "woocommerce-dr"
PROGRAMS = REPO_ROOT / "tests" / "program" / "programs"


@cache
def _stack_mapping(stack: str) -> dict[str, Any]:
    return read_stack_config(REPO_ROOT / f"Pulumi.{stack}.yaml")


def stack_mapping(stack: str, **changes: Any) -> dict[str, Any]:
    """The `config:` mapping of Pulumi.<stack>.yaml with `changes` applied. Keys are config keys
    without the namespace; a value of None removes the key."""
    mapping = copy.deepcopy(_stack_mapping(stack))
    for key, value in changes.items():
        full = key if ":" in key else f"{NS}:{key}"
        if value is None:
            mapping.pop(full, None)
        else:
            mapping[full] = value
    return mapping


def stack_file(stack: str, **changes: Any) -> StackFile:
    return config_from_mapping(project_name(), stack, stack_mapping(stack, **changes))


# drctl watch's address in dns-failover stacks: the mode requires one (components/config.py).
WATCHDOG_CIDRS = ["198.51.100.7/32"]


def dns_failover(stack: str = "prod", **changes: Any) -> StackFile:
    """`stack` switched to traffic.mode dns-failover, with the watchdog network the mode needs."""
    traffic = {**raw_config(stack)["traffic"], "mode": "dns-failover"}
    access = {**raw_config(stack).get("access", {}), "watchdogCidrs": WATCHDOG_CIDRS}
    return stack_file(stack, **{"traffic": traffic, "access": access, **changes})


def three_regions(stack: str = "prod", **changes: Any) -> StackFile:
    """A 3-region variant: us-east primary, eu-west then ap-south in failover order."""
    regions = [
        {"region": "us-east", "webNodes": 2},
        {"region": "eu-west", "webNodes": 2},
        {"region": "ap-south", "webNodes": 1},
    ]
    return stack_file(stack, regions=regions, **changes)


def run(stack: StackFile | str, preview: bool = False, **kwargs: Any) -> ProgramRun:
    if isinstance(stack, str):
        stack = stack_file(stack)
    result = run_program(stack, preview=preview, **kwargs)
    return result


def run_ok(stack: StackFile | str, preview: bool = False, **kwargs: Any) -> ProgramRun:
    result = run(stack, preview=preview, **kwargs)
    assert result.error is None, result.error
    return result


def raw_config(stack: str, **changes: Any) -> dict[str, Any]:
    """The project's keys of a stack file, without namespace, as the config model reads them."""
    mapping = stack_mapping(stack, **changes)
    # A `secure:` value reaches the program decrypted: offline, the placeholder drctl plan uses.
    return {k.split(":", 1)[1]: f"offline-placeholder-for-{k}" if isinstance(v, dict) and set(v) == {"secure"} else v
            for k, v in mapping.items() if k.startswith(f"{NS}:")}


def write_stack_file(tmp: Path, stack: str, **changes: Any) -> Path:
    path = tmp / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump({"config": stack_mapping(stack, **changes)}, sort_keys=False))
    return path


def validate(run: ProgramRun):
    """The validated StackConfig a run used."""
    from components.config import parse_config_value, validate_stack_config

    prefix = f"{NS}:"
    return validate_stack_config(
        {k[len(prefix):]: parse_config_value(v) for k, v in run.stack.config.items() if k.startswith(prefix)}
    )
