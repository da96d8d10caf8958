"""The files drctl keeps about a stack on the operator's machine: journals, the promotion history,
saved firewall rules, errant-transaction exports (customers' rows), drill reports.

Every one is written atomically (a temp file beside it, fsync, rename, fsync of the directory): a
crash or a full disk mid-write leaves the old file or the new one, never half of either. Every one
is readable by its owner only (0600, in directories drctl creates 0700): they hold customer data
and the topology of a production database. And a file that is there but cannot be read is an
error, never "no file": the anti-flapping check must not pass because its history is truncated.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

PRIVATE_DIR = 0o700


class StateFileError(Exception):
    """A state file exists but cannot be read; the message names it and what to do."""


def private_dir(path: Path) -> Path:
    """`path` and every missing parent, created 0700 (existing directories are left as they are:
    an operator's --report-dir is theirs)."""
    path = Path(path)
    missing = []
    for candidate in (path, *path.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it first
            directory.mkdir(mode=PRIVATE_DIR)
    return path


def write_private(path: Path, text: str) -> Path:
    """Replace `path` with `text` atomically, mode 0600."""
    path = Path(path)
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mkstemp: 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def write_json(path: Path, doc: Any) -> Path:
    return write_private(path, json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path, what: str) -> Any | None:
    """The JSON in `path`; None when there is no such file; StateFileError when it cannot be read
    or parsed (fail closed)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise StateFileError(f"{what} {path} cannot be read ({_reason(err)}); drctl will not guess what it "
                             "held: repair it or move it aside, then run again") from None
    try:
        return json.loads(text)
    except ValueError as err:
        raise StateFileError(f"{what} {path} is not valid JSON ({err}); drctl will not guess what it held: "
                             "repair it or move it aside, then run again") from None


def _reason(err: Exception) -> str:
    return getattr(err, "strerror", None) or type(err).__name__


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (a crash right after it could otherwise undo it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
