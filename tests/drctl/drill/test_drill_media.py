"""The drill's media step: a sequence-numbered file put in the primary's bucket (real rclone, a real
S3 server on loopback) must be served by the DR region within objectives.mediaRpoSeconds."""

from __future__ import annotations

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
