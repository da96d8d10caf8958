"""The `automation` and `access` parts of the stack-outputs contract: an older stack (neither part)
reads as promoted by hand; a guard's entry needs its reserved IPv4 but may lack its IPv6."""

from __future__ import annotations

import pytest

from drctl.stack.outputs import PROMOTION_BUDGET_SECONDS, OutputsError, fast_confirm_detection_seconds, parse_outputs
from tests.support.runbook_support import outputs_doc, paper_servers

GUARD = {"region": "us-central", "label": "woocommerce-dr-prod-guard-us-central", "ipv4": "172.233.1.2",
         "ipv6": "2600:3c00::1"}


def test_an_older_stack_is_promoted_by_hand(tmp_path):
    doc = outputs_doc(paper_servers(tmp_path))["drctl"]
    doc.pop("automation", None), doc.pop("access", None)
    out = parse_outputs(doc, "test")
    assert (out.automation.promote, out.automation.guards, out.access.operator_cidrs) == ("manual", (), ())
    assert (out.automation.confirm_seconds, out.automation.fast_interval) == (60, 5)


def test_automatic_promotion_names_its_guards(tmp_path):
    doc = outputs_doc(paper_servers(tmp_path))["drctl"]
    doc["automation"] = {"promote": "automatic", "confirmSeconds": 90, "fastInterval": 3,
                         "guards": [GUARD, {**GUARD, "region": "eu-central", "ipv6": None}]}
    doc["access"] = {"operatorCidrs": ["203.0.113.7/32"]}
    out = parse_outputs(doc, "test")
    assert [g.region for g in out.automation.guards] == ["us-central", "eu-central"]
    assert out.automation.guards[1].ipv6 is None  # a guard's own copy cannot know it
    assert out.export()["automation"]["guards"][0] == GUARD
    assert out.access.operator_cidrs == ("203.0.113.7/32",)


def test_a_guard_without_its_address_or_a_misspelt_promote_is_refused(tmp_path):
    doc = outputs_doc(paper_servers(tmp_path))["drctl"]
    doc["automation"] = {"promote": "auto", "guards": [{k: v for k, v in GUARD.items() if k != "ipv4"}]}
    with pytest.raises(OutputsError) as err:
        parse_outputs(doc, "test")
    assert "drctl.automation.promote: Input should be 'manual' or 'automatic' (got 'auto')" in str(err.value)
    assert "drctl.automation.guards[0].ipv4: Field required" in str(err.value)


def test_the_shared_detection_formula_and_budget():
    assert fast_confirm_detection_seconds(interval=60, fall=2, fast_interval=5, timeout=5) == 70
    assert fast_confirm_detection_seconds(interval=60, fall=0, fast_interval=5, timeout=5) == 65  # 0 counts as 1
    assert PROMOTION_BUDGET_SECONDS == 90
