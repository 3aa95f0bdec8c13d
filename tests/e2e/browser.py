"""Playwright helpers for the end-to-end tests: launching Debian's Chromium, logging in through the login
form, screenshots, and the flash messages every page shows.

Playwright never downloads a browser here: it drives /usr/bin/chromium (Debian's package, installed by
.ci/run) through `executable_path`.
"""

import os
import re
from pathlib import Path

CHROMIUM = Path(os.environ.get("BILLABLE_E2E_CHROMIUM", "/usr/bin/chromium"))
# No sandbox (CI runs as root); no GPU, QUIC, first-run or background traffic: the browser talks only to
# the live server on loopback.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Long enough for a slow CI machine's first page (Chromium start-up), short enough to fail fast.
TIMEOUT_MS = 15_000


def launch_chromium(playwright):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


def new_page(browser, base_url: str):
    """A page in a fresh context: its own cookies, so each person of the workflow has their own session."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900},
                                  accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    return context.new_page()


def log_in(page, username: str, password: str) -> None:
    """Log in through the login form, as a person would, and wait for the signed-in page."""
    from playwright.sync_api import expect

    page.goto("/accounts/login/")
    page.get_by_label("Email or username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("contentinfo")).to_contain_text("signed in as")


def expect_message(page, text: str | re.Pattern) -> None:
    """The flash message a page shows after an action (success, info, warning or error)."""
    from playwright.sync_api import expect

    expect(page.locator("main .message, ul.messagelist li").filter(has_text=text).first).to_be_visible()


class Screenshots:
    """Full-page screenshots at the workflow's key steps, numbered in the order they were taken."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.taken: list[Path] = []

    def take(self, page, name: str) -> Path:
        path = self.folder / f"{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path


def readable(html: str, limit: int = 300) -> str:
    """A response body as the text a person would read (for failure messages)."""
    text = re.sub(r"<(style|script)\b.*?</\1>", " ", html, flags=re.S | re.I)
    return " ".join(re.sub(r"<[^>]+>", " ", text).split())[:limit]
