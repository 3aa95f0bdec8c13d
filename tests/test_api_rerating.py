"""REST API: changing a rate or a contract's terms re-rates the entries not yet invoiced (after commit)."""

import datetime as dt

import pytest
from djmoney.money import Money
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from billing.invoicing import billing_run_create
from billing.models import Rate
from clients.models import RoundingMode
from projects.models import EntryStatus, TimeEntry
from tests.billing_helpers import approved_time
from tests.factories import ContractFactory, ProjectFactory, RateFactory, TaskTypeFactory

pytestmark = pytest.mark.django_db
RATES = "/api/v1/rates/"


def api_as(user) -> APIClient:
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def firm(staff_member):
    """A contract billing 100.00/h by default, one entry invoiced in February, one logged in March by API."""
    contract = ContractFactory(number="C-104", currency="USD")
    project = ProjectFactory(contract=contract, code="acme-web")
    default = RateFactory(contract=contract, hourly_rate=Money("100.00", "USD"), effective_from=dt.date(2026, 1, 1))
    dev = TaskTypeFactory(code="dev", name="Development")
    [invoiced] = approved_time(staff_member, project, dev, [(dt.date(2026, 2, 2), 60)], prefix="feb")
    billing_run_create(period_start=dt.date(2026, 2, 1), period_end=dt.date(2026, 2, 28))
    response = api_as(staff_member.user).post("/api/v1/time-entries/", {
        "project": project.id, "task_type": dev.id, "work_date": "2026-03-02", "minutes": 50}, format="json")
    assert response.status_code == 201, response.data
    logged = TimeEntry.objects.get(pk=response.json()["id"])
    return type("Firm", (), dict(contract=contract, project=project, default=default, dev=dev, role=staff_member.role,
                                  invoiced=invoiced, logged=logged))


def rated(entry) -> tuple[int, Money, str]:
    entry.refresh_from_db()
    return entry.billable_minutes, entry.amount, entry.status


def test_a_higher_role_rate_re_rates_open_time_but_not_invoiced_time(finance, firm,
                                                                     django_capture_on_commit_callbacks):
    assert rated(firm.logged)[:2] == (50, Money("83.33", "USD"))
    assert rated(firm.invoiced) == (60, Money("100.00", "USD"), EntryStatus.INVOICED)

    with django_capture_on_commit_callbacks(execute=True):
        response = api_as(finance.user).post(RATES, {"contract": firm.contract.id, "role": firm.role.id,
                                                     "hourly_rate": "180.00", "effective_from": "2026-01-01"},
                                             format="json")
    assert response.status_code == 201, response.data

    assert rated(firm.logged)[:2] == (50, Money("150.00", "USD"))
    assert "role" in TimeEntry.objects.get(pk=firm.logged.pk).rate_rule
    # Billed history keeps what it was billed at.
    assert rated(firm.invoiced) == (60, Money("100.00", "USD"), EntryStatus.INVOICED)
    # The API answers the entry with its new amount too.
    data = api_as(finance.user).get(f"/api/v1/time-entries/{firm.logged.id}/").json()
    assert (data["amount"], data["rate"]) == ("150.00", "180.00")


def test_changing_and_deleting_a_rate_re_rates(finance, firm, django_capture_on_commit_callbacks):
    api = api_as(finance.user)
    with django_capture_on_commit_callbacks(execute=True):
        assert api.patch(f"{RATES}{firm.default.id}/", {"hourly_rate": "120"}, format="json").status_code == 200
    assert rated(firm.logged)[:2] == (50, Money("100.00", "USD"))

    role_rate = RateFactory(contract=firm.contract, role=firm.role, hourly_rate=Money("60.00", "USD"))
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"{RATES}{role_rate.id}/").status_code == 204
    assert rated(firm.logged)[:2] == (50, Money("100.00", "USD"))

    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"{RATES}{firm.default.id}/").status_code == 204
    # No rate left: the entry is not billable and waits for review.
    minutes, amount, status = rated(firm.logged)
    assert (minutes, amount.amount, status) == (0, 0, EntryStatus.PENDING)
    assert TimeEntry.objects.get(pk=firm.logged.pk).billability_reason == "no_rate"
    assert rated(firm.invoiced) == (60, Money("100.00", "USD"), EntryStatus.INVOICED)


@pytest.fixture
def queued(monkeypatch):
    """Records what the API queues instead of running it."""
    calls = []

    def record(*, contract_ids, from_date=None):
        calls.append((sorted(set(contract_ids)), from_date))

    monkeypatch.setattr("billing.api.queue_reprocessing", record)
    monkeypatch.setattr("clients.api.queue_reprocessing", record)
    return calls


def test_re_rating_starts_at_the_earliest_day_a_rate_change_touches(finance, firm, queued):
    api = api_as(finance.user)
    created = api.post(RATES, {"contract": firm.contract.id, "task_type": firm.dev.id, "hourly_rate": "90",
                               "effective_from": "2026-03-01"}, format="json")
    rate_id = created.json()["id"]
    api.patch(f"{RATES}{rate_id}/", {"effective_from": "2026-02-15"}, format="json")
    api.patch(f"{RATES}{rate_id}/", {"effective_from": "2026-04-01"}, format="json")
    other = ContractFactory(currency="USD")
    api.patch(f"{RATES}{rate_id}/", {"contract": other.id, "task_type": None}, format="json")
    api.delete(f"{RATES}{rate_id}/")

    assert queued == [
        ([firm.contract.id], dt.date(2026, 3, 1)),
        ([firm.contract.id], dt.date(2026, 2, 15)),
        ([firm.contract.id], dt.date(2026, 2, 15)),  # entries between 15 Feb and 1 Apr lose the rate
        (sorted([firm.contract.id, other.id]), dt.date(2026, 4, 1)),
        ([other.id], dt.date(2026, 4, 1)),
    ]


def test_a_refused_rate_change_queues_nothing(finance, firm, queued):
    api = api_as(finance.user)
    overlapping = api.post(RATES, {"contract": firm.contract.id, "hourly_rate": "90",
                                   "effective_from": "2026-06-01"}, format="json")
    assert overlapping.status_code == 400
    assert api.patch(f"{RATES}{firm.default.id}/", {"hourly_rate": "-1"}, format="json").status_code == 400
    assert queued == [] and Rate.objects.count() == 1


def test_a_contract_term_change_re_rates_the_contract(finance, firm, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api_as(finance.user).patch(f"/api/v1/contracts/{firm.contract.id}/", {
            "rounding_increment": 30, "rounding_mode": RoundingMode.UP}, format="json")
    assert response.status_code == 200, response.data
    # 50 minutes round up to 60 at 100.00/h; the invoiced entry keeps its minutes and amount.
    assert rated(firm.logged)[:2] == (60, Money("100.00", "USD"))
    assert rated(firm.invoiced) == (60, Money("100.00", "USD"), EntryStatus.INVOICED)


def test_a_lower_cap_splits_open_time(finance, firm, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api_as(finance.user).patch(f"/api/v1/contracts/{firm.contract.id}/", {"cap_hours": "1.50"},
                                              format="json")
    assert response.status_code == 200, response.data
    # The invoiced hour keeps its cap use; 30 minutes are left for the March entry.
    firm.logged.refresh_from_db()
    assert (firm.logged.billable_minutes, firm.logged.over_cap_minutes) == (30, 20)


@pytest.mark.parametrize(
    ("changes", "queues"),
    [
        ({"billing_type": "non_billable"}, True),
        ({"cap_hours": "10"}, True),
        ({"monthly_spend_limit": "500"}, True),
        ({"auto_approve_max_minutes": 30}, True),
        ({"retainer_hours": "5"}, True),
        ({"end_date": "2026-12-31"}, True),
        ({"review_window_days": 5}, False),
        ({"auto_finalize": True}, False),
        ({"rounding_increment": 0}, False),  # unchanged: it was 0 already
    ],
)
def test_only_a_change_of_terms_queues_re_rating(finance, firm, queued, changes, queues):
    response = api_as(finance.user).patch(f"/api/v1/contracts/{firm.contract.id}/", changes, format="json")
    assert response.status_code == 200, response.data
    assert queued == ([([firm.contract.id], None)] if queues else [])


def test_a_refused_contract_change_queues_nothing(finance, firm, queued):
    response = api_as(finance.user).patch(f"/api/v1/contracts/{firm.contract.id}/", {"cap_amount": "-5"},
                                          format="json")
    assert response.status_code == 400 and queued == []
