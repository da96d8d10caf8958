"""`drctl rehearse --automatic`: real MariaDB, HAProxy and shop processes, two guards, nobody
calling promote. The primary region dies: exactly one guard promotes and the front door takes orders
again. One guard is cut off from the primary: nothing is promoted. Timings are reported by the
rehearsal, never asserted here."""

from __future__ import annotations

import pytest

from drctl import cli
from drctl.rehearsal import automatic
from drctl.rehearsal.topology import RehearsalSpec
from tests.support.binaries import need

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def spec():
    need("mariadbd", "mariadb-install-db", "mariadb", "mariadb-dump", "haproxy", "openssl")
    return RehearsalSpec.from_stack("dr-test")


def test_the_primary_region_dies_and_one_guard_promotes_without_anyone_calling_promote(spec):
    said: list[str] = []
    result = automatic.region_down(spec, say=said.append)
    assert result.promoted and result.passed, result.verdict
    assert result.promoted_by in automatic.GUARDS
    assert result.guard_verdicts[result.promoted_by] in ("promote", "promoted")
    assert "1 promotion(s) started" in result.verdict  # the other guard stood by (the lease)
    phases = {name.split()[0]: at for name, at in result.phases.items()}
    assert set(phases) == {"detect", "confirm", "promote", "traffic", "front"}
    assert phases["detect"] < phases["confirm"] < phases["promote"] <= phases["traffic"]
    # The DR region takes no order before the promotion starts (its database is a read-only replica);
    # it may before the traffic step ends: Cloudflare's stand-in fails over to its pool by itself.
    assert phases["front"] > phases["confirm"]


def test_a_guard_cut_off_from_the_primary_promotes_nothing(spec):
    result = automatic.partition(spec, say=lambda _: None)
    assert not result.promoted and result.passed, result.verdict
    assert result.guard_verdicts["g1"] == "disagree"
    assert result.guard_verdicts["g2"] == "healthy"


def test_automatic_is_its_own_mode_on_the_command_line(capsys):
    with pytest.raises(SystemExit):
        cli.main(["rehearse", "--automatic", "--unplanned"])
    assert "argument --unplanned: not allowed with argument --automatic" in capsys.readouterr().err
