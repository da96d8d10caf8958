"""The drill's media check: a sequence-numbered file put in the primary region's bucket before the
fault must be served by the DR region after the switch, within `objectives.mediaRpoSeconds`.

The file goes where a web node's agent would put an upload (`uploads/drctl-drill/<stack>-<seq>.txt`
in the primary's bucket, with drctl's key), and is fetched as a shopper would: GET
`/wp-content/uploads/drctl-drill/...` from the DR region's NodeBalancer with the shop's name (SNI and
Host), so the check covers the copy between regions, the DR region's bucket and its nodes' nginx.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from drctl.cloud.object_storage import REPLICATED, MediaBuckets
from drctl.cloud.origin_probe import tls_context
from drctl.stack.outputs import StackOutputs

PREFIX = "drctl-drill"


class MediaProbe(Protocol):
    def upload(self, region: str, name: str, body: bytes) -> None:
        """Put `body` at uploads/<name> in `region`'s bucket."""

    def served(self, region: str, name: str) -> bytes | None:
        """What `region` serves at /wp-content/uploads/<name>; None when it does not (yet)."""

    def copied_until(self, region: str) -> float | None:
        """Up to when `region`'s bucket holds the primary's uploads: the source heartbeat its last
        DR copy saw (dr/replicated.json); None before any copy. ObjectStorageError when unreadable."""


def drill_object(stack: str, seq: int) -> tuple[str, bytes]:
    return f"{PREFIX}/{stack}-{seq}.txt", f"woocommerce-dr drill media object {seq}\n".encode()


@dataclass
class StackMediaProbe:
    """MediaProbe on a deployed stack: drctl's bucket key, the regions' NodeBalancers over HTTPS."""

    outputs: StackOutputs
    ca_file: str | None = None
    timeout: float = 10.0
    port: int = 443
    _context: ssl.SSLContext = field(init=False, repr=False)
    connect: Callable[..., socket.socket] = socket.create_connection

    def __post_init__(self) -> None:
        self._context = tls_context(self.ca_file)
        self._buckets = MediaBuckets(self.outputs.media) if self.outputs.media else None

    def upload(self, region: str, name: str, body: bytes) -> None:
        if self._buckets is None:
            raise RuntimeError("the stack outputs have no media buckets")
        self._buckets.run("rcat", self._buckets.path(region, f"uploads/{name}"), stdin=body)

    def copied_until(self, region: str) -> float | None:
        if self._buckets is None:
            raise RuntimeError("the stack outputs have no media buckets")
        marker = self._buckets.read_json(region, REPLICATED)
        return None if marker is None else float(marker["source_heartbeat"])

    def served(self, region: str, name: str) -> bytes | None:
        address = self.outputs.region(region).node_balancer.ipv4
        try:
            with self.connect((address, self.port), timeout=self.timeout) as raw, \
                    self._context.wrap_socket(raw, server_hostname=self.outputs.domain) as tls:
                tls.sendall(f"GET /wp-content/uploads/{name} HTTP/1.1\r\nHost: {self.outputs.domain}\r\n"
                            "User-Agent: drctl-drill\r\nConnection: close\r\n\r\n".encode("ascii"))
                response = http.client.HTTPResponse(tls, method="GET")
                response.begin()
                body = response.read()
                return body if response.status == 200 else None
        except (OSError, http.client.HTTPException):
            return None
