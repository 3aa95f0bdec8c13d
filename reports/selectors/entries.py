"""The entries behind a figure: every report links its numbers here, with the same scope and a basis.

Bases (what the figure counted):
- logged: processed entries (pending, approved, invoiced) worked in the range (utilization, profitability)
- billable: the same with billable minutes (utilization's billable hours)
- revenue: approved and invoiced entries worked in the range (profitability's revenue)
- unbilled: unbilled work (WIP), optionally of one age bucket
- invoiced: entries billed by issued invoices finalized in the range (time-to-invoice)
- issued: entries on issued invoices issued in the range (billing accuracy)
"""

import datetime as dt

from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone

from billing.models import Allocation
from projects.models import TimeEntry
from reports.scope import INVOICE, ISSUED, PROCESSED_STATUSES, REVENUE_STATUSES, ReportScope
from reports.selectors.time_to_invoice import invoiced_entries
from reports.selectors.wip import age_range, unbilled_entries

BASES = ("logged", "billable", "revenue", "unbilled", "invoiced", "issued")


def _latest_invoice_number():
    return Subquery(
        Allocation.objects.filter(
            time_entry=OuterRef("pk"),
            reverses__isnull=True,
            line__invoice__status__in=ISSUED,
            line__invoice__kind=INVOICE,
        )
        .order_by("-line__invoice__issue_date", "-id")
        .values("line__invoice__number")[:1]
    )


def entries_behind(*, scope: ReportScope, basis: str = "logged", age: str = "", today: dt.date | None = None):
    """A queryset of the entries behind a figure, oldest first, with `invoice_number` annotated."""
    if basis not in BASES:
        raise ValueError(f"basis must be one of {', '.join(BASES)}")
    today = today or timezone.localdate()
    in_range = {"work_date__range": (scope.start, scope.end)}
    if basis == "unbilled":
        entries = unbilled_entries(scope, today)
        if age:
            earliest, latest = age_range(age, today)
            entries = entries.filter(work_date__lte=latest)
            if earliest is not None:
                entries = entries.filter(work_date__gte=earliest)
    elif basis == "invoiced":
        # The same observations as the time-to-invoice report (finalization date in the firm's time zone).
        billed = invoiced_entries(scope).filter(time_entry=OuterRef("pk"))
        entries = TimeEntry.objects.filter(scope.entry_filter()).filter(Exists(billed))
    elif basis == "issued":
        on_issued = Allocation.objects.filter(
            time_entry=OuterRef("pk"),
            reverses__isnull=True,
            line__invoice__kind=INVOICE,
            line__invoice__status__in=ISSUED,
            line__invoice__issue_date__range=(scope.start, scope.end),
        )
        entries = TimeEntry.objects.filter(scope.entry_filter()).filter(Exists(on_issued))
    else:
        statuses = REVENUE_STATUSES if basis == "revenue" else PROCESSED_STATUSES
        entries = TimeEntry.objects.filter(scope.entry_filter(), status__in=statuses, **in_range)
        if basis == "billable":
            entries = entries.filter(billable_minutes__gt=0)
    return (
        entries.select_related("member", "project__client", "task_type")
        .annotate(invoice_number=_latest_invoice_number())
        .order_by("work_date", "id")
    )
