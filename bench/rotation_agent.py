"""Benchmark: how long a web node that cannot serve takes to leave the NodeBalancer's rotation, and
to rejoin once it can, with the real rotation agent (components/templates/web-node/woocommerce-dr-rotation).

Each round runs a web node's rendered files through real nginx + PHP-FPM (tests/support/web_stack.py)
with its agent, in a network namespace of its own (as root), and times, from the failure, the
moment the NodeBalancer's TCP check (a connect from 192.168.255.0/24) is refused on both ports, and,
from the repair, the moment it is accepted again. Two failures: PHP-FPM killed (SIGKILL, master and
workers: nginx answers 502 at once) and PHP-FPM hung (SIGSTOP: requests wait until the agent's
probe times out). The NodeBalancer's own part comes on top: at most checkInterval x checkAttempts
after the refusal, or the first live request with passive checks (docs/node-rotation.md).

Run (as root): ./venv/bin/python bench/rotation_agent.py [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components import web_node
from components.firewall_rules import NODEBALANCER_NETWORK
from drctl.local.mariadb import LocalCA
from tests.support import harness
from tests.support.rotation_node import RotationNode, leave_bound_seconds, rotation_node
from tests.support.web_stack import PRIMARY_REGION, STACK, rendered_files


def until(predicate, deadline_seconds: float) -> float:
    """Seconds until `predicate()` holds, polled every 10 ms; raises past the deadline."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > deadline_seconds:
            raise TimeoutError(f"not within {deadline_seconds} s")
        time.sleep(0.01)
    return time.monotonic() - start


def crash_round(node: RotationNode, bound: float) -> tuple[float, float]:
    node.crash_php_fpm()
    left = until(node.out_of_rotation, bound)
    started = time.monotonic()
    node.restart_php_fpm()  # PHP-FPM's own start counts: it is part of coming back
    until(node.in_rotation, bound)
    return left, time.monotonic() - started


def hang_round(node: RotationNode, bound: float) -> tuple[float, float]:
    node.hang_php_fpm()
    try:
        left = until(node.out_of_rotation, bound)
    finally:
        node.resume_php_fpm()
    return left, until(node.in_rotation, bound)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds per failure kind (default 5)")
    rounds = parser.parse_args().rounds
    bound = leave_bound_seconds()
    files = rendered_files(harness.run_ok(STACK), f"{PRIMARY_REGION}-web-0")
    agent = web_node.Rotation(ports=(443, 80), source=NODEBALANCER_NETWORK)
    results: dict[str, list[tuple[float, float]]] = {"PHP-FPM killed": [], "PHP-FPM hung": []}
    with tempfile.TemporaryDirectory() as scratch:
        ca = LocalCA.create(Path(scratch) / "ca")
        with rotation_node(files, str(ca.ca), Path(scratch) / "agent.log") as node:
            for _ in range(rounds):
                results["PHP-FPM killed"].append(crash_round(node, bound))
                results["PHP-FPM hung"].append(hang_round(node, bound))
    print(f"Rotation agent: probe every {agent.probe_interval} s, timeout {agent.probe_timeout} s, "
          f"out after {agent.fall} failures, in after {agent.rise} answers; {rounds} rounds each")
    print(f"NodeBalancer bound (dr-test stack): checkInterval x checkAttempts = {bound} s, on top of 'left'\n")
    print(f"{'failure':<16}{'left p50':>10}{'left max':>10}{'rejoined p50':>14}{'rejoined max':>14}")
    for kind, rows in results.items():
        left, back = [r[0] for r in rows], [r[1] for r in rows]
        print(f"{kind:<16}{statistics.median(left):>9.1f}s{max(left):>9.1f}s"
              f"{statistics.median(back):>13.1f}s{max(back):>13.1f}s")
    print("\n'left': from the failure to the NodeBalancer network's connects being refused on 443 and 80;"
          "\n'rejoined': from the repair (PHP-FPM started or resumed) to them being accepted again.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
