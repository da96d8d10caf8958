"""The shop's uploads on Linode Object Storage: a bucket per region, the keys that reach them, and
what each web node needs to use them (templates/web-node/media-*).

Where media lives and why (README "The web tier"): WordPress writes uploads to the node's disk;
the media agent pushes them to the region's bucket within seconds; nginx serves a file missing on
the disk from the bucket, so every node of a region serves every upload; on the region's first node
the agent copies the primary region's bucket into a DR region's bucket every quarter of
`objectives.mediaRpoSeconds`. Which bucket takes writes follows the database role: each region
writes its own, and only the region whose database is the writable primary is copied from.

Keys, each a Pulumi secret, each limited to the buckets it needs:
- a region's web nodes: read_write on their own bucket, read_only on every other region's (a DR
  region reads the primary's to copy it; nobody can write another region's bucket);
- drctl: read_write on every media bucket (`drctl status` reads the lag markers, `drctl failback`
  copies what the DR region took during the outage home before traffic returns).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi

from components.config import StackConfig
from components.object_storage import READ_ONLY, READ_WRITE, BucketSet, scoped_key

TEMPLATES = Path(__file__).parent / "templates" / "web-node"
ETC = "/etc/woocommerce-dr"
STATE_DIR = "/var/lib/woocommerce-dr/media"
UPLOADS_DIR = "/var/www/woocommerce/wp-content/uploads"
RCLONE_CONFIG = f"{ETC}/media-rclone.conf"
PACKAGES = ("rclone", "python3")
PUSH_INTERVAL_SECONDS = 2  # uploads reach the bucket, and so every node of the region, within ~2 s
RECONCILE_INTERVAL_SECONDS = 60
# How often the region's first node prunes its bucket's attic (media.atticRetentionDays): a listing
# of attic/ an hour is nothing next to the retention of days.
PRUNE_INTERVAL_SECONDS = 3600


def remote_name(region: str) -> str:
    return f"media-{region}"


def replicate_interval(media_rpo_seconds: int) -> int:
    """A quarter of the objective: a copy that fails once is retried well within it."""
    return max(5, media_rpo_seconds // 4)


@dataclass(frozen=True)
class BucketAccess:
    """A bucket as a node or drctl reaches it (plain values, known at apply time)."""

    region: str  # the shop region it belongs to
    storage_region: str  # the Object Storage region that holds it
    name: str
    endpoint: str  # host name of the S3 endpoint, such as us-east-1.linodeobjects.com


@dataclass(frozen=True)
class MediaNode:
    """One web node's media settings; `access_key`/`secret_key` are the region's node key."""

    region: str
    buckets: tuple[BucketAccess, ...]
    access_key: str
    secret_key: str
    replicator: bool  # the region's first node: heartbeat or replication, by database role
    max_upload_megabytes: int
    media_rpo_seconds: int
    attic_retention_days: int = 30  # media.atticRetentionDays


def rclone_config(buckets: tuple[BucketAccess, ...], access_key: str, secret_key: str) -> str:
    """An rclone config with one S3 remote per region (`media-<region>`), all with the same key."""
    sections = []
    for b in buckets:
        endpoint = b.endpoint if "://" in b.endpoint else f"https://{b.endpoint}"
        sections.append("\n".join([
            f"[{remote_name(b.region)}]", "type = s3", "provider = Other", "env_auth = false",
            f"access_key_id = {access_key}", f"secret_access_key = {secret_key}",
            f"endpoint = {endpoint}", "region = us-east-1", "acl = private", "",
        ]))
    return "\n".join(sections)


def agent_settings(node: MediaNode, uploads_dir: str = UPLOADS_DIR, state_dir: str = STATE_DIR,
                   config_path: str = RCLONE_CONFIG, healthz_url: str = "http://127.0.0.1/healthz") -> dict[str, Any]:
    return {
        "region": node.region,
        "uploads_dir": uploads_dir,
        "state_dir": state_dir,
        "rclone_config": config_path,
        "buckets": {b.region: f"{remote_name(b.region)}:{b.name}" for b in node.buckets},
        "replicator": node.replicator,
        "healthz_url": healthz_url,
        "push_interval_seconds": PUSH_INTERVAL_SECONDS,
        "reconcile_interval_seconds": RECONCILE_INTERVAL_SECONDS,
        "replicate_interval_seconds": replicate_interval(node.media_rpo_seconds),
        "media_rpo_seconds": node.media_rpo_seconds,
        "attic_retention_days": node.attic_retention_days,
        "prune_interval_seconds": PRUNE_INTERVAL_SECONDS,
    }


def render(template: str, megabytes: int) -> str:
    return (TEMPLATES / template).read_text().replace("@MB@", str(megabytes))


def node_files(node: MediaNode) -> list[dict[str, str]]:
    """cloud-init write_files entries for one web node (the rclone config holds the key: 0640,
    readable by www-data, which the agent and the bucket server run as)."""
    own = next(b for b in node.buckets if b.region == node.region)
    settings = agent_settings(node)
    env = {"MEDIA_SOURCE": f"{remote_name(own.region)}:{own.name}/uploads"}

    def file(path: str, content: str, permissions: str = "0644", owner: str = "root:root") -> dict[str, str]:
        return {"path": path, "content": content, "owner": owner, "permissions": permissions}

    return [
        file(RCLONE_CONFIG, rclone_config(node.buckets, node.access_key, node.secret_key), "0640", "root:www-data"),
        file(f"{ETC}/media.json", json.dumps(settings, indent=2) + "\n"),
        file(f"{ETC}/media.env", "".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items())),
        file("/usr/local/sbin/woocommerce-dr-media-agent", (TEMPLATES / "media-agent.py").read_text(), "0755"),
        file("/etc/systemd/system/woocommerce-dr-media-agent.service",
             (TEMPLATES / "woocommerce-dr-media-agent.service").read_text()),
        file("/etc/systemd/system/woocommerce-dr-media-serve.service",
             (TEMPLATES / "woocommerce-dr-media-serve.service").read_text()),
        file("/etc/nginx/snippets/woocommerce-dr-media.conf", render("nginx-media.conf", node.max_upload_megabytes)),
        file(f"{ETC}/php-uploads.ini", render("php-uploads.ini", node.max_upload_megabytes)),
        file("/usr/local/share/woocommerce-dr/mu-plugins/media-deletes.php",
             (TEMPLATES / "media-deletes.php").read_text()),
    ]


# Before the site's bootstrap: the state folder for the agent and the mu-plugin's spool, PHP's
# limits in every installed PHP-FPM (Ubuntu 24.04 has 8.3; the glob spares a version pin), then
# the bucket server and the agent.
RUNCMD = (
    ["install", "-d", "-o", "www-data", "-g", "www-data", "-m", "0755", STATE_DIR, f"{STATE_DIR}/deletes"],
    ["sh", "-c", f"for d in /etc/php/*/fpm/conf.d; do ln -sf {ETC}/php-uploads.ini \"$d/90-woocommerce-dr-uploads.ini\"; "
                 "done; systemctl restart 'php*-fpm.service'"],
    ["systemctl", "daemon-reload"],
    ["systemctl", "enable", "--now", "woocommerce-dr-media-serve.service", "woocommerce-dr-media-agent.service"],
)


class MediaStorage(pulumi.ComponentResource):
    """The media buckets of every region and the keys that reach them."""

    def __init__(self, name: str, config: StackConfig, storage_regions: Mapping[str, str],
                 opts: pulumi.ResourceOptions | None = None):
        """`storage_regions`: `object_storage.storage_regions(config)`, asked before anything is made."""
        super().__init__("woocommerce-dr:index:MediaStorage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stack = pulumi.get_stack()
        self.config = config
        self.storage_regions = dict(storage_regions)
        self.bucket_set = BucketSet(f"{name}-buckets", "media", config.domain, self.storage_regions, opts=child)
        buckets = self.bucket_set.buckets
        self.node_keys = {
            region: scoped_key(
                f"{name}-{region}-nodes-key", f"wcdr-{stack}-media-{region}-nodes",
                [(b, READ_WRITE if r == region else READ_ONLY) for r, b in buckets.items()], opts=child)
            for region in buckets
        }
        self.drctl_key = scoped_key(f"{name}-drctl-key", f"wcdr-{stack}-media-drctl",
                                    [(b, READ_WRITE) for b in buckets.values()], opts=child)
        self.register_outputs({
            "buckets": {r: b.resource.label for r, b in buckets.items()},
            "storageRegions": self.storage_regions,
        })

    def accesses(self) -> pulumi.Output[list[dict[str, str]]]:
        """Every bucket as plain values, once known: [{region, storage_region, name, endpoint}]."""
        return pulumi.Output.all(*[
            pulumi.Output.all(b.shop_region, b.storage_region, b.resource.label, b.resource.s3_endpoint).apply(
                lambda v: {"region": v[0], "storage_region": v[1], "name": v[2], "endpoint": v[3]})
            for b in self.bucket_set.buckets.values()
        ])

    def node_inputs(self, region: str) -> dict[str, Any]:
        """What the web tier needs to render a node's media files (secret parts stay secret)."""
        key = self.node_keys[region]
        return {"media_buckets": self.accesses(), "media_access_key": key.access_key,
                "media_secret_key": key.secret_key,
                "media_attic_retention_days": self.config.media.attic_retention_days}

    def drctl_outputs(self) -> pulumi.Output[dict[str, Any]]:
        """The `media` part of the drctl outputs contract (drctl.stack.outputs.MediaOut)."""
        def build(values: list) -> dict[str, Any]:
            accesses, access_key, secret_key = values
            return {
                "mediaRpoSeconds": self.config.objectives.media_rpo_seconds,
                "accessKey": access_key, "secretKey": secret_key,
                "regions": [{"region": a["region"], "storageRegion": a["storage_region"], "bucket": a["name"],
                             "endpoint": a["endpoint"]} for a in accesses],
            }
        return pulumi.Output.all(self.accesses(), self.drctl_key.access_key, self.drctl_key.secret_key).apply(build)


def media_node(region: str, replicator: bool, config_values: Mapping[str, Any], max_upload_megabytes: int,
               media_rpo_seconds: int) -> MediaNode:
    """A MediaNode from the resolved values of `MediaStorage.node_inputs`."""
    return MediaNode(
        region=region,
        buckets=tuple(BucketAccess(b["region"], b["storage_region"], b["name"], b["endpoint"])
                      for b in config_values["media_buckets"]),
        access_key=config_values["media_access_key"], secret_key=config_values["media_secret_key"],
        replicator=replicator, max_upload_megabytes=max_upload_megabytes, media_rpo_seconds=media_rpo_seconds,
        attic_retention_days=config_values["media_attic_retention_days"],
    )
