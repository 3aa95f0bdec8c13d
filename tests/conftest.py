"""Fixtures for tests that talk to outside APIs: the network stops at loopback, the fakes live there.

The repository's root conftest.py holds the people fixtures; this one adds, for every test under tests/:
- a guard that makes any socket connection to a non-loopback address fail loudly;
- `fake_toggl` / `fake_monday`: the fake providers served on 127.0.0.1 (a free port) with Billable's
  settings pointed at them, and retry waits cut to a few milliseconds.
"""

import ipaddress
import socket

import pytest

from integrations.fakes import FakeMonday, FakeToggl, LoopbackServer


class NetworkBlocked(RuntimeError):
    """Not an OSError on purpose: HTTP clients must not mistake it for a retryable network failure."""


def _loopback(address) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        # A host name: it would be resolved to who knows where.
        return False


@pytest.fixture(autouse=True)
def _network_stops_at_loopback(monkeypatch):
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address):
            raise NetworkBlocked(f"Tests may not reach beyond loopback (tried {address!r}).")

    def connect(sock, address):
        check(sock, address)
        return real_connect(sock, address)

    def connect_ex(sock, address):
        check(sock, address)
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


@pytest.fixture
def fast_retries(settings):
    """Retries keep their logic (Retry-After still asked for and recorded) but sleep milliseconds."""
    settings.INTEGRATIONS_BACKOFF_SECONDS = 0.001
    settings.INTEGRATIONS_WAIT_CAP_SECONDS = 0.01
    settings.INTEGRATIONS_MAX_WAIT_SECONDS = 120
    settings.INTEGRATIONS_MAX_ATTEMPTS = 5
    settings.INTEGRATIONS_TIMEOUT_SECONDS = 2
    return settings


@pytest.fixture
def fake_toggl(fast_retries):
    fake = FakeToggl(webhook_secret="toggl-test-secret")
    with LoopbackServer(fake) as server:
        fast_retries.TOGGL_BASE_URL = server.url
        fast_retries.TOGGL_API_TOKEN = fake.token
        fast_retries.TOGGL_WORKSPACE_ID = str(fake.workspace_id)
        fast_retries.TOGGL_WEBHOOK_SECRET = fake.webhook_secret
        yield fake


@pytest.fixture
def fake_monday(fast_retries):
    fake = FakeMonday()
    with LoopbackServer(fake) as server:
        fast_retries.MONDAY_BASE_URL = server.url
        fast_retries.MONDAY_API_TOKEN = fake.token
        fast_retries.MONDAY_BOARD_IDS = []
        fast_retries.MONDAY_WEBHOOK_SECRET = ""
        yield fake
