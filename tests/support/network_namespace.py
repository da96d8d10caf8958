"""A fresh network namespace for one test, entered by the test's own thread.

Linux keeps the network namespace per thread: after `setns` the calling thread's sockets, and every
process it starts, live in the new namespace with its own loopback, its own ports and its own
nftables ruleset, while the machine's (and every other test's) stay untouched. The namespace goes
away with the last process in it. Needs root (CAP_SYS_ADMIN), as the tests run in CI.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.support.binaries import need

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _call(name: str, *args: int) -> None:
    if getattr(_libc, name)(*args) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{name}: {os.strerror(errno)}")


@contextlib.contextmanager
def new_network_namespace(*addresses: str) -> Iterator[None]:
    """Run the body in a new network namespace with loopback up and `addresses` (CIDR) on it."""
    ip = need("ip")["ip"]
    if os.geteuid() != 0:
        message = "a network namespace of the test's own needs root (CI runs the tests as root)"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        _call("unshare", CLONE_NEWNET)
        try:
            subprocess.run([ip, "link", "set", "lo", "up"], check=True)
            for address in addresses:
                subprocess.run([ip, "address", "add", address, "dev", "lo"], check=True)
            yield
        finally:
            _call("setns", original, CLONE_NEWNET)
    finally:
        os.close(original)
