"""Server and tool binaries the tests run for real. DESIGN §4: with `CI` set a missing binary fails
the test (CI installs them in .ci/run); on a developer's machine it skips with the package to install."""

from __future__ import annotations

import os
import shutil

import pytest

# binary -> Debian package that provides it
PACKAGES = {
    "mariadbd": "mariadb-server",
    "mariadb-install-db": "mariadb-server",
    "mariadb": "mariadb-client",
    "mariadb-dump": "mariadb-client",
    "openssl": "openssl",
    "shellcheck": "shellcheck",
    "cloud-init": "cloud-init",
    "php": "php-cli",
    "haproxy": "haproxy",
}


def need(*names: str) -> dict[str, str]:
    """Paths of `names`; fail (CI) or skip (elsewhere) naming the packages when any is missing."""
    found = {name: shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin") for name in names}
    missing = sorted(name for name, path in found.items() if path is None)
    if missing:
        packages = sorted({PACKAGES.get(name, name) for name in missing})
        message = f"needs {', '.join(missing)} (apt-get install {' '.join(packages)})"
        if os.environ.get("CI"):
            pytest.fail(message + ": CI must install it (.ci/run)", pytrace=False)
        pytest.skip(message)
    return {name: str(path) for name, path in found.items()}


def require(name: str) -> str:
    """The path of one binary (see need)."""
    return need(name)[name]
