"""A TCP relay on loopback that cuts connections short, as a link that breaks mid-session does: the
connections numbered in `cut_connections` (counted from 1) are closed under their client after it
has sent `cut_after` chunks (past the TLS handshake and login of a MySQL client, into its queries).
Every other connection is relayed whole.

    with CuttingProxy(server.host, server.port) as proxy:  # connect to proxy.port instead
        ...
    proxy.cut, proxy.accepted  # connections cut and accepted
"""

from __future__ import annotations

import contextlib
import socket
import threading


class CuttingProxy:
    def __init__(self, host: str, port: int, cut_connections: tuple[int, ...] = (1,), cut_after: int = 6):
        self.target = (host, port)
        self.cut_connections, self.cut_after = cut_connections, cut_after
        self.cut = 0
        self.accepted = 0
        self._listener = socket.create_server((host, 0))  # in-process: it binds its own port
        self.host, self.port = host, self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._closed = False

    def __enter__(self) -> CuttingProxy:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed = True
        self._listener.close()
        for s in self._sockets:
            with contextlib.suppress(OSError):
                s.close()
        for t in self._threads:
            t.join(5)

    def _spawn(self, target, *args) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(t)
        t.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            upstream = socket.create_connection(self.target)
            self._sockets += [client, upstream]
            cut = self.cut_after if self.accepted in self.cut_connections else None
            self._spawn(self._relay, client, upstream, cut)
            self._spawn(self._relay, upstream, client, None)

    def _relay(self, src: socket.socket, dst: socket.socket, cut_after: int | None) -> None:
        chunks = 0
        try:
            while data := src.recv(65536):
                chunks += 1
                if cut_after is not None and chunks >= cut_after:
                    self.cut += 1
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):  # either side gone: the other end sees the connection end
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
