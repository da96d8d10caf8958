"""deploy/drctl-guard@.service: what it runs parses as a drctl guard command line, and it is hardened
at least as the watchdog's unit is (the guard holds more: a Linode token that can fence)."""

from __future__ import annotations

import shlex
from pathlib import Path

from drctl import cli

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def directives(name: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in (DEPLOY / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def test_the_unit_runs_drctl_guard_on_its_outputs_credential_with_the_host_as_holder():
    unit = directives("drctl-guard@.service")
    [exec_start] = unit["ExecStart"]
    argv = shlex.split(exec_start.replace("$DRCTL_GUARD_ARGS", ""))
    assert argv[:4] == ["/opt/woocommerce-dr/venv/bin/python", "-m", "drctl", "guard"]
    args = cli.build_parser().parse_args(argv[3:])
    assert (args.outputs, args.holder_id, args.dry_run) == ("%d/outputs.json", "%H", False)
    assert unit["LoadCredential"] == ["outputs.json:/etc/drctl/%i.outputs.json"]
    assert unit["EnvironmentFile"] == ["/etc/drctl/guard-%i.env"]


def test_the_journal_and_history_live_in_a_state_directory_that_survives_restarts():
    unit = directives("drctl-guard@.service")
    assert unit["StateDirectory"] == ["drctl-guard"]
    assert unit["Environment"] == ["DRCTL_STATE_DIR=%S/drctl-guard"]


def test_it_is_hardened_like_the_watchdog():
    guard, watch = directives("drctl-guard@.service"), directives("drctl-watch@.service")
    hardening = ("DynamicUser", "NoNewPrivileges", "CapabilityBoundingSet", "ProtectSystem", "ProtectHome",
                 "PrivateTmp", "PrivateDevices", "ProtectKernelTunables", "ProtectKernelModules",
                 "ProtectControlGroups", "RestrictAddressFamilies", "SystemCallFilter", "MemoryMax")
    assert {k: guard.get(k) for k in hardening} == {k: watch.get(k) for k in hardening}
    assert guard["Restart"] == ["always"]


def test_the_environment_example_names_every_token_and_the_extra_flags():
    text = (DEPLOY / "drctl-guard.env.example").read_text()
    keys = [line.split("=", 1)[0] for line in text.splitlines() if line and not line.startswith("#")]
    assert keys == ["CLOUDFLARE_API_TOKEN", "LINODE_TOKEN", "DRCTL_GUARD_ARGS"]
    extra = shlex.split(text.split("DRCTL_GUARD_ARGS=", 1)[1].strip())
    i = extra.index("--ca-file")  # a file of the guard host, not of this one
    extra[i:i + 2] = []
    args = cli.build_parser().parse_args(["guard", "--outputs", "x.json", *extra])
    assert args.metrics_port == 9151
