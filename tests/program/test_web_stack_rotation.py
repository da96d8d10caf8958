"""The rotation agent for real: a web node (tests/support/web_stack.py: the rendered files, real nginx
and PHP-FPM) and its rendered woocommerce-dr-rotation script, as root, in a network namespace of the
test's own with the NodeBalancers' network (192.168.255.0/24) on its loopback. The NodeBalancer's TCP
check is a connect from that network: it must be refused within checkInterval x checkAttempts of
PHP-FPM dying, and accepted again once PHP-FPM is back. There is no database in the namespace at all,
so every check also shows a database outage does not take a node out of rotation."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from components.config import validate_stack_config
from tests.support import harness
from tests.support.binaries import need
from tests.support.network_namespace import new_network_namespace
from tests.support.waiting import wait_until
from tests.support.web_stack import PRIMARY_REGION, STACK, WebStack, rendered_files

pytestmark = pytest.mark.integration

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


class Node:
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
        children = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
        for pid in [master.pid, *map(int, children)]:
            os.kill(pid, signal.SIGKILL)
        master.wait(timeout=10)
        self.stack.php_fpm = None

    def restart_php_fpm(self) -> None:
        # systemd removes PHP-FPM's runtime directory (/run/php) when the service stops.
        (self.stack.root / "run/php-fpm.sock").unlink(missing_ok=True)
        self.stack.start_php_fpm()

    def agent_log(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


@pytest.fixture
def node(web_stack_run, mariadb_ca, tmp_path):
    need("nft", "curl", "ip", "bash")
    files = rendered_files(web_stack_run, f"{PRIMARY_REGION}-web-0")
    # No database server in the namespace: /healthz answers 503 throughout (an outage of the database).
    nowhere = SimpleNamespace(host="127.0.0.1", port=3306, tls=SimpleNamespace(ca=mariadb_ca.ca))
    with new_network_namespace(f"{NODEBALANCER}/32"):
        stack = WebStack(files, nowhere)
        node = Node(stack, tmp_path / "agent.log")
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


def test_a_node_whose_php_fpm_died_leaves_rotation_within_the_nodebalancers_bound_and_rejoins(node):
    bound = leave_bound_seconds()
    started = time.monotonic()
    node.crash_php_fpm()
    assert node.stack.get("/", https=True).status == 502  # what the NodeBalancer would keep sending
    wait_until(node.out_of_rotation, bound, f"the NodeBalancer's check being refused ({node.agent_log()})")
    left = time.monotonic() - started
    # Only the NodeBalancers' network is refused: on the node itself nginx still answers.
    assert node.stack.get("/livez").status == 502

    started = time.monotonic()
    node.restart_php_fpm()
    wait_until(node.in_rotation, bound, f"the node rejoining ({node.agent_log()})")
    rejoined = time.monotonic() - started
    assert node.stack.get("/livez").status == 200
    print(f"\nrotation agent: left {left:.1f} s after PHP-FPM died, rejoined {rejoined:.1f} s after it came back "
          f"(bound: checkInterval x checkAttempts = {bound} s)")
    assert "left rotation" in node.agent_log() and "joined rotation" in node.agent_log()


def test_a_database_outage_leaves_the_node_in_rotation_answering_503(node):
    response = node.stack.get("/healthz")
    assert response.status == 503 and response.json()["db_reachable"] is False
    assert node.in_rotation()
    assert node.stack.get("/livez").status == 200


def test_livez_answers_the_node_itself_only(node):
    with socket.socket() as s:
        s.settimeout(5)
        s.bind((NODEBALANCER, 0))
        s.connect(("127.0.0.1", node.stack.http_port))
        s.sendall(b"GET /livez HTTP/1.0\r\nHost: x\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 403")


def test_stopping_the_agent_puts_a_node_back_in_rotation(node):
    node.crash_php_fpm()
    wait_until(node.out_of_rotation, leave_bound_seconds(), "the node leaving")
    node.stop_agent()
    assert node.in_rotation()
    assert "stopped: node in rotation" in node.agent_log()
