"""Resumable runbooks: the journal, the anti-flapping block period and hooks."""

import json
import os
import stat
import subprocess
import sys

import pytest

from drctl.runbook.hooks import HookFailed, run_hooks
from drctl.runbook.journal import Journal, JournalError, PromotionHistory, RunLock, Step
from drctl.stack.files import REPO_ROOT


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def steps(log, fail_at=None):
    def make(name):
        def run():
            if name == fail_at:
                raise RuntimeError(f"{name} broke")
            log.append(name)
            return {"ran": name}
        return Step(name, f"do {name}", run)
    return [make(n) for n in ("fence", "catch-up", "promote", "switch-traffic")]


def test_a_crash_midway_resumes_without_repeating_finished_steps(tmp_path):
    path, log = tmp_path / "promote.json", []
    first = Journal(path, "promote", {"region": "eu-west"})
    assert first.open() is False
    with pytest.raises(RuntimeError, match="promote broke"):
        first.run(steps(log, fail_at="promote"), say=lambda _: None)
    last = json.loads(path.read_text())["steps"][-1]
    assert (last["name"], last["status"], last["error"]) == ("promote", "failed", "promote broke")

    said = []
    second = Journal(path, "promote", {"region": "eu-west"})
    assert second.open() is True
    second.run(steps(log), say=said.append)
    second.finish("success")
    assert log == ["fence", "catch-up", "promote", "switch-traffic"]
    assert said[:2] == ["  = do fence (done in an earlier run)", "  = do catch-up (done in an earlier run)"]


def test_a_resumed_run_reads_what_finished_steps_returned(tmp_path):
    path = tmp_path / "promote.json"
    first = Journal(path, "promote", {"region": "eu-west"})
    first.open()
    with pytest.raises(RuntimeError):
        first.run(steps([], fail_at="catch-up"), say=lambda _: None)
    second = Journal(path, "promote", {"region": "eu-west"})
    second.open()
    assert second.detail("fence") == {"ran": "fence"}
    assert second.detail("catch-up") is None  # failed: nothing to read


def test_a_different_operation_is_refused_while_one_is_unfinished(tmp_path):
    path = tmp_path / "ops.json"
    j = Journal(path, "promote", {"region": "eu-west"})
    j.open()
    j.run(steps([])[:1], say=lambda _: None)
    with pytest.raises(JournalError) as err:
        Journal(path, "promote", {"region": "ap-south"}).open()
    assert str(err.value) == (
        f"an unfinished promote region=eu-west is recorded in {path} (last step done: fence); finish it by "
        "re-running that command, or pass --abandon-journal to start promote anyway"
    )
    assert Journal(path, "promote", {"region": "ap-south"}).open(abandon=True) is False


def test_a_finished_journal_starts_afresh(tmp_path):
    path = tmp_path / "ops.json"
    j = Journal(path, "promote", {"region": "eu-west"})
    j.open()
    j.finish("success")
    assert Journal(path, "promote", {"region": "eu-west"}).open() is False


def test_block_period_refuses_a_second_promotion_unless_forced(tmp_path):
    clock = Clock()
    history = PromotionHistory(tmp_path / "history.json", clock=clock)
    history.check(3600, force=False)
    history.record("us-east", "eu-west")
    clock.now += 600
    with pytest.raises(JournalError) as err:
        history.check(3600, force=False)
    assert str(err.value) == (
        "the last promotion (us-east -> eu-west) was 600 s ago, within the 3600 s block period "
        "(--block-seconds); pass --force if this really is a second failure"
    )
    history.check(3600, force=True)
    clock.now += 3000
    history.check(3600, force=False)


def _script(tmp_path, name, body):
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_hooks_see_the_operation_in_their_environment(tmp_path):
    hook = _script(tmp_path, "pre.sh", 'echo "$DRCTL_OPERATION $DRCTL_PHASE $DRCTL_TO_REGION"\n')
    assert run_hooks([hook], {"DRCTL_OPERATION": "promote", "DRCTL_PHASE": "pre", "DRCTL_TO_REGION": "eu-west"}) == [
        "promote pre eu-west"]


def test_a_failing_hook_is_reported_with_its_output(tmp_path):
    hook = _script(tmp_path, "fail.sh", 'echo "maintenance window closed" >&2; exit 3\n')
    with pytest.raises(HookFailed) as err:
        run_hooks([hook], {})
    assert str(err.value) == f"hook {hook!r} exited 3: maintenance window closed"


def test_a_missing_hook_is_reported(tmp_path):
    with pytest.raises(HookFailed, match="not found"):
        run_hooks([str(tmp_path / "nope")], {})


def test_hooks_do_not_inherit_api_tokens(tmp_path, monkeypatch):
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "cf-secret")
    monkeypatch.setenv("LINODE_TOKEN", "linode-secret")
    hook = _script(tmp_path, "env.sh", 'echo "${CLOUDFLARE_API_TOKEN:-none} ${LINODE_TOKEN:-none} $DRCTL_PHASE"\n')
    assert run_hooks([hook], {"DRCTL_PHASE": "pre"}) == ["none none pre"]


def test_peek_refuses_like_open_without_writing(tmp_path):
    path = tmp_path / "ops.json"
    j = Journal(path, "promote", {"region": "eu-west"})
    j.open()
    before = path.read_text()
    with pytest.raises(JournalError, match="an unfinished promote region=eu-west"):
        Journal(path, "failback", {"to": "us-east"}).peek()
    assert Journal(path, "failback", {"to": "us-east"}).peek(abandon=True) is False
    assert Journal(path, "promote", {"region": "eu-west"}).peek() is True
    assert path.read_text() == before


# --- state files: atomic, private, read fail-closed ------------------------------------------------


def test_a_truncated_promotion_history_refuses_instead_of_passing_the_block_check(tmp_path):
    history = PromotionHistory(tmp_path / "promotions.json", clock=Clock())
    history.record("us-east", "eu-west")
    history.path.write_text(history.path.read_text()[:20])  # a crash mid-write, as the old writer allowed
    with pytest.raises(JournalError, match=r"promotion history .* is not valid JSON .* move it aside"):
        history.check(block_seconds=3600, force=False)
    with pytest.raises(JournalError):
        history.record("eu-west", "us-east")  # nor is it overwritten with a history that forgot the first
    history.check(block_seconds=3600, force=True)  # --force is the operator's explicit override


def test_a_history_that_is_not_a_list_of_promotions_refuses(tmp_path):
    history = PromotionHistory(tmp_path / "promotions.json", clock=Clock())
    history.path.write_text('{"at": 1}')
    with pytest.raises(JournalError, match="is not a list of promotions"):
        history.last()


def test_state_files_are_private_and_written_whole(tmp_path):
    state = tmp_path / "state" / "prod"  # neither directory exists yet
    journal = Journal(state / "journal.json", "promote", {"region": "eu-west"})
    journal.open()
    PromotionHistory(state / "promotions.json").record("us-east", "eu-west")
    for path in (state / "journal.json", state / "promotions.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for directory in (state, state.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    assert sorted(p.name for p in state.iterdir()) == ["journal.json", "promotions.json"]  # no temp file left


def test_a_second_run_is_refused_while_the_first_holds_the_lock_and_names_it(tmp_path):
    first, second = RunLock(tmp_path / "lock"), RunLock(tmp_path / "lock")
    holder = first.acquire("promote")
    assert holder["pid"] == os.getpid() and holder["operation"] == "promote"
    with pytest.raises(JournalError, match=rf"another drctl promote is running on this stack \(pid {os.getpid()} on "
                                           r"\S+, since \d{4}-\d\d-\d\d .*two runs at once would both fence and promote"):
        second.acquire("failback")
    first.release()
    assert second.acquire("failback")["operation"] == "failback"  # free once the first is done
    second.release()


def test_the_lock_dies_with_its_holder(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from drctl.runbook.journal import RunLock; "
        "RunLock(Path(sys.argv[1])).acquire('promote'); print('held', flush=True); time.sleep(60)"),
        str(tmp_path / "lock")], stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(JournalError, match=f"pid {holder.pid} on"):
            RunLock(tmp_path / "lock").acquire("promote")
    finally:
        holder.kill()
        holder.wait()
    RunLock(tmp_path / "lock").acquire("promote")  # a killed holder leaves no stale lock
