"""The archiver service's settings: one JSON file on the host that runs it (0600: it holds the
archiver's read-write key, the archive key and the replication password).

    {"bucket": {"endpoint": "eu-west-1.linodeobjects.com", "bucket": "wcdr-prod-binlogs-...",
                "accessKey": "...", "secretKey": "...", "region": "eu-west"},
     "archiveKey": "<32 bytes, base64>",
     "sources": [{"host": "mysql-us-east.db.shop.example.com", "port": 3306, "user": "replicator",
                  "password": "...", "caFile": "/etc/mysql/woocommerce-dr/source-ca.pem"}, ...],
     "baseClient": ["--socket=/var/run/mysqld/mysqld.sock", "--user=root"],
     "spool": "/var/lib/woocommerce-dr/binlog-spool",
     "backupRpoSeconds": 300, "baseEveryHours": 24, "retentionDays": 14, "flavour": "mysql"}

`sources` are every database server that may be the primary, in failover order: the archiver reads
from whichever is writable. `baseClient` is how mariadb-dump reaches the server base backups are
taken from (the local replica). `flavour` is whose servers they are: "mysql" (MySQL 8.0.32+:
mysqlbinlog and mysqldump of MySQL 8) or "mariadb" (the default; mariadb-binlog, mariadb-dump).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic.alias_generators import to_camel


class ArchiveConfigError(Exception):
    """The settings file cannot be used; the message names the file and the key, never a secret."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)


class BucketSettings(_Model):
    endpoint: str
    bucket: str
    access_key: SecretStr
    secret_key: SecretStr
    region: str = "us-east-1"


class SourceSettings(_Model):
    host: str
    port: int = Field(3306, ge=1, le=65535)
    user: str
    password: SecretStr
    ca_file: str
    tls_name: str | None = None


class ArchiveSettings(_Model):
    bucket: BucketSettings
    archive_key: SecretStr
    sources: tuple[SourceSettings, ...] = Field(min_length=1)
    base_client: tuple[str, ...] = Field(min_length=1)
    spool: Path
    backup_rpo_seconds: int = Field(300, ge=30, le=86400)
    base_every_hours: int = Field(24, ge=1, le=168)
    retention_days: int = Field(14, ge=1, le=3650)
    flavour: Literal["mariadb", "mysql"] = "mariadb"

    @property
    def segment_seconds(self) -> float:
        """A tenth of the objective, at most 10 s: a piece that fails once is retried well within it."""
        return min(10.0, self.backup_rpo_seconds / 10)


def load_settings(path: Path) -> ArchiveSettings:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise ArchiveConfigError(f"--config: cannot read it, {err.strerror.lower()} (got {path}; allowed: the "
                                 "archiver's settings file, JSON)") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise ArchiveConfigError(f"--config: not JSON, {err} (got {path})") from None
    try:
        return ArchiveSettings.model_validate(doc)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(the document)"
        given = "" if "secret" in where.lower() or "password" in where.lower() or "key" in where.lower() \
            else f" (got {str(first.get('input'))[:80]!r})" if first.get("type") != "missing" else ""
        raise ArchiveConfigError(f"--config {path}: {where}: {first['msg']}{given}") from None
