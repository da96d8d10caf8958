"""Where the binlog archiver runs: the DR replica's MySQL Linode in `backups.region` (in both database
modes, a replica there is one of ours) runs `drctl archive` (docs/backups.md) as a systemd service.

What its user data adds (components/database.py renders it with the replica's own):
- drctl from `automation.drctlSource`, by the installer every drctl host shares
  (components/drctl_install.py), which enables deploy/drctl-archive@.service as `drctl-archive@<stack>`;
  it runs after the database setup, and only when the setup succeeded: a replica that does not
  replicate must not take base backups;
- /etc/drctl/archive-<stack>.json, root-only (0600): the settings `drctl archive --config` reads, in
  the shape of drctl.backup.archive_config.ArchiveSettings (a test validates the rendered file with
  that model, so the program and drctl cannot disagree): the bucket and the archiver's read-write key,
  the archive key, every server that may become primary with the account the archiver logs in with
  and the CA that verifies it, how the base backup reaches the local server (its socket, as root:
  auth_socket, no password), the spool, and the objectives;
- /etc/drctl/archive-<stack>.env: DRCTL_ARCHIVE_ARGS, the stack's alert webhook (traffic.alerts).

Being near the archive's bucket matters more than being near the primary: the binlog stream is one
connection, light; base backups and the pieces go to the bucket in its own region.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from components.drctl_install import ETC, DrctlInstall, arguments, environment, file, install_files

SERVICE = "drctl-archive"
# The unit's StateDirectory (/var/lib/drctl-archive): the only place it may write.
SPOOL = "/var/lib/drctl-archive/spool"


def settings_path(stack: str) -> str:
    return f"{ETC}/archive-{stack}.json"  # LoadCredential= in deploy/drctl-archive@.service


def environment_path(stack: str) -> str:
    return f"{ETC}/archive-{stack}.env"


@dataclass(frozen=True)
class ArchiveSource:
    """A server that may be the primary, as the archiver logs in to it (REPLICATION SLAVE at least)."""

    host: str  # the name its certificate carries
    port: int
    user: str
    password: str
    ca_file: str  # on the archiver's host


@dataclass(frozen=True)
class ArchiverDeployment:
    """What the database tier needs to put the archiver on the replica in `region`
    (components/backups.py `BinlogArchive.deployment`)."""

    region: str
    stack: str
    repo: str
    commit: str
    alert_webhook: str | None
    bucket: pulumi.Output[dict[str, str]]  # secret: endpoint, bucket, accessKey, secretKey, region
    archive_key: pulumi.Output[str]  # secret
    backup_rpo_seconds: int
    base_every_hours: int
    retention_days: int


def settings_document(deployment: ArchiverDeployment, bucket: Mapping[str, str], archive_key: str,
                      sources: Sequence[ArchiveSource], local_client: Sequence[str]) -> dict[str, Any]:
    """The archiver's settings file (drctl.backup.archive_config.ArchiveSettings, camelCase)."""
    return {
        "bucket": dict(bucket),
        "archiveKey": archive_key,
        "sources": [{"host": s.host, "port": s.port, "user": s.user, "password": s.password, "caFile": s.ca_file}
                    for s in sources],
        "baseClient": list(local_client),
        "spool": SPOOL,
        "backupRpoSeconds": deployment.backup_rpo_seconds,
        "baseEveryHours": deployment.base_every_hours,
        "retentionDays": deployment.retention_days,
        # Our Linodes run MySQL 8 (Ubuntu's mysql-server): the archiver uses mysqlbinlog and mysqldump.
        "flavour": "mysql",
    }


def host_files(deployment: ArchiverDeployment, settings: Mapping[str, Any]) -> list[dict[str, str]]:
    """The files the archiver's host gets besides the replica's own; `INSTALL` runs them."""
    stack = deployment.stack
    return [
        *install_files(DrctlInstall(deployment.repo, deployment.commit, stack, (SERVICE,))),
        file(settings_path(stack), json.dumps(settings, indent=2, sort_keys=True) + "\n", "0600"),
        file(environment_path(stack), environment({
            "DRCTL_ARCHIVE_ARGS": arguments([("--alert-webhook", deployment.alert_webhook)])}), "0644"),
    ]

