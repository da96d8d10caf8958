"""Read a resource's properties exactly as the Pulumi engine hands them to a policy pack.

The engine passes the resource's inputs under their engine names (camelCase: `checkPassive`,
`inboundPolicy`, `allowLists`), secrets already unwrapped, inside a proxy that raises
`UnknownValueError` when a value that is only known after apply is read. An unhandled
`UnknownValueError` makes the SDK skip the whole policy for that resource with an advisory
"can't run policy during preview" note: a mandatory check would silently not run. So every read
goes through these helpers, which tell "absent", "unknown" and "known" apart.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy.proxy import UnknownValueError


class _Unknown:
    """A value the provider only knows after `pulumi up` (a computed id or address)."""

    def __repr__(self) -> str:
        return "(known after apply)"


UNKNOWN: Any = _Unknown()


def get(props: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """`props[key]`, `default` when the key is absent, or UNKNOWN during preview."""
    # `key in props` would read the value through the proxy (and raise); the key list does not.
    if key not in list(props):
        return default
    try:
        return props[key]
    except UnknownValueError:
        return UNKNOWN


def known_items(values: Any) -> Iterator[Any]:
    """The known elements of a list property; unknown elements (and an unknown or absent list)
    yield nothing. Unknown elements are computed addresses or ids of resources this program
    creates: they are checked again, with real values, when `pulumi up` runs the same policies."""
    if values is UNKNOWN or values is None:
        return
    for index in range(len(values)):
        try:
            yield values[index]
        except UnknownValueError:
            continue


def first_item(values: Any) -> Any:
    """values[0]; None for an empty or absent list; UNKNOWN when it (or the list) is not known yet."""
    if values is UNKNOWN:
        return UNKNOWN
    if not values:
        return None
    try:
        return values[0]
    except UnknownValueError:
        return UNKNOWN


def stack_and_project(urn: str) -> tuple[str, str]:
    """`urn:pulumi:<stack>::<project>::<type>::<name>` -> (stack, project)."""
    head, project = urn.split("::")[:2]
    return head.rsplit(":", 1)[1], project
