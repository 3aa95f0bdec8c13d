"""The demo firm's billing history: paid and sent invoices, a dispute, a credit note, and drafts in review.

Months before last month are billed, finalized a few days after month end and paid (one client's invoice of
the month before last is held back, so its time ages as work in progress); last month is billed and
finalized, with one line disputed and resolved first and a credit note after; an older invoice gets a
credit note that releases an hour for rebilling; the current month stays unbilled except one client's
draft, which is out for review.
"""

import datetime as dt
from collections.abc import Callable

from django.db.models import Sum
from django.utils import timezone

from billing.credit_notes import CreditRequest, credit_note_create
from billing.invoicing import billing_run_create, invoice_draft_delete
from billing.lifecycle import invoice_finalize, invoice_mark_paid, invoice_send
from billing.models import Allocation, Invoice, InvoiceStatus, LineKind
from billing.periods import month_end
from billing.review import dispute_resolve, invoice_send_preview, review_dispute
from clients.models import Client


def _months(first_day: dt.date, today: dt.date) -> list[tuple[dt.date, dt.date]]:
    """Whole calendar months from the month of `first_day` up to, not including, the current month."""
    months, month = [], first_day.replace(day=1)
    while month_end(month) < today.replace(day=1):
        months.append((month, month_end(month)))
        month = month_end(month) + dt.timedelta(days=1)
    return months


def _issue(invoice: Invoice, issue_date: dt.date) -> Invoice:
    invoice = invoice_finalize(invoice=invoice, issue_date=issue_date)
    # Demo history: the invoice was finalized on its issue date, not today.
    finalized_at = timezone.make_aware(dt.datetime.combine(issue_date, dt.time(9, 0)))
    Invoice.objects.filter(pk=invoice.pk).update(finalized_at=finalized_at)
    return invoice


def seed_demo_invoices(*, first_day: dt.date, today: dt.date, user=None,
                       progress: Callable[[str], None] = lambda message: None) -> int:
    """Bill the demo's past months once; returns the number of invoices made (0 when already billed)."""
    if Invoice.objects.exists():
        return 0
    months = _months(first_day, today)
    made = 0
    for number, (start, end) in enumerate(months):
        drafts = billing_run_create(period_start=start, period_end=end, user=user).invoices
        made += len(drafts)
        latest = number == len(months) - 1
        issue_date = end + dt.timedelta(days=3)
        if latest and drafts:
            # A client queried one line of last month's invoice; finance wrote off one entry of it.
            disputed = drafts[0]
            line = disputed.lines.filter(kind=LineKind.TIME).order_by("-amount").first()
            if line is not None:
                dispute = review_dispute(invoice=disputed, line_id=line.id, name="Accounts Payable",
                                         comment="One of these entries looks like internal time to us.")
                entry_id = Allocation.objects.filter(line=line).order_by("minutes").values_list(
                    "time_entry_id", flat=True).first()
                dispute_resolve(dispute=dispute, user=user, remove_entry_ids=[entry_id], release=False,
                                resolution="Agreed: the entry was an internal review; written off.")
        if number == len(months) - 2 and len(drafts) > 1:
            # One client's invoice for the month before last waits on a question: its time stays unbilled.
            smallest = min(drafts, key=lambda draft: draft.total)
            invoice_draft_delete(invoice=smallest, user=user)
            drafts = [draft for draft in drafts if draft.pk != smallest.pk]
        for draft in drafts:
            invoice = _issue(draft, issue_date)
            if not invoice.lines.exists():
                continue
            try:
                invoice_send(invoice=invoice, user=user)
            except Exception:  # noqa: BLE001 - a client without an invoice address keeps its invoice unsent
                pass
            if not latest:
                invoice_mark_paid(invoice=invoice, user=user, paid_on=issue_date + dt.timedelta(days=12))
        progress(f"  billed {start:%B %Y}: {len(drafts)} invoices")
    # A credit note on last month's largest invoice: half of its longest entry, written off.
    largest = (Invoice.objects.filter(status__in=(InvoiceStatus.SENT, InvoiceStatus.FINALIZED))
               .order_by("-total").first())
    if largest is not None:
        allocation = (Allocation.objects.filter(line__invoice=largest, reverses__isnull=True, minutes__gte=60)
                      .order_by("-minutes").first())
        if allocation is not None:
            credit_note_create(invoice=largest, parts=[CreditRequest(allocation.time_entry_id,
                                                                     minutes=allocation.minutes // 2)],
                               release=False, user=user, reason="Goodwill: workshop ran long.")
            made += 1
    # An earlier correction: an hour of an older invoice credited and released, so it is billed again later.
    allocation = (Allocation.objects.filter(line__invoice__status=InvoiceStatus.PAID, reverses__isnull=True,
                                            minutes__gte=60)
                  .select_related("line__invoice").order_by("line__invoice__issue_date", "-minutes").first())
    if allocation is not None:
        credit_note_create(invoice=allocation.line.invoice, parts=[CreditRequest(allocation.time_entry_id, 60)],
                           release=True, user=user, reason="Billed at the wrong rate; rebilled.")
        made += 1
    # This month so far: one client's draft is out for review.
    client = (Client.objects.filter(is_active=True, contracts__projects__time_entries__status="approved")
              .annotate(minutes=Sum("contracts__projects__time_entries__minutes")).order_by("-minutes").first())
    if client is not None:
        this_month = today.replace(day=1)
        last_sunday = today - dt.timedelta(days=today.weekday() + 1)
        if last_sunday >= this_month:
            for draft in billing_run_create(period_start=this_month, period_end=last_sunday, client=client,
                                            user=user).invoices:
                invoice_send_preview(invoice=draft, user=user)
                made += 1
    return made
