"""The MySQL Linodes' user data is valid cloud-config (Debian's `cloud-init schema`), its shell passes
shellcheck, and the heartbeat writer for managed mode renders drctl's own SQL."""

import base64
import subprocess

import pytest
import yaml

from components import heartbeat
from components.mysql_cloud_init import TEMPLATES
from drctl.mysql import replication
from drctl.plan.engine import Secret, unwrap
from tests.support.binaries import need

INSTANCE = "linode:index/instance:Instance"


def user_data_texts(run) -> dict[str, str]:
    """The MySQL Linodes' cloud-configs (the web nodes' are tested in test_web_node_cloud_init)."""
    return {i.name: base64.b64decode(unwrap(i.inputs["metadatas"])[0]["userData"]).decode()
            for i in run.of_type(INSTANCE) if any(t.startswith("role:database-") for t in i.inputs["tags"])}


@pytest.mark.integration
@pytest.mark.parametrize("run_name", ["prod_run", "dr_test_run"])
def test_user_data_passes_cloud_init_schema(request, tmp_path, run_name):
    cloud_init = need("cloud-init")["cloud-init"]
    texts = user_data_texts(request.getfixturevalue(run_name))
    assert texts
    for name, text in texts.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        proc = subprocess.run([cloud_init, "schema", "-c", str(path)], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"{name}: {proc.stdout}{proc.stderr}"


@pytest.mark.integration
def test_setup_script_passes_shellcheck():
    shellcheck = need("shellcheck")["shellcheck"]
    proc = subprocess.run([shellcheck, "--severity=style", str(TEMPLATES / "db-setup.sh")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout


def test_setup_script_is_what_runcmd_runs(dr_test_run):
    # The primary: the replica in backups.region runs the archiver's installer after it (test_archive_host).
    doc = yaml.safe_load(user_data_texts(dr_test_run)["db-primary-us-east"])
    (script,) = [f for f in doc["write_files"] if f["path"] == "/usr/local/sbin/woocommerce-dr-db-setup"]
    assert script["permissions"] == "0755"
    assert script["content"] == (TEMPLATES / "db-setup.sh").read_text()
    assert doc["runcmd"] == [["/usr/local/sbin/woocommerce-dr-db-setup"]]
    assert doc["packages"] == ["mysql-server", "mysql-client", "python3-pymysql"]


def test_private_key_and_settings_are_written_after_the_packages(dr_test_run):
    doc = yaml.safe_load(user_data_texts(dr_test_run)["db-primary-us-east"])
    key = next(f for f in doc["write_files"] if f["path"].endswith("server-key.pem"))
    assert (key["owner"], key["permissions"], key["defer"]) == ("mysql:mysql", "0600", True)
    cnf = next(f for f in doc["write_files"] if f["path"].endswith("zz-woocommerce-dr.cnf"))
    assert cnf["defer"] is True
    config = next(f for f in doc["write_files"] if f["path"] == "/etc/woocommerce-dr/bootstrap.json")
    assert config["permissions"] == "0600"


def test_heartbeat_units_run_drctls_sql_every_second():
    units = heartbeat.heartbeat_units()
    assert f'--execute="{replication.HEARTBEAT_WRITE}"' in units["drctl-heartbeat.service"]
    assert "StandardInput=file:/etc/woocommerce-dr/primary-setup.sql" in units["drctl-heartbeat-schema.service"]
    timer = units["drctl-heartbeat.timer"]
    assert "OnUnitActiveSec=1s" in timer and "AccuracySec=100ms" in timer
    # systemd would expand these as specifiers or variables inside ExecStart.
    assert not any("%" in text or "$" in text for text in units.values())


def test_heartbeat_client_config_escapes_the_password():
    text = heartbeat.heartbeat_client_config("db.example", 11876, "akmadmin", 'a"b\\c')
    assert 'password = "a\\"b\\\\c"' in text
    assert "ssl-mode = VERIFY_IDENTITY" in text


def test_heartbeat_writer_reaches_the_primarys_computed_host_and_stays_secret(wired_prod):
    (db,) = wired_prod.of_type("linode:index/databaseMysqlV2:DatabaseMysqlV2")
    files = wired_prod.outputs["heartbeatFiles"]
    assert isinstance(files, Secret)
    by_path = {f["path"]: f for f in unwrap(files)}
    cnf = by_path["/etc/woocommerce-dr/heartbeat.cnf"]
    assert cnf["permissions"] == "0600"
    assert f"host = {db.outputs['hostPrimary']}" in cnf["content"] and "port = 11876" in cnf["content"]
    assert by_path["/etc/woocommerce-dr/primary-ca.pem"]["content"].startswith("-----BEGIN CERTIFICATE-----")
    assert set(by_path) >= {f"/etc/systemd/system/{u}" for u in heartbeat.heartbeat_units()}
    setup = by_path["/etc/woocommerce-dr/primary-setup.sql"]
    assert setup["permissions"] == "0600"
    assert "CREATE TABLE IF NOT EXISTS drctl.drctl_heartbeat" in setup["content"]
