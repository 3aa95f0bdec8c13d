"""Budget health: every active project's use, burn, forecast run-out and alerts, and burn over time.

The lifetime figures (used, percent, burn rate, run-out, revenue, cost, margin) are the ones the
pipeline keeps in ProjectBudget (PRODUCT.md "Budgets"); the range adds the hours used inside it and
bounds the burn chart. Member and role filters keep the projects that member or role logged time on in
the range. The burn chart is one grouped query: hours and amount per project and week, with running
totals from a window function (SUM(...) OVER (PARTITION BY project ORDER BY week)).
"""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import (
    DecimalField,
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    Sum,
    Window,
)
from django.db.models.functions import TruncWeek

from projects.models import BudgetAlert, Project, ProjectBudget, ProjectStatus, TimeEntry
from reports.scope import PROCESSED_STATUSES, ReportScope
from reports.selectors.common import hours, money, percent

# Alerts listed per project; the Projects page has the rest.
LISTED_ALERTS = 3


class RunningTotal(Func):
    """SUM(<aggregate>) for use inside a window: a running total of a grouped sum."""

    function = "SUM"
    window_compatible = True


@dataclass
class BudgetRow:
    project: Project
    budget: ProjectBudget | None
    hours_in_range: Decimal
    alerts: list[BudgetAlert] = field(default_factory=list)

    @property
    def percent_used(self) -> Decimal | None:
        return self.budget.percent_used if self.budget else None


def budget_projects(scope: ReportScope):
    projects = Project.objects.filter(status=ProjectStatus.ACTIVE)
    if scope.client_id is not None:
        projects = projects.filter(client_id=scope.client_id)
    if scope.project_id is not None:
        projects = projects.filter(pk=scope.project_id)
    if scope.filters_people:
        projects = projects.filter(
            Exists(
                TimeEntry.objects.filter(
                    scope.entry_filter(),
                    project=OuterRef("pk"),
                    status__in=PROCESSED_STATUSES,
                    work_date__range=(scope.start, scope.end),
                )
            )
        )
    return projects


def budget_health(*, scope: ReportScope) -> list[BudgetRow]:
    """Active projects, most used budget first: two queries (projects with figures, their alerts)."""
    in_range = Q(
        time_entries__status__in=PROCESSED_STATUSES, time_entries__work_date__range=(scope.start, scope.end)
    )
    projects = (
        budget_projects(scope)
        .select_related("client", "contract", "manager", "budget")
        .annotate(minutes_in_range=Sum("time_entries__minutes", filter=in_range))
        .prefetch_related(
            Prefetch("budget_alerts", queryset=BudgetAlert.objects.order_by("-created_at", "-id"))
        )
        .order_by(F("budget__percent_used").desc(nulls_last=True), "client__name", "name")
    )
    return [
        BudgetRow(
            project=project,
            budget=getattr(project, "budget", None),
            hours_in_range=hours(project.minutes_in_range),
            alerts=list(project.budget_alerts.all())[:LISTED_ALERTS],
        )
        for project in projects
    ]


def _point(project: Project, week: dt.date, minutes: int, amount) -> "BurnPoint":
    used_hours, used_amount = hours(minutes), money(amount)
    shares = []
    if project.budget_hours:
        shares.append(percent(used_hours, project.budget_hours))
    if project.budget_amount is not None and project.budget_amount.amount:
        shares.append(percent(used_amount, project.budget_amount.amount))
    return BurnPoint(
        week=week,
        hours_used=used_hours,
        amount_used=used_amount,
        percent_used=max(shares) if shares else None,
    )


@dataclass(frozen=True)
class BurnPoint:
    week: dt.date
    hours_used: Decimal
    amount_used: Decimal
    percent_used: Decimal | None


def budget_burn(*, scope: ReportScope) -> dict[int, list[BurnPoint]]:
    """Per project, the budget used by the end of each week in the range (running totals since the start).

    Percent used is the larger of hours and amount use, like the pipeline's budget figure; projects
    without a budget get None. Weeks start on Monday; every week of the range has a point for every
    project with time up to its end (a week without time repeats the running total).
    """
    budgets = {
        p.id: p
        for p in budget_projects(scope).only("id", "budget_hours", "budget_amount", "budget_amount_currency")
    }
    weekly = (
        TimeEntry.objects.filter(
            project__in=budget_projects(scope), status__in=PROCESSED_STATUSES, work_date__lte=scope.end
        )
        .annotate(week=TruncWeek("work_date"))
        .order_by()
        .values("project_id", "week")
        # A plain aggregate first makes the query GROUP BY project and week; the windows, added after
        # it, run over those groups.
        .annotate(week_minutes=Sum("minutes"))
        .annotate(
            running_minutes=Window(
                RunningTotal(Sum("minutes"), output_field=IntegerField()),
                partition_by=[F("project_id")],
                order_by=F("week").asc(),
            ),
            running_amount=Window(
                RunningTotal(Sum("amount"), output_field=DecimalField(max_digits=14, decimal_places=2)),
                partition_by=[F("project_id")],
                order_by=F("week").asc(),
            ),
        )
        .order_by("project_id", "week")
    )
    first_week = scope.start - dt.timedelta(days=scope.start.weekday())
    weeks = [first_week + dt.timedelta(weeks=n) for n in range((scope.end - first_week).days // 7 + 1)]
    # Running totals per project and week; a week without time keeps the total of the week before.
    totals: dict[int, dict[dt.date, tuple[int, Decimal]]] = {}
    for row in weekly:
        totals.setdefault(row["project_id"], {})[row["week"]] = (
            row["running_minutes"],
            row["running_amount"],
        )
    burn: dict[int, list[BurnPoint]] = {}
    for project_id, by_week in totals.items():
        project = budgets[project_id]
        known = sorted(by_week)
        points, used, index = [], (0, Decimal(0)), 0
        for week in weeks:
            while index < len(known) and known[index] <= week:
                used = by_week[known[index]]
                index += 1
            points.append(_point(project, week, *used))
        burn[project_id] = points
    return burn
