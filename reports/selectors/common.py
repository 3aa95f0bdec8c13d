"""Expressions shared by the selectors: what an entry has been billed, and its unbilled remainder.

"Billed" is the net of the entry's allocations on issued invoices: the original allocations plus the
(negative) credit-note reversals. Drafts and void invoices bill nothing. Everything here is a database
expression evaluated per entry inside the selectors' aggregates, never a Python loop over entries.
"""

from decimal import ROUND_HALF_UP, Decimal

from django.db.models import (
    Case,
    DecimalField,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from billing.models import Allocation
from reports.scope import ISSUED, REVENUE_STATUSES

MONEY_FIELD = DecimalField(max_digits=14, decimal_places=2)
ZERO = Decimal("0.00")
# Rows read from the database per round trip when a report streams.
CHUNK_SIZE = 2000


def hours(minutes: int | None) -> Decimal:
    """Minutes as hours with two places, rounded half up."""
    return (Decimal(minutes or 0) / 60).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def money(value) -> Decimal:
    return Decimal(value or 0).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def percent(part, whole) -> Decimal | None:
    """part / whole as a percentage with one place, or None when there is nothing to divide by."""
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def _issued_allocations(entry_ref: str = "pk"):
    return Allocation.objects.filter(time_entry=OuterRef(entry_ref), line__invoice__status__in=ISSUED)


def billed_amount(entry_ref: str = "pk"):
    """The entry's net amount on issued invoices (credit notes subtracted)."""
    net = (
        _issued_allocations(entry_ref)
        .order_by()
        .values("time_entry")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    return Coalesce(Subquery(net, output_field=MONEY_FIELD), Value(ZERO), output_field=MONEY_FIELD)


def billed_minutes(entry_ref: str = "pk"):
    net = (
        _issued_allocations(entry_ref)
        .order_by()
        .values("time_entry")
        .annotate(total=Sum("minutes"))
        .values("total")
    )
    return Coalesce(Subquery(net, output_field=IntegerField()), Value(0), output_field=IntegerField())


def on_issued_invoice(entry_ref: str = "pk"):
    """The entry is billed now: a live allocation on an issued invoice (a write-off keeps it live)."""
    return Exists(_issued_allocations(entry_ref).filter(is_live=True))


def entry_revenue():
    """Revenue of one entry: what issued invoices bill for it if it is billed now, else its rated amount.

    An approved entry that is not billed yet (or was released by a credit note, or waits on a draft)
    counts at its rated amount; a billed one at the net of its allocations, so a written-off credit
    lowers revenue and a released one does not count twice. Pending and rejected time earns nothing.
    """
    return Case(
        When(~Q(status__in=REVENUE_STATUSES), then=Value(ZERO)),
        When(on_issued_invoice(), then=billed_amount()),
        default=Coalesce(F("amount"), Value(ZERO), output_field=MONEY_FIELD),
        output_field=MONEY_FIELD,
    )


def entry_invoiced():
    """The part of an entry's revenue that issued invoices bill (net of credit notes)."""
    return Case(
        When(status__in=REVENUE_STATUSES, then=billed_amount()), default=Value(ZERO), output_field=MONEY_FIELD
    )


def unbilled_amount():
    """Rated amount not billed by an issued invoice yet (for entries that are not billed now)."""
    return Coalesce(F("amount"), Value(ZERO), output_field=MONEY_FIELD) - billed_amount()


def unbilled_minutes():
    return F("billable_minutes") - billed_minutes()
