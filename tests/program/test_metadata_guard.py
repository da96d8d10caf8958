"""The metadata-service guard of the web nodes (metadata-guard.nft, as the program renders it):
checked by nft, then loaded for real in a network namespace of its own, where a stand-in metadata
service listens on 169.254.169.254 and root and an unprivileged user try to reach it."""

import os
import subprocess
import sys

import pytest

from tests.support.binaries import need
from tests.support.web_stack import rendered_files
from tests.support.web_tier_runs import INSTANCE, web_run

pytestmark = pytest.mark.integration

GUARD = "/etc/woocommerce-dr/metadata-guard.nft"
UNIT = "/etc/systemd/system/woocommerce-dr-metadata-guard.service"
NOBODY = 65534

# Runs inside `unshare --net`: a loopback with the metadata address, a listener there, the ruleset,
# then one connection as root and one as `nobody`. Prints what each got.
PROBE = """
import os, socket, subprocess, sys
nft, ip, ruleset, nobody = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
subprocess.run([ip, "link", "set", "lo", "up"], check=True)
subprocess.run([ip, "addr", "add", "169.254.169.254/32", "dev", "lo"], check=True)
listener = socket.create_server(("169.254.169.254", 80))
subprocess.run([nft, "-f", ruleset], check=True)
subprocess.run([nft, "-f", ruleset], check=True)  # loading it twice (a re-run) is fine
def attempt():
    try:
        socket.create_connection(("169.254.169.254", 80), timeout=5).close()
        return "connected"
    except OSError as err:
        return type(err).__name__
def as_user(uid):
    pid = os.fork()
    if pid == 0:
        os.setgroups([]); os.setgid(uid); os.setuid(uid)
        os._exit(0 if attempt() == "connected" else 1)
    return "connected" if os.waitpid(pid, 0)[1] == 0 else "refused"
print("root", attempt())
print("nobody", as_user(nobody))
print("rules", subprocess.run([nft, "list", "table", "inet", "woocommerce_dr_metadata"],
                              capture_output=True, text=True, check=True).stdout.count("reject"))
"""


@pytest.fixture(scope="module")
def node_files():
    return rendered_files(web_run("prod"), "eu-west-web-0")


def test_the_guard_is_a_ruleset_nft_accepts(node_files, tmp_path):
    binaries = need("nft", "unshare")
    path = tmp_path / "guard.nft"
    path.write_text(node_files[GUARD]["content"])
    # In a namespace of its own: nft checks against the kernel, and this must touch nothing else.
    result = subprocess.run([binaries["unshare"], "--net", binaries["nft"], "--check", "--file", str(path)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_once_loaded_only_root_reaches_the_metadata_service(node_files, tmp_path):
    if os.geteuid() != 0 and not os.environ.get("CI"):
        pytest.skip("needs root for a network namespace with nftables")
    binaries = need("nft", "unshare", "ip")
    path = tmp_path / "guard.nft"
    path.write_text(node_files[GUARD]["content"])
    result = subprocess.run(
        [binaries["unshare"], "--net", sys.executable, "-c", PROBE, binaries["nft"], binaries["ip"], str(path),
         str(NOBODY)], capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["root connected", "nobody refused", "rules 2"]


def test_the_bootstrap_closes_the_metadata_service_last_and_for_every_boot(node_files):
    bootstrap = node_files["/usr/local/sbin/woocommerce-dr-bootstrap"]["content"]
    main = bootstrap[bootstrap.index("main() {"):bootstrap.index('main "$@"')]
    assert main.rstrip().splitlines()[-3:] == [
        "  systemctl enable --now woocommerce-dr-metadata-guard.service",
        '  log "done: $REGION web node ready"',
        "}",
    ]
    assert f"ExecStart=/usr/sbin/nft -f {GUARD}" in node_files[UNIT]["content"]
    assert "WantedBy=multi-user.target" in node_files[UNIT]["content"]


def test_every_web_node_carries_the_guard():
    run = web_run("three-regions")
    for instance in run.of_type(INSTANCE):
        assert GUARD in rendered_files(run, instance.name), instance.name
