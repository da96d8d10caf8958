"""The RPO gate's loss window: from the newest data the surviving servers hold to the last time the
old primary was seen alive and taking writes (`--primary-last-seen`, drctl guard's last good
probe), not to the moment promote runs. Real MariaDB servers for the estimate; the window and the
flag's parsing as pure functions."""

from __future__ import annotations

import argparse
import contextlib
import time

import pytest

from drctl.mysql import replication as r
from drctl.runbook.context import Refused
from drctl.runbook.promote import PromoteOptions, loss_window, promote
from drctl.stack.command_line import iso_time, past_time
from tests.support.runbook_support import Shop, app_insert, order_ids, wait_caught_up
from tests.support.waiting import wait_until


def heartbeat_age(server) -> float:
    with contextlib.closing(server.connect()) as conn:
        return r.heartbeat_lag(conn) or 0.0


def write_heartbeat(server) -> None:
    with contextlib.closing(server.connect()) as conn, conn.cursor() as cur:
        cur.execute(r.HEARTBEAT_WRITE)


def stop_receiving(server) -> None:
    with contextlib.closing(server.connect()) as conn:
        r.stop_io_thread(conn, r.Dialect.MARIADB)


# --- the window, pure ---------------------------------------------------------------------------


def test_the_window_runs_from_the_newest_data_to_the_last_sighting():
    assert loss_window(100.0, 103.5, now=500.0) == 3.5
    assert loss_window(100.0, 90.0, now=500.0) == 0.0  # seen before its newest data arrived: nothing after it


def test_without_a_sighting_the_window_runs_to_now_as_before():
    assert loss_window(100.0, None, now=500.0) == 400.0


def test_a_sighting_after_now_counts_as_now():
    assert loss_window(100.0, 900.0, now=500.0) == 400.0


def test_primary_last_seen_reads_iso_times_with_a_zone_only():
    assert past_time("2026-11-29T14:03:00Z", now=lambda: 2e9) == 1795960980.0
    assert past_time("2026-11-29T15:03:00+01:00", now=lambda: 2e9) == 1795960980.0
    assert iso_time(1795960980.0) == "2026-11-29T14:03:00Z"
    for bad, why in (("2026-11-29T14:03:00", "no time zone"), ("yesterday", "not a time"),
                     ("2026-11-29T14:03:00Z", "in the future")):
        with pytest.raises(argparse.ArgumentTypeError, match=why):
            past_time(bad, now=lambda: 1795960980.0 - 60)


# --- on real servers ------------------------------------------------------------------------------


@pytest.mark.integration
def test_a_primary_dead_long_ago_is_within_the_rpo_when_it_was_last_seen_with_its_newest_data(
        mariadb_pair, tmp_path, cloud):
    shop = Shop.build(list(mariadb_pair), tmp_path, cloud.linode, rpo_seconds=3)
    primary, replica = shop["us-east"], shop["eu-west"]
    for i in range(1, 6):
        app_insert(primary, i)
    write_heartbeat(primary)
    wait_caught_up(primary, replica)
    seen = time.time()  # the primary answered and took writes, and the replica had all of it
    primary.kill()
    wait_until(lambda: heartbeat_age(replica) > 7, timeout=30, what="the surviving data to age past 2 x the RPO")
    rb = shop.runbook(cloud.load_balancer())

    without = promote(rb, PromoteOptions(region="eu-west", dry_run=True)).loss
    assert without["exceedsRpo"] and without["lossWindowSeconds"] > 7  # measured to now, as before
    assert without["primaryLastSeen"] is None and "counts as now" in without["summary"]

    result = promote(rb, PromoteOptions(region="eu-west", yes=True, primary_last_seen=seen))
    assert result.outcome == "done", result.message
    loss = result.loss
    assert loss["dataAgeSeconds"] > 7 and loss["lossWindowSeconds"] <= 3 and not loss["exceedsRpo"]
    assert loss["primaryLastSeen"] == iso_time(seen) and loss["primaryLastSeenBy"] == "given by --primary-last-seen"
    assert (f"older than the last time the old primary was seen alive (at {iso_time(seen)}, given by "
            "--primary-last-seen)") in loss["summary"]
    assert order_ids(replica) == {1, 2, 3, 4, 5}


@pytest.mark.integration
def test_a_replica_cut_off_before_the_last_sighting_exceeds_the_rpo(mariadb_pair, tmp_path, cloud):
    shop = Shop.build(list(mariadb_pair), tmp_path, cloud.linode, rpo_seconds=2)
    primary, replica = shop["us-east"], shop["eu-west"]
    stop_receiving(replica)  # the link breaks...
    app_insert(primary, 1)  # ...while the primary keeps taking orders
    wait_until(lambda: heartbeat_age(replica) > 4, timeout=30, what="the cut-off replica to fall behind")
    seen = time.time()  # the primary still answers and takes writes
    primary.kill()
    rb = shop.runbook(cloud.load_balancer())
    with pytest.raises(Refused) as refused:
        promote(rb, PromoteOptions(region="eu-west", yes=True, primary_last_seen=seen))
    assert "beyond the recovery point objective" in str(refused.value)
    assert "seen alive (at" in str(refused.value)
    loss = promote(rb, PromoteOptions(region="eu-west", dry_run=True, primary_last_seen=seen)).loss
    assert loss["exceedsRpo"] and loss["lossWindowSeconds"] > 4
    assert 1 not in order_ids(replica)


def test_the_flag_reaches_the_promote_options():
    from drctl import cli

    args = cli.build_parser().parse_args(["promote", "--outputs", "x.json", "--region", "eu-west", "--dry-run",
                                          "--primary-last-seen", "2026-11-29T15:03:00+01:00"])
    opts = PromoteOptions.from_args(args)
    assert (opts.primary_last_seen, opts.primary_last_seen_by) == (1795960980.0, "given by --primary-last-seen")
    without = PromoteOptions.from_args(cli.build_parser().parse_args(
        ["promote", "--outputs", "x.json", "--region", "eu-west", "--dry-run"]))
    assert without.primary_last_seen is None
