"""Loopback ports for the local servers of `drctl rehearse` and the tests, held for as long as the
server may use them.

Binding port 0, closing the socket and handing the number to a child is a race: until the child
binds, the kernel may give the same number to the next `bind(("127.0.0.1", 0))` (ours, when a
topology asks for eleven ports in a row) or to an outgoing connection. A `PortReservation` keeps
its socket bound, with SO_REUSEADDR and never listening, until it is released. While it is held the
kernel hands the port to nobody else, yet the child (mariadbd, haproxy and Python's socketserver
all set SO_REUSEADDR) can bind and listen on it, because Linux lets SO_REUSEADDR sockets share a
port as long as at most one listens.

Why not hand the child a listening socket instead (`pass_fds`, HAProxy's `bind fd@N`): MariaDB
10.11 cannot inherit one, and a socket that stays listening in the parent would accept connections
after the child is killed, where the drills need a dead server to refuse them, as a dead machine does.
"""

from __future__ import annotations

import socket

HOST = "127.0.0.1"


class PortReservation:
    """One loopback port, held until `release()` (or the end of a `with` block)."""

    def __init__(self, host: str = HOST):
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._socket.bind((host, 0))
        except OSError:
            self._socket.close()
            raise
        self.host = host
        self.port: int = self._socket.getsockname()[1]

    def release(self) -> None:
        """Give the port back; safe to call twice. Only once its server is gone for good."""
        self._socket.close()

    @property
    def held(self) -> bool:
        return self._socket.fileno() != -1

    def __enter__(self) -> PortReservation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"PortReservation({self.host}:{self.port}{'' if self.held else ', released'})"


class PortPool:
    """The reservations of one topology or test, released together."""

    def __init__(self) -> None:
        self._held: list[PortReservation] = []

    def port(self) -> int:
        reservation = PortReservation()
        self._held.append(reservation)
        return reservation.port

    def release(self) -> None:
        for reservation in self._held:
            reservation.release()
        self._held.clear()

    def __enter__(self) -> PortPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
