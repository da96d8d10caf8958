"""The binlog archive in the plan: one private bucket in a DR region (never the primary's), the
archiver's key writes only it, drctl's key only reads it, the archive key is a secret, and drctl is
told where everything is."""

from __future__ import annotations

import base64

import pytest

from drctl.plan.engine import Secret, unwrap
from drctl.stack.outputs import parse_outputs
from tests.support import harness

BUCKET = "linode:index/objectStorageBucket:ObjectStorageBucket"
KEY = "linode:index/objectStorageKey:ObjectStorageKey"


@pytest.fixture(scope="module")
def prod():
    return harness.run_ok("prod")


@pytest.fixture(scope="module")
def three_in_ap_south():
    return harness.run_ok(harness.three_regions(backups={"region": "ap-south", "retentionDays": 30}))


def archive_buckets(run) -> list:
    return [r for r in run.of_type(BUCKET) if r.name.startswith("binlogs-")]


def accesses(run, name: str) -> dict[str, str]:
    return {a["bucketName"]: a["permissions"] for a in unwrap(run.one(KEY, name).inputs["bucketAccesses"])}


def test_the_archive_is_one_private_bucket_in_the_first_dr_region_by_default(prod):
    (bucket,) = archive_buckets(prod)
    assert (bucket.inputs["region"], bucket.inputs["acl"]) == ("eu-west", "private")
    assert bucket.inputs["label"].startswith("wcdr-prod-binlogs-eu-west-")


def test_backups_region_puts_it_elsewhere(three_in_ap_south):
    (bucket,) = archive_buckets(three_in_ap_south)
    assert bucket.inputs["region"] == "ap-south"


def test_the_archiver_writes_the_archive_and_drctl_only_reads_it(prod):
    (bucket,) = archive_buckets(prod)
    label = bucket.inputs["label"]
    assert accesses(prod, "binlogs-archiver-key") == {label: "read_write"}
    assert accesses(prod, "binlogs-drctl-key") == {label: "read_only"}


def test_drctl_gets_the_bucket_its_key_the_archive_key_and_the_objectives(three_in_ap_south):
    backups = parse_outputs(unwrap(three_in_ap_south.outputs["drctl"]), "test").backups
    assert (backups.region, backups.storage_region) == ("ap-south", "ap-south")
    assert (backups.backup_rpo_seconds, backups.base_every_hours, backups.retention_days) == (300, 24, 30)
    assert backups.endpoint == "ap-south-1.linodeobjects.com"
    assert len(base64.b64decode(backups.archive_key.get_secret_value())) == 32
    drctl_key = three_in_ap_south.one(KEY, "binlogs-drctl-key")
    assert backups.secret_key.get_secret_value() == unwrap(drctl_key.outputs["secretKey"])
    assert backups.archive_key.get_secret_value() not in repr(backups)


def test_the_drctl_output_holding_the_archive_key_is_secret(prod):
    assert isinstance(prod.outputs["drctl"], Secret)


def test_backups_disabled_makes_no_bucket_and_tells_drctl_so():
    run = harness.run_ok(harness.stack_file("prod", backups={"enabled": False}))
    assert archive_buckets(run) == []
    assert parse_outputs(unwrap(run.outputs["drctl"]), "test").backups is None


def test_an_archive_region_served_by_the_primarys_object_storage_is_refused_before_anything():
    # eu-west without Object Storage is served by gb-lon, here the primary's own region.
    lacking = ("Linodes", "NodeBalancers", "Cloud Firewall", "Metadata", "Managed Databases")
    stack = harness.stack_file("prod", regions=[{"region": "gb-lon"}, {"region": "eu-west"}])
    result = harness.run(stack, region_capabilities={"eu-west": lacking})
    assert result.error == (
        "woocommerce-dr:backups.region: eu-west has no Object Storage and the nearest region that has it is the "
        "primary's, gb-lon: the archive must survive losing it (got 'eu-west'; allowed: a DR region whose Object "
        "Storage is not in gb-lon, or backups.enabled false)")
    assert not [r for r in result.resources if r.custom]
    assert harness.run(harness.stack_file("prod", regions=[{"region": "gb-lon"}, {"region": "eu-west"}],
                                          backups={"enabled": False}), region_capabilities={"eu-west": lacking}).error is None
