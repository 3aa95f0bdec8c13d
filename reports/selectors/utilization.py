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
from django.db.models import (
    BooleanField,
    CharField,
    DecimalField,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    Sum,
    Value,
)
from django.db.models.functions import TruncMonth

from projects.models import TeamMember, TimeEntry
from reports.db import one_place
from reports.scope import PROCESSED_STATUSES, ReportScope, weekdays_between
from reports.selectors.common import hours

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


def _blank(field) -> Value:
    """A typed NULL: a column one part of a UNION has no value for."""
    return Value(None, output_field=field)


def _member_rows(scope: ReportScope) -> list[dict]:
    """The counted members in name order: key, member_name, weekly, member_role, role_name, logged, billable.

    One query of two parts: the entries in scope summed per member (GROUP BY member_id alone, which
    PostgreSQL runs in parallel like a hand-written report), and every member the people filters allow with
    their details; the two are matched here by member id. A sum per member in a correlated subquery reads
    each member's entries through an index a heap page at a time; grouping by the member's name and role too
    makes PostgreSQL expect about one group per entry (and JIT-compile the query); looking each member up
    inside the grouped query stops it running in parallel.
    """
    totals = (
        _entries(scope)
        .filter(scope.entry_filter())
        .order_by()
        .values(key=F("member_id"))
        .annotate(
            logged=Sum("minutes"),
            billable=Sum("billable_minutes"),
            member_name=_blank(CharField()),
            weekly=_blank(DecimalField()),
            member_role=_blank(IntegerField()),
            role_name=_blank(CharField()),
            active=_blank(BooleanField()),
        )
    )
    people = TeamMember.objects.order_by()
    if scope.member_id is not None:
        people = people.filter(pk=scope.member_id)
    if scope.role_id is not None:
        people = people.filter(role_id=scope.role_id)
    details = people.values(
        key=F("id"),
        logged=_blank(IntegerField()),
        billable=_blank(IntegerField()),
        member_name=F("name"),
        weekly=F("weekly_capacity_hours"),
        member_role=F("role_id"),
        role_name=F("role__name"),
        active=F("is_active"),
    )
    minutes, members = {}, []
    # Two rows a member at most, so read at once: PostgreSQL plans a server-side cursor (iterator()) serially.
    for row in totals.union(details, all=True).order_by("member_name", "key"):
        if row["member_name"] is None:
            minutes[row["key"]] = (row["logged"], row["billable"])
        else:
            members.append(row)
    counted = []
    for member in members:
        logged, billable = minutes.get(member["key"], (None, None))
        # Time in scope counts a member; without it, only an active one and only without a work filter.
        if logged is None and (scope.filters_work or not member["active"]):
            continue
        counted.append({**member, "logged": logged or 0, "billable": billable or 0})
    return counted


@dataclass
class _Group:
    """Members rolled up into a role or the firm: capacities and minutes are exact sums."""

    key: int | None
    name: str
    weekly: Decimal = Decimal(0)
    logged: int = 0
    billable: int = 0
    members: int = 0

    def add(self, row: dict) -> None:
        self.weekly += row["weekly"] or 0
        self.logged += row["logged"] or 0
        self.billable += row["billable"] or 0
        self.members += 1


def utilization(*, scope: ReportScope, group_by: str = "member") -> Iterator[UtilizationRow]:
    """Utilization rows for the range from one query (see the module docstring).

    Roles and the firm add up the member rows: a firm has hundreds of members, not millions.
    """
    if group_by not in GROUPINGS:
        raise ValueError(f"group_by must be one of {', '.join(GROUPINGS)}")
    weekdays = scope.weekdays
    rows = _member_rows(scope)
    if group_by == "member":
        for row in rows:
            yield _row(
                row["key"],
                row["member_name"],
                row["weekly"],
                weekdays,
                row["logged"],
                row["billable"],
                role_name=row["role_name"],
            )
        return
    groups: dict[int | None, _Group] = {}
    for row in rows:
        key = row["member_role"] if group_by == "role" else None
        name = row["role_name"] if group_by == "role" else settings.FIRM_NAME
        groups.setdefault(key, _Group(key, name)).add(row)
    if group_by == "firm" and not groups:
        groups[None] = _Group(None, settings.FIRM_NAME)
    for group in sorted(groups.values(), key=lambda group: (group.name, group.key or 0)):
        yield _row(
            group.key,
            group.name,
            group.weekly,
            weekdays,
            group.logged,
            group.billable,
            members=group.members,
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
