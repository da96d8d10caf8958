"""`drctl plan`: the offline plan of a stack, as a newcomer runs it."""

import json
import re
import subprocess
import sys

import pytest

from drctl.cli import main
from drctl.stack.files import REPO_ROOT
from tests.support import harness


def plan(capsys, *argv):
    code = main(["plan", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("stack", ["prod", "dr-test"])
def test_text_plan_says_how_it_was_made_and_lists_outputs(capsys, stack):
    code, out, err = plan(capsys, "--stack", stack)
    assert code == 0, err
    assert out.startswith(f"Offline plan: __main__.py ran under the Pulumi SDK's mock engine with Pulumi.{stack}.yaml")
    assert "+ pulumi:pulumi:Stack  woocommerce-dr-" + stack in out
    assert "Outputs:" in out and "Resources: " in out


@pytest.mark.parametrize("stack", ["prod", "dr-test"])
def test_json_plan_is_valid_json_with_resources_and_outputs(capsys, stack):
    code, out, _ = plan(capsys, "-s", stack, "--output", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["stack"] == stack and doc["project"] == "woocommerce-dr"
    assert isinstance(doc["resources"], list)
    assert doc["outputs"]["url"].startswith("https://")
    assert doc["summary"]["toCreate"] == len(doc["resources"])


def test_the_text_plan_ends_with_the_monthly_cost_per_region_and_kind(capsys):
    _, out, _ = plan(capsys, "-s", "prod")
    table = out[out.index("Monthly cost (USD), price list of "):]
    assert "    REGION      KIND" in table
    assert re.search(r"us-east +web Linodes +g6-standard-2 \(Linode 4GB\) +2 +24\.00 +48\.00", table)
    assert "    By region: us-east 264.00, eu-west 82.00, account 5.00, cloudflare 10.00 + 1 x ?" in table
    assert "    Total: 361.00 + 1 x ? a month" in table
    assert "Usage-priced, not in the total:" in table


def test_the_json_plan_carries_the_same_cost(capsys):
    _, out, _ = plan(capsys, "-s", "dr-test", "-o", "json")
    cost = json.loads(out)["cost"]
    # dr-test's guards add two Linodes (2 x 5) and two reserved IPv4s (2 x 2, unconfirmed),
    # and the Object Storage subscription 5.
    assert cost["total"] == {"monthly": 83.0, "unknownItems": 1, "unconfirmedItems": 5}
    assert cost["byRegion"]["us-east"] == {"monthly": 27.0, "unknownItems": 0}
    assert cost["notBilled"]["linode:index/firewall:Firewall"]["count"] == 8  # 6 + one per guard
    assert cost["unpriced"] == {}


def test_a_broken_price_list_given_on_the_command_line_is_a_usage_error(capsys, tmp_path):
    broken = tmp_path / "prices.json"
    broken.write_text("[]")
    code, out, err = plan(capsys, "-s", "prod", "--price-list", str(broken))
    assert code == 2 and out == ""
    assert err.startswith(f"drctl plan: the price list {broken} is not valid:")


def test_plan_never_prints_secret_values(capsys):
    for fmt in ("text", "json"):
        _, out, _ = plan(capsys, "-s", "prod", "-o", fmt)
        assert "offline-placeholder-for-" not in out
        assert "placeholder-set-with-pulumi-config-set-secret" not in out


def test_unknown_stack_is_a_usage_error(capsys):
    code, out, err = plan(capsys, "-s", "staging")
    assert code == 2 and out == ""
    assert err.strip() == (
        "drctl plan: --stack: no stack file Pulumi.staging.yaml (got 'staging'; allowed: dr-test, prod)"
    )


def test_invalid_stack_file_prints_every_problem_and_exits_2(tmp_path):
    path = harness.write_stack_file(
        tmp_path, "prod",
        regions=[{"region": "us-east", "webnodes": 2}, {"region": "eu-wst", "webNodes": 0}],
        nodeBalancer={"checkInterval": 10, "checkTimeout": 10},
        objectives={"rtoSeconds": 60},
    )
    proc = subprocess.run(
        [sys.executable, "-m", "drctl", "plan", "-s", "prod", "--stack-file", str(path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("woocommerce-dr:")]
    assert [line.split(": ", 1)[0] for line in lines] == [
        "woocommerce-dr:regions[0].webnodes",
        "woocommerce-dr:regions[1].webNodes",
        "woocommerce-dr:regions[1].region",
        "woocommerce-dr:nodeBalancer.checkTimeout",
        "woocommerce-dr:traffic.monitor",
    ]


def test_make_plan_entry_point_runs_as_a_module():
    proc = subprocess.run([sys.executable, "-m", "drctl", "plan", "--stack", "prod"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "mock engine" in proc.stdout


def test_a_region_without_a_needed_capability_is_the_users_problem_so_exit_2(capsys, monkeypatch):
    from drctl.plan import engine as offline_engine

    real = offline_engine.run_program
    monkeypatch.setattr(offline_engine, "run_program", lambda stack, preview: real(
        stack, preview, region_capabilities={"eu-west": ("Linodes",)}))
    code, out, err = plan(capsys, "-s", "prod")
    assert code == 2 and out == ""
    assert "region 'eu-west' lacks NodeBalancers, Cloud Firewall, Metadata" in err


def test_a_program_bug_exits_1(capsys, monkeypatch):
    from drctl.plan import engine as offline_engine

    real = offline_engine.run_program
    monkeypatch.setattr(offline_engine, "run_program", lambda stack, preview: real(
        stack, preview, program=REPO_ROOT / "tests" / "program" / "programs" / "duplicate" / "__main__.py"))
    code, _, err = plan(capsys, "-s", "prod")
    assert code == 1 and "two resources share the URN" in err
