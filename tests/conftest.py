import pytest

from tests import harness


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


# Real MariaDB servers for the replication tests (and later drctl tests): see tests/mariadb.py.
from tests.mariadb import (  # noqa: E402, F401
    mariadb_ca,
    mariadb_cluster,
    mariadb_pair,
    mariadb_server,
    mariadb_template,
    mariadb_trio,
)
