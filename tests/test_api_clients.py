"""REST API: clients, contacts and contracts (finance writes; model rules answer with 400 field errors)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from djmoney.money import Money
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from clients.models import BillingType, Client, Contact, Contract, ContractStatus
from tests.factories import ClientFactory, ContactFactory, ContractFactory, ProjectFactory

pytestmark = pytest.mark.django_db


def api_as(user) -> APIClient:
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


# Clients


def test_finance_creates_reads_changes_and_deletes_a_client(finance):
    api = api_as(finance.user)
    created = api.post("/api/v1/clients/", {
        "code": "acme", "name": "Acme Corp", "currency": "EUR", "billing_period": "weekly",
        "consolidation": "project", "line_grouping": "member", "payment_terms_days": 14, "tax_rate": "20.00",
        "invoice_emails": ["ap@acme.test"], "is_active": True,
    }, format="json")
    assert created.status_code == 201, created.data
    client = Client.objects.get(code="acme")
    assert (client.name, client.currency, client.billing_period, client.tax_rate, client.invoice_emails) == (
        "Acme Corp", "EUR", "weekly", Decimal("20.00"), ["ap@acme.test"])
    assert created.json()["tax_rate"] == "20.00"

    url = f"/api/v1/clients/{client.id}/"
    assert api.get(url).json()["code"] == "acme"
    assert api.patch(url, {"name": "Acme Inc", "is_active": False}, format="json").status_code == 200
    client.refresh_from_db()
    assert (client.name, client.is_active) == ("Acme Inc", False)
    assert api.delete(url).status_code == 204
    assert not Client.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"invoice_emails": ["not-an-email"]}, "invoice_emails"),
        ({"invoice_emails": "ap@acme.test"}, "invoice_emails"),
        ({"tax_rate": "120"}, "tax_rate"),
        ({"tax_rate": "-1"}, "tax_rate"),
        ({"currency": "XYZ"}, "currency"),
        ({"billing_period": "daily"}, "billing_period"),
        ({"code": "has spaces"}, "code"),
    ],
)
def test_a_bad_client_is_a_400_naming_the_field(finance, changes, field):
    response = api_as(finance.user).post("/api/v1/clients/", {"code": "acme", "name": "Acme", **changes},
                                         format="json")
    assert response.status_code == 400 and field in response.json()
    assert not Client.objects.exists()


def test_a_duplicate_client_code_is_a_400(finance):
    ClientFactory(code="acme")
    response = api_as(finance.user).post("/api/v1/clients/", {"code": "acme", "name": "Again"}, format="json")
    assert response.status_code == 400 and "code" in response.json()


def test_a_client_with_contracts_cannot_be_deleted(finance):
    contract = ContractFactory()
    response = api_as(finance.user).delete(f"/api/v1/clients/{contract.client_id}/")
    assert response.status_code == 400
    assert "contracts" in response.json()["non_field_errors"][0]
    assert Client.objects.filter(id=contract.client_id).exists()


def test_staff_cannot_read_or_write_clients(staff_member):
    client = ClientFactory(name="Acme")
    api = api_as(staff_member.user)
    assert api.get("/api/v1/clients/").status_code == 403
    assert api.post("/api/v1/clients/", {"code": "new", "name": "New"}, format="json").status_code == 403
    assert api.patch(f"/api/v1/clients/{client.id}/", {"name": "Hacked"}, format="json").status_code == 403
    assert api.delete(f"/api/v1/clients/{client.id}/").status_code == 403
    client.refresh_from_db()
    assert client.name == "Acme" and Client.objects.count() == 1


def test_an_approver_reads_clients_but_not_contracts_and_writes_nothing(approver):
    ClientFactory()
    api = api_as(approver.user)
    assert api.get("/api/v1/clients/").status_code == 200
    assert api.get("/api/v1/contracts/").status_code == 403
    assert api.post("/api/v1/clients/", {"code": "new", "name": "New"}, format="json").status_code == 403
    assert Client.objects.count() == 1


def test_management_reads_everything_and_writes_nothing(management):
    contract = ContractFactory()
    api = api_as(management.user)
    for path in ("clients", "contacts", "contracts"):
        assert api.get(f"/api/v1/{path}/").status_code == 200
    assert api.patch(f"/api/v1/contracts/{contract.id}/", {"status": "ended"}, format="json").status_code == 403
    contract.refresh_from_db()
    assert contract.status == ContractStatus.ACTIVE


def test_client_filters(finance):
    acme = ClientFactory(code="acme", currency="EUR")
    ClientFactory(code="globex", is_active=False)
    api = api_as(finance.user)
    assert [c["id"] for c in api.get("/api/v1/clients/", {"currency": "EUR"}).json()["results"]] == [acme.id]
    assert [c["code"] for c in api.get("/api/v1/clients/", {"is_active": "false"}).json()["results"]] == ["globex"]


# Contacts


def test_finance_manages_contacts(finance):
    client = ClientFactory()
    api = api_as(finance.user)
    created = api.post("/api/v1/contacts/", {"client": client.id, "name": "Pat", "email": "pat@acme.test",
                                             "receives_invoices": True}, format="json")
    assert created.status_code == 201, created.data
    contact = Contact.objects.get()
    assert (contact.client, contact.email, contact.receives_invoices, contact.receives_weekly_summary) == (
        client, "pat@acme.test", True, False)
    url = f"/api/v1/contacts/{contact.id}/"
    assert api.patch(url, {"receives_weekly_summary": True}, format="json").status_code == 200
    contact.refresh_from_db()
    assert contact.receives_weekly_summary
    assert api.delete(url).status_code == 204 and not Contact.objects.exists()


def test_a_contact_email_is_unique_per_client(finance):
    contact = ContactFactory(email="pat@acme.test")
    response = api_as(finance.user).post("/api/v1/contacts/", {
        "client": contact.client_id, "name": "Pat again", "email": "pat@acme.test"}, format="json")
    assert response.status_code == 400 and Contact.objects.count() == 1


def test_a_contact_of_an_unknown_client_is_a_400(finance):
    response = api_as(finance.user).post("/api/v1/contacts/", {"client": 999999, "name": "Pat",
                                                               "email": "pat@acme.test"}, format="json")
    assert response.status_code == 400 and "client" in response.json()


# Contracts


def contract_body(of_client, **changes):
    return {"client": of_client.id, "number": "C-900", "billing_type": "time_and_materials",
            "start_date": "2026-01-01", **changes}


def test_finance_creates_a_contract_in_the_clients_currency_with_money_terms(finance):
    client = ClientFactory(currency="EUR")
    response = api_as(finance.user).post("/api/v1/contracts/", contract_body(
        client, cap_hours="100", cap_amount="15000.00", monthly_spend_limit="4000", rounding_increment=15,
        rounding_mode="nearest"), format="json")

    assert response.status_code == 201, response.data
    contract = Contract.objects.get()
    assert contract.currency == "EUR"
    assert contract.cap_amount == Money("15000.00", "EUR")
    assert contract.monthly_spend_limit == Money("4000.00", "EUR")
    assert (contract.cap_hours, contract.rounding_increment, contract.rounding_mode) == (Decimal("100"), 15,
                                                                                         "nearest")
    data = response.json()
    assert (data["cap_amount"], data["cap_amount_currency"]) == ("15000.00", "EUR")
    assert (data["retainer_amount"], data["retainer_amount_currency"]) == (None, None)


def test_a_money_term_in_another_currency_is_a_400(finance):
    client = ClientFactory(currency="USD")
    response = api_as(finance.user).post("/api/v1/contracts/", contract_body(
        client, cap_amount="500.00", cap_amount_currency="EUR"), format="json")
    assert response.status_code == 400
    assert "contract currency USD" in response.json()["cap_amount"][0]
    assert not Contract.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"end_date": "2025-12-31"}, "end_date", "before it starts"),
        ({"billing_type": "retainer"}, "retainer_amount", "monthly fee"),
        ({"billing_type": "fixed_fee", "end_date": "2026-12-31"}, "fixed_fee_amount", "needs its fee"),
        ({"cap_amount": "0"}, "cap_amount", "more than zero"),
        ({"cap_hours": "0"}, "cap_hours", "greater than or equal"),
        ({"retainer_amount": "-5"}, "retainer_amount", "negative"),
        ({"cap_amount": "lots"}, "cap_amount", "valid number"),
        ({"cap_amount_currency": "EUR"}, "cap_amount", "together with"),
        ({"start_date": "01/01/2026"}, "start_date", "wrong format"),
        ({"client": 999999}, "client", "does not exist"),
    ],
)
def test_a_bad_contract_is_a_400_naming_the_field(finance, changes, field, fragment):
    response = api_as(finance.user).post("/api/v1/contracts/", contract_body(ClientFactory(), **changes),
                                         format="json")
    assert response.status_code == 400
    assert fragment in " ".join(response.json()[field])
    assert not Contract.objects.exists()


def test_changing_a_contract_keeps_the_model_rules(finance):
    contract = ContractFactory(client__currency="USD", cap_amount=Money("100", "USD"))
    api = api_as(finance.user)
    url = f"/api/v1/contracts/{contract.id}/"

    assert api.patch(url, {"cap_amount": "250.00"}, format="json").status_code == 200
    contract.refresh_from_db()
    assert contract.cap_amount == Money("250.00", "USD")

    refused = api.patch(url, {"end_date": "2025-01-01"}, format="json")
    assert refused.status_code == 400 and "end_date" in refused.json()
    contract.refresh_from_db()
    assert contract.end_date is None

    assert api.patch(url, {"cap_amount": None}, format="json").status_code == 200
    contract.refresh_from_db()
    assert contract.cap_amount is None


def test_a_contract_with_projects_cannot_be_deleted_but_a_bare_one_can(finance):
    used = ProjectFactory().contract
    bare = ContractFactory(billing_type=BillingType.NON_BILLABLE)
    api = api_as(finance.user)
    assert api.delete(f"/api/v1/contracts/{used.id}/").status_code == 400
    assert api.delete(f"/api/v1/contracts/{bare.id}/").status_code == 204
    assert list(Contract.objects.all()) == [used]


def test_contract_filters(finance):
    acme = ClientFactory()
    mine = ContractFactory(client=acme, start_date=dt.date(2026, 1, 1))
    ended = ContractFactory(status=ContractStatus.ENDED)
    api = api_as(finance.user)
    assert [c["id"] for c in api.get("/api/v1/contracts/", {"client": acme.id}).json()["results"]] == [mine.id]
    assert [c["id"] for c in api.get("/api/v1/contracts/", {"status": "ended"}).json()["results"]] == [ended.id]
    assert api.get("/api/v1/contracts/", {"client": 999999}).status_code == 400


def test_staff_cannot_create_a_contract(staff_member):
    response = api_as(staff_member.user).post("/api/v1/contracts/", contract_body(ClientFactory()), format="json")
    assert response.status_code == 403 and not Contract.objects.exists()


# Query counts stay flat as rows grow


def _list_queries(user, path) -> int:
    api = api_as(user)
    with CaptureQueriesContext(connection) as queries:
        response = api.get(path, {"page_size": 100})
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize(
    ("path", "make"),
    [
        ("/api/v1/clients/", lambda: ClientFactory()),
        ("/api/v1/contacts/", lambda: ContactFactory()),
        ("/api/v1/contracts/", lambda: ContractFactory(cap_amount=Money("10", "USD"))),
    ],
)
def test_lists_cost_the_same_queries_for_5_and_50_rows(finance, path, make):
    for _ in range(5):
        make()
    few = _list_queries(finance.user, path)
    for _ in range(45):
        make()
    assert _list_queries(finance.user, path) == few
