"""The drill's media step: a sequence-numbered file put in the primary's bucket (real rclone, a real
S3 server on loopback) must be served by the DR region within objectives.mediaRpoSeconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from drctl.drill.drill import Drill, DrillOptions
from drctl.drill.media import StackMediaProbe
from drctl.stack.outputs import MediaOut, MediaRegionOut, parse_outputs
from tests.support.binaries import require
from tests.support.object_store import ACCESS_KEY, SECRET_KEY, ObjectStore
from tests.support.runbook_support import outputs_doc, paper_servers

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class ServedFromBucket(StackMediaProbe):
    """The DR region "serves" what its bucket holds: here the copy is made by hand (the agents and
    nginx that do it on a stack run in tests/program/test_media_nodes.py)."""

    copied: bool = False

    def served(self, region: str, name: str) -> bytes | None:
        if not self.copied:
            return None
        return self._buckets.run("cat", self._buckets.path(self.outputs.regions[0].region, f"uploads/{name}"))


@pytest.fixture
def setup(tmp_path: Path):
    require("rclone")
    regions = ("us-east", "eu-west")
    with ObjectStore(regions=regions) as store:
        doc = outputs_doc(paper_servers(tmp_path))["drctl"]
        used = [r["region"] for r in doc["regions"]]
        for region in used:
            store.bucket(f"media-{region}")
        doc["media"] = MediaOut(
            media_rpo_seconds=60, access_key=SecretStr(ACCESS_KEY), secret_key=SecretStr(SECRET_KEY),
            regions=tuple(MediaRegionOut(region=r, storage_region=r, bucket=f"media-{r}",
                                         endpoint=store.endpoints[regions[min(i, 1)]].url) for i, r in enumerate(used)),
        ).model_dump(mode="json", by_alias=True, context={"reveal_secrets": True})
        outputs = parse_outputs(doc, "test")
        clock = Clock()
        probe = ServedFromBucket(outputs)
        drill = Drill(outputs, runbook=None, traffic=None, faults=None, sink=None,
                      options=DrillOptions(fault="nodes-reject", poll_seconds=5.0), say=lambda _: None,
                      clock=clock, sleep=clock.sleep, media=probe)
        yield drill, probe, store, clock


def test_the_drill_puts_a_sequence_numbered_file_in_the_primarys_bucket(setup):
    drill, _, store, _ = setup
    drill.upload_media()
    keys = store.keys(f"media-{drill.primary}", "uploads/drctl-drill/")
    assert keys == {f"uploads/drctl-drill/{drill.outputs.stack}-1000000.txt"}
    assert store.read(f"media-{drill.primary}", keys.pop()) == b"woocommerce-dr drill media object 1000000\n"
    assert drill.report.objectives["mediaRpoSeconds"] == 60


def test_served_in_dr_within_the_objective_is_measured(setup):
    drill, probe, _, clock = setup
    drill.upload_media()
    clock.now += 12
    probe.copied = True
    drill.check_media()
    step = drill.report.steps[-1]
    assert (step.name, step.status) == ("media in DR", "ok")
    assert step.detail.endswith(f"served by {drill.target} 12.0 s after upload")


def test_not_served_within_the_objective_fails_the_step(setup):
    drill, _, _, clock = setup
    drill.upload_media()
    drill.check_media()
    step = drill.report.steps[-1]
    assert (step.name, step.status) == ("media in DR", "failed")
    assert step.detail == f"not served by {drill.target} within 60 s"
    assert clock.now >= 1060.0


def test_served_only_when_the_drill_first_looks_past_the_objective_is_a_miss(setup):
    drill, probe, _, clock = setup
    drill.upload_media()
    clock.now += 75  # the switch took longer than the 60 s objective
    probe.copied = True
    drill.check_media()
    step = drill.report.steps[-1]
    assert (step.name, step.status) == ("media in DR", "failed")
    assert step.detail.endswith(f"served by {drill.target} 75.0 s after upload")


# --- before an unplanned fault: the DR copy must have taken the upload ----------------------------


def copy_at(drill, store, clock, at: float, heartbeat_offset: float = -1.0):
    """The DR region's copy runs at `at` (drill clock): its marker's source heartbeat is a second
    older, as the agent reads the heartbeat before it syncs."""
    sleep = drill.sleep

    def sleep_and_copy(seconds: float) -> None:
        sleep(seconds)
        if clock.now >= at and not store.keys(f"media-{drill.target}", "dr/"):
            store.client().put_object(Bucket=f"media-{drill.target}", Key="dr/replicated.json", Body=json.dumps(
                {"source": drill.primary, "source_heartbeat": clock.now + heartbeat_offset,
                 "completed_at": clock.now}).encode())
    drill.sleep = sleep_and_copy


def test_an_unplanned_fault_waits_for_the_dr_copy_and_measures_it(setup):
    drill, probe, store, clock = setup
    drill.options = DrillOptions(fault="region-down", poll_seconds=5.0)
    said = []
    drill.say = said.append
    drill.upload_media()
    copy_at(drill, store, clock, at=1040.0)
    assert drill.waits_for_media_copy()
    drill.wait_for_media_copy()
    step = drill.report.steps[-1]
    assert (step.name, step.status) == ("media copy", "ok")
    assert step.detail == f"{drill.target}'s copy has the drill's upload 40.0 s after it (objective 60 s)"
    assert clock.now == 1040.0  # the fault goes in as soon as the copy has the upload, not later
    assert said[0] == (f"  waiting for {drill.target}'s media copy to take the drill's upload: 0 s since the upload, "
                       "at most 60 s")
    clock.now += 20
    probe.copied = True
    drill.check_media()
    assert drill._media["replicatedAfterSeconds"] == 40.0
    drill.report.measured["mediaReplicatedSeconds"] = 40.0  # as the final checks carry it over
    assert "in its copy after 40.0 s" in drill.report.markdown()


def test_a_copy_older_than_the_upload_does_not_count_and_the_wait_is_bounded_by_the_objective(setup):
    drill, _, store, clock = setup
    drill.options = DrillOptions(fault="region-down", poll_seconds=5.0)
    drill.upload_media()
    copy_at(drill, store, clock, at=1000.0, heartbeat_offset=-1000.0)  # a copy of the bucket before the upload
    drill.wait_for_media_copy()
    step = drill.report.steps[-1]
    assert (step.name, step.status) == ("media copy", "failed")
    assert step.detail == f"{drill.target}'s copy did not take the drill's upload within 60 s"
    assert clock.now == 1060.0
    assert drill._media["replicatedAfterSeconds"] is None


def test_an_unreadable_marker_is_waited_for_and_named(setup):
    drill, _, store, _ = setup
    drill.options = DrillOptions(fault="region-down", poll_seconds=20.0)
    said = []
    drill.say = said.append
    drill.upload_media()
    store.endpoints[drill.target].down()
    drill.wait_for_media_copy()
    assert drill.report.steps[-1].status == "failed"
    assert "its marker cannot be read: rclone cat" in drill.report.steps[-1].detail
    assert SECRET_KEY not in drill.report.steps[-1].detail and len(said) == 3


def test_a_web_tier_fault_does_not_wait_a_planned_promotion_copies_the_media(setup):
    drill, _, _, _ = setup
    drill.upload_media()
    assert not drill.waits_for_media_copy()  # nodes-reject: the database stays up, the promotion is planned
