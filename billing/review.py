"""Client review of a draft: a signed, expiring link; accept the invoice or dispute lines; finance resolves.

The link carries the invoice id signed with the secret key; where it expires is stored on the invoice,
so sending the preview again renews it and a link never opens another invoice.
"""

import datetime as dt

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from billing.client_messages import invoice_recipients, send_client_message
from billing.lifecycle import InvoiceStateError, _event, _locked, invoice_finalize
from billing.models import (
    Allocation,
    ContractCharge,
    DisputeStatus,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LineDispute,
    LineKind,
    MessageKind,
)
from billing.money import amount_for, hours, round_money
from projects.models import EntryStatus, TimeEntry

SALT = "billable.invoice-review"
# Lines priced by the hour: taking time off them takes its amount off too.
HOURLY_KINDS = (LineKind.TIME, LineKind.RETAINER_OVERAGE)


class ReviewLinkError(Exception):
    """The link was forged or altered; the message is for the client."""

    status = 403


class ReviewClosed(ReviewLinkError):
    """A genuine link whose review is over: expired, or the draft was finalized or deleted."""

    status = 410


def review_token(invoice: Invoice) -> str:
    return signing.dumps({"invoice": invoice.pk}, salt=SALT)


def review_url(invoice: Invoice) -> str:
    return settings.SITE_URL + reverse("billing:client-review", args=[review_token(invoice)])


def invoice_for_review(token: str) -> Invoice:
    """The draft a review link opens, or ReviewLinkError."""
    try:
        payload = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        raise ReviewLinkError("This review link is not valid. Please use the link from the latest email.") from None
    invoice = Invoice.objects.select_related("client").filter(pk=payload.get("invoice")).first()
    if invoice is None or invoice.review_expires_at is None or invoice.status != InvoiceStatus.DRAFT:
        raise ReviewClosed("This invoice is no longer open for review.")
    if timezone.now() > invoice.review_expires_at:
        raise ReviewClosed("This review link has expired. Please ask us for a new one.")
    return invoice


def _review_days(invoice: Invoice) -> int:
    return invoice.contract.review_window_days if invoice.contract_id else settings.REVIEW_WINDOW_DAYS


def invoice_send_preview(*, invoice: Invoice, user=None) -> Invoice:
    """Email the client a summary of the draft and a link to review it, valid for the review window."""
    with transaction.atomic():
        invoice = _locked(invoice)
        if invoice.status != InvoiceStatus.DRAFT:
            raise InvoiceStateError("Only a draft is sent for review.")
        recipients = invoice_recipients(invoice.client)
        if not recipients:
            raise InvoiceStateError(f"{invoice.client.name} has no invoice email address or opted-in contact.")
        days = _review_days(invoice)
        invoice.review_sent_at = timezone.now()
        invoice.review_expires_at = invoice.review_sent_at + dt.timedelta(days=days)
        invoice.save(update_fields=["review_sent_at", "review_expires_at"])
        lines = "\n".join(f"  {line.description}: {line.quantity} × {line.unit_rate} = {line.amount:,.2f}"
                          for line in invoice.lines.all())
        body = (
            f"Dear {invoice.client.name},\n\nYour invoice for {invoice.period_start:%d %b %Y} to "
            f"{invoice.period_end:%d %b %Y} is ready for review.\n\n{lines}\n\n"
            f"Subtotal: {invoice.subtotal:,.2f} {invoice.currency}\nTax ({invoice.tax_rate}%): "
            f"{invoice.tax:,.2f} {invoice.currency}\nTotal: {invoice.total:,.2f} {invoice.currency}\n\n"
            f"Review the lines and the time behind them, accept the invoice or dispute a line here "
            f"(open until {timezone.localtime(invoice.review_expires_at):%d %b %Y %H:%M}):\n"
            f"{review_url(invoice)}\n"
        )
        send_client_message(client=invoice.client, invoice=invoice, kind=MessageKind.INVOICE_PREVIEW,
                            to=recipients, subject=f"Invoice preview from {settings.FIRM_NAME}", body=body)
        _event(invoice, user, "preview_sent", invoice.status, to=recipients, expires=str(invoice.review_expires_at))
    return invoice


def _open_for_review(invoice: Invoice) -> None:
    if invoice.status != InvoiceStatus.DRAFT:
        raise ReviewClosed("This invoice is no longer open for review.")


def review_accept(*, invoice: Invoice, name: str = "") -> Invoice:
    with transaction.atomic():
        invoice = _locked(invoice)
        _open_for_review(invoice)
        if LineDispute.objects.filter(line__invoice=invoice, status=DisputeStatus.OPEN).exists():
            raise ValidationError("A disputed line is still open; we will be in touch about it.")
        invoice.accepted_at, invoice.accepted_by = timezone.now(), (name or "").strip()[:200]
        invoice.save(update_fields=["accepted_at", "accepted_by"])
        _event(invoice, None, "accepted_by_client", invoice.status, name=invoice.accepted_by)
    return invoice


def review_dispute(*, invoice: Invoice, line_id: int, comment: str, name: str = "") -> LineDispute:
    comment = (comment or "").strip()
    if not comment:
        raise ValidationError({"comment": "Tell us what is wrong with this line."})
    with transaction.atomic():
        invoice = _locked(invoice)
        _open_for_review(invoice)
        line = InvoiceLine.objects.filter(invoice=invoice, pk=line_id).first()
        if line is None:
            raise ValidationError({"line": "That line is not on this invoice."})
        dispute = LineDispute.objects.create(line=line, comment=comment, raised_by=(name or "").strip()[:200])
        if invoice.accepted_at:
            invoice.accepted_at, invoice.accepted_by = None, ""
            invoice.save(update_fields=["accepted_at", "accepted_by"])
        _event(invoice, None, "line_disputed", invoice.status, line=line.id, comment=comment, name=name)
    return dispute


def dispute_resolve(*, dispute: LineDispute, user, resolution: str, remove_entry_ids=(), release: bool = True,
                    dismiss: bool = False) -> LineDispute:
    """Finance answers a dispute: take entries off the line (released or written off), or dismiss it."""
    resolution = (resolution or "").strip()
    if not resolution:
        raise ValidationError({"resolution": "Record how the dispute was resolved; the client may ask."})
    remove_entry_ids = set(remove_entry_ids)
    if dismiss and remove_entry_ids:
        raise ValidationError("Either dismiss the dispute or remove entries, not both.")
    with transaction.atomic():
        dispute = LineDispute.objects.select_for_update().select_related("line__invoice").get(pk=dispute.pk)
        line = dispute.line
        invoice = _locked(line.invoice)
        if invoice.status != InvoiceStatus.DRAFT:
            raise InvoiceStateError("Disputes are resolved on drafts only.")
        if dispute.status != DisputeStatus.OPEN:
            raise ValidationError("This dispute is already closed.")
        if not dismiss:
            _remove_entries(line, remove_entry_ids, release)
        dispute.status = DisputeStatus.DISMISSED if dismiss else DisputeStatus.RESOLVED
        dispute.resolution, dispute.resolved_by, dispute.resolved_at = resolution, user, timezone.now()
        dispute.save(update_fields=["status", "resolution", "resolved_by", "resolved_at"])
        _event(invoice, user, "dispute_dismissed" if dismiss else "dispute_resolved", invoice.status,
               line=line.id, resolution=resolution, removed_entries=sorted(remove_entry_ids), release=release)
    return dispute


def write_off_entries(*, invoices: list[Invoice], entry_ids: list[int]) -> None:
    """Write these entries off wherever they are billed on these drafts (a regenerated draft keeps its write-offs)."""
    by_line: dict[int, set[int]] = {}
    for line_id, entry_id in Allocation.objects.filter(line__invoice__in=invoices, time_entry_id__in=entry_ids,
                                                       is_live=True).values_list("line_id", "time_entry_id"):
        by_line.setdefault(line_id, set()).add(entry_id)
    for line in InvoiceLine.objects.filter(id__in=by_line).select_related("invoice"):
        _remove_entries(line, by_line[line.id], release=False)


def _minutes_shown(line: InvoiceLine, allocation: Allocation) -> int:
    """The minutes an allocation adds to its line: billed, covered by the retainer fee, or over the cap."""
    if line.kind in HOURLY_KINDS:
        return allocation.minutes
    if line.kind == LineKind.RETAINER_FEE:
        return allocation.covered_minutes
    return allocation.over_cap_minutes


def _remove_entries(line: InvoiceLine, entry_ids: set[int], release: bool) -> None:
    if not entry_ids:
        raise ValidationError({"entries": "Choose the entries to take off the line, or dismiss the dispute."})
    allocations = list(Allocation.objects.filter(line=line, time_entry_id__in=entry_ids, is_live=True))
    missing = entry_ids - {a.time_entry_id for a in allocations}
    if missing:
        raise ValidationError({"entries": f"Not on this line: {', '.join(map(str, sorted(missing)))}."})
    removed = sum(_minutes_shown(line, a) for a in allocations)
    if release:
        Allocation.objects.filter(pk__in=[a.pk for a in allocations]).delete()
        TimeEntry.objects.filter(id__in=entry_ids).update(status=EntryStatus.APPROVED)
    else:
        # A write-off keeps the entry tied to this line at zero, so no later run bills it.
        Allocation.objects.filter(pk__in=[a.pk for a in allocations]).update(minutes=0, amount=0, written_off=True)
    line.minutes -= removed
    if line.kind in HOURLY_KINDS:
        line.quantity = hours(line.minutes)
        line.amount = amount_for(line.minutes, line.unit_rate)
    elif not ContractCharge.objects.filter(line=line).exists():
        # Covered or over-cap time at no charge: only the hours shown change.
        line.quantity = hours(line.minutes)
    # A fee line (retainer, installment, milestone) keeps its amount: the fee is owed whatever time it covers.
    line.save(update_fields=["minutes", "quantity", "amount"])
    invoice = line.invoice
    invoice.subtotal = sum(invoice.lines.values_list("amount", flat=True))
    invoice.tax = round_money(invoice.subtotal * invoice.tax_rate / 100)
    invoice.total = invoice.subtotal + invoice.tax
    invoice.save(update_fields=["subtotal", "tax", "total"])


def finalize_reviewed_drafts(*, now=None) -> int:
    """Finalize drafts whose review window ended without any dispute, where every contract on them asks for it."""
    now = now or timezone.now()
    due = (Invoice.objects.filter(status=InvoiceStatus.DRAFT, review_sent_at__isnull=False,
                                  review_expires_at__lt=now, lines__contract__auto_finalize=True)
           .exclude(lines__contract__auto_finalize=False)
           .exclude(lines__disputes__isnull=False)
           .distinct().order_by("id"))
    done = 0
    for invoice in due:
        try:
            invoice_finalize(invoice=invoice)
            done += 1
        except InvoiceStateError:
            continue
    return done
