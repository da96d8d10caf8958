"""The attic's retention (media.atticRetentionDays), for real: the web node's media agent
(components/templates/web-node/media-agent.py) and Debian's rclone against a real S3 server on
loopback. What a delete or a copy moved to `attic/<time>[-kind]/` goes once it is older than the
retention, by the time in the folder's name; nothing outside the attic is ever touched."""

from __future__ import annotations

import calendar
import json
import threading
import time
from importlib.machinery import SourceFileLoader
from importlib.util import module_from_spec, spec_from_loader
from pathlib import Path

import pytest

from components import media_storage
from components.media_storage import BucketAccess, MediaNode
from tests.support.binaries import require
from tests.support.object_store import ACCESS_KEY, SECRET_KEY, ObjectStore

pytestmark = pytest.mark.integration

NOW = calendar.timegm((2026, 11, 29, 12, 0, 0, 0, 0, 0))
DAY = 86400


def load_agent():
    loader = SourceFileLoader("media_agent", str(media_storage.TEMPLATES / "media-agent.py"))
    module = module_from_spec(spec_from_loader("media_agent", loader))
    loader.exec_module(module)
    return module


agent = load_agent()


def stamp(days_ago: float) -> str:
    return agent.attic_stamp(NOW - days_ago * DAY)


@pytest.fixture
def bucket(tmp_path: Path):
    """(rclone, "remote:bucket", store, bucket name, a work folder) for one region's media bucket."""
    with ObjectStore(regions=("us-east",)) as store:
        name = store.bucket("wcdr-test-media-us-east")
        access = BucketAccess("us-east", "us-east", name, store.endpoints["us-east"].url)
        config = tmp_path / "media-rclone.conf"
        config.write_text(media_storage.rclone_config((access,), ACCESS_KEY, SECRET_KEY))
        yield agent.Rclone(require("rclone"), str(config)), f"media-us-east:{name}", store, name, tmp_path


def put(store: ObjectStore, bucket: str, *keys: str, mtime: float | None = None) -> None:
    metadata = {"mtime": str(mtime)} if mtime is not None else {}
    for key in keys:
        store.client().put_object(Bucket=bucket, Key=key, Body=key.encode(), Metadata=metadata)


def test_folders_older_than_the_retention_go_and_everything_else_stays(bucket):
    rclone, remote, store, name, work = bucket
    old = [f"attic/{stamp(31)}/2026/10/a.jpg", f"attic/{stamp(40)}-failback/2026/09/b.jpg",
           f"attic/{stamp(45)}-deleted/2026/09/c.jpg", f"attic/{stamp(45)}-deleted/2026/09/c-150x150.jpg"]
    kept = [f"attic/{stamp(29)}/2026/10/a.jpg", f"attic/{stamp(1)}-deleted/2026/11/d.jpg",
            # live objects, one with the same path as an old attic object, and the lag markers
            "uploads/2026/10/a.jpg", f"uploads/attic/{stamp(90)}/e.jpg", "dr/heartbeat.json", "dr/replicated.json",
            # folders not named as the agent and drctl name them: never ours to remove
            "attic/keep-me/f.jpg", "attic/20260101/g.jpg"]
    put(store, name, *old, *kept)
    result = agent.prune_attic(rclone, remote, 30, NOW, work)
    assert store.keys(name) == set(kept)
    assert (result["removed_folders"], result["kept_folders"]) == (3, 4)


def test_age_is_the_time_in_the_attic_not_the_files_own_time(bucket):
    rclone, remote, store, name, work = bucket
    # A product image from 2019, deleted yesterday: one day in the attic.
    recent = f"attic/{stamp(1)}-deleted/2019/05/old-product.jpg"
    put(store, name, recent, mtime=calendar.timegm((2019, 5, 1, 0, 0, 0, 0, 0, 0)))
    assert agent.prune_attic(rclone, remote, 30, NOW, work)["removed_folders"] == 0
    assert store.keys(name) == {recent}


def test_pruning_again_or_on_two_nodes_at_once_is_harmless(bucket):
    rclone, remote, store, name, work = bucket
    put(store, name, *(f"attic/{stamp(60 + i)}/2026/0{i % 9 + 1}/x-{j}.jpg" for i in range(5) for j in range(20)))
    put(store, name, "uploads/2026/11/live.jpg")
    results, errors = [], []

    def prune():
        try:
            results.append(agent.prune_attic(rclone, remote, 30, NOW, work))
        except Exception as err:  # reported by the assertion below
            errors.append(err)

    nodes = [threading.Thread(target=prune) for _ in range(2)]
    for node in nodes:
        node.start()
    for node in nodes:
        node.join()
    assert errors == [] and len(results) == 2
    assert store.keys(name) == {"uploads/2026/11/live.jpg"}
    assert agent.prune_attic(rclone, remote, 30, NOW, work)["removed_folders"] == 0
    assert store.keys(name) == {"uploads/2026/11/live.jpg"}


def test_an_empty_or_missing_attic_is_nothing_to_do(bucket):
    rclone, remote, _, _, work = bucket
    assert agent.prune_attic(rclone, remote, 30, NOW, work) == {"pruned_at": NOW, "removed_folders": 0,
                                                                "kept_folders": 0}


def test_the_regions_first_node_prunes_with_the_programs_settings_once_an_interval(bucket, tmp_path):
    rclone, _, store, name, _ = bucket
    access = BucketAccess("us-east", "us-east", name, store.endpoints["us-east"].url)
    node = MediaNode(region="us-east", buckets=(access,), access_key=ACCESS_KEY, secret_key=SECRET_KEY,
                     replicator=True, max_upload_megabytes=16, media_rpo_seconds=300, attic_retention_days=30)
    (tmp_path / "uploads").mkdir()
    settings = media_storage.agent_settings(node, uploads_dir=str(tmp_path / "uploads"), state_dir=str(tmp_path / "state"),
                                            config_path=rclone.config, healthz_url="http://127.0.0.1:9/healthz")
    settings["rclone"] = rclone.binary
    now = time.time()
    expired, fresh = f"attic/{agent.attic_stamp(now - 31 * DAY)}/a.jpg", f"attic/{agent.attic_stamp(now - DAY)}/b.jpg"
    put(store, name, expired, fresh)
    node_agent = agent.Agent(json.loads(json.dumps(settings)))
    status = node_agent.cycle()
    assert store.keys(name, "attic/") == {fresh}
    assert status["attic"]["removed_folders"] == 1
    # Within the hour the next pass does not list the attic again.
    later = f"attic/{agent.attic_stamp(now - 40 * DAY)}/c.jpg"
    put(store, name, later)
    node_agent.cycle()
    assert later in store.keys(name, "attic/")
    # Another node of the region (not the replicator) never prunes.
    other = agent.Agent({**settings, "replicator": False, "state_dir": str(tmp_path / "state-b")})
    other.cycle()
    assert later in store.keys(name, "attic/")
