"""User data of the MySQL Linodes, rendered from the templates in components/templates/.

The skeleton (`mysql-server.cloud-config.yaml`) holds packages and the run command; this module adds
the files: my.cnf settings, TLS material, the bootstrap config (JSON, passwords: mode 0600) and the
replication code itself — `drctl/mysql/bootstrap.py` and the modules of drctl/mysql it imports
(`SHIPPED_CODE`), gzip+base64 — so the servers run exactly the code the tests and drctl run — and,
on the replica that runs the binlog archiver, that service (`DrctlService`, components/archive_host.py). Linode
accepts at most 65,535 bytes of user data (`LINODE_USER_DATA_LIMIT`); a test checks the rendered size
against it.
"""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

import yaml

import drctl.mysql

TEMPLATES = Path(__file__).parent / "templates"
DRCTL = Path(drctl.mysql.__file__).parents[1]  # drctl/ itself; components import only drctl.mysql and drctl.stack
LINODE_USER_DATA_LIMIT = 65535

# The drctl package as far as the bootstrap needs it: the bootstrap and every module it imports, all in
# drctl/mysql (a test follows the imports). The servers have Python and PyMySQL, nothing of drctl's.
SHIPPED_CODE = ("__init__.py", "mysql/__init__.py", "mysql/dialect.py", "mysql/gtid.py", "mysql/replication.py",
                "mysql/seeding.py", "mysql/bootstrap.py")
# Not /opt/woocommerce-dr: that is where the drctl installer checks out the whole repository on a
# server that runs a drctl service (components/drctl_install.py), and a clone needs an empty directory.
CODE_DIR = "/usr/local/lib/woocommerce-dr/drctl"
TLS_DIR = "/etc/mysql/woocommerce-dr"
SERVER_CA = f"{TLS_DIR}/ca.pem"  # the CA of our MySQL Linodes, on every one of them
SOURCE_CA = f"{TLS_DIR}/source-ca.pem"
BOOTSTRAP_CONFIG = "/etc/woocommerce-dr/bootstrap.json"
SOCKET = "/var/run/mysqld/mysqld.sock"
SETUP = "/usr/local/sbin/woocommerce-dr-db-setup"
STATUS_FILES = {"primary": "/var/lib/drctl/primary-status.json", "replica": "/var/lib/drctl/replica-status.json"}


@dataclass(frozen=True)
class DrctlService:
    """A drctl service on this server (components/archive_host.py): its files, the packages it needs,
    and the command that installs and starts it once the database setup has succeeded."""

    files: tuple[dict[str, Any], ...]
    packages: tuple[str, ...]
    command: str


@dataclass(frozen=True)
class ServerTls:
    ca_cert_pem: str
    cert_pem: str
    key_pem: str


def render_template(name: str, **values: Any) -> str:
    """A template file with ${name} placeholders; a missing value is an error, not an empty string."""
    return Template((TEMPLATES / name).read_text(encoding="utf-8")).substitute(values)


def mysql_settings(role: str, **values: Any) -> str:
    return render_template(f"mysql-{role}.cnf", **values)


def gz_b64(data: bytes) -> str:
    return base64.b64encode(gzip.compress(data, compresslevel=9, mtime=0)).decode()


def _file(path: str, content: str, permissions: str = "0644", owner: str = "root:root",
          defer: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {"path": path, "content": content, "permissions": permissions, "owner": owner}
    if defer:
        # Written after the packages: the mysql user exists then, and mysqld's first start by the
        # package must not see settings whose certificate files are not there yet.
        entry["defer"] = True
    return entry


def shipped_code_files() -> list[dict[str, Any]]:
    return [
        {"path": f"{CODE_DIR}/{name}", "encoding": "gz+b64", "permissions": "0644", "owner": "root:root",
         "content": gz_b64((DRCTL / name).read_bytes())}
        for name in SHIPPED_CODE
    ]


def cloud_config(*, settings: str, tls: ServerTls, bootstrap: dict[str, Any], source_ca_pem: str | None = None,
                 service: DrctlService | None = None) -> str:
    """The complete #cloud-config text of one MySQL Linode. No /etc/hosts lines: the servers find
    each other by the names published in DNS (components/server_names.py), which stay right when
    drctl changes who replicates from whom."""
    doc = yaml.safe_load((TEMPLATES / "mysql-server.cloud-config.yaml").read_text(encoding="utf-8"))
    files = [
        _file("/etc/mysql/mysql.conf.d/zz-woocommerce-dr.cnf", settings, defer=True),
        _file(SERVER_CA, tls.ca_cert_pem, defer=True),
        _file(f"{TLS_DIR}/server-cert.pem", tls.cert_pem, defer=True),
        _file(f"{TLS_DIR}/server-key.pem", tls.key_pem, "0600", "mysql:mysql", defer=True),
        _file(BOOTSTRAP_CONFIG, json.dumps(bootstrap, indent=2, sort_keys=True) + "\n", "0600"),
        _file(SETUP, (TEMPLATES / "db-setup.sh").read_text(encoding="utf-8"), "0755"),
        *shipped_code_files(),
    ]
    if source_ca_pem is not None:
        files.append(_file(SOURCE_CA, source_ca_pem, defer=True))
    if service is not None:
        files += service.files
        doc["packages"] += [p for p in service.packages if p not in doc["packages"]]
        # One shell line: the service starts only on a server whose setup succeeded.
        doc["runcmd"] = [f"{SETUP} && {service.command}"]
    doc["write_files"] = files
    return "#cloud-config\n" + yaml.safe_dump(doc, sort_keys=False, width=1000)


def user_data(text: str) -> str:
    """What Linode's metadata service takes: base64 of the cloud-config."""
    return base64.b64encode(text.encode()).decode()
