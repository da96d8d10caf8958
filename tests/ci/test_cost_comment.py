"""The preview's cost comment, run as the workflow runs it, against a stand-in `gh` that records
every call: one comment per stack, posted once and edited on every later push, and a cost that
could not be made said as such, never posted as a table."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from drctl.stack.files import REPO_ROOT
from tests.support.fake_gh import FakeGh

SCRIPT = REPO_ROOT / ".github" / "scripts" / "cost_comment.py"
TABLE = """Monthly cost (USD): prod (base-prod.yaml) -> prod (Pulumi.prod.yaml), price list of 2026-11-29 (2 days old)
    REGION   KIND         DETAIL                      base-prod.yaml    Pulumi.prod.yaml  CHANGE
    eu-west  web Linodes  g6-standard-2 (Linode 4GB)  2 x 24.00 = 48.00  1 x 24.00 = 24.00  -24.00
"""

# `gh api --paginate ... --jq '.[]'` prints one JSON value per comment; this stand-in prints the
# comments in GH_COMMENTS the same way, and records every call with what it was given on stdin.
FAKE_GH = """\
import json, os, sys
stdin = sys.stdin.read() if "-" in sys.argv else None
with open(os.environ["GH_CALLS"], "a") as log:
    log.write(json.dumps({"args": sys.argv[1:], "stdin": stdin}) + "\\n")
if sys.argv[1:3] == ["api", "--paginate"]:
    for comment in json.loads(os.environ["GH_COMMENTS"]):
        print(json.dumps(comment))
"""


@pytest.fixture
def comment(tmp_path):
    """Run the script with a recording `gh`; returns (exit code, stdout, [calls])."""
    fake = FakeGh(tmp_path, FAKE_GH)

    def run(status: str = "0", cost: str = TABLE, errors: str = "", comments=(), stack: str = "prod"):
        (tmp_path / "cost.txt").write_text(cost)
        (tmp_path / "cost.err").write_text(errors)
        env = fake.env(GH_COMMENTS=json.dumps(list(comments)))
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "--stack", stack, "--pr", "12", "--status", status,
             "--cost", str(tmp_path / "cost.txt"), "--errors", str(tmp_path / "cost.err")],
            env=env, capture_output=True, text=True, timeout=30,
        )
        return done.returncode, done.stdout, fake.take_calls()

    return run


def test_the_first_push_posts_the_table_as_a_new_comment(comment):
    code, out, calls = comment()
    assert code == 0 and out.strip() == "prod: cost comment posted on pull request #12"
    listed, posted = calls
    assert listed["args"] == ["api", "--paginate", "repos/{owner}/{repo}/issues/12/comments", "--jq", ".[]"]
    assert posted["args"] == ["pr", "comment", "12", "--body-file", "-"]
    body = posted["stdin"]
    assert body.startswith("<!-- drctl-cost:prod -->\n### Monthly cost of `prod`: base branch → this pull request")
    assert f"```text\n{TABLE.rstrip()}\n```" in body


def test_later_pushes_edit_the_stacks_own_comment_and_leave_the_others(comment):
    others = [{"id": 1, "body": "`preview` on woocommerce-dr/prod ..."},
              {"id": 2, "body": "<!-- drctl-cost:dr-test -->\n### Monthly cost of `dr-test` ..."},
              {"id": 3, "body": "<!-- drctl-cost:prod -->\n### Monthly cost of `prod` ..."}]
    code, out, calls = comment(comments=others)
    assert code == 0 and "updated" in out
    edit = calls[-1]
    assert edit["args"] == ["api", "--method", "PATCH", "repos/{owner}/{repo}/issues/comments/3", "--input", "-"]
    assert json.loads(edit["stdin"])["body"].startswith("<!-- drctl-cost:prod -->")


def test_a_cost_that_could_not_be_made_is_said_not_shown_as_a_table(comment):
    error = "drctl plan: --stack-file: Pulumi.prod.yaml:7: woocommerce-dr:regions: ..."
    _, _, calls = comment(status="2", cost="", errors=error)
    body = calls[-1]["stdin"]
    assert "**The cost could not be computed** (`drctl plan` exited 2)" in body
    assert error in body and "Monthly cost (USD)" not in body


def test_an_empty_table_is_not_posted_as_a_cost(comment):
    _, _, calls = comment(status="0", cost="")
    assert "could not be computed" in calls[-1]["stdin"]
