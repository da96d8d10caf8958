"""`drctl guard` as a process: started on a stack's outputs (real MariaDB servers, the API fakes),
it logs JSON lines, decides, and on SIGTERM stops cleanly with exit 0; --dry-run writes nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.runbook_support import Shop
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


def events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def test_a_dry_run_guard_decides_logs_and_stops_on_sigterm(mariadb_pair, tmp_path, cloud):
    shop = Shop.build(list(mariadb_pair), tmp_path, cloud.linode)
    log = tmp_path / "guard.log"
    env = {**os.environ, **cloud.env(), "DRCTL_STATE_DIR": str(tmp_path / "state")}
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "drctl", "guard", "--outputs", str(shop.outputs_file), "--dry-run",
             "--interval", "0.5", "--timeout", "0.2", "--holder-id", "g-test"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            # The NodeBalancer addresses of these outputs answer nothing; the database answers.
            wait_until(lambda: any(e["event"] == "signal" and e["signal"] == "healthz" and e["state"] == "down"
                                   for e in events(log)), timeout=30)
            wait_until(lambda: any(e["event"] == "verdict" for e in events(log)), timeout=30)
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, log.read_text()
    found = events(log)
    assert found[0]["event"] == "start" and found[0]["guard"] == "g-test" and found[0]["dry_run"] is True
    assert found[-1]["event"] == "stop"
    verdicts = [e for e in found if e["event"] == "verdict"]
    assert [v["action"] for v in verdicts] == ["healthy"]  # logged once: on a change only
    assert {e["state"] for e in found if e["event"] == "signal" and e["signal"] == "database"} == {"up"}
    assert all(e["stack"] == "runbook-test" for e in found)
    assert out == ""
    assert cloud.cloudflare.writes() == [] and cloud.linode.writes() == []
    assert "drctl-admin-pw" not in log.read_text()  # no secret in the log
