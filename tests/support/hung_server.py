"""A server that accepts every TCP connection and never answers: what a hung API looks like to a
client (the request goes out, no byte comes back). The listening socket is bound here, in the test
process, on port 0: no port number is handed out that nothing holds."""

from __future__ import annotations

import socket
import threading


class HungServer:
    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._held: list[socket.socket] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    @property
    def connections(self) -> int:
        return len(self._held)

    def __enter__(self) -> HungServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed.set()
        self._listener.close()
        for conn in self._held:
            conn.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._held.append(conn)  # kept open, never read from, never written to
