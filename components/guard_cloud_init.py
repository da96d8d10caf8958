"""A guard Linode's cloud-init user data: drctl from the repository at one commit, in a venv under
/opt/woocommerce-dr, and its services enabled (`drctl-guard@<stack>`; `drctl-watch@<stack>` too in
dns-failover mode), with the stack outputs and the guard's tokens as root-only files.

The units are the repository's own (deploy/drctl-guard@.service, deploy/drctl-watch@.service) at the
same commit as the code they run; what they read is written here:

- /etc/drctl/<stack>.outputs.json: the guards' copy of the stack outputs (`LoadCredential=` in the units)
- /etc/drctl/guard-<stack>.env: LINODE_TOKEN, CLOUDFLARE_API_TOKEN, DRCTL_GUARD_ARGS
- /etc/drctl/watch-<stack>.env: CLOUDFLARE_API_TOKEN, DRCTL_WATCH_ARGS (dns-failover mode)

Plain Python, no Pulumi: the guard tier calls `user_data()` inside an `apply` once every input is known.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TEMPLATES = Path(__file__).parent / "templates" / "guard"
ROOT = "/opt/woocommerce-dr"
ETC = "/etc/drctl"
INSTALL = "/usr/local/sbin/drctl-install"
GUARD_SERVICE = "drctl-guard"
WATCH_SERVICE = "drctl-watch"
PACKAGES = ("git", "python3-venv")

# systemd's EnvironmentFile is not a shell: values are written bare, so they must need no quoting.
_BARE = re.compile(r"^[A-Za-z0-9_.:/@,=+-]*$")
# Arguments are split at spaces by systemd; each may be a URL (--alert-webhook).
_ARGUMENT = re.compile(r"^[A-Za-z0-9_.:/@,=+?&%~#-]*$")


@dataclass(frozen=True)
class GuardNode:
    stack: str
    region: str
    hostname: str  # the Linode's label: the units' holder id (%H) must be the name the outputs give the guard
    repo: str
    commit: str
    outputs: Mapping[str, Any]  # the guards' copy of the drctl stack outputs (JSON document)
    linode_token: str
    cloudflare_token: str
    run_watch: bool  # dns-failover mode: this host also runs drctl watch
    guard_args: str = ""
    watch_args: str = ""

    @property
    def services(self) -> tuple[str, ...]:
        return (GUARD_SERVICE, WATCH_SERVICE) if self.run_watch else (GUARD_SERVICE,)


def user_data(node: GuardNode) -> str:
    """Base64 of the gzipped cloud-config, byte-identical between runs (`mtime=0`)."""
    return base64.b64encode(gzip.compress(cloud_config(node).encode(), mtime=0)).decode()


def decode_user_data(encoded: str) -> str:
    return gzip.decompress(base64.b64decode(encoded)).decode()


def cloud_config(node: GuardNode) -> str:
    doc = {
        "hostname": node.hostname,
        "preserve_hostname": False,
        "package_update": True,
        "packages": list(PACKAGES),
        "write_files": files(node),
        "runcmd": [[INSTALL]],
    }
    return "#cloud-config\n" + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=120)


def files(node: GuardNode) -> list[dict[str, str]]:
    install_env = {"DRCTL_REPO": node.repo, "DRCTL_COMMIT": node.commit, "STACK": node.stack,
                   "SERVICES": " ".join(node.services)}
    found = [
        _file(f"{ETC}/guard-install.env", "".join(f"{k}='{v}'\n" for k, v in _checked(install_env).items()), "0644"),
        _file(INSTALL, (TEMPLATES / "drctl-install").read_text(), "0755"),
        # The outputs hold the database administrators' passwords: root only; the units hand them to
        # their (unprivileged, dynamic) user as a credential.
        _file(f"{ETC}/{node.stack}.outputs.json", json.dumps(node.outputs, indent=2) + "\n", "0600"),
        _file(f"{ETC}/guard-{node.stack}.env", _environment({
            "LINODE_TOKEN": node.linode_token, "CLOUDFLARE_API_TOKEN": node.cloudflare_token,
            "DRCTL_GUARD_ARGS": node.guard_args,
        }), "0600"),
    ]
    if node.run_watch:
        found.append(_file(f"{ETC}/watch-{node.stack}.env", _environment({
            "CLOUDFLARE_API_TOKEN": node.cloudflare_token, "DRCTL_WATCH_ARGS": node.watch_args,
        }), "0600"))
    return found


def _environment(values: Mapping[str, str]) -> str:
    return "".join(f"{key}={value}\n" for key, value in _checked(values).items())


def _checked(values: Mapping[str, str]) -> Mapping[str, str]:
    for key, value in values.items():
        arguments = key.endswith(("ARGS", "SERVICES"))
        if not (all(_ARGUMENT.match(a) for a in value.split(" ")) if arguments else _BARE.match(value)):
            # Never the value: it may be a token.
            raise ValueError(f"{key} holds characters an environment file cannot carry unquoted")
    return values


def _file(path: str, content: str, permissions: str) -> dict[str, str]:
    return {"path": path, "owner": "root:root", "permissions": permissions, "content": content}


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so the user data reads like the files it writes."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)
