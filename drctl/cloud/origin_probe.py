"""Probing a region's origin the way Cloudflare reaches it, and deciding when it is up or down.

`HttpsProbe` connects to the NodeBalancer's IP address (not to the domain: DNS may already point
elsewhere) and speaks TLS with SNI and Host set to the shop's domain, so the web tier serves the
same virtual host and certificate it serves to Cloudflare. The origin certificate is a Cloudflare
Origin CA certificate, which public trust stores do not accept: with `ca_file` (Cloudflare's Origin
CA root, or any bundle) the chain and the domain name are verified; without it the certificate is
not verified (the probe still sends SNI and still needs a working TLS handshake), which is what
Cloudflare's own monitor does for origins unless told otherwise.

`HealthTracker` is the hysteresis of Route 53 health checks and keepalived's fall/rise: a region is
down after `fall` consecutive failed probes and up after `rise` consecutive good ones; a single
probe never flips it. Until either threshold is first met the state is "unknown", which is
neither: drctl never moves traffic onto a region it has not seen up. `passing` is stricter than
up: the latest `rise` probes all passed. A region that is up but has just failed a probe is not yet
down, and not a place to move traffic to either.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

UP, DOWN, UNKNOWN = "up", "down", "unknown"


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    latency: float  # seconds, connect to status line
    status: int | None = None
    error: str | None = None  # why it failed, for logs
    writable: bool | None = None  # a database probe: it takes writes (read_only off); None: not asked

    def describe(self) -> str:
        if self.error:
            return self.error
        return f"HTTP {self.status} in {self.latency * 1000:.0f} ms"


def status_matches(status: int, expected: str) -> bool:
    """Cloudflare's `expected_codes` syntax: "200", "2xx", or several separated by commas."""
    for part in re.split(r"[,\s]+", expected.strip().lower()):
        if re.fullmatch(r"\d{3}", part) and status == int(part):
            return True
        if re.fullmatch(r"\dxx", part) and status // 100 == int(part[0]):
            return True
    return False


def valid_expected_codes(expected: str) -> bool:
    parts = [p for p in re.split(r"[,\s]+", expected.strip().lower()) if p]
    return bool(parts) and all(re.fullmatch(r"\d{3}|\dxx", p) for p in parts)


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Verify against `ca_file` (chain and hostname = the domain), or not at all without it."""
    if ca_file:
        context = ssl.create_default_context(cafile=ca_file)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


@dataclass(frozen=True)
class HttpsProbe:
    domain: str
    path: str
    timeout: float
    expected_codes: str = "200"
    port: int = 443
    ca_file: str | None = None
    clock: Callable[[], float] = time.monotonic
    _context: ssl.SSLContext = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_context", tls_context(self.ca_file))

    def __call__(self, address: str) -> ProbeResult:
        start = self.clock()
        deadline = start + self.timeout

        def remaining() -> float:
            left = deadline - self.clock()
            if left <= 0:
                raise TimeoutError
            return left

        try:
            status = self._get(address, remaining)
        except TimeoutError:
            return self._fail(start, f"timed out after {self.timeout:g} s")
        except ssl.SSLCertVerificationError as err:
            return self._fail(start, f"TLS certificate not trusted ({err.verify_message})")
        except ssl.SSLError as err:
            return self._fail(start, f"TLS handshake failed ({err.reason or err})")
        except ConnectionRefusedError:
            return self._fail(start, "connection refused")
        except (OSError, http.client.HTTPException) as err:
            return self._fail(start, f"{type(err).__name__}: {err}".rstrip(": "))
        latency = self.clock() - start
        if latency > self.timeout:  # a slow trickle of bytes can outlast the per-read timeouts
            return ProbeResult(False, latency, status, f"answered after {latency:.1f} s (timeout {self.timeout:g} s)")
        if not status_matches(status, self.expected_codes):
            return ProbeResult(False, latency, status, f"HTTP {status} (expected {self.expected_codes})")
        return ProbeResult(True, latency, status)

    def _get(self, address: str, remaining: Callable[[], float]) -> int:
        with socket.create_connection((address, self.port), timeout=remaining()) as raw:
            raw.settimeout(remaining())
            with self._context.wrap_socket(raw, server_hostname=self.domain) as tls:
                tls.settimeout(remaining())
                request = (
                    f"GET {self.path} HTTP/1.1\r\nHost: {self.domain}\r\nUser-Agent: drctl-watch\r\n"
                    "Accept: */*\r\nConnection: close\r\n\r\n"
                )
                tls.sendall(request.encode("ascii"))
                response = http.client.HTTPResponse(tls, method="GET")
                try:
                    tls.settimeout(remaining())
                    response.begin()
                    return response.status
                finally:
                    response.close()

    def _fail(self, start: float, error: str) -> ProbeResult:
        return ProbeResult(False, self.clock() - start, None, error)


def probe_all(probe: Callable[[str], ProbeResult], addresses: Mapping[str, str],
              pool: ThreadPoolExecutor | None = None) -> dict[str, ProbeResult]:
    """Probe every address at once, so a round takes one timeout, not one per region."""
    if pool is None:
        with ThreadPoolExecutor(max_workers=max(1, len(addresses))) as own:
            return probe_all(probe, addresses, own)
    futures = {name: pool.submit(probe, address) for name, address in addresses.items()}
    return {name: future.result() for name, future in futures.items()}


@dataclass
class HealthTracker:
    fall: int
    rise: int
    state: str = UNKNOWN
    successes: int = 0  # consecutive
    failures: int = 0  # consecutive
    since: float | None = None  # when the current state was entered (None while unknown)

    def __post_init__(self) -> None:
        if self.fall < 1 or self.rise < 1:
            raise ValueError("fall and rise must be at least 1")

    def observe(self, ok: bool, now: float) -> str | None:
        """Record one probe; return the new state if this probe changed it."""
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            new = UP if self.successes >= self.rise else None
        else:
            self.failures, self.successes = self.failures + 1, 0
            new = DOWN if self.failures >= self.fall else None
        if new is None or new == self.state:
            return None
        self.state, self.since = new, now
        return new

    @property
    def confirming(self) -> bool:
        """A probe failed but `fall` is not reached yet: HAProxy's `fastinter` probes faster now, to
        confirm the failure (or see it was one lost probe) sooner; the counts stay the same."""
        return 0 < self.failures < self.fall and self.state != DOWN

    @property
    def passing(self) -> bool:
        """The latest `rise` probes all passed (successes reset on every failure)."""
        return self.successes >= self.rise

    def up_for(self, now: float) -> float:
        """Seconds this region has been up (0 unless up)."""
        return now - self.since if self.state == UP and self.since is not None else 0.0
