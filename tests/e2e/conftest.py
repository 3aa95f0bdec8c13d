"""Fixtures of the browser tests: Chromium (or a skip, outside CI only, saying why) and a screenshot folder."""

import os
from pathlib import Path

import pytest
from django.db import connections

from tests.e2e.browser import CHROMIUM, Screenshots, launch_chromium


def _missing(reason: str) -> None:
    # In CI the browser test must run: a missing browser is a broken CI set-up, not a reason to skip.
    if os.environ.get("CI"):
        pytest.fail(f"The browser test must run in CI: {reason}.")
    pytest.skip(f"Browser test skipped: {reason} (`.ci/run` installs it; or apt-get install chromium).")


@pytest.fixture
def chromium(monkeypatch):
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} is not installed")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed (pip install -e '.[dev]')")
    # Playwright's sync API keeps an asyncio loop on this thread, which makes Django refuse ORM calls here
    # ("async context"). The test thread only reads and seeds between page loads; the live server serves
    # from its own threads, so the guard can be lifted for this test.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()
            # ORM calls made while Playwright ran opened connections in its context, where pytest-django's
            # clean-up does not see them: close them here, or the test database cannot be dropped.
            connections.close_all()


@pytest.fixture
def screenshots(tmp_path) -> Screenshots:
    """Screenshots go to BILLABLE_E2E_SCREENSHOTS when set (to look at them), else to the test's tmp dir."""
    folder = os.environ.get("BILLABLE_E2E_SCREENSHOTS")
    return Screenshots(Path(folder) if folder else tmp_path / "screenshots")
