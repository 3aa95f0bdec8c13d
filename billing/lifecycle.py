"""The invoice state machine: draft -> finalized -> sent -> paid, and void. One function per move.

Each move checks the state it starts from (under a row lock), refuses anything else with a clear
message, and writes an InvoiceEvent in the same transaction.
"""

import datetime as dt

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from billing.client_messages import invoice_recipients, send_client_message
from billing.models import (
    ISSUED_STATUSES,
    Allocation,
    ContractCharge,
    DisputeStatus,
    Invoice,
    InvoiceEvent,
    InvoiceKind,
    InvoiceStatus,
    LineDispute,
    MessageKind,
)
from billing.numbering import take_number
from projects.models import EntryStatus, TimeEntry


class InvoiceStateError(ValidationError):
    """A move the invoice's state does not allow."""


def _locked(invoice: Invoice) -> Invoice:
    return Invoice.objects.select_for_update(of=("self",)).select_related("client").get(pk=invoice.pk)


def _event(invoice: Invoice, user, action: str, before: str, **details) -> None:
    InvoiceEvent.objects.create(invoice=invoice, actor=user if getattr(user, "pk", None) else None, action=action,
                                status_before=before, status_after=invoice.status, details=details)


def _require(invoice: Invoice, allowed, move: str) -> None:
    if invoice.status not in allowed:
        raise InvoiceStateError(
            f"Invoice {invoice.number or invoice.id} is {invoice.get_status_display().lower()}: it cannot be {move}.")


def store_pdf(invoice: Invoice) -> bytes:
    """Render and keep the invoice's PDF; an issued invoice's file is written once."""
    from billing.pdf import render_invoice_pdf

    content = render_invoice_pdf(invoice)
    name = f"{invoice.number or f'draft-{invoice.id}'}.pdf"
    invoice.pdf.save(name, ContentFile(content), save=False)
    Invoice.objects.filter(pk=invoice.pk).update(pdf=invoice.pdf.name)
    return content


def invoice_pdf(invoice: Invoice) -> bytes:
    """The stored PDF of an issued invoice (rendered now if it is missing); drafts render fresh."""
    if invoice.is_issued and invoice.pdf:
        try:
            with invoice.pdf.open("rb") as stored:
                return stored.read()
        except FileNotFoundError:
            pass
    return store_pdf(invoice) if invoice.status != InvoiceStatus.DRAFT else _render(invoice)


def _render(invoice: Invoice) -> bytes:
    from billing.pdf import render_invoice_pdf

    return render_invoice_pdf(invoice)


def invoice_finalize(*, invoice: Invoice, user=None, issue_date: dt.date | None = None) -> Invoice:
    """Number the draft, set its dates, lock it, and store its PDF. Refused while a line is disputed."""
    with transaction.atomic():
        invoice = _locked(invoice)
        _require(invoice, (InvoiceStatus.DRAFT,), "finalized")
        if not invoice.lines.exists():
            raise InvoiceStateError("An invoice without lines cannot be finalized.")
        open_disputes = LineDispute.objects.filter(line__invoice=invoice, status=DisputeStatus.OPEN).count()
        if open_disputes:
            raise InvoiceStateError(
                f"{open_disputes} disputed line{'s' if open_disputes > 1 else ''} must be resolved before "
                "this invoice can be finalized.")
        issue_date = issue_date or timezone.localdate()
        number = take_number(kind=invoice.kind, year=issue_date.year)
        due_date = issue_date + dt.timedelta(days=invoice.payment_terms_days)
        now = timezone.now()
        # A conditional update claims the move: a concurrent finalization of the same draft changes nothing.
        claimed = Invoice.objects.filter(pk=invoice.pk, status=InvoiceStatus.DRAFT).update(
            status=InvoiceStatus.FINALIZED, number=number, issue_date=issue_date, due_date=due_date,
            finalized_at=now)
        if claimed != 1:
            raise InvoiceStateError("The invoice was finalized by someone else at the same moment.")
        invoice.refresh_from_db()
        _event(invoice, user, "finalized", InvoiceStatus.DRAFT, number=number, total=str(invoice.total))
    store_pdf(invoice)
    return invoice


def invoice_send(*, invoice: Invoice, user=None) -> Invoice:
    """Email the finalized invoice with its PDF to the client's invoice recipients."""
    with transaction.atomic():
        invoice = _locked(invoice)
        _require(invoice, (InvoiceStatus.FINALIZED, InvoiceStatus.SENT), "sent")
        recipients = invoice_recipients(invoice.client)
        if not recipients:
            raise InvoiceStateError(f"{invoice.client.name} has no invoice email address or opted-in contact.")
        label = "Credit note" if invoice.kind == InvoiceKind.CREDIT else "Invoice"
        body = (f"Dear {invoice.client.name},\n\nPlease find attached {label.lower()} {invoice.number} "
                f"for {invoice.period_start:%d %b %Y} to {invoice.period_end:%d %b %Y}.\n\n"
                f"Total: {invoice.total:,.2f} {invoice.currency}\n")
        if invoice.kind == InvoiceKind.INVOICE:
            body += f"Due date: {invoice.due_date:%d %b %Y}\n"
        body += "\nThank you for your business.\n"
        message = send_client_message(
            client=invoice.client, invoice=invoice, to=recipients, body=body,
            kind=MessageKind.CREDIT_NOTE if invoice.kind == InvoiceKind.CREDIT else MessageKind.INVOICE,
            subject=f"{label} {invoice.number} from {_firm()}",
            attachments=[(f"{invoice.number}.pdf", invoice_pdf(invoice), "application/pdf")],
        )
        if message.status != "sent":
            raise InvoiceStateError(f"The email could not be sent: {message.error}")
        before = invoice.status
        invoice.status, invoice.sent_at = InvoiceStatus.SENT, timezone.now()
        invoice.save(update_fields=["status", "sent_at"])
        _event(invoice, user, "sent", before, to=recipients)
    return invoice


def invoice_mark_paid(*, invoice: Invoice, user=None, paid_on: dt.date | None = None) -> Invoice:
    with transaction.atomic():
        invoice = _locked(invoice)
        if invoice.kind != InvoiceKind.INVOICE:
            raise InvoiceStateError("A credit note is not paid; it reduces what the client owes.")
        _require(invoice, (InvoiceStatus.FINALIZED, InvoiceStatus.SENT), "marked paid")
        before = invoice.status
        invoice.status, invoice.paid_on = InvoiceStatus.PAID, paid_on or timezone.localdate()
        invoice.save(update_fields=["status", "paid_on"])
        _event(invoice, user, "paid", before, paid_on=str(invoice.paid_on))
    return invoice


def invoice_void(*, invoice: Invoice, user=None, reason: str = "") -> Invoice:
    """Void an issued, unpaid invoice: its entries and fees are released for rebilling (written-off stay)."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the invoice is voided."})
    with transaction.atomic():
        invoice = _locked(invoice)
        if invoice.status == InvoiceStatus.PAID:
            raise InvoiceStateError(f"Invoice {invoice.number} is paid: issue a credit note instead of voiding it.")
        _require(invoice, ISSUED_STATUSES, "voided")
        # Written off in full stays with this invoice; partly written off is released like the rest, and the
        # next billing run bills only what was not written off (billing.invoicing._already_billed).
        allocations = Allocation.objects.filter(line__invoice=invoice, is_live=True).exclude(
            written_off=True, credited_minutes__gte=F("minutes"))
        entry_ids = list(allocations.values_list("time_entry_id", flat=True))
        allocations.update(is_live=False)
        TimeEntry.objects.filter(id__in=entry_ids, status=EntryStatus.INVOICED) \
            .exclude(allocations__is_live=True).update(status=EntryStatus.APPROVED)
        # Fees on a void invoice may be billed again.
        ContractCharge.objects.filter(line__invoice=invoice)._raw_delete(ContractCharge.objects.db)
        before = invoice.status
        invoice.status, invoice.voided_at, invoice.void_reason = InvoiceStatus.VOID, timezone.now(), reason
        invoice.save(update_fields=["status", "voided_at", "void_reason"])
        _event(invoice, user, "voided", before, reason=reason, entries_released=len(entry_ids))
    return invoice


def _firm() -> str:
    from django.conf import settings

    return settings.FIRM_NAME
