"""Starting and stopping the local server processes of `drctl rehearse` (MariaDB, HAProxy, shop
origins): wait until one answers, stop it cleanly or kill it, and always reap it, so a rehearsal
leaves no process behind."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def wait_until_ready(process: subprocess.Popen, ready: Callable[[], bool], timeout: float, what: str,
                     log: Path, error: type[Exception]) -> None:
    """Poll `ready` until it is true; raise `error` (with the log's last lines) if the process
    exits first or `timeout` seconds pass, killing it in the second case."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            raise error(f"{what} exited with {process.returncode} while starting:\n{log_tail(log)}")
        if time.monotonic() > deadline:
            kill(process)
            raise error(f"{what} did not answer within {timeout} s:\n{log_tail(log)}")
        time.sleep(0.05)


def terminate(process: subprocess.Popen | None, timeout: float) -> None:
    """SIGTERM (a clean shutdown), then SIGKILL if it has not exited within `timeout`."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        kill(process)


def kill(process: subprocess.Popen | None) -> None:
    """SIGKILL and reap."""
    if process is None or process.poll() is not None:
        return
    process.kill()
    process.wait()


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
