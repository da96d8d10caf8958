"""drctl promote against real MariaDB servers (one per region, GTID replication over verified TLS),
the Cloudflare load-balancer fake and the Linode fake: planned under load, unplanned after a crash,
three servers, crash and resume, dry run, refusals."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pymysql
import pytest

from drctl import cli
from drctl.mysql import replication as r
from drctl.runbook.context import Refused
from drctl.runbook.journal import JournalError, RunLock
from drctl.runbook.promote import PromoteOptions, promote
from tests.support.fake_linode import Fault
from tests.support.runbook_support import (
    ADMIN_PASSWORD,
    LB,
    OrderWriter,
    Shop,
    app_insert,
    order_ids,
    outputs_doc,
    paper_servers,
    wait_caught_up,
)
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration
MARIADB = r.Dialect.MARIADB
REPO = Path(__file__).resolve().parents[3]


def source_port(server) -> int | None:
    with contextlib.closing(server.connect()) as conn:
        status = r.replica_status(conn, MARIADB)
    return status.source_port if status else None


def read_only(server) -> bool:
    with contextlib.closing(server.connect()) as conn:
        return r.read_only_state(conn, MARIADB).read_only


def stop_receiving(server) -> None:
    with contextlib.closing(server.connect()) as conn:
        r.stop_io_thread(conn, MARIADB)


# --- planned --------------------------------------------------------------------------------------


def test_planned_promote_under_a_concurrent_writer_loses_no_order(mariadb_trio, tmp_path, cloud):
    shop = Shop.build(list(mariadb_trio), tmp_path, cloud.linode)
    with OrderWriter(shop["us-east"]) as writer:
        wait_until(lambda: len(writer.committed) >= 100)
        result = promote(shop.runbook(cloud.load_balancer()), PromoteOptions(region="eu-west", yes=True))
        wait_until(lambda: len(writer.refused) >= 5)  # the writer keeps trying the fenced primary
    assert result.outcome == "done", result.message
    assert result.loss["transactions"] == 0
    committed = set(writer.committed)
    assert committed <= order_ids(shop["eu-west"]), "an order the primary committed is missing"
    assert committed == order_ids(shop["us-east"])  # nothing landed after the fence
    assert cloud.serving() == "eu-west"
    assert cloud.cloudflare.load_balancers[LB]["default_pools"][0] == "pool-eu-west"


def test_after_a_planned_promote_the_old_primary_refuses_writes_and_follows(mariadb_pair, tmp_path, cloud):
    shop = Shop.build(list(mariadb_pair), tmp_path, cloud.linode)
    promote(shop.runbook(cloud.load_balancer()), PromoteOptions(region="eu-west", yes=True))
    with pytest.raises(pymysql.err.OperationalError) as refused:
        app_insert(shop["us-east"], 1)
    assert refused.value.args[0] == 1290  # read-only
    app_insert(shop["eu-west"], 2)
    wait_caught_up(shop["eu-west"], shop["us-east"])
    assert order_ids(shop["us-east"]) == {2}
    assert source_port(shop["us-east"]) == shop["eu-west"].port


def test_the_third_server_is_repointed_to_the_new_primary_and_replicates(mariadb_trio, tmp_path, cloud):
    shop = Shop.build(list(mariadb_trio), tmp_path, cloud.linode)
    result = promote(shop.runbook(cloud.load_balancer()), PromoteOptions(region="eu-west", yes=True))
    assert result.steps[-1] == {"name": "record", "status": "done", "error": None}
    assert source_port(shop["ap-south"]) == shop["eu-west"].port, (result.warnings, result.message)
    app_insert(shop["eu-west"], 7)
    wait_caught_up(shop["eu-west"], shop["ap-south"])
    assert order_ids(shop["ap-south"]) == {7}
    with contextlib.closing(shop["ap-south"].connect()) as conn:
        assert r.replica_status(conn, MARIADB).replicating
        assert r.heartbeat_lag(conn) < 3  # eu-west writes the heartbeat now


def test_a_slow_replica_aborts_the_planned_promote_and_reopens_the_primary(mariadb_pair, tmp_path, cloud):
    shop = Shop.build(list(mariadb_pair), tmp_path, cloud.linode)
    blocker = shop["eu-west"].connect()
    try:
        blocker.cursor().execute("FLUSH TABLES WITH READ LOCK")  # its SQL thread cannot apply anything
        app_insert(shop["us-east"], 900)  # an order that arrives and waits
        result = promote(shop.runbook(cloud.load_balancer()),
                         PromoteOptions(region="eu-west", yes=True, catch_up_timeout=1))
    finally:
        blocker.close()
    assert result.outcome == "aborted"
    assert "the primary in us-east was opened for writes again and nothing else changed" in result.message
    app_insert(shop["us-east"], 1)  # writable again
    assert source_port(shop["eu-west"]) == shop["us-east"].port
    assert cloud.serving() == "us-east" and cloud.cloudflare.writes() == []


# --- unplanned ------------------------------------------------------------------------------------


def test_unplanned_promote_states_a_loss_window_holding_exactly_the_missing_orders(mariadb_pair, tmp_path, cloud):
    shop = Shop.build(list(mariadb_pair), tmp_path, cloud.linode, rpo_seconds=1)
    primary, replica = shop["us-east"], shop["eu-west"]
    for i in range(1, 11):
        app_insert(primary, i)
    wait_caught_up(primary, replica)
    stop_receiving(replica)  # the link to the primary region breaks...
    time.sleep(1.5)
    committed_at = {}
    for i in range(11, 16):  # ...while the primary keeps taking orders
        app_insert(primary, i)
        committed_at[i] = time.time()
    primary.kill()  # and then the region goes dark
    cloud.linode.faults.append(Fault("GET", r"/networking/firewalls/301/rules", 429, {"Retry-After": "1"}))
    rb = shop.runbook(cloud.load_balancer())

    with pytest.raises(Refused) as refused:
        promote(rb, PromoteOptions(region="eu-west", yes=True))
    assert "beyond the recovery point objective" in str(refused.value)
    assert "Pass --accept-data-loss" in str(refused.value)
    assert source_port(replica) == primary.port and read_only(replica)  # nothing changed
    assert cloud.linode.writes() == [] and cloud.cloudflare.writes() == []

    result = promote(rb, PromoteOptions(region="eu-west", yes=True, accept_data_loss=True))
    assert result.outcome == "done", result.message
    missing = set(range(1, 16)) - order_ids(replica)
    assert missing == {11, 12, 13, 14, 15}
    window_start = result.loss["measuredAt"] - result.loss["dataAgeSeconds"]
    assert all(committed_at[i] >= window_start for i in missing), "a lost order lies outside the stated window"
    assert window_start >= committed_at[11] - 1.5 - 1.2  # and the window is not padded beyond a heartbeat
    layers = {a["layer"]: a["done"] for a in result.fencing}
    assert layers == {"sql": False, "network": True, "traffic": True}
    assert cloud.linode.firewalls[301] == {"inbound": [], "inbound_policy": "DROP", "outbound": [],
                                           "outbound_policy": "DROP"}
    assert cloud.serving() == "eu-west"
    assert not any(o["enabled"] for o in cloud.cloudflare.pools["pool-us-east"]["origins"])


def test_unplanned_promote_first_fetches_what_a_surviving_replica_has(mariadb_trio, tmp_path, cloud):
    shop = Shop.build(list(mariadb_trio), tmp_path, cloud.linode)
    primary = shop["us-east"]
    stop_receiving(shop["eu-west"])
    for i in range(1, 6):
        app_insert(primary, i)
    wait_caught_up(primary, shop["ap-south"])
    primary.kill()
    result = promote(shop.runbook(cloud.load_balancer()), PromoteOptions(region="eu-west", yes=True))
    assert result.outcome == "done", result.message
    assert result.loss["recoverFrom"]["ap-south"] >= 5
    assert order_ids(shop["eu-west"]) == {1, 2, 3, 4, 5}
    assert source_port(shop["ap-south"]) == shop["eu-west"].port


def test_a_fence_the_token_may_not_set_is_reported_with_the_scope_and_the_promotion_goes_on(
        mariadb_pair, tmp_path, cloud):
    shop = Shop.build(list(mariadb_pair), tmp_path, cloud.linode)
    cloud.linode.faults.append(Fault("PUT", r"/networking/firewalls/301/rules", 403))
    shop["us-east"].kill()
    result = promote(shop.runbook(cloud.load_balancer()),
                     PromoteOptions(region="eu-west", yes=True, accept_data_loss=True))
    assert result.outcome == "done"
    assert ("could not fence: us-east: Linode API refused to change the rules of firewall 301 (HTTP 403): the token "
            "needs the 'Firewalls: Read/Write' scope") in result.warnings
    assert cloud.linode.token not in json.dumps(result.as_dict())


# --- resumable, refusals, command line ------------------------------------------------------------


def drctl(*args, env, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "drctl", *args], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def test_a_crash_mid_promote_then_a_rerun_completes_without_repeating_finished_steps(mariadb_pair, tmp_path, cloud):
    shop = Shop.build(list(mariadb_pair), tmp_path, cloud.linode)
    env = {**os.environ, **cloud.env(), "DRCTL_STATE_DIR": str(tmp_path / "state-cli")}
    journal = tmp_path / "state-cli" / "runbook-test" / "journal.json"
    args = ("promote", "--outputs", str(shop.outputs_file), "--region", "eu-west", "--yes")
    blocker = shop["eu-west"].connect()
    blocker.cursor().execute("FLUSH TABLES WITH READ LOCK")  # the replica cannot catch up...
    app_insert(shop["us-east"], 900)  # ...with an order that arrives and waits
    first = drctl(*args, env=env)

    def catching_up():
        assert first.poll() is None, "drctl exited before catch-up:\n" + "".join(first.communicate())
        steps = json.loads(journal.read_text())["steps"] if journal.exists() else []
        return any(s["name"] == "catch-up" and s["status"] == "running" for s in steps)
    # Reaching the step is not what this test measures: a loaded machine may take a while to get there.
    wait_until(catching_up, timeout=90, what="drctl promote reaching its catch-up step")
    first.send_signal(signal.SIGKILL)  # ...and drctl dies while it waits
    first.communicate()
    blocker.close()
    before = {s["name"]: s for s in json.loads(journal.read_text())["steps"]}

    second = drctl(*args, env=env)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, out + err
    assert "  = read every server and decide (done in an earlier run)" in out
    assert "  = fence the primary in us-east: stop its heartbeat writer, read-only on, verified; note its final " \
           "GTID set (done in an earlier run)" in out
    doc = json.loads(journal.read_text())
    names = [s["name"] for s in doc["steps"]]
    assert names == ["assess", "fence-primary", "catch-up", "promote", "repoint", "switch-traffic", "verify", "record"]
    assert all(s["status"] == "done" for s in doc["steps"]) and doc["outcome"] == "done"
    assert next(s for s in doc["steps"] if s["name"] == "fence-primary") == before["fence-primary"]  # not re-run
    assert ADMIN_PASSWORD not in journal.read_text() + out + err
    assert cloud.serving() == "eu-west" and source_port(shop["us-east"]) == shop["eu-west"].port


def test_ctrl_c_mid_promote_says_where_things_stand(mariadb_pair, tmp_path, cloud):
    shop = Shop.build(list(mariadb_pair), tmp_path, cloud.linode)
    env = {**os.environ, **cloud.env(), "DRCTL_STATE_DIR": str(tmp_path / "state-cli")}
    journal = tmp_path / "state-cli" / "runbook-test" / "journal.json"
    blocker = shop["eu-west"].connect()
    blocker.cursor().execute("FLUSH TABLES WITH READ LOCK")  # the replica cannot catch up...
    app_insert(shop["us-east"], 900)  # ...with an order that arrives and waits
    # Started as a shell's background job (a CI runner's, say) is: with SIGINT ignored, which children
    # inherit. drctl answers SIGINT all the same.
    first = drctl("promote", "--outputs", str(shop.outputs_file), "--region", "eu-west", "--yes", env=env,
                  preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))

    def catching_up():
        assert first.poll() is None, "drctl exited before catch-up:\n" + "".join(first.communicate())
        steps = json.loads(journal.read_text())["steps"] if journal.exists() else []
        return any(s["name"] == "catch-up" and s["status"] == "running" for s in steps)
    try:
        # Reaching the step is not what this test measures: a loaded machine may take a while to get there.
        wait_until(catching_up, timeout=90, what="drctl promote reaching its catch-up step")
        first.send_signal(signal.SIGINT)  # ...and the operator presses Ctrl-C while it waits
        out, err = first.communicate(timeout=20)  # within seconds, though the replica is still blocked
    finally:
        first.kill()
        blocker.close()
    assert first.returncode == 130, out + err
    assert "promote eu-west: stopped at step catch-up: interrupted. Last step done: fence-primary. Fix the cause " \
           "and run the same command again to continue" in out
    assert read_only(shop["us-east"])  # fenced, as the journal says; a re-run continues from here


def test_dry_run_prints_every_step_and_changes_nothing(mariadb_pair, tmp_path, cloud, monkeypatch, capsys):
    shop = Shop.build(list(mariadb_pair), tmp_path, cloud.linode)
    for key, value in {**cloud.env(), "DRCTL_STATE_DIR": str(tmp_path / "state-cli")}.items():
        monkeypatch.setenv(key, value)
    code = cli.main(["promote", "--outputs", str(shop.outputs_file), "--region", "eu-west", "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0
    for step in ("> fence the primary in us-east", "> wait until eu-west has applied every transaction of us-east",
                 "> promote eu-west", "> repoint us-east to eu-west", "> send traffic to eu-west", "> verify"):
        assert step in out
    assert "promote eu-west: dry-run (planned, from us-east)" in out
    assert source_port(shop["eu-west"]) == shop["us-east"].port and not read_only(shop["us-east"])
    assert cloud.cloudflare.writes() == [] and cloud.linode.writes() == []
    assert not (tmp_path / "state-cli").exists()  # not even a journal

    code = cli.main(["promote", "--outputs", str(shop.outputs_file), "--region", "eu-west", "--dry-run", "-o", "json"])
    captured = capsys.readouterr()
    doc = json.loads(captured.out)  # stdout holds the document only; progress went to stderr
    assert (code, doc["outcome"], doc["mode"], doc["from"]) == (0, "dry-run", "planned", "us-east")
    assert [s["name"] for s in doc["steps"]] == ["fence-primary", "catch-up", "promote", "repoint", "switch-traffic",
                                                 "verify", "record"]
    assert "> promote eu-west" in captured.err


def test_promote_without_yes_refuses_as_a_usage_error(tmp_path, monkeypatch, capsys):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(outputs_doc(paper_servers(tmp_path))))
    monkeypatch.setenv("DRCTL_STATE_DIR", str(tmp_path / "state"))
    code = cli.main(["promote", "--outputs", str(outputs), "--region", "eu-west"])
    assert code == 2
    assert capsys.readouterr().err == (
        "drctl promote: promote changes which database takes writes: pass --yes to act, or --dry-run to see the "
        "steps\n")


def test_a_second_promote_is_refused_while_another_runs_and_changes_nothing(tmp_path, monkeypatch, capsys):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(outputs_doc(paper_servers(tmp_path))))
    monkeypatch.setenv("DRCTL_STATE_DIR", str(tmp_path / "state"))
    running = RunLock(tmp_path / "state" / "runbook-test" / "lock")
    running.acquire("failback")  # the first run, mid-way
    try:
        code = cli.main(["promote", "--outputs", str(outputs), "--region", "eu-west", "--yes", "-o", "json"])
    finally:
        running.release()
    doc = json.loads(capsys.readouterr().out)
    assert (code, doc["outcome"]) == (1, "refused")
    assert doc["message"].startswith(f"another drctl failback is running on this stack (pid {os.getpid()} on ")
    assert not (tmp_path / "state" / "runbook-test" / "journal.json").exists()  # not even a journal


def test_an_unknown_region_is_a_usage_error(tmp_path, monkeypatch, capsys):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(outputs_doc(paper_servers(tmp_path))))
    assert cli.main(["promote", "--outputs", str(outputs), "--region", "mars-1", "--yes"]) == 2
    assert capsys.readouterr().err == ("drctl promote: --region: no database server in region 'mars-1' of stack "
                                       "'runbook-test' (got 'mars-1'; allowed: us-east, eu-west, ap-south)\n")


def test_a_second_promotion_within_the_block_period_needs_force(mariadb_pair, tmp_path, cloud):
    shop = Shop.build(list(mariadb_pair), tmp_path, cloud.linode)
    rb = shop.runbook(cloud.load_balancer())
    assert promote(rb, PromoteOptions(region="eu-west", yes=True)).outcome == "done"
    with pytest.raises(JournalError, match=r"the last promotion \(us-east -> eu-west\) was \d+ s ago, within the "
                                           r"3600 s block period"):
        promote(rb, PromoteOptions(region="us-east", yes=True))
    assert read_only(shop["us-east"])  # refused before anything changed
    result = promote(rb, PromoteOptions(region="us-east", yes=True, force=True))
    assert result.outcome == "done" and cloud.serving() == "us-east"


def test_a_failing_pre_hook_aborts_before_any_change(mariadb_pair, tmp_path, cloud):
    shop = Shop.build(list(mariadb_pair), tmp_path, cloud.linode)
    hook = tmp_path / "page-oncall"
    hook.write_text("#!/bin/sh\necho \"pager is down for $DRCTL_TO_REGION\" >&2\nexit 4\n")
    hook.chmod(0o755)
    result = promote(shop.runbook(cloud.load_balancer()),
                     PromoteOptions(region="eu-west", yes=True, pre_hooks=[str(hook)]))
    assert result.outcome == "refused"
    assert result.message == f"pre-hook failed, nothing was changed: hook {str(hook)!r} exited 4: pager is down for eu-west"
    assert not read_only(shop["us-east"]) and source_port(shop["eu-west"]) == shop["us-east"].port


def test_a_refusal_is_a_json_document_too(tmp_path, monkeypatch, capsys):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(outputs_doc(paper_servers(tmp_path))))
    history = tmp_path / "state" / "runbook-test" / "promotions.json"
    history.parent.mkdir(parents=True)
    history.write_text(json.dumps([{"at": time.time() - 60, "from": "us-east", "to": "eu-west"}]))
    monkeypatch.setenv("DRCTL_STATE_DIR", str(tmp_path / "state"))
    code = cli.main(["promote", "--outputs", str(outputs), "--region", "us-east", "--yes", "-o", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and doc["outcome"] == "refused"
    assert doc["message"].startswith("the last promotion (us-east -> eu-west) was 60 s ago, within the 3600 s block")
