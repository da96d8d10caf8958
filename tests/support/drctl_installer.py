"""The drctl installer (components/templates/drctl-install) run for real against a local repository,
with every path it writes moved under a temporary directory and systemctl left alone: what the guard
Linodes and the archiver's replica run at first boot (tests/program/test_guards.py,
tests/program/test_archive_host.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

GIT_IDENTITY = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}


def local_repo(tmp_path: Path, git: str, units: dict[str, str]) -> str:
    """A repository at tmp_path/repo holding deploy/<name> for each unit (name -> text) and an empty
    requirements.txt; its commit id."""
    repo = tmp_path / "repo"
    (repo / "deploy").mkdir(parents=True)
    (repo / "requirements.txt").write_text("# nothing to install offline\n")
    for name, text in units.items():
        (repo / "deploy" / name).write_text(text)
    env = {**os.environ, **GIT_IDENTITY}
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "drctl"]):
        subprocess.run([git, "-C", str(repo), *args], check=True, env=env)
    return subprocess.run([git, "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()


def run_installer(tmp_path: Path, script: str, commit: str, services: str) -> subprocess.CompletedProcess:
    """Run `script` (the installer as the user data carries it) for tmp_path/repo at `commit`: the
    checkout lands in tmp_path/opt, the units in tmp_path/units."""
    installer = tmp_path / "drctl-install"
    installer.write_text(script)
    installer.chmod(0o755)
    (tmp_path / "install.env").write_text(
        f"DRCTL_REPO='{tmp_path / 'repo'}'\nDRCTL_COMMIT='{commit}'\nSTACK='dr-test'\nSERVICES='{services}'\n")
    (tmp_path / "units").mkdir(exist_ok=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if not (bin_dir / "python3").exists():
        (bin_dir / "python3").symlink_to(sys.executable)  # a python3 with venv, as python3-venv gives the host
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "DRCTL_INSTALL_ENV": str(tmp_path / "install.env"),
           "DRCTL_ROOT": str(tmp_path / "opt"), "DRCTL_UNIT_DIR": str(tmp_path / "units"), "DRCTL_NO_SYSTEMCTL": "1"}
    return subprocess.run([str(installer)], capture_output=True, text=True, env=env, check=False)
