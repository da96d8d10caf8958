"""The S3 bucket client against the loopback S3 server: a missing object and an unreachable
endpoint are errors that name the bucket and never the key."""

from __future__ import annotations

import os
import re

import pytest

from drctl.cloud.s3_bucket import Bucket, BucketAccess, ObjectMissing, StoreUnavailable


@pytest.fixture
def store():
    from tests.support.object_store import ObjectStore

    with ObjectStore(regions=("dr",)) as s:
        yield s


def bucket(store) -> Bucket:
    from tests.support.object_store import ACCESS_KEY, SECRET_KEY

    name = store.bucket(f"wcdr-test-{os.urandom(4).hex()}")
    return Bucket(BucketAccess(store.endpoints["dr"].url, name, ACCESS_KEY, SECRET_KEY), timeout=2)


def test_objects_go_in_and_come_back_in_name_order(store):
    b = bucket(store)
    b.put_json("binlog/b/00000002.json", {"n": 2})
    b.put_bytes("binlog/a/00000001.seg", b"sealed")
    assert b.list("binlog/") == ["binlog/a/00000001.seg", "binlog/b/00000002.json"]
    assert b.get_json("binlog/b/00000002.json") == {"n": 2}


def test_a_missing_object_is_object_missing(store):
    with pytest.raises(ObjectMissing, match=re.escape("download status.json: no such object in bucket wcdr-test-")):
        bucket(store).get_json("status.json")


def test_an_endpoint_that_is_down_is_store_unavailable_naming_the_bucket_not_the_key(store):
    from tests.support.object_store import SECRET_KEY

    b = bucket(store)
    store.endpoints["dr"].down()
    with pytest.raises(StoreUnavailable) as err:
        b.put_bytes("x", b"y")
    assert f"bucket {b.access.bucket} at {b.access.endpoint} did not answer" in str(err.value)
    assert SECRET_KEY not in str(err.value) and SECRET_KEY not in repr(b.access)
