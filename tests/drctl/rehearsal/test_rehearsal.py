"""`drctl rehearse` end to end: the drill against real MariaDB, HAProxy and shop processes on this
machine. This is the project's end-to-end test of promote, failback and the drill together."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from drctl.drill.faults import ALL_REGIONS_DOWN
from drctl.drill.orders import OrderRejected
from drctl.drill.report import acknowledged_by
from drctl.rehearsal.command import rehearse
from drctl.rehearsal.topology import RehearsalSpec
from drctl.stack.files import REPO_ROOT
from tests.support.binaries import need

pytestmark = pytest.mark.integration
PRIMARY, DR = "us-east", "eu-west"


@pytest.fixture(scope="module")
def spec():
    need("mariadbd", "mariadb-install-db", "mariadb", "mariadb-dump", "haproxy", "openssl")
    return RehearsalSpec.from_stack("dr-test")


def orders_in(topo, region) -> set[int]:
    rows = topo.regions[region].database.query("SELECT seq FROM drctl_drill.orders")
    return {int(seq) for (seq,) in rows}


def own_processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


@pytest.fixture
def private_tmp(monkeypatch):
    """A temp directory of this test's own (short: unix sockets live below it), so 'nothing left
    behind' is not confused by another suite's rehearsal running on the same machine."""
    directory = Path(tempfile.mkdtemp(prefix="wcdr-t-"))
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    yield directory
    monkeypatch.undo()
    with contextlib.suppress(OSError):
        directory.rmdir()  # empty, or the test has already failed on what it holds


def test_a_planned_drill_loses_no_order_passes_and_leaves_nothing_behind(spec, mariadb_template, private_tmp):
    seen = {}

    def after_promotion(topo):
        seen["dir"], seen["pids"] = topo.dir, [p.pid for p in topo.processes()]
        seen["dr"] = orders_in(topo, DR)
        seen["secrets"] = [topo.outputs().database.primary.admin_password.get_secret_value(),
                           topo.replication_credentials()[1]]

    said: list[str] = []
    result = rehearse(spec, template=mariadb_template, say=said.append, hooks={"after-promotion": after_promotion})
    report = result.report

    assert report.passed, report.markdown()
    assert report.measured["ordersLost"] == 0
    assert {c.name for c in report.checks} >= {"planned promotion lost no order", "every acknowledged order accounted for"}
    # the drill's own count against the DR database read independently right after the promotion
    first_dr = next(w for w in result.writes if w.ok and w.region == DR)
    acknowledged = {w.seq for w in acknowledged_by(result.writes, PRIMARY, first_dr.finished)}
    assert acknowledged and acknowledged <= seen["dr"]
    assert report.measured["rtoSeconds"] <= report.objectives["rtoSeconds"]
    everything_shown = json.dumps(report.as_dict(), default=str) + report.markdown() + "\n".join(said)
    assert not [secret for secret in seen["secrets"] if secret in everything_shown]
    # nothing left: no process of the topology, no directory
    assert not seen["dir"].exists()
    assert not own_processes_mentioning(str(seen["dir"]))
    assert all(not Path(f"/proc/{pid}").exists() for pid in seen["pids"])
    assert list(private_tmp.iterdir()) == []


def test_an_unplanned_drill_reports_exactly_the_orders_that_went_missing(spec, mariadb_template):
    seen = {}

    def before_fault(topo):
        # The replica stops receiving a moment before the region dies: the orders the primary
        # acknowledges meanwhile are lost with it, as in a real cross-region outage.
        topo.regions[DR].database.execute("STOP SLAVE IO_THREAD")
        time.sleep(0.3)

    def after_promotion(topo):
        seen["dr"] = orders_in(topo, DR)

    result = rehearse(spec, unplanned=True, template=mariadb_template, say=lambda _: None,
                      hooks={"before-fault": before_fault, "after-promotion": after_promotion})
    report = result.report
    first_dr = next(w for w in result.writes if w.ok and w.region == DR)
    acknowledged = {w.seq for w in acknowledged_by(result.writes, PRIMARY, first_dr.finished)}
    actually_missing = sorted(acknowledged - seen["dr"])

    assert actually_missing, "the stalled replica should have missed some acknowledged orders"
    assert report.measured["lostSequenceNumbers"] == actually_missing
    assert report.measured["ordersLost"] == len(actually_missing)
    assert report.measured["rpoSeconds"] > 0
    checks = {c.name: c.passed for c in report.checks}
    assert checks["every acknowledged order accounted for"], report.markdown()
    assert checks["traffic back in the primary region"] and checks["replication healthy after failback"]
    assert report.restored == [f"{PRIMARY}: database and shop origins restarted (data kept)"]


class BreaksAfterTheSwitch:
    """The order path works until the first order lands in the DR region, then fails for good."""

    def __init__(self, sink):
        self.sink, self.broken = sink, False

    def write(self, seq):
        if self.broken:
            raise OrderRejected("injected: the order path broke")
        region, server = self.sink.write(seq)
        self.broken = region == DR
        return region, server

    def close(self):
        self.sink.close()


def test_the_restore_path_fails_back_when_the_writer_fails_mid_drill(spec, mariadb_template):
    # Longer than detection can take (orders fail from the fault until the switch): the stop must
    # come after the promotion, where the restore path has to fail back. 1 s was shorter than the
    # scaled monitor's worst case, and then the drill stopped before promoting anything.
    outage = spec.worst_case_detection_seconds + 1.0
    result = rehearse(spec, template=mariadb_template, say=lambda _: None, settle_seconds=3.0,
                      max_write_outage=outage, sink_wrapper=BreaksAfterTheSwitch)
    report = result.report
    assert report.outcome == "aborted"
    assert f"beyond --max-write-outage {outage:.0f} s" in report.aborted
    assert report.restored[:2] == ["node web-2 back to accept", "node web-1 back to accept"]
    assert report.restored[-1] == f"failed back: {PRIMARY} is primary again"
    assert any(s.name == "failback (restore)" and s.status == "ok" for s in report.steps)
    checks = {c.name: c.passed for c in report.checks}
    assert checks == {"traffic back in the primary region": True, "replication healthy after failback": True}


def test_the_command_runs_a_blackhole_rehearsal_and_writes_the_report(tmp_path):
    need("mariadbd", "mariadb-install-db", "mariadb", "mariadb-dump", "haproxy", "openssl")
    proc = subprocess.run([sys.executable, "-m", "drctl", "rehearse", "--planned", "--fault", "firewall-blackhole",
                           "--report-dir", str(tmp_path)], capture_output=True, text=True, cwd=REPO_ROOT,
                          timeout=150, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    md = (tmp_path / "report.md").read_text()
    assert md.startswith("# Rehearsal of `dr-test-rehearsal`: PASSED")
    assert "Fault: `firewall-blackhole` in us-east" in md and md in proc.stdout
    assert (tmp_path / "report.json").exists()


def test_the_command_refuses_a_fault_with_unplanned():
    proc = subprocess.run([sys.executable, "-m", "drctl", "rehearse", "--unplanned", "--fault", "pool-disable"],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=30, check=False)
    assert proc.returncode == 2 and "--unplanned kills the whole region" in proc.stderr


def test_ctrl_c_after_the_promotion_still_fails_back(spec, mariadb_template):
    def interrupt(_topo):
        raise KeyboardInterrupt

    report = rehearse(spec, template=mariadb_template, say=lambda _: None,
                      hooks={"after-promotion": interrupt}).report
    assert report.aborted == "interrupted (Ctrl-C)"
    assert report.restored == ["node web-2 back to accept", "node web-1 back to accept",
                               f"failed back: {PRIMARY} is primary again"]
    assert all(c.passed for c in report.checks) and len(report.checks) == 2


# --- every region down: the fallback page through the real Worker, and the recovery -----------------

def shopper_get(topo, path="/"):
    """A shopper's request to the edge, by hand (not through the drill's probe)."""
    conn = http.client.HTTPConnection("127.0.0.1", topo.edge_port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": topo.spec.domain})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode()
    finally:
        conn.close()


def test_every_region_down_serves_the_workers_page_then_the_shop_and_leaves_nothing_behind(spec, mariadb_template,
                                                                                          private_tmp):
    need("node")
    seen = {}

    def during_outage(topo):
        seen["dir"], seen["pids"] = topo.dir, [p.pid for p in topo.processes()]
        seen["edge_pid"] = topo.edge.process.pid
        seen["page"] = shopper_get(topo, "/product/mug")
        seen["modes"] = {r: {n.mode for n in topo.linode.node_statuses(topo.outputs().region(r).node_balancer.id)}
                         for r in spec.regions}

    def after_recovery(topo):
        seen["shop"] = shopper_get(topo)

    said: list[str] = []
    report = rehearse(spec, fault=ALL_REGIONS_DOWN, template=mariadb_template, say=said.append,
                      hooks={"during-outage": during_outage, "after-recovery": after_recovery}).report

    assert report.passed, report.markdown()
    m = report.measured
    assert (m["fallbackPage"]["status"], m["fallbackPage"]["retryAfter"], m["fallbackPage"]["cacheControl"]) == \
        (503, "300", "no-store")
    assert m["fallbackPage"]["marker"] in ("origin answered 520", "origin answered 521")
    assert m["fallbackPage"]["title"] == "We'll be right back"
    assert m["outagePageAnswers"] == m["outageRequests"]
    assert m["healthPath"]["status"] == 521 and not m["healthPath"]["answeredByThePage"]
    assert m["recoverySeconds"] is not None and m["firstShopAnswer"]["title"] == f"Shop ({PRIMARY})"
    # what a shopper got by hand, through the same edge: the page the program renders, then the shop
    status, headers, body = seen["page"]
    assert (status, headers["retry-after"], headers["cache-control"]) == (503, "300", "no-store")
    assert "x-woocommerce-dr-fallback" in headers and "<h1>We&#x27;ll be right back</h1>" in body
    assert seen["modes"] == {PRIMARY: {"reject"}, DR: {"reject"}}
    assert seen["shop"][0] == 200 and f"<title>Shop ({PRIMARY})</title>" in seen["shop"][2]
    # every region back, the topology healthy, and then nothing left: no process, no file
    assert report.restored == [f"{r}: node web-{n} back to accept" for r in (PRIMARY, DR) for n in (2, 1)]
    checks = {c.name: c.passed for c in report.checks}
    assert checks["traffic back in the primary region"] and checks["replication healthy after the outage"]
    assert seen["edge_pid"] in seen["pids"]
    assert not seen["dir"].exists() and not own_processes_mentioning(str(seen["dir"]))
    assert all(not Path(f"/proc/{pid}").exists() for pid in seen["pids"])
    assert list(private_tmp.iterdir()) == []


def test_the_command_rehearses_every_region_down_and_prints_json(tmp_path):
    need("mariadbd", "mariadb-install-db", "mariadb", "mariadb-dump", "haproxy", "openssl", "node")
    proc = subprocess.run([sys.executable, "-m", "drctl", "rehearse", "--fault", ALL_REGIONS_DOWN, "-o", "json",
                           "--report-dir", str(tmp_path)], capture_output=True, text=True, cwd=REPO_ROOT,
                          timeout=150, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert (doc["kind"], doc["fault"], doc["outcome"]) == ("rehearsal", ALL_REGIONS_DOWN, "passed")
    assert doc["measured"]["fallbackPage"]["status"] == 503 and doc["measured"]["recoverySeconds"] is not None
    md = (tmp_path / "report.md").read_text()
    assert md.startswith("# Rehearsal of `dr-test-rehearsal`: PASSED") and "\n## The fallback page\n" in md
    assert "rehearsing a full outage of dr-test (every region down: us-east, eu-west)" in proc.stderr
