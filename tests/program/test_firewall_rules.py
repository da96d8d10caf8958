"""Reading Linode firewall rules: port lists as Linode writes them, and what counts as the whole
internet."""

import pytest

from tests.support.policy_pack import firewall_rules


@pytest.mark.parametrize(("spec", "ranges"), [
    ("22", ((22, 22),)),
    ("80,443", ((80, 80), (443, 443))),
    ("80-90, 91", ((80, 90), (91, 91))),
    ("1-65535", ((1, 65535),)),
    (None, ((1, 65535),)),
    ("", ((1, 65535),)),
])
def test_port_specs_parse_into_ranges(spec, ranges):
    assert firewall_rules.port_ranges(spec) == ranges


@pytest.mark.parametrize("spec", ["ssh", "0", "90-80", "70000", "22-", "22,,80"])
def test_malformed_port_specs_are_refused(spec):
    with pytest.raises(firewall_rules.BadPortSpec):
        firewall_rules.port_ranges(spec)


@pytest.mark.parametrize(("source", "whole"), [
    ("0.0.0.0/0", True), ("::/0", True), ("::0/0", True), (" 0.0.0.0/0 ", True),
    ("0.0.0.0/1", False), ("192.168.255.0/24", False), ("2001:db8::/32", False), ("not-an-ip", False),
])
def test_only_a_slash_zero_is_the_whole_internet(source, whole):
    assert firewall_rules.is_whole_internet(source) is whole
