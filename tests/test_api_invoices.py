"""REST API: invoices (read-only, changed only by their actions), billing runs, and an entry's invoice."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from djmoney.money import Money
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from billing.invoicing import BillingConflict, billing_run_create
from billing.lifecycle import invoice_finalize, invoice_mark_paid
from billing.models import (
    Allocation,
    BillingRun,
    ClientMessage,
    Invoice,
    InvoiceEvent,
    InvoiceKind,
    InvoiceStatus,
    LineDispute,
)
from clients.models import Consolidation
from projects.models import EntryStatus, TimeEntry
from tests.billing_helpers import MARCH, approved_time
from tests.factories import (
    ClientFactory,
    ContactFactory,
    ContractFactory,
    ProjectFactory,
    RateFactory,
    TaskTypeFactory,
)

pytestmark = pytest.mark.django_db
URL = "/api/v1/invoices/"
RUNS = "/api/v1/billing-runs/"


def api_as(user) -> APIClient:
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def billed(staff_member):
    """A draft for Acme: entries of 60, 90 and 30 minutes at 120.00/h, 10 % tax: 360.00 + 36.00 = 396.00."""
    client = ClientFactory(code="acme", name="Acme", tax_rate=Decimal("10.00"), payment_terms_days=14,
                           invoice_emails=["ap@acme.test"])
    ContactFactory(client=client, email="cfo@acme.test", receives_invoices=True)
    project = ProjectFactory(contract=ContractFactory(client=client, number="C-1"), code="acme-web")
    RateFactory(contract=project.contract, hourly_rate=Money("120.00", "USD"))
    dev = TaskTypeFactory(code="dev", name="Development")
    entries = approved_time(staff_member, project, dev,
                            [(dt.date(2026, 3, 2), 60), (dt.date(2026, 3, 3), 90), (dt.date(2026, 3, 4), 30)])
    [invoice] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices
    return type("Billed", (), {"invoice": invoice, "entries": entries, "client": client, "project": project,
                               "dev": dev, "member": staff_member})


def finalized(billed) -> Invoice:
    return invoice_finalize(invoice=billed.invoice, issue_date=dt.date(2026, 4, 1))


def statuses(entries) -> list[str]:
    return list(TimeEntry.objects.filter(pk__in=[e.pk for e in entries]).order_by("id")
                .values_list("status", flat=True))


# Reading


def test_finance_reads_an_invoice_with_its_lines_and_the_entries_behind_them(finance, billed):
    data = api_as(finance.user).get(f"{URL}{billed.invoice.id}/").json()

    assert (data["id"], data["number"], data["kind"], data["status"]) == (billed.invoice.id, None, "invoice", "draft")
    # Acme consolidates by client: one invoice per client and currency, so no single contract.
    assert (data["client"], data["contract"], data["currency"]) == (billed.client.id, None, "USD")
    assert (data["period_start"], data["period_end"], data["issue_date"], data["due_date"]) == (
        "2026-03-01", "2026-03-31", None, None)
    assert (data["subtotal"], data["tax"], data["total"], data["credited_invoice"]) == (
        "360.00", "36.00", "396.00", None)
    [line] = data["lines"]
    assert (line["description"], line["kind"], line["quantity"], line["unit_rate"], line["amount"]) == (
        "Development", "time", "3.00", "120.00", "360.00")
    assert line["time_entries"] == [entry.id for entry in billed.entries]


def test_the_list_filters_by_status_client_kind_and_period(finance, billed, staff_member):
    invoice = finalized(billed)
    other_client = ClientFactory(code="globex")
    project = ProjectFactory(contract=ContractFactory(client=other_client))
    RateFactory(contract=project.contract)
    approved_time(staff_member, project, billed.dev, [(dt.date(2026, 2, 10), 60)], prefix="feb")
    [february] = billing_run_create(period_start=dt.date(2026, 2, 1), period_end=dt.date(2026, 2, 28)).invoices
    api = api_as(finance.user)

    def ids(**params):
        response = api.get(URL, params)
        assert response.status_code == 200, response.data
        return [row["id"] for row in response.json()["results"]]

    assert ids() == [invoice.id, february.id]  # latest period first
    assert ids(status="finalized") == [invoice.id]
    assert ids(status="draft") == [february.id]
    assert ids(client=other_client.id) == [february.id]
    assert ids(kind="credit") == []
    assert ids(kind="invoice") == [invoice.id, february.id]
    assert ids(period_after="2026-03-01") == [invoice.id]
    assert ids(period_before="2026-02-28") == [february.id]
    assert ids(period_end_after="2026-02-01", period_end_before="2026-02-28") == [february.id]
    assert api.get(URL, {"status": "lost"}).status_code == 400
    assert api.get(URL, {"period_after": "March"}).status_code == 400


def test_listing_costs_the_same_queries_for_2_and_20_invoices_with_lines(finance, staff_member):
    client = ClientFactory(consolidation=Consolidation.PROJECT)
    contract = ContractFactory(client=client)
    RateFactory(contract=contract)
    dev = TaskTypeFactory(code="dev")

    def bill(count: int, month: int) -> None:
        for n in range(count):
            project = ProjectFactory(contract=contract)
            approved_time(staff_member, project, dev, [(dt.date(2026, month, 2 + n), 60),
                                                       (dt.date(2026, month, 3 + n), 30)], prefix=f"m{month}-{n}")
        start = dt.date(2026, month, 1)
        billing_run_create(period_start=start, period_end=start.replace(day=28))

    def queries() -> int:
        api = api_as(finance.user)
        with CaptureQueriesContext(connection) as captured:
            response = api.get(URL, {"page_size": 100})
        assert response.status_code == 200
        assert all(row["lines"][0]["time_entries"] for row in response.json()["results"])
        return len(captured)

    bill(2, 1)
    few = queries()
    bill(18, 2)
    assert Invoice.objects.count() == 20
    # The same statements whatever the page holds: count, invoices, their lines, the lines' allocations.
    assert queries() == few


def test_who_sees_invoices(staff_member, approver, project_manager, management, billed):
    for caller in (staff_member, approver, project_manager):
        api = api_as(caller.user)
        assert api.get(URL).status_code == 403
        assert api.get(f"{URL}{billed.invoice.id}/").status_code == 403
        assert api.get(f"{URL}{billed.invoice.id}/pdf/").status_code == 403
    management_api = api_as(management.user)
    assert management_api.get(URL).json()["count"] == 1
    # Management looks; it neither runs billing nor issues invoices.
    for path in ("send-preview", "finalize", "send", "mark-paid", "void", "credit-notes"):
        response = management_api.post(f"{URL}{billed.invoice.id}/{path}/", {}, format="json")
        assert response.status_code == 403, path
    assert management_api.delete(f"{URL}{billed.invoice.id}/").status_code == 403
    billed.invoice.refresh_from_db()
    assert billed.invoice.status == InvoiceStatus.DRAFT and not mail.outbox


def test_an_invoice_cannot_be_changed_or_created_through_the_api(finance, billed):
    invoice = finalized(billed)
    api = api_as(finance.user)
    url = f"{URL}{invoice.id}/"
    assert api.patch(url, {"total": "1.00", "status": "draft"}, format="json").status_code == 405
    assert api.put(url, {"total": "1.00"}, format="json").status_code == 405
    assert api.post(URL, {"client": billed.client.id}, format="json").status_code == 405
    invoice.refresh_from_db()
    assert (invoice.status, invoice.total, invoice.number) == (InvoiceStatus.FINALIZED, Decimal("396.00"),
                                                               "INV-2026-0001")
    assert Invoice.objects.count() == 1


# Draft actions


def test_send_preview_emails_the_review_link(finance, billed):
    response = api_as(finance.user).post(f"{URL}{billed.invoice.id}/send-preview/", format="json")

    assert response.status_code == 200, response.data
    assert response.json()["review_sent_at"] is not None and response.json()["status"] == "draft"
    [email] = mail.outbox
    assert email.to == ["ap@acme.test", "cfo@acme.test"]
    assert "/billing/review/" in email.body and "Total: 396.00 USD" in email.body
    assert ClientMessage.objects.get().kind == "invoice_preview"


def test_a_refused_action_is_a_400_with_the_services_message(finance, billed):
    invoice = finalized(billed)
    api = api_as(finance.user)
    preview = api.post(f"{URL}{invoice.id}/send-preview/", format="json")
    assert preview.status_code == 400
    assert preview.json() == {"non_field_errors": ["Only a draft is sent for review."]}
    again = api.post(f"{URL}{invoice.id}/finalize/", format="json")
    assert again.status_code == 400
    assert again.json()["non_field_errors"] == ["Invoice INV-2026-0001 is finalized: it cannot be finalized."]
    assert not mail.outbox


def test_deleting_a_draft_releases_its_entries(finance, billed):
    response = api_as(finance.user).delete(f"{URL}{billed.invoice.id}/")
    assert response.status_code == 204
    assert not Invoice.objects.exists() and not Allocation.objects.exists()
    assert statuses(billed.entries) == [EntryStatus.APPROVED] * 3


def test_an_issued_invoice_is_never_deleted(finance, billed):
    invoice = finalized(billed)
    response = api_as(finance.user).delete(f"{URL}{invoice.id}/")
    assert response.status_code == 400
    assert "void an issued invoice instead" in response.json()["non_field_errors"][0]
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.FINALIZED
    assert statuses(billed.entries) == [EntryStatus.INVOICED] * 3


# Issuing actions


def test_finalize_numbers_dates_and_stores_the_pdf(finance, billed):
    response = api_as(finance.user).post(f"{URL}{billed.invoice.id}/finalize/", {"issue_date": "2026-04-01"},
                                         format="json")
    assert response.status_code == 200, response.data
    data = response.json()
    assert (data["status"], data["number"], data["issue_date"], data["due_date"]) == (
        "finalized", "INV-2026-0001", "2026-04-01", "2026-04-15")
    invoice = Invoice.objects.get()
    assert invoice.pdf.name.endswith("INV-2026-0001.pdf")
    assert InvoiceEvent.objects.get(invoice=invoice, action="finalized").actor == finance.user


def test_finalize_is_refused_while_a_line_is_disputed(finance, billed):
    LineDispute.objects.create(line=billed.invoice.lines.get(), comment="We agreed 2 hours")
    response = api_as(finance.user).post(f"{URL}{billed.invoice.id}/finalize/", format="json")
    assert response.status_code == 400
    assert response.json()["non_field_errors"] == [
        "1 disputed line must be resolved before this invoice can be finalized."]
    billed.invoice.refresh_from_db()
    assert (billed.invoice.status, billed.invoice.number) == (InvoiceStatus.DRAFT, None)


def test_a_bad_issue_date_is_a_400(finance, billed):
    response = api_as(finance.user).post(f"{URL}{billed.invoice.id}/finalize/", {"issue_date": "soon"},
                                         format="json")
    assert response.status_code == 400 and "issue_date" in response.json()
    billed.invoice.refresh_from_db()
    assert billed.invoice.status == InvoiceStatus.DRAFT


def test_send_emails_the_pdf(finance, billed):
    invoice = finalized(billed)
    response = api_as(finance.user).post(f"{URL}{invoice.id}/send/", format="json")
    assert response.status_code == 200 and response.json()["status"] == "sent"
    [email] = mail.outbox
    [(name, content, mimetype)] = email.attachments
    assert (name, mimetype, content[:5]) == ("INV-2026-0001.pdf", "application/pdf", b"%PDF-")


def test_a_draft_cannot_be_sent(finance, billed):
    response = api_as(finance.user).post(f"{URL}{billed.invoice.id}/send/", format="json")
    assert response.status_code == 400 and "draft: it cannot be sent" in response.json()["non_field_errors"][0]
    assert not mail.outbox


def test_mark_paid(finance, billed):
    invoice = finalized(billed)
    api = api_as(finance.user)
    bad = api.post(f"{URL}{invoice.id}/mark-paid/", {"paid_on": "20/04/2026"}, format="json")
    assert bad.status_code == 400 and "paid_on" in bad.json()
    response = api.post(f"{URL}{invoice.id}/mark-paid/", {"paid_on": "2026-04-20"}, format="json")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["paid_on"]) == ("paid", "2026-04-20")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.paid_on) == (InvoiceStatus.PAID, dt.date(2026, 4, 20))


def test_void_needs_a_reason_and_releases_the_entries(finance, billed):
    invoice = finalized(billed)
    api = api_as(finance.user)
    refused = api.post(f"{URL}{invoice.id}/void/", {}, format="json")
    assert refused.status_code == 400 and refused.json()["reason"] == ["Say why the invoice is voided."]
    assert statuses(billed.entries) == [EntryStatus.INVOICED] * 3

    response = api.post(f"{URL}{invoice.id}/void/", {"reason": "Wrong client"}, format="json")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["void_reason"]) == ("void", "Wrong client")
    assert statuses(billed.entries) == [EntryStatus.APPROVED] * 3


def test_a_paid_invoice_is_credited_not_voided(finance, billed):
    invoice = invoice_mark_paid(invoice=finalized(billed), paid_on=dt.date(2026, 4, 20))
    response = api_as(finance.user).post(f"{URL}{invoice.id}/void/", {"reason": "Mistake"}, format="json")
    assert response.status_code == 400 and "issue a credit note instead" in response.json()["non_field_errors"][0]
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID


# Credit notes


def test_a_credit_note_for_part_of_an_entry_released_for_rebilling(finance, billed):
    invoice = finalized(billed)
    ninety = billed.entries[1]
    response = api_as(finance.user).post(f"{URL}{invoice.id}/credit-notes/", {
        "allocations": [{"time_entry": ninety.id, "minutes": 30}], "release": True}, format="json")

    assert response.status_code == 201, response.data
    data = response.json()
    assert (data["kind"], data["number"], data["status"], data["credited_invoice"]) == (
        "credit", "CN-2026-0001", "finalized", invoice.id)
    assert (data["subtotal"], data["tax"], data["total"]) == ("-60.00", "-6.00", "-66.00")
    [line] = data["lines"]
    assert (line["kind"], line["quantity"], line["amount"], line["time_entries"]) == (
        "credit", "-0.50", "-60.00", [ninety.id])
    assert statuses(billed.entries) == [EntryStatus.INVOICED, EntryStatus.APPROVED, EntryStatus.INVOICED]
    # Only the credited half hour is billed again.
    [rebill] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices
    assert [(line.minutes, line.amount) for line in rebill.lines.all()] == [(30, Decimal("60.00"))]


def test_a_credit_note_without_minutes_writes_off_the_whole_entry(finance, billed):
    invoice = finalized(billed)
    thirty = billed.entries[2]
    response = api_as(finance.user).post(f"{URL}{invoice.id}/credit-notes/", {
        "allocations": [{"time_entry": thirty.id}], "release": False}, format="json")
    assert response.status_code == 201
    assert response.json()["total"] == "-66.00"
    assert statuses([thirty]) == [EntryStatus.INVOICED]
    assert billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices == []


def test_credit_note_errors_name_each_refused_entry(finance, billed):
    invoice = finalized(billed)
    response = api_as(finance.user).post(f"{URL}{invoice.id}/credit-notes/", {
        "allocations": [{"time_entry": 999999}, {"time_entry": billed.entries[1].id},
                        {"time_entry": billed.entries[0].id, "minutes": 61}], "release": True}, format="json")
    assert response.status_code == 400
    # Each message names the entry it is about.
    assert response.json() == {"allocations": [
        "Entry 999999 is not billed on INV-2026-0001.",
        f"Between 1 and 60 minutes of entry {billed.entries[0].id} can be credited.",
    ]}
    assert not Invoice.objects.filter(kind=InvoiceKind.CREDIT).exists()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"allocations": [{"minutes": 10}]}, {"allocations": [{"time_entry": ["This field is required."]}]}),
        ({"allocations": [{"time_entry": 1, "minutes": 0}]},
         {"allocations": [{"minutes": ["Ensure this value is greater than or equal to 1."]}]}),
        ({"allocations": []}, {"allocations": ["Name at least one time entry to credit."]}),
        ({"allocations": [{"time_entry": 1}, {"time_entry": "x"}]},
         {"allocations": [{}, {"time_entry": ["A valid integer is required."]}]}),
        ({"allocations": "all"}, None),
        ([{"time_entry": 1}], {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
    ],
)
def test_a_malformed_credit_note_request_is_a_400(finance, billed, body, expected):
    invoice = finalized(billed)
    response = api_as(finance.user).post(f"{URL}{invoice.id}/credit-notes/", body, format="json")
    assert response.status_code == 400
    if expected is not None:
        assert response.json() == expected
    assert not Invoice.objects.filter(kind=InvoiceKind.CREDIT).exists()


def test_a_draft_cannot_be_credited(finance, billed):
    response = api_as(finance.user).post(f"{URL}{billed.invoice.id}/credit-notes/", {
        "allocations": [{"time_entry": billed.entries[0].id}]}, format="json")
    assert response.status_code == 400 and "Only an issued invoice" in response.json()["non_field_errors"][0]


# The PDF


def test_the_pdf_of_an_issued_invoice_is_its_stored_file(finance, management, billed):
    invoice = finalized(billed)
    with invoice.pdf.open("rb") as stored:
        expected = stored.read()
    for caller in (finance, management):
        response = api_as(caller.user).get(f"{URL}{invoice.id}/pdf/")
        assert response.status_code == 200
        assert response["Content-Type"] == "application/pdf"
        assert 'filename="INV-2026-0001.pdf"' in response["Content-Disposition"]
        assert response.content == expected


def test_a_draft_pdf_is_rendered_and_asking_for_pdf_works(finance, billed):
    api = api_as(finance.user)
    response = api.get(f"{URL}{billed.invoice.id}/pdf/", HTTP_ACCEPT="application/pdf")
    assert response.status_code == 200 and response.content[:5] == b"%PDF-"
    assert f"draft-{billed.invoice.id}.pdf" in response["Content-Disposition"]
    missing = api.get(f"{URL}999999/pdf/", HTTP_ACCEPT="application/pdf")
    assert missing.status_code == 404 and missing["Content-Type"] == "application/json"
    assert missing.json()["detail"]


# Billing runs


def test_a_billing_run_answers_with_its_counts_and_drafts(finance, billed):
    billed.invoice.delete()  # start from released time: the fixture billed it already
    TimeEntry.objects.update(status=EntryStatus.APPROVED)
    response = api_as(finance.user).post(RUNS, {"period_start": "2026-03-01", "period_end": "2026-03-31",
                                                "client": billed.client.id}, format="json")

    assert response.status_code == 201, response.data
    data = response.json()
    run = BillingRun.objects.get(pk=data["id"])
    assert (run.client, run.started_by, run.invoices_created, run.entries_billed) == (
        billed.client, finance.user, 1, 3)
    assert (data["invoices_created"], data["entries_billed"], data["period_start"]) == (1, 3, "2026-03-01")
    [invoice] = data["invoices"]
    assert data["invoice_ids"] == [invoice["id"]]
    assert (invoice["status"], invoice["total"], invoice["lines"][0]["time_entries"]) == (
        "draft", "396.00", [entry.id for entry in billed.entries])
    assert statuses(billed.entries) == [EntryStatus.INVOICED] * 3


def test_runs_are_listed(finance, management, billed):
    run = billed.invoice.billing_run
    rows = api_as(management.user).get(RUNS).json()["results"]
    assert [(row["id"], row["invoice_ids"], row["entries_billed"]) for row in rows] == [
        (run.id, [billed.invoice.id], 3)]
    assert api_as(finance.user).get(f"{RUNS}{run.id}/").json()["summary"] == run.summary


def test_listing_runs_costs_the_same_queries_for_2_and_20(finance):
    client = ClientFactory()

    def runs(count: int) -> None:
        for _ in range(count):
            run = BillingRun.objects.create(period_start=MARCH[0], period_end=MARCH[1])
            for _ in range(2):
                Invoice.objects.create(client=client, currency="USD", period_start=MARCH[0], period_end=MARCH[1],
                                       billing_run=run)

    def queries() -> int:
        api = api_as(finance.user)
        with CaptureQueriesContext(connection) as captured:
            rows = api.get(RUNS, {"page_size": 100}).json()["results"]
        assert all(len(row["invoice_ids"]) == 2 for row in rows)
        return len(captured)

    runs(2)
    few = queries()
    runs(18)
    assert BillingRun.objects.count() == 20 and queries() == few


def test_a_run_with_nothing_to_bill_makes_no_invoices(finance, billed):
    response = api_as(finance.user).post(RUNS, {"period_start": "2026-03-01", "period_end": "2026-03-31"},
                                         format="json")
    assert response.status_code == 201
    assert (response.json()["invoices_created"], response.json()["invoices"]) == (0, [])
    assert Invoice.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"period_start": "2026-03-31", "period_end": "2026-03-01"}, "period_end"),
        ({"period_start": "2026-03-01"}, "period_end"),
        ({"period_start": "1 March", "period_end": "2026-03-31"}, "period_start"),
        ({"period_start": "2026-03-01", "period_end": "2026-03-31", "client": 999999}, "client"),
    ],
)
def test_a_bad_run_is_a_400_and_saves_nothing(finance, body, field):
    response = api_as(finance.user).post(RUNS, body, format="json")
    assert response.status_code == 400 and field in response.json()
    assert not BillingRun.objects.exists()


def test_a_racing_run_is_a_409(finance, monkeypatch):
    def collide(**kwargs):
        raise BillingConflict("Another billing run billed some of the same time or fees at the same moment.")

    monkeypatch.setattr("billing.api.billing_run_create", collide)
    response = api_as(finance.user).post(RUNS, {"period_start": "2026-03-01", "period_end": "2026-03-31"},
                                         format="json")
    assert response.status_code == 409 and "Another billing run" in response.json()["detail"]


def test_only_billing_roles_start_runs(management, approver, staff_member):
    body = {"period_start": "2026-03-01", "period_end": "2026-03-31"}
    assert api_as(management.user).post(RUNS, body, format="json").status_code == 403
    for caller in (approver, staff_member):
        assert api_as(caller.user).get(RUNS).status_code == 403
        assert api_as(caller.user).post(RUNS, body, format="json").status_code == 403
    assert not BillingRun.objects.exists()


# An entry's invoice


def test_an_entry_shows_the_invoice_that_bills_it(finance, billed):
    api = api_as(finance.user)

    def invoice_of(entry):
        return api.get(f"/api/v1/time-entries/{entry.id}/").json()["invoice"]

    assert [invoice_of(entry) for entry in billed.entries] == [billed.invoice.id] * 3
    invoice = finalized(billed)
    api.post(f"{URL}{invoice.id}/credit-notes/", {"allocations": [{"time_entry": billed.entries[0].id}],
                                                  "release": True}, format="json")
    assert [invoice_of(entry) for entry in billed.entries] == [None, invoice.id, invoice.id]
    api.post(f"{URL}{invoice.id}/void/", {"reason": "Reissue"}, format="json")
    assert [invoice_of(entry) for entry in billed.entries] == [None, None, None]


def test_listing_entries_with_invoices_costs_the_same_queries_for_3_and_30(finance, staff_member):
    project = ProjectFactory()
    RateFactory(contract=project.contract)
    dev = TaskTypeFactory(code="dev")

    def queries() -> int:
        api = api_as(finance.user)
        with CaptureQueriesContext(connection) as captured:
            rows = api.get("/api/v1/time-entries/", {"page_size": 100}).json()["results"]
        assert rows and all(row["invoice"] for row in rows)
        return len(captured)

    approved_time(staff_member, project, dev, [(dt.date(2026, 1, 1 + n), 30) for n in range(3)], prefix="jan")
    billing_run_create(period_start=dt.date(2026, 1, 1), period_end=dt.date(2026, 1, 31))
    few = queries()
    approved_time(staff_member, project, dev, [(dt.date(2026, 2, 1 + n), 30) for n in range(27)], prefix="feb")
    billing_run_create(period_start=dt.date(2026, 2, 1), period_end=dt.date(2026, 2, 28))
    assert queries() == few
