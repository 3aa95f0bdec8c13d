"""Credit notes: reverse specific allocations of an issued invoice, whole entries or parts of them.

Each reversed part is either released (the entry can be billed again, for exactly the credited minutes)
or written off (never billed again). Nothing else on the invoice changes, so a partial credit note
never re-opens other entries.
"""

from collections import defaultdict
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from billing.lifecycle import _event, _locked, store_pdf
from billing.models import (
    ISSUED_STATUSES,
    Allocation,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
)
from billing.money import ZERO, amount_for, hours, round_money
from billing.numbering import take_number
from projects.models import EntryStatus, TimeEntry


@dataclass
class CreditRequest:
    """Credit `minutes` of one entry's billing on the invoice; None means all of what is left."""

    time_entry_id: int
    minutes: int | None = None


def _billed_again_elsewhere(invoice: Invoice, entry_ids: list[int]) -> dict[int, Invoice]:
    """The invoice (issued or draft) that now bills each of these entries, where it is not `invoice`.

    An entry billed again after an earlier release has its live allocation there. Minutes released here
    could then never come back to a billing run, so such a release is refused. The entries are locked
    first: a billing run taking them at this moment finishes before we look, or waits for this note.
    """
    list(TimeEntry.objects.select_for_update().filter(id__in=entry_ids).order_by("id").values_list("id"))
    live = (Allocation.objects.filter(time_entry_id__in=entry_ids, is_live=True).exclude(line__invoice=invoice)
            .select_related("line__invoice__client"))
    return {allocation.time_entry_id: allocation.line.invoice for allocation in live}


def _rebilled_message(entry_id: int, other: Invoice) -> str:
    if other.status == InvoiceStatus.DRAFT:
        return (f"Entry {entry_id} is billed again on draft invoice {other.id} after an earlier release: delete "
                "that draft before releasing more of it, or write these minutes off.")
    return (f"Entry {entry_id} is billed again on {other.number} after an earlier release: credit it on "
            f"{other.number} to release more of it, or write these minutes off.")


def credit_note_create(*, invoice: Invoice, parts: list[CreditRequest], release: bool, user=None,
                       reason: str = "") -> Invoice:
    """Issue a numbered credit note reversing these parts of the invoice's allocations."""
    if not parts:
        raise ValidationError({"allocations": "Name at least one time entry to credit."})
    with transaction.atomic():
        invoice = _locked(invoice)
        if invoice.kind != InvoiceKind.INVOICE or invoice.status not in ISSUED_STATUSES:
            raise ValidationError(f"Only an issued invoice can be credited; {invoice} is "
                                  f"{invoice.get_status_display().lower()}.")
        originals = {
            a.time_entry_id: a for a in Allocation.objects.select_for_update(of=("self",))
            .filter(line__invoice=invoice, reverses__isnull=True, minutes__gt=0)
            .select_related("line", "time_entry")
        }
        rebilled = _billed_again_elsewhere(invoice, [part.time_entry_id for part in parts]) if release else {}
        errors, credits = [], []
        seen = set()
        for part in parts:
            original = originals.get(part.time_entry_id)
            left = original.minutes - original.credited_minutes if original else 0
            if original is None:
                errors.append({"time_entry": [f"Entry {part.time_entry_id} is not billed on {invoice}."]})
            elif part.time_entry_id in seen:
                errors.append({"time_entry": [f"Entry {part.time_entry_id} is named twice."]})
            elif left <= 0:
                errors.append({"time_entry": [f"Entry {part.time_entry_id} is already fully credited."]})
            elif part.minutes is not None and not 0 < part.minutes <= left:
                errors.append({"minutes": [f"Between 1 and {left} minutes of entry {part.time_entry_id} "
                                           "can be credited."]})
            elif part.time_entry_id in rebilled:
                errors.append({"time_entry": [_rebilled_message(part.time_entry_id, rebilled[part.time_entry_id])]})
            else:
                errors.append({})
                credits.append((original, part.minutes if part.minutes is not None else left))
            seen.add(part.time_entry_id)
        if any(errors):
            raise ValidationError({"allocations": errors})

        issue_date = timezone.localdate()
        note = Invoice.objects.create(
            kind=InvoiceKind.CREDIT, status=InvoiceStatus.FINALIZED, client=invoice.client,
            contract=invoice.contract, project=invoice.project, currency=invoice.currency,
            period_start=invoice.period_start, period_end=invoice.period_end, tax_rate=invoice.tax_rate,
            payment_terms_days=0, credited_invoice=invoice, issue_date=issue_date, due_date=issue_date,
            number=take_number(kind=InvoiceKind.CREDIT, year=issue_date.year), finalized_at=timezone.now(),
        )
        by_line = defaultdict(list)
        for original, minutes in credits:
            by_line[original.line_id].append((original, minutes))
        lines, reversals = [], []
        for position, (_, items) in enumerate(sorted(by_line.items()), start=1):
            source_line: InvoiceLine = items[0][0].line
            minutes = sum(m for _, m in items)
            amount = -amount_for(minutes, source_line.unit_rate)
            line = InvoiceLine(invoice=note, position=position, kind=LineKind.CREDIT,
                               description=f"Credit: {source_line.description}"[:300], quantity=-hours(minutes),
                               unit_rate=source_line.unit_rate, amount=amount, minutes=-minutes,
                               project_id=source_line.project_id, contract_id=source_line.contract_id)
            lines.append(line)
            for original, part_minutes in items:
                reversals.append(Allocation(time_entry_id=original.time_entry_id, line=line, minutes=-part_minutes,
                                            amount=-amount_for(part_minutes, source_line.unit_rate),
                                            is_live=False, reverses=original, written_off=not release))
        InvoiceLine.objects.bulk_create(lines)
        Allocation.objects.bulk_create(reversals)

        released = []
        for original, minutes in credits:
            original.credited_minutes += minutes
            if release:
                # The entry may be billed again, for what is no longer billed here (see billing runs).
                original.is_live = False
                released.append(original.time_entry_id)
            else:
                original.written_off = True
        Allocation.objects.bulk_update([o for o, _ in credits], ["credited_minutes", "is_live", "written_off"])
        TimeEntry.objects.filter(id__in=released, status=EntryStatus.INVOICED) \
            .exclude(allocations__is_live=True).update(status=EntryStatus.APPROVED)

        subtotal = sum((line.amount for line in lines), ZERO)
        tax = round_money(subtotal * invoice.tax_rate / 100)
        Invoice.objects.filter(pk=note.pk).update(subtotal=subtotal, tax=tax, total=subtotal + tax)
        note.refresh_from_db()
        details = {"credit_note": note.number, "entries": [o.time_entry_id for o, _ in credits],
                   "minutes": sum(m for _, m in credits), "release": release, "reason": reason}
        _event(note, user, "issued", "", credited_invoice=invoice.number, **details)
        _event(invoice, user, "credited", invoice.status, **details)
    store_pdf(note)
    return note
