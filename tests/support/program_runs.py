"""Fixtures: the stack files applied under the mock engine, once per session (tests/support/harness.py)."""

import pytest

from tests.support import harness


@pytest.fixture(scope="session")
def prod_run():
    """The prod stack, applied under the mock engine (computed values filled in)."""
    return harness.run_ok("prod")


@pytest.fixture(scope="session")
def dr_test_run():
    return harness.run_ok("dr-test")


@pytest.fixture(scope="session")
def three_region_run():
    return harness.run_ok(harness.three_regions())


@pytest.fixture(scope="session")
def wired_prod():
    """prod's database tier next to stand-in web nodes with computed addresses
    (tests/program/programs/database)."""
    return harness.run_ok("prod", program=harness.PROGRAMS / "database" / "__main__.py")


@pytest.fixture(scope="session")
def wired_dr_test():
    return harness.run_ok("dr-test", program=harness.PROGRAMS / "database" / "__main__.py")


@pytest.fixture(scope="session")
def prod_preview_run():
    """The prod stack as `pulumi preview` sees it: computed values unknown."""
    return harness.run_ok("prod", preview=True)


@pytest.fixture(scope="session")
def dr_test_preview_run():
    return harness.run_ok("dr-test", preview=True)
