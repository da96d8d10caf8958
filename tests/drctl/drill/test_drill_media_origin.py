"""The drill's media check through a real origin: the DR region's NodeBalancer address (the stack's
own drctl output, its address pointed at loopback) reaches real nginx of the web-stack tier, the
DR region's node as the program rendered it (TLS with the origin certificate, Authenticated Origin
Pulls, the uploads fallback to the region's bucket through `rclone serve`), with the DR bucket
filled by the node's own media agent copying the primary's bucket (tests/support/web_stack_media.py,
a real S3 server on loopback, Debian's rclone).

The drill fetches as production does: TLS to the NodeBalancer's address with the shop's name for
SNI and Host, the certificate checked against that name, and no Cloudflare client certificate
(drctl is not Cloudflare)."""

from __future__ import annotations

import pytest

from drctl.drill.drill import Drill, DrillOptions
from drctl.drill.media import StackMediaProbe, drill_object
from drctl.plan.engine import unwrap
from drctl.stack.outputs import StackOutputs, parse_outputs
from tests.support.object_store import ObjectStore
from tests.support.waiting import wait_until
from tests.support.web_stack import DOMAIN
from tests.support.web_stack_media import NodeMedia

pytestmark = pytest.mark.integration

MEDIA_RPO_SECONDS = 60


class Clock:
    def __init__(self):
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def store():
    with ObjectStore(regions=("us-east", "eu-west")) as store:
        yield store


@pytest.fixture(scope="module")
def primary_media(web_primary, store):
    return NodeMedia(web_primary, store)  # its agent writes the primary's heartbeat


@pytest.fixture(scope="module")
def dr_media(web_replica, store):
    media = NodeMedia(web_replica, store).start_serving()
    yield media
    media.stop()


def stack_outputs(web_stack_run, store: ObjectStore, domain: str = DOMAIN) -> StackOutputs:
    """The dr-test stack's drctl output, with every NodeBalancer's address on loopback (where the
    web-stack nodes listen) and the media buckets' endpoints on the S3 server."""
    doc = unwrap(web_stack_run.outputs["drctl"])
    assert doc["domain"] == DOMAIN
    doc["domain"] = domain
    for region in doc["regions"]:
        region["nodeBalancer"]["ipv4"] = "127.0.0.1"
    doc["media"]["mediaRpoSeconds"] = MEDIA_RPO_SECONDS
    for bucket in doc["media"]["regions"]:
        bucket["endpoint"] = store.endpoints[bucket["region"]].url
    return parse_outputs(doc, web_stack_run.stack.stack)


def drill_through(outputs: StackOutputs, web_replica, clock: Clock) -> Drill:
    probe = StackMediaProbe(outputs, ca_file=str(web_replica.origin_certificate), port=web_replica.https_port,
                            timeout=10)
    return Drill(outputs, runbook=None, traffic=None, faults=None, sink=None,
                 options=DrillOptions(fault="nodes-reject", poll_seconds=5.0), say=lambda _: None,
                 clock=clock, sleep=clock.sleep, media=probe)


def access_log_lines(web_replica, name: str, count: int) -> list[str]:
    """The site's access log (nginx-site.conf's woocommerce_dr format) lines asking for `name`, once
    there are `count` (nginx writes a line after sending the answer, so the last may lag the client)."""
    def lines() -> list[str]:
        log = web_replica.path("/var/log/nginx/access.log").read_text(errors="replace")
        return [line for line in log.splitlines() if f"/wp-content/uploads/{name} " in line]
    wait_until(lambda: len(lines()) >= count, timeout=10, what=f"{count} access log lines for {name}")
    return lines()


def test_the_drill_object_is_served_by_the_dr_regions_nginx_from_the_dr_bucket(
        web_stack_run, web_primary, web_replica, store, primary_media, dr_media):
    clock = Clock()
    drill = drill_through(stack_outputs(web_stack_run, store), web_replica, clock)
    assert (drill.primary, drill.target) == ("us-east", "eu-west")
    name, _ = drill_object(drill.outputs.stack, int(clock.now * 1000))
    drill.upload_media()
    assert primary_media.agent_pass()["db_role"] == "primary"  # the heartbeat the copy starts from
    assert dr_media.agent_pass()["replicated"]["source"] == "us-east"  # the DR region's copy
    assert f"uploads/{name}" in dr_media.keys("uploads/")
    clock.now += 7
    drill.check_media()
    step = drill.report.steps[-1]
    assert (step.name, step.status) == ("media in DR", "ok"), step.detail
    assert step.detail == f"/wp-content/uploads/{name} served by eu-west 7.0 s after upload"
    # Real nginx answered, from the bucket, to a client without Cloudflare's certificate.
    [line] = access_log_lines(web_replica, name, 1)
    assert '" 200 ' in line and "client_cert=NONE" in line


def test_a_drill_object_missing_in_dr_is_a_failed_media_check_not_a_crash(
        web_stack_run, web_primary, web_replica, store, dr_media):
    clock = Clock()
    clock.now += 1000  # another sequence number than the other tests'
    drill = drill_through(stack_outputs(web_stack_run, store), web_replica, clock)
    name, _ = drill_object(drill.outputs.stack, int(clock.now * 1000))
    drill.upload_media()  # in the primary's bucket only: no copy to the DR region runs
    drill.check_media()
    step = drill.report.steps[-1]
    assert (step.name, step.status) == ("media in DR", "failed")
    assert step.detail == f"not served by eu-west within {MEDIA_RPO_SECONDS} s"
    # Asked every 5 s up to the objective, each time answered (a 404, the object is in neither place).
    lines = access_log_lines(web_replica, name, MEDIA_RPO_SECONDS // 5 + 1)
    assert len(lines) == MEDIA_RPO_SECONDS // 5 + 1 and all('" 404 ' in line for line in lines)


def test_the_drill_checks_the_origin_certificate_against_the_shops_name(
        web_stack_run, web_primary, web_replica, store, primary_media, dr_media):
    clock = Clock()
    clock.now += 2000
    outputs = stack_outputs(web_stack_run, store)
    drill = drill_through(outputs, web_replica, clock)
    name, body = drill_object(drill.outputs.stack, int(clock.now * 1000))
    drill.upload_media()
    primary_media.agent_pass()
    dr_media.agent_pass()
    assert drill.media.served("eu-west", name) == body
    # The same origin, asked for by a name its certificate does not carry: refused before any request.
    other = StackMediaProbe(stack_outputs(web_stack_run, store, domain="shop.example.net"),
                            ca_file=str(web_replica.origin_certificate), port=web_replica.https_port, timeout=10)
    assert other.served("eu-west", name) is None
    assert len(access_log_lines(web_replica, name, 1)) == 1
