"""A primary and a replica replicating, an archive bucket on the loopback S3 server, and an
archiver running in a thread: what the point-in-time-recovery tests share.

    def test_x(archive):            # archive.primary, archive.replica, archive.bucket, archive.key
        base = archive.base_backup()
        archiver = archive.start_archiver(base.gtid_pos)
        with archive.orders() as load: ...

`OrderLoad` writes sequence-numbered orders (drctl/drill/orders.py) to whichever server accepts
writes, one at a time, as fast as it can; each row's `written_at` is NOW(6) of its own statement,
the same moment the binlog stamps the transaction with, so a test knows exactly which orders a
restore to a time must hold.
"""

from __future__ import annotations

import base64
import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from drctl.backup.archiver import Archiver, Source
from drctl.backup.base_backup import schemas_to_dump, take_base_backup
from drctl.backup.binlog_events import GtidPos
from drctl.backup.restore import Target
from drctl.cloud.s3_bucket import Bucket, BucketAccess
from drctl.drill import orders
from tests.support.binaries import need
from tests.support.mariadb import MariaDBServer, replicate

if TYPE_CHECKING:  # moto is imported by the fixture only: every other test session is spared it
    from tests.support.object_store import ObjectStore

REPL_USER, REPL_PASSWORD = "repl", "repl-pw"  # a throwaway local server


class OrderLoad:
    """Orders 1, 2, 3... written to the first of `servers` that accepts them, in a thread."""

    def __init__(self, servers: list[MariaDBServer]):
        self.servers = servers
        self.next_seq = 1
        self.acknowledged: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="orders")

    def _run(self) -> None:
        conns: dict[int, object] = {}
        while not self._stop.is_set():
            for server in self.servers:
                try:
                    conn = conns.get(id(server)) or conns.setdefault(id(server), server.connect())
                    orders.insert_order(conn, self.next_seq, server.name)
                except Exception:  # a stopped or read-only server: try the next one
                    conns.pop(id(server), None)
                    continue
                self.acknowledged.append(self.next_seq)
                self.next_seq += 1
                break
            else:
                self._stop.wait(0.05)

    def __enter__(self) -> OrderLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@dataclass
class ArchiveSetup:
    primary: MariaDBServer
    replica: MariaDBServer
    store: ObjectStore
    bucket: Bucket
    key: bytes
    spool: Path
    tmp: Path
    archivers: list[tuple[Archiver, threading.Event, threading.Thread]] = field(default_factory=list)
    said: list[str] = field(default_factory=list)

    def source(self, server: MariaDBServer) -> Source:
        return Source(server.host, server.port, REPL_USER, REPL_PASSWORD, server.tls.ca)

    def base_backup(self):
        client = (f"--socket={self.replica.socket}", "--user=root")
        schemas = schemas_to_dump(self.replica.connect)
        return take_base_backup(self.bucket, self.key, client, schemas, work_dir=self.tmp, say=self.said.append)

    def start_archiver(self, start: GtidPos, **kwargs) -> Archiver:
        kwargs.setdefault("segment_seconds", 0.5)
        kwargs.setdefault("recheck_seconds", 0.5)
        archiver = Archiver(self.bucket, self.key, self.spool,
                            lambda: [self.source(self.primary), self.source(self.replica)], start,
                            binlog_tool=need("mariadb-binlog")["mariadb-binlog"], say=self.said.append, **kwargs)
        stop = threading.Event()
        thread = threading.Thread(target=archiver.run, args=(stop.is_set, 0.1), daemon=True, name="archiver")
        thread.start()
        self.archivers.append((archiver, stop, thread))
        return archiver

    def stop_archivers(self) -> None:
        for _archiver, stop, thread in self.archivers:
            stop.set()
            thread.join(timeout=30)
        self.archivers.clear()

    def orders(self) -> OrderLoad:
        return OrderLoad([self.primary, self.replica])

    def target(self, server: MariaDBServer) -> Target:
        return Target((f"--socket={server.socket}", "--user=root"), server.connect, repr(server))


def gtid_pos(server: MariaDBServer) -> GtidPos:
    return GtidPos.parse(server.query("SELECT @@global.gtid_binlog_pos")[0][0])


@pytest.fixture
def archive(mariadb_cluster, tmp_path) -> Iterator[ArchiveSetup]:
    from tests.support.object_store import ACCESS_KEY, SECRET_KEY, ObjectStore

    need("mariadb-binlog", "mariadb-dump", "mariadb")
    primary, replica = mariadb_cluster.add(), mariadb_cluster.add(extra_args=("--read-only",))
    primary.create_user(REPL_USER, REPL_PASSWORD, "REPLICATION SLAVE ON *.*")
    with contextlib.closing(primary.connect()) as conn:
        orders.create_schema(conn)
    replicate(replica, primary, REPL_USER, REPL_PASSWORD)
    with ObjectStore(regions=("dr",)) as store:
        # moto keeps its buckets for the whole process, across servers: a bucket of its own per test.
        name = store.bucket(f"wcdr-test-binlogs-{os.urandom(4).hex()}")
        bucket = Bucket(BucketAccess(store.endpoints["dr"].url, name, ACCESS_KEY, SECRET_KEY), timeout=2)
        setup = ArchiveSetup(primary, replica, store, bucket, os.urandom(32), tmp_path / "spool", tmp_path)
        try:
            yield setup
        finally:
            setup.stop_archivers()


def archive_key_text(key: bytes) -> str:
    return base64.b64encode(key).decode()
