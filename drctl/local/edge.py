"""The rehearsal's Cloudflare edge: the fallback page's Worker script (the one the program uploads)
run under Node by edge_runner.mjs, in front of the HAProxy proxy that plays the load balancer.

So a rehearsal's "every region down" fault exercises the code Cloudflare will run: shoppers' requests
go edge -> Worker -> HAProxy 'cloudflare' -> NodeBalancer stand-ins -> shop origins, and when no
region answers, what comes back is the Worker's own page. HAProxy answers its own errors with
Cloudflare's status codes (drctl/rehearsal/topology.py), so the Worker sees what it sees on Cloudflare.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from drctl.local import binaries, processes

RUNNER = Path(__file__).with_name("edge_runner.mjs")


class EdgeError(Exception):
    """The edge would not start; the message says why, with its log."""


class EdgeWorker:
    """One Node process serving `script` (a Worker module's text) on `host:port`, its origin fetches
    going to `upstream_port` on the same host."""

    def __init__(self, directory: Path, script: str, host: str, port: int, upstream_port: int):
        self.node = binaries.find("node")["node"]
        self.directory = Path(directory)
        self.script, self.host, self.port, self.upstream_port = script, host, port, upstream_port
        self.script_path = self.directory / "fallback-worker.mjs"
        self.log_path = self.directory / "edge.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 15) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.script_path.write_text(self.script, encoding="utf-8")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [self.node, str(RUNNER), str(self.script_path), self.host, str(self.port), self.host,
                 str(self.upstream_port)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        processes.wait_until_ready(self.process, self._listening, timeout, "the edge (node)", self.log_path, EdgeError)

    def _listening(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self, timeout: float = 5) -> None:
        processes.terminate(self.process, timeout)
        self.process = None

    def log_tail(self, lines: int = 20) -> str:
        return processes.log_tail(self.log_path, lines)
