"""A stand-in for the GitHub CLI (`gh`) on PATH, for the workflow scripts' tests: `script` is the
Python body that answers (it records each call as a JSON line in $GH_CALLS)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


class FakeGh:
    def __init__(self, directory: Path, script: str):
        self.bin_dir = Path(directory) / "bin"
        self.bin_dir.mkdir()
        fake = self.bin_dir / "gh"
        fake.write_text(f"#!{sys.executable}\n{script}")
        fake.chmod(0o755)
        self.calls_file = Path(directory) / "calls.jsonl"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment to run a script in: this `gh` first on PATH, plus `extra`."""
        return {**os.environ, "PATH": f"{self.bin_dir}{os.pathsep}{os.environ['PATH']}",
                "GH_CALLS": str(self.calls_file), **extra}

    def take_calls(self) -> list[dict[str, Any]]:
        """The calls recorded since the last take, oldest first."""
        if not self.calls_file.exists():
            return []
        calls = [json.loads(line) for line in self.calls_file.read_text().splitlines()]
        self.calls_file.unlink()
        return calls
