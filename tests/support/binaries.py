"""Server and tool binaries the tests run for real. DESIGN §4: with `CI` set a missing binary fails
the test (CI installs them in .ci/run); on a developer's machine it skips with the package to install.
The binary-to-package map and the lookup are drctl's own (drctl/local/binaries.py), shared with
`drctl rehearse`."""

from __future__ import annotations

import os

import pytest

from drctl.local.binaries import PACKAGES, MissingBinary, find

__all__ = ["PACKAGES", "need", "require"]


def need(*names: str) -> dict[str, str]:
    """Paths of `names`; fail (CI) or skip (elsewhere) naming the packages when any is missing."""
    try:
        return find(*names)
    except MissingBinary as err:
        if os.environ.get("CI"):
            pytest.fail(f"{err}: CI must install it (.ci/run)", pytrace=False)
        pytest.skip(str(err))


def require(name: str) -> str:
    """The path of one binary (see need)."""
    return need(name)[name]
