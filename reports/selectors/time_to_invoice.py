"""Time-to-invoice: days from an entry's work date to the finalization of the invoice that bills it.

Definitions (PRODUCT.md "Reports", made precise here):
- an invoiced entry is counted once per issued invoice (finalized, sent or paid; not draft, not void,
  not a credit note) that bills it: each original allocation is one observation. An entry released by
  a credit note and billed again counts again, with its later invoice.
- days = the invoice's finalization date in the firm's time zone (settings.TIME_ZONE) minus the entry's
  work date. The range and the months are those of finalization.
- median and 90th percentile are PostgreSQL's percentile_cont (linear interpolation between the two
  nearest observations), computed by the database. SQLite has no percentile aggregate: there each
  grouping reads its day counts in one ordered query and interpolates the same way in Python (the
  fallback of reports.db.percentile_cont), so both databases give the same figures.
- the filters (client, project, member, role) apply to the invoiced entries.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from itertools import groupby

from django.db.models import Avg, Case, CharField, Count, F, Value, When
from django.db.models.functions import Coalesce, TruncDate, TruncMonth

from billing.models import Allocation
from reports.db import DaysBetween, PercentileCont, database_has_percentiles, one_place, percentile_cont
from reports.scope import INVOICE, ISSUED, ReportScope
from reports.selectors.common import CHUNK_SIZE

GROUPINGS = ("month", "client", "all")
# Bars of the distribution chart: (label, first day, last day or None).
BUCKETS = [
    ("0–7 days", 0, 7),
    ("8–14 days", 8, 14),
    ("15–30 days", 15, 30),
    ("31–45 days", 31, 45),
    ("46–60 days", 46, 60),
    ("61–90 days", 61, 90),
    ("over 90 days", 91, None),
]


@dataclass(frozen=True)
class TimeToInvoiceRow:
    key: object  # the month (date), the client id, or None for everything
    name: str
    entries: int
    mean_days: Decimal | None
    median_days: Decimal | None
    p90_days: Decimal | None


def invoiced_entries(scope: ReportScope):
    """One row per (entry, issued invoice) finalized in the range, with `days` and `finalized_on`."""
    return (
        Allocation.objects.filter(
            reverses__isnull=True, line__invoice__kind=INVOICE, line__invoice__status__in=ISSUED
        )
        .annotate(
            finalized_on=Coalesce(TruncDate("line__invoice__finalized_at"), F("line__invoice__issue_date"))
        )
        .filter(finalized_on__range=(scope.start, scope.end))
        .filter(scope.entry_filter("time_entry__"))
        .annotate(days=DaysBetween(F("finalized_on"), F("time_entry__work_date")))
    )


def _group_fields(group_by: str) -> dict:
    if group_by == "month":
        return {"group_key": TruncMonth("finalized_on"), "group_name": Value("", output_field=CharField())}
    if group_by == "client":
        return {
            "group_key": F("time_entry__project__client_id"),
            "group_name": F("time_entry__project__client__name"),
        }
    return {"group_key": Value(0), "group_name": Value("", output_field=CharField())}


def _name(group_by: str, key, name: str) -> str:
    if group_by == "month":
        return f"{key:%B %Y}"
    return name if group_by == "client" else "All invoiced time"


def time_to_invoice(*, scope: ReportScope, group_by: str = "month") -> Iterator[TimeToInvoiceRow]:
    """Count, mean, median and 90th percentile of days to invoice per group: one query."""
    if group_by not in GROUPINGS:
        raise ValueError(f"group_by must be one of {', '.join(GROUPINGS)}")
    observations = invoiced_entries(scope).annotate(**_group_fields(group_by)).order_by()
    order = ("group_name", "group_key") if group_by == "client" else ("group_key",)
    if database_has_percentiles():
        rows = (
            observations.values("group_key", "group_name")
            .annotate(
                entries=Count("id"),
                mean=Avg("days"),
                median=PercentileCont("days", 0.5),
                p90=PercentileCont("days", 0.9),
            )
            .order_by(*order)
        )
        for row in rows.iterator(chunk_size=CHUNK_SIZE):
            yield TimeToInvoiceRow(
                key=None if group_by == "all" else row["group_key"],
                name=_name(group_by, row["group_key"], row["group_name"]),
                entries=row["entries"],
                mean_days=one_place(row["mean"]),
                median_days=one_place(row["median"]),
                p90_days=one_place(row["p90"]),
            )
        return
    # SQLite fallback: the day counts of each group, in order, from one query.
    values = observations.values_list("group_key", "group_name", "days").order_by(*order, "days")
    for (key, name), group in groupby(values.iterator(chunk_size=CHUNK_SIZE), key=lambda row: row[:2]):
        days = [row[2] for row in group]
        yield TimeToInvoiceRow(
            key=None if group_by == "all" else key,
            name=_name(group_by, key, name),
            entries=len(days),
            mean_days=one_place(Decimal(sum(days)) / len(days)),
            median_days=one_place(percentile_cont(days, 0.5)),
            p90_days=one_place(percentile_cont(days, 0.9)),
        )


def overall_time_to_invoice(*, scope: ReportScope) -> TimeToInvoiceRow:
    """The range as a whole (an empty row when nothing was invoiced in it)."""
    for row in time_to_invoice(scope=scope, group_by="all"):
        return row
    return TimeToInvoiceRow(
        key=None, name="All invoiced time", entries=0, mean_days=None, median_days=None, p90_days=None
    )


@dataclass(frozen=True)
class DistributionBar:
    label: str
    entries: int


def days_distribution(*, scope: ReportScope) -> list[DistributionBar]:
    """How many invoiced entries took how long, in the buckets of BUCKETS: one grouped query."""
    whens = [When(days__lte=last, then=Value(label)) for label, _, last in BUCKETS if last is not None]
    counted = dict(
        invoiced_entries(scope)
        .annotate(bucket=Case(*whens, default=Value(BUCKETS[-1][0]), output_field=CharField()))
        .order_by()
        .values_list("bucket")
        .annotate(entries=Count("id"))
    )
    return [DistributionBar(label=label, entries=counted.get(label, 0)) for label, _, _ in BUCKETS]
