"""Utilization per member, role and firm: capacity, logged and billable hours, billable utilization.

Definitions (PRODUCT.md "Reports", made precise here):
- capacity hours = weekly_capacity_hours x weekdays (Monday to Friday) in the range / 5, summed over
  the members counted. No holiday calendar: every weekday is a working day.
- members counted: those matching the member and role filters that are active or logged time in the
  range. With a client or project filter, only members who logged time on it (their whole capacity
  still counts, so the figure reads "share of capacity spent billable on this client").
- logged hours = raw minutes of processed entries (pending, approved, invoiced) whose work date is in
  the range; recorded (not yet rated) and rejected entries are left out.
- billable hours = billable minutes (after the contract's rounding, caps split off, retainer-covered
  minutes included) of the same entries. Pending entries count: the work was done and rated billable,
  and leaving them out would make the latest weeks look idle until the approvers catch up. Rounding up
  can make billable hours exceed logged hours slightly.
- billable utilization = billable hours / capacity hours x 100, one decimal place (half up); empty
  when there is no capacity.
"""

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncMonth

from projects.models import TeamMember, TimeEntry
from reports.db import one_place
from reports.scope import PROCESSED_STATUSES, ReportScope, weekdays_between
from reports.selectors.common import CHUNK_SIZE, hours

GROUPINGS = ("member", "role", "firm")


@dataclass(frozen=True)
class UtilizationRow:
    key: int | None  # member id, role id, or None for the firm
    name: str
    capacity_hours: Decimal
    logged_hours: Decimal
    billable_hours: Decimal
    billable_utilization: Decimal | None
    members: int = 1
    role_name: str = ""


def _row(key, name, weekly_capacity, weekdays: int, logged: int, billable: int, **extra) -> UtilizationRow:
    capacity = Decimal(weekly_capacity or 0) * weekdays / 5
    utilization = None
    if capacity:
        utilization = one_place(Decimal(billable) / 60 / capacity * 100)
    return UtilizationRow(
        key=key,
        name=name,
        capacity_hours=capacity.quantize(Decimal("0.01")),
        logged_hours=hours(logged),
        billable_hours=hours(billable),
        billable_utilization=utilization,
        **extra,
    )


def _entries(scope: ReportScope):
    return TimeEntry.objects.filter(status__in=PROCESSED_STATUSES, work_date__range=(scope.start, scope.end))


def counted_members(scope: ReportScope):
    """The members whose capacity counts (see the module docstring)."""
    members = TeamMember.objects.all()
    if scope.member_id is not None:
        members = members.filter(pk=scope.member_id)
    if scope.role_id is not None:
        members = members.filter(role_id=scope.role_id)
    logged_in_scope = Exists(_entries(scope).filter(scope.work_filter(), member=OuterRef("pk")))
    if scope.filters_work:
        return members.filter(logged_in_scope)
    return members.filter(Q(is_active=True) | logged_in_scope)


def _with_time(scope: ReportScope):
    """Members annotated with their logged and billable minutes in scope (one correlated sum each)."""
    own = _entries(scope).filter(scope.work_filter(), member=OuterRef("pk")).order_by().values("member")
    logged = Subquery(own.annotate(total=Sum("minutes")).values("total"))
    billable = Subquery(own.annotate(total=Sum("billable_minutes")).values("total"))
    return counted_members(scope).annotate(
        logged=Coalesce(logged, Value(0)), billable=Coalesce(billable, Value(0))
    )


def utilization(*, scope: ReportScope, group_by: str = "member") -> Iterator[UtilizationRow]:
    """Utilization rows for the range, one query, read in chunks (see the module docstring)."""
    if group_by not in GROUPINGS:
        raise ValueError(f"group_by must be one of {', '.join(GROUPINGS)}")
    weekdays = scope.weekdays
    members = _with_time(scope)
    if group_by == "member":
        rows = members.values(
            "id", "name", "weekly_capacity_hours", "logged", "billable", "role__name"
        ).order_by("name", "id")
        for row in rows.iterator(chunk_size=CHUNK_SIZE):
            yield _row(
                row["id"],
                row["name"],
                row["weekly_capacity_hours"],
                weekdays,
                row["logged"],
                row["billable"],
                role_name=row["role__name"],
            )
    elif group_by == "role":
        rows = (
            members.values("role_id", "role__name")
            .annotate(
                weekly=Sum("weekly_capacity_hours"),
                logged_total=Sum("logged"),
                billable_total=Sum("billable"),
                head_count=Count("id"),
            )
            .order_by("role__name", "role_id")
        )
        for row in rows.iterator(chunk_size=CHUNK_SIZE):
            yield _row(
                row["role_id"],
                row["role__name"],
                row["weekly"],
                weekdays,
                row["logged_total"] or 0,
                row["billable_total"] or 0,
                members=row["head_count"],
            )
    else:
        total = members.aggregate(
            weekly=Sum("weekly_capacity_hours"),
            logged_total=Sum("logged"),
            billable_total=Sum("billable"),
            head_count=Count("id"),
        )
        yield _row(
            None,
            settings.FIRM_NAME,
            total["weekly"],
            weekdays,
            total["logged_total"] or 0,
            total["billable_total"] or 0,
            members=total["head_count"] or 0,
        )


@dataclass(frozen=True)
class UtilizationMonth:
    month: dt.date
    capacity_hours: Decimal
    logged_hours: Decimal
    billable_hours: Decimal
    billable_utilization: Decimal | None


def utilization_by_month(*, scope: ReportScope) -> list[UtilizationMonth]:
    """Firm utilization per calendar month of the range (months clipped to it): two queries.

    Capacity uses the members counted for the whole range (the firm has no history of who worked
    here when), prorated by each month's weekdays inside the range.
    """
    weekly = counted_members(scope).aggregate(weekly=Sum("weekly_capacity_hours"))["weekly"] or Decimal(0)
    by_month = {
        row["month"]: row
        for row in _entries(scope)
        .filter(scope.entry_filter())
        .annotate(month=TruncMonth("work_date"))
        .values("month")
        .annotate(logged=Sum("minutes"), billable=Sum("billable_minutes"))
        .order_by("month")
    }
    months = []
    for first, last in scope.months():
        row = by_month.get(first.replace(day=1), {})
        figures = _row(
            None, "", weekly, weekdays_between(first, last), row.get("logged") or 0, row.get("billable") or 0
        )
        months.append(
            UtilizationMonth(
                month=first.replace(day=1),
                capacity_hours=figures.capacity_hours,
                logged_hours=figures.logged_hours,
                billable_hours=figures.billable_hours,
                billable_utilization=figures.billable_utilization,
            )
        )
    return months
