"""The binlog archiver deployed by the stack: with backups on, the replica in backups.region (dr-test:
self-managed, prod: managed primary) installs drctl from the pinned commit after its database setup
and runs drctl-archive@<stack>, with settings rendered from the stack that drctl's own model accepts,
root-only and secret everywhere; with backups off nothing of it exists."""

from __future__ import annotations

import base64
import json
import subprocess
from functools import cache
from pathlib import Path

import pytest

from components import archive_host, drctl_install
from components import mysql_cloud_init as ci
from drctl.backup.archive_config import ArchiveSettings, load_settings
from drctl.cli import main
from drctl.plan.engine import Secret, unwrap
from drctl.stack.files import REPO_ROOT
from drctl.stack.outputs import parse_outputs
from tests.support import harness, systemd_units
from tests.support.binaries import require
from tests.support.drctl_installer import local_repo, run_installer
from tests.support.mysql_linodes import cloud_config, written

INSTANCE = "linode:index/instance:Instance"
MYSQL = "linode:index/databaseMysqlV2:DatabaseMysqlV2"
KEY = "linode:index/objectStorageKey:ObjectStorageKey"
BUCKET = "linode:index/objectStorageBucket:ObjectStorageBucket"
PASSWORD = "random:index/randomPassword:RandomPassword"
WEBHOOK = "https://hooks.example.com/drctl?team=sre&level=page"


@cache
def tuned_run():
    """dr-test with its own objectives and schedule, and an alert webhook."""
    traffic = {**harness.raw_config("dr-test")["traffic"], "alerts": {"webhookUrl": WEBHOOK}}
    objectives = {**harness.raw_config("dr-test")["objectives"], "backupRpoSeconds": 120}
    return harness.run_ok(harness.stack_file("dr-test", traffic=traffic, objectives=objectives,
                                             backups={"baseEveryHours": 6, "retentionDays": 30}))


@cache
def three_region_run():
    return harness.run_ok(harness.three_regions("dr-test"))


@cache
def disabled_run(stack: str):
    return harness.run_ok(harness.stack_file(stack, backups={"enabled": False}))


def replicas(run) -> dict[str, object]:
    return {i.plain("region"): i for i in run.of_type(INSTANCE) if "role:database-replica" in i.plain("tags")}


def database_servers(run) -> list:
    return [i for i in run.of_type(INSTANCE) if any(t.startswith("role:database-") for t in i.plain("tags"))]


def files(instance) -> dict[str, dict]:
    return {f["path"]: f for f in cloud_config(instance)["write_files"]}


def settings(instance, stack: str) -> ArchiveSettings:
    return ArchiveSettings.model_validate(json.loads(written(instance, archive_host.settings_path(stack))))


def secret(run, type_: str, name: str, output: str) -> str:
    return unwrap(run.one(type_, name).outputs[output])


# --- which server runs it --------------------------------------------------------------------------

@pytest.mark.parametrize("stack", ["dr-test", "prod"])
def test_the_replica_in_the_archive_region_installs_drctl_after_its_setup_and_runs_the_archiver(request, stack):
    run = request.getfixturevalue(f"{stack.replace('-', '_')}_run")
    replica = replicas(run)["eu-west"]
    config = cloud_config(replica)
    # One shell line: the archiver is installed and started only on a replica whose setup succeeded.
    assert config["runcmd"] == [f"{ci.SETUP} && {drctl_install.INSTALL}"]
    assert set(drctl_install.PACKAGES) <= set(config["packages"])
    source = harness.raw_config(stack)["automation"]["drctlSource"]
    install = dict(line.split("=", 1) for line in written(replica, drctl_install.INSTALL_ENV).splitlines())
    assert install == {"DRCTL_REPO": f"'{source['repo']}'", "DRCTL_COMMIT": f"'{source['commit']}'",
                       "STACK": f"'{stack}'", "SERVICES": "'drctl-archive'"}
    assert written(replica, drctl_install.INSTALL) == drctl_install.TEMPLATE.read_text()
    assert files(replica)[drctl_install.INSTALL]["permissions"] == "0755"


def test_with_three_regions_it_runs_in_the_last_region_and_nowhere_else():
    run = three_region_run()
    running = [i.plain("region") for i in database_servers(run)
               if archive_host.settings_path("dr-test") in files(i)]
    assert running == ["ap-south"]
    (bucket,) = [b for b in run.of_type(BUCKET) if b.name.startswith("binlogs-")]
    assert bucket.plain("region") == "ap-south"
    assert parse_outputs(unwrap(run.outputs["drctl"]), "test").backups.region == "ap-south"


def test_the_primary_runs_no_archiver(dr_test_run):
    (primary,) = [i for i in database_servers(dr_test_run) if "role:database-primary" in i.plain("tags")]
    assert not [path for path in files(primary) if path.startswith(drctl_install.ETC)]
    assert cloud_config(primary)["runcmd"] == [[ci.SETUP]]


@pytest.mark.parametrize("stack", ["dr-test", "prod"])
def test_backups_off_render_nothing_of_the_archiver(stack):
    run = disabled_run(stack)
    for server in database_servers(run):
        assert not [path for path in files(server) if path.startswith(drctl_install.ETC) or
                    path == drctl_install.INSTALL], server.name
        config = cloud_config(server)
        assert config["runcmd"] == [[ci.SETUP]]
        assert config["packages"] == ["mysql-server", "mysql-client", "python3-pymysql"]


def test_the_code_the_setup_runs_stays_out_of_the_directory_drctl_is_cloned_into(dr_test_run):
    # git clone needs an empty /opt/woocommerce-dr; the bootstrap's own copy of drctl/mysql lives elsewhere.
    paths = files(replicas(dr_test_run)["eu-west"])
    assert not [p for p in paths if p.startswith(drctl_install.ROOT + "/")]
    assert f"readonly code={ci.CODE_DIR.removesuffix('/drctl')}\n" in written(replicas(dr_test_run)["eu-west"], ci.SETUP)


# --- the settings file --------------------------------------------------------------------------------

def test_the_settings_are_drctls_own_model_root_only(dr_test_run, tmp_path):
    replica = replicas(dr_test_run)["eu-west"]
    entry = files(replica)[archive_host.settings_path("dr-test")]
    assert (entry["owner"], entry["permissions"]) == ("root:root", "0600")
    # The file drctl archive --config reads, through drctl's own loader.
    path = tmp_path / "archive.json"
    path.write_text(entry["content"])
    loaded = load_settings(path)
    assert loaded == settings(replica, "dr-test")
    assert loaded.flavour == "mysql"  # our Linodes run Ubuntu's MySQL 8


def test_the_settings_carry_the_archive_bucket_and_the_archivers_read_write_key(dr_test_run):
    found = settings(replicas(dr_test_run)["eu-west"], "dr-test")
    (bucket,) = [b for b in dr_test_run.of_type(BUCKET) if b.name.startswith("binlogs-")]
    assert (found.bucket.bucket, found.bucket.endpoint, found.bucket.region) == (
        bucket.outputs["label"], bucket.outputs["s3Endpoint"], "eu-west")
    assert found.bucket.access_key.get_secret_value() == secret(dr_test_run, KEY, "binlogs-archiver-key", "accessKey")
    assert found.bucket.secret_key.get_secret_value() == secret(dr_test_run, KEY, "binlogs-archiver-key", "secretKey")
    # The same archive key drctl restores with.
    backups = parse_outputs(unwrap(dr_test_run.outputs["drctl"]), "test").backups
    assert found.archive_key.get_secret_value() == backups.archive_key.get_secret_value()
    assert len(base64.b64decode(found.archive_key.get_secret_value())) == 32


def test_self_managed_sources_are_the_primary_as_replicator_then_every_replica_as_its_admin(dr_test_run):
    found = settings(replicas(dr_test_run)["eu-west"], "dr-test")
    stack = parse_outputs(unwrap(dr_test_run.outputs["drctl"]), "test").database
    assert [(s.host, s.port, s.user, s.ca_file) for s in found.sources] == [
        ("mysql-us-east.db.dr-test.shop.example.com", 3306, "replicator", ci.SOURCE_CA),
        ("mysql-eu-west.db.dr-test.shop.example.com", 3306, "drctl", ci.SERVER_CA),
    ]
    assert found.sources[0].password.get_secret_value() == secret(dr_test_run, PASSWORD, "db-replication-password",
                                                                  "result")
    assert found.sources[1].password.get_secret_value() == stack.replica_admin_password.get_secret_value()


def test_managed_sources_are_the_managed_primary_at_its_computed_host_then_the_replica(prod_run):
    found = settings(replicas(prod_run)["eu-west"], "prod")
    (db,) = prod_run.of_type(MYSQL)
    primary, replica = found.sources
    assert (primary.host, primary.port, primary.user, primary.ca_file) == (
        db.outputs["hostPrimary"], db.outputs["port"], "akmadmin", ci.SOURCE_CA)
    assert primary.password.get_secret_value() == unwrap(db.outputs["rootPassword"])
    # The CA file there is the managed database's, as the replica's own replication verifies it.
    assert written(replicas(prod_run)["eu-west"], ci.SOURCE_CA) == base64.b64decode(
        unwrap(db.outputs["caCert"])).decode()
    assert (replica.host, replica.user, replica.ca_file) == ("mysql-eu-west.db.shop.example.com", "drctl", ci.SERVER_CA)


def test_every_server_that_may_become_primary_is_a_source_in_failover_order():
    found = settings(replicas(three_region_run())["ap-south"], "dr-test")
    assert [s.host.split(".")[0] for s in found.sources] == ["mysql-us-east", "mysql-eu-west", "mysql-ap-south"]


def test_base_backups_reach_the_local_server_by_its_socket_and_spool_in_the_state_directory(dr_test_run):
    found = settings(replicas(dr_test_run)["eu-west"], "dr-test")
    assert found.base_client == (f"--socket={ci.SOCKET}", "--user=root")
    unit = (REPO_ROOT / "deploy" / "drctl-archive@.service").read_text()
    assert "StateDirectory=drctl-archive\n" in unit
    assert found.spool.is_relative_to("/var/lib/drctl-archive")


def test_the_objectives_and_schedule_come_from_the_stack(dr_test_run):
    default = settings(replicas(dr_test_run)["eu-west"], "dr-test")
    assert (default.backup_rpo_seconds, default.base_every_hours, default.retention_days) == (300, 24, 14)
    tuned = settings(replicas(tuned_run())["eu-west"], "dr-test")
    assert (tuned.backup_rpo_seconds, tuned.base_every_hours, tuned.retention_days) == (120, 6, 30)
    assert tuned.segment_seconds == 10.0


def test_it_alerts_to_the_stacks_webhook():
    path = archive_host.environment_path("dr-test")
    assert written(replicas(tuned_run())["eu-west"], path) == f"DRCTL_ARCHIVE_ARGS=--alert-webhook {WEBHOOK}\n"


def test_without_a_webhook_it_runs_without_alert_flags(dr_test_run):
    assert written(replicas(dr_test_run)["eu-west"], archive_host.environment_path("dr-test")) == "DRCTL_ARCHIVE_ARGS=\n"


# --- secrets --------------------------------------------------------------------------------------------

def archive_secrets(run, stack: str) -> list[str]:
    found = settings(replicas(run)["eu-west"], stack)
    return [found.bucket.secret_key.get_secret_value(), found.archive_key.get_secret_value(),
            *(s.password.get_secret_value() for s in found.sources)]


@pytest.mark.parametrize("stack", ["dr-test", "prod"])
def test_the_user_data_holding_the_settings_is_secret(request, stack):
    run = request.getfixturevalue(f"{stack.replace('-', '_')}_run")
    assert isinstance(replicas(run)["eu-west"].inputs["metadatas"][0]["userData"], Secret)


def base64_forms(text: str) -> list[str]:
    """How `text` shows inside any base64 (user data is base64): one form per alignment, edges cut."""
    forms = []
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + text.encode()).decode()
        forms.append(encoded[4:-4])
    return forms


@pytest.mark.parametrize("stack", ["dr-test", "prod"])
def test_make_plan_prints_none_of_the_archivers_secrets(request, stack, capsys):
    values = archive_secrets(request.getfixturevalue(f"{stack.replace('-', '_')}_run"), stack)
    assert all(len(v) >= 20 for v in values)
    values += [form for v in values for form in base64_forms(v)]
    for output in ("text", "json"):
        assert main(["plan", "-s", stack, "-o", output]) == 0
        out, err = capsys.readouterr()
        assert out and not [v for v in values if v in out + err]


# --- on the host, for real ------------------------------------------------------------------------------

def test_the_user_data_is_a_cloud_config_that_cloud_init_accepts(tmp_path):
    cloud_init = require("cloud-init")
    for run in (tuned_run(), three_region_run()):
        for server in database_servers(run):
            path = tmp_path / f"{server.name}.yaml"
            path.write_text(base64.b64decode(unwrap(server.inputs["metadatas"])[0]["userData"]).decode())
            result = subprocess.run([cloud_init, "schema", "-c", str(path)], capture_output=True, text=True,
                                    check=False, timeout=120)
            assert result.returncode == 0, f"{server.name}: {result.stdout}{result.stderr}"


def test_the_user_data_fits_linodes_limit_with_five_regions():
    regions = [{"region": r, "webNodes": 1} for r in ("us-east", "eu-west", "ap-south", "us-west", "ap-northeast")]
    run = harness.run_ok(harness.stack_file("dr-test", regions=regions))
    for server in database_servers(run):
        assert len(unwrap(server.inputs["metadatas"])[0]["userData"]) <= ci.LINODE_USER_DATA_LIMIT, server.name


def test_the_installer_puts_the_repositorys_archive_unit_in_place_and_systemd_accepts_it(dr_test_run, tmp_path):
    unit = (REPO_ROOT / "deploy" / "drctl-archive@.service").read_text()
    commit = local_repo(tmp_path, require("git"), {"drctl-archive@.service": unit})
    replica = replicas(dr_test_run)["eu-west"]
    services = dict(line.split("=", 1) for line in written(replica, drctl_install.INSTALL_ENV).splitlines())["SERVICES"]
    result = run_installer(tmp_path, written(replica, drctl_install.INSTALL), commit, services.strip("'"))
    assert result.returncode == 0, result.stderr
    installed = tmp_path / "units" / "drctl-archive@.service"
    assert installed.read_text() == unit
    checked = systemd_units.verify(installed.read_text(), "drctl-archive@dr-test.service", tmp_path / "units")
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")


def test_the_units_settings_path_is_the_one_the_stack_writes():
    unit = (REPO_ROOT / "deploy" / "drctl-archive@.service").read_text()
    assert f"LoadCredential=archive.json:{archive_host.settings_path('%i')}\n" in unit
    assert f"EnvironmentFile=-{archive_host.environment_path('%i')}\n" in unit
    assert Path(archive_host.settings_path("prod")).name == "archive-prod.json"
