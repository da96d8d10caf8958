"""A guard Linode's cloud-init user data: drctl from the repository at one commit, in a venv under
/opt/woocommerce-dr, and its services enabled (`drctl-guard@<stack>`; `drctl-watch@<stack>` too in
dns-failover mode), with the stack outputs and the guard's tokens as root-only files.

The installer and the units are shared with every host that runs drctl (components/drctl_install.py);
what the guard's units read is written here:

- /etc/drctl/<stack>.outputs.json: the guards' copy of the stack outputs (`LoadCredential=` in the units)
- /etc/drctl/guard-<stack>.env: LINODE_TOKEN, CLOUDFLARE_API_TOKEN, DRCTL_GUARD_ARGS
- /etc/drctl/watch-<stack>.env: CLOUDFLARE_API_TOKEN, DRCTL_WATCH_ARGS (dns-failover mode)

Plain Python, no Pulumi: the guard tier calls `user_data()` inside an `apply` once every input is known.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from components.drctl_install import ETC, INSTALL, PACKAGES, DrctlInstall, environment, file, install_files

GUARD_SERVICE = "drctl-guard"
WATCH_SERVICE = "drctl-watch"


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
    found = [
        *install_files(DrctlInstall(node.repo, node.commit, node.stack, node.services)),
        # The outputs hold the database administrators' passwords: root only; the units hand them to
        # their (unprivileged, dynamic) user as a credential.
        file(f"{ETC}/{node.stack}.outputs.json", json.dumps(node.outputs, indent=2) + "\n", "0600"),
        file(f"{ETC}/guard-{node.stack}.env", environment({
            "LINODE_TOKEN": node.linode_token, "CLOUDFLARE_API_TOKEN": node.cloudflare_token,
            "DRCTL_GUARD_ARGS": node.guard_args,
        }), "0600"),
    ]
    if node.run_watch:
        found.append(file(f"{ETC}/watch-{node.stack}.env", environment({
            "CLOUDFLARE_API_TOKEN": node.cloudflare_token, "DRCTL_WATCH_ARGS": node.watch_args,
        }), "0600"))
    return found


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so the user data reads like the files it writes."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)
