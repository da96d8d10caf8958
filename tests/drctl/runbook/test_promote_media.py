"""A planned `drctl promote` moves the uploads with the primary role, as failback does: the old
primary region's bucket is copied to the target's before traffic moves and again with the old
primary fenced, so an upload of the last seconds is not lost; an unreachable bucket refuses the
promotion before any change. An unplanned promotion gives the dead region's bucket one bounded try
and goes on without it. Real MariaDB servers, the Cloudflare and Linode fakes, moto's S3 server on
loopback and the real rclone."""

from __future__ import annotations

import contextlib
import json

import pytest
from pydantic import SecretStr

from drctl.mysql import replication as r
from drctl.runbook.context import Refused
from drctl.runbook.promote import PromoteOptions, promote
from drctl.stack.outputs import MediaOut, MediaRegionOut
from tests.support.binaries import require
from tests.support.object_store import ACCESS_KEY, SECRET_KEY, ObjectStore
from tests.support.runbook_support import Shop, app_insert, order_ids, wait_caught_up

pytestmark = pytest.mark.integration
MARIADB = r.Dialect.MARIADB
REGIONS = ("us-east", "eu-west")


@pytest.fixture
def store():
    require("rclone")
    with ObjectStore(regions=REGIONS) as store:
        for region in REGIONS:
            store.bucket(f"media-{region}")
        yield store


def with_media(shop: Shop, store: ObjectStore) -> Shop:
    doc = json.loads(shop.outputs_file.read_text())
    doc["drctl"]["media"] = MediaOut(
        media_rpo_seconds=300, access_key=SecretStr(ACCESS_KEY), secret_key=SecretStr(SECRET_KEY),
        regions=tuple(MediaRegionOut(region=r, storage_region=r, bucket=f"media-{r}", endpoint=store.endpoints[r].url)
                      for r in REGIONS),
    ).model_dump(mode="json", by_alias=True, context={"reveal_secrets": True})
    shop.outputs_file.write_text(json.dumps(doc))
    return shop


def put(store: ObjectStore, region: str, key: str, body: bytes) -> None:
    store.client().put_object(Bucket=f"media-{region}", Key=key, Body=body)


def read_only(server) -> bool:
    with contextlib.closing(server.connect()) as conn:
        return r.read_only_state(conn, MARIADB).read_only


def test_a_planned_promotion_copies_every_upload_to_the_new_primarys_bucket_before_traffic_moves(
        mariadb_pair, tmp_path, cloud, store):
    shop = with_media(Shop.build(list(mariadb_pair), tmp_path, cloud.linode), store)
    # The DR copy ran a while ago; this upload came after it, seconds before the promotion.
    put(store, "us-east", "uploads/2026/11/old.jpg", b"copied long ago")
    put(store, "eu-west", "uploads/2026/11/old.jpg", b"copied long ago")
    put(store, "us-east", "uploads/2026/11/just-now.jpg", b"uploaded a second ago")
    rb = shop.runbook(cloud.load_balancer())
    said = rb.say

    def say(line: str) -> None:
        said(line)
        # An upload whose request was in flight while the first copy ran, stored just before the fence.
        if line.startswith("  > fence the primary in us-east"):
            put(store, "us-east", "uploads/2026/11/at-the-fence.jpg", b"stored as the fence went up")
            assert cloud.serving() == "us-east"
    rb.say = say

    result = promote(rb, PromoteOptions(region="eu-west", yes=True))

    assert result.outcome == "done", result.message
    names = [s["name"] for s in result.steps]
    assert names.index("media-copy") < names.index("fence-primary") < names.index("catch-up") \
        < names.index("media-copy-fenced") < names.index("promote") < names.index("switch-traffic")
    assert store.keys("media-eu-west", "uploads/") == {
        "uploads/2026/11/old.jpg", "uploads/2026/11/just-now.jpg", "uploads/2026/11/at-the-fence.jpg"}
    assert store.read("media-eu-west", "uploads/2026/11/at-the-fence.jpg") == b"stored as the fence went up"
    marker = json.loads(store.read("media-eu-west", "dr/replicated.json"))
    assert marker["source"] == "us-east"
    assert cloud.serving() == "eu-west"


def test_the_copy_is_idempotent_and_never_destroys_what_it_replaces(mariadb_pair, tmp_path, cloud, store):
    from drctl.runbook.switchover import copy_media

    shop = with_media(Shop.build(list(mariadb_pair), tmp_path, cloud.linode), store)
    put(store, "us-east", "uploads/a.jpg", b"new")
    put(store, "eu-west", "uploads/a.jpg", b"stale")
    rb = shop.runbook(cloud.load_balancer())
    copy_media(rb, "us-east", "eu-west", "switchover")
    copy_media(rb, "us-east", "eu-west", "switchover")  # a resumed run copies again: nothing changes
    assert store.read("media-eu-west", "uploads/a.jpg") == b"new"
    attic = {k for k in store.keys("media-eu-west", "attic/")}
    assert len(attic) == 1 and attic.pop().endswith("-switchover/a.jpg")


def test_an_unreachable_bucket_refuses_the_planned_promotion_before_any_change(mariadb_pair, tmp_path, cloud, store):
    shop = with_media(Shop.build(list(mariadb_pair), tmp_path, cloud.linode), store)
    store.endpoints["eu-west"].down()
    rb = shop.runbook(cloud.load_balancer())

    with pytest.raises(Refused) as refused:
        promote(rb, PromoteOptions(region="eu-west", yes=True))

    message = str(refused.value)
    assert message.startswith("eu-west's media bucket cannot be read (")
    assert "Nothing was changed. A planned promotion must not leave uploads behind" in message
    assert SECRET_KEY not in message and ACCESS_KEY not in message
    assert not read_only(shop["us-east"])
    assert cloud.serving() == "us-east" and cloud.cloudflare.writes() == [] and cloud.linode.writes() == []
    assert json.loads(rb.journal_path.read_text())["outcome"] == "refused"

    store.endpoints["eu-west"].up()  # the bucket is back: the same command goes through
    assert promote(rb, PromoteOptions(region="eu-west", yes=True)).outcome == "done"


def test_dry_run_shows_both_media_copies(mariadb_pair, tmp_path, cloud, store):
    shop = with_media(Shop.build(list(mariadb_pair), tmp_path, cloud.linode), store)
    result = promote(shop.runbook(cloud.load_balancer()), PromoteOptions(region="eu-west", dry_run=True))
    assert [s["name"] for s in result.steps] == ["media-copy", "fence-primary", "catch-up", "media-copy-fenced",
                                                 "promote", "repoint", "switch-traffic", "verify", "record"]
    assert result.steps[3]["description"].startswith("again, with us-east fenced: copy the uploads us-east's bucket")
    assert store.keys("media-eu-west") == set() and not read_only(shop["us-east"])

    store.endpoints["us-east"].down()
    result = promote(shop.runbook(cloud.load_balancer()), PromoteOptions(region="eu-west", dry_run=True))
    assert "the promotion would be refused: us-east's media bucket cannot be read" in result.message


def test_an_unplanned_promotion_does_not_wait_for_the_dead_regions_bucket(mariadb_pair, tmp_path, cloud, store):
    shop = with_media(Shop.build(list(mariadb_pair), tmp_path, cloud.linode), store)
    app_insert(shop["us-east"], 1)
    wait_caught_up(shop["us-east"], shop["eu-west"])
    shop["us-east"].kill()
    store.endpoints["us-east"].down()

    result = promote(shop.runbook(cloud.load_balancer()), PromoteOptions(region="eu-west", yes=True,
                                                                         accept_data_loss=True))

    assert result.outcome == "done", result.message
    assert (result.mode, order_ids(shop["eu-west"])) == ("unplanned", {1})
    assert [s["status"] for s in result.steps if s["name"] == "media-copy"] == ["done"]
    note = next(w for w in result.warnings if w.startswith("media: "))
    assert "media not copied from us-east to eu-west" in note
    assert "within objectives.mediaRpoSeconds, 300 s" in note and "they stay in us-east's bucket" in note


def test_an_unplanned_promotion_copies_what_the_dead_regions_object_storage_still_has(
        mariadb_pair, tmp_path, cloud, store):
    shop = with_media(Shop.build(list(mariadb_pair), tmp_path, cloud.linode), store)
    put(store, "us-east", "uploads/last.jpg", b"uploaded before the region went dark")
    shop["us-east"].kill()  # the region's servers, not its Object Storage

    result = promote(shop.runbook(cloud.load_balancer()), PromoteOptions(region="eu-west", yes=True,
                                                                         accept_data_loss=True))

    assert result.outcome == "done", result.message
    assert store.read("media-eu-west", "uploads/last.jpg") == b"uploaded before the region went dark"
    assert not [w for w in result.warnings if w.startswith("media: ")]
