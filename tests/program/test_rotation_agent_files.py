"""The rotation agent as every web node receives it: its settings name the NodeBalancer's ports and
network, its unit puts the node back in rotation whenever it stops, and the node starts it at boot.
(tests/program/test_web_stack_rotation.py runs it for real against nginx and PHP-FPM.)"""

import shlex

import pytest
import yaml

from components import web_node
from components.firewall_rules import NODEBALANCER_NETWORK
from components.web_tier import PORTS
from tests.support.web_tier_runs import INSTANCE, user_data, web_run


@pytest.fixture(scope="module")
def nodes():
    return web_run("three-regions").of_type(INSTANCE)


def cloud_config(instance) -> dict:
    return yaml.safe_load(web_node.decode_user_data(user_data(instance)))


def written(instance) -> dict[str, str]:
    return {f["path"]: f["content"] for f in cloud_config(instance)["write_files"]}


def rotation_env(instance) -> dict[str, str]:
    lines = written(instance)["/etc/woocommerce-dr/rotation.env"].splitlines()
    return {key: shlex.split(value)[0] for key, value in (line.split("=", 1) for line in lines)}


def test_every_node_refuses_only_the_nodebalancers_network_on_the_nodebalancers_ports(nodes):
    for instance in nodes:
        env = rotation_env(instance)
        assert env["SOURCE"] == NODEBALANCER_NETWORK == "192.168.255.0/24"
        assert [int(p) for p in env["PORTS"].split(",")] == list(PORTS) == [443, 80]


def test_the_agent_asks_the_nodes_own_php_page_that_does_not_touch_the_database(nodes):
    env = rotation_env(nodes[0])
    assert env["PROBE_URL"] == "http://127.0.0.1/livez"
    files = written(nodes[0])
    livez = files["/usr/local/share/woocommerce-dr/livez.php"]
    assert "mysqli" not in livez and "woocommerce_dr_connect" not in livez
    snippet = files["/etc/nginx/snippets/woocommerce-dr-livez.conf"]
    assert "allow 127.0.0.1;" in snippet and "deny all;" in snippet
    assert "include snippets/woocommerce-dr-livez.conf;" in files["/etc/nginx/sites-available/woocommerce"]


def test_the_agents_reaction_fits_in_one_default_nodebalancer_check_cycle():
    from components.config import NodeBalancerSpec

    spec = NodeBalancerSpec()
    rotation = web_node.Rotation(ports=PORTS, source=NODEBALANCER_NETWORK)
    assert rotation.reaction_seconds == rotation.fall * (rotation.probe_timeout + rotation.probe_interval) == 6
    assert rotation.reaction_seconds < spec.check_interval * spec.check_attempts


def test_stopping_or_crashing_the_agent_puts_the_node_back_in_rotation(nodes):
    unit = written(nodes[0])["/etc/systemd/system/woocommerce-dr-rotation.service"]
    assert "ExecStopPost=/usr/local/sbin/woocommerce-dr-rotation stop" in unit
    assert "Restart=always" in unit


def test_each_node_starts_the_agent_once_nginx_is_configured_and_has_nftables(nodes):
    for instance in nodes:
        config = cloud_config(instance)
        assert "nftables" in config["packages"]
        bootstrap = written(instance)["/usr/local/sbin/woocommerce-dr-bootstrap"]
        main = bootstrap[bootstrap.index("main() {"):]
        assert main.index("configure_nginx") < main.index("start_rotation_agent")
        assert "systemctl enable --now woocommerce-dr-rotation.service" in bootstrap
