"""The shared HTTP layer against a loopback fake: what is retried, how long it waits, what it never repeats."""

import socket

import pytest

from integrations.fakes.base import Answer, FakeService, LoopbackServer
from integrations.http import ApiSession, PermanentError, RetryableError, seconds_from_header
from tests.conftest import NetworkBlocked


class Echo(FakeService):
    name = "echo"

    def handle(self, request):
        return Answer.json({"method": request.method, "agent": request.header("User-Agent")})


@pytest.fixture
def echo(fast_retries):
    fake = Echo()
    with LoopbackServer(fake) as server:
        yield fake, ApiSession(provider="echo", base_url=server.url)


def test_a_read_is_retried_on_429_and_5xx_honouring_retry_after(echo):
    fake, session = echo
    fake.fail_next(1, status=429, headers={"Retry-After": "4"})
    fake.fail_next(1, status=502)

    assert session.get_json("/things")["method"] == "GET"
    assert [r.status for r in fake.requests] == [429, 502, 200]
    assert session.retries == 2 and session.waits[0] == 4.0 and session.waits[1] < 0.01


def test_a_create_is_never_repeated_blindly(echo):
    fake, session = echo
    fake.fail_next(1, status=503)
    with pytest.raises(RetryableError):
        session.post_json("/things", json={"name": "new"})
    assert len(fake.requests) == 1

    fake.fail_next(1, status=503)
    assert session.post_json("/search", json={}, idempotent=True)["method"] == "POST"
    assert len(fake.requests) == 3


def test_a_timeout_is_retried_for_reads(echo, settings):
    fake, session = echo
    settings.INTEGRATIONS_TIMEOUT_SECONDS = 0.2
    # A session reads its timeout when it is made.
    session = ApiSession(provider="echo", base_url=session.base_url)
    fake.slow_next(1, seconds=0.6)
    assert session.get_json("/slow")["method"] == "GET" and session.retries == 1


def test_asked_to_wait_too_long_it_gives_up_at_once(echo, settings):
    fake, session = echo
    settings.INTEGRATIONS_MAX_WAIT_SECONDS = 10
    session = ApiSession(provider="echo", base_url=session.base_url)
    fake.fail_next(1, status=429, headers={"Retry-After": "3600"})
    with pytest.raises(RetryableError) as error:
        session.get_json("/things")
    assert error.value.retry_after == 3600 and len(fake.requests) == 1


def test_giving_up_after_the_last_attempt(echo):
    fake, session = echo
    fake.fail_next(10, status=500)
    with pytest.raises(RetryableError, match="server error 500"):
        session.get_json("/things")
    assert len(fake.requests) == 5


def test_refused_credentials_and_bad_requests_are_permanent(echo):
    fake, session = echo
    fake.fail_next(1, status=401)
    with pytest.raises(PermanentError, match="credentials were refused"):
        session.get_json("/things")
    fake.fail_next(1, status=422, body={"message": "Nope"})
    with pytest.raises(PermanentError, match="422"):
        session.get_json("/things")
    assert len(fake.requests) == 2


def test_a_refused_connection_is_retryable(fast_retries):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    session = ApiSession(provider="echo", base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(RetryableError, match="failed"):
        session.get_json("/nothing-listens-here")
    assert session.retries == 4


def test_every_call_names_us(echo):
    _, session = echo
    assert session.get_json("/")["agent"].startswith("Billable/")


def test_retry_after_as_seconds_or_date():
    assert seconds_from_header("12") == 12.0
    assert seconds_from_header("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert seconds_from_header("soon") is None and seconds_from_header(None) is None


def test_tests_cannot_reach_beyond_loopback(fast_retries):
    session = ApiSession(provider="outside", base_url="http://93.184.215.14")
    with pytest.raises(NetworkBlocked):
        session.get_json("/")
    with pytest.raises(NetworkBlocked), socket.create_connection(("10.1.2.3", 80), timeout=0.1):
        pass
