"""The rotation agent for real: a web node (tests/support/web_stack.py: the rendered files, real nginx
and PHP-FPM) and its rendered woocommerce-dr-rotation script, as root, in a network namespace of the
test's own with the NodeBalancers' network (192.168.255.0/24) on its loopback. The NodeBalancer's TCP
check is a connect from that network: it must be refused within checkInterval x checkAttempts of
PHP-FPM dying, and accepted again once PHP-FPM is back. There is no database in the namespace at all,
so every check also shows a database outage does not take a node out of rotation."""

import socket
import time

import pytest

from tests.support.rotation_node import NODEBALANCER, leave_bound_seconds, rotation_node
from tests.support.waiting import wait_until
from tests.support.web_stack import PRIMARY_REGION, rendered_files

pytestmark = pytest.mark.integration


@pytest.fixture
def node(web_stack_run, mariadb_ca, tmp_path):
    files = rendered_files(web_stack_run, f"{PRIMARY_REGION}-web-0")
    with rotation_node(files, mariadb_ca.ca, tmp_path / "agent.log") as node:
        yield node


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


def test_a_node_whose_php_fpm_hangs_leaves_rotation_and_rejoins_when_it_answers_again(node):
    node.hang_php_fpm()
    try:
        wait_until(node.out_of_rotation, leave_bound_seconds(), f"the node leaving ({node.agent_log()})")
    finally:
        node.resume_php_fpm()
    wait_until(node.in_rotation, leave_bound_seconds(), f"the node rejoining ({node.agent_log()})")


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
