"""The rehearsal's stand-in for a deployed stack, on this machine, with real components only.

Per region: two shop origins (drctl/rehearsal/shop.py processes) writing to that region's
database, and a HAProxy TCP proxy playing the NodeBalancer (TCP checks with the stack's
nodeBalancer checkInterval/checkTimeout/checkAttempts, scaled). A MariaDB primary in the first
region, a replica in every other (GTID replication over verified TLS, set up by
drctl/mysql/replication.py), each reached only through a HAProxy TCP proxy that plays its Cloud
Firewall. One HAProxy HTTP proxy plays Cloudflare's failover pools: each region's NodeBalancer as a
server, all but the first `backup`, checked with GET <monitor path> and the shop's Host header at
the stack's monitor interval/timeout/consecutiveDown/Up, scaled; its own errors are Cloudflare's
(520, 521, 524), as the edge sees them. One haproxy process runs all the proxies; its runtime API
(`stats socket ... level admin`) is how drctl's HAProxy backend changes them
(drctl/rehearsal/haproxy_cloud.py). With `edge=True`, Cloudflare's edge runs in front of it: the
fallback page's Worker under Node (drctl/local/edge.py), the script the program uploads. With
`media=True`, the shop's media path runs too (drctl/rehearsal/media.py): an S3 server per Object
Storage region, and on every web node the media agent, the bucket server and nginx, to which the
node's shop origin hands /wp-content/uploads/.

Settings come from the stack file (`Pulumi.<stack>.yaml`, validated by the program's own config
model, so the rehearsal uses exactly the values and defaults `pulumi up` would) with every health
check period multiplied by `time_scale`; `outputs()` describes the topology in the stack-outputs
contract, so the drill reads it as it reads a real stack's.

Everything lives below one temp directory; `close()` stops every process and removes it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from drctl.cloud.edge_probe import EdgeProbe
from drctl.drill import orders
from drctl.local import processes
from drctl.local.edge import EdgeWorker
from drctl.local.haproxy import HAProxyProcess
from drctl.local.mariadb import HOST, LocalCA, MariaDBCluster, MariaDBServer, make_template, replicate
from drctl.local.ports import PortPool
from drctl.mysql import replication
from drctl.rehearsal.haproxy_cloud import (
    CLOUDFLARE,
    DATABASE_SERVER,
    HAProxyLinode,
    HAProxyTraffic,
    LocalIds,
    blackhole_acl,
    database_path,
    nodebalancer,
)
from drctl.rehearsal.media import DEFAULT_TIMING, MediaError, MediaTiming, RehearsalMedia, find_binaries
from drctl.stack.files import REPO_ROOT, load_stack_file
from drctl.stack.outputs import StackOutputs, parse_outputs

DEFAULT_TIME_SCALE = 0.02  # a 60 s monitor interval becomes 1.2 s
MIN_CHECK_MS = 50  # HAProxy checks faster than this only burn the two cores
MIN_EDGE_TIMEOUT_MS = 500  # the edge's wait for a region: a busy machine's slow answer is no outage
# What Cloudflare answers when it reaches no origin, in place of HAProxy's own errors (status: file):
# 520 for an origin that closed the connection (HAProxy's 502), 521 for none that would take it (503:
# refused, or every pool down), 524 for one that did not answer in time (504). The fallback page's
# Worker tells a dead origin by exactly these codes.
CLOUDFLARE_ERRORS = {502: (520, "Web Server Returned an Unknown Error"), 503: (521, "Web Server Is Down"),
                     504: (524, "A Timeout Occurred")}
ADMIN_USER = "drctl"  # as on the stack's own MySQL Linodes (components/database.py)
REPLICATION_USER = "replicator"
SHOP_USER = "woocommerce"


class TopologyError(Exception):
    """The rehearsal topology cannot be built or did not come up; the message says why."""


def _ms(seconds: float, scale: float) -> int:
    return max(MIN_CHECK_MS, round(seconds * scale * 1000))


@dataclass(frozen=True)
class RehearsalSpec:
    """The numbers of a rehearsal: the stack's, with check periods and the RTO objective scaled.
    The RPO objective is not scaled: replication runs at its real speed."""

    stack: str
    project: str
    domain: str
    regions: tuple[str, ...]  # failover order
    web_nodes: int
    time_scale: float
    nb_interval_ms: int
    nb_timeout_ms: int
    nb_attempts: int
    health_path: str
    monitor_interval_ms: int
    monitor_timeout_ms: int
    monitor_fall: int
    monitor_rise: int
    expected_codes: str
    rto_seconds: int
    rpo_seconds: int
    worst_case_detection_seconds: int
    account_id: str
    zone_id: str
    # The fallback page's Worker as the program renders it, its origin timeout scaled (None: the
    # stack has no fallback page), and the name the program gives it.
    edge_worker: str | None = field(default=None, repr=False)
    fallback_script_name: str | None = None
    # drctl guard (issue 15), scaled like the checks: fast confirm and the confirm time.
    fast_interval_ms: int = MIN_CHECK_MS
    confirm_ms: int = MIN_CHECK_MS
    # The shop's media (issue 13): objectives.mediaRpoSeconds and the agent's intervals, scaled
    # (drctl/rehearsal/media.py), and media.maxUploadMegabytes for nginx's uploads snippet.
    media: MediaTiming = DEFAULT_TIMING
    max_upload_megabytes: int = 16
    attic_retention_days: int = 30

    @classmethod
    def from_stack(cls, stack: str, time_scale: float = DEFAULT_TIME_SCALE, root: Path = REPO_ROOT) -> RehearsalSpec:
        # The program's config model (pydantic only, no Pulumi) validates the stack file, so a
        # rehearsal and `pulumi up` can never read a setting or a default differently.
        from components.config import ConfigError, validate_config_map
        from components.fallback_worker import script_name, worker_for

        if not 0 < time_scale <= 1:
            raise TopologyError(f"--time-scale must be above 0 and at most 1 (got {time_scale})")
        stack_file = load_stack_file(stack, root=root)
        try:
            config = validate_config_map(stack_file.config, stack_file.secret_keys)
        except ConfigError as err:
            raise TopologyError(f"{stack_file.source}:\n{err}") from None
        nb, monitor, page = config.node_balancer, config.traffic.monitor, config.traffic.fallback_page
        edge_worker = worker_for(config, origin_timeout_ms=max(MIN_EDGE_TIMEOUT_MS, _ms(page.origin_timeout_seconds,
                                                                                      time_scale))) \
            if page.enabled else None
        return cls(
            stack=stack, project=stack_file.project, domain=config.domain,
            regions=tuple(r.region for r in config.regions),
            web_nodes=max(2, config.primary.web_nodes),  # two at least, so a NodeBalancer has nodes to balance
            time_scale=time_scale,
            nb_interval_ms=_ms(nb.check_interval, time_scale), nb_timeout_ms=_ms(nb.check_timeout, time_scale),
            nb_attempts=nb.check_attempts,
            health_path=monitor.path,
            monitor_interval_ms=_ms(monitor.interval, time_scale),
            # Cloudflare retries a failed probe `retries` times within one interval before counting it.
            monitor_timeout_ms=_ms(monitor.timeout * (monitor.retries + 1), time_scale),
            monitor_fall=monitor.fall, monitor_rise=monitor.rise,
            expected_codes=monitor.expected_codes,
            rto_seconds=max(1, math.ceil(config.objectives.rto_seconds * time_scale)),
            rpo_seconds=config.objectives.rpo_seconds,
            worst_case_detection_seconds=max(1, math.ceil(monitor.worst_case_detection_seconds * time_scale)),
            account_id=config.traffic.account_id, zone_id=config.traffic.zone_id,
            edge_worker=edge_worker,
            fallback_script_name=script_name(stack_file.project, stack) if page.enabled else None,
            fast_interval_ms=_ms(monitor.fast_interval, time_scale),
            confirm_ms=_ms(config.automation.confirm_seconds, time_scale),
            media=MediaTiming.scaled(config.objectives.media_rpo_seconds, time_scale),
            max_upload_megabytes=config.media.max_upload_megabytes,
            attic_retention_days=config.media.attic_retention_days,
        )


def vantage(guard: str, kind: str, region: str) -> str:
    """The HAProxy proxy that is guard `guard`'s own way to `region`'s NodeBalancer (kind "nb") or
    database (kind "db"): each guard reaches the regions through its own path, which the rehearsal
    can cut to play a guard cut off from a region while everyone else still sees it."""
    return f"vantage-{guard}-{kind}-{region}"


VANTAGE_SERVER = "path"


def expected_status_regex(expected_codes: str) -> str:
    """Cloudflare's expected_codes ("200", "2xx") as an HAProxy `http-check expect rstatus` regex."""
    parts = [p for p in re.split(r"[,\s]+", expected_codes.strip().lower()) if p]
    return "^(" + "|".join(p.replace("x", "[0-9]") for p in parts) + ")$"


@dataclass(frozen=True)
class RegionPorts:
    """Where one region's stand-ins listen."""

    name: str
    nb_port: int  # the NodeBalancer (HAProxy nb-<region>)
    origins: dict[str, int]  # web node name -> its shop origin's port
    db_port: int  # the path to the database (HAProxy db-<region>)
    database_port: int  # the database server itself


def haproxy_config(spec: RehearsalSpec, socket_path: Path, cloudflare_port: int, regions: Sequence[RegionPorts],
                   tls_pem: Path, vantages: dict[tuple[str, str, str], int] | None = None) -> str:
    """One haproxy configuration with every proxy of the topology, named as drctl/rehearsal/haproxy_cloud.py
    expects; `regions` in failover order. The blackhole ACL files go beside the runtime socket
    and must exist (empty) when haproxy starts: `haproxy_files()`. The NodeBalancers speak TLS
    with the certificate and key in `tls_pem` (as the web nodes do behind the real ones), so
    Cloudflare's checks, and drctl's own probes (drctl/cloud/origin_probe.py), reach them over HTTPS."""
    s = spec
    lines = [
        "global",
        f"  stats socket {socket_path} mode 600 level admin",
        "  maxconn 512",
        "defaults",
        "  timeout connect 1s",
        "  timeout client 10s",
        "  timeout server 10s",
        "",
        f"listen {CLOUDFLARE}",
        f"  bind {HOST}:{cloudflare_port}",
        "  mode http",
        *(f"  errorfile {status} {cloudflare_error_file(socket_path.parent, status)}" for status in CLOUDFLARE_ERRORS),
        "  option httpchk",
        f"  http-check send meth GET uri {s.health_path} ver HTTP/1.1 hdr Host {s.domain}",
        f"  http-check expect rstatus {expected_status_regex(s.expected_codes)}",
        f"  timeout check {s.monitor_timeout_ms}ms",
        # HAProxy waits min(timeout connect, 1 s) between retries of a refused connection: scaled too.
        f"  timeout connect {s.monitor_timeout_ms}ms",
        f"  default-server inter {s.monitor_interval_ms}ms fall {s.monitor_fall} rise {s.monitor_rise}",
    ]
    lines += [f"  server {r.name} {HOST}:{r.nb_port} check ssl verify none sni str({s.domain}){' backup' if i else ''}"
              for i, r in enumerate(regions)]
    for r in regions:
        lines += [
            "",
            f"listen {nodebalancer(r.name)}",
            f"  bind {HOST}:{r.nb_port} ssl crt {tls_pem}",
            "  mode tcp",
            "  balance roundrobin",
            # A blackhole: connections from a listed source are held unanswered until they time out
            # (silent-drop would not do on loopback, where the kernel resets the client at once).
            "  tcp-request inspect-delay 30s",
            f"  tcp-request content accept if !{{ src -f {blackhole_acl(socket_path.parent, r.name)} }}",
            "  tcp-request content reject if WAIT_END",
            f"  timeout check {s.nb_timeout_ms}ms",
            f"  timeout connect {s.nb_timeout_ms}ms",
            # NodeBalancers have no tunable rise (DESIGN §2): one good check brings a node back.
            f"  default-server inter {s.nb_interval_ms}ms fall {s.nb_attempts} rise 1",
            *(f"  server {name} {HOST}:{port} check" for name, port in r.origins.items()),
            "",
            f"listen {database_path(r.name)}",
            f"  bind {HOST}:{r.db_port}",
            "  mode tcp",
            # A killed server is refused at once, as by a machine whose mysqld died (HAProxy would
            # otherwise retry for seconds on the client's behalf).
            "  retries 0",
            f"  timeout connect {s.nb_timeout_ms}ms",
            # Replication and pooled connections sit idle for long; a firewall does not cut them.
            "  timeout client 1h",
            "  timeout server 1h",
            # No health check: a firewall has none, and a scaled-down check flapped DOWN on a loaded
            # machine and refused a healthy database. A dead server is refused anyway (retries 0).
            f"  server {DATABASE_SERVER} {HOST}:{r.database_port}",
        ]
    targets = {("nb", r.name): r.nb_port for r in regions} | {("db", r.name): r.db_port for r in regions}
    for (guard, kind, region), port in (vantages or {}).items():
        lines += [
            "",
            f"listen {vantage(guard, kind, region)}",
            f"  bind {HOST}:{port}",
            "  mode tcp",
            "  retries 0",
            "  timeout client 1h",
            "  timeout server 1h",
            f"  server {VANTAGE_SERVER} {HOST}:{targets[(kind, region)]}",
        ]
    return "\n".join(lines) + "\n"


def cloudflare_error_file(directory: Path, status: int) -> Path:
    return Path(directory) / f"cloudflare-{CLOUDFLARE_ERRORS[status][0]}.http"


def cloudflare_error(status: int) -> str:
    """The raw answer HAProxy sends instead of its own `status`: Cloudflare's code, as on its edge."""
    code, reason = CLOUDFLARE_ERRORS[status]
    body = f"error code: {code}\n"
    return (f"HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}")


def haproxy_files(directory: Path, regions: Sequence[str], ca: LocalCA) -> Path:
    """The files the configuration reads: empty blackhole ACLs, Cloudflare's error answers, and the
    NodeBalancers' certificate and key in one PEM (returned)."""
    directory.mkdir(parents=True, exist_ok=True)
    for region in regions:
        blackhole_acl(directory, region).touch()
    for status in CLOUDFLARE_ERRORS:
        cloudflare_error_file(directory, status).write_bytes(cloudflare_error(status).encode("ascii"))
    pem = directory / "nodebalancer.pem"
    pem.touch(mode=0o600)
    pem.write_text(Path(ca.cert).read_text() + Path(ca.key).read_text())
    return pem


@dataclass
class _Region:
    name: str
    database: MariaDBServer
    db_port: int  # the database path (HAProxy db-<region>)
    nb_port: int  # the NodeBalancer (HAProxy nb-<region>)
    origins: dict[str, int]  # web node name -> port
    processes: dict[str, subprocess.Popen]


class LocalTopology:
    def __init__(self, spec: RehearsalSpec, template: Path | None = None, edge: bool = False,
                 guards: Sequence[str] = (), media: bool = False):
        """`edge`: also run Cloudflare's edge, the fallback page's Worker under Node, in front of the
        `cloudflare` proxy (drctl/local/edge.py); the stack must have a fallback page.
        `guards`: names of drctl guards that each get their own paths to every region (rehearse --automatic).
        `media`: also the media buckets and every node's media path (drctl/rehearsal/media.py); its
        binaries are looked for here, so a missing one is reported before anything is made."""
        if edge and spec.edge_worker is None:
            raise TopologyError(f"stack {spec.stack} has no fallback page (traffic.fallbackPage.enabled is false): "
                                "no edge Worker to rehearse")
        self._media_binaries = find_binaries() if media else None
        self.media: RehearsalMedia | None = None
        self.spec = spec
        self.dir = Path(tempfile.mkdtemp(prefix="wcdr-rehearse-"))
        self._template = template
        self._passwords = {user: secrets.token_urlsafe(18) for user in (ADMIN_USER, REPLICATION_USER, SHOP_USER)}
        self.ca: LocalCA | None = None
        self.databases: MariaDBCluster | None = None
        self.haproxy: HAProxyProcess | None = None
        self.traffic: HAProxyTraffic | None = None
        self.linode: HAProxyLinode | None = None
        self.regions: dict[str, _Region] = {}
        self._ports = PortPool()  # every listener's port, held until close(): no number handed out twice
        self.cloudflare_port = self._ports.port()
        self.edge_port = self._ports.port() if edge else None
        self.edge: EdgeWorker | None = None
        # Each guard's own paths to each region's NodeBalancer and database: (guard, kind, region) -> port.
        self.vantages = {(g, kind, region): self._ports.port()
                         for g in guards for region in spec.regions for kind in ("nb", "db")}

    # --- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> LocalTopology:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, timeout: float = 60) -> None:
        self.ca = LocalCA.create(self.dir / "ca")
        template = self._template or make_template(self.dir / "template")
        self.databases = MariaDBCluster(self.ca, template, base=self.dir / "db")
        for i, region in enumerate(self.spec.regions):
            server = self.databases.add(server_id=i + 1, name=region)
            origins = {f"web-{n + 1}": self._ports.port() for n in range(self.spec.web_nodes)}
            self.regions[region] = _Region(region, server, self._ports.port(), self._ports.port(), origins, {})
        if self._media_binaries is not None:
            self.media = RehearsalMedia(self.dir / "media", self.spec.stack, self.spec.domain, self.spec.regions,
                                        {r.name: list(r.origins.items()) for r in self.regions.values()},
                                        self.spec, self._media_binaries, self._ports)
            self._start_media()
        self._prepare_primary(self.regions[self.spec.regions[0]].database)
        self._tls_pem = haproxy_files(self.dir / "haproxy", self.spec.regions, self.ca)
        self.haproxy = HAProxyProcess(self.dir / "haproxy", self.haproxy_config(), self.dir / "haproxy" / "api.sock")
        self.haproxy.start()
        self.traffic = HAProxyTraffic(self.haproxy.api, self.spec.regions)
        self.linode = HAProxyLinode(self.haproxy.api, self.spec.regions,
                                    {r.name: tuple(r.origins) for r in self.regions.values()}, self.dir / "haproxy")
        for region in self.spec.regions[1:]:
            self._replicate_from_primary(region)
        for region in self.regions.values():
            for name in region.origins:
                self.start_origin(region.name, name)
        self.wait_until_serving(self.spec.regions[0], timeout)
        if self.media is not None:
            # The drill's preflight is `drctl status`, which counts the media: heartbeat and first copy.
            try:
                self.media.wait_until_healthy(self.outputs(), self.spec.regions[0], timeout)
            except MediaError as err:
                raise TopologyError(str(err)) from None
            # That took a few agent passes, with rclone busy on both cores: the scaled checks may
            # have flapped meanwhile; the drill's preflight wants them settled, as before.
            self.wait_until_serving(self.spec.regions[0], timeout)
        if self.edge_port is not None:
            self.edge = EdgeWorker(self.dir / "edge", self.spec.edge_worker, HOST, self.edge_port, self.cloudflare_port)
            self.edge.start()

    def close(self) -> None:
        """Stop everything and remove the directory; safe to call twice and after a failed start."""
        if self.edge is not None:
            self.edge.stop()
        for region in self.regions.values():
            for name in list(region.processes):
                self.stop_origin(region.name, name, kill=False)
        if self.media is not None:
            self.media.close()
        if self.haproxy is not None:
            self.haproxy.stop()
        if self.databases is not None:
            self.databases.close()
        self._ports.release()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- the databases -----------------------------------------------------------------------------
    def _prepare_primary(self, primary: MariaDBServer) -> None:
        """Accounts, heartbeat and the drill's orders table, created on the primary before any replica
        exists, so replication carries them everywhere (as the stack's bootstrap does)."""
        primary.create_user(ADMIN_USER, self._passwords[ADMIN_USER])
        primary.create_user(REPLICATION_USER, self._passwords[REPLICATION_USER], "REPLICATION SLAVE ON *.*")
        with contextlib.closing(primary.connect()) as conn:
            replication.install_heartbeat(conn, with_event=True)
            orders.create_schema(conn)
        primary.create_user(SHOP_USER, self._passwords[SHOP_USER], f"SELECT, INSERT ON {orders.SCHEMA}.*")
        primary.execute(f"GRANT SELECT ON {replication.HEARTBEAT_SCHEMA}.* TO '{SHOP_USER}'@'{HOST}'")

    def _replicate_from_primary(self, region: str) -> None:
        replica, primary = self.regions[region].database, self.regions[self.spec.regions[0]]
        # Through the primary's 'firewall', as a real replica reaches its source.
        replicate(replica, primary.database, REPLICATION_USER, self._passwords[REPLICATION_USER],
                  port=primary.db_port)
        with contextlib.closing(replica.connect()) as conn:
            replication.set_read_only(conn, replication.detect_dialect(conn), True)

    def kill_database(self, region: str) -> None:
        self.regions[region].database.kill()

    def start_database(self, region: str) -> None:
        self.regions[region].database.start()

    def region_down(self, region: str) -> tuple[str, str, Callable[[], None]]:
        """The whole region dies at once: its database and its shop origins are killed (SIGKILL),
        with each web node's media agent, nginx and bucket server. Its Object Storage is another
        service and stays up. Returns what was done, what undoing does, and the undo (restart
        them, data kept): the drill's `region-down` fault."""
        r = self.regions[region]
        r.database.kill()
        for name in list(r.processes):
            self.stop_origin(region, name, kill=True)
            if self.media is not None:
                self.media.stop_node(region, name, kill=True)

        def bring_back() -> None:
            r.database.start()
            for name in r.origins:
                if self.media is not None:
                    self._start_media_node(region, name)
                self.start_origin(region, name)
        return (f"{region}: database and {len(r.origins)} shop origins killed",
                f"{region}: database and shop origins restarted (data kept)", bring_back)

    # --- the shop origins --------------------------------------------------------------------------
    def start_origin(self, region: str, name: str) -> None:
        r = self.regions[region]
        settings = {"origin": f"{region}-{name}", "port": r.origins[name], "region": region, "host": HOST,
                    "port_db": r.db_port, "user": SHOP_USER, "password": self._passwords[SHOP_USER],
                    "ca_file": self.ca.ca}
        if self.media is not None:
            settings["media_port"] = self.media.node(region, name).nginx_port
        path = self.dir / "origins" / f"{region}-{name}.json"
        path.parent.mkdir(exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(json.dumps(settings), encoding="utf-8")
        log = open(path.with_suffix(".log"), "ab")  # noqa: SIM115 -- the child keeps it open
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        r.processes[name] = subprocess.Popen([sys.executable, "-m", "drctl.rehearsal.shop", str(path)],
                                             stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env, cwd=self.dir)
        log.close()

    def stop_origin(self, region: str, name: str, kill: bool = True) -> None:
        """SIGKILL (a dead web node) or SIGTERM (a clean stop)."""
        process = self.regions[region].processes.pop(name, None)
        if kill:
            processes.kill(process)
        else:
            processes.terminate(process, 5)

    # --- the media path ----------------------------------------------------------------------------
    def _start_media(self) -> None:
        try:
            self.media.start_storage()
        except MediaError as err:
            raise TopologyError(str(err)) from None
        for region in self.regions.values():
            for name in region.origins:
                self._start_media_node(region.name, name)

    def _start_media_node(self, region: str, name: str) -> None:
        try:
            self.media.start_node(region, name)
        except MediaError as err:
            raise TopologyError(str(err)) from None

    # --- HAProxy -----------------------------------------------------------------------------------
    def haproxy_config(self) -> str:
        return haproxy_config(self.spec, self.dir / "haproxy" / "api.sock", self.cloudflare_port, [
            RegionPorts(r.name, r.nb_port, r.origins, r.db_port, r.database.port) for r in self.regions.values()],
            self._tls_pem, self.vantages)

    def cut_off(self, guard: str, region: str, cut: bool = True) -> None:
        """Cut (or restore) guard `guard`'s own paths to `region`: its probes of the region's
        NodeBalancer and database fail at once, while Cloudflare and the other guards still reach it."""
        for kind in ("nb", "db"):
            proxy = vantage(guard, kind, region)
            self.haproxy.api.set_server_state(proxy, VANTAGE_SERVER, "maint" if cut else "ready")
            if cut:
                self.haproxy.api.shutdown_sessions(proxy, VANTAGE_SERVER)

    def wait_until_serving(self, region: str, timeout: float) -> None:
        """Until every NodeBalancer node and every pool passes its checks and `region` takes the
        traffic: what `drctl status` calls healthy (one slow origin would fail the drill's preflight)."""
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            state = self.traffic.state()
            nodes = [s for r in self.spec.regions for s in self.haproxy.api.servers(nodebalancer(r))]
            if all(r.healthy for r in state.regions.values()) and state.serving == region \
                    and all(node.checked_up for node in nodes):
                return
            for r in self.regions.values():
                for name, process in r.processes.items():
                    if process.poll() is not None:
                        # The log goes with the topology's directory: quote it while it is still there.
                        log = self.dir / "origins" / f"{r.name}-{name}.log"
                        raise TopologyError(f"shop origin {r.name}-{name} exited with {process.returncode}:\n"
                                            f"{processes.log_tail(log)}")
            time.sleep(0.05)
        details = "; ".join(r.detail for r in state.regions.values()) if state else "no state read"
        raise TopologyError(f"the rehearsal topology did not come up within {timeout:.0f} s ({details})")

    # --- what the drill sees -----------------------------------------------------------------------
    def edge_probe(self) -> EdgeProbe:
        """A shopper's GET through the edge (the Worker under Node), with the shop's Host header."""
        if self.edge_port is None:
            raise TopologyError("this topology runs no edge (LocalTopology(..., edge=True))")
        return EdgeProbe(self.spec.domain, timeout=10.0, address=HOST, port=self.edge_port, tls=False)

    def order_sink(self) -> orders.HttpOrderSink:
        """Orders through the front door: 'Cloudflare', then a NodeBalancer, then a shop origin."""
        return orders.HttpOrderSink(HOST, self.cloudflare_port, self.spec.domain)

    def outputs(self) -> StackOutputs:
        """This topology in the stack-outputs contract, with the local ids of `LocalIds`."""
        s = self.spec
        regions, replicas = [], []
        for i, name in enumerate(s.regions):
            r, ids = self.regions[name], LocalIds(i)
            regions.append({
                "region": name, "role": "primary" if i == 0 else "dr",
                "nodeBalancer": {"id": ids.nodebalancer, "ipv4": HOST,
                                 "hostname": f"{nodebalancer(name)}.rehearsal.invalid"},
                "webInstances": [{"id": ids.web_instance(n), "label": node, "privateIp": HOST}
                                 for n, node in enumerate(r.origins)],
                "webFirewallId": ids.web_firewall, "nodeBalancerFirewallId": ids.nodebalancer_firewall,
                "poolId": name,
            })
            if i:
                replicas.append({"region": name, "instanceId": ids.database_instance, "publicIp": HOST,
                                 "privateIp": HOST, "serverId": r.database.server_id, "port": r.db_port,
                                 "firewallId": ids.database_firewall})
        primary = self.regions[s.regions[0]]
        ca_pem = Path(self.ca.ca).read_text()
        return parse_outputs({
            "project": s.project, "stack": f"{s.stack}-rehearsal", "domain": s.domain,
            "trafficMode": "load-balancer", "healthPath": s.health_path,
            "regions": regions,
            "monitor": {"interval": max(1, round(s.monitor_interval_ms / 1000)),
                        "timeout": max(1, round(s.monitor_timeout_ms / 1000)), "retries": 0,
                        "consecutiveDown": s.monitor_fall, "consecutiveUp": s.monitor_rise,
                        "expectedCodes": s.expected_codes},
            "cloudflare": {"accountId": s.account_id, "zoneId": s.zone_id, "loadBalancerId": CLOUDFLARE},
            "database": {
                "mode": "self-managed",
                # One CA signs every server, and the servers share this machine: the CA paths the
                # servers use for replication are the file itself.
                "primary": {"region": s.regions[0], "host": HOST, "port": primary.db_port,
                            "caCert": ca_pem, "caPath": self.ca.ca, "adminUser": ADMIN_USER,
                            "adminPassword": self._passwords[ADMIN_USER],
                            "instanceId": LocalIds(0).database_instance, "firewallId": LocalIds(0).database_firewall},
                "replicas": replicas, "serverCaCert": ca_pem, "serverCaPath": self.ca.ca,
                "replicaAdminUser": ADMIN_USER, "replicaAdminPassword": self._passwords[ADMIN_USER],
                "heartbeat": "event scheduler",
            },
            "objectives": {"rtoSeconds": s.rto_seconds, "rpoSeconds": s.rpo_seconds,
                           "worstCaseDetectionSeconds": s.worst_case_detection_seconds},
            # Only with the edge running: without it the rehearsal has no page to serve.
            "fallbackPage": {"scriptName": s.fallback_script_name, "routePattern": f"{s.domain}/*"}
            if self.edge_port is not None else None,
            "media": self.media.outputs() if self.media is not None else None,
        }, "the rehearsal topology")  # parse_outputs: errors name fields, never values (passwords)

    def replication_credentials(self) -> tuple[str, str]:
        """The replication account (user, password), for failback's CHANGE MASTER."""
        return REPLICATION_USER, self._passwords[REPLICATION_USER]

    def processes(self) -> list[subprocess.Popen]:
        found = [p for r in self.regions.values() for p in r.processes.values()]
        if self.haproxy is not None and self.haproxy.process is not None:
            found.append(self.haproxy.process)
        if self.edge is not None and self.edge.process is not None:
            found.append(self.edge.process)
        if self.databases is not None:
            found += [s.process for s in self.databases.servers if s.process is not None]
        if self.media is not None:
            found += self.media.processes()
        return found
