"""The HTTPS probe against real TLS origins, and the fall/rise tracker."""

from __future__ import annotations

import pytest

from drctl.cloud.origin_probe import (
    DOWN,
    UNKNOWN,
    UP,
    HealthTracker,
    HttpsProbe,
    probe_all,
    status_matches,
    valid_expected_codes,
)
from tests.support.https_origins import DOMAIN, HEALTH_PATH, Certificates, Origins


@pytest.fixture
def origins(certs: Certificates):
    with Origins(certs, ["127.0.0.2", "127.0.0.3"]) as started:
        yield started


def probe_for(origins: Origins, **kwargs) -> HttpsProbe:
    return HttpsProbe(kwargs.pop("domain", DOMAIN), HEALTH_PATH, kwargs.pop("timeout", 1.0), port=origins.port, **kwargs)


def test_probe_connects_to_the_given_address_with_sni_and_host_of_the_domain(origins):
    result = probe_for(origins)("127.0.0.3")
    assert result.ok and result.status == 200
    assert origins["127.0.0.3"].seen == [(DOMAIN, DOMAIN, HEALTH_PATH)]
    assert origins["127.0.0.2"].seen == []


def test_unhealthy_status_fails_the_probe(origins):
    origins["127.0.0.2"].healthy = False
    result = probe_for(origins)("127.0.0.2")
    assert not result.ok and result.status == 503 and "expected 200" in result.error


def test_certificate_is_verified_against_the_ca_file(origins, certs):
    assert probe_for(origins, ca_file=str(certs.ca))("127.0.0.2").ok


def test_certificate_from_another_ca_fails_verification(origins, certs):
    result = probe_for(origins, ca_file=str(certs.other_ca))("127.0.0.2")
    assert not result.ok and "not trusted" in result.error


def test_certificate_must_name_the_domain_when_verified(origins, certs):
    result = probe_for(origins, ca_file=str(certs.ca), domain="other.example.test")("127.0.0.2")
    assert not result.ok and "not trusted" in result.error


def test_without_a_ca_file_the_certificate_is_accepted_and_sni_still_sent(origins):
    assert probe_for(origins)("127.0.0.2").ok
    assert origins["127.0.0.2"].seen[0][0] == DOMAIN


def test_an_origin_that_never_answers_fails_at_the_timeout(origins):
    origins["127.0.0.2"].hang = True
    result = probe_for(origins, timeout=0.3)("127.0.0.2")
    assert not result.ok and "timed out" in result.error


def test_a_closed_port_fails_the_probe(origins):
    result = probe_for(origins)("127.0.0.9")
    assert not result.ok and result.error == "connection refused"


def test_probe_all_reports_every_region(origins):
    origins["127.0.0.3"].healthy = False
    results = probe_all(probe_for(origins), {"us-east": "127.0.0.2", "eu-west": "127.0.0.3"})
    assert {k: v.ok for k, v in results.items()} == {"us-east": True, "eu-west": False}


@pytest.mark.parametrize(("status", "expected", "ok"), [
    (200, "200", True), (204, "200", False), (204, "2xx", True), (301, "2xx", False), (301, "200, 301", True),
])
def test_expected_codes_follow_cloudflare_syntax(status, expected, ok):
    assert status_matches(status, expected) is ok


def test_expected_codes_are_validated():
    assert valid_expected_codes("2xx") and valid_expected_codes("200,204")
    assert not valid_expected_codes("ok") and not valid_expected_codes("")


def test_tracker_goes_down_only_after_fall_consecutive_failures():
    t = HealthTracker(fall=3, rise=2)
    for ok in (True, True):
        t.observe(ok, 0)
    assert t.state == UP
    assert [t.observe(False, n) for n in (1, 2)] == [None, None] and t.state == UP
    assert t.observe(False, 3) == DOWN


def test_tracker_success_resets_the_failure_count():
    t = HealthTracker(fall=2, rise=1)
    t.observe(True, 0)
    for n, ok in enumerate([False, True, False, True, False, True]):
        t.observe(ok, n)
    assert t.state == UP


def test_tracker_comes_up_after_rise_successes_and_knows_since_when():
    t = HealthTracker(fall=1, rise=3)
    assert t.state == UNKNOWN
    t.observe(True, 10)
    t.observe(True, 11)
    assert t.state == UNKNOWN
    assert t.observe(True, 12) == UP
    assert t.up_for(20) == 8
