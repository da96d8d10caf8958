"""`drctl watch` as users run it: flags, exit codes, --once, metrics, hooks, the service loop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from drctl import cli
from tests.support.watch_shop import REGIONS, Shop, outputs_doc

REPO = Path(__file__).resolve().parents[3]


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exit_:  # argparse rejects a flag
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


# -- --once ----------------------------------------------------------------------------------------

def test_once_with_every_region_healthy_exits_0_and_prints_the_table(shop: Shop, capsys):
    code, out, _ = run_cli(shop.flags("--once"), capsys)
    assert code == 0
    assert out.splitlines()[0].split() == ["REGION", "ADDRESS", "STATE", "LAST", "PROBE", "RECORD"]
    rows = [line.split(None, 3) for line in out.splitlines()[1:3]]
    assert [row[:3] for row in rows] == [["us-east", "127.0.0.2", "up"], ["eu-west", "127.0.0.3", "up"]]
    assert rows[0][3].endswith("A, AAAA")
    assert out.rstrip().endswith("ok: us-east is up")
    assert shop.record_writes() == 0


def test_once_with_the_primary_down_switches_and_exits_0(shop: Shop, capsys):
    shop.origin("us-east").healthy = False
    code, out, _ = run_cli(shop.flags("--once"), capsys)
    assert code == 0 and "switched the DNS records to eu-west" in out
    assert shop.region_pointed_at() == "eu-west" and shop.record_writes() == 1
    assert shop.fake.find(name="_drctl-watch.shop.example.test") == []  # lease released at exit


def test_once_with_every_region_down_exits_1(shop: Shop, capsys):
    for origin in shop.origins:
        origin.healthy = False
    code, out, _ = run_cli(shop.flags("--once"), capsys)
    assert code == 1 and "FAILED: every region is down" in out
    assert shop.record_writes() == 0


def test_once_dry_run_reports_the_planned_switch_and_writes_nothing(shop: Shop, capsys):
    shop.origin("us-east").healthy = False
    code, out, _ = run_cli(shop.flags("--once", "--dry-run", "-o", "json"), capsys)
    doc = json.loads(out)
    assert code == 0 and doc["dryRun"] and doc["decision"]["target"] == "eu-west" and not doc["switched"]
    assert shop.fake.writes() == []


def test_once_cannot_read_the_records_exits_1_naming_the_permission(shop: Shop, capsys):
    shop.fake.fail(403, times=100)
    code, out, _ = run_cli(shop.flags("--once", "--lease", "none"), capsys)
    assert code == 1 and 'zone "DNS Read"' in out


# -- usage errors: exit 2, one message naming the flag, no traceback ------------------------------

@pytest.mark.parametrize(("extra", "named"), [
    (["--interval", "0"], "--interval"),
    (["--fall", "zero"], "--fall"),
    (["--timeout", "0.5", "--interval", "0.2"], "--timeout"),
    (["--expected-codes", "ok"], "--expected-codes"),
    (["--lease-ttl", "30"], "--lease-ttl"),
    (["--alert-webhook", "ftp://example.test/hook"], "--alert-webhook"),
    (["--ca-file", "/nonexistent/ca.pem"], "--ca-file"),
    (["--once", "--auto-failback"], "--auto-failback"),
    (["--lease", "file", "--lease-file", "/nonexistent/dir/watch.lock"], "--lease-file"),
])
def test_bad_flags_exit_2_naming_the_flag(shop: Shop, capsys, extra, named):
    code, _, err = run_cli(shop.flags(*extra), capsys)
    assert code == 2 and named in err and "Traceback" not in err


def test_busy_metrics_port_exits_2_naming_the_flag(shop: Shop, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        code, _, err = run_cli(shop.flags("--metrics-port", str(busy.getsockname()[1])), capsys)
    assert code == 2 and "--metrics-port" in err


def test_unreadable_outputs_file_exits_2(tmp_path, capsys):
    code, _, err = run_cli(["watch", "--outputs", str(tmp_path / "missing.json")], capsys)
    assert code == 2 and "--outputs" in err


def test_load_balancer_stack_is_refused_with_the_reason(tmp_path, capsys, monkeypatch):
    path = tmp_path / "lb.json"
    path.write_text(json.dumps(outputs_doc(list(REGIONS[:2]), [], mode="load-balancer")))
    code, _, err = run_cli(["watch", "--outputs", str(path)], capsys)
    assert code == 2 and "traffic mode 'load-balancer'" in err


def test_missing_token_exits_2_naming_the_variable(shop: Shop, capsys, monkeypatch):
    monkeypatch.delenv("CLOUDFLARE_API_TOKEN")
    code, _, err = run_cli(shop.flags("--once"), capsys)
    assert code == 2 and "CLOUDFLARE_API_TOKEN is not set" in err


def test_monitor_settings_are_the_defaults(shop: Shop):
    from drctl.watch import command as watch

    args = cli.build_parser().parse_args(["watch", "--outputs", str(shop.outputs)])
    wd = watch.build(args, log_stream=open(os.devnull, "w"))  # noqa: SIM115 - closed with the test process
    shop.built.append(wd)
    s = wd.settings
    assert (s.interval, s.fall, s.rise) == (60, 2, 2) and wd.probe.timeout == 5


# -- metrics and hooks ----------------------------------------------------------------------------

def test_metrics_endpoint_serves_probes_states_switches_and_api_errors(shop: Shop):
    wd = shop.watchdog("--metrics-port", "0")
    [started] = shop.events(wd, "metrics")
    for _ in range(2):
        wd.run_cycle()
    shop.origin("us-east").healthy = False
    shop.fake.fail(403, method="POST", path="/batch$")
    for _ in range(3):
        wd.run_cycle()
    with urllib.request.urlopen(f"http://127.0.0.1:{started['port']}/metrics", timeout=5) as response:
        text = response.read().decode()
    assert 'drctl_watch_probes_total{region="us-east",result="success"} 2.0' in text
    assert 'drctl_watch_probes_total{region="us-east",result="failure"} 3.0' in text
    assert 'drctl_watch_region_state{drctl_watch_region_state="down",region="us-east"} 1.0' in text
    assert 'drctl_watch_switches_total{from_region="us-east",kind="failover",to_region="eu-west"} 1.0' in text
    assert 'drctl_watch_api_errors_total{kind="permission"} 1.0' in text
    assert 'drctl_watch_record_region{region="eu-west"} 1.0' in text
    assert "drctl_watch_lease_held 1.0" in text
    last_switch = next(line for line in text.splitlines() if line.startswith("drctl_watch_last_switch_timestamp_seconds "))
    assert float(last_switch.split()[1]) > 1.7e9
    assert shop.fake.token not in text


class Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        Hook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()


def test_webhook_gets_a_json_event_on_all_down(shop: Shop):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    Hook.received = []
    try:
        wd = shop.watchdog("--alert-webhook", f"http://127.0.0.1:{server.server_address[1]}/hook")
        for origin in shop.origins:
            origin.healthy = False
        for _ in range(4):
            wd.run_cycle()
    finally:
        server.shutdown()
        server.server_close()
    [event] = Hook.received
    assert event["event"] == "all_down" and event["domain"] == "shop.example.test"


def test_a_failing_alert_hook_is_logged_and_counted_not_raised(shop: Shop):
    wd = shop.watchdog("--alert-command", "false")
    for origin in shop.origins:
        origin.healthy = False
    for _ in range(3):
        wd.run_cycle()
    [failed] = shop.events(wd, "alert_failed")
    assert failed["alert"] == "all_down" and "exited 1" in failed["error"]


# -- the service: a real process, stopped by SIGTERM -----------------------------------------------

def test_service_loop_fails_over_serves_metrics_and_releases_the_lease_on_sigterm(shop: Shop):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "drctl", *shop.flags("--metrics-port", "0", "--holder-id", "svc")],
                            cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    lines: list[dict] = []
    reader = threading.Thread(target=lambda: lines.extend(json.loads(line) for line in proc.stderr), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 20
        while not any(e["event"] == "lease" and e["held"] for e in lines) and time.monotonic() < deadline:
            time.sleep(0.05)
        shop.origin("us-east").healthy = False
        while shop.region_pointed_at() != "eu-west" and time.monotonic() < deadline:
            time.sleep(0.05)
        port = next(e["port"] for e in lines if e["event"] == "metrics")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            assert b"drctl_watch_switches_total" in response.read()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
        reader.join(5)
    assert code == 0
    assert shop.region_pointed_at() == "eu-west" and shop.record_writes() == 1
    assert [e["event"] for e in lines][-1] == "stop"
    assert shop.fake.find(name="_drctl-watch.shop.example.test") == []


def test_a_region_without_ipv6_for_the_aaaa_record_is_refused_at_start(tmp_path, capsys, monkeypatch):
    doc = outputs_doc(list(REGIONS[:2]), ["a" * 32, "b" * 32])
    doc["drctl"]["regions"][1]["nodeBalancer"]["ipv6"] = None
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(doc))
    code, _, err = run_cli(["watch", "--outputs", str(path)], capsys)
    assert code == 2 and "eu-west has no IPv6 address" in err
