"""The shop's uploads on real parts: nginx with the program's uploads snippet, the media agent and
rclone serving the bucket, against a real S3 server on loopback (tests/support/media_nodes.py)."""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.support.media_nodes import MediaShop
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

IMAGE = "2026/11/product-1.jpg"


@pytest.fixture
def shop(tmp_path):
    shop = MediaShop(tmp_path)
    yield shop
    shop.close()


def served(node, path: str, content: bytes) -> bool:
    answer = node.get(f"/wp-content/uploads/{path}")
    return answer.status == 200 and not answer.truncated and answer.body == content


def test_an_upload_on_one_node_is_served_by_the_other_node_of_the_region(shop):
    a, b = shop["us-east"].nodes
    content = os.urandom(200_000)
    a.upload(IMAGE, content)
    assert served(a, IMAGE, content)  # from its own disk at once
    wait_until(lambda: served(b, IMAGE, content), timeout=60, what="node B serving node A's upload")
    assert b.get(f"/wp-content/uploads/{IMAGE}").headers["x-media-source"] == "bucket"
    assert not (b.uploads / IMAGE).exists()


def test_a_file_in_neither_place_is_a_404_and_directories_are_not_listed(shop):
    a, _ = shop["us-east"].nodes
    a.upload(IMAGE, b"x")
    wait_until(lambda: shop.store.keys(shop["us-east"].bucket), what="the upload in the bucket")
    assert a.get("/wp-content/uploads/2026/11/missing.jpg").status == 404
    assert a.get("/wp-content/uploads/2026/11/").status == 404
    assert a.get("/wp-content/uploads/").status == 404


def test_php_in_uploads_is_refused_even_from_the_bucket(shop):
    a, b = shop["us-east"].nodes
    a.upload("2026/11/shell.php", b"<?php system($_GET['c']);")
    wait_until(lambda: "uploads/2026/11/shell.php" in shop.store.keys(shop["us-east"].bucket), what="the push")
    assert b.get("/wp-content/uploads/2026/11/shell.php").status == 403


def test_an_upload_reaches_the_dr_region(shop):
    a, _ = shop["us-east"].nodes
    content = os.urandom(100_000)
    a.upload(IMAGE, content)
    for node in shop["eu-west"].nodes:
        wait_until(lambda node=node: served(node, IMAGE, content), timeout=90, what=f"eu-west node {node.index}")
    marker = shop["eu-west"].nodes[0].status()["replicated"]
    assert marker["source"] == "us-east"


def test_a_delete_replicates_to_the_dr_region_into_its_attic_never_away(shop):
    a, b = shop["us-east"].nodes
    dr = shop["eu-west"].nodes[1]
    a.upload(IMAGE, b"first")
    wait_until(lambda: served(dr, IMAGE, b"first"), timeout=90, what="the upload in eu-west")
    b.delete(IMAGE)  # deleted through the other node, which never had the file
    wait_until(lambda: a.get(f"/wp-content/uploads/{IMAGE}").status == 404, timeout=60,
               what="the delete on every node of the primary region (node A drops its local copy)")
    wait_until(lambda: dr.get(f"/wp-content/uploads/{IMAGE}").status == 404, timeout=90, what="the delete in eu-west")
    attic = [k for k in shop.store.keys(shop["eu-west"].bucket, "attic/") if k.endswith(IMAGE)]
    assert len(attic) == 1 and shop.store.read(shop["eu-west"].bucket, attic[0]) == b"first"


def test_failover_upload_in_dr_then_failback_brings_it_home_and_deletes_stay_deleted(shop):
    east, west = shop["us-east"], shop["eu-west"]
    a = east.nodes[0]
    a.upload("2026/11/kept.jpg", b"kept")
    a.upload("2026/11/deleted-during-outage.jpg", b"old")
    wait_until(lambda: served(west.nodes[0], "2026/11/deleted-during-outage.jpg", b"old"), timeout=90,
               what="both files in eu-west")
    # The primary region goes dark: its Object Storage too. drctl promote makes eu-west primary.
    shop.store.endpoints["us-east"].down()
    east.role = "replica"
    west.role = "primary"
    west.nodes[1].upload("2026/11/during-outage.jpg", b"new")
    west.nodes[0].delete("2026/11/deleted-during-outage.jpg")
    wait_until(lambda: served(west.nodes[0], "2026/11/during-outage.jpg", b"new"), timeout=60,
               what="the outage upload served in eu-west")
    # us-east is back (as a replica region after failback's rejoin): it copies from eu-west.
    shop.store.endpoints["us-east"].up()
    wait_until(lambda: served(a, "2026/11/during-outage.jpg", b"new"), timeout=90, what="the outage upload at home")
    wait_until(lambda: a.get("/wp-content/uploads/2026/11/deleted-during-outage.jpg").status == 404, timeout=90,
               what="the outage delete at home, local copy included")
    assert served(a, "2026/11/kept.jpg", b"kept")
    # Switchover back: us-east primary again; nothing reappears.
    east.role, west.role = "primary", "replica"
    a.upload("2026/11/after-failback.jpg", b"after")
    wait_until(lambda: served(west.nodes[1], "2026/11/after-failback.jpg", b"after"), timeout=90,
               what="a new upload replicating to eu-west again")
    for node in (*east.nodes, *west.nodes):
        assert node.get("/wp-content/uploads/2026/11/deleted-during-outage.jpg").status == 404


def test_bucket_unreachable_uploads_still_succeed_and_catch_up_nothing_lost(shop):
    a, b = shop["us-east"].nodes
    shop.store.endpoints["us-east"].down()
    files = {f"2026/11/offline-{i}.jpg": os.urandom(5000) for i in range(5)}
    for path, content in files.items():
        a.upload(path, content)
        assert served(a, path, content)  # the upload works and is served by the node that took it
    wait_until(lambda: a.status().get("pending_files") == 5 and "unreachable" in (a.status().get("problem") or ""),
               timeout=60, what="the agent reporting 5 pending files and the unreachable bucket")
    shop.store.endpoints["us-east"].up()
    wait_until(lambda: a.status().get("pending_files") == 0 and not a.status().get("problem"), timeout=60,
               what="the agent catching up")
    for path, content in files.items():
        assert served(b, path, content)


def test_a_former_primarys_stale_heartbeat_is_never_a_source(tmp_path):
    shop = MediaShop(tmp_path, regions=("us-east", "eu-west", "ap-south"), nodes=1)
    try:
        east, west, south = shop["us-east"], shop["eu-west"], shop["ap-south"]
        east.nodes[0].upload(IMAGE, b"current")
        wait_until(lambda: served(west.nodes[0], IMAGE, b"current"), timeout=90, what="the upload in eu-west")
        # ap-south was primary an hour ago and still has that heartbeat, and none of today's files.
        client = shop.store.client()
        client.put_object(Bucket=south.bucket, Key="dr/heartbeat.json",
                          Body=json.dumps({"region": "ap-south", "written_at": time.time() - 3600}).encode())
        client.delete_object(Bucket=south.bucket, Key=f"uploads/{IMAGE}")
        south.role = "primary"  # as its database might claim for a moment; its agent stays silent below
        south.nodes[0].stop_agent()
        shop.store.endpoints["us-east"].down()  # the real primary's bucket cannot be read
        wait_until(lambda: "fresh primary heartbeat" in (west.nodes[0].status().get("problem") or ""), timeout=90,
                   what="eu-west's agent refusing the stale source")
        assert served(west.nodes[0], IMAGE, b"current")
        assert not [k for k in shop.store.keys(west.bucket, "attic/")]
    finally:
        shop.close()
