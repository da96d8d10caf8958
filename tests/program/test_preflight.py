"""Region capabilities are checked before anything is created."""

from tests.support import harness


def test_regions_with_every_capability_pass(prod_run):
    assert prod_run.error is None


def test_a_region_lacking_a_capability_fails_with_one_line_before_any_resource():
    result = harness.run("prod", region_capabilities={"eu-west": ("Linodes", "NodeBalancers", "Cloud Firewall")})
    assert result.error.splitlines() == [
        "the configured regions cannot host this stack:",
        "woocommerce-dr:regions: region 'eu-west' lacks Metadata (got capabilities: Cloud Firewall, Linodes, "
        "NodeBalancers; allowed: a region offering Linodes, NodeBalancers, Cloud Firewall, Metadata)",
    ]
    assert result.resources == []


def test_managed_mode_needs_managed_databases_in_the_primary_region():
    caps = ("Linodes", "NodeBalancers", "Cloud Firewall", "Metadata")
    result = harness.run("prod", region_capabilities={"us-east": caps})
    assert "region 'us-east' lacks Managed Databases" in result.error


def test_self_managed_mode_does_not_need_managed_databases():
    caps = ("Linodes", "NodeBalancers", "Cloud Firewall", "Metadata")
    result = harness.run("dr-test", region_capabilities={"us-east": caps})
    assert result.error is None


def test_a_guard_region_needs_metadata_but_no_nodebalancers():
    result = harness.run("dr-test", region_capabilities={"eu-central": ("Linodes", "Cloud Firewall")})
    assert result.error.splitlines() == [
        "the configured regions cannot host this stack:",
        "woocommerce-dr:automation.guards: region 'eu-central' lacks Metadata (got capabilities: Cloud Firewall, "
        "Linodes; allowed: a region offering Linodes, Cloud Firewall, Metadata)",
    ]
    assert result.resources == []
    assert harness.run("dr-test", region_capabilities={"eu-central": ("Linodes", "Cloud Firewall", "Metadata")}).error is None
