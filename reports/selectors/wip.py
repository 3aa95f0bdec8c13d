"""Unbilled work (WIP): approved billable time no issued invoice bills yet, by client and age.

Definitions (PRODUCT.md "Reports", made precise here):
- unbilled: an entry that is approved (never billed, or released by a void or a credit note) or sits
  only on a draft invoice (drafts are not invoices yet), has billable minutes, and has no live
  allocation on an issued invoice. Written-off time is not unbilled: it will never be billed.
- its unbilled minutes and amount are its billable minutes and rated amount less what issued invoices
  still bill for it (non-zero only after a partial credit that released the rest).
- age = days from the work date to `today` (the firm's today by default); buckets 0-30, 31-60, 61-90
  and over 90 days. The range filters work dates.
- amounts are grouped by currency (the contract's); one row per client and currency.
"""

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import groupby

from django.db.models import Case, CharField, Count, F, Q, Sum, Value, When
from django.utils import timezone

from projects.models import EntryStatus, TimeEntry
from reports.scope import ReportScope
from reports.selectors.common import (
    CHUNK_SIZE,
    hours,
    money,
    on_issued_invoice,
    unbilled_amount,
    unbilled_minutes,
)

AGE_BUCKETS = [("0-30", 0, 30), ("31-60", 31, 60), ("61-90", 61, 90), ("90+", 91, None)]


@dataclass
class WipBucket:
    label: str
    hours: Decimal = Decimal("0.00")
    amount: Decimal = Decimal("0.00")
    entries: int = 0


@dataclass
class WipRow:
    key: int
    name: str
    currency: str
    buckets: list[WipBucket] = field(default_factory=list)
    on_drafts: Decimal = Decimal("0.00")

    @property
    def hours(self) -> Decimal:
        return sum((bucket.hours for bucket in self.buckets), Decimal("0.00"))

    @property
    def amount(self) -> Decimal:
        return sum((bucket.amount for bucket in self.buckets), Decimal("0.00"))

    @property
    def entries(self) -> int:
        return sum(bucket.entries for bucket in self.buckets)


def age_range(label: str, today: dt.date) -> tuple[dt.date | None, dt.date]:
    """The work dates of an age bucket: (earliest or None, latest)."""
    for name, youngest, oldest in AGE_BUCKETS:
        if name == label:
            return (
                today - dt.timedelta(days=oldest) if oldest is not None else None,
                today - dt.timedelta(days=youngest),
            )
    raise ValueError(f"Unknown age bucket {label!r}")


def unbilled_entries(scope: ReportScope, today: dt.date | None = None):
    """Entries with unbilled work in the range, with `unbilled_minutes`, `unbilled_amount` and `age`."""
    today = today or timezone.localdate()
    whens = [
        When(work_date__gte=today - dt.timedelta(days=oldest), then=Value(label))
        for label, _, oldest in AGE_BUCKETS
        if oldest is not None
    ]
    return (
        TimeEntry.objects.filter(
            scope.entry_filter(),
            work_date__range=(scope.start, scope.end),
            status__in=(EntryStatus.APPROVED, EntryStatus.INVOICED),
            billable_minutes__gt=0,
        )
        .exclude(on_issued_invoice())
        .annotate(unbilled_minutes=unbilled_minutes(), unbilled_amount=unbilled_amount())
        .filter(unbilled_minutes__gt=0)
        .annotate(age=Case(*whens, default=Value(AGE_BUCKETS[-1][0]), output_field=CharField()))
    )


def wip(*, scope: ReportScope, today: dt.date | None = None) -> Iterator[WipRow]:
    """One row per client and currency with its unbilled hours and amount per age bucket: one query."""
    rows = (
        unbilled_entries(scope, today)
        .order_by()
        .values(
            key=F("project__client_id"),
            name=F("project__client__name"),
            currency=F("project__contract__currency"),
            bucket=F("age"),
        )
        .annotate(
            minutes=Sum("unbilled_minutes"),
            amount=Sum("unbilled_amount"),
            entries=Count("id"),
            on_drafts=Sum("unbilled_amount", filter=Q(status=EntryStatus.INVOICED)),
        )
        .order_by("name", "key", "currency")
    )
    for (key, name, currency), group in groupby(
        rows.iterator(chunk_size=CHUNK_SIZE), key=lambda row: (row["key"], row["name"], row["currency"])
    ):
        found = {row["bucket"]: row for row in group}
        row = WipRow(key=key, name=name, currency=currency)
        for label, _, _ in AGE_BUCKETS:
            figures = found.get(label, {})
            row.buckets.append(
                WipBucket(
                    label=label,
                    hours=hours(figures.get("minutes")),
                    amount=money(figures.get("amount")),
                    entries=figures.get("entries", 0),
                )
            )
            row.on_drafts += money(figures.get("on_drafts"))
        yield row


@dataclass
class WipTotal:
    currency: str
    buckets: list[Decimal]
    total: Decimal


def wip_totals(rows) -> list[WipTotal]:
    """Unbilled amount per currency and age bucket, summed over the clients of that currency only."""
    totals: dict[str, WipTotal] = {}
    for row in rows:
        total = totals.setdefault(
            row.currency, WipTotal(row.currency, [Decimal("0.00")] * len(AGE_BUCKETS), Decimal("0.00"))
        )
        for index, bucket in enumerate(row.buckets):
            total.buckets[index] += bucket.amount
        total.total += row.amount
    return [totals[currency] for currency in sorted(totals)]
