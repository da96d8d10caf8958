"""The drill's synthetic customer: every order recorded, a read-only server never takes one, and
the writer's failure state is what the drill's stop conditions read."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest

from drctl.drill import orders
from drctl.drill.orders import DatabaseOrderSink, OrderRejected, OrderWriter
from drctl.mysql import replication


class ScriptedSink:
    """Acknowledges orders in `region` until `fail_from` (then rejects), or raises `crash`."""

    def __init__(self, region="us-east", fail_from=None, crash_at=None):
        self.region, self.fail_from, self.crash_at = region, fail_from, crash_at
        self.seen: list[int] = []
        self.lock = threading.Lock()

    def write(self, seq):
        with self.lock:
            self.seen.append(seq)
        if self.crash_at is not None and seq >= self.crash_at:
            raise RuntimeError("sink broke")
        if self.fail_from is not None and seq >= self.fail_from:
            raise OrderRejected("HTTP 503")
        return self.region, "web-1"

    def close(self):
        pass


def test_every_sequence_number_is_written_once_and_recorded():
    sink = ScriptedSink()
    with OrderWriter(sink, rate=None, threads=3) as writer:
        time.sleep(0.2)
    seqs = sorted(w.seq for w in writer.writes)
    assert seqs == list(range(1, len(seqs) + 1))
    assert sorted(sink.seen) == seqs
    assert all(w.ok and w.region == "us-east" and w.finished >= w.started for w in writer.writes)


def test_the_rate_limit_holds():
    with OrderWriter(ScriptedSink(), rate=50, threads=2) as writer:
        time.sleep(1.0)
    assert 35 <= len(writer.writes) <= 60


def test_failing_for_counts_from_the_last_acknowledged_order():
    with OrderWriter(ScriptedSink(fail_from=5), rate=100, threads=1) as writer:
        time.sleep(0.5)
        failing = writer.failing_for()
    last_ok = max(w.finished for w in writer.writes if w.ok)
    assert failing >= 0.3
    assert failing == pytest.approx(time.time() - last_ok, abs=0.2)
    assert next(w.error for w in writer.writes if not w.ok) == "HTTP 503"


def test_a_sink_that_raises_something_else_is_reported_as_a_crash():
    with OrderWriter(ScriptedSink(crash_at=3), rate=None, threads=1) as writer:
        time.sleep(0.1)
    assert isinstance(writer.crashed, RuntimeError)


@pytest.mark.integration
def test_a_replica_refuses_orders_even_from_an_account_that_may_bypass_read_only(mariadb_server):
    with contextlib.closing(mariadb_server.connect()) as conn:
        orders.create_schema(conn)
        replication.set_read_only(conn, replication.Dialect.MARIADB, True)
        # root holds MariaDB's READ ONLY ADMIN: read_only alone would let it write
        with pytest.raises(OrderRejected, match="read-only"):
            orders.insert_order(conn, 1, "eu-west")
        replication.set_read_only(conn, replication.Dialect.MARIADB, False)
        orders.insert_order(conn, 2, "eu-west")
        assert orders.orders_present(conn, {1, 2, 3}) == {2}


@pytest.mark.integration
def test_database_sink_writes_to_the_first_writable_region_in_failover_order(mariadb_pair):
    primary, dr = mariadb_pair
    targets = []
    for server, region in ((primary, "us-east"), (dr, "eu-west")):
        server.create_user("drill", "drill-pw")
        with contextlib.closing(server.connect()) as conn:
            orders.create_schema(conn)
        targets.append((region, lambda s=server: s.connect("drill", "drill-pw", timeout=1)))
    sink = DatabaseOrderSink(targets)
    assert sink.write(1)[0] == "us-east"
    primary.execute("SET GLOBAL read_only = ON")
    assert sink.write(2)[0] == "eu-west"
    dr.execute("SET GLOBAL read_only = ON")
    with pytest.raises(OrderRejected, match="us-east: database is read-only; eu-west: database is read-only"):
        sink.write(3)
    primary.kill()
    dr.execute("SET GLOBAL read_only = OFF")
    assert sink.write(4)[0] == "eu-west"
    sink.close()
