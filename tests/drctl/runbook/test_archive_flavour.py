"""`drctl status` and the archive's server family, without servers: the family shown, and an archive
of the other family than the stack's database counted in the verdict. (The MariaDB archive of a real
MariaDB shop is in test_archive_status.py.)"""

from __future__ import annotations

import pytest

from drctl.cloud.archive_status import archive_problems
from drctl.mysql.dialect import Dialect
from drctl.mysql.topology import DbServer, ServerState, Topology
from drctl.runbook.status import _archive_lines, database_family
from drctl.stack.outputs import BackupsOut

BACKUPS = BackupsOut(region="eu-west", storage_region="eu-west", bucket="wcdr-binlogs", endpoint="e", access_key="a",
                     secret_key="s", archive_key="k", backup_rpo_seconds=300, base_every_hours=24, retention_days=14)


def archive(flavour: str | None) -> dict:
    return {"bucket": "wcdr-binlogs", "flavour": flavour, "lastTransactionTime": 100.0, "lagSeconds": 2.0,
            "updatedAt": 100.0, "streamingFrom": "db", "gap": None,
            "lastBase": {"stamp": "20261129T000000Z", "takenAt": 0.0, "gtidPos": "x", "ageSeconds": 3600.0}}


def test_a_mariadb_archive_of_a_mysql_stack_is_a_problem():
    (problem,) = archive_problems(archive("mariadb"), BACKUPS, "mysql")
    assert problem.startswith("binlog archive in wcdr-binlogs holds a mariadb binlog but the stack's database is "
                              "mysql: it is not this stack's archive (backups.bucket)")


@pytest.mark.parametrize(("held", "database"), [("mysql", "mysql"), ("mariadb", "mariadb"), ("mysql", None),
                                                (None, "mysql")])
def test_the_same_family_or_one_unknown_is_no_problem(held, database):
    assert archive_problems(archive(held), BACKUPS, database) == []


def test_status_shows_the_archives_family():
    assert _archive_lines(archive("mysql"))[1].startswith("binlog archive (wcdr-binlogs): MySQL 8 binlog, lag 2.0s")
    assert _archive_lines(archive("mariadb"))[1].startswith("binlog archive (wcdr-binlogs): MariaDB binlog, lag")
    assert _archive_lines(archive(None))[1].startswith("binlog archive (wcdr-binlogs): lag")


def state(region: str, dialect: Dialect | None, error: str | None = None) -> ServerState:
    server = DbServer(region, "primary", "192.0.2.1", 3306, None, f"db.{region}.example", "drctl", None, None)
    return ServerState(server, error=error, dialect=dialect)


def test_the_stacks_family_is_what_its_servers_answer():
    assert Dialect.MYSQL_84.family == "mysql" and Dialect.MYSQL_80.family == "mysql"
    assert Dialect.MARIADB.family == "mariadb"
    down = state("us-east", None, error="connection refused")
    assert database_family(Topology({"us-east": down, "eu-west": state("eu-west", Dialect.MYSQL_84)})) == "mysql"
    assert database_family(Topology({"us-east": state("us-east", Dialect.MARIADB)})) == "mariadb"
    assert database_family(Topology({"us-east": down})) is None
