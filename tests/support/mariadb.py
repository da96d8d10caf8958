"""Throwaway MariaDB 10.11 servers on loopback ports, for tests that need real replication.

    def test_something(mariadb_pair):
        primary, replica = mariadb_pair
        with primary.connect() as conn: ...

The servers are drctl's own (drctl/local/mariadb.py, which `drctl rehearse` runs too): TLS with a
certificate for 127.0.0.1 signed by a per-session CA (`TestCA`), GTID binary logs, `root` through
the socket, `create_user` for TCP accounts, `start()` / `stop()` / `kill()`, and `replicate()`
with the project's replication code. What this module adds is pytest: a missing binary skips the
test (fails it when `CI` is set, tests/support/binaries.py), and fixtures stop every server and remove
every file, also when a test fails.

Fixtures: `mariadb_ca` and `mariadb_template` (session: the test CA, one installed data directory
that every server copies), `mariadb_server`, `mariadb_pair`, `mariadb_trio` (fresh servers, server
ids 1, 2, 3; nothing replicates until a test sets it up, e.g. with `replicate()`), and
`mariadb_cluster` for servers with custom options (`cluster.add(extra_args=("--read-only",))`).

When a test using them fails, the report carries each server's error-log tail (section "mariadb
error logs"): the logs are removed with the servers, and a failure that happens once under load
(a server that crashed, shut down or dropped a connection) is explained there or nowhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from drctl.local import mariadb as local_mariadb
from drctl.local.mariadb import HOST, install_datadir, replicate
from tests.support.binaries import need

__all__ = ["HOST", "MariaDBCluster", "MariaDBServer", "TestCA", "cluster", "install_datadir",
           "replicate"]


# The servers each test's fixtures started, for the failure report.
_SERVERS = pytest.StashKey[list]()


def _track(request: pytest.FixtureRequest, servers) -> None:
    request.node.stash.setdefault(_SERVERS, []).append(servers)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    tails = [f"--- {server!r} ({'running' if server.running else 'not running'}) {server.error_log}\n"
             f"{server.log_tail(40)}"
             for group in item.stash.get(_SERVERS, []) for server in group]
    if tails:
        report.sections.append(("mariadb error logs", "\n".join(tails)))


class TestCA(local_mariadb.LocalCA):
    """A CA and one server certificate for 127.0.0.1 (and 'localhost'), made with openssl."""

    __test__ = False  # not a pytest test class
    find_binaries = staticmethod(need)


class MariaDBServer(local_mariadb.MariaDBServer):
    find_binaries = staticmethod(need)


class MariaDBCluster(local_mariadb.MariaDBCluster):
    server_class = MariaDBServer


def cluster(tls: TestCA, count: int, template: Path | None = None):
    """Context manager: `count` started servers, stopped and removed on exit."""
    return local_mariadb.cluster(tls, count, template, group_class=MariaDBCluster)


@pytest.fixture(scope="session")
def mariadb_ca(tmp_path_factory) -> TestCA:
    need("mariadbd", "mariadb-install-db", "openssl")
    return TestCA.create(tmp_path_factory.mktemp("mariadb-ca"))


@pytest.fixture(scope="session")
def mariadb_template(tmp_path_factory) -> Path:
    """One freshly installed data directory per session; every server starts from a copy."""
    return local_mariadb.make_template(tmp_path_factory.mktemp("mariadb-template"), find_binaries=need)


@pytest.fixture
def mariadb_cluster(request, mariadb_ca, mariadb_template) -> Iterator[MariaDBCluster]:
    """An empty cluster: `add(server_id=..., extra_args=(...))` starts servers with custom options."""
    group = MariaDBCluster(mariadb_ca, mariadb_template)
    _track(request, group.servers)
    try:
        yield group
    finally:
        group.close()


@pytest.fixture
def mariadb_server(request, mariadb_ca, mariadb_template) -> Iterator[MariaDBServer]:
    with cluster(mariadb_ca, 1, mariadb_template) as servers:
        _track(request, servers)
        yield servers[0]


@pytest.fixture
def mariadb_pair(request, mariadb_ca, mariadb_template) -> Iterator[tuple[MariaDBServer, MariaDBServer]]:
    """(primary, replica): server ids 1 and 2, not yet replicating."""
    with cluster(mariadb_ca, 2, mariadb_template) as servers:
        _track(request, servers)
        primary, replica = servers
        yield primary, replica


@pytest.fixture
def mariadb_trio(request, mariadb_ca, mariadb_template) -> Iterator[tuple[MariaDBServer, MariaDBServer, MariaDBServer]]:
    with cluster(mariadb_ca, 3, mariadb_template) as servers:
        _track(request, servers)
        a, b, c = servers
        yield a, b, c


@pytest.fixture
def primary_and_read_only_replica(mariadb_cluster) -> tuple[MariaDBServer, MariaDBServer]:
    """Two servers, the second started read-only as a replica's my.cnf has it; nothing replicates
    until a test runs the replica's bootstrap (drctl.mysql.bootstrap)."""
    return mariadb_cluster.add(), mariadb_cluster.add(extra_args=("--read-only",))
