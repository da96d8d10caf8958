"""Linode Object Storage for any purpose: one bucket per shop region, keys scoped to named buckets.

Reusable by whatever needs buckets (the shop's media, components/media_storage.py; the database's
binlog archive later): `storage_regions(config)` decides, at deploy time, which Object Storage region
serves each shop region, `BucketSet` makes one bucket per shop region for one purpose, and
`scoped_key` makes a `linode.ObjectStorageKey` limited to exactly the buckets and permissions given.

Not every Linode region offers Object Storage (capability "Object Storage"), and capabilities
change, so they are asked of the Linode API with `linode.get_region` like components/preflight.py
does. A shop region without it is served by the nearest region that has it, from NEAREST below;
the choice is in the plan (each bucket's `region`) and in the drctl outputs (`media.regions[]`).
Two shop regions may then share one Object Storage region: each still gets its own bucket, so a
DR copy is never the same bucket as the primary's.

Bucket names are unique per Object Storage region across every Linode customer, so they carry a
short digest of the domain besides stack, purpose and region (`wcdr-prod-media-us-east-1a2b3c4d`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_linode as linode

from components.config import StackConfig

CAPABILITY = "Object Storage"

# Shop region -> nearest regions to try, in order, when it has no Object Storage itself.
NEAREST: dict[str, tuple[str, ...]] = {
    "us-east": ("us-iad", "us-ord", "us-southeast"),
    "us-central": ("us-southeast", "us-ord", "us-iad"),
    "us-southeast": ("us-mia", "us-iad", "us-ord"),
    "us-iad": ("us-east", "us-ord", "us-southeast"),
    "us-ord": ("us-iad", "us-east", "us-central"),
    "us-mia": ("us-southeast", "us-iad", "us-central"),
    "ca-central": ("us-ord", "us-iad", "us-east"),
    "us-west": ("us-lax", "us-sea"),
    "us-lax": ("us-west", "us-sea"),
    "us-sea": ("us-west", "us-lax"),
    "br-gru": ("us-mia", "us-southeast"),
    "eu-west": ("gb-lon", "nl-ams", "fr-par"),
    "gb-lon": ("eu-west", "nl-ams", "fr-par"),
    "eu-central": ("de-fra-2", "nl-ams", "fr-par"),
    "de-fra-2": ("eu-central", "nl-ams", "fr-par"),
    "fr-par": ("es-mad", "nl-ams", "de-fra-2"),
    "nl-ams": ("de-fra-2", "fr-par", "gb-lon"),
    "es-mad": ("fr-par", "it-mil"),
    "it-mil": ("fr-par", "de-fra-2", "es-mad"),
    "se-sto": ("nl-ams", "de-fra-2"),
    "ap-west": ("in-bom-2", "in-maa"),
    "in-maa": ("in-bom-2", "ap-west"),
    "in-bom-2": ("ap-west", "in-maa"),
    "ap-south": ("sg-sin-2", "id-cgk"),
    "sg-sin-2": ("ap-south", "id-cgk"),
    "id-cgk": ("sg-sin-2", "ap-south"),
    "ap-northeast": ("jp-tyo-3", "jp-osa"),
    "jp-osa": ("jp-tyo-3", "ap-northeast"),
    "jp-tyo-3": ("jp-osa", "ap-northeast"),
    "ap-southeast": ("au-mel",),
    "au-mel": ("ap-southeast",),
}

READ_ONLY = "read_only"
READ_WRITE = "read_write"
BUCKET_NAME_LIMIT = 63  # S3 bucket names: 3 to 63 characters


def offers_object_storage(region: str) -> bool:
    return CAPABILITY in (linode.get_region(id=region).capabilities or ())


def storage_regions(config: StackConfig) -> dict[str, str]:
    """Shop region -> Object Storage region serving it (itself when it offers Object Storage).
    Raises pulumi.RunError naming every region no candidate can serve, before anything is made."""
    chosen, missing = {}, []
    for spec in config.regions:
        region = spec.region
        candidates = (region, *NEAREST.get(region, ()))
        found = next((c for c in candidates if offers_object_storage(c)), None)
        if found is None:
            missing.append(
                f"woocommerce-dr:regions: neither region {region!r} nor its nearest regions offer Object Storage "
                f"(got: none of {', '.join(candidates)}; allowed: a region with Object Storage within reach)")
        else:
            chosen[region] = found
    if missing:
        raise pulumi.RunError("the configured regions cannot keep the shop's files:\n" + "\n".join(missing))
    return chosen


def bucket_name(stack: str, purpose: str, region: str, domain: str) -> str:
    digest = hashlib.sha256(domain.encode()).hexdigest()[:8]
    name = f"wcdr-{stack}-{purpose}-{region}-{digest}".lower()
    if len(name) > BUCKET_NAME_LIMIT:
        raise pulumi.RunError(
            f"the {purpose} bucket name {name!r} is {len(name)} characters (allowed: at most {BUCKET_NAME_LIMIT}); "
            "use a shorter stack name")
    return name


@dataclass(frozen=True)
class Bucket:
    """One shop region's bucket: its name, the Object Storage region holding it, its S3 endpoint."""

    shop_region: str
    storage_region: str
    name: str
    resource: linode.ObjectStorageBucket

    @property
    def s3_endpoint(self) -> pulumi.Output[str]:
        return self.resource.s3_endpoint


class BucketSet(pulumi.ComponentResource):
    """One private bucket per shop region for one purpose (`media`, `binlogs`, ...)."""

    def __init__(self, name: str, purpose: str, domain: str, storage: Mapping[str, str],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("woocommerce-dr:index:BucketSet", name, None, opts)
        stack = pulumi.get_stack()
        self.buckets: dict[str, Bucket] = {}
        for region, storage_region in storage.items():
            label = bucket_name(stack, purpose, region, domain)
            resource = linode.ObjectStorageBucket(
                f"{name}-{region}", label=label, region=storage_region, acl="private",
                opts=pulumi.ResourceOptions(parent=self))
            self.buckets[region] = Bucket(region, storage_region, label, resource)
        self.register_outputs({"buckets": {r: b.resource.label for r, b in self.buckets.items()}})


def scoped_key(name: str, label: str, accesses: Sequence[tuple[Bucket, str]],
               opts: pulumi.ResourceOptions | None = None) -> linode.ObjectStorageKey:
    """An access key limited to `accesses` ((bucket, READ_ONLY|READ_WRITE) pairs); its secret is a
    Pulumi secret (the provider marks `secret_key` so; `additional_secret_outputs` makes sure)."""
    return linode.ObjectStorageKey(
        name, label=label,
        bucket_accesses=[
            linode.ObjectStorageKeyBucketAccessArgs(
                bucket_name=bucket.resource.label, region=bucket.storage_region, permissions=permissions)
            for bucket, permissions in accesses
        ],
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
            additional_secret_outputs=["secret_key", "access_key"])),
    )
