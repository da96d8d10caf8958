"""The guard's own probe of the primary database: a TLS login and a read of `read_only`, within a
timeout, as a ProbeResult like the NodeBalancer's (drctl/cloud/origin_probe.py). A read-only
primary still answers (the probe succeeds), but it is not taking writes: the guard's record of when
the primary was last seen alive and taking writes (the RPO gate's loss window) needs both."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from drctl.cloud.origin_probe import ProbeResult
from drctl.mysql.topology import DbServer, connect


@dataclass(frozen=True)
class DatabaseProbe:
    servers: dict[str, DbServer]
    timeout: float
    clock: Callable[[], float] = time.monotonic

    def __call__(self, region: str) -> ProbeResult:
        start = self.clock()
        try:
            conn = connect(self.servers[region], self.timeout, read_timeout=self.timeout)
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT @@GLOBAL.read_only")
                    row = cur.fetchone()
            finally:
                with contextlib.suppress(Exception):
                    conn.close()
        except Exception as err:  # any failure is a failed probe; the message never holds the password
            return ProbeResult(False, self.clock() - start, None, str(err)[:300])
        latency = self.clock() - start
        if latency > self.timeout:
            return ProbeResult(False, latency, None, f"answered after {latency:.1f} s (timeout {self.timeout:g} s)")
        return ProbeResult(True, latency, writable=not int(row[0]) if row else None)
