"""deploy/drctl-archive@.service: what it runs parses as a `drctl archive` command line reading its
settings credential, it restarts forever but never on settings drctl refuses, it may write nothing but
its state directory, and systemd itself accepts it."""

from __future__ import annotations

import shlex
from pathlib import Path

from drctl import cli
from drctl.stack.command_line import EXIT_USAGE
from tests.support import systemd_units

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
UNIT = (DEPLOY / "drctl-archive@.service").read_text()


def directives() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def test_the_unit_runs_drctl_archive_on_its_settings_credential(tmp_path):
    unit = directives()
    [exec_start] = unit["ExecStart"]
    argv = shlex.split(exec_start.replace("$DRCTL_ARCHIVE_ARGS", "--alert-webhook https://hooks.example.com/x"))
    assert argv[:4] == [systemd_units.HOST_PYTHON, "-m", "drctl", "archive"]
    assert argv[4:6] == ["--config", "%d/archive.json"]
    settings = tmp_path / "archive.json"  # what %d/archive.json is once systemd hands the credential over
    settings.write_text("{}")
    args = cli.build_parser().parse_args([a.replace("%d", str(tmp_path)) for a in argv[3:]])
    assert (args.config, args.alert_webhook) == (str(settings), "https://hooks.example.com/x")
    assert unit["LoadCredential"] == ["archive.json:/etc/drctl/archive-%i.json"]
    assert unit["EnvironmentFile"] == ["-/etc/drctl/archive-%i.env"]


def test_it_restarts_always_but_not_on_settings_drctl_refuses():
    unit = directives()
    assert unit["Restart"] == ["always"]
    assert unit["RestartPreventExitStatus"] == [str(EXIT_USAGE)]


def test_nothing_is_writable_but_its_state_directory_and_it_holds_no_capability():
    unit = directives()
    assert unit["StateDirectory"] == ["drctl-archive"] and unit["StateDirectoryMode"] == ["0700"]
    expected = {"ProtectSystem": "strict", "PrivateTmp": "yes", "NoNewPrivileges": "yes", "ProtectHome": "yes",
                "PrivateDevices": "yes", "CapabilityBoundingSet": "", "RestrictSUIDSGID": "yes"}
    assert {key: unit[key] for key in expected} == {key: [value] for key, value in expected.items()}
    assert "User" not in unit and "DynamicUser" not in unit  # root, for MySQL's auth_socket; see the unit


def test_it_starts_after_the_local_mysql_and_a_synchronised_clock():
    after = directives()["After"][0].split()
    assert {"mysql.service", "time-sync.target", "network-online.target"} <= set(after)


def test_systemd_accepts_the_unit(tmp_path):
    result = systemd_units.verify(UNIT, "drctl-archive@dr-test.service", tmp_path)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_the_environment_example_names_only_the_extra_flags():
    text = (DEPLOY / "drctl-archive.env.example").read_text()
    keys = [line.split("=", 1)[0] for line in text.splitlines() if line and not line.startswith("#")]
    assert keys == ["DRCTL_ARCHIVE_ARGS"]
