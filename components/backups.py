"""Point-in-time recovery's storage: the binlog archive bucket, in a region other than the primary's,
the keys that reach it and the key everything in it is sealed with (docs/backups.md).

- one private bucket (components/object_storage.py `BucketSet`, purpose `binlogs`) in the Object
  Storage region serving `backups.region` (default: the last region of the failover order);
- the archiver's key: read_write on that bucket only; drctl's key: read_only (`drctl restore` and
  `drctl status` read; nothing on an operator's laptop can delete the archive);
- the archive key: 32 bytes, derived from a generated password (a Pulumi secret; a `RandomId`
  would keep its bytes in the state as the resource id, in the clear), base64 as drctl reads it.

The archiver itself runs on the replica in the archive's region (`deployment()`, rendered into that
replica's user data by components/database.py and components/archive_host.py).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_random as random

from components.archive_host import ArchiverDeployment
from components.config import StackConfig
from components.object_storage import READ_ONLY, READ_WRITE, BucketSet, scoped_key


def archive_key(password: str) -> str:
    """The AES-256 key drctl.backup.sealing expects: 32 bytes, base64."""
    return base64.b64encode(hashlib.sha256(password.encode()).digest()).decode()


def check_archive_storage(config: StackConfig, storage_regions: Mapping[str, str]) -> None:
    """Refuse, before anything is made, an archive whose bucket would sit in the primary's region: a
    `backups.region` without Object Storage is served by the nearest region that has it, which may be
    the primary's own."""
    if not config.backups.enabled:
        return
    region, primary = config.archive_region, config.primary.region
    if storage_regions[region] == primary:
        raise pulumi.RunError(
            f"woocommerce-dr:backups.region: {region} has no Object Storage and the nearest region that has it is "
            f"the primary's, {primary}: the archive must survive losing it (got {region!r}; allowed: a DR region "
            f"whose Object Storage is not in {primary}, or backups.enabled false)")


class BinlogArchive(pulumi.ComponentResource):
    def __init__(self, name: str, config: StackConfig, storage_regions: Mapping[str, str],
                 opts: pulumi.ResourceOptions | None = None):
        """`storage_regions`: `object_storage.storage_regions(config)`, asked once before anything is made."""
        super().__init__("woocommerce-dr:index:BinlogArchive", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stack = pulumi.get_stack()
        self.config = config
        self.region = config.archive_region
        self.storage_region = storage_regions[self.region]
        self.bucket_set = BucketSet(f"{name}-bucket", "binlogs", config.domain, {self.region: self.storage_region},
                                    opts=child)
        self.bucket = self.bucket_set.buckets[self.region]
        self.archiver_key = scoped_key(f"{name}-archiver-key", f"wcdr-{stack}-binlogs-archiver",
                                       [(self.bucket, READ_WRITE)], opts=child)
        self.drctl_key = scoped_key(f"{name}-drctl-key", f"wcdr-{stack}-binlogs-drctl",
                                    [(self.bucket, READ_ONLY)], opts=child)
        seed = random.RandomPassword(f"{name}-archive-key", length=64, special=False, opts=child)
        self.archive_key = pulumi.Output.secret(seed.result.apply(archive_key))
        self.register_outputs({"bucket": self.bucket.resource.label, "region": self.region,
                               "storageRegion": self.storage_region})

    def deployment(self) -> ArchiverDeployment:
        """What the database tier renders onto the replica in this region so it runs the archiver
        (components/archive_host.py): the bucket with the archiver's read-write key, the archive key,
        the objectives, where drctl comes from and where it alerts."""
        config, source = self.config, self.config.automation.drctl_source
        if source is None:
            raise ValueError("backups need automation.drctlSource (components/config.py)")
        bucket = pulumi.Output.secret(pulumi.Output.all(
            self.bucket.resource.label, self.bucket.resource.s3_endpoint, self.archiver_key.access_key,
            self.archiver_key.secret_key).apply(lambda v: {
                "endpoint": v[1], "bucket": v[0], "accessKey": v[2], "secretKey": v[3],
                "region": self.storage_region}))
        return ArchiverDeployment(
            region=self.region, stack=pulumi.get_stack(), repo=source.repo, commit=source.commit,
            alert_webhook=config.traffic.alerts.webhook_url, bucket=bucket, archive_key=self.archive_key,
            backup_rpo_seconds=config.objectives.backup_rpo_seconds,
            base_every_hours=config.backups.base_every_hours, retention_days=config.backups.retention_days)

    def drctl_outputs(self) -> pulumi.Output[dict[str, Any]]:
        """The `backups` part of the drctl outputs contract (drctl.stack.outputs.BackupsOut)."""
        backups, objectives = self.config.backups, self.config.objectives

        def build(values: list) -> dict[str, Any]:
            label, endpoint, access_key, secret_key, key = values
            return {
                "region": self.region, "storageRegion": self.storage_region, "bucket": label, "endpoint": endpoint,
                "accessKey": access_key, "secretKey": secret_key, "archiveKey": key,
                "backupRpoSeconds": objectives.backup_rpo_seconds, "baseEveryHours": backups.base_every_hours,
                "retentionDays": backups.retention_days,
            }
        return pulumi.Output.all(self.bucket.resource.label, self.bucket.resource.s3_endpoint,
                                 self.drctl_key.access_key, self.drctl_key.secret_key, self.archive_key).apply(build)
