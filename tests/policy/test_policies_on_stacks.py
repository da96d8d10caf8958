"""The real program passes its own policy pack: every policy, on every resource that both stack
files (and a 3-region variant) create, applied and previewed, reports nothing. And each policy
really met the resources it guards, so "nothing reported" is not an empty check."""

import pytest

from tests.support.policy_pack import checked_types, pack, run_violations

RUNS = ["prod_run", "dr_test_run", "three_region_run", "prod_preview_run", "dr_test_preview_run"]


@pytest.mark.parametrize("run_name", RUNS)
def test_the_stack_passes_every_policy(run_name, request):
    assert run_violations(request.getfixturevalue(run_name)) == []


def test_every_policy_checks_real_resources_of_the_stacks(prod_run, dr_test_run, three_region_run):
    created = checked_types(prod_run) | checked_types(dr_test_run) | checked_types(three_region_run)
    unchecked = sorted(name for name, types in pack.RESOURCE_TYPES.items() if not types & created)
    assert unchecked == [], f"policies that met no resource of their types: {unchecked}"


def test_both_stacks_create_every_resource_type_the_tag_policy_guards(prod_run, dr_test_run):
    for run in (prod_run, dr_test_run):
        tagged_types = set(pack.TAGGED) & checked_types(run)
        assert tagged_types == set(pack.TAGGED), f"{run.stack.stack} creates only {sorted(tagged_types)}"
