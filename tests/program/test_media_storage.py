"""The shop's media buckets and keys in the plan: one private bucket per region (the nearest Object
Storage region where a region has none), keys scoped to the buckets each needs, secrets kept
secret, and what the web nodes and drctl are given."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from components import media_storage, web_node
from drctl.plan.engine import Secret, contains_secret, unwrap
from drctl.stack.outputs import parse_outputs
from tests.support import harness
from tests.support.binaries import require

BUCKET = "linode:index/objectStorageBucket:ObjectStorageBucket"
KEY = "linode:index/objectStorageKey:ObjectStorageKey"
INSTANCE = "linode:index/instance:Instance"
ALL_BUT_OBJECT_STORAGE = ("Linodes", "NodeBalancers", "Cloud Firewall", "Metadata", "Managed Databases")


def buckets(run) -> dict[str, dict]:
    return {r.name.removeprefix("media-buckets-"): r.inputs for r in run.of_type(BUCKET)
            if r.name.startswith("media-buckets-")}  # not the binlog archive's (tests/program/test_backups.py)


def accesses(run, name: str) -> dict[str, str]:
    key = run.one(KEY, name)
    return {a["bucketName"]: a["permissions"] for a in unwrap(key.inputs["bucketAccesses"])}


def label(run, region: str) -> str:
    return buckets(run)[region]["label"]


@pytest.fixture(scope="module")
def prod():
    return harness.run_ok("prod")


@pytest.fixture(scope="module")
def three():
    return harness.run_ok(harness.three_regions())


def test_one_private_bucket_per_region_in_that_region(prod):
    assert {region: (b["region"], b["acl"]) for region, b in buckets(prod).items()} == {
        "us-east": ("us-east", "private"), "eu-west": ("eu-west", "private"),
    }
    assert label(prod, "us-east").startswith("wcdr-prod-media-us-east-")
    assert label(prod, "us-east") != label(prod, "eu-west")


def test_three_regions_get_three_buckets_and_three_node_keys(three):
    assert sorted(buckets(three)) == ["ap-south", "eu-west", "us-east"]
    assert sorted(k.name for k in three.of_type(KEY) if k.name.startswith("media-")) == [
        "media-ap-south-nodes-key", "media-drctl-key", "media-eu-west-nodes-key", "media-us-east-nodes-key"]


@pytest.mark.parametrize("variant", ["prod", "three"])
def test_a_regions_node_key_writes_its_own_bucket_and_only_reads_the_others(variant, prod, three):
    run = {"prod": prod, "three": three}[variant]
    regions = sorted(buckets(run))
    for region in regions:
        expected = {label(run, r): "read_write" if r == region else "read_only" for r in regions}
        assert accesses(run, f"media-{region}-nodes-key") == expected


def test_drctls_key_reaches_every_media_bucket_and_nothing_else(three):
    assert accesses(three, "media-drctl-key") == {label(three, r): "read_write" for r in buckets(three)}


def test_key_accesses_name_the_object_storage_region_of_each_bucket(prod):
    key = prod.one(KEY, "media-us-east-nodes-key")
    assert {a["region"] for a in unwrap(key.inputs["bucketAccesses"])} == {"us-east", "eu-west"}


def test_keys_are_secret_outputs(prod):
    for key in prod.of_type(KEY):
        assert isinstance(key.outputs["secretKey"], Secret)
        assert isinstance(key.outputs["accessKey"], Secret)


def test_a_region_without_object_storage_uses_the_nearest_region_that_has_it():
    run = harness.run_ok("prod", region_capabilities={"eu-west": ALL_BUT_OBJECT_STORAGE})
    assert buckets(run)["eu-west"]["region"] == "gb-lon"
    assert buckets(run)["us-east"]["region"] == "us-east"
    # Its own bucket all the same: a DR copy is never the primary's bucket.
    assert label(run, "eu-west").startswith("wcdr-prod-media-eu-west-")
    outputs = parse_outputs(unwrap(run.outputs["drctl"]), "test")
    assert outputs.media.bucket("eu-west").storage_region == "gb-lon"
    # The plan's outputs say which Object Storage region serves which shop region.
    assert unwrap(run.outputs["mediaBuckets"])["eu-west"] == {"bucket": label(run, "eu-west"), "storageRegion": "gb-lon"}


def test_no_object_storage_anywhere_near_fails_before_any_resource():
    lacking = {r: ALL_BUT_OBJECT_STORAGE for r in ("eu-west", "gb-lon", "nl-ams", "fr-par")}
    result = harness.run("prod", region_capabilities=lacking)
    assert result.error.splitlines() == [
        "the configured regions cannot keep the shop's files:",
        "woocommerce-dr:regions: neither region 'eu-west' nor its nearest regions offer Object Storage "
        "(got: none of eu-west, gb-lon, nl-ams, fr-par; allowed: a region with Object Storage within reach)",
    ]
    assert not [r for r in result.resources if r.custom]


def node_files(run, name: str) -> dict[str, str]:
    instance = run.one(INSTANCE, name)
    doc = yaml.safe_load(web_node.decode_user_data(unwrap(instance.inputs["metadatas"][0]["userData"])))
    return {f["path"]: f for f in doc["write_files"]}


def test_web_nodes_get_their_regions_key_and_every_bucket(prod):
    files = node_files(prod, "us-east-web-1")
    settings = json.loads(files["/etc/woocommerce-dr/media.json"]["content"])
    assert settings["region"] == "us-east"
    assert settings["buckets"] == {"us-east": f"media-us-east:{label(prod, 'us-east')}",
                                   "eu-west": f"media-eu-west:{label(prod, 'eu-west')}"}
    assert settings["replicator"] is False
    assert settings["replicate_interval_seconds"] == 75  # a quarter of the 300 s objective
    rclone = files["/etc/woocommerce-dr/media-rclone.conf"]
    assert rclone["permissions"] == "0640" and rclone["owner"] == "root:www-data"
    key = prod.one(KEY, "media-us-east-nodes-key")
    assert f"secret_access_key = {unwrap(key.outputs['secretKey'])}" in rclone["content"]
    assert "endpoint = https://us-east-1.linodeobjects.com" in rclone["content"]
    assert "endpoint = https://eu-west-1.linodeobjects.com" in rclone["content"]


def test_the_first_node_of_each_region_is_its_replicator(prod):
    for region in ("us-east", "eu-west"):
        settings = json.loads(node_files(prod, f"{region}-web-0")["/etc/woocommerce-dr/media.json"]["content"])
        assert settings["replicator"] is True


def test_a_dr_node_never_holds_a_key_that_writes_the_primarys_bucket(prod):
    rclone = node_files(prod, "eu-west-web-0")["/etc/woocommerce-dr/media-rclone.conf"]["content"]
    eu_key = prod.one(KEY, "media-eu-west-nodes-key")
    us_key = prod.one(KEY, "media-us-east-nodes-key")
    assert unwrap(eu_key.outputs["secretKey"]) in rclone
    assert unwrap(us_key.outputs["secretKey"]) not in rclone


def test_user_data_with_the_keys_stays_secret(prod):
    for instance in prod.of_type(INSTANCE):
        if "-web-" in instance.name:
            assert contains_secret(instance.inputs["metadatas"])


def test_nginx_and_php_share_one_upload_limit():
    run = harness.run_ok(harness.stack_file("prod", media={"maxUploadMegabytes": 24}))
    files = node_files(run, "us-east-web-0")
    assert "client_max_body_size 24m;" in files["/etc/nginx/snippets/woocommerce-dr-media.conf"]["content"]
    ini = files["/etc/woocommerce-dr/php-uploads.ini"]["content"]
    assert "upload_max_filesize = 24M" in ini and "post_max_size = 24M" in ini
    site = files["/etc/nginx/sites-available/woocommerce"]["content"]
    assert "client_max_body_size" not in site  # one place only: the media snippet it includes
    assert "include snippets/woocommerce-dr-media.conf;" in site


def test_default_upload_limit_lets_a_10_mb_image_through(prod):
    ini = node_files(prod, "us-east-web-0")["/etc/woocommerce-dr/php-uploads.ini"]["content"]
    assert "upload_max_filesize = 16M" in ini


def test_drctl_gets_the_buckets_its_key_and_the_objective(three):
    media = parse_outputs(unwrap(three.outputs["drctl"]), "test").media
    assert media.media_rpo_seconds == 300
    assert [r.region for r in media.regions] == ["us-east", "eu-west", "ap-south"]
    assert media.bucket("ap-south").endpoint == "ap-south-1.linodeobjects.com"
    drctl_key = three.one(KEY, "media-drctl-key")
    assert media.secret_key.get_secret_value() == unwrap(drctl_key.outputs["secretKey"])
    assert unwrap(drctl_key.outputs["secretKey"]) not in repr(media)


def test_media_rpo_objective_reaches_drctl_and_the_replicators():
    run = harness.run_ok(harness.stack_file("prod", objectives={"rtoSeconds": 300, "rpoSeconds": 15,
                                                                 "mediaRpoSeconds": 60}))
    assert parse_outputs(unwrap(run.outputs["drctl"]), "test").media.media_rpo_seconds == 60
    settings = json.loads(node_files(run, "eu-west-web-0")["/etc/woocommerce-dr/media.json"]["content"])
    assert settings["replicate_interval_seconds"] == 15


def test_the_media_php_files_parse(prod, tmp_path):
    php = require("php")
    files = node_files(prod, "us-east-web-0")
    for path in ("/usr/local/share/woocommerce-dr/mu-plugins/media-deletes.php",
                 "/usr/local/share/woocommerce-dr/media-status.php"):
        target = tmp_path / path.rsplit("/", 1)[1]
        target.write_text(files[path]["content"])
        subprocess.run([php, "-l", str(target)], check=True, capture_output=True)


def test_the_media_agent_is_valid_python_for_the_nodes(prod, tmp_path):
    agent = node_files(prod, "us-east-web-0")["/usr/local/sbin/woocommerce-dr-media-agent"]
    assert agent["permissions"] == "0755" and agent["content"].startswith("#!/usr/bin/env python3\n")
    compile(agent["content"], "woocommerce-dr-media-agent", "exec")


def test_web_nodes_with_media_are_a_cloud_config_that_cloud_init_accepts(prod, tmp_path):
    cloud_init = require("cloud-init")
    for name in ("us-east-web-0", "eu-west-web-1"):
        instance = prod.one(INSTANCE, name)
        path = tmp_path / f"{name}.yaml"
        path.write_text(web_node.decode_user_data(unwrap(instance.inputs["metadatas"][0]["userData"])))
        result = subprocess.run([cloud_init, "schema", "-c", str(path)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_php_limits_step_passes_shellcheck(tmp_path):
    shellcheck = require("shellcheck")
    (script,) = [c[2] for c in media_storage.RUNCMD if c[:2] == ["sh", "-c"]]
    path = tmp_path / "php-limits.sh"
    path.write_text("#!/bin/sh\n" + script + "\n")
    result = subprocess.run([shellcheck, str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_the_attic_retention_reaches_every_regions_agent(prod):
    for region in ("us-east", "eu-west"):
        settings = json.loads(node_files(prod, f"{region}-web-0")["/etc/woocommerce-dr/media.json"]["content"])
        assert settings["attic_retention_days"] == 30  # the default: a month
        assert settings["prune_interval_seconds"] == 3600


def test_media_attic_retention_days_is_the_agents_retention():
    run = harness.run_ok(harness.stack_file("prod", media={"atticRetentionDays": 90}))
    settings = json.loads(node_files(run, "eu-west-web-0")["/etc/woocommerce-dr/media.json"]["content"])
    assert settings["attic_retention_days"] == 90
