"""The mock-engine harness itself: stack files load as the CLI would pass them, computed values and
secrets are represented faithfully, and naming bugs are not hidden."""

from drctl.plan.engine import UNKNOWN, Secret, contains_secret
from drctl.stack.files import REPO_ROOT, load_stack_file, project_name
from tests.support import harness

PROGRAMS = REPO_ROOT / "tests" / "program" / "programs"


def test_project_name_comes_from_pulumi_yaml():
    assert project_name() == "woocommerce-dr"


def test_structured_values_are_json_and_secure_values_are_secret_placeholders():
    stack = load_stack_file("prod")
    assert stack.config["woocommerce-dr:regions"].startswith('[{"region": "us-east"')
    assert stack.config["woocommerce-dr:domain"] == "shop.example.com"
    assert set(stack.secret_keys) == {"linode:token", "cloudflare:apiToken"}
    assert "v1:placeholder" not in stack.config["linode:token"]


def test_duplicate_urns_fail_the_run():
    result = harness.run("prod", program=PROGRAMS / "duplicate" / "__main__.py")
    assert "two resources share the URN" in result.error
    assert "RandomPassword::same" in result.error


def test_apply_mode_fills_computed_values_so_wiring_can_be_proved():
    result = harness.run_ok("prod", program=PROGRAMS / "wiring" / "__main__.py")
    web = result.one("linode:index/instance:Instance", "demo-web")
    node = result.one("linode:index/nodeBalancerNode:NodeBalancerNode", "demo-node")
    assert node.inputs["address"] == f"{web.outputs['privateIpAddress']}:443"
    assert web.outputs["privateIpAddress"].startswith("192.168.")
    assert result.outputs["ip"] == result.one("linode:index/nodeBalancer:NodeBalancer", "demo-nb").outputs["ipv4"]


def test_preview_mode_leaves_computed_values_unknown():
    result = harness.run_ok("prod", preview=True, program=PROGRAMS / "wiring" / "__main__.py")
    node = result.one("linode:index/nodeBalancerNode:NodeBalancerNode", "demo-node")
    assert node.inputs["address"] == UNKNOWN
    assert result.outputs["ip"] == UNKNOWN


def test_secrets_stay_marked():
    result = harness.run_ok("prod", program=PROGRAMS / "wiring" / "__main__.py")
    web = result.one("linode:index/instance:Instance", "demo-web")
    assert isinstance(web.inputs["rootPass"], Secret)
    password = result.one("random:index/randomPassword:RandomPassword", "demo-root")
    assert isinstance(password.outputs["result"], Secret)
    assert isinstance(result.outputs["password"], Secret) and contains_secret(result.outputs)


def test_children_are_parented_to_their_component():
    result = harness.run_ok("prod", program=PROGRAMS / "wiring" / "__main__.py")
    pair = result.one("woocommerce-dr:index:Pair", "demo")
    assert {r.name for r in result.children(pair.urn)} == {"demo-root", "demo-web", "demo-nb", "demo-node"}


def test_missing_capability_is_reported_by_the_region_invoke():
    from drctl.plan.cloud import OfflineCloud

    cloud = OfflineCloud(preview=False, region_capabilities={"eu-west": ("Linodes",)})

    class Args:
        token = "linode:index/getRegion:getRegion"
        args = {"id": "eu-west"}

    assert cloud.call(Args())["capabilities"] == ["Linodes"]


def test_provider_declared_secret_outputs_print_as_secret_even_before_they_are_known():
    result = harness.run_ok("prod", preview=True, program=PROGRAMS / "wiring" / "__main__.py")
    password = result.one("random:index/randomPassword:RandomPassword", "demo-root")
    assert isinstance(password.outputs["result"], Secret)


def test_a_run_that_fails_midway_does_not_break_the_next_run():
    failing = harness.run("prod", program=PROGRAMS / "fails_midway" / "__main__.py")
    assert failing.error == "the program gave up after creating one resource"
    assert harness.run_ok("prod", program=PROGRAMS / "wiring" / "__main__.py").outputs["ip"].startswith("45.79.")


def _open_event_loops():
    import asyncio
    import gc

    gc.collect()
    return {id(o) for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop) and not o.is_closed()}


def test_a_run_leaves_no_event_loop_open():
    # An open loop left behind is finalized at interpreter exit, after its sockets, and prints a traceback.
    before = _open_event_loops()
    harness.run_ok("dr-test")
    assert _open_event_loops() - before == set()
