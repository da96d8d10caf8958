"""The binlog archive as `drctl status` sees it: how old its newest transaction is and when the last
base backup finished, read from the archive bucket with drctl's read-only key.

The archiver (drctl/backup/archiver.py) rewrites `status.json` after every piece it ships; base
backups write `base/<stamp>/manifest.json` last. The archive lag is now minus the binlog time of
the newest archived transaction: the primary's heartbeat writes a transaction every second, so on a
healthy stack it stays within a few seconds of the archiver's piece period, whatever the shop does.
The names of the objects are the archive's layout, owned here so drctl/backup and drctl/runbook
read one definition.
"""

from __future__ import annotations

from typing import Any

from drctl.cloud.s3_bucket import Bucket, BucketAccess, ObjectMissing, StoreUnavailable
from drctl.stack.outputs import BackupsOut

STATUS = "status.json"
BASE_PREFIX = "base/"
BINLOG_PREFIX = "binlog/"
BASE_MANIFEST = "manifest.json"


def archive_bucket(backups: BackupsOut, timeout: float = 10) -> Bucket:
    return Bucket(BucketAccess(backups.endpoint, backups.bucket, backups.access_key.get_secret_value(),
                               backups.secret_key.get_secret_value(), backups.storage_region), timeout=timeout)


def archive_status(bucket: Bucket, now: float) -> dict[str, Any]:
    """{bucket, flavour, lastTransactionTime, lagSeconds, updatedAt, streamingFrom, gap, lastBase: {stamp,
    takenAt, ageSeconds, gtidPos} | None}, or {bucket, error} when the bucket cannot be read.
    `flavour`: whose binlog the archive holds, "mariadb" or "mysql", as status.json (else the last
    base backup's manifest) says; documents written before MySQL was archived name none: MariaDB;
    None when the archive holds nothing yet."""
    doc: dict[str, Any] = {"bucket": bucket.access.bucket}
    try:
        try:
            status = bucket.get_json(STATUS)
        except ObjectMissing:
            status = None
        manifests = [n for n in bucket.list(BASE_PREFIX) if n.endswith("/" + BASE_MANIFEST)]
        base = bucket.get_json(manifests[-1]) if manifests else None
    except (StoreUnavailable, ObjectMissing, ValueError) as err:
        return {**doc, "error": str(err)}
    last = status.get("lastTransactionTime") if status else None
    named = status if status is not None else base
    doc.update({
        "flavour": None if named is None else named.get("flavour") or "mariadb",
        "lastTransactionTime": last,
        "lagSeconds": None if last is None else max(0.0, now - float(last)),
        "updatedAt": status.get("updatedAt") if status else None,
        "streamingFrom": status.get("streamingFrom") if status else None,
        "gap": status.get("gap") if status else None,
        "lastBase": None if base is None else {
            "stamp": base["stamp"], "takenAt": base["takenAt"], "gtidPos": base["gtidPos"],
            "ageSeconds": max(0.0, now - float(base["takenAt"]))},
    })
    return doc


def archive_problems(doc: dict[str, Any] | None, backups: BackupsOut, database: str | None = None) -> list[str]:
    """What `drctl status` counts against the verdict. `database`: the family of the stack's database
    servers as they answer ("mariadb" or "mysql"; None when none answers): an archive of the other
    family cannot be restored to the shop's data, nor can the archiver extend it."""
    if doc is None:
        return []
    if "error" in doc:
        return [f"binlog archive unreadable: {doc['error']}"]
    problems = []
    if database is not None and doc.get("flavour") not in (None, database):
        problems.append(f"binlog archive in {doc['bucket']} holds a {doc['flavour']} binlog but the stack's database "
                        f"is {database}: it is not this stack's archive (backups.bucket), or it predates a change of "
                        "database server family")
    lag, rpo = doc["lagSeconds"], backups.backup_rpo_seconds
    if lag is None:
        problems.append(f"binlog archive: no transaction archived yet in {doc['bucket']}")
    elif lag > rpo:
        problems.append(f"binlog archive: newest archived transaction is {lag:.0f} s old, beyond the backup "
                        f"recovery point objective ({rpo} s, objectives.backupRpoSeconds)")
    if doc.get("gap"):
        problems.append(f"binlog archive has a gap: {doc['gap']}")
    base, every = doc["lastBase"], backups.base_every_hours * 3600
    if base is None:
        problems.append("binlog archive: no base backup yet: nothing can be restored")
    elif base["ageSeconds"] > 2 * every:
        problems.append(f"binlog archive: last base backup {base['stamp']} is {base['ageSeconds'] / 3600:.1f} h old "
                        f"(one is due every {backups.base_every_hours} h, backups.baseEveryHours)")
    return problems
