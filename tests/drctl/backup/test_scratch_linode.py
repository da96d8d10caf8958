"""Scratch Linodes (drctl/backup/scratch_linode.py) against the Linode API fake: what drctl sends
(user data checked by `cloud-init schema` and shellcheck, the firewall), what a refusal leaves
behind (nothing), and finding, listing and deleting them."""

from __future__ import annotations

import base64
import json
import stat
import subprocess
from types import SimpleNamespace

import pytest
import yaml

from drctl.backup import scratch_linode as scratch
from drctl.cloud.linode import LinodeAPI, LinodeAPIError
from tests.support.binaries import require
from tests.support.fake_linode import AnswerLoss, FakeLinode, Fault


@pytest.fixture(autouse=True)
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("DRCTL_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


@pytest.fixture
def fake():
    with FakeLinode() as linode:
        yield linode


def api(fake) -> LinodeAPI:
    return LinodeAPI(token=fake.token, base_url=fake.base_url, retry_interval=0.01)


def request(family: str = "mariadb", **kw) -> scratch.ScratchRequest:
    values = {"stack": "dr-test", "label": scratch.scratch_label("dr-test", "20261129T140300Z"), "region": "eu-west",
              "type": "g6-standard-2", "family": family, "sources": ("198.51.100.0/24", "2001:db8:1::/48")}
    return scratch.ScratchRequest(**{**values, **kw})


def sent_user_data(fake) -> str:
    body = next(b for m, p, b in fake.requests if m == "POST" and p == "/linode/instances")
    text = base64.b64decode(body["metadata"]["user_data"]).decode()
    assert text.startswith("#cloud-config\n")
    return text


def schema_check(text: str, tmp_path) -> None:
    path = tmp_path / "user-data.yaml"
    path.write_text(text)
    checked = subprocess.run([require("cloud-init"), "schema", "-c", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def written(doc: dict, path: str) -> dict:
    return next(f for f in doc["write_files"] if f["path"] == path)


@pytest.mark.parametrize("family,package,settings", [
    ("mariadb", "mariadb-server", "/etc/mysql/mariadb.conf.d/zz-drctl-scratch.cnf"),
    ("mysql", "mysql-server", "/etc/mysql/mysql.conf.d/zz-drctl-scratch.cnf"),
])
def test_user_data_is_valid_cloud_config_installing_the_archives_server_family(family, package, settings, tmp_path):
    keys = scratch.Secrets.generate("drctl-restore-dr-test-x")
    text = scratch.cloud_config(request(family), keys)
    schema_check(text, tmp_path)
    doc = yaml.safe_load(text)
    assert package in doc["packages"]
    conf = written(doc, settings)
    assert conf["defer"] is True  # after the package: its first start must not see missing certificates
    assert "require_secure_transport = ON" in conf["content"] and "bind-address = 0.0.0.0" in conf["content"]
    assert f"ssl_cert = {scratch.SERVER_DIR}/server-cert.pem" in conf["content"]
    if family == "mysql":
        assert "gtid_mode = ON" in conf["content"] and "enforce_gtid_consistency = ON" in conf["content"]
    account = written(doc, f"{scratch.SERVER_DIR}/account.sql")
    assert account["permissions"] == "0600"
    assert f"IDENTIFIED BY '{keys.password}' REQUIRE SSL" in account["content"]
    assert written(doc, f"{scratch.SERVER_DIR}/ca-key.pem")["permissions"] == "0600"
    assert text.count(keys.password) == 1  # in the account's SQL only
    assert doc["runcmd"] == [["/usr/local/sbin/drctl-scratch-setup"]]


def test_the_setup_script_works_in_the_directory_the_user_data_writes_to():
    assert f"dir={scratch.SERVER_DIR}\n" in (scratch.TEMPLATES / "scratch-setup.sh").read_text()


def test_the_shipped_scripts_pass_shellcheck():
    scripts = sorted(str(p) for p in scratch.TEMPLATES.glob("*.sh"))
    checked = subprocess.run([require("shellcheck"), "-s", "sh", *scripts], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout


def test_the_firewall_is_made_first_and_admits_mysql_from_the_sources_only(fake, state, tmp_path):
    instance, existed = scratch.ensure_scratch(api(fake), request(), [].append)
    assert not existed
    sent = sent_user_data(fake)  # what went to the API: valid, the archive's family, the password in it once
    schema_check(sent, tmp_path)
    assert yaml.safe_load(sent)["packages"] == ["mariadb-server", "mariadb-client"]
    password = (state / "dr-test" / "scratch" / request().label / "client.cnf").read_text().split("password=")[1].strip()
    assert sent.count(password) == 1
    posts = [p for m, p, _ in fake.requests if m == "POST"]
    assert posts == ["/networking/firewalls", "/linode/instances"]
    (fw_id, fw), = fake.firewalls.items()
    assert fw["inbound_policy"] == "DROP"
    assert fw["inbound"] == [{"label": "mysql-from-drctl", "action": "ACCEPT", "protocol": "TCP", "ports": "3306",
                              "addresses": {"ipv4": ["198.51.100.0/24"], "ipv6": ["2001:db8:1::/48"]}}]
    assert fw["devices"] == [instance["id"]]
    body = fake.instances[instance["id"]]["body"]
    assert body["firewall_id"] == fw_id and body["image"] == "linode/ubuntu24.04"
    assert "authorized_keys" not in body
    assert body["tags"][:2] == ["drctl-restore", "stack:dr-test"] and body["tags"][2].startswith("created:")
    files = state / "dr-test" / "scratch" / request().label
    assert stat.S_IMODE((files / "client.cnf").stat().st_mode) == 0o600
    assert json.loads((files / "scratch.json").read_text())["instanceId"] == instance["id"]


def test_a_second_run_finds_the_linode_by_label_instead_of_making_another(fake):
    first, _ = scratch.ensure_scratch(api(fake), request(), [].append)
    said: list[str] = []
    again, existed = scratch.ensure_scratch(api(fake), request(), said.append)
    assert existed and again["id"] == first["id"]
    assert len(fake.instances) == 1 and len(fake.firewalls) == 1
    assert any("from an earlier run" in line for line in said)


def test_a_second_run_from_another_address_admits_it(fake):
    scratch.ensure_scratch(api(fake), request(), [].append)
    scratch.ensure_scratch(api(fake), request(sources=("203.0.113.7/32",)), [].append)
    (fw,) = fake.firewalls.values()
    assert fw["inbound"][0]["addresses"] == {"ipv4": ["203.0.113.7/32"]}
    assert fw["label"] == scratch.firewall_label(request().label)


def test_a_lost_answer_to_the_create_makes_one_linode_not_two(fake):
    fake.losses.append(AnswerLoss("POST", r"/linode/instances"))
    instance, _ = scratch.ensure_scratch(api(fake), request(), [].append)
    assert [i["id"] for i in fake.instances.values()] == [instance["id"]]


def test_a_linode_of_that_label_without_credentials_here_is_refused(fake, state):
    scratch.ensure_scratch(api(fake), request(), [].append)
    for f in (state / "dr-test" / "scratch" / request().label).iterdir():
        f.unlink()
    with pytest.raises(scratch.ScratchError) as err:
        scratch.ensure_scratch(api(fake), request(), [].append)
    assert f"--delete-scratch {request().label} --yes" in str(err.value)


@pytest.mark.parametrize("arrange,expected", [
    (lambda f: setattr(f, "instance_limit", 0),
     "Linode API could not create Linode drctl-restore-dr-test-20261129T140300Z (HTTP 400: Account Limit reached"),
    (lambda f: f.region_types.update({"eu-west": {"g6-nanode-1"}}),
     "(HTTP 400: Linode type g6-standard-2 is not available in eu-west)"),
    (lambda f: f.faults.append(Fault("POST", r"/linode/instances", 401)),
     "Linode API refused the token while trying to create Linode drctl-restore-dr-test-20261129T140300Z (HTTP 401"),
    (lambda f: f.faults.append(Fault("POST", r"/networking/firewalls", 403)),
     "the token needs the 'Firewalls: Read/Write' scope"),
])
def test_an_api_refusal_gives_one_message_and_leaves_nothing_behind(fake, state, arrange, expected):
    arrange(fake)
    with pytest.raises(LinodeAPIError) as err:
        scratch.ensure_scratch(api(fake), request(), [].append)
    assert expected in str(err.value)
    assert fake.instances == {} and fake.firewalls == {}
    assert not (state / "dr-test" / "scratch" / request().label).exists()


def test_list_shows_only_this_stacks_scratch_linodes_and_delete_removes_linode_firewall_and_credentials(fake, state):
    scratch.ensure_scratch(api(fake), request(), [].append)
    scratch.ensure_scratch(api(fake), request(stack="prod", label="drctl-restore-prod-drill"), [].append)
    fake.instances[5] = {"id": 5, "label": "shop-web-1", "tags": ["stack:dr-test"], "status": "running",
                         "ipv4": ["192.0.2.5"]}
    assert [i["label"] for i in scratch.list_scratch(api(fake), "dr-test")] == [request().label]
    assert scratch.delete_scratch(api(fake), "dr-test", request().label, [].append)
    assert request().label in fake.deleted_instances
    assert [fw["label"] for fw in fake.firewalls.values()] == [scratch.firewall_label("drctl-restore-prod-drill")]
    assert not (state / "dr-test" / "scratch" / request().label).exists()
    assert not scratch.delete_scratch(api(fake), "dr-test", request().label, [].append)  # nothing left: says so


def test_labels_follow_linodes_rules_and_are_never_cut():
    assert scratch.scratch_label("dr_test", "20261129T140300Z") == "drctl-restore-dr-test-20261129T140300Z"
    assert len(scratch.firewall_label("drctl-restore-" + "x" * 49)) <= 32
    with pytest.raises(scratch.ScratchError, match="is 65 characters"):
        scratch.scratch_label("s" * 34, "20261129T140300Z")


def test_a_restore_point_fits_a_label_for_either_kind_of_gtid():
    from drctl.backup.binlog_events import parse_any_gtid

    mysql = scratch.moment_label(None, parse_any_gtid("3e11fa47-71ca-11e1-9e33-c80aa9429562:48211"))
    assert mysql == "gtid-3e11fa47-48211"
    assert scratch.scratch_label("prod", mysql) == "drctl-restore-prod-gtid-3e11fa47-48211"
    assert scratch.moment_label(None, parse_any_gtid("0-1-48211")) == "gtid-0-1-48211"


def test_waiting_shows_progress_and_gives_up_at_the_timeout_saying_what_it_saw(fake):
    instance, _ = scratch.ensure_scratch(api(fake), request(), [].append)
    fake.instances[instance["id"]]["ipv4"] = ["127.0.0.1"]  # nothing answers on 3306 there: refused at once
    now = [0.0]
    said: list[str] = []
    with pytest.raises(scratch.ScratchError) as err:
        scratch.wait_until_ready(api(fake), request(), {"id": instance["id"], "status": "provisioning"}, said.append,
                                 timeout=60, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert str(err.value).startswith(f"scratch Linode {request().label} did not answer within 60 s (status running; "
                                     "last: OperationalError")
    assert f"--delete-scratch {request().label} --yes" in str(err.value)
    assert said[0] == f"waiting for scratch Linode {request().label}: Linode is provisioning (0 s)"
    assert any("installing the database server" in line for line in said[1:])


def test_one_ctrl_c_during_the_deletion_does_not_leave_the_linode(fake, monkeypatch):
    client = api(fake)
    real_delete, calls = client.delete_instance, []

    def interrupted_once(instance_id):
        calls.append(instance_id)
        if len(calls) == 1:
            raise KeyboardInterrupt
        real_delete(instance_id)

    monkeypatch.setattr(client, "delete_instance", interrupted_once)
    monkeypatch.setattr(scratch, "wait_until_ready", lambda *a, **k: SimpleNamespace(target=lambda: None))
    said: list[str] = []
    with pytest.raises(RuntimeError), scratch.scratch_linode(client, request(), said.append, timeout=60, keep=False):
        raise RuntimeError("the restore failed")
    assert fake.instances == {} and fake.firewalls == {}
    assert any("deleting it anyway" in line for line in said)
