"""The web tier composed by tests/program/programs/web_tier (each region's database endpoint made in the test
program), run once per variant under the mock engine and shared by the web-tier tests."""

from __future__ import annotations

from functools import cache

from drctl.plan.engine import ProgramRun, Registration, unwrap
from drctl.stack.files import REPO_ROOT
from tests.support import harness

PROGRAM = REPO_ROOT / "tests" / "program" / "programs" / "web_tier" / "__main__.py"

INSTANCE = "linode:index/instance:Instance"
NODEBALANCER = "linode:index/nodeBalancer:NodeBalancer"
NB_CONFIG = "linode:index/nodeBalancerConfig:NodeBalancerConfig"
NB_NODE = "linode:index/nodeBalancerNode:NodeBalancerNode"
FIREWALL = "linode:index/firewall:Firewall"
COMPONENT = "woocommerce-dr:index:RegionalWebTier"

VARIANTS = {
    "prod": lambda: harness.stack_file("prod"),
    "dr-test": lambda: harness.stack_file("dr-test"),
    "three-regions": harness.three_regions,
}


@cache
def web_run(variant: str) -> ProgramRun:
    return harness.run_ok(VARIANTS[variant](), program=PROGRAM)


def run_with(stack: str = "prod", preview: bool = False, **changes) -> ProgramRun:
    return harness.run_ok(harness.stack_file(stack, **changes), preview=preview, program=PROGRAM)


def in_region(run: ProgramRun, type_token: str, region: str) -> list[Registration]:
    component = run.one(COMPONENT, region)
    return [r for r in run.children(component.urn) if r.type == type_token]


def user_data(instance: Registration) -> str:
    """The base64 user data a provider would receive."""
    return unwrap(instance.inputs["metadatas"][0]["userData"])
