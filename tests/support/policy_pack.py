"""Feed the policy pack resources the way the Pulumi engine does.

The engine sends a policy pack each resource's inputs as a protobuf Struct (secrets and unknowns
in their wire encoding); the SDK turns that into the proxy a policy reads. `engine_props` takes
the same road from a mock-engine registration: wire encoding -> Struct -> the SDK's own
`deserialize_properties` and `unknown_checking_proxy`. So the tests exercise the real policy code
on the shape it gets in production, including the unknowns of a preview.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format, struct_pb2
from pulumi.runtime import rpc
from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import unknown_checking_proxy

from drctl.plan.engine import ProgramRun, Registration, ResourceRef, Secret, Unknown
from drctl.stack.files import REPO_ROOT

POLICY_DIR = REPO_ROOT / "policy"
# The CLI runs the pack with its own directory first on sys.path; its modules import each other so.
if str(POLICY_DIR) not in sys.path:
    sys.path.insert(0, str(POLICY_DIR))

import firewall_rules  # noqa: E402, F401  (re-exported for the tests of port parsing)
import woocommerce_dr_policies as pack  # noqa: E402

_SIG = "4dabf18193072939515e22adb298388d"
_SECRET = "1b47061264138c4ac30d75fd1eb44270"


def to_wire(value: Any) -> Any:
    """The offline engine's markers back in the engine's wire encoding."""
    if isinstance(value, Secret):
        return {_SIG: _SECRET, "value": to_wire(value.value)}
    if isinstance(value, Unknown):
        return rpc.UNKNOWN
    if isinstance(value, ResourceRef):
        return value.urn
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_wire(v) for v in value]
    return value


def to_struct(inputs: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(to_wire(inputs))
    return struct


def engine_props(inputs: dict[str, Any]):
    """What `args.props` is inside a policy, for these inputs."""
    return unknown_checking_proxy(deserialize_properties(json_format.MessageToDict(to_struct(inputs))))


def urn_for(type_token: str, name: str, stack: str = "prod") -> str:
    return f"urn:pulumi:{stack}::woocommerce-dr::pulumi:pulumi:Stack${type_token}::{name}"


def violations(policy, type_token: str, inputs: dict[str, Any], name: str = "it", urn: str | None = None) -> list[str]:
    """The messages `policy` reports for one resource."""
    args = ResourceValidationArgs(
        type_token, engine_props(inputs), urn or urn_for(type_token, name), name,
        PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), []), None,
    )
    found: list[str] = []
    policy.validate(args, lambda message, urn=None: found.append(message))
    return found


@dataclass(frozen=True)
class Violation:
    policy: str
    resource: str
    message: str


def run_violations(run: ProgramRun) -> list[Violation]:
    """Every policy on every custom resource of a mock-engine run."""
    return [
        Violation(policy.name, r.urn, message)
        for r in run.resources if r.custom
        for policy in pack.POLICIES
        for message in violations(policy, r.type, r.inputs, name=r.name, urn=r.urn)
    ]


def checked_types(run: ProgramRun) -> set[str]:
    return {r.type for r in run.resources if r.custom}


def registration_request(r: Registration):
    """An AnalyzeRequest as the engine sends it for one registration."""
    from pulumi.runtime.proto import analyzer_pb2

    return analyzer_pb2.AnalyzeRequest(type=r.type, properties=to_struct(r.inputs), urn=r.urn, name=r.name)
