"""/healthz's decision table (docs/health.md), case by case: healthz-verdict.php run by real php-cli
over recorded SHOW REPLICA STATUS rows of MySQL 8 and MariaDB (tests/drctl/mysql/fixtures)."""

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.binaries import require
from tests.support.php_healthz_support import TEMPLATES

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "drctl" / "mysql" / "fixtures" / "replica_status"
RPO = 15


def recorded(name: str, **changes) -> dict:
    return {**json.loads((FIXTURES / f"{name}.json").read_text())["row"], **changes}


MYSQL = recorded("mysql-8.0-replicating")  # IO and SQL threads running, 2 s behind
MARIADB = recorded("mariadb-10.11-replicating")
MYSQL_SOURCE_GONE = recorded("mysql-8.4-io-error")  # IO thread `Connecting`, relay log applied


def facts(read_only=True, status=None, state=None, lag=None):
    return {"read_only": read_only, "replica_status": status, "replica_state": state, "lag_seconds": lag,
            "rpo_seconds": RPO}


# (case, facts, expected [healthy, reason]): the rows of docs/health.md's table.
TABLE = [
    ("writable database: a primary region", facts(read_only=False), [True, "primary-writable"]),
    ("writable with replication stopped but configured: a promoted replica is a primary",
     facts(read_only=False, status=recorded("mysql-8.0-replicating", Replica_SQL_Running="No")),
     [True, "primary-writable"]),
    ("read-only and replicating from nothing: a fenced primary", facts(), [False, "read-only"]),
    ("replication status not readable by the shop account", facts(status=False),
     [False, "replica-status-unreadable"]),
    ("replica whose bootstrap refused", facts(state="refused"), [False, "replica-setup-refused"]),
    ("replica still seeding", facts(state="seeding", status=MARIADB, lag=1), [False, "replica-setup-seeding"]),
    ("MySQL 8 replica within the RPO", facts(status=MYSQL, lag=2.5, state="replicating"), [True, "replica-current"]),
    ("MariaDB replica within the RPO", facts(status=MARIADB, lag=0.4), [True, "replica-current"]),
    ("lag exactly the RPO", facts(status=MYSQL, lag=RPO), [True, "replica-current"]),
    ("lag over the RPO while the source answers", facts(status=MYSQL, lag=RPO + 0.5),
     [False, "replica-lag-over-rpo"]),
    ("no heartbeat: the server's own Seconds_Behind_Source", facts(status=MYSQL), [True, "replica-current"]),
    ("no heartbeat and no Seconds_Behind", facts(status=recorded("mysql-8.0-replicating", Seconds_Behind_Source=None)),
     [False, "replica-lag-unknown"]),
    ("SQL thread stopped (MySQL)", facts(status=recorded("mysql-8.0-replicating", Replica_SQL_Running="No"), lag=1),
     [False, "replica-sql-stopped"]),
    ("SQL thread stopped on an error (MariaDB)", facts(status=recorded("mariadb-10.11-sql-error"), lag=1),
     [False, "replica-sql-stopped"]),
    ("SQL thread running with an error recorded", facts(status=recorded("mariadb-10.11-replicating", Last_SQL_Errno=1062)),
     [False, "replica-sql-error"]),
    ("source gone, everything received applied: healthy however old the heartbeat",
     facts(status=MYSQL_SOURCE_GONE, lag=6 * 3600), [True, "replica-source-gone-all-applied"]),
    ("source gone (MariaDB IO thread stopped), everything applied",
     facts(status=recorded("mariadb-10.11-replicating", Slave_IO_Running="Connecting"), lag=600),
     [True, "replica-source-gone-all-applied"]),
    ("source gone, relay log still being applied",
     facts(status=recorded("mysql-8.4-io-error", Read_Source_Log_Pos=9000), lag=1),
     [False, "replica-source-gone-applying"]),
    ("source gone, SQL thread stopped", facts(status=recorded("mysql-8.4-io-error", Replica_SQL_Running="No")),
     [False, "replica-sql-stopped"]),
]

VERDICTS = """<?php
require $argv[1];
$out = [];
foreach (json_decode(stream_get_contents(STDIN), true) as $facts) {
    $out[] = woocommerce_dr_health_verdict($facts);
}
echo json_encode($out);
"""


@pytest.fixture(scope="module")
def verdicts() -> dict[str, list]:
    """Every case's verdict from one php-cli run over the shipped healthz-verdict.php."""
    result = subprocess.run(
        [require("php"), "-r", VERDICTS.removeprefix("<?php\n"), str(TEMPLATES / "healthz-verdict.php")],
        input=json.dumps([case[1] for case in TABLE]), capture_output=True, text=True, check=True)
    return dict(zip([case[0] for case in TABLE], json.loads(result.stdout), strict=True))


@pytest.mark.parametrize(("case", "expected"), [(c, e) for c, _, e in TABLE], ids=[c for c, _, _ in TABLE])
def test_decision_table(verdicts, case, expected):
    assert verdicts[case] == expected


PREFIX = """<?php
require $argv[1];
echo json_encode(['cut' => woocommerce_dr_utf8_prefix(stream_get_contents(STDIN), (int) $argv[2])]);
"""


@pytest.mark.parametrize(("text", "limit", "expected"), [
    ("a" * 499 + "é" + "z", 500, "a" * 499),  # é's two bytes straddle the cut
    ("a" * 498 + "é" + "z", 500, "a" * 498 + "é"),  # é ends exactly at the cut
    ("a" * 498 + "€", 500, "a" * 498),  # three bytes, two fit
    ("a" * 497 + "😀", 500, "a" * 497),  # four bytes, three fit
    ("a" * 496 + "😀" + "z", 500, "a" * 496 + "😀"),
    ("short", 500, "short"),
])
def test_a_problem_is_cut_on_a_character_boundary_and_stays_valid_json(text, limit, expected):
    result = subprocess.run(
        [require("php"), "-r", PREFIX.removeprefix("<?php\n"), str(TEMPLATES / "healthz-verdict.php"), str(limit)],
        input=text, capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == {"cut": expected}
    assert len(expected.encode()) <= limit
