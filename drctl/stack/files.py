"""Reading `Pulumi.yaml` and `Pulumi.<stack>.yaml` the way the Pulumi CLI hands them to a program.

The CLI passes config to the program as strings: structured values as JSON text, scalars as their
YAML text, `secure:` values decrypted. Offline there is nothing to decrypt, so a secure value becomes
a placeholder that is still marked secret: the program sees the same keys and the same secrecy it
would see under `pulumi up`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]  # drctl/stack/files.py


class StackFileError(Exception):
    """A stack name or stack file that cannot be used; the message is for the user."""


@dataclass(frozen=True)
class StackFile:
    project: str
    stack: str
    config: dict[str, str]
    secret_keys: list[str] = field(default_factory=list)
    source: str = "an in-memory config"


def project_name(root: Path = REPO_ROOT) -> str:
    with open(root / "Pulumi.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)["name"]


def available_stacks(root: Path = REPO_ROOT) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def load_stack_file(stack: str, root: Path = REPO_ROOT, path: Path | None = None) -> StackFile:
    """Load `Pulumi.<stack>.yaml` (or `path`) into the config map the Pulumi CLI would pass."""
    project = project_name(root)
    path = path or root / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise StackFileError(
            f"--stack: no stack file {path.name} (got {stack!r}; allowed: {', '.join(available_stacks(root))})"
        )
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f) or {}
    except yaml.YAMLError as err:
        raise StackFileError(f"{path.name}: not valid YAML: {err}") from None
    raw = doc.get("config") or {}
    if not isinstance(raw, dict):
        raise StackFileError(f"{path.name}: 'config' must be a mapping of keys (got {type(raw).__name__})")
    return config_from_mapping(project, stack, raw, source=path.name)


def config_from_mapping(project: str, stack: str, raw: dict[str, Any], source: str = "an in-memory config") -> StackFile:
    """Turn a stack file's `config:` mapping into the CLI's string form."""
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in raw.items():
        full_key = key if ":" in key else f"{project}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[full_key] = f"offline-placeholder-for-{full_key}"
            secret_keys.append(full_key)
        elif isinstance(value, str):
            config[full_key] = value
        else:
            config[full_key] = json.dumps(value)
    return StackFile(project=project, stack=stack, config=config, secret_keys=secret_keys, source=source)
