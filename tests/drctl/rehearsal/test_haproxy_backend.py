"""The rehearsal's HAProxy stand-ins for Cloudflare and the Linode API, against a real haproxy:
traffic follows the failover pools, pool order and pool enabling stay apart as on Cloudflare, and
the drill's faults and their restore change exactly what they say."""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from drctl.cloud.linode import LinodeAPIError
from drctl.cloud.origin_probe import HttpsProbe
from drctl.cloud.traffic import TrafficBackend
from drctl.drill.faults import FaultInjector
from drctl.local.haproxy import HAProxyProcess
from drctl.local.mariadb import LocalCA
from drctl.local.ports import PortPool
from drctl.rehearsal.haproxy_cloud import HAProxyLinode, HAProxyTraffic, LocalIds
from drctl.rehearsal.topology import RegionPorts, RehearsalSpec, haproxy_config, haproxy_files
from drctl.stack.outputs import StackOutputs
from tests.support.binaries import need
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration
REGIONS = ("us-east", "eu-west")


class _Healthz(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"db_reachable": true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _serve(server):
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def _echo_server():
    """A TCP server that keeps connections open: the 'database' behind db-<region>."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def accept():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=lambda c=conn: [c.sendall(d) for d in iter(lambda: c.recv(64), b"")],
                             daemon=True).start()
    threading.Thread(target=accept, daemon=True).start()
    return listener


@pytest.fixture(scope="module")
def haproxy(tmp_path_factory):
    need("haproxy", "openssl")
    spec = RehearsalSpec.from_stack("dr-test", time_scale=0.01)  # monitor every 0.6 s, nodes every 0.1 s
    servers, listeners, ports, reserved = [], [], [], PortPool()
    for region in REGIONS:
        origins = {}
        for n in (1, 2):
            servers.append(_serve(ThreadingHTTPServer(("127.0.0.1", 0), _Healthz)))
            origins[f"web-{n}"] = servers[-1].server_address[1]
        listeners.append(_echo_server())
        ports.append(RegionPorts(region, reserved.port(), origins, reserved.port(), listeners[-1].getsockname()[1]))
    directory = tmp_path_factory.mktemp("haproxy")
    pem = haproxy_files(directory, REGIONS, LocalCA.create(directory / "ca"))
    process = HAProxyProcess(directory, haproxy_config(spec, directory / "api.sock", reserved.port(), ports, pem),
                             directory / "api.sock")
    process.start()
    try:
        yield process, ports
    finally:
        process.stop()
        reserved.release()
        for server in servers:
            server.shutdown()
        for listener in listeners:
            listener.close()


@pytest.fixture
def backend(haproxy):
    process, ports = haproxy
    traffic = HAProxyTraffic(process.api, REGIONS)
    linode = HAProxyLinode(process.api, REGIONS, {p.name: tuple(p.origins) for p in ports}, process.directory)
    wait_until(lambda: traffic.state().serving == "us-east" and all(r.healthy for r in traffic.state().regions.values()))
    yield traffic, linode, ports
    # leave the shared haproxy as the next test expects it
    traffic.route_to("us-east")
    for region in REGIONS:
        traffic.set_region_enabled(region, True)
        for node in linode.node_statuses(LocalIds(REGIONS.index(region)).nodebalancer):
            linode.set_node_mode(node, "accept")
        for fw in (LocalIds(REGIONS.index(region)).nodebalancer_firewall, LocalIds(REGIONS.index(region)).database_firewall):
            linode.set_firewall_rules(fw, {"inbound": [{"action": "ACCEPT"}], "inbound_policy": "DROP"})


def outputs() -> StackOutputs:
    """Stack outputs with the rehearsal's local ids (what FaultInjector reads)."""
    regions = [{"region": r, "role": "primary" if i == 0 else "dr",
                "nodeBalancer": {"id": LocalIds(i).nodebalancer, "ipv4": "127.0.0.1", "hostname": f"nb-{r}"},
                "webInstances": [], "webFirewallId": LocalIds(i).web_firewall,
                "nodeBalancerFirewallId": LocalIds(i).nodebalancer_firewall} for i, r in enumerate(REGIONS)]
    return StackOutputs.model_validate({
        "project": "woocommerce-dr", "stack": "t", "domain": "dr-test.shop.example.com", "trafficMode": "load-balancer",
        "healthPath": "/healthz", "regions": regions,
        "monitor": {"interval": 60, "timeout": 5, "retries": 1, "consecutiveDown": 1, "consecutiveUp": 1,
                    "expectedCodes": "200"},
        "cloudflare": {"accountId": "a", "zoneId": "z"},
        "database": {"mode": "self-managed", "primary": {"region": "us-east", "host": "127.0.0.1", "port": 1,
                                                         "caCert": "-", "adminUser": "drctl", "adminPassword": "-"},
                     "replicas": []},
        "objectives": {"rtoSeconds": 6, "rpoSeconds": 15, "worstCaseDetectionSeconds": 2},
    })


def test_traffic_goes_to_the_primary_pool_while_it_is_healthy(backend):
    traffic, _, ports = backend
    probe = HttpsProbe("dr-test.shop.example.com", "/healthz", timeout=2, port=ports[0].nb_port)
    assert probe("127.0.0.1").ok  # the NodeBalancer speaks TLS, as Cloudflare's origin does
    assert isinstance(traffic, TrafficBackend)  # the runbook's Protocol
    state = traffic.state()
    assert (state.mode, state.serving, state.order) == ("haproxy", "us-east", REGIONS)
    assert all(r.enabled and r.healthy for r in state.regions.values())


def test_rejecting_the_primary_nodes_fails_traffic_over_by_health_checks_alone(backend):
    traffic, linode, _ = backend
    nodes = linode.node_statuses(LocalIds(0).nodebalancer)
    assert [(n.label, n.mode, n.status) for n in nodes] == [("web-1", "accept", "UP"), ("web-2", "accept", "UP")]
    for node in nodes:
        linode.set_node_mode(node, "reject")
    assert {n.mode for n in linode.node_statuses(LocalIds(0).nodebalancer)} == {"reject"}
    wait_until(lambda: traffic.state().serving == "eu-west")
    assert traffic.state().regions["us-east"].healthy is False
    for node in nodes:
        linode.set_node_mode(node, "accept")
    wait_until(lambda: traffic.state().serving == "us-east")


def test_route_to_holds_traffic_in_the_dr_region_even_when_the_old_pool_is_enabled_again(backend):
    traffic, _, _ = backend
    assert traffic.route_to("eu-west").changed
    assert traffic.state().serving == "eu-west" and traffic.state().order == ("eu-west", "us-east")
    assert not traffic.route_to("eu-west").changed  # idempotent
    traffic.set_region_enabled("us-east", False)
    assert traffic.set_region_enabled("us-east", True).changed
    assert traffic.state().serving == "eu-west"  # Cloudflare would not move it back either
    traffic.route_to("us-east")
    assert traffic.state().serving == "us-east"


def test_a_blackholed_nodebalancer_hangs_connections_and_fails_its_pool(backend):
    traffic, linode, ports = backend
    fw = LocalIds(0).nodebalancer_firewall
    original = linode.firewall_rules(fw)
    linode.set_firewall_rules(fw, {**original, "inbound": [], "inbound_policy": "DROP"})
    wait_until(lambda: traffic.state().serving == "eu-west")
    probe = HttpsProbe("dr-test.shop.example.com", "/healthz", timeout=0.3, port=ports[0].nb_port)
    assert probe("127.0.0.1").error == "timed out after 0.3 s"  # not even a reset: the NodeBalancer is cut off
    linode.set_firewall_rules(fw, original)
    wait_until(lambda: traffic.state().serving == "us-east")
    assert linode.firewall_rules(fw) == original


def test_a_database_firewall_blackhole_cuts_established_sessions_too(backend):
    _, linode, ports = backend
    fw = LocalIds(0).database_firewall
    with socket.create_connection(("127.0.0.1", ports[0].db_port), timeout=2) as s:
        s.sendall(b"ping")
        assert s.recv(4) == b"ping"
        linode.set_firewall_rules(fw, {"inbound": [], "inbound_policy": "DROP", "outbound": [],
                                       "outbound_policy": "DROP"})
        assert s.recv(4) == b""  # the session was shut down
    with socket.create_connection(("127.0.0.1", ports[0].db_port), timeout=2) as s:
        s.sendall(b"ping")
        with contextlib.suppress(ConnectionResetError):
            assert s.recv(4) == b""  # no server behind it any more
    linode.set_firewall_rules(fw, {"inbound": [{"action": "ACCEPT"}], "inbound_policy": "DROP"})
    with socket.create_connection(("127.0.0.1", ports[0].db_port), timeout=2) as s:
        s.sendall(b"ping")
        assert s.recv(4) == b"ping"


def test_unknown_ids_are_refused_like_the_api_would(backend):
    _, linode, _ = backend
    with pytest.raises(LinodeAPIError, match="no Cloud Firewall 300"):
        linode.firewall_rules(LocalIds(0).web_firewall)
    with pytest.raises(LinodeAPIError, match="no NodeBalancer 999"):
        linode.node_statuses(999)


@pytest.mark.parametrize("fault", ["nodes-reject", "pool-disable", "firewall-blackhole"])
def test_each_fault_moves_traffic_and_restore_puts_back_exactly_what_it_changed(backend, fault):
    traffic, linode, _ = backend
    faults = FaultInjector(outputs(), traffic, linode)
    before_rules = linode.firewall_rules(LocalIds(0).nodebalancer_firewall)
    done = faults.inject(fault, "us-east")
    assert done and faults.pending
    wait_until(lambda: traffic.state().serving == "eu-west")
    restored = faults.restore()
    assert restored and not any(line.startswith("NOT") for line in restored) and not faults.pending
    wait_until(lambda: traffic.state().serving == "us-east")
    assert {n.mode for n in linode.node_statuses(LocalIds(0).nodebalancer)} == {"accept"}
    assert traffic.state().regions["us-east"].enabled
    assert linode.firewall_rules(LocalIds(0).nodebalancer_firewall) == before_rules
