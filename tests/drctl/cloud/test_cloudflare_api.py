"""drctl's Cloudflare layer through the official SDK against the local fake: the error policy."""

from __future__ import annotations

import time

import pytest

from drctl.cloud.cloudflare import (
    CloudflareApi,
    CloudflareConfigError,
    CloudflareDeadlineExceeded,
    CloudflarePermissionError,
    CloudflareRateLimited,
    CloudflareRejected,
    CloudflareTokenRefused,
    CloudflareUnavailable,
    RetryPolicy,
)
from drctl.cloud.deadline import Deadline
from tests.support.fake_cloudflare import FakeCloudflare
from tests.support.hung_server import HungServer

ZONE = "a" * 32


class Recorder:
    """Injected sleep and clock: records the waits instead of waiting."""

    def __init__(self) -> None:
        self.now, self.waits = 0.0, []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture
def timing() -> Recorder:
    return Recorder()


def make_api(fake: FakeCloudflare, timing: Recorder, token: str | None = None, **kwargs) -> CloudflareApi:
    env = {"CLOUDFLARE_API_TOKEN": token or fake.token, "DRCTL_CLOUDFLARE_BASE_URL": fake.base_url}
    return CloudflareApi.from_env(environ=env, sleep=timing.sleep, clock=timing.clock, jitter=lambda: 0.5, **kwargs)


@pytest.fixture
def record(fake_cf: FakeCloudflare) -> str:
    return fake_cf.add_record(ZONE, "A", "shop.example.test", "192.0.2.1", proxied=True)["id"]


def test_429_waits_the_retry_after_then_succeeds(fake_cf, timing, record):
    api = make_api(fake_cf, timing)
    fake_cf.fail(429, retry_after="7")
    assert api.get_dns_record(ZONE, record).content == "192.0.2.1"
    assert timing.waits == [7.0]
    assert [r.status for r in fake_cf.requests] == [429, 200]


def test_429_beyond_the_wait_budget_closes_the_gate_until_retry_after_passes(fake_cf, timing, record):
    api = make_api(fake_cf, timing)
    fake_cf.fail(429, retry_after="300")
    with pytest.raises(CloudflareRateLimited) as err:
        api.get_dns_record(ZONE, record)
    assert err.value.retry_after == 300 and timing.waits == []
    with pytest.raises(CloudflareRateLimited) as held_back:
        api.get_dns_record(ZONE, record)
    assert not held_back.value.sent and len(fake_cf.requests) == 1  # nothing sent inside the lockout
    timing.now += 300
    assert api.get_dns_record(ZONE, record).id == record


def test_5xx_backs_off_exponentially_then_succeeds(fake_cf, timing, record):
    api = make_api(fake_cf, timing)
    fake_cf.fail(502, times=3)
    assert api.get_dns_record(ZONE, record).id == record
    # base 0.5 s doubling, "equal jitter" at its midpoint (jitter() = 0.5): 3/4 of each step.
    assert timing.waits == [0.375, 0.75, 1.5]


def test_backoff_jitter_stays_between_half_and_the_whole_step(fake_cf, timing):
    for jitter, expected in ((0.0, 2.0), (0.999, 3.998)):
        api = make_api(fake_cf, timing)
        api.jitter = lambda j=jitter: j
        assert api._backoff(3) == pytest.approx(expected)


def test_5xx_that_persists_becomes_unavailable_after_the_attempts(fake_cf, timing, record):
    api = make_api(fake_cf, timing, retry=RetryPolicy(attempts=3))
    fake_cf.fail(503, times=10)
    with pytest.raises(CloudflareUnavailable, match="after 3 attempts"):
        api.get_dns_record(ZONE, record)
    assert len(fake_cf.requests) == 3 and len(timing.waits) == 2


def test_a_timeout_is_retried(fake_cf, timing, record):
    env = {"CLOUDFLARE_API_TOKEN": fake_cf.token, "DRCTL_CLOUDFLARE_BASE_URL": fake_cf.base_url}
    api = CloudflareApi.from_env(environ=env, timeout=0.2, sleep=timing.sleep, clock=timing.clock)
    fake_cf.fail(200, delay=0.6)  # answers, but too late
    assert api.get_dns_record(ZONE, record).id == record
    assert len(timing.waits) == 1


def test_403_on_a_write_names_the_dns_write_permission(fake_cf, timing, record):
    api = make_api(fake_cf, timing)
    fake_cf.writes_denied = True
    with pytest.raises(CloudflarePermissionError, match='zone "DNS Write"') as err:
        api.set_dns_content(ZONE, record, "192.0.2.2")
    assert err.value.status == 403 and timing.waits == []


def test_403_on_a_read_names_the_dns_read_permission(fake_cf, timing, record):
    api = make_api(fake_cf, timing)
    fake_cf.fail(403)
    with pytest.raises(CloudflarePermissionError, match='zone "DNS Read"'):
        api.get_dns_record(ZONE, record)


def test_401_says_the_token_is_not_valid_and_never_shows_it(fake_cf, timing, record):
    wrong = "wrong-token-value-1234"
    api = make_api(fake_cf, timing, token=wrong)
    with pytest.raises(CloudflarePermissionError) as err:
        api.get_dns_record(ZONE, record)
    assert "CLOUDFLARE_API_TOKEN" in str(err.value) and "401" in str(err.value)
    assert wrong not in str(err.value) and wrong not in repr(err.value.args)


def test_no_error_message_contains_the_token(fake_cf, timing, record):
    api = make_api(fake_cf, timing, retry=RetryPolicy(attempts=1))
    messages = []
    for status in (400, 403, 404, 409, 429, 500):
        fake_cf.fail(status)
        try:
            api.get_dns_record(ZONE, record)
        except Exception as err:  # every kind: the point is what they say
            messages.append(f"{err} {err!r}")
        timing.now += 1000
    assert len(messages) == 6
    assert not [m for m in messages if fake_cf.token in m]


def test_missing_token_is_a_configuration_error_naming_the_variable():
    with pytest.raises(CloudflareConfigError, match="CLOUDFLARE_API_TOKEN"):
        CloudflareApi.from_env(environ={})


def test_set_dns_content_reads_first_and_writes_only_when_different(fake_cf, timing, record):
    api = make_api(fake_cf, timing)
    _, wrote = api.set_dns_content(ZONE, record, "192.0.2.1")
    assert not wrote and fake_cf.writes() == []
    updated, wrote = api.set_dns_content(ZONE, record, "192.0.2.9")
    assert wrote and updated.content == "192.0.2.9" and updated.proxied is True
    assert [r.method for r in fake_cf.writes()] == ["PATCH"]


def test_a_batch_with_a_missing_delete_applies_nothing(fake_cf, timing, record):
    api = make_api(fake_cf, timing)
    current = api.get_dns_record(ZONE, record)
    with pytest.raises(CloudflareRejected) as err:
        api.batch_dns(ZONE, deletes=["f" * 32], patches=[current.patch("192.0.2.50")])
    assert 81044 in err.value.codes
    assert fake_cf.record(record)["content"] == "192.0.2.1"


def test_list_by_name_is_one_request(fake_cf, timing, record):
    fake_cf.add_record(ZONE, "AAAA", "shop.example.test", "2001:db8::1")
    fake_cf.add_record(ZONE, "A", "other.example.test", "192.0.2.7")
    api = make_api(fake_cf, timing)
    found = api.list_dns_records(ZONE, name="shop.example.test")
    assert sorted(r.type for r in found) == ["A", "AAAA"] and len(fake_cf.requests) == 1


# -- writes after an ambiguous failure: read back, never sent again blindly -------------------------

LEASE = "_drctl-watch.shop.example.test"


@pytest.mark.parametrize("how", ["dropped", "late"])
def test_a_batch_applied_but_its_answer_lost_is_read_back_not_sent_again(fake_cf, timing, record, how):
    api = make_api(fake_cf, timing, timeout=0.3)
    old_lease = fake_cf.add_record(ZONE, "TXT", LEASE, '"drctl-watch holder=w1 expires=100"', ttl=60)
    current = api.get_dns_record(ZONE, record)
    new_lease = {"type": "TXT", "name": LEASE, "content": '"drctl-watch holder=w1 expires=700"', "ttl": 60}
    fake_cf.lose_answer(method="POST", path="/batch$", late=0.8 if how == "late" else 0.0)
    done = api.batch_dns(ZONE, deletes=[old_lease["id"]], patches=[current.patch("192.0.2.2")], posts=[new_lease])
    assert [r.content for r in done.patches] == ["192.0.2.2"]
    [posted] = done.posts
    assert posted.content == new_lease["content"] and fake_cf.find(name=LEASE)[0]["id"] == posted.id
    assert len(fake_cf.log(method="POST", path="/batch$")) == 1  # sent once: applied the first time
    assert fake_cf.record(record)["content"] == "192.0.2.2"


def test_a_create_whose_answer_was_lost_is_not_made_twice(fake_cf, timing):
    api = make_api(fake_cf, timing)
    fake_cf.lose_answer(method="POST", path="/batch$")
    done = api.batch_dns(ZONE, posts=[{"type": "TXT", "name": LEASE, "content": '"holder=w1"', "ttl": 60}])
    [stored] = fake_cf.find(name=LEASE)
    assert [r.id for r in done.posts] == [stored["id"]]


def test_a_batch_that_failed_with_a_5xx_is_read_back_then_sent_again(fake_cf, timing, record):
    api = make_api(fake_cf, timing)
    current = api.get_dns_record(ZONE, record)
    fake_cf.fail(502, method="POST", path="/batch$")
    done = api.batch_dns(ZONE, patches=[current.patch("192.0.2.3")])
    assert [r.content for r in done.patches] == ["192.0.2.3"]
    assert [(r.method, r.status) for r in fake_cf.requests[1:]] == [("POST", 502), ("GET", 200), ("POST", 200)]


def test_a_batch_applied_late_is_recognised_when_its_retry_is_refused(fake_cf, timing, record, monkeypatch):
    """The first attempt timed out, the read-back found nothing yet, then it landed: the retry's
    404 (the record it deletes is gone) is our own success, not a lost compare-and-swap."""
    api = make_api(fake_cf, timing)
    old_lease = fake_cf.add_record(ZONE, "TXT", LEASE, '"holder=w1 expires=100"', ttl=60)
    current = api.get_dns_record(ZONE, record)
    fake_cf.fail(504, method="POST", path="/batch$")  # not applied yet...
    real_get, looked = api.get_dns_record, []

    def read_back_just_before_it_lands(zone_id, record_id):
        found = real_get(zone_id, record_id)
        if not looked:  # ...and applied right after the first read-back saw it was not
            fake_cf.records_by_id[current.id]["content"] = "192.0.2.4"
            del fake_cf.records_by_id[old_lease["id"]]
        looked.append(record_id)
        return found

    monkeypatch.setattr(api, "get_dns_record", read_back_just_before_it_lands)
    done = api.batch_dns(ZONE, deletes=[old_lease["id"]], patches=[current.patch("192.0.2.4")])
    assert [r.content for r in done.patches] == ["192.0.2.4"]
    assert [r.status for r in fake_cf.log(method="POST", path="/batch$")] == [504, 404]


def test_a_record_update_whose_answer_was_lost_is_not_repeated(fake_cf, timing, record):
    api = make_api(fake_cf, timing)
    fake_cf.lose_answer(method="PATCH")
    updated, wrote = api.set_dns_content(ZONE, record, "192.0.2.9")
    assert wrote and updated.content == "192.0.2.9" and len(fake_cf.log(method="PATCH")) == 1


# -- deadlines: retries, Retry-After and socket timeouts all end by the operation's deadline --------

def hung_api(hung: HungServer, **kwargs) -> CloudflareApi:
    env = {"CLOUDFLARE_API_TOKEN": "fake-cloudflare-token", "DRCTL_CLOUDFLARE_BASE_URL": f"{hung.url}/client/v4"}
    return CloudflareApi.from_env(environ=env, **kwargs)


def test_a_hung_api_fails_within_the_operation_budget_with_a_clear_message():
    with HungServer() as hung:
        api = hung_api(hung, budget=1.0)  # the default request timeout (10 s) is longer
        started = time.monotonic()
        with pytest.raises(CloudflareDeadlineExceeded) as err:
            api.get_dns_record(ZONE, "f" * 32)
        took = time.monotonic() - started
    assert 0.9 <= took < 1.5
    assert str(err.value).startswith(f"read DNS record {'f' * 32}: no answer from Cloudflare within the 1 s budget "
                                     "of one Cloudflare API operation (gave up after 1.0 s, 1 attempt(s); last: ")


def test_a_callers_deadline_bounds_the_operations_inside_it():
    with HungServer() as hung:
        api = hung_api(hung)  # its own budget: 30 s
        started = time.monotonic()
        with api.within(Deadline.after(0.5, "the 0.5 s left of the traffic step")), \
                pytest.raises(CloudflareDeadlineExceeded, match=r"within the 0\.5 s left of the traffic step"):
            api.list_dns_records(ZONE, name="shop.example.test")
        assert time.monotonic() - started < 1.0


def test_a_retry_after_longer_than_the_deadline_is_not_waited_for(fake_cf, timing, record):
    api = make_api(fake_cf, timing, budget=5.0)
    fake_cf.fail(429, retry_after="7")  # below the 60 s cap, beyond the 5 s budget
    with pytest.raises(CloudflareRateLimited) as err:
        api.get_dns_record(ZONE, record)
    assert timing.waits == [] and err.value.retry_after == 7 and len(fake_cf.requests) == 1


def test_backing_off_stops_when_the_next_wait_would_pass_the_deadline(fake_cf, timing, record):
    api = make_api(fake_cf, timing, budget=1.0)
    fake_cf.fail(503, times=10)
    with pytest.raises(CloudflareUnavailable, match="after 2 attempts"):
        api.get_dns_record(ZONE, record)
    assert timing.waits == [0.375]  # the next, 0.75 s, would end past the 1 s budget


# -- error codes, and bodies built from typed values ------------------------------------------------

def test_an_invalid_or_revoked_token_is_reported_as_such_not_as_a_missing_permission(fake_cf, timing, record):
    api = make_api(fake_cf, timing)
    fake_cf.fail(403, code=9109, message="Invalid access token", method="PATCH")
    with pytest.raises(CloudflareTokenRefused) as err:
        api.set_dns_content(ZONE, record, "192.0.2.2")
    message = str(err.value)
    assert err.value.kind == "token" and err.value.codes == (9109,)
    assert "refused the API token itself (403, Cloudflare error 9109: Invalid access token)" in message
    assert "invalid, expired or revoked" in message and "lacks" not in message


def test_a_403_without_a_token_code_still_names_the_missing_permission(fake_cf, timing, record):
    api = make_api(fake_cf, timing)
    fake_cf.fail(403, code=10000, message="Authentication error")
    with pytest.raises(CloudflarePermissionError, match='lacks the zone "DNS Read"') as err:
        api.get_dns_record(ZONE, record)
    assert not isinstance(err.value, CloudflareTokenRefused)


def test_a_custom_ttl_is_written_back_as_an_integer(fake_cf, timing):
    rec = fake_cf.add_record(ZONE, "A", "db.example.test", "192.0.2.1", proxied=False, ttl=300)
    api = make_api(fake_cf, timing)
    updated, _ = api.set_dns_content(ZONE, rec["id"], "192.0.2.2")
    [patch] = fake_cf.log(method="PATCH")
    assert type(patch.body["ttl"]) is int and patch.body["ttl"] == 300 and patch.body["proxied"] is False
    assert updated.ttl == 300 and type(updated.ttl) is int


def test_the_fake_refuses_a_float_ttl_as_cloudflare_does(fake_cf, timing, record):
    api = make_api(fake_cf, timing)
    current = api.get_dns_record(ZONE, record)
    with pytest.raises(CloudflareRejected, match="9208: ttl must be a number") as err:
        api.batch_dns(ZONE, patches=[{**current.patch("192.0.2.5"), "ttl": 300.0}])
    assert err.value.status == 400 and fake_cf.record(record)["content"] == "192.0.2.1"
