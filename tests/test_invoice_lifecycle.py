"""Finalize, send, pay, void and credit: gapless numbers, immutability, released and written-off time."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from djmoney.money import Money

from billing.credit_notes import CreditRequest, credit_note_create
from billing.invoicing import billing_run_create
from billing.lifecycle import (
    InvoiceStateError,
    invoice_finalize,
    invoice_mark_paid,
    invoice_send,
    invoice_void,
)
from billing.models import Allocation, ClientMessage, Invoice, InvoiceEvent, InvoiceKind, InvoiceStatus
from billing.numbering import take_number
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


@pytest.fixture
def billed(staff_member):
    """A draft for Acme: three entries of 60, 90 and 30 minutes at 120.00/h, 10 % tax."""
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


def test_finalizing_numbers_dates_and_locks(billed, finance):
    invoice = invoice_finalize(invoice=billed.invoice, user=finance.user, issue_date=dt.date(2026, 4, 1))
    assert (invoice.status, invoice.number) == (InvoiceStatus.FINALIZED, "INV-2026-0001")
    assert (invoice.issue_date, invoice.due_date) == (dt.date(2026, 4, 1), dt.date(2026, 4, 15))
    assert invoice.pdf.name.endswith("INV-2026-0001.pdf")
    with invoice.pdf.open("rb") as stored:
        assert stored.read(5) == b"%PDF-"
    event = InvoiceEvent.objects.get(invoice=invoice, action="finalized")
    assert (event.actor, event.status_before, event.status_after) == (finance.user, "draft", "finalized")


def test_numbers_are_sequential_per_year_and_prefix(billed):
    from django.db import transaction

    with transaction.atomic():
        assert [take_number(kind=InvoiceKind.INVOICE, year=2026) for _ in range(3)] == [
            "INV-2026-0001", "INV-2026-0002", "INV-2026-0003"]
        assert take_number(kind=InvoiceKind.INVOICE, year=2027) == "INV-2027-0001"
        assert take_number(kind=InvoiceKind.CREDIT, year=2026) == "CN-2026-0001"


@pytest.mark.django_db(transaction=True)
def test_a_number_is_taken_only_inside_the_issuing_transaction():
    with pytest.raises(RuntimeError):
        take_number(kind=InvoiceKind.INVOICE, year=2026)


def test_a_finalized_invoice_cannot_change(billed):
    invoice = invoice_finalize(invoice=billed.invoice)
    with pytest.raises(InvoiceStateError):
        invoice_finalize(invoice=invoice)
    invoice.total = Decimal("1.00")
    with pytest.raises(ValidationError, match="issued and cannot be changed"):
        invoice.save()
    line = invoice.lines.first()
    line.amount = Decimal("1.00")
    with pytest.raises(ValidationError):
        line.save()
    with pytest.raises(ValidationError):
        line.delete()
    invoice.refresh_from_db()
    assert invoice.total == Decimal("396.00")


def test_sending_emails_the_pdf_to_the_invoice_recipients(billed, finance):
    invoice = invoice_finalize(invoice=billed.invoice)
    invoice_send(invoice=invoice, user=finance.user)
    [message] = mail.outbox
    assert message.to == ["ap@acme.test", "cfo@acme.test"]
    assert message.subject.startswith("Invoice INV-2026-0001")
    assert "Total: 396.00 USD" in message.body
    [(name, content, mimetype)] = message.attachments
    assert (name, mimetype, content[:5]) == ("INV-2026-0001.pdf", "application/pdf", b"%PDF-")
    logged = ClientMessage.objects.get()
    assert (logged.invoice, logged.to, logged.status, logged.kind) == (
        invoice, ["ap@acme.test", "cfo@acme.test"], "sent", "invoice")
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.SENT and invoice.sent_at is not None


def test_a_draft_cannot_be_sent_or_paid(billed):
    with pytest.raises(InvoiceStateError):
        invoice_send(invoice=billed.invoice)
    with pytest.raises(InvoiceStateError):
        invoice_mark_paid(invoice=billed.invoice)


def test_mark_paid(billed):
    invoice = invoice_finalize(invoice=billed.invoice)
    invoice = invoice_mark_paid(invoice=invoice, paid_on=dt.date(2026, 4, 20))
    assert (invoice.status, invoice.paid_on) == (InvoiceStatus.PAID, dt.date(2026, 4, 20))
    with pytest.raises(InvoiceStateError, match="credit note"):
        invoice_void(invoice=invoice, reason="Mistake")


def test_void_releases_every_entry_for_rebilling(billed):
    invoice = invoice_finalize(invoice=billed.invoice)
    with pytest.raises(ValidationError):
        invoice_void(invoice=invoice, reason="")
    invoice_void(invoice=invoice, reason="Wrong client")
    assert set(TimeEntry.objects.values_list("status", flat=True)) == {EntryStatus.APPROVED}
    assert not Allocation.objects.filter(is_live=True).exists()
    [again] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices
    assert again.total == Decimal("396.00")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.number, invoice.void_reason) == (InvoiceStatus.VOID, "INV-2026-0001",
                                                                       "Wrong client")


def test_a_credit_note_for_one_whole_entry_released(billed, finance):
    invoice = invoice_finalize(invoice=billed.invoice)
    ninety = billed.entries[1]
    note = credit_note_create(invoice=invoice, parts=[CreditRequest(ninety.id)], release=True, user=finance.user)
    assert (note.kind, note.number, note.credited_invoice, note.status) == (
        InvoiceKind.CREDIT, "CN-2026-0001", invoice, InvoiceStatus.FINALIZED)
    assert [(line.description, line.quantity, line.amount) for line in note.lines.all()] == [
        ("Credit: Development", Decimal("-1.50"), Decimal("-180.00"))]
    assert (note.subtotal, note.tax, note.total) == (Decimal("-180.00"), Decimal("-18.00"), Decimal("-198.00"))
    statuses = dict(TimeEntry.objects.values_list("id", "status"))
    assert statuses == {billed.entries[0].id: "invoiced", ninety.id: "approved", billed.entries[2].id: "invoiced"}
    # Released time is billed again, and only it.
    [rebill] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices
    assert [(line.quantity, line.amount) for line in rebill.lines.all()] == [(Decimal("1.50"), Decimal("180.00"))]


def test_a_partial_credit_released_rebills_only_the_credited_minutes(billed):
    invoice = invoice_finalize(invoice=billed.invoice)
    ninety = billed.entries[1]
    credit_note_create(invoice=invoice, parts=[CreditRequest(ninety.id, minutes=30)], release=True)
    [rebill] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices
    assert [(line.minutes, line.amount) for line in rebill.lines.all()] == [(30, Decimal("60.00"))]
    # Billed 90, credited 30, rebilled 30: never more than was logged.
    billed_minutes = sum(Allocation.objects.filter(time_entry=ninety, reverses__isnull=True)
                         .values_list("minutes", flat=True))
    credited = -sum(Allocation.objects.filter(time_entry=ninety, reverses__isnull=False)
                    .values_list("minutes", flat=True))
    assert billed_minutes - credited == 90
    assert billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices == []


def test_a_release_is_refused_while_a_later_invoice_bills_the_entry_and_works_there(billed):
    invoice = invoice_finalize(invoice=billed.invoice)
    ninety = billed.entries[1]
    credit_note_create(invoice=invoice, parts=[CreditRequest(ninety.id, minutes=30)], release=True)
    [rebill] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices
    with pytest.raises(ValidationError) as on_draft:
        credit_note_create(invoice=invoice, parts=[CreditRequest(ninety.id, minutes=20)], release=True)
    assert f"billed again on draft invoice {rebill.id}" in str(on_draft.value)
    rebill = invoice_finalize(invoice=rebill)
    with pytest.raises(ValidationError) as on_issued:
        credit_note_create(invoice=invoice, parts=[CreditRequest(ninety.id, minutes=20)], release=True)
    assert f"billed again on {rebill.number}" in str(on_issued.value)
    assert Invoice.objects.filter(kind=InvoiceKind.CREDIT).count() == 1
    # Writing off on the first invoice needs no rebilling, so it is allowed.
    credit_note_create(invoice=invoice, parts=[CreditRequest(ninety.id, minutes=10)], release=False)
    # Released on the invoice that bills it now, the minutes come back once: 90 = 50 + 10 written off + 20 + 10.
    credit_note_create(invoice=rebill, parts=[CreditRequest(ninety.id, minutes=10)], release=True)
    [third] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices
    assert [(line.minutes, line.amount) for line in third.lines.all()] == [(10, Decimal("20.00"))]


def test_a_written_off_entry_is_never_billed_again(billed):
    invoice = invoice_finalize(invoice=billed.invoice)
    thirty = billed.entries[2]
    credit_note_create(invoice=invoice, parts=[CreditRequest(thirty.id)], release=False)
    assert TimeEntry.objects.get(pk=thirty.pk).status == EntryStatus.INVOICED
    assert billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices == []
    invoice_void(invoice=invoice, reason="Reissue")
    # Voiding releases the others; the written-off entry stays written off.
    assert TimeEntry.objects.get(pk=thirty.pk).status == EntryStatus.INVOICED
    [again] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices
    assert again.subtotal == Decimal("300.00")


def test_a_void_after_a_partial_write_off_rebills_the_rest_of_the_entry_only(billed, finance):
    invoice = invoice_finalize(invoice=billed.invoice)
    ninety = billed.entries[1]
    credit_note_create(invoice=invoice, parts=[CreditRequest(ninety.id, minutes=30)], release=False,
                       user=finance.user)

    invoice_void(invoice=invoice, reason="Reissue to the right entity")

    assert set(TimeEntry.objects.values_list("status", flat=True)) == {EntryStatus.APPROVED}
    [again] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices
    # 60 + (90 - 30 written off) + 30 minutes at 120.00/h.
    assert (again.lines.get().minutes, again.subtotal) == (150, Decimal("300.00"))
    assert not billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices


def test_a_partial_credit_note_never_reopens_other_entries(billed):
    invoice = invoice_finalize(invoice=billed.invoice)
    credit_note_create(invoice=invoice, parts=[CreditRequest(billed.entries[0].id, minutes=15)], release=True)
    others = TimeEntry.objects.exclude(pk=billed.entries[0].pk)
    assert set(others.values_list("status", flat=True)) == {EntryStatus.INVOICED}
    assert Allocation.objects.filter(time_entry__in=others, is_live=True).count() == 2


def test_credit_note_bad_requests_are_specific(billed):
    invoice = invoice_finalize(invoice=billed.invoice)
    with pytest.raises(ValidationError) as error:
        credit_note_create(invoice=invoice, parts=[CreditRequest(999999), CreditRequest(billed.entries[0].id, 61)],
                           release=True)
    messages = str(error.value)
    assert "not billed on INV-2026-0001" in messages and "Between 1 and 60 minutes" in messages
    assert Invoice.objects.filter(kind=InvoiceKind.CREDIT).count() == 0
    with pytest.raises(ValidationError, match="issued invoice"):
        draft = Invoice.objects.create(client=billed.client, currency="USD", period_start=MARCH[0],
                                       period_end=MARCH[1])
        credit_note_create(invoice=draft, parts=[CreditRequest(billed.entries[0].id)], release=True)


def test_a_fully_credited_entry_cannot_be_credited_again(billed):
    invoice = invoice_finalize(invoice=billed.invoice)
    credit_note_create(invoice=invoice, parts=[CreditRequest(billed.entries[0].id)], release=False)
    with pytest.raises(ValidationError, match="already fully credited"):
        credit_note_create(invoice=invoice, parts=[CreditRequest(billed.entries[0].id)], release=False)


def test_a_reviewed_draft_without_dispute_is_finalized_when_its_window_ends(billed):
    import datetime

    from django.utils import timezone

    from billing.review import finalize_reviewed_drafts, invoice_send_preview

    contract = billed.project.contract
    contract.auto_finalize, contract.review_window_days = True, 3
    contract.save()
    invoice = invoice_send_preview(invoice=billed.invoice)
    assert finalize_reviewed_drafts() == 0  # the window is still open
    later = timezone.now() + datetime.timedelta(days=3, minutes=1)
    assert finalize_reviewed_drafts(now=later) == 1
    invoice.refresh_from_db()
    assert (invoice.status, invoice.number) == (InvoiceStatus.FINALIZED, "INV-2026-0001")


def test_a_disputed_draft_waits_for_finance(billed):
    import datetime

    from django.utils import timezone

    from billing.review import finalize_reviewed_drafts, invoice_send_preview, review_dispute

    contract = billed.project.contract
    contract.auto_finalize = True
    contract.save()
    invoice = invoice_send_preview(invoice=billed.invoice)
    review_dispute(invoice=invoice, line_id=invoice.lines.first().id, comment="Too many hours")
    assert finalize_reviewed_drafts(now=timezone.now() + datetime.timedelta(days=30)) == 0
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.DRAFT
