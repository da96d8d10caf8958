"""A web node's cloud-init user data.

The cloud-config is `templates/web-node/cloud-config.yaml` plus `write_files`: the scripts, PHP and
nginx files beside it, copied as they are (no substitution, so each can be linted and tested on its
own), and this node's settings and secrets as data files — JSON for PHP, shell-quoted assignments for
the scripts — encoded by `json.dumps` and `shlex.quote`, never pasted into code.

Plain Python, no Pulumi: the web tier calls `user_data()` inside an `apply` once every input is known.
"""

from __future__ import annotations

import base64
import gzip
import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.firewall_rules import NODEBALANCER_NETWORK

TEMPLATES = Path(__file__).parent / "templates" / "web-node"

# Pinned so every node of every region runs the same code against the one replicated database (a
# node booting later must not bring a newer WooCommerce that migrates the schema under the others).
WORDPRESS_VERSION = "6.9"
WOOCOMMERCE_VERSION = "10.3.6"
WP_CLI_VERSION = "2.12.0"

ETC = "/etc/woocommerce-dr"
SHARE = "/usr/local/share/woocommerce-dr"

# wp-config.php defines one constant per name from wordpress.json.
WORDPRESS_KEY_NAMES = (
    "AUTH_KEY", "SECURE_AUTH_KEY", "LOGGED_IN_KEY", "NONCE_KEY",
    "AUTH_SALT", "SECURE_AUTH_SALT", "LOGGED_IN_SALT", "NONCE_SALT",
)

# (template file, path on the node, owner, mode), written on every node. The cron timer is on every
# node so an operator can move WordPress cron to another node by enabling it there.
STATIC_FILES = (
    ("woocommerce-dr-bootstrap", "/usr/local/sbin/woocommerce-dr-bootstrap", "root:root", "0755"),
    ("woocommerce-dr-wp-cron", "/usr/local/sbin/woocommerce-dr-wp-cron", "root:root", "0755"),
    ("woocommerce-dr-wp-cron.service", "/etc/systemd/system/woocommerce-dr-wp-cron.service", "root:root", "0644"),
    ("woocommerce-dr-wp-cron.timer", "/etc/systemd/system/woocommerce-dr-wp-cron.timer", "root:root", "0644"),
    ("woocommerce-dr.php", f"{SHARE}/woocommerce-dr.php", "root:root", "0644"),
    ("healthz.php", f"{SHARE}/healthz.php", "root:root", "0644"),
    ("healthz-verdict.php", f"{SHARE}/healthz-verdict.php", "root:root", "0644"),
    # Installed as a must-use plugin by the bootstrap (docs/read-only-mode.md).
    ("woocommerce-dr-read-only.php", f"{SHARE}/woocommerce-dr-read-only.php", "root:root", "0644"),
    ("media-status.php", f"{SHARE}/media-status.php", "root:root", "0644"),
    ("create-database.php", f"{SHARE}/create-database.php", "root:root", "0644"),
    ("db.php", f"{SHARE}/db.php", "root:root", "0644"),
    ("wp-config.php", f"{SHARE}/wp-config.php", "root:root", "0644"),
    ("nginx-site.conf", "/etc/nginx/sites-available/woocommerce", "root:root", "0644"),
    ("nginx-healthz.conf", "/etc/nginx/snippets/woocommerce-dr-healthz.conf", "root:root", "0644"),
    # The rotation agent (docs/node-rotation.md).
    ("woocommerce-dr-rotation", "/usr/local/sbin/woocommerce-dr-rotation", "root:root", "0755"),
    ("woocommerce-dr-rotation.service", "/etc/systemd/system/woocommerce-dr-rotation.service", "root:root", "0644"),
    ("livez.php", f"{SHARE}/livez.php", "root:root", "0644"),
    ("nginx-livez.conf", "/etc/nginx/snippets/woocommerce-dr-livez.conf", "root:root", "0644"),
    ("metadata-guard.nft", f"{ETC}/metadata-guard.nft", "root:root", "0644"),
    ("woocommerce-dr-metadata-guard.service", "/etc/systemd/system/woocommerce-dr-metadata-guard.service",
     "root:root", "0644"),
)

# Where the node finds the CA that signed the zone's origin-pull client certificate (public data).
ORIGIN_PULL_CA_PATH = "/etc/ssl/woocommerce-dr/origin-pull-ca.pem"


@dataclass(frozen=True)
class Rotation:
    """How the rotation agent (templates/web-node/woocommerce-dr-rotation) decides. It asks the node's
    own /livez (nginx -> PHP-FPM -> PHP, no database) every `probe_interval` s with a `probe_timeout`
    s limit; `fall` failures in a row take the node out, `rise` good answers bring it back."""

    ports: tuple[int, ...]
    source: str  # the NodeBalancers' network: only its new connections are refused
    probe_url: str = "http://127.0.0.1/livez"
    probe_interval: int = 1
    probe_timeout: int = 2
    fall: int = 2
    rise: int = 3

    @property
    def reaction_seconds(self) -> int:
        """How long from the node failing to its ports refusing the NodeBalancer, at worst: `fall`
        probes, each waiting out its timeout and the pause before it (plus the few milliseconds of
        starting curl and nft: bench/rotation_agent.py measures 6.1 s for a hung PHP-FPM)."""
        return self.fall * (self.probe_timeout + self.probe_interval)

    def env(self) -> dict[str, str]:
        return {
            "PROBE_URL": self.probe_url, "PROBE_INTERVAL": str(self.probe_interval),
            "PROBE_TIMEOUT": str(self.probe_timeout), "FALL": str(self.fall), "RISE": str(self.rise),
            "SOURCE": self.source, "PORTS": ", ".join(str(p) for p in self.ports),
        }


@dataclass(frozen=True)
class DatabaseSettings:
    host: str
    port: int
    user: str
    password: str
    database: str
    ca_pem: str
    # Our MySQL Linodes: their private IP, as an /etc/hosts line for `host`, so the node connects
    # over the private network (DNS has the public IP) and verifies TLS against the name.
    address: str | None = None


@dataclass(frozen=True)
class SiteAdmin:
    """The first WordPress administrator, created by the node that installs the site."""

    user: str
    email: str
    password: str
    title: str


@dataclass(frozen=True)
class ExtraService:
    """Something one node runs besides the shop (the managed-mode heartbeat writer of
    components/heartbeat.py): files to write, packages it needs, commands that start it."""

    files: tuple[Mapping[str, Any], ...]
    packages: tuple[str, ...] = ()
    runcmd: tuple[Sequence[str], ...] = ()


@dataclass(frozen=True)
class WebNode:
    region: str
    domain: str
    database: DatabaseSettings
    wordpress_keys: Mapping[str, str]
    origin_certificate_pem: str
    origin_private_key_pem: str
    run_cron: bool
    # objectives.rpoSeconds: the most replication lag at which /healthz still calls a replica region
    # a valid failover target (docs/health.md).
    rpo_seconds: int
    # The CA of the zone's Authenticated Origin Pulls client certificate: nginx serves the shop only
    # to TLS clients it signed (Cloudflare, for this zone).
    origin_pull_ca_pem: str
    rotation: Rotation = Rotation(ports=(443, 80), source=NODEBALANCER_NETWORK)
    site_admin: SiteAdmin | None = None  # set on the one node that runs `wp core install`
    services: tuple[ExtraService, ...] = ()


def user_data(node: WebNode) -> str:
    """The base64 user data for `linode.Instance(metadatas=[{"user_data": ...}])`: the cloud-config,
    gzipped (cloud-init unpacks it) to stay far below the metadata service's size limit. `mtime=0`
    keeps it byte-identical between runs, so an unchanged node never shows a diff."""
    return base64.b64encode(gzip.compress(cloud_config(node).encode(), mtime=0)).decode()


def decode_user_data(encoded: str) -> str:
    """The cloud-config text inside `user_data()`'s output (for tests and for reading a plan)."""
    return gzip.decompress(base64.b64decode(encoded)).decode()


def cloud_config(node: WebNode) -> str:
    doc: dict[str, Any] = yaml.safe_load((TEMPLATES / "cloud-config.yaml").read_text())
    doc["write_files"] = [*settings_files(node), *_static_files()]
    starts = []
    for service in node.services:
        doc["write_files"] += [dict(f) for f in service.files]
        doc["packages"] += [p for p in service.packages if p not in doc["packages"]]
        starts += [list(command) for command in service.runcmd]
    # Before the site's bootstrap, which can wait a long time for the database: a service such as
    # the heartbeat writer must not wait for WordPress.
    doc["runcmd"] = starts + doc["runcmd"]
    return "#cloud-config\n" + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=120)


def _static_files() -> list[dict[str, str]]:
    return [_file(path, (TEMPLATES / template).read_text(), owner, mode) for template, path, owner, mode in STATIC_FILES]


def settings_files(node: WebNode) -> list[dict[str, str]]:
    db = node.database
    ca_file = f"{ETC}/database-ca.pem"
    database = {
        "region": node.region, "host": db.host, "port": int(db.port), "user": db.user,
        "password": db.password, "database": db.database, "ca_file": ca_file,
        "rpo_seconds": node.rpo_seconds,
    }
    wordpress = {"home": f"https://{node.domain}", "keys": {k: node.wordpress_keys[k] for k in WORDPRESS_KEY_NAMES}}
    env = {
        "REGION": node.region,
        "DOMAIN": node.domain,
        "WORDPRESS_VERSION": WORDPRESS_VERSION,
        "WOOCOMMERCE_VERSION": WOOCOMMERCE_VERSION,
        "WP_CLI_VERSION": WP_CLI_VERSION,
        "INSTALL_SITE": "yes" if node.site_admin else "no",
        "RUN_CRON": "yes" if node.run_cron else "no",
    }
    files = [
        _file(f"{ETC}/node.env", _shell_assignments(env), "root:root", "0644"),
        _file(f"{ETC}/rotation.env", _shell_assignments(node.rotation.env()), "root:root", "0644"),
        # www-data reads these (PHP-FPM runs as www-data); nobody else may.
        _file(f"{ETC}/database.json", json.dumps(database, indent=2) + "\n", "root:www-data", "0640"),
        _file(ca_file, db.ca_pem, "root:root", "0644"),
        _file(f"{ETC}/wordpress.json", json.dumps(wordpress, indent=2) + "\n", "root:www-data", "0640"),
        _file("/etc/ssl/woocommerce-dr/origin.pem", node.origin_certificate_pem, "root:root", "0644"),
        _file("/etc/ssl/woocommerce-dr/origin.key", node.origin_private_key_pem, "root:root", "0600"),
        _file(ORIGIN_PULL_CA_PATH, node.origin_pull_ca_pem, "root:root", "0644"),
    ]
    if db.address:
        files.append({"path": "/etc/hosts", "content": f"{db.address} {db.host}\n", "append": True})
    if node.site_admin:
        admin = node.site_admin
        admin_env = {
            "WP_ADMIN_USER": admin.user, "WP_ADMIN_EMAIL": admin.email,
            "WP_ADMIN_PASSWORD": admin.password, "SITE_TITLE": admin.title,
        }
        # Read once by the bootstrap, then deleted.
        files.append(_file(f"{ETC}/site-admin.env", _shell_assignments(admin_env), "root:root", "0600"))
    return files


def _file(path: str, content: str, owner: str, permissions: str) -> dict[str, str]:
    return {"path": path, "owner": owner, "permissions": permissions, "content": content}


def _shell_assignments(values: Mapping[str, str]) -> str:
    return "".join(f"{key}={shlex.quote(str(value))}\n" for key, value in values.items())


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so the user data reads like the files it writes
    (`/var/lib/cloud/instance/user-data.txt` is what someone debugging a node looks at)."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)
