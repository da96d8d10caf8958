"""The policy pack as `pulumi preview --policy-pack policy` runs it: the Python language host starts
`python -m pulumi.policy <engine> policy/`, reads the analyzer's port from its first line of output
and talks gRPC to it. Here the test is the engine: same entry point, same RPCs."""

from __future__ import annotations

import subprocess
import sys
import threading

import grpc
import pytest
from google.protobuf import empty_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from drctl.plan.engine import Registration
from tests.support.policy_pack import POLICY_DIR, pack, registration_request, urn_for

STARTUP_SECONDS = 30


@pytest.fixture(scope="module")
def analyzer():
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:0", str(POLICY_DIR)],
        cwd=POLICY_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    first_line: list[bytes] = []
    reader = threading.Thread(target=lambda: first_line.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(STARTUP_SECONDS)
    try:
        if not first_line or not first_line[0].strip().isdigit():
            process.kill()
            pytest.fail(f"the policy pack did not start: {process.stderr.read().decode(errors='replace')}")
        channel = grpc.insecure_channel(f"127.0.0.1:{int(first_line[0])}")
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def test_the_pack_describes_every_policy_as_mandatory(analyzer):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "woocommerce-dr"
    assert [p.name for p in info.policies] == [p.name for p in pack.POLICIES]
    assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.MANDATORY}


def test_a_violation_comes_back_as_a_mandatory_diagnostic_with_description_and_fix(analyzer):
    firewall = Registration(
        urn=urn_for(pack.FIREWALL, "prod-us-east-web-fw"), type=pack.FIREWALL, name="prod-us-east-web-fw",
        parent="", custom=True, id="1",
        inputs={"label": "web", "inboundPolicy": "DROP", "tags": ["project:woocommerce-dr", "stack:prod"],
                "inbounds": [{"label": "ssh", "action": "ACCEPT", "protocol": "TCP", "ports": "22",
                              "ipv4s": ["0.0.0.0/0"]}]},
    )
    response = analyzer.Analyze(registration_request(firewall))
    assert [(d.policyName, d.enforcementLevel, d.urn) for d in response.diagnostics] == [
        ("firewall-no-public-admin-ports", analyzer_pb2.MANDATORY, ""),
    ]
    assert response.diagnostics[0].message == (
        "No firewall rule accepts SSH (TCP 22) or MySQL (TCP 3306) from the whole internet (0.0.0.0/0 or ::/0).\n"
        "Firewall 'web' rule 'ssh' accepts SSH (TCP 22) from 0.0.0.0/0: allow SSH only from "
        "woocommerce-dr:access.adminCidrs."
    )


@pytest.mark.parametrize(
    "run_name", ["prod_run", "dr_test_run", "three_region_run", "prod_preview_run", "dr_test_preview_run"],
)
def test_the_real_stacks_pass_the_running_pack(analyzer, run_name, request):
    run = request.getfixturevalue(run_name)
    diagnostics = [
        (r.name, d.policyName, d.message)
        for r in run.resources if r.custom
        for d in analyzer.Analyze(registration_request(r)).diagnostics
    ]
    assert diagnostics == []
