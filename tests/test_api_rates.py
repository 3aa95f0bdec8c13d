"""REST API: rates (per hour, in the contract's currency, one candidate per scope and period)."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from djmoney.money import Money
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from billing.models import Rate
from tests.factories import ContractFactory, ProjectFactory, RateFactory, RoleFactory, TaskTypeFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/rates/"


def api_as(user) -> APIClient:
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def contract():
    return ContractFactory(client__currency="EUR", number="C-104")


def test_finance_creates_a_rate_in_the_contracts_currency(finance, contract):
    role = RoleFactory()
    response = api_as(finance.user).post(URL, {"contract": contract.id, "role": role.id, "hourly_rate": "180.00",
                                               "effective_from": "2026-01-01"}, format="json")
    assert response.status_code == 201, response.data
    rate = Rate.objects.get()
    assert (rate.contract, rate.role, rate.hourly_rate, rate.effective_to) == (
        contract, role, Money("180.00", "EUR"), None)
    data = response.json()
    assert (data["hourly_rate"], data["hourly_rate_currency"], data["level"]) == ("180.00", "EUR", 5)


def test_finance_changes_and_deletes_a_rate(finance, contract):
    rate = RateFactory(contract=contract)
    api = api_as(finance.user)
    response = api.patch(f"{URL}{rate.id}/", {"hourly_rate": "200", "effective_to": "2026-06-30"}, format="json")
    assert response.status_code == 200, response.data
    rate.refresh_from_db()
    assert (rate.hourly_rate, rate.effective_to) == (Money("200.00", "EUR"), dt.date(2026, 6, 30))
    assert api.delete(f"{URL}{rate.id}/").status_code == 204 and not Rate.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"effective_to": "2025-12-31"}, "effective_to", "before it starts"),
        ({"hourly_rate_currency": "USD"}, "hourly_rate", "contract currency EUR"),
        ({"hourly_rate": "-10"}, "hourly_rate", "negative"),
        ({"hourly_rate": "ten"}, "hourly_rate", "valid number"),
        ({"effective_from": None}, "effective_from", "null"),
        ({"contract": None}, "contract", "null"),
        ({"task_type": 999999}, "task_type", "does not exist"),
    ],
)
def test_a_bad_rate_is_a_400_naming_the_field(finance, contract, changes, field, fragment):
    body = {"contract": contract.id, "hourly_rate": "150", "effective_from": "2026-01-01", **changes}
    response = api_as(finance.user).post(URL, body, format="json")
    assert response.status_code == 400
    assert fragment in " ".join(response.json()[field])
    assert not Rate.objects.exists()


def test_a_rate_is_for_a_member_or_a_role_not_both(finance, contract, staff_member):
    response = api_as(finance.user).post(URL, {"contract": contract.id, "member": staff_member.id,
                                               "role": staff_member.role_id, "hourly_rate": "150",
                                               "effective_from": "2026-01-01"}, format="json")
    assert response.status_code == 400 and "not both" in response.json()["role"][0]


def test_a_project_rate_must_be_under_the_same_contract(finance, contract):
    response = api_as(finance.user).post(URL, {"contract": contract.id, "project": ProjectFactory().id,
                                               "hourly_rate": "150", "effective_from": "2026-01-01"}, format="json")
    # The model's own rule (Rate.clean) answers, through full_clean.
    assert response.status_code == 400 and "not under this contract" in response.json()["project"][0]


def test_two_rates_of_one_scope_cannot_overlap(finance, contract):
    task_type = TaskTypeFactory()
    RateFactory(contract=contract, task_type=task_type, effective_from=dt.date(2026, 1, 1),
                effective_to=dt.date(2026, 6, 30))
    api = api_as(finance.user)
    body = {"contract": contract.id, "task_type": task_type.id, "hourly_rate": "160"}

    overlapping = api.post(URL, {**body, "effective_from": "2026-06-01"}, format="json")
    assert overlapping.status_code == 400
    assert "from 2026-01-01 to 2026-06-30 for the same task type" in overlapping.json()["effective_from"][0]
    assert list(overlapping.json()) == ["effective_from"]
    other_scope = api.post(URL, {**body, "task_type": None, "effective_from": "2026-06-01"}, format="json")
    assert other_scope.status_code == 201
    after = api.post(URL, {**body, "effective_from": "2026-07-01"}, format="json")
    assert after.status_code == 201
    assert Rate.objects.count() == 3


def test_a_rate_may_be_changed_within_its_own_period(finance, contract):
    rate = RateFactory(contract=contract, effective_from=dt.date(2026, 1, 1))
    response = api_as(finance.user).patch(f"{URL}{rate.id}/", {"effective_from": "2026-02-01"}, format="json")
    assert response.status_code == 200


def test_staff_and_approvers_cannot_see_rates(staff_member, approver, contract):
    rate = RateFactory(contract=contract)
    for member in (staff_member, approver):
        api = api_as(member.user)
        assert api.get(URL).status_code == 403
        assert api.patch(f"{URL}{rate.id}/", {"hourly_rate": "1"}, format="json").status_code == 403
    rate.refresh_from_db()
    assert rate.hourly_rate == Money("150.00", "EUR")


def test_rate_filters(management, contract):
    old = RateFactory(contract=contract, effective_from=dt.date(2025, 1, 1), effective_to=dt.date(2025, 12, 31))
    current = RateFactory(contract=contract, effective_from=dt.date(2026, 1, 1))
    elsewhere = RateFactory()
    api = api_as(management.user)

    def ids(**params):
        return [row["id"] for row in api.get(URL, params).json()["results"]]

    assert ids(contract=contract.id) == [old.id, current.id]
    assert ids(contract=contract.id, effective_on="2025-06-01") == [old.id]
    assert set(ids(effective_on="2026-03-01")) == {current.id, elsewhere.id}


def test_listing_rates_costs_the_same_queries_for_5_and_50_rows(finance, contract):
    def queries() -> int:
        api = api_as(finance.user)
        with CaptureQueriesContext(connection) as captured:
            assert api.get(URL, {"page_size": 100}).status_code == 200
        return len(captured)

    RateFactory.create_batch(5, contract=contract, role=RoleFactory())
    few = queries()
    RateFactory.create_batch(45, role=RoleFactory())
    assert queries() == few
