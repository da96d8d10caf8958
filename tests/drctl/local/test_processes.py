"""The local servers' plumbing: ports held for a server's whole life, and a server that dies while
starting explains itself with its own log."""

from __future__ import annotations

import errno
import socket
import subprocess
import sys

import pytest

from drctl.local import processes
from drctl.local.ports import PortPool, PortReservation


def test_a_reserved_port_cannot_be_taken_by_anyone_else_while_held():
    with PortReservation() as reserved:
        with socket.socket() as other, pytest.raises(OSError) as refused:
            other.bind(("127.0.0.1", reserved.port))  # what a bind(0) elsewhere would have to do to get it
        assert refused.value.errno == errno.EADDRINUSE
    with socket.socket() as other:
        other.bind(("127.0.0.1", reserved.port))  # released: free for anyone


def test_the_server_a_port_is_reserved_for_can_listen_on_it_and_a_dead_one_refuses_connections(tmp_path):
    with PortReservation() as reserved:
        server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(reserved.port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            processes.wait_until_ready(server, lambda: _answers(reserved.port), 15, "http.server",
                                       tmp_path / "http.server.log", RuntimeError)
        finally:
            processes.kill(server)
        assert not _answers(reserved.port)  # held but not listening: refused, as a dead machine is


def test_a_pool_releases_every_port_it_handed_out():
    pool = PortPool()
    ports = [pool.port() for _ in range(11)]
    assert len(set(ports)) == 11
    pool.release()
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # free again


def test_a_server_that_dies_while_starting_is_reported_with_the_end_of_its_log(tmp_path):
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([sys.executable, "-c", "import sys; print('OSError: [Errno 98] Address already "
                                   "in use', file=sys.stderr); sys.exit(1)"], stdout=out, stderr=out)
    with pytest.raises(RuntimeError, match=r"(?s)origin exited with 1 while starting:\n.*Errno 98\] Address already"):
        processes.wait_until_ready(server, lambda: False, 15, "origin", log, RuntimeError)


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0

