"""deploy/ units checked by systemd itself: `systemd-analyze verify` on an instance of a template unit.
systemd refuses an ExecStart whose program does not exist, and the hosts' venv path does not exist
here: it is replaced by this interpreter, nothing else is touched. Unknown keys and bad values only
print warnings (the exit status stays 0), so the output must be empty too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.binaries import require

HOST_PYTHON = "/opt/woocommerce-dr/venv/bin/python"


def verify(unit_text: str, instance: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """`systemd-analyze verify` of `unit_text` as `instance` (e.g. drctl-archive@dr-test.service)."""
    analyze = require("systemd-analyze")
    assert HOST_PYTHON in unit_text
    path = tmp_path / instance
    path.write_text(unit_text.replace(HOST_PYTHON, sys.executable))
    return subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True, check=False, timeout=60)
