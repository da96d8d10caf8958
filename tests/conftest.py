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


@pytest.fixture(scope="session")
def wired_prod():
    """prod's database tier next to stand-in web nodes with computed addresses
    (tests/programs/database)."""
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


# Real MariaDB servers for the replication tests (and later drctl tests): see tests/mariadb.py.
from tests.mariadb import (  # noqa: E402, F401
    mariadb_ca,
    mariadb_cluster,
    mariadb_pair,
    mariadb_server,
    mariadb_template,
    mariadb_trio,
    primary_and_read_only_replica,
)


@pytest.fixture
def cloud():
    """Local fakes of the Cloudflare and Linode APIs for the runbook's regions (tests/runbook_support.py)."""
    from tests.runbook_support import REGIONS, Cloud

    with Cloud(REGIONS) as c:
        yield c
