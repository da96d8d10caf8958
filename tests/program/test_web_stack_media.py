"""Deletes through WordPress, for real: Debian's WordPress with the node's must-use plugins
(media-deletes.php among them) on the web-stack tier (nginx + PHP-FPM + MariaDB), the node's media
agent and Debian's rclone against a real S3 server on loopback (tests/support/web_stack_media.py).

WordPress deletes an attachment (wp_delete_attachment, as the media library's "Delete permanently"
does); the plugin must spool every file of it for the agent, also when the files are not on this
node's disk (another node took the upload: they are only in the bucket); the agent moves them to
the bucket's attic; the DR region's copy follows and nothing brings them back.
"""

from __future__ import annotations

import http.client
import json
import time

import pytest

from tests.support.object_store import ObjectStore
from tests.support.waiting import wait_until
from tests.support.web_stack import DOMAIN, WebStack
from tests.support.web_stack_media import NodeMedia

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def media_store():
    with ObjectStore(regions=("us-east", "eu-west")) as store:
        yield store


@pytest.fixture(scope="module")
def primary_media(web_primary, media_store):
    media = NodeMedia(web_primary, media_store).start_serving()
    yield media
    media.stop()


@pytest.fixture(scope="module")
def replica_media(web_replica, media_store):
    media = NodeMedia(web_replica, media_store).start_serving()
    yield media
    media.stop()


def wordpress(stack: WebStack, code: str) -> str:
    """PHP inside WordPress on the node (as wp-cli runs: php-cli as the service user); its output."""
    done = stack.php(f"$_SERVER['HTTP_HOST'] = {DOMAIN!r}; require 'wp-load.php'; {code}")
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


def add_attachment(stack: WebStack, name: str, files_here: bool) -> int:
    """An image attachment `2026/11/<name>.jpg` with a thumbnail, as wp_handle_upload and
    wp_generate_attachment_metadata leave it; `files_here`: the files are on this node's disk
    (this node took the upload), else only the database knows them (another node took it)."""
    return int(wordpress(stack, f"""
        $dir = wp_get_upload_dir()['basedir'] . '/2026/11';
        $main = "$dir/{name}.jpg";
        if ({'true' if files_here else 'false'}) {{
            wp_mkdir_p($dir);
            file_put_contents($main, 'image {name}');
            file_put_contents("$dir/{name}-150x150.jpg", 'thumbnail {name}');
        }}
        $id = wp_insert_attachment(['post_mime_type' => 'image/jpeg', 'post_title' => '{name}',
                                    'post_status' => 'inherit'], $main);
        wp_update_attachment_metadata($id, ['file' => '2026/11/{name}.jpg', 'width' => 800, 'height' => 600,
            'sizes' => ['thumbnail' => ['file' => '{name}-150x150.jpg', 'width' => 150, 'height' => 150,
                                        'mime-type' => 'image/jpeg']]]);
        echo $id;"""))


def delete_attachment(stack: WebStack, attachment: int) -> None:
    """The media library's "Delete permanently"."""
    assert wordpress(stack, f"var_export((bool) wp_delete_attachment({attachment}, true));") == "true"


def answers(stack: WebStack, path: str, status: int) -> None:
    """Wait until the node answers `path` with `status` (the bucket server lists a folder anew
    after a second, docs/media.md). Within that second a just-deleted file is still listed, its
    body can no longer be read and the answer breaks off: not yet the answer waited for."""
    def answered() -> bool:
        try:
            return stack.get(f"/wp-content/{path}", https=True).status == status
        except http.client.IncompleteRead:
            return False
    wait_until(answered, timeout=20, what=f"{path} answering {status}")


def files_of(name: str) -> set[str]:
    return {f"uploads/2026/11/{name}.jpg", f"uploads/2026/11/{name}-150x150.jpg"}


def in_attic(media: NodeMedia, name: str) -> set[str]:
    """The attic's copies of `name`'s files, as uploads/ paths."""
    return {f"uploads/{k.split('/', 2)[2]}" for k in media.keys("attic/") if f"/2026/11/{name}" in k}


def test_an_attachment_deleted_through_wordpress_leaves_the_bucket_into_its_attic(web_primary, primary_media):
    attachment = add_attachment(web_primary, "deleted-here", files_here=True)
    assert primary_media.agent_pass()["problem"] is None
    assert files_of("deleted-here") <= primary_media.keys("uploads/")
    delete_attachment(web_primary, attachment)
    assert set(primary_media.spooled()) >= {"2026/11/deleted-here.jpg", "2026/11/deleted-here-150x150.jpg"}
    status = primary_media.agent_pass()
    assert (status["problem"], status["pending_deletes"]) == (None, 0)
    assert not files_of("deleted-here") & primary_media.keys("uploads/")
    assert in_attic(primary_media, "deleted-here") == files_of("deleted-here")
    for path in files_of("deleted-here"):
        answers(web_primary, path, 404)


def test_an_attachment_another_node_uploaded_leaves_the_bucket_too(web_primary, primary_media, media_store):
    # The other node's agent pushed the files; this node never had them.
    for key in files_of("from-node-b"):
        media_store.client().put_object(Bucket=primary_media.bucket, Key=key, Body=b"node b's " + key.encode())
    attachment = add_attachment(web_primary, "from-node-b", files_here=False)
    answers(web_primary, "uploads/2026/11/from-node-b.jpg", 200)  # from the bucket
    delete_attachment(web_primary, attachment)
    assert set(primary_media.spooled()) >= {"2026/11/from-node-b.jpg", "2026/11/from-node-b-150x150.jpg"}
    assert primary_media.agent_pass()["problem"] is None
    assert not files_of("from-node-b") & primary_media.keys("uploads/")
    assert in_attic(primary_media, "from-node-b") == files_of("from-node-b")
    answers(web_primary, "uploads/2026/11/from-node-b.jpg", 404)


def test_deleting_an_attachment_never_pushed_is_harmless(web_primary, primary_media):
    assert primary_media.agent_pass()["problem"] is None  # whatever earlier tests left is pushed
    before = primary_media.store.keys(primary_media.bucket)
    attachment = add_attachment(web_primary, "never-pushed", files_here=True)
    delete_attachment(web_primary, attachment)  # before the agent's next pass
    assert "2026/11/never-pushed.jpg" in primary_media.spooled()
    for _ in range(2):
        status = primary_media.agent_pass()
        assert (status["problem"], status["pending_deletes"], status["pending_files"]) == (None, 0, 0)
    assert primary_media.store.keys(primary_media.bucket) - before <= {"dr/heartbeat.json"}
    assert primary_media.spooled() == []


def test_a_delete_reaches_the_dr_copy_and_no_copy_brings_it_back(web_primary, primary_media, replica_media):
    attachment = add_attachment(web_primary, "replicated", files_here=True)
    assert primary_media.agent_pass()["db_role"] == "primary"  # pushed, and the heartbeat written
    assert replica_media.agent_pass()["db_role"] == "replica"  # copied from the primary's bucket
    assert files_of("replicated") <= replica_media.keys("uploads/")
    answers(web_primary, "uploads/2026/11/replicated.jpg", 200)

    delete_attachment(web_primary, attachment)
    assert primary_media.agent_pass()["problem"] is None
    replicated = replica_media.agent_pass()
    assert replicated["problem"] is None and replicated["replicated"]["source"] == "us-east"
    assert not files_of("replicated") & replica_media.keys("uploads/")
    assert in_attic(replica_media, "replicated") == files_of("replicated")

    # Failover and failback: the DR region's uploads copied home (what drctl failback and a
    # replica region's agent run) and home's copied back out: neither brings the files back.
    agent = replica_media.agent_module()
    rclone = agent.Rclone("rclone", replica_media.settings["rclone_config"])
    east, west = (f"media-{r}:{replica_media.buckets[r]}" for r in ("us-east", "eu-west"))
    agent.replicate(rclone, west, east, "eu-west", time.time(), time.time())
    agent.replicate(rclone, east, west, "us-east", time.time(), time.time())
    assert not files_of("replicated") & primary_media.keys("uploads/")
    assert not files_of("replicated") & replica_media.keys("uploads/")
    for path in files_of("replicated"):
        assert not (primary_media.uploads / path.removeprefix("uploads/")).exists()
        answers(web_primary, path, 404)
    marker = json.loads(replica_media.store.read(replica_media.bucket, "dr/replicated.json"))
    assert marker["source"] == "us-east"


def test_a_delete_the_database_refuses_leaves_the_files_in_the_bucket(web_primary, primary_media, web_replica,
                                                                      replica_media):
    attachment = add_attachment(web_primary, "kept-in-dr", files_here=True)
    primary_media.agent_pass()
    replica_media.agent_pass()
    wait_until(lambda: wordpress(web_replica, f"echo get_post_type({attachment});") == "attachment", timeout=30,
               what="the attachment replicated to the DR region's database")
    # In the DR region the database is a read-only replica: WordPress cannot delete the attachment,
    # so nothing may leave the bucket either.
    wordpress(web_replica, f"wp_delete_attachment({attachment}, true);")
    assert wordpress(web_replica, f"echo get_post_type({attachment});") == "attachment"
    assert replica_media.spooled() == []
    assert replica_media.agent_pass()["pending_deletes"] == 0
    assert files_of("kept-in-dr") <= replica_media.keys("uploads/")
