"""The GitHub workflows, checked here so a typo fails `make test` instead of a run on GitHub: the
schema GitHub's own editor uses (check-jsonschema's copy, offline), the inputs pulumi/actions
really has, and what each workflow promises in docs/ci.md."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from drctl.stack.files import REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
SETUP_ACTION = REPO_ROOT / ".github" / "actions" / "pulumi-setup" / "action.yml"
STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in REPO_ROOT.glob("Pulumi.*.yaml"))

# The inputs of pulumi/actions v6 and v7 (v7 changed only the Node runtime), from the action's
# action.yml and src/config.ts. GitHub only warns about an unknown input, and the action ignores
# it: a misspelt `policy-packs` would silently run the preview without the policy pack.
PULUMI_ACTION_INPUTS = {
    "command", "stack-name", "pulumi-version", "pulumi-version-file", "work-dir", "comment-on-pr",
    "comment-on-pr-number", "comment-on-summary", "github-token", "cloud-url", "secrets-provider", "parallel",
    "message", "config-map", "expect-no-changes", "diff", "replace", "target", "target-dependents",
    "policyPacks", "policyPackConfigs", "refresh", "upsert", "remove", "edit-pr-comment", "color",
    "exclude-protected", "plan", "suppress-outputs", "suppress-progress", "always-include-summary",
    "oidc-pulumi-organization", "oidc-requested-token-type", "oidc-scope", "oidc-token-expiration",
}


def load(name: str) -> dict:
    with open(WORKFLOWS / name, encoding="utf-8") as f:
        workflow = yaml.safe_load(f)
    # YAML 1.1 reads the key `on` as True.
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


def steps(workflow: dict):
    for job_id, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, step


def pulumi_steps(workflow: dict) -> list[dict]:
    return [s for _, s in steps(workflow) if s.get("uses", "").startswith("pulumi/actions@")]


def check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, files)],
                          capture_output=True, text=True, timeout=60)


ALL_WORKFLOWS = sorted(p.name for p in WORKFLOWS.glob("*.yml"))


# --- Syntax ---------------------------------------------------------------------------------------

def test_every_workflow_matches_githubs_workflow_schema():
    done = check_jsonschema("vendor.github-workflows", *(WORKFLOWS / n for n in ALL_WORKFLOWS))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_setup_action_matches_githubs_action_schema():
    done = check_jsonschema("vendor.github-actions", SETUP_ACTION)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_catches_a_misspelt_key(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text((WORKFLOWS / "preview.yml").read_text().replace("runs-on:", "runs_on:"))
    done = check_jsonschema("vendor.github-workflows", broken)
    assert done.returncode == 1 and "runs_on" in done.stdout


@pytest.mark.parametrize("name", ALL_WORKFLOWS)
def test_pulumi_action_inputs_exist(name):
    for step in pulumi_steps(load(name)):
        assert set(step.get("with", {})) <= PULUMI_ACTION_INPUTS, step["with"]


@pytest.mark.parametrize("name", ALL_WORKFLOWS)
def test_actions_are_pinned_to_a_major_version(name):
    for job_id, step in steps(load(name)):
        uses = step.get("uses")
        if uses and not uses.startswith("./"):
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", uses), f"{name} {job_id}: {uses}"


@pytest.mark.parametrize("name", ALL_WORKFLOWS)
def test_matrix_and_needs_references_resolve(name):
    workflow = load(name)
    for job_id, job in workflow["jobs"].items():
        needs = job.get("needs", [])
        assert set([needs] if isinstance(needs, str) else needs) <= set(workflow["jobs"]), job_id
        used = set(re.findall(r"matrix\.([\w-]+)", yaml.safe_dump(job)))
        assert used <= set(job.get("strategy", {}).get("matrix", {})), f"{name} {job_id}: matrix.{used}"


def shell_steps():
    for name in ALL_WORKFLOWS:
        for job_id, step in steps(load(name)):
            if "run" in step:
                yield f"{name} {job_id}: {step.get('name', step['run'][:30])}", step["run"]
    for step in yaml.safe_load(SETUP_ACTION.read_text())["runs"]["steps"]:
        if "run" in step:
            yield f"pulumi-setup: {step['name']}", step["run"]


def test_every_shell_step_passes_shellcheck(tmp_path):
    binary = shutil.which("shellcheck")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("shellcheck is missing (.ci/run installs it)")
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    for where, script in shell_steps():
        # GitHub runs `run:` with `bash -e`; expressions are substituted before the shell sees them.
        path = tmp_path / "step.sh"
        path.write_text("set -e\n" + re.sub(r"\$\{\{.*?\}\}", "expr", script))
        done = subprocess.run([binary, "--shell=bash", str(path)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{where}\n{done.stdout}"


def test_every_secret_the_workflows_read_is_documented():
    docs = (REPO_ROOT / "docs" / "ci.md").read_text()
    used = {s for n in ALL_WORKFLOWS for s in re.findall(r"secrets\.(\w+)", (WORKFLOWS / n).read_text())}
    assert {s for s in used - {"GITHUB_TOKEN"} if f"`{s}`" not in docs} == set()


# --- preview.yml: every pull request ---------------------------------------------------------------

def test_pull_requests_run_the_tests_then_preview_every_stack():
    preview = load("preview.yml")
    job = preview["jobs"]["preview"]
    assert "pull_request" in preview["on"]
    assert preview["jobs"]["tests"]["uses"] == "./.github/workflows/tests.yml"
    assert job["needs"] == "tests"
    assert job["strategy"]["matrix"]["stack"] == ["prod", "dr-test"]
    assert sorted(job["strategy"]["matrix"]["stack"]) == STACKS


def test_the_preview_applies_the_policy_pack_and_comments_on_the_pull_request():
    preview = load("preview.yml")
    (step,) = pulumi_steps(preview)
    assert step["with"]["command"] == "preview"
    assert step["with"]["policyPacks"] == "policy"
    assert step["with"]["comment-on-pr"] is True
    assert "matrix.stack" in step["with"]["stack-name"]
    assert preview["jobs"]["preview"]["permissions"]["pull-requests"] == "write"


def test_each_stacks_cost_diff_is_posted_beside_its_preview_before_pulumi_runs():
    job = load("preview.yml")["jobs"]["preview"]
    (cost,) = [s for s in job["steps"] if "-m drctl plan" in s.get("run", "")]
    (preview,) = pulumi_steps(load("preview.yml"))
    assert job["steps"].index(cost) < job["steps"].index(preview)
    assert cost["continue-on-error"] is True  # a cost that cannot be made never holds up the preview
    assert cost["env"]["STACK"] == "${{ matrix.stack }}"
    assert cost["env"]["GH_TOKEN"] == "${{ github.token }}" and "secrets." not in yaml.safe_dump(cost)
    run = cost["run"].replace("\\\n", " ")
    assert 'git show "FETCH_HEAD:Pulumi.$STACK.yaml"' in run
    assert '--stack-file "$base" --compare-file "Pulumi.$STACK.yaml"' in run
    assert "python .github/scripts/cost_comment.py --stack \"$STACK\" --pr \"$PR\"" in run


def test_the_cost_steps_drctl_command_runs_as_written(tmp_path):
    """The drctl line of the step, run here on prod against a copy of itself (the workflow's base)."""
    (cost,) = [s for s in load("preview.yml")["jobs"]["preview"]["steps"] if "-m drctl plan" in s.get("run", "")]
    run = cost["run"].replace("\\\n", " ")
    command = next(line for line in run.splitlines() if "-m drctl plan" in line)
    base = tmp_path / "base-prod.yaml"
    base.write_text((REPO_ROOT / "Pulumi.prod.yaml").read_text())
    env = {**os.environ, "STACK": "prod", "base": str(base), "RUNNER_TEMP": str(tmp_path)}
    done = subprocess.run(["bash", "-c", command.replace("venv/bin/python", sys.executable)], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (tmp_path / "cost.err").read_text()
    table = (tmp_path / "cost.txt").read_text()
    assert table.startswith("Monthly cost (USD): prod (base-prod.yaml) -> prod (Pulumi.prod.yaml)")
    assert "TOTAL" in table


def test_both_backends_get_their_credentials():
    for name in ("preview.yml", "deploy.yml"):
        (step,) = pulumi_steps(load(name))
        assert step["with"]["cloud-url"] == "${{ secrets.PULUMI_BACKEND_URL }}"
        assert {"PULUMI_ACCESS_TOKEN", "PULUMI_CONFIG_PASSPHRASE"} <= set(step["env"])


# --- deploy.yml: main to prod ------------------------------------------------------------------------

def test_a_push_to_main_deploys_prod_after_the_tests():
    deploy = load("deploy.yml")
    job = deploy["jobs"]["up"]
    (step,) = pulumi_steps(deploy)
    assert deploy["on"]["push"]["branches"] == ["main"]
    assert job["needs"] == "tests"
    assert step["with"]["command"] == "up"
    assert step["with"]["policyPacks"] == "policy"
    assert "'prod'" in step["with"]["stack-name"]


def test_deploys_wait_for_the_environments_reviewers_and_never_overlap():
    job = load("deploy.yml")["jobs"]["up"]
    assert job["environment"] == "${{ inputs.stack || 'prod' }}"
    assert job["concurrency"] == {"group": "pulumi-up-${{ inputs.stack || 'prod' }}", "cancel-in-progress": False}


def test_prod_is_refused_without_required_reviewers_before_pulumi_runs():
    job = load("deploy.yml")["jobs"]["up"]
    names = [s.get("name", s.get("uses")) for s in job["steps"]]
    guard = next(s for s in job["steps"] if s.get("name", "").startswith("Refuse to deploy prod"))
    assert names.index(guard["name"]) < names.index("pulumi/actions@v7")
    assert "required_reviewers" in guard["run"] and "refs/heads/main" in guard["run"]


# --- drift.yml: scheduled ----------------------------------------------------------------------------

def test_drift_is_checked_on_a_schedule_for_every_stack():
    drift = load("drift.yml")
    job = drift["jobs"]["drift"]
    assert drift["on"]["schedule"][0]["cron"]
    assert sorted(job["strategy"]["matrix"]["stack"]) == STACKS
    preview = next(s for s in job["steps"] if s.get("id") == "preview")
    assert "--refresh --expect-no-changes" in preview["run"].replace("\\\n", " ").replace("  ", " ")
    assert "--diff" in preview["run"]


def test_drift_reports_on_an_issue_even_when_the_check_failed():
    drift = load("drift.yml")
    report = drift["jobs"]["drift"]["steps"][-1]
    assert drift["permissions"]["issues"] == "write"
    assert report["if"] == "always()"
    assert report["run"].startswith("python .github/scripts/drift_issue.py")


def test_drift_never_shares_the_deploy_queue():
    group = load("drift.yml")["jobs"]["drift"]["concurrency"]["group"]
    assert not group.startswith("pulumi-up-")


# --- dr-drill.yml: monthly ---------------------------------------------------------------------------

def test_the_drill_runs_monthly_on_dr_test_and_never_beside_a_deploy_of_it():
    drill = load("dr-drill.yml")
    job = drill["jobs"]["drill"]
    assert drill["on"]["schedule"][0]["cron"].split()[2:4] == ["3", "*"]
    assert job["environment"] == "dr-test"
    assert job["concurrency"] == {"group": "pulumi-up-dr-test", "cancel-in-progress": False}


def test_the_drill_acts_with_yes_and_always_uploads_its_report_and_journal():
    job = load("dr-drill.yml")["jobs"]["drill"]
    drill = next(s for s in job["steps"] if s.get("name") == "Drill")
    assert "-m drctl drill --outputs" in drill["run"] and "--yes" in drill["run"]
    assert "--report-dir drill-report" in drill["run"]
    upload = job["steps"][-1]
    assert upload["uses"].startswith("actions/upload-artifact@") and upload["if"] == "always()"
    assert upload["with"]["path"].split() == ["drill-report/", "drctl-state/"]


def test_the_drills_stack_outputs_stay_out_of_the_workspace_and_the_artifact():
    job = load("dr-drill.yml")["jobs"]["drill"]
    read = next(s for s in job["steps"] if s.get("name") == "Read the dr-test stack outputs")
    assert '> "$RUNNER_TEMP/outputs.json"' in read["run"]


# --- What CI installs is what the tests ran ----------------------------------------------------------

def pins(path: Path) -> dict[str, str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return dict(line.split("==") for line in lines if "==" in line)


def test_the_pulumi_cli_version_matches_the_pinned_sdk():
    assert (REPO_ROOT / ".pulumi-version").read_text().strip() == pins(REPO_ROOT / "requirements.txt")["pulumi"]


def test_the_policy_pack_pins_what_the_tests_use():
    tested = pins(REPO_ROOT / "requirements.txt") | pins(REPO_ROOT / "requirements-dev.txt")
    for package, version in pins(REPO_ROOT / "policy" / "requirements.txt").items():
        assert tested[package] == version, package


def test_ci_builds_the_policy_virtualenv_the_pack_names():
    with open(REPO_ROOT / "policy" / "PulumiPolicy.yaml", encoding="utf-8") as f:
        runtime = yaml.safe_load(f)["runtime"]
    assert runtime["name"] == "python"
    venv = f"policy/{runtime['options']['virtualenv']}"
    assert f"python -m venv {venv}" in SETUP_ACTION.read_text()
    assert f"/{venv}" in (REPO_ROOT / ".gitignore").read_text().splitlines()


def test_the_tests_workflow_runs_the_same_entry_point_as_every_other_ci_then_the_real_server_tests_again():
    first, again = [s for _, s in steps(load("tests.yml")) if "run" in s]
    assert first["run"].endswith(".ci/run")
    assert again["run"].endswith("make test-again")
    assert "$(PY) -m pytest -q -m integration" in (REPO_ROOT / "Makefile").read_text()
