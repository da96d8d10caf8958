"""drctl on a Linode of the stack: the repository at one pinned commit (`automation.drctlSource`) in a
venv under /opt/woocommerce-dr, and its services enabled, by one installer (templates/drctl-install)
that cloud-init writes and runs. Every host that runs a drctl service gets it this way: the guard
Linodes (components/guard_cloud_init.py: drctl guard, drctl watch) and the DR replica that runs the
binlog archiver (components/archive_host.py: drctl archive).

The units are the repository's own (deploy/<service>@.service) at the same commit as the code they
run; the installer enables `<service>@<stack>`. What a unit reads besides (tokens, settings) is
written next to it by the caller, under /etc/drctl, root-only.

Plain Python, no Pulumi: callers render inside an `apply` once every input is known.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

TEMPLATE = Path(__file__).parent / "templates" / "drctl-install"
ROOT = "/opt/woocommerce-dr"
ETC = "/etc/drctl"
INSTALL = "/usr/local/sbin/drctl-install"
INSTALL_ENV = f"{ETC}/drctl-install.env"
PACKAGES = ("git", "python3-venv")

# systemd's EnvironmentFile is not a shell: values are written bare, so they must need no quoting.
_BARE = re.compile(r"^[A-Za-z0-9_.:/@,=+-]*$")
# Arguments are split at spaces by systemd; each may be a URL (--alert-webhook).
_ARGUMENT = re.compile(r"^[A-Za-z0-9_.:/@,=+?&%~#-]*$")


@dataclass(frozen=True)
class DrctlInstall:
    """What the installer checks out and which services it enables (`<service>@<stack>`)."""

    repo: str
    commit: str
    stack: str
    services: tuple[str, ...]


def install_files(install: DrctlInstall) -> list[dict[str, str]]:
    """The installer and its settings, for write_files; cloud-init then runs INSTALL."""
    settings = {"DRCTL_REPO": install.repo, "DRCTL_COMMIT": install.commit, "STACK": install.stack,
                "SERVICES": " ".join(install.services)}
    return [
        file(INSTALL_ENV, "".join(f"{k}='{v}'\n" for k, v in checked(settings).items()), "0644"),
        file(INSTALL, TEMPLATE.read_text(encoding="utf-8"), "0755"),
    ]


def environment(values: Mapping[str, str]) -> str:
    """An EnvironmentFile= text: KEY=value lines, each value checked to need no quoting."""
    return "".join(f"{key}={value}\n" for key, value in checked(values).items())


def arguments(flags: Sequence[tuple[str, str | None]]) -> str:
    """Extra flags for a unit's `$DRCTL_..._ARGS`, e.g. [("--alert-webhook", url)]; unset ones left out."""
    return " ".join(f"{flag} {value}" for flag, value in flags if value)


def checked(values: Mapping[str, str]) -> Mapping[str, str]:
    for key, value in values.items():
        split = key.endswith(("ARGS", "SERVICES"))
        if not (all(_ARGUMENT.match(a) for a in value.split(" ")) if split else _BARE.match(value)):
            # Never the value: it may be a token.
            raise ValueError(f"{key} holds characters an environment file cannot carry unquoted")
    return values


def file(path: str, content: str, permissions: str) -> dict[str, str]:
    return {"path": path, "owner": "root:root", "permissions": permissions, "content": content}
