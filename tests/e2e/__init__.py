"""End-to-end tests: a real Chromium (Debian's, through Playwright) against pytest-django's live server."""
