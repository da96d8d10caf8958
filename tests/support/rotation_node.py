"""A web node with its rotation agent, in a network namespace of its own (tests/support/network_namespace.py):
the NodeBalancer's view of it (a TCP connect from the NodeBalancers' network), and what makes its
PHP-FPM fail. Shared by tests/program/test_web_stack_rotation.py and bench/rotation_agent.py."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from components.config import validate_stack_config
from tests.support import harness
from tests.support.binaries import need
from tests.support.network_namespace import new_network_namespace
from tests.support.waiting import wait_until
from tests.support.web_stack import STACK, WebStack

NODEBALANCER = "192.168.255.2"  # an address of the NodeBalancers' network, on the namespace's loopback
AGENT = "/usr/local/sbin/woocommerce-dr-rotation"


def leave_bound_seconds() -> int:
    """What the stack's NodeBalancer config allows for a node that cannot serve to leave."""
    spec = validate_stack_config(harness.raw_config(STACK)).node_balancer
    return spec.check_interval * spec.check_attempts


def nodebalancer_connects(port: int) -> bool:
    """The NodeBalancer's TCP check: a connect from its network."""
    with socket.socket() as s:
        s.settimeout(5)
        s.bind((NODEBALANCER, 0))
        try:
            s.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return False
        return True


class RotationNode:
    def __init__(self, stack: WebStack, log: Path):
        self.stack = stack
        self.log = log
        self.agent: subprocess.Popen | None = None

    @property
    def ports(self) -> tuple[int, int]:
        return self.stack.https_port, self.stack.http_port

    def in_rotation(self) -> bool:
        return all(nodebalancer_connects(port) for port in self.ports)

    def out_of_rotation(self) -> bool:
        return not any(nodebalancer_connects(port) for port in self.ports)

    def agent_command(self, *args: str) -> list[str]:
        return ["bash", str(self.stack.path(AGENT)), *args]

    def agent_env(self) -> dict[str, str]:
        return {"PATH": os.environ["PATH"], "ROTATION_ENV": str(self.stack.path("/etc/woocommerce-dr/rotation.env"))}

    def start_agent(self) -> None:
        with self.log.open("a") as out:
            self.agent = subprocess.Popen(self.agent_command(), env=self.agent_env(), stdout=out,
                                          stderr=subprocess.STDOUT)

    def stop_agent(self) -> None:
        """What systemd does on `systemctl stop` (or after a crash): end it, then ExecStopPost."""
        if self.agent and self.agent.poll() is None:
            self.agent.terminate()
            self.agent.wait(timeout=10)
        with self.log.open("a") as out:
            subprocess.run(self.agent_command("stop"), env=self.agent_env(), stdout=out, stderr=subprocess.STDOUT,
                           check=True)

    def crash_php_fpm(self) -> None:
        """PHP-FPM dies, workers and all (SIGKILL), leaving its socket file behind as a crash does."""
        master = self.stack.php_fpm
        for pid in self.php_fpm_pids():
            os.kill(pid, signal.SIGKILL)
        master.wait(timeout=10)
        self.stack.php_fpm = None

    def restart_php_fpm(self) -> None:
        # systemd removes PHP-FPM's runtime directory (/run/php) when the service stops.
        (self.stack.root / "run/php-fpm.sock").unlink(missing_ok=True)
        self.stack.start_php_fpm()

    def agent_log(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def php_fpm_pids(self) -> list[int]:
        master = self.stack.php_fpm
        children = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
        return [master.pid, *map(int, children)]

    def hang_php_fpm(self) -> None:
        """PHP-FPM stops answering without dying (SIGSTOP, master and workers): requests wait."""
        for pid in self.php_fpm_pids():
            os.kill(pid, signal.SIGSTOP)

    def resume_php_fpm(self) -> None:
        for pid in self.php_fpm_pids():
            os.kill(pid, signal.SIGCONT)


@contextlib.contextmanager
def rotation_node(files: dict[str, dict[str, Any]], database_ca: str, log: Path) -> Iterator[RotationNode]:
    """A web node from `files` (a web node's rendered write_files) with its agent running and the node
    joined, in a network namespace of its own that has the NodeBalancers' address on its loopback and
    no database server at all (so /healthz answers 503 throughout: a database outage). The calling
    thread stays in the namespace until the block ends."""
    need("nft", "curl", "ip", "bash")
    nowhere = SimpleNamespace(host="127.0.0.1", port=3306, tls=SimpleNamespace(ca=database_ca))
    with new_network_namespace(f"{NODEBALANCER}/32"):
        stack = WebStack(files, nowhere)
        node = RotationNode(stack, log)
        try:
            stack.start()
            node.start_agent()
            # The agent starts with the node out (the node was in before it started): wait for its join.
            wait_until(lambda: "joined rotation" in node.agent_log() and node.in_rotation(), leave_bound_seconds(),
                       "the node joining the rotation")
            yield node
        finally:
            try:
                node.stop_agent()
            finally:
                stack.stop()

