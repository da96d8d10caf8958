"""Run the real `__main__.py` under the Pulumi SDK's mock engine and record what it registers.

One engine serves `drctl plan` (preview mode) and the program tests (apply mode), so the plan a
newcomer reads and the wiring the tests prove come from the same run of the same code.
"""

from __future__ import annotations

import asyncio
import os
import runpy
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.stack import wait_for_rpcs

from drctl.plan.cloud import OfflineCloud
from drctl.stack.files import REPO_ROOT, StackFile

_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
_SIG_KEY = "4dabf18193072939515e22adb298388d"


class Unknown:
    """A value the provider assigns during `pulumi up`."""

    def __repr__(self) -> str:
        return "(known after apply)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Unknown)

    def __hash__(self) -> int:
        return 0


UNKNOWN = Unknown()


@dataclass(frozen=True)
class Secret:
    """A value that must never be printed."""

    value: Any

    def __repr__(self) -> str:
        return "[secret]"


@dataclass(frozen=True)
class ResourceRef:
    urn: str


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    id: str | Unknown
    inputs: dict[str, Any]  # with Secret / Unknown / ResourceRef markers
    outputs: dict[str, Any] = field(default_factory=dict)
    ignore_changes: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()

    def plain(self, key: str) -> Any:
        """An input with secret markers removed: what the provider would receive."""
        return unwrap(self.inputs.get(key))


@dataclass
class ProgramRun:
    stack: StackFile
    preview: bool
    resources: list[Registration]
    outputs: dict[str, Any]
    error: str | None = None
    # True when the program refused its input (pulumi.RunError: config, region capabilities, limits),
    # False for a program bug; `drctl plan` exits 2 for the first, 1 for the second.
    refused_input: bool = False
    logs: list[tuple[str, str]] = field(default_factory=list)

    def of_type(self, type_token: str) -> list[Registration]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, name: str) -> Registration:
        found = [r for r in self.resources if r.type == type_token and r.name == name]
        if len(found) != 1:
            names = sorted(r.name for r in self.of_type(type_token))
            raise KeyError(f"{len(found)} {type_token} named {name!r}; registered: {names}")
        return found[0]

    def by_urn(self, urn: str) -> Registration:
        return next(r for r in self.resources if r.urn == urn)

    def children(self, parent_urn: str) -> list[Registration]:
        return [r for r in self.resources if r.parent == parent_urn]


class DuplicateUrnError(Exception):
    pass


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor, but it keeps every registration in order, keeps secrecy and
    unknowns visible, and refuses a second resource with the same URN (the SDK's own silently
    overwrites the first, hiding a naming bug that `pulumi up` would reject)."""

    def __init__(self, cloud: OfflineCloud):
        super().__init__(cloud)
        self.registrations: list[Registration] = []
        self.duplicates: list[str] = []
        # The SDK calls RegisterResource from several threads at once, so two registrations of one
        # URN can both run before either lands in `self.resources`: claim each URN under a lock.
        self._claimed: set[str] = set()
        self._lock = threading.Lock()

    def RegisterResource(self, request):
        urn = self.make_urn(request.parent, request.type, request.name)
        with self._lock:
            if urn in self._claimed:
                # Raising here would be swallowed by the SDK's registration task; report after the run.
                self.duplicates.append(urn)
            self._claimed.add(urn)
        raw = json_format.MessageToDict(request.object, preserving_proto_field_name=True)
        response = super().RegisterResource(request)
        secret_outputs = set(request.additionalSecretOutputs)
        if secret_outputs and request.type != "pulumi:pulumi:Stack":
            response = self._with_secret_outputs(urn, response, secret_outputs)
        if request.type != "pulumi:pulumi:Stack":
            self.registrations.append(
                Registration(
                    urn=urn,
                    type=request.type,
                    name=request.name,
                    parent=request.parent,
                    custom=bool(request.custom),
                    id=response.id or UNKNOWN,
                    inputs=_markers(raw),
                    outputs=_markers(json_format.MessageToDict(response.object, preserving_proto_field_name=True)),
                    ignore_changes=tuple(request.ignoreChanges),
                    depends_on=tuple(request.dependencies),
                )
            )
        return response

    def _with_secret_outputs(self, urn, response, secret_outputs):
        """Mark outputs the provider declares secret, as the real engine does."""
        from pulumi.runtime.proto import resource_pb2
        from pulumi.runtime.sync_await import _sync_await

        state = dict(self.resources[urn].state)
        for key in secret_outputs:
            # In preview the value is not known yet, but it is already known to be secret.
            state[key] = pulumi.Output.secret(state.get(key, pulumi.output.UNKNOWN))
        obj = _sync_await(rpc.serialize_properties(state, {}))
        return resource_pb2.RegisterResourceResponse(urn=response.urn, id=response.id, object=obj)


def _markers(value: Any) -> Any:
    """Turn the wire encoding of secrets, unknowns and resource references into marker objects."""
    if isinstance(value, dict):
        sig = value.get(_SIG_KEY)
        if sig == _SECRET_SIG:
            return Secret(_markers(value.get("value")))
        if sig == _RESOURCE_SIG:
            return ResourceRef(value.get("urn", ""))
        return {k: _markers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_markers(v) for v in value]
    if value == rpc.UNKNOWN:
        return UNKNOWN
    if isinstance(value, float) and value.is_integer():
        return int(value)  # protobuf Structs carry every number as a double
    return value


def unwrap(value: Any) -> Any:
    """Strip Secret markers (for assertions on what a provider would receive)."""
    if isinstance(value, Secret):
        return unwrap(value.value)
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def contains_secret(value: Any) -> bool:
    if isinstance(value, Secret):
        return True
    if isinstance(value, dict):
        return any(contains_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_secret(v) for v in value)
    return False


def run_program(
    stack: StackFile,
    preview: bool,
    program: Path = REPO_ROOT / "__main__.py",
    region_capabilities: Mapping[str, tuple[str, ...]] | None = None,
) -> ProgramRun:
    """Run `program` with `stack`'s config; never raises for a failing program: `error` says why."""
    cloud = OfflineCloud(preview=preview, region_capabilities=region_capabilities)
    monitor = RecordingMonitor(cloud)
    logs: list[tuple[str, str]] = []
    loops = _LoopTracker()
    asyncio.set_event_loop_policy(loops)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    settings.set_root_resource(None)
    pulumi.runtime.set_all_config(stack.config, stack.secret_keys)
    pulumi_mocks.set_mocks(
        cloud, project=stack.project, stack=stack.stack, preview=preview, monitor=monitor,
        logger=_ListLogger(logs),
    )
    # Config comes from the stack file only, never from a PULUMI_CONFIG left in the caller's shell.
    for var in ("PULUMI_CONFIG", "PULUMI_CONFIG_SECRET_KEYS"):
        os.environ.pop(var, None)
    root = str(program.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    error, refused_input = None, False
    outputs: dict[str, Any] = {}
    try:
        runpy.run_path(str(program), run_name="__main__")
        loop.run_until_complete(wait_for_rpcs())
        outputs = loop.run_until_complete(_resolve_outputs(settings.get_root_resource().outputs))
        if monitor.duplicates:
            raise DuplicateUrnError("two resources share the URN " + ", ".join(monitor.duplicates))
    except pulumi.RunError as err:
        error, refused_input = str(err), True
    except DuplicateUrnError as err:
        error = str(err)
    except Exception as err:
        # A RunError raised inside an apply reaches here wrapped; it is still the program refusing input.
        cause = err.__cause__ or err
        refused_input = isinstance(cause, pulumi.RunError)
        error = str(cause) if refused_input else f"{type(cause).__name__}: {cause}"
    finally:
        _drain(loop, loops)
        settings.set_root_resource(None)
    return ProgramRun(stack=stack, preview=preview, resources=monitor.registrations, outputs=outputs,
                      error=error, refused_input=refused_input, logs=logs)


class _LoopTracker(asyncio.DefaultEventLoopPolicy):
    """Remembers every event loop made during a run. The SDK makes its own beside ours (one per
    mock-monitor worker thread, one when it finds none in a thread); left to interpreter shutdown,
    their finalizers run after their sockets are gone and print a traceback at the end of
    `drctl plan`. Tracked, they are closed with the run."""

    def __init__(self) -> None:
        super().__init__()
        self.loops: list[asyncio.AbstractEventLoop] = []

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        self.loops.append(loop)
        return loop


def _drain(loop: asyncio.AbstractEventLoop, tracker: _LoopTracker) -> None:
    # The SDK tracks pending Output tasks in a process-wide set; a failed run leaves tasks of this
    # loop there, and the next run would wait on them after the loop is closed.
    with settings.SETTINGS.lock:
        settings.SETTINGS.outputs.clear()
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_default_executor())  # joins the mock monitor's threads
    asyncio.set_event_loop(None)
    for made in tracker.loops:
        if not made.is_running() and not made.is_closed():
            made.close()
    asyncio.set_event_loop_policy(None)


async def _resolve_outputs(outputs: Mapping[str, Any]) -> dict[str, Any]:
    return {name: await _resolve(value) for name, value in outputs.items()}


async def _resolve(value: Any) -> Any:
    if isinstance(value, pulumi.Output):
        known = await value.is_known()
        secret = await value.is_secret()
        if not known:
            inner = await value.future(with_unknowns=True)
            resolved = await _resolve(inner) if isinstance(inner, dict | list) else UNKNOWN
        else:
            resolved = await _resolve(await value.future())
        return Secret(resolved) if secret else resolved
    if isinstance(value, dict):
        return {k: await _resolve(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [await _resolve(v) for v in value]
    if isinstance(value, pulumi.output.Unknown):
        return UNKNOWN
    if isinstance(value, pulumi.Resource):
        return ResourceRef(await value.urn.future())
    return value


class _ListLogger:
    """Collects the program's pulumi.log messages (warnings show in the plan)."""

    def __init__(self, sink: list[tuple[str, str]]):
        self.sink = sink

    def debug(self, msg: str) -> None:
        pass

    def info(self, msg: str) -> None:
        self.sink.append(("info", msg))

    def warning(self, msg: str) -> None:
        self.sink.append(("warning", msg))

    def error(self, msg: str) -> None:
        self.sink.append(("error", msg))
