"""Production settings, login throttling and CSRF on every form (issue #8).

The other security checks live next to what they protect: the signed, expiring client review link in
test_client_review.py; webhook signatures (compared in constant time), size limits and secrets in
test_integrations_webhooks.py; who may do what in test_permission_matrix.py.
"""

import datetime as dt
import os
import runpy
import secrets
import subprocess
import sys
import time
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse
from djmoney.money import Money
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from billing.invoicing import billing_run_create
from billing.lifecycle import invoice_finalize
from billing.models import LineDispute
from billing.review import invoice_send_preview, review_url
from config.throttling import client_address
from tests.billing_helpers import MARCH, approved_time
from tests.factories import (
    PASSWORD,
    ClientFactory,
    ContactFactory,
    ContractFactory,
    ProjectFactory,
    RateFactory,
    TaskTypeFactory,
    TeamMemberFactory,
    UserFactory,
)
from tests.routes import named_routes

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_FILE = ROOT / "config" / "settings.py"


def production_environment(**overrides) -> dict[str, str]:
    """The environment README's deployment section documents for a web process (no DJANGO_* leftovers)."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("DJANGO_", "LOGIN_")) and name not in ("CACHE_URL", "PYTEST_CURRENT_TEST")}
    env.update({
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(60),
        "DJANGO_ALLOWED_HOSTS": "billable.example.com",
        "DJANGO_CSRF_TRUSTED_ORIGINS": "https://billable.example.com",
        "DJANGO_TRUSTED_PROXY_COUNT": "1",
        "DATABASE_URL": "sqlite:////tmp/billable-deploy-check.sqlite3",
        **overrides,
    })
    return env


def deploy_check(**overrides) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=ROOT, env=production_environment(**overrides), capture_output=True, text=True,
                          timeout=120)


def settings_under(monkeypatch, **environment) -> dict:
    """config/settings.py evaluated afresh under this environment (the running settings stay as they are)."""
    for name in [name for name in os.environ if name.startswith(("DJANGO_", "LOGIN_"))]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS_FILE))


# --- Production settings ---------------------------------------------------------------------------------


def test_the_deploy_check_reports_nothing_with_the_documented_environment():
    result = deploy_check()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_deploy_check_does_flag_a_production_install_without_secure_cookies():
    # The check above means something: turning a safeguard off is reported.
    result = deploy_check(DJANGO_SECURE_COOKIES="0")
    assert result.returncode != 0
    assert "security.W012" in result.stderr + result.stdout  # SESSION_COOKIE_SECURE
    assert "security.W016" in result.stderr + result.stdout  # CSRF_COOKIE_SECURE


def test_debug_off_turns_every_safeguard_on(monkeypatch):
    values = settings_under(monkeypatch, DJANGO_DEBUG="0", DJANGO_SECRET_KEY="x" * 60)

    assert values["DEBUG"] is False
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["SESSION_COOKIE_HTTPONLY"] is True
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_HSTS_SECONDS"] == 31_536_000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert values["SECURE_HSTS_PRELOAD"] is True
    assert values["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")
    assert values["X_FRAME_OPTIONS"] == "DENY"
    assert values["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert "django.middleware.csrf.CsrfViewMiddleware" in values["MIDDLEWARE"]
    assert (values["LOGIN_FAILURE_LIMIT"], values["LOGIN_IP_FAILURE_LIMIT"],
            values["LOGIN_FAILURE_WINDOW_SECONDS"]) == (5, 20, 900)


def test_each_safeguard_can_be_set_from_the_environment(monkeypatch):
    values = settings_under(monkeypatch, DJANGO_DEBUG="0", DJANGO_SECURE_COOKIES="0",
                            DJANGO_SECURE_SSL_REDIRECT="0", DJANGO_HSTS_SECONDS="3600",
                            DJANGO_HSTS_INCLUDE_SUBDOMAINS="0", DJANGO_HSTS_PRELOAD="0", DJANGO_BEHIND_PROXY="0",
                            DJANGO_TRUSTED_PROXY_COUNT="2", LOGIN_FAILURE_LIMIT="3", LOGIN_IP_FAILURE_LIMIT="50",
                            LOGIN_FAILURE_WINDOW_MINUTES="30")

    assert (values["SESSION_COOKIE_SECURE"], values["CSRF_COOKIE_SECURE"], values["SECURE_SSL_REDIRECT"]) == \
        (False, False, False)
    assert (values["SECURE_HSTS_SECONDS"], values["SECURE_HSTS_INCLUDE_SUBDOMAINS"],
            values["SECURE_HSTS_PRELOAD"]) == (3600, False, False)
    assert "SECURE_PROXY_SSL_HEADER" not in values
    assert (values["TRUSTED_PROXY_COUNT"], values["LOGIN_FAILURE_LIMIT"], values["LOGIN_IP_FAILURE_LIMIT"],
            values["LOGIN_FAILURE_WINDOW_SECONDS"]) == (2, 3, 50, 1800)


def test_development_keeps_plain_http(monkeypatch):
    values = settings_under(monkeypatch, DJANGO_DEBUG="1")
    assert values["DEBUG"] is True
    assert "SESSION_COOKIE_SECURE" not in values and "SECURE_SSL_REDIRECT" not in values
    assert values["CACHES"]["default"]["BACKEND"].endswith("LocMemCache")


def test_a_cache_url_shares_the_login_counts_through_redis(monkeypatch):
    values = settings_under(monkeypatch, CACHE_URL="redis://cache.internal:6379/1")
    assert values["CACHES"]["default"] == {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                           "LOCATION": "redis://cache.internal:6379/1"}


@pytest.mark.django_db
def test_production_answers_send_hsts_redirect_plain_http_and_mark_cookies_secure(settings):
    settings.DEBUG = False
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.CSRF_COOKIE_SECURE = True
    settings.SESSION_COOKIE_SECURE = True
    client = Client()

    plain = client.get("/accounts/login/")
    assert plain.status_code == 301 and plain["Location"] == "https://testserver/accounts/login/"

    page = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    assert page.status_code == 200
    assert page["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert page["X-Frame-Options"] == "DENY"
    assert page["X-Content-Type-Options"] == "nosniff"
    assert page.cookies["csrftoken"]["secure"] is True


# --- Login throttling ------------------------------------------------------------------------------------

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"


@pytest.fixture
def sam(db):
    return UserFactory(username="sam@firm.test", roles=["staff"])


@pytest.fixture
def fran(db):
    return UserFactory(username="fran@firm.test", roles=["staff", "finance"])


def attempt(username, password, *, url=LOGIN, address="10.0.0.1", client=None):
    client = client or Client()
    response = client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)
    return response, client


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def fail(times, username, *, url=LOGIN, address="10.0.0.1"):
    for _ in range(times):
        response, _ = attempt(username, "wrong-password", url=url, address=address)
        assert response.status_code == 200
        assert "correct" in response.content.decode()  # the usual "enter a correct username and password"


def test_the_sixth_attempt_is_refused_even_with_the_right_password(sam):
    fail(5, sam.username)

    response, client = attempt(sam.username, PASSWORD)

    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert "try again in 15 minutes" in response.content.decode()
    assert int(response["Retry-After"]) in range(890, 901)
    assert not signed_in(client)


def test_four_failures_still_let_the_right_password_in(sam):
    fail(4, sam.username)
    response, client = attempt(sam.username, PASSWORD)
    assert response.status_code == 302 and signed_in(client)


def test_a_locked_username_is_locked_from_every_address_but_others_are_not(sam, fran):
    fail(5, sam.username, address="10.0.0.1")

    from_elsewhere, _ = attempt(sam.username, PASSWORD, address="192.0.2.7")
    assert from_elsewhere.status_code == 429

    other, client = attempt(fran.username, PASSWORD, address="192.0.2.8")
    assert other.status_code == 302 and signed_in(client)


def test_the_lock_lifts_when_the_window_has_passed(sam):
    started = time.time()
    fail(5, sam.username)

    with mock.patch("time.time", return_value=started + 14 * 60):
        still, _ = attempt(sam.username, PASSWORD)
    assert still.status_code == 429
    assert "try again in" in still.content.decode()

    with mock.patch("time.time", return_value=started + 15 * 60 + 5):
        response, client = attempt(sam.username, PASSWORD)
    assert response.status_code == 302 and signed_in(client)


def test_a_success_clears_the_usernames_count(sam):
    fail(4, sam.username)
    assert attempt(sam.username, PASSWORD)[0].status_code == 302
    fail(4, sam.username)

    response, client = attempt(sam.username, PASSWORD)

    assert response.status_code == 302 and signed_in(client)


def test_attempts_on_a_locked_form_do_not_extend_the_lock(sam):
    started = time.time()
    fail(5, sam.username)
    with mock.patch("time.time", return_value=started + 10 * 60):
        assert attempt(sam.username, "wrong-password")[0].status_code == 429
    with mock.patch("time.time", return_value=started + 15 * 60 + 5):
        assert attempt(sam.username, PASSWORD)[0].status_code == 302


def test_one_address_guessing_many_usernames_is_refused_after_its_own_limit(sam, fran):
    for n in range(20):
        fail(1, f"guess{n}@firm.test", address="203.0.113.9")

    response, client = attempt(fran.username, PASSWORD, address="203.0.113.9")
    assert response.status_code == 429 and not signed_in(client)
    # The same user from their own address is fine: only the guessing address is held.
    assert attempt(fran.username, PASSWORD, address="10.0.0.1")[0].status_code == 302


def test_the_admin_login_is_throttled_too_and_shares_the_count(fran):
    fail(3, fran.username, url=ADMIN_LOGIN)
    fail(2, fran.username, url=LOGIN)

    response, client = attempt(fran.username, PASSWORD, url=ADMIN_LOGIN)

    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert not signed_in(client)


def test_the_admin_still_signs_in_staff_with_the_right_password(fran):
    response, client = attempt(fran.username, PASSWORD, url=ADMIN_LOGIN)
    assert response.status_code == 302 and signed_in(client)


def test_behind_the_load_balancer_the_address_is_the_one_it_appended(rf, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    spoofed = rf.get("/", HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.9", REMOTE_ADDR="10.0.0.254")
    assert client_address(spoofed) == "203.0.113.9"
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_address(spoofed) == "10.0.0.254"


def test_behind_the_load_balancer_a_made_up_forwarded_for_does_not_escape_the_lock(sam, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    for n in range(5):
        response = Client().post(LOGIN, {"username": sam.username, "password": "wrong"},
                                 HTTP_X_FORWARDED_FOR=f"198.51.100.{n}, 203.0.113.9")
        assert response.status_code == 200
    for n in range(15):
        Client().post(LOGIN, {"username": f"guess{n}@firm.test", "password": "wrong"},
                      HTTP_X_FORWARDED_FOR=f"198.51.100.{n}, 203.0.113.9")

    response = Client().post(LOGIN, {"username": "fran@firm.test", "password": PASSWORD},
                             HTTP_X_FORWARDED_FOR="192.0.2.1, 203.0.113.9")
    assert response.status_code == 429


def test_a_locked_password_login_leaves_api_tokens_working(sam):
    # Tokens are not guessable: the throttle is about passwords. DRF sets no throttle rates of its own.
    fail(5, sam.username)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=sam).key}")
    assert api.get("/api/v1/task-types/").status_code == 200
    assert "DEFAULT_THROTTLE_RATES" not in django_settings.REST_FRAMEWORK


# --- CSRF on every form ----------------------------------------------------------------------------------


class _Forms(HTMLParser):
    """Every form of a page: its method, action and whether it carries the CSRF token."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._open: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._open = {"method": (attrs.get("method") or "get").lower(), "action": attrs.get("action"),
                          "token": False}
            self.forms.append(self._open)
        elif tag == "input" and self._open is not None and attrs.get("name") == "csrfmiddlewaretoken":
            self._open["token"] = bool(attrs.get("value"))

    def handle_endtag(self, tag):
        if tag == "form":
            self._open = None


def forms_of(html: str) -> list[dict]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def _page_routes():
    """(name, route) of every page outside the admin and the API: the portal, billing, reports, accounts."""
    return [(name, route) for name, route in named_routes().items()
            if not route.startswith(("admin/", "api/"))]


# Pages that are not forms a person fills in, or that only answer a POST.
NOT_FORM_PAGES = {
    "logout": "POST only (405 on GET)",
    "password_change_done": "a confirmation",
    "password_reset_done": "a confirmation",
    "password_reset_complete": "a confirmation",
    "password_reset_confirm": "needs an emailed token; Django's own form with {% csrf_token %}",
    "billing:invoice-pdf": "a PDF",
}


def _billed_client(code: str, member, task_type, day: dt.date):
    client = ClientFactory(code=code, invoice_emails=[f"ap@{code}.test"])
    ContactFactory(client=client, receives_invoices=True)
    project = ProjectFactory(contract=ContractFactory(client=client), code=f"{code}-web")
    RateFactory(contract=project.contract, hourly_rate=Money("120.00", "USD"))
    approved_time(member, project, task_type, [(day, 60)], prefix=code)
    [invoice] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1], client=client).invoices
    assert invoice.total == Decimal("120.00")
    return project, invoice


@pytest.fixture
def paperwork(db):
    """A superuser who is also a team member; a draft out for review with a disputed line, an issued
    invoice, and one editable entry."""
    boss = UserFactory(username="boss@firm.test", is_superuser=True, is_staff=True)
    member = TeamMemberFactory(user=boss, email=boss.email)
    dev = TaskTypeFactory(code="dev")
    project, draft = _billed_client("acme", member, dev, dt.date(2026, 3, 2))
    draft = invoice_send_preview(invoice=draft)
    dispute = LineDispute.objects.create(line=draft.lines.first(), comment="Too long")
    _, issued = _billed_client("globex", member, dev, dt.date(2026, 3, 3))
    issued = invoice_finalize(invoice=issued, issue_date=dt.date(2026, 4, 1))
    [editable] = approved_time(member, project, dev, [(dt.date(2026, 4, 1), 30)], "e")
    return type("Paperwork", (), {"boss": boss, "draft": draft, "issued": issued, "dispute": dispute,
                                  "entry": editable})


ON_THE_ISSUED_INVOICE = {"billing:invoice-void", "billing:invoice-credit"}


def _url(name: str, paperwork) -> str:
    if name == "billing:client-review":
        return review_url(paperwork.draft).removeprefix(django_settings.SITE_URL)
    args = {"portal:entry-edit": [paperwork.entry.pk], "portal:entry-delete": [paperwork.entry.pk],
            "billing:dispute-resolve": [paperwork.dispute.pk]}.get(name)
    if args is None and ("<int:pk>" in dict(_page_routes())[name]):
        args = [paperwork.issued.pk if name in ON_THE_ISSUED_INVOICE else paperwork.draft.pk]
    return reverse(name, args=args)


def test_every_post_form_of_every_page_carries_the_csrf_token(paperwork):
    signed_in_client = Client()
    signed_in_client.force_login(paperwork.boss)
    checked = {}
    for name, _route in _page_routes():
        if name in NOT_FORM_PAGES:
            continue
        url = _url(name, paperwork)
        public = name in ("login", "password_reset", "billing:client-review")
        response = (Client() if public else signed_in_client).get(url)
        if response.status_code == 405:  # POST-only actions are posted from the forms checked here
            continue
        assert response.status_code == 200, (name, url, response.status_code)
        post_forms = [form for form in forms_of(response.content.decode()) if form["method"] == "post"]
        assert all(form["token"] for form in post_forms), (name, [f for f in post_forms if not f["token"]])
        checked[name] = len(post_forms)

    # The pages with forms are really among those checked (a silently empty page would pass the loop).
    for name in ("login", "password_change", "password_reset", "portal:timesheet", "portal:entry-new",
                 "portal:entry-edit", "portal:entry-delete", "billing:import-time", "billing:invoice-list",
                 "billing:invoice-detail", "billing:invoice-void", "billing:invoice-credit",
                 "billing:invoice-delete", "billing:client-review"):
        assert checked.get(name, 0) >= 1, (name, checked.get(name))
