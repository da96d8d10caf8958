"""The drill's synthetic customer: sequence-numbered orders, each write recorded with its outcome.

Every order is one row `drctl_drill.orders(seq, region, written_at)`, so after a failover the
orders that were acknowledged but are missing are known exactly (RPO, by sequence number), and the
outage is known exactly too (RTO: the last acknowledged write on the old primary to the first on
the new one). Writes go through an `OrderSink`:

- `HttpOrderSink`: through the shop's front door (the rehearsal's "Cloudflare" HAProxy, then a shop
  origin, then that region's database), the path a customer's checkout takes;
- `DatabaseOrderSink`: straight to the databases named in the stack outputs (the real drill, whose
  web tier has no synthetic-order endpoint), trying the regions in failover order and taking the
  first whose database accepts writes, which is where the shop's orders would land.

Either way an order lands only on a writable server: the insert carries its own read-only check, so
an account that could bypass `read_only` (MariaDB's SUPER) still cannot write to a replica and
create an errant transaction there.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

SCHEMA = "drctl_drill"
ORDERS_DDL = (
    f"CREATE DATABASE IF NOT EXISTS {SCHEMA}",
    f"CREATE TABLE IF NOT EXISTS {SCHEMA}.orders (seq BIGINT NOT NULL PRIMARY KEY, "
    "region VARCHAR(64) NOT NULL, written_at TIMESTAMP(6) NOT NULL) ENGINE=InnoDB",
)
_INSERT = ("INSERT INTO drctl_drill.orders (seq, region, written_at) "
           "SELECT %s, %s, NOW(6) FROM DUAL WHERE @@global.read_only = 0")
ERROR_BACKOFF_SECONDS = 0.01  # after a failed write: a dead region must not turn the writer into a busy loop


class OrderRejected(Exception):
    """The order was not acknowledged; the message says why in a few words (never a secret)."""


def create_schema(conn) -> None:
    """On the primary (replicas get it through replication)."""
    with conn.cursor() as cur:
        for sql in ORDERS_DDL:
            cur.execute(sql)


def insert_order(conn, seq: int, region: str) -> None:
    with conn.cursor() as cur:
        if cur.execute(_INSERT, (seq, region)) != 1:
            raise OrderRejected("database is read-only")


def orders_present(conn, seqs: Iterable[int]) -> set[int]:
    """Which of `seqs` the server has."""
    wanted = sorted(set(seqs))
    present: set[int] = set()
    with conn.cursor() as cur:
        for i in range(0, len(wanted), 5000):
            chunk = wanted[i:i + 5000]
            placeholders = ", ".join(["%s"] * len(chunk))  # values travel as parameters
            cur.execute(f"SELECT seq FROM drctl_drill.orders WHERE seq IN ({placeholders})", chunk)  # noqa: S608
            present.update(int(row[0]) for row in cur.fetchall())
    return present


@dataclass(frozen=True)
class Write:
    seq: int
    ok: bool
    started: float  # wall-clock seconds (time.time), like every timestamp in a drill report
    finished: float
    region: str | None = None  # whose database acknowledged it
    server: str | None = None  # which origin or database server took it
    error: str | None = None


class OrderSink(Protocol):
    def write(self, seq: int) -> tuple[str, str]:
        """Write order `seq`; return (region, server) that acknowledged it or raise OrderRejected."""
        ...

    def close(self) -> None: ...


class HttpOrderSink:
    """POST /orders?seq=N through a load balancer, with the shop's Host header."""

    def __init__(self, host: str, port: int, domain: str, timeout: float = 2.0):
        self.host, self.port, self.domain, self.timeout = host, port, domain, timeout

    def write(self, seq: int) -> tuple[str, str]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request("POST", f"/orders?seq={int(seq)}", headers={"Host": self.domain, "Content-Length": "0"})
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as err:
            raise OrderRejected(f"{type(err).__name__}") from None
        finally:
            conn.close()
        if response.status != 201:
            try:
                reason = json.loads(body).get("error", "")
            except ValueError:
                reason = ""
            raise OrderRejected(f"HTTP {response.status}{f' {reason}' if reason else ''}")
        answer = json.loads(body)
        return str(answer["region"]), str(answer["origin"])

    def close(self) -> None:
        pass


class DatabaseOrderSink:
    """Orders straight into the first database (in failover order) that accepts writes. `targets`
    are (region, connect) pairs, `connect` opening an autocommit connection to that region's
    database (the runbook's `topology.connect`, verified TLS). Each writer thread keeps its own
    connections; one that failed is dropped and made again on the next order."""

    def __init__(self, targets: Sequence[tuple[str, Callable[[], Any]]]):
        self.targets = list(targets)
        self._local = threading.local()

    def write(self, seq: int) -> tuple[str, str]:
        conns = self._local.__dict__.setdefault("conns", {})
        reasons = []
        for region, connect in self.targets:
            try:
                conn = conns.get(region)
                if conn is None:
                    conn = conns[region] = connect()
                insert_order(conn, seq, region)
                return region, f"{region} database"
            except OrderRejected as err:
                reasons.append(f"{region}: {err}")
            except Exception as err:  # unreachable, killed, fenced by a firewall: try the next region
                stale = conns.pop(region, None)
                if stale is not None:
                    with contextlib.suppress(Exception):
                        stale.close()
                reasons.append(f"{region}: {type(err).__name__}")
        raise OrderRejected("; ".join(reasons))

    def close(self) -> None:
        for conn in self._local.__dict__.get("conns", {}).values():
            with contextlib.suppress(Exception):
                conn.close()


class OrderWriter:
    """Writes orders 1, 2, 3, ... from `threads` threads at up to `rate` orders/s in all (None: as
    fast as the sink goes), recording every attempt."""

    def __init__(self, sink: OrderSink, rate: float | None = None, threads: int = 2,
                 clock: Callable[[], float] = time.time):
        if threads < 1:
            raise ValueError("threads must be at least 1")
        self.sink, self.rate, self.threads, self.clock = sink, rate, threads, clock
        self.writes: list[Write] = []
        self.crashed: BaseException | None = None  # a sink that raised something other than OrderRejected
        self._next_seq = 1
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self.started_at: float | None = None
        self.stopped_at: float | None = None

    def start(self) -> OrderWriter:
        self.started_at = self.clock()
        self._workers = [threading.Thread(target=self._run, name=f"order-writer-{i}", daemon=True)
                         for i in range(self.threads)]
        for worker in self._workers:
            worker.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=10)
        self.stopped_at = self.clock()

    def __enter__(self) -> OrderWriter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return any(w.is_alive() for w in self._workers) and not self._stop.is_set()

    def snapshot(self) -> list[Write]:
        with self._lock:
            return list(self.writes)

    def last_success(self) -> Write | None:
        with self._lock:
            return next((w for w in reversed(self.writes) if w.ok), None)

    def failing_for(self, now: float | None = None) -> float:
        """Seconds the writer has been failing without a success in between (0 while it succeeds)."""
        with self._lock:
            if not self.writes or self.writes[-1].ok:
                return 0.0
            last_ok = next((w.finished for w in reversed(self.writes) if w.ok), self.started_at or 0.0)
        return (now if now is not None else self.clock()) - last_ok

    def wait_for_success(self, predicate: Callable[[Write], bool], timeout: float,
                         should_stop: Callable[[], str | None] = lambda: None) -> Write | None:
        """Block until a successful write satisfying `predicate` is recorded (returned), `timeout`
        seconds pass or `should_stop` names a reason (None)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline and should_stop() is None:
            with self._lock:
                fresh, seen = self.writes[seen:], len(self.writes)
            for write in fresh:
                if write.ok and predicate(write):
                    return write
            time.sleep(0.02)
        return None

    def _take_seq(self) -> int:
        with self._lock:
            seq, self._next_seq = self._next_seq, self._next_seq + 1
            return seq

    def _run(self) -> None:
        interval = self.threads / self.rate if self.rate else 0.0
        next_at = time.monotonic()
        try:
            while not self._stop.is_set():
                if interval:
                    delay = next_at - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        break
                    next_at = max(next_at + interval, time.monotonic() - interval)
                seq = self._take_seq()
                started = self.clock()
                try:
                    region, server = self.sink.write(seq)
                    record = Write(seq, True, started, self.clock(), region, server)
                except OrderRejected as err:
                    record = Write(seq, False, started, self.clock(), error=str(err))
                with self._lock:
                    self.writes.append(record)
                if not record.ok:
                    self._stop.wait(ERROR_BACKOFF_SECONDS)
        except BaseException as err:  # recorded, so the drill's stop condition sees a broken writer
            self.crashed = err
        finally:
            self.sink.close()


def summarize(writes: Sequence[Write]) -> dict[str, Any]:
    ok = [w for w in writes if w.ok]
    span = (writes[-1].finished - writes[0].started) if writes else 0.0
    return {"attempted": len(writes), "acknowledged": len(ok), "failed": len(writes) - len(ok),
            "ordersPerSecond": round(len(ok) / span, 1) if span > 0 else 0.0}
