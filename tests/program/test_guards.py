"""The guards: with `automation.promote: automatic` (dr-test), a small Linode per guard region at a
reserved address, drctl installed from the pinned commit and its services enabled, its tokens only
ever secret, and its address (with access.operatorCidrs) admitted to MySQL and the NodeBalancers;
with manual promotion (prod) nothing of it exists. The installer runs for real against a local
repository."""

from __future__ import annotations

import ipaddress
import json
import subprocess
from functools import cache
from pathlib import Path

import pytest
import yaml

from components import guard_cloud_init
from drctl.cli import main
from drctl.plan.engine import Secret, unwrap
from drctl.stack.outputs import StackOutputs, parse_outputs
from tests.support import harness
from tests.support.binaries import require
from tests.support.drctl_installer import local_repo, run_installer

INSTANCE = "linode:index/instance:Instance"
RESERVED_IP = "linode:index/reservedIp:ReservedIp"
FIREWALL = "linode:index/firewall:Firewall"
ALLOW_LIST = "linode:index/databaseAccessControls:DatabaseAccessControls"
GUARD_REGIONS = ("us-central", "eu-central")
OPERATORS = ["198.51.100.0/28", "2001:db8:1::/48"]
TOKEN_PLACEHOLDERS = ("offline-placeholder-for-woocommerce-dr:guardLinodeToken",
                      "offline-placeholder-for-woocommerce-dr:guardCloudflareToken")


def automatic(stack: str = "prod", **changes):
    """`stack` with dr-test's automation block and guard tokens (prod: managed database)."""
    dr_test = harness.stack_mapping("dr-test")
    keys = {k: dr_test[f"woocommerce-dr:{k}"] for k in ("automation", "guardLinodeToken", "guardCloudflareToken")}
    return harness.stack_file(stack, **{**keys, **changes})


@cache
def operators_run():
    """dr-test (self-managed database, automatic) with operator networks."""
    access = {**harness.raw_config("dr-test").get("access", {}), "operatorCidrs": OPERATORS}
    return harness.run_ok(harness.stack_file("dr-test", access=access))


@cache
def managed_operators_run():
    """prod's managed database with automatic promotion and operator networks."""
    return harness.run_ok(automatic("prod", access={**harness.raw_config("prod")["access"], "operatorCidrs": OPERATORS}))


@cache
def dns_failover_run():
    dr_test = harness.raw_config("dr-test")
    traffic = {**dr_test["traffic"], "mode": "dns-failover"}
    return harness.run_ok(harness.stack_file("dr-test", traffic=traffic))


def guards(run):
    return [r for r in run.of_type(INSTANCE) if "role:guard" in r.plain("tags")]


def reserved(run) -> dict[str, str]:
    return {r.plain("region"): r.outputs["address"] for r in run.of_type(RESERVED_IP)}


def cloud_config(instance) -> dict:
    text = guard_cloud_init.decode_user_data(instance.plain("metadatas")[0]["userData"])
    assert text.startswith("#cloud-config\n")
    return yaml.safe_load(text)


def files(instance) -> dict[str, dict]:
    return {f["path"]: f for f in cloud_config(instance)["write_files"]}


def env_file(instance, path: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in files(instance)[path]["content"].splitlines())


def rules(run, firewall_name: str) -> dict[str, dict]:
    return {r["label"]: r for r in run.one(FIREWALL, firewall_name).plain("inbounds")}


def contract(run) -> StackOutputs:
    return parse_outputs(unwrap(run.outputs["drctl"]), run.stack.stack)


# --- the guard Linodes ----------------------------------------------------------------------------

def test_a_small_guard_linode_in_each_guard_region_at_its_reserved_address(dr_test_run):
    found = {g.plain("region"): g for g in guards(dr_test_run)}
    assert sorted(found) == sorted(GUARD_REGIONS)
    addresses = reserved(dr_test_run)
    for region, guard in found.items():
        assert guard.plain("type") == "g6-nanode-1"
        assert guard.plain("image") == "linode/ubuntu24.04"
        assert guard.plain("label") == f"woocommerce-dr-dr-test-guard-{region}"
        assert guard.plain("ipv4s") == [addresses[region]]
        assert not guard.plain("privateIp")  # it talks to the shop over the internet, like any client


def test_guards_are_in_no_shop_region(dr_test_run):
    shop = {r["region"] for r in harness.raw_config("dr-test")["regions"]}
    assert not shop & {g.plain("region") for g in guards(dr_test_run)}


def test_manual_promotion_creates_no_guard_and_no_guard_rule(prod_run):
    assert guards(prod_run) == [] and prod_run.of_type(RESERVED_IP) == []
    labels = {r["label"] for f in prod_run.of_type(FIREWALL) for r in f.plain("inbounds")}
    assert not [label for label in labels if "guards" in label or "operators" in label]
    automation = contract(prod_run).automation
    assert (automation.promote, automation.guards) == ("manual", ())


def test_the_stack_output_names_every_guard_with_its_addresses(dr_test_run):
    automation = contract(dr_test_run).automation
    assert (automation.promote, automation.confirm_seconds, automation.fast_interval) == ("automatic", 60, 5)
    addresses = reserved(dr_test_run)
    instances = {g.plain("region"): g for g in guards(dr_test_run)}
    assert [g.region for g in automation.guards] == list(GUARD_REGIONS)
    for g in automation.guards:
        assert g.label == instances[g.region].plain("label")
        assert g.ipv4 == addresses[g.region]
        assert g.ipv6 == str(ipaddress.ip_interface(instances[g.region].outputs["ipv6"]).ip)


def test_the_stack_output_carries_the_operator_networks(dr_test_run):
    assert contract(operators_run()).access.operator_cidrs == tuple(OPERATORS)
    assert contract(dr_test_run).access.operator_cidrs == ()


# --- what a guard boots with -----------------------------------------------------------------------

def test_user_data_installs_drctl_at_the_pinned_commit_and_enables_the_guard(dr_test_run):
    source = harness.raw_config("dr-test")["automation"]["drctlSource"]
    for guard in guards(dr_test_run):
        config = cloud_config(guard)
        assert config["runcmd"] == [[guard_cloud_init.INSTALL]]
        assert set(guard_cloud_init.PACKAGES) <= set(config["packages"])
        install = env_file(guard, "/etc/drctl/drctl-install.env")
        assert install == {"DRCTL_REPO": f"'{source['repo']}'", "DRCTL_COMMIT": f"'{source['commit']}'",
                           "STACK": "'dr-test'", "SERVICES": "'drctl-guard'"}
        script = files(guard)[guard_cloud_init.INSTALL]
        assert script["permissions"] == "0755" and script["content"].startswith("#!/bin/bash")
        assert "/etc/drctl/watch-dr-test.env" not in files(guard)  # load-balancer mode: no drctl watch


def test_the_guard_gets_the_stack_outputs_naming_every_guard(dr_test_run):
    stack = contract(dr_test_run)
    for guard in guards(dr_test_run):
        written = files(guard)["/etc/drctl/dr-test.outputs.json"]
        assert (written["owner"], written["permissions"]) == ("root:root", "0600")
        own = parse_outputs(json.loads(written["content"]), "guard copy")
        # The same stack, firewall ids included (fencing needs them), and every guard by its address.
        assert own.database == stack.database and own.regions == stack.regions
        assert [(g.region, g.label, g.ipv4) for g in own.automation.guards] == [
            (g.region, g.label, g.ipv4) for g in stack.automation.guards]
        assert all(g.ipv6 is None for g in own.automation.guards)  # unknown before the Linode exists


def test_a_guard_is_named_as_the_outputs_name_it(dr_test_run):
    # drctl guard's holder id is the host name (%H in deploy/drctl-guard@.service): votes and the lease
    # must carry the label the outputs give the guard.
    for guard in guards(dr_test_run):
        assert cloud_config(guard)["hostname"] == guard.plain("label")


def test_a_guard_alerts_to_the_stacks_webhook():
    traffic = {**harness.raw_config("dr-test")["traffic"],
               "alerts": {"webhookUrl": "https://hooks.example.com/drctl?team=sre&level=page"}}
    for guard in guards(harness.run_ok(harness.stack_file("dr-test", traffic=traffic))):
        args = env_file(guard, "/etc/drctl/guard-dr-test.env")["DRCTL_GUARD_ARGS"]
        assert args == "--alert-webhook https://hooks.example.com/drctl?team=sre&level=page"


def test_the_guard_tokens_land_in_a_root_only_environment_file(dr_test_run):
    for guard in guards(dr_test_run):
        written = files(guard)["/etc/drctl/guard-dr-test.env"]
        assert (written["owner"], written["permissions"]) == ("root:root", "0600")
        assert env_file(guard, "/etc/drctl/guard-dr-test.env") == {
            "LINODE_TOKEN": TOKEN_PLACEHOLDERS[0], "CLOUDFLARE_API_TOKEN": TOKEN_PLACEHOLDERS[1],
            "DRCTL_GUARD_ARGS": "",
        }


def test_the_guard_tokens_are_secrets_and_never_in_the_plan_output(dr_test_run, capsys):
    for guard in guards(dr_test_run):
        assert isinstance(guard.inputs["metadatas"][0]["userData"], Secret)
        assert isinstance(guard.inputs["rootPass"], Secret)
    for output in ("text", "json"):
        assert main(["plan", "-s", "dr-test", "-o", output]) == 0
        out, err = capsys.readouterr()
        assert not [t for t in TOKEN_PLACEHOLDERS if t in out + err]


def test_in_dns_failover_mode_the_guard_runs_drctl_watch_too():
    for guard in guards(dns_failover_run()):
        assert env_file(guard, "/etc/drctl/drctl-install.env")["SERVICES"] == "'drctl-guard drctl-watch'"
        assert env_file(guard, "/etc/drctl/watch-dr-test.env") == {
            "CLOUDFLARE_API_TOKEN": TOKEN_PLACEHOLDERS[1], "DRCTL_WATCH_ARGS": ""}


def test_guard_user_data_is_a_cloud_config_that_cloud_init_accepts(dr_test_run, tmp_path):
    cloud_init = require("cloud-init")
    for guard in [*guards(dr_test_run), *guards(dns_failover_run())[:1]]:
        path = tmp_path / "user-data.yaml"
        path.write_text(guard_cloud_init.decode_user_data(guard.plain("metadatas")[0]["userData"]))
        result = subprocess.run([cloud_init, "schema", "-c", str(path)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_installer_passes_shellcheck(dr_test_run, tmp_path):
    shellcheck = require("shellcheck")
    path = tmp_path / "drctl-install"
    path.write_text(files(guards(dr_test_run)[0])[guard_cloud_init.INSTALL]["content"])
    result = subprocess.run([shellcheck, str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


# --- firewalls and allow-lists ---------------------------------------------------------------------

def test_a_guard_admits_ssh_from_the_operators_and_nothing_else(dr_test_run):
    for region in GUARD_REGIONS:
        assert rules(dr_test_run, f"guard-{region}-firewall") == {}  # no operator networks: nothing at all
        assert dr_test_run.one(FIREWALL, f"guard-{region}-firewall").plain("inboundPolicy") == "DROP"
        found = rules(operators_run(), f"guard-{region}-firewall")
        assert {label: (r["ports"], r.get("ipv4s"), r.get("ipv6s")) for label, r in found.items()} == {
            "ssh-from-operators-ipv4": ("22", [OPERATORS[0]], None),
            "ssh-from-operators-ipv6": ("22", None, [OPERATORS[1]]),
        }


def test_every_database_firewall_admits_the_guards_and_the_operators_to_mysql():
    run = operators_run()
    guard_hosts = sorted(f"{ip}/32" for ip in reserved(run).values())
    for region in ("us-east", "eu-west"):  # dr-test: self-managed primary and replica
        found = rules(run, f"db-{region}-firewall")
        assert (found["mysql-from-guards-ipv4"]["ports"], sorted(found["mysql-from-guards-ipv4"]["ipv4s"])) == (
            "3306", guard_hosts)
        assert found["mysql-from-operators-ipv4"]["ipv4s"] == [OPERATORS[0]]
        assert found["mysql-from-operators-ipv6"]["ipv6s"] == [OPERATORS[1]]
        assert found["mysql-from-operators-ipv4"]["ports"] == "3306"


def test_the_managed_allow_list_admits_the_guards_and_the_operators():
    run = managed_operators_run()
    [allow] = run.of_type(ALLOW_LIST)
    entries = allow.plain("allowLists")
    assert set(OPERATORS) <= set(entries)
    assert {f"{ip}/32" for ip in reserved(run).values()} <= set(entries)
    # And the replica's firewall, in eu-west, admits them as well.
    found = rules(run, "db-eu-west-firewall")
    assert "mysql-from-guards-ipv4" in found and "mysql-from-operators-ipv4" in found


def test_every_nodebalancer_admits_the_guards_and_the_operators_to_its_health_path():
    run = operators_run()
    guard_hosts = sorted(f"{ip}/32" for ip in reserved(run).values())
    for region in ("us-east", "eu-west"):
        found = rules(run, f"{region}-nb-firewall")
        assert (found["http-from-guards-ipv4"]["ports"], sorted(found["http-from-guards-ipv4"]["ipv4s"])) == (
            "80, 443", guard_hosts)
        assert found["http-from-operators-ipv4"]["ipv4s"] == [OPERATORS[0]]
        assert found["http-from-operators-ipv6"]["ipv6s"] == [OPERATORS[1]]


def test_a_preview_knows_the_guards_before_their_addresses(dr_test_preview_run):
    assert len(guards(dr_test_preview_run)) == 2
    assert dr_test_preview_run.error is None


# --- the installer, for real ------------------------------------------------------------------------

def _repo(tmp_path: Path, git: str, units: tuple[str, ...] = ("drctl-guard@.service", "drctl-watch@.service")) -> str:
    return local_repo(tmp_path, git, {unit: f"# {unit}\n" for unit in units})


@pytest.fixture
def installer(dr_test_run) -> str:
    return files(guards(dr_test_run)[0])[guard_cloud_init.INSTALL]["content"]


def test_the_installer_checks_out_the_commit_builds_the_venv_and_installs_the_units(installer, tmp_path):
    git = require("git")
    commit = _repo(tmp_path, git)
    first = run_installer(tmp_path, installer, commit, "drctl-guard drctl-watch")
    assert first.returncode == 0, first.stderr
    head = subprocess.run([git, "-C", str(tmp_path / "opt"), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert head.stdout.strip() == commit
    assert (tmp_path / "opt" / "venv" / "bin" / "python").exists()
    assert sorted(p.name for p in (tmp_path / "units").iterdir()) == ["drctl-guard@.service", "drctl-watch@.service"]
    # Re-runnable: cloud-init may run it again after a reboot mid-install.
    again = run_installer(tmp_path, installer, commit, "drctl-guard drctl-watch")
    assert again.returncode == 0, again.stderr


def test_the_installer_refuses_a_commit_the_repository_does_not_have(installer, tmp_path):
    _repo(tmp_path, require("git"))
    result = run_installer(tmp_path, installer, "0" * 40, "drctl-guard")
    assert result.returncode != 0
    assert not (tmp_path / "units" / "drctl-guard@.service").exists()


def test_the_installer_refuses_a_commit_without_the_guard_unit(installer, tmp_path):
    commit = _repo(tmp_path, require("git"), units=("drctl-watch@.service",))
    result = run_installer(tmp_path, installer, commit, "drctl-guard")
    assert result.returncode == 1
    assert f"commit {commit} has no deploy/drctl-guard@.service" in result.stderr


def test_a_nodebalancer_firewall_without_room_for_the_guards_fails_the_preview_with_the_numbers():
    from drctl.plan.cloud import CLOUDFLARE_IPV4, CLOUDFLARE_IPV6

    # Exactly full without the guards: the two guards' addresses would not fit.
    room = 255 - len(CLOUDFLARE_IPV4) - len(CLOUDFLARE_IPV6)
    watchdog = [f"10.{i // 256}.{i % 256}.1/32" for i in range(room)]
    access = {**harness.raw_config("dr-test").get("access", {}), "watchdogCidrs": watchdog}
    result = harness.run(harness.stack_file("dr-test", access=access), preview=True)
    assert result.refused_input
    assert ("the NodeBalancer firewall would need 4 inbound rules with 257 addresses (allowed: at most 25 rules "
            "and 255 addresses per Cloud Firewall)") in result.error
    assert harness.run(harness.stack_file("prod", access={"watchdogCidrs": watchdog}), preview=True).error is None
