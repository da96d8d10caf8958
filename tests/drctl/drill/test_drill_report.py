"""The drill report: RTO and RPO computed from the writer's record, the verdict, and what the
report files say."""

from __future__ import annotations

import json
import stat

from drctl.drill.faults import ALL_REGIONS_DOWN
from drctl.drill.orders import Write
from drctl.drill.report import DrillReport, loss_window_seconds, lost_orders, outage


def ok(seq, at, region):
    return Write(seq, True, at - 0.01, at, region, f"{region}-web-1")


def failed(seq, at):
    return Write(seq, False, at - 0.01, at, error="HTTP 503")


# us-east acknowledges 1..5 (t=1..5), everything fails from t=6 to t=9, eu-west takes 10.. from t=10
WRITES = [ok(i, float(i), "us-east") for i in range(1, 6)] + [failed(i, float(i)) for i in range(6, 10)] + \
         [ok(i, float(i), "eu-west") for i in range(10, 13)]


def report(**kw):
    r = DrillReport(kind="rehearsal", stack="dr-test", primary="us-east", target="eu-west", fault="nodes-reject",
                    objectives={"rtoSeconds": 6, "rpoSeconds": 15}, options={}, clock=lambda: 100.0, **kw)
    return r


def test_rto_runs_from_the_last_old_primary_write_to_the_first_new_one():
    out = outage(WRITES, "us-east", "eu-west")
    assert (out.last_old.seq, out.first_new.seq) == (5, 10)
    assert out.rto_seconds == 5.0


def test_rto_is_unknown_when_the_new_region_never_took_an_order():
    assert outage(WRITES[:9], "us-east", "eu-west").rto_seconds is None


def test_lost_orders_are_the_acknowledged_ones_missing_after_promotion():
    acknowledged = [w for w in WRITES if w.ok and w.region == "us-east"]
    lost = lost_orders(acknowledged, present={1, 2, 3})
    assert lost == [4, 5]
    # lost from the last kept order (3, at t=3) to the last lost one (5, at t=5)
    assert loss_window_seconds(acknowledged, lost) == 2.0
    assert loss_window_seconds(acknowledged, []) == 0.0


def test_measurements_break_the_outage_into_detection_promotion_and_traffic():
    r = report()
    r.measure_writes(WRITES, fault_at=5.5, detected_at=6.5, promotion_started=7.0, promoted_at=8.0,
                     present_after_promotion={1, 2, 3, 4}, checked_before=10.0)
    m = r.measured
    assert (m["rtoSeconds"], m["detectionSeconds"], m["promotionSeconds"], m["trafficSwitchSeconds"]) == \
        (5.0, 1.0, 1.0, 2.0)
    assert (m["ordersLost"], m["lostSequenceNumbers"], m["rpoSeconds"]) == (1, [5], 1.0)
    assert r.writer == {"attempted": 12, "acknowledged": 8, "failed": 4, "ordersPerSecond": 0.7}


def test_a_drill_passes_only_when_every_check_passes_and_nothing_failed():
    r = report()
    assert not r.passed  # no check ran: nothing was proved
    r.check("RTO within objective", True, "5 s")
    assert r.passed and r.outcome == "passed"
    r.log("failback", "failed", "boom")
    assert not r.passed and r.outcome == "failed"


def test_an_aborted_drill_says_why_and_what_was_restored(tmp_path):
    r = report()
    r.check("RTO within objective", True, "5 s")
    r.aborted = "orders have been failing for 13.0 s, beyond --max-write-outage 12 s"
    r.restored = ["node web-1 back to accept", "failed back: us-east is primary again"]
    r.finish()
    json_path, md_path = r.write(tmp_path)
    doc = json.loads(json_path.read_text())
    assert doc["outcome"] == "aborted" and doc["restored"] == r.restored
    md = md_path.read_text()
    assert "ABORTED" in md and "**Stopped early:** orders have been failing" in md
    assert "- failed back: us-east is primary again" in md


def test_the_markdown_puts_objectives_next_to_measurements():
    r = report()
    r.measure_writes(WRITES, fault_at=5.5, detected_at=6.5, promotion_started=7.0, promoted_at=8.0,
                     present_after_promotion={1, 2, 3, 4, 5}, checked_before=10.0)
    r.check("RTO within objective", True, "5.0 s measured, objective 6 s")
    r.check("RPO within objective", True, "0 s")
    r.log("promote", "ok", {"mode": "planned"}, 1.0)
    md = r.markdown()
    assert "| RTO | 6 s | 5.0 s | met |" in md
    assert "| RPO | 15 s | 0.0 s (0 orders lost) | met |" in md
    assert "| detection (fault to traffic leaving us-east) | 1.0 |" in md
    assert '| promote | ok | 1.0 | {"mode": "planned"} |' in md


def test_reports_are_written_for_their_owner_only(tmp_path):
    r = report()
    r.finish()
    for path in r.write(tmp_path / "drill-prod"):  # a directory drctl creates: 0700
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((tmp_path / "drill-prod").stat().st_mode) == 0o700


def test_the_report_has_a_media_rpo_row_when_the_stack_has_media():
    r = DrillReport(kind="drill", stack="dr-test", primary="us-east", target="eu-west", fault="nodes-reject",
                    objectives={"rtoSeconds": 6, "rpoSeconds": 15, "mediaRpoSeconds": 300}, options={},
                    clock=lambda: 100.0)
    r.measured["mediaServedSeconds"] = 42.5
    r.check("media RPO within objective", True, "served 42.5 s after its upload")
    assert "| media RPO | 300 s | 42.5 s (drill object upload to served in eu-west) | met |" in r.markdown()


def test_no_media_rpo_row_without_media():
    assert "media RPO" not in report().markdown()


# --- a full outage (all-regions-down): the fallback page and the recovery time -----------------------

def outage_report() -> DrillReport:
    r = DrillReport(kind="drill", stack="dr-test", primary="us-east", target="us-east", fault=ALL_REGIONS_DOWN,
                    objectives={"rtoSeconds": 300, "rpoSeconds": 15}, options={"fault": ALL_REGIONS_DOWN},
                    clock=lambda: 100.0)
    r.measured = {
        "regionsDown": ["us-east", "eu-west"], "restoredFirst": "us-east",
        "fallbackPage": {"status": 503, "retryAfter": "300", "cacheControl": "no-store",
                         "marker": "origin answered 521", "title": "We'll be right back | Acme", "error": None,
                         "latencySeconds": 0.05, "servedAfterSeconds": 1.25},
        "outageRequests": 31, "outagePageAnswers": 31,
        "healthPath": {"path": "/healthz", "status": 521, "retryAfter": None, "cacheControl": None, "marker": None,
                       "title": None, "error": None, "latencySeconds": 0.04, "answeredByThePage": False},
        "recoverySeconds": 62.5, "pagesWhileRecovering": 60,
        "firstShopAnswer": {"status": 200, "title": "Acme Shop"},
    }
    r.check("fallback page served while every region was down", True, "31 of 31 shopper requests got it")
    r.check("the page asks clients to come back later", True, "Retry-After: 300; Cache-Control: no-store")
    r.check("health path never answered by the page", True, "/healthz through the edge: HTTP 521")
    r.check("recovery within objective", True, "62.5 s from us-east restored to the first shop page")
    r.restored = ["us-east: node web-1 back to accept", "eu-west: node web-1 back to accept"]
    r.log("fallback page", "ok", "the fallback page (HTTP 503, x-woocommerce-dr-fallback: origin answered 521)", 1.25)
    r.finish()
    return r


def test_an_outage_report_shows_the_page_seen_through_the_edge():
    md = outage_report().markdown()
    assert md.startswith("# DR drill of `dr-test`: PASSED\n")
    assert "Fault: `all-regions-down` (us-east, eu-west down at once); us-east brought back first" in md
    assert "\n## The fallback page\n" in md
    for row in ("| first served | 1.25 s after every region went down |", "| status | 503 |",
                "| Retry-After | 300 |", "| Cache-Control | no-store |",
                "| x-woocommerce-dr-fallback | origin answered 521 |",
                "| title | We'll be right back / Acme |",  # a pipe cannot break the table
                "| shopper requests that got it during the outage | 31 of 31 |",
                "| health path `/healthz` | HTTP 521 |"):
        assert f"\n{row}\n" in md, row


def test_an_outage_report_puts_the_recovery_time_next_to_the_objective():
    md = outage_report().markdown()
    assert "\n## Recovery\n" in md
    assert "\n| us-east restored to the first shop page through the edge | 300 s | 62.5 s | met |\n" in md
    assert "Pages served to shoppers after us-east was restored: 60." in md
    # none of the failover report's sections: there was no failover and no order
    assert "## Objectives" not in md and "## Orders" not in md and "RPO" not in md


def test_an_outage_report_keeps_checks_restores_and_the_step_log():
    md = outage_report().markdown()
    assert "- PASS recovery within objective: 62.5 s" in md
    assert "- us-east: node web-1 back to accept\n- eu-west: node web-1 back to accept" in md
    assert "| fallback page | ok | 1.25 | the fallback page (HTTP 503" in md


def test_an_outage_report_missing_the_recovery_says_so():
    r = outage_report()
    del r.measured["recoverySeconds"]
    r.checks = [c for c in r.checks if not c.name.startswith("recovery")]
    r.aborted = "the shop is not back through the edge 360.0 s after us-east was restored"
    md = r.markdown()
    assert "ABORTED" in md and "**Stopped early:** the shop is not back" in md
    assert "| us-east restored to the first shop page through the edge | 300 s | n/a |  |" in md


def test_an_outage_report_in_json_carries_every_figure(tmp_path):
    r = outage_report()
    json_path, _ = r.write(tmp_path)
    doc = json.loads(json_path.read_text())
    assert (doc["fault"], doc["outcome"]) == (ALL_REGIONS_DOWN, "passed")
    assert doc["measured"]["recoverySeconds"] == 62.5
    assert doc["measured"]["fallbackPage"]["status"] == 503
    assert doc["measured"]["fallbackPage"]["retryAfter"] == "300"
    assert doc["measured"]["healthPath"]["answeredByThePage"] is False
    assert [c["check"] for c in doc["checks"]] == [
        "fallback page served while every region was down", "the page asks clients to come back later",
        "health path never answered by the page", "recovery within objective"]
