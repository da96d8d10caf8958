"""`drctl plan --compare` and `--compare-file`: both totals and the change per line, as a pull
request comment shows them. Golden files in golden/, made with a frozen copy of the price list
(golden/prices.json) and a fixed day; after a deliberate change of the output, rewrite them with
`UPDATE_GOLDEN=1 python -m pytest tests/drctl/plan/test_cost_compare.py` and read the diff."""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

import pytest
import yaml

from drctl.cli import main
from drctl.plan import prices as price_module
from tests.support import harness

GOLDEN = Path(__file__).with_name("golden")
PRICES = GOLDEN / "prices.json"
DAY = datetime.date(2026, 12, 1)  # two days after the frozen list was checked


@pytest.fixture(autouse=True)
def fixed_day(monkeypatch):
    monkeypatch.setattr(price_module, "today", lambda: DAY)


def plan(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["plan", *argv, "--price-list", str(PRICES)])
    out, err = capsys.readouterr()
    return code, out, err


def matches_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(actual, encoding="utf-8")
    assert actual == path.read_text(encoding="utf-8"), f"differs from {path}; see this module's docstring"


def changed_prod(tmp_path: Path) -> Path:
    """prod as a pull request might change it: a third region and a smaller web tier in eu-west."""
    regions = [{"region": "us-east", "webNodes": 2, "instanceType": "g6-standard-2"},
               {"region": "eu-west", "webNodes": 1, "instanceType": "g6-standard-2"},
               {"region": "ap-south", "webNodes": 1, "instanceType": "g6-standard-1"}]
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump({"config": harness.stack_mapping("prod", regions=regions)}, sort_keys=False))
    return path


def test_prod_against_dr_test_as_text(capsys):
    code, out, err = plan(capsys, "--stack", "prod", "--compare", "dr-test")
    assert code == 0, err
    matches_golden("compare_prod_dr-test.txt", out)


def test_the_json_carries_the_same_numbers(capsys):
    code, out, err = plan(capsys, "-s", "prod", "--compare", "dr-test", "-o", "json")
    assert code == 0, err
    matches_golden("compare_prod_dr-test.json", out)
    doc = json.loads(out)
    # Both: the Object Storage subscription (+5). dr-test's guards: two Linodes (+10) and two reserved IPv4s, not in the frozen price list (2 unknown).
    assert doc["total"] == {"base": 155.0, "compare": 79.0, "change": -76.0,
                            "unknownItems": {"base": 2, "compare": 3}}
    web = next(line for line in doc["lines"] if line["kind"] == "web Linodes" and line["region"] == "us-east"
               and line["base"] is not None)
    assert web["base"] == {"count": 2, "each": 24.0, "monthly": 48.0, "unconfirmed": False}
    assert web["compare"] is None and web["change"] == -48.0


def test_a_changed_stack_file_against_the_committed_one(capsys, tmp_path):
    code, out, err = plan(capsys, "-s", "prod", "--compare-file", str(changed_prod(tmp_path)))
    assert code == 0, err
    matches_golden("compare_prod_changed.txt", out)
    assert "Pulumi.prod.yaml" in out.splitlines()[1] and "changed.yaml" in out.splitlines()[1]


def test_comparing_prints_only_the_cost(capsys):
    _, out, _ = plan(capsys, "-s", "prod", "--compare", "dr-test")
    assert "+ pulumi:pulumi:Stack" not in out and "Outputs:" not in out


def test_a_stale_price_list_is_warned_about_in_the_comparison(capsys, monkeypatch):
    monkeypatch.setattr(price_module, "today", lambda: DAY + datetime.timedelta(days=120))
    _, out, _ = plan(capsys, "-s", "prod", "--compare", "dr-test")
    assert "Warning: the price list is 122 days old (more than 90)" in out


def test_an_unknown_stack_to_compare_is_a_usage_error_naming_the_flag(capsys):
    code, out, err = plan(capsys, "-s", "prod", "--compare", "staging")
    assert code == 2 and out == ""
    assert err.startswith("drctl plan: --compare: no stack file Pulumi.staging.yaml")


def test_a_missing_file_to_compare_is_a_usage_error_naming_the_flag(capsys, tmp_path):
    code, _, err = plan(capsys, "-s", "prod", "--compare-file", str(tmp_path / "nope.yaml"))
    assert code == 2 and err.startswith("drctl plan: --compare-file: no such file")


def test_compare_and_compare_file_cannot_be_given_together(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main(["plan", "-s", "prod", "--compare", "dr-test", "--compare-file", str(tmp_path / "x.yaml")])
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
