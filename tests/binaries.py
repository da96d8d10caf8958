"""System tools the tests run for real. Without CI a missing tool skips the test with the reason;
with CI set it fails it, because CI installs every one of them (.ci/run)."""

from __future__ import annotations

import os
import shutil

import pytest


def require(name: str) -> str:
    path = shutil.which(name) or next(
        (p for d in ("/usr/sbin", "/sbin") if os.access(p := os.path.join(d, name), os.X_OK)), None
    )
    if path:
        return path
    reason = f"{name} is not installed (Debian packages: see .ci/run)"
    if os.environ.get("CI"):
        pytest.fail(reason + "; CI must install it")
    pytest.skip(reason)
