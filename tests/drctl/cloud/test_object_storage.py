"""drctl's view of the media buckets, against a real S3 server on loopback and the real rclone:
lag per region for `drctl status`, and the copy home `drctl failback` makes."""

from __future__ import annotations

import json
import re

import pytest
from pydantic import SecretStr

from drctl.cloud.object_storage import MediaBuckets, ObjectStorageError, media_lag, media_problems
from drctl.stack.outputs import MediaOut, MediaRegionOut
from tests.support.binaries import require
from tests.support.object_store import ACCESS_KEY, SECRET_KEY, ObjectStore

pytestmark = pytest.mark.integration

REGIONS = ("us-east", "eu-west", "ap-south")


@pytest.fixture
def store():
    require("rclone")
    with ObjectStore(regions=REGIONS) as store:
        for region in REGIONS:
            store.bucket(f"media-{region}")
        yield store


@pytest.fixture
def buckets(store):
    media = MediaOut(media_rpo_seconds=300, access_key=SecretStr(ACCESS_KEY), secret_key=SecretStr(SECRET_KEY),
                     regions=tuple(MediaRegionOut(region=r, storage_region=r, bucket=f"media-{r}",
                                                  endpoint=store.endpoints[r].url) for r in REGIONS))
    return MediaBuckets(media)


def put(store, region: str, key: str, body: bytes | dict) -> None:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    store.client().put_object(Bucket=f"media-{region}", Key=key, Body=data)


def test_lag_is_now_minus_the_source_heartbeat_each_copy_saw(store, buckets):
    put(store, "us-east", "dr/heartbeat.json", {"region": "us-east", "written_at": 1000.0})
    put(store, "eu-west", "dr/replicated.json", {"source": "us-east", "source_heartbeat": 990.0, "completed_at": 995})
    lag = media_lag(buckets, "us-east", now=1002.0)
    assert lag["us-east"]["heartbeatAgeSeconds"] == 2.0
    assert (lag["eu-west"]["source"], lag["eu-west"]["lagSeconds"]) == ("us-east", 12.0)
    assert lag["ap-south"]["lagSeconds"] is None
    assert media_problems(lag, "us-east", 300) == ["ap-south: media never copied here: lag unknown"]


def test_lag_beyond_the_objective_and_a_stale_primary_heartbeat_are_problems(store, buckets):
    put(store, "us-east", "dr/heartbeat.json", {"region": "us-east", "written_at": 0.0})
    for region in ("eu-west", "ap-south"):
        put(store, region, "dr/replicated.json", {"source": "us-east", "source_heartbeat": 500.0})
    problems = media_problems(media_lag(buckets, "us-east", now=1000.0), "us-east", 300)
    assert problems == [
        "us-east: media heartbeat 1000 s old: the primary region's media agent is not writing to its bucket",
        "eu-west: media lag 500 s, beyond objectives.mediaRpoSeconds (300 s)",
        "ap-south: media lag 500 s, beyond objectives.mediaRpoSeconds (300 s)",
    ]


def test_a_copy_from_a_region_that_is_not_the_primary_is_a_problem(store, buckets):
    put(store, "eu-west", "dr/heartbeat.json", {"region": "eu-west", "written_at": 1000.0})
    put(store, "us-east", "dr/replicated.json", {"source": "ap-south", "source_heartbeat": 999.0})
    put(store, "ap-south", "dr/replicated.json", {"source": "eu-west", "source_heartbeat": 999.0})
    assert media_problems(media_lag(buckets, "eu-west", now=1000.0), "eu-west", 300) == [
        "us-east: media copied from ap-south, not from the primary in eu-west"]


def test_an_unreachable_bucket_is_reported_not_raised_and_never_shows_the_key(store, buckets):
    store.endpoints["eu-west"].down()
    lag = media_lag(buckets, "us-east", now=1000.0)
    assert "error" in lag["eu-west"]
    problems = media_problems(lag, "us-east", 300)
    assert any(p.startswith("eu-west: media bucket unreadable: rclone cat") for p in problems)
    assert SECRET_KEY not in json.dumps(lag) and ACCESS_KEY not in json.dumps(lag)


def test_copy_home_brings_outage_uploads_home_and_moves_what_it_replaces_to_the_attic(store, buckets):
    put(store, "us-east", "uploads/2026/11/kept.jpg", b"kept")
    put(store, "us-east", "uploads/2026/11/deleted-during-outage.jpg", b"old")
    put(store, "eu-west", "uploads/2026/11/kept.jpg", b"kept")
    put(store, "eu-west", "uploads/2026/11/during-outage.jpg", b"new")
    put(store, "eu-west", "dr/heartbeat.json", {"region": "eu-west", "written_at": 5000.0})
    marker = buckets.copy_home("eu-west", "us-east", stamp=6000.0)
    home = store.keys("media-us-east")
    assert {k for k in home if k.startswith("uploads/")} == {"uploads/2026/11/kept.jpg",
                                                              "uploads/2026/11/during-outage.jpg"}
    assert [k for k in home if k.startswith("attic/")] == [
        "attic/19700101T014000Z-failback/2026/11/deleted-during-outage.jpg"]
    assert (marker["source"], marker["source_heartbeat"]) == ("eu-west", 6000.0)
    assert json.loads(store.read("media-us-east", "dr/replicated.json"))["source"] == "eu-west"


def test_copy_home_from_an_unreachable_bucket_fails_with_the_bucket_named(store, buckets):
    store.endpoints["eu-west"].down()
    with pytest.raises(ObjectStorageError, match=re.escape("rclone cat drctlmedia1:media-eu-west/dr/heartbeat.json")):
        buckets.copy_home("eu-west", "us-east", stamp=6000.0)
    assert store.keys("media-us-east") == set()


def test_no_bucket_for_a_region_is_a_clear_error(buckets):
    with pytest.raises(ObjectStorageError, match="no media bucket for region 'eu-central'"):
        buckets.path("eu-central")
