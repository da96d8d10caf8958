"""Reading `Pulumi.yaml` and `Pulumi.<stack>.yaml` the way the Pulumi CLI hands them to a program.

The CLI passes config to the program as strings: structured values as JSON text, scalars as their
YAML text, `secure:` values decrypted. Offline there is nothing to decrypt, so a secure value becomes
a placeholder that is still marked secret: the program sees the same keys and the same secrecy it
would see under `pulumi up`.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from drctl.stack import stack_yaml

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
    if path is None:
        path = root / f"Pulumi.{stack}.yaml"
        if not path.is_file():
            raise StackFileError(
                f"--stack: no stack file {path.name} (got {stack!r}; allowed: {', '.join(available_stacks(root))})"
            )
    elif not path.is_file():
        raise StackFileError(f"--stack-file: no such file (got {str(path)!r}; allowed: the path of a stack file)")
    return config_from_mapping(project, stack, read_stack_config(path), source=path.name)


def read_stack_config(path: Path) -> dict[str, Any]:
    """The `config:` mapping of a stack file, read as strictly as the Pulumi CLI reads it
    (drctl/stack/stack_yaml.py); StackFileError, one line naming the file, the line and the key,
    for anything the CLI would refuse or this program could not use."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise StackFileError(f"{path.name}: cannot be read ({err.strerror})") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # a UTF-8 byte-order mark, as some Windows editors write
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise StackFileError(
            f"{path.name}:{line}: (text): not UTF-8 text (got byte 0x{data[err.start]:02x}; "
            "allowed: a UTF-8 encoded file, as `pulumi config set` writes)"
        ) from None
    try:
        doc = stack_yaml.parse(text)
    except stack_yaml.StackYamlError as err:
        raise StackFileError(f"{path.name}{'' if err.line is None else f':{err.line}'}: {err}") from None
    return _config_mapping(doc, path.name)


_STACK_FILE = "a mapping with a 'config:' key, as `pulumi config set` writes"
_CONFIG = "a mapping of 'namespace:key: value' lines, such as 'woocommerce-dr:domain: shop.example.com'"


def _config_mapping(doc: Any, name: str) -> dict[str, Any]:
    if doc is None:
        raise StackFileError(f"{name}: (top level): the file is empty (got nothing; allowed: {_STACK_FILE})")
    if not isinstance(doc, dict):
        raise StackFileError(
            f"{name}: (top level): not a stack file (got {_kind(doc)}; allowed: {_STACK_FILE})")
    if "config" not in doc:
        hint = difflib.get_close_matches("config", [str(k) for k in doc], n=1, cutoff=0.6)
        keys = ", ".join(repr(str(k)) for k in doc) or "none"
        raise StackFileError(
            f"{name}: config: required key is missing{f'; is {hint[0]!r} meant to be config?' if hint else ''} "
            f"(got top-level keys {keys}; allowed: {_STACK_FILE})")
    raw = doc["config"]
    if not isinstance(raw, dict) or not raw:
        raise StackFileError(f"{name}: config: not a mapping of keys (got {_kind(raw)}; allowed: {_CONFIG})")
    for key in raw:
        if not _is_config_key(key):
            raise StackFileError(
                f"{name}: config.{key}: not a config key (got {key!r}; allowed: 'namespace:key' or 'key', "
                "such as 'woocommerce-dr:domain')")
    return raw


def _is_config_key(key: Any) -> bool:
    """'namespace:name' or 'name' (the project's namespace), as the Pulumi CLI parses keys."""
    parts = key.split(":") if isinstance(key, str) else []
    return 1 <= len(parts) <= 2 and all(part and part == part.strip() for part in parts)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "an empty mapping" if not value else "a mapping"
    if isinstance(value, list):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    return f"{'the text' if isinstance(value, str) else 'the number'} {value!r}"[:80]


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
