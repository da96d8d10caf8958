"""The scheduled drift check's reporter, run as the workflow runs it, against a stand-in `gh` that
records every call: one issue per stack, opened on drift, commented on while drift lasts, closed
when the stack is in sync again, and a failed check reported as such, never as drift."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from drctl.stack.files import REPO_ROOT
from tests.support.fake_gh import FakeGh

SCRIPT = REPO_ROOT / ".github" / "scripts" / "drift_issue.py"
RUN_URL = "https://github.com/acme/shop/actions/runs/42"
DRIFT_LOG = """Previewing update (prod):
    ~ linode:index/firewall:Firewall prod-us-east-web-fw update [diff: ~inbounds]
Resources:
    ~ 1 to update
error: no changes were expected but changes were proposed
"""

FAKE_GH = """\
import json, os, sys
with open(os.environ["GH_CALLS"], "a") as log:
    log.write(json.dumps({"args": sys.argv[1:], "stdin": sys.stdin.read() if "-" in sys.argv else None}) + "\\n")
if sys.argv[1:3] == ["issue", "list"]:
    print(os.environ["GH_OPEN_ISSUES"])
"""


@pytest.fixture
def gh(tmp_path):
    """Run the reporter with a recording `gh`; returns (exit code, [calls])."""
    fake = FakeGh(tmp_path, FAKE_GH)

    def report(status: str, log: str | None, open_issues=(), stack: str = "prod"):
        log_file = tmp_path / "preview.log"
        if log is not None:
            log_file.write_text(log)
        env = fake.env(GH_OPEN_ISSUES=json.dumps(list(open_issues)))
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "--stack", stack, "--status", status, "--log", str(log_file),
             "--run-url", RUN_URL],
            env=env, capture_output=True, text=True, timeout=30,
        )
        return done.returncode, fake.take_calls()

    return report


def commands(calls):
    return [c["args"][:2] for c in calls]


def test_drift_opens_one_labelled_issue_for_the_stack(gh):
    code, calls = gh("255", DRIFT_LOG)
    assert code == 1
    assert commands(calls) == [["issue", "list"], ["label", "create"], ["issue", "create"]]
    create = calls[-1]
    assert create["args"][2:] == ["--title", "Drift on stack prod", "--label", "drift", "--body-file", "-"]
    assert create["stdin"].startswith("**The real resources of `prod` no longer match the code.**")
    assert "~ linode:index/firewall:Firewall prod-us-east-web-fw update" in create["stdin"]
    assert RUN_URL in create["stdin"]


def test_lasting_drift_comments_on_the_open_issue_instead_of_opening_another(gh):
    open_issues = [{"number": 7, "title": "Drift on stack dr-test"}, {"number": 9, "title": "Drift on stack prod"}]
    code, calls = gh("255", DRIFT_LOG, open_issues)
    assert code == 1
    assert [c["args"][:3] for c in calls[1:]] == [["issue", "comment", "9"]]
    assert "no longer match the code" in calls[1]["stdin"]


def test_a_stack_in_sync_again_closes_its_issue(gh):
    code, calls = gh("0", "Resources:\n    12 unchanged\n", [{"number": 9, "title": "Drift on stack prod"}])
    assert code == 0
    assert calls[1]["args"] == ["issue", "close", "9", "--comment", f"`prod` matches the code again: {RUN_URL}"]


def test_a_stack_in_sync_with_no_issue_touches_nothing(gh):
    code, calls = gh("0", "Resources:\n    12 unchanged\n")
    assert code == 0
    assert commands(calls) == [["issue", "list"]]


def test_a_check_that_could_not_run_is_reported_as_such_not_as_drift(gh):
    code, calls = gh("255", "error: PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI sessions\n")
    assert code == 1
    body = calls[-1]["stdin"]
    assert body.startswith("**The drift check of `prod` could not run**, so drift is unknown (this is not drift")
    assert "PULUMI_ACCESS_TOKEN must be set" in body


def test_a_check_that_never_started_is_reported(gh):
    code, calls = gh("", None)
    assert code == 1
    assert "(no output: the check did not start; see the run)" in calls[-1]["stdin"]


def test_a_huge_log_keeps_its_end_within_githubs_body_limit(gh):
    log = "x" * 100_000 + "\nResources:\n    ~ 400 to update\nerror: no changes were expected but changes were proposed\n"
    _, calls = gh("255", log)
    body = calls[-1]["stdin"]
    assert len(body) < 65_536
    assert "~ 400 to update" in body and "start of the log cut" in body


def test_only_an_issue_with_the_exact_title_counts(gh):
    _, calls = gh("255", DRIFT_LOG, [{"number": 3, "title": "Drift on stack prod-old"}])
    assert commands(calls)[-1] == ["issue", "create"]


def test_the_script_has_no_dependencies_beyond_the_standard_library():
    imports = {line.split()[1].split(".")[0] for line in Path(SCRIPT).read_text().splitlines()
               if line.startswith(("import ", "from "))}
    assert imports <= set(sys.stdlib_module_names) | {"__future__"}
