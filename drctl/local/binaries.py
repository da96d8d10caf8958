"""Finding the server binaries that `drctl rehearse` (and the tests) run on this machine.

A missing binary is a clear error naming the Debian package to install, not a FileNotFoundError
from deep inside subprocess.
"""

from __future__ import annotations

import shutil

# binary -> Debian package that provides it
PACKAGES = {
    "mariadbd": "mariadb-server",
    "mariadb-install-db": "mariadb-server",
    "mariadb": "mariadb-client",
    "mariadb-dump": "mariadb-client",
    "mariadb-binlog": "mariadb-client",
    "openssl": "openssl",
    "shellcheck": "shellcheck",
    "git": "git",
    "cloud-init": "cloud-init",
    "php": "php-cli",
    "haproxy": "haproxy",
    "node": "nodejs",
    "nginx": "nginx",
    "php-fpm8.2": "php-fpm",
    "nft": "nftables",
    "curl": "curl",
    "unshare": "util-linux",
    "ip": "iproute2",
    "rclone": "rclone",
    "systemd-analyze": "systemd",
}

# Debian installs servers in sbin directories that a non-root PATH often lacks.
_FALLBACK_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


class MissingBinary(Exception):
    """Binaries this machine lacks; the message names the packages that provide them."""

    def __init__(self, missing: list[str], install: str | None = None):
        """`install`: how to get them, when it is not (only) `apt-get install` of their packages."""
        self.missing = missing
        self.packages = sorted({PACKAGES.get(name, name) for name in missing})
        self.install = install or f"apt-get install {' '.join(self.packages)}"
        super().__init__(f"needs {', '.join(missing)} ({self.install})")


def find(*names: str) -> dict[str, str]:
    """Paths of `names`; raise MissingBinary naming every one that is missing."""
    found = {name: shutil.which(name) or shutil.which(name, path=_FALLBACK_PATH) for name in names}
    missing = sorted(name for name, path in found.items() if path is None)
    if missing:
        raise MissingBinary(missing)
    return {name: str(path) for name, path in found.items()}
