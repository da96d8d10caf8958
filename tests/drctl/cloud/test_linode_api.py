"""drctl's Linode API layer against the local fake, through the official SDK."""

import re
import time

import pytest

from drctl.cloud.linode import LinodeAPI, LinodeAPIError, blackhole_rules
from tests.support.fake_linode import AnswerLoss, FakeLinode, Fault
from tests.support.hung_server import HungServer


@pytest.fixture
def linode():
    with FakeLinode() as fake:
        fake.add_nodebalancer(7, (80, 443), [("web-0", "192.168.1.10"), ("web-1", "192.168.1.11")])
        fake.add_firewall(9, {"inbound": [{"action": "ACCEPT", "protocol": "TCP", "ports": "3306",
                                           "addresses": {"ipv4": ["192.0.2.1/32"]}}],
                              "inbound_policy": "DROP", "outbound": [], "outbound_policy": "ACCEPT"})
        fake.databases[5] = {"allow_list": ["192.0.2.1/32"]}
        yield fake


def api(fake, **kw):
    return LinodeAPI(token=fake.token, base_url=fake.base_url, retry_interval=0.01, **kw)


def test_node_statuses_cover_every_config(linode):
    nodes = api(linode).node_statuses(7)
    assert sorted((n.port, n.label, n.address, n.status) for n in nodes) == [
        (80, "web-0", "192.168.1.10:80", "UP"), (80, "web-1", "192.168.1.11:80", "UP"),
        (443, "web-0", "192.168.1.10:443", "UP"), (443, "web-1", "192.168.1.11:443", "UP"),
    ]


def test_set_node_mode_reaches_the_api(linode):
    client = api(linode)
    node = client.node_statuses(7)[0]
    client.set_node_mode(node, "reject")
    assert [n.mode for n in client.node_statuses(7) if n.node_id == node.node_id] == ["reject"]


def test_rate_limit_is_retried_after_the_wait(linode):
    linode.faults.append(Fault("GET", r"/nodebalancers/7/configs", 429, {"Retry-After": "1"}))
    assert len(api(linode).node_statuses(7)) == 4
    assert [r[1] for r in linode.requests[:2]] == ["/nodebalancers/7/configs"] * 2


def test_server_errors_are_retried(linode):
    linode.faults.append(Fault("GET", r"/nodebalancers/7/configs", 503, times=2))
    assert len(api(linode).node_statuses(7)) == 4


def test_forbidden_names_the_missing_scope(linode):
    linode.faults.append(Fault("PUT", r"/networking/firewalls/9/rules", 403))
    client = api(linode)
    with pytest.raises(LinodeAPIError) as err:
        client.set_firewall_rules(9, blackhole_rules(client.firewall_rules(9)))
    assert str(err.value) == (
        "Linode API refused to change the rules of firewall 9 (HTTP 403): the token needs the "
        "'Firewalls: Read/Write' scope"
    )
    assert linode.token not in str(err.value)


def test_blackhole_drops_everything(linode):
    client = api(linode)
    client.set_firewall_rules(9, blackhole_rules(client.firewall_rules(9)))
    assert linode.firewalls[9] == {"inbound": [], "inbound_policy": "DROP", "outbound": [], "outbound_policy": "DROP"}


def test_firewall_rules_read_back_unchanged(linode):
    client = api(linode)
    rules = client.firewall_rules(9)
    assert "fingerprint" not in rules and "version" not in rules
    client.set_firewall_rules(9, rules)
    assert client.firewall_rules(9) == rules


def test_managed_database_allow_list_can_be_emptied(linode):
    client = api(linode)
    assert client.database_allow_list(5) == ["192.0.2.1/32"]
    client.set_database_allow_list(5, [])
    assert linode.databases[5]["allow_list"] == []


def test_unreachable_api_is_one_clear_error():
    client = LinodeAPI(token="t", base_url="http://127.0.0.1:9/v4", timeout=0.5, retry_interval=0.01)
    with pytest.raises(LinodeAPIError, match=r"Linode API unreachable while trying to read NodeBalancer 7"):
        client.node_statuses(7)


def test_missing_token_is_reported(monkeypatch):
    monkeypatch.delenv("LINODE_TOKEN", raising=False)
    with pytest.raises(LinodeAPIError, match="LINODE_TOKEN is not set"):
        LinodeAPI()


def test_a_firewall_change_applied_but_its_answer_lost_is_read_back_not_sent_again(linode):
    client = api(linode)
    linode.losses.append(AnswerLoss("PUT", r"/networking/firewalls/9/rules"))
    client.set_firewall_rules(9, blackhole_rules(client.firewall_rules(9)))
    assert linode.firewalls[9]["inbound_policy"] == "DROP"
    assert [(m, p) for m, p, _ in linode.writes()] == [("PUT", "/networking/firewalls/9/rules")]


def test_a_node_change_refused_with_a_5xx_is_read_back_then_sent_again(linode):
    client = api(linode)
    node = client.node_statuses(7)[0]
    path = f"/nodebalancers/7/configs/{node.config_id}/nodes/{node.node_id}"
    linode.faults.append(Fault("PUT", path, 503))
    client.set_node_mode(node, "reject")
    assert [(m, p) for m, p, _ in linode.requests[-3:]] == [("PUT", path), ("GET", path), ("PUT", path)]
    assert [n.mode for n in client.node_statuses(7) if n.node_id == node.node_id] == ["reject"]


def test_an_allow_list_change_applied_but_its_answer_lost_counts_as_done(linode):
    client = api(linode)
    linode.losses.append(AnswerLoss("PUT", r"/databases/mysql/instances/5"))
    client.set_database_allow_list(5, [])
    assert linode.databases[5]["allow_list"] == [] and len(linode.writes()) == 1


def test_a_hung_api_fails_within_the_operation_budget_with_a_clear_message():
    with HungServer() as hung:
        client = LinodeAPI(token="t", base_url=f"{hung.url}/v4", budget=1.0)  # request timeout: 15 s
        started = time.monotonic()
        with pytest.raises(LinodeAPIError) as err:
            client.firewall_rules(9)
        took = time.monotonic() - started
    # The budget, not the 15 s request timeout, ended the call (bounds far from both: a loaded
    # machine is late, never early).
    assert 0.9 <= took < 10
    assert re.match(r"Linode API gave no answer within the 1 s budget of one Linode API operation while trying to "
                    r"read the rules of firewall 9 \(gave up after \d+\.\d s, 1 attempt\(s\)", str(err.value))


def test_a_retry_after_beyond_the_deadline_ends_the_call_at_once_saying_so(linode):
    linode.faults.append(Fault("GET", r"/nodebalancers/7/configs", 429, {"Retry-After": "120"}))
    started = time.monotonic()
    with pytest.raises(LinodeAPIError, match=r"rate limit while trying to read NodeBalancer 7: it asks to wait "
                                             r"120 s, which the 5 s budget of one Linode API operation does not leave"):
        api(linode, budget=5.0).node_statuses(7)
    assert time.monotonic() - started < 60 and len(linode.requests) == 1  # it did not wait the 120 s


def test_an_invalid_token_is_reported_as_such_not_as_a_missing_scope(linode):
    client = LinodeAPI(token="not-the-token", base_url=linode.base_url, retry_interval=0.01)
    with pytest.raises(LinodeAPIError) as err:
        client.firewall_rules(9)
    assert str(err.value) == (
        "Linode API refused the token while trying to read the rules of firewall 9 (HTTP 401: Invalid Token): "
        "LINODE_TOKEN is invalid, expired or revoked; create a personal access token with the "
        "'Firewalls: Read Only' scope"
    )
