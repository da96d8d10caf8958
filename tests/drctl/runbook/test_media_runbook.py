"""Media in the runbook. Failback brings the outage's uploads home: the copy runs before the
switchover and again after the current primary is fenced, before the home region is promoted and
traffic returns; status prints each region's bucket and lag. (The copy and the lag themselves run on
a real S3 server and rclone in tests/drctl/cloud/test_object_storage.py.)"""

from __future__ import annotations

from types import SimpleNamespace

from pydantic import SecretStr

from drctl.runbook import failback
from drctl.stack.outputs import MediaOut, MediaRegionOut

MEDIA = MediaOut(media_rpo_seconds=300, access_key=SecretStr("a"), secret_key=SecretStr("s"),
                 regions=(MediaRegionOut(region="us-east", storage_region="us-east", bucket="b1", endpoint="e1"),
                          MediaRegionOut(region="eu-west", storage_region="eu-west", bucket="b2", endpoint="e2")))
PLAN = {"from": "eu-west", "to": "us-east", "liftFence": [], "repoint": []}


def step_names(media):
    # Building the steps only looks servers up; nothing runs.
    rb = SimpleNamespace(outputs=SimpleNamespace(media=media), server=lambda region: SimpleNamespace(region=region))
    opts = failback.FailbackOptions(to="us-east")
    return [s.name for s in failback.plan_steps(rb, None, PLAN, opts)]


def test_media_comes_home_before_the_switchover_and_again_between_fence_and_promote():
    names = step_names(MEDIA)
    assert names.index("catch-up") < names.index("media-home") < names.index("switch-fence-primary")
    assert names.index("switch-catch-up") < names.index("switch-media-home") < names.index("switch-promote")
    assert names.index("switch-media-home") < names.index("switch-switch-traffic")


def test_a_stack_without_media_buckets_has_no_media_steps():
    assert not [n for n in step_names(None) if "media" in n]


def test_status_shows_each_regions_bucket_its_object_storage_region_and_lag():
    from drctl.runbook.status import media_lines

    lines = media_lines({
        "us-east": {"bucket": "b1", "storageRegion": "us-east", "role": "primary", "heartbeatAgeSeconds": 1.5},
        "eu-west": {"bucket": "b2", "storageRegion": "gb-lon", "role": "copy", "source": "us-east", "lagSeconds": 40.2},
        "ap-south": {"bucket": "b3", "storageRegion": "ap-south", "error": "rclone cat ...: connection refused"},
    })
    assert lines[1:] == [
        "media (uploads bucket per region):",
        "  us-east        b1 (us-east): primary, heartbeat 1.5s old",
        "  eu-west        b2 (gb-lon): copy of us-east, lag 40.2s",
        "  ap-south       b3 (ap-south): unreadable: rclone cat ...: connection refused",
    ]
