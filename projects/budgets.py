"""Step 4 of the pipeline: keep the budgets of touched projects current and raise alerts once.

A refresh costs a fixed number of queries for any number of projects: totals and the burn window are
two grouped aggregates, budgets are upserted in one statement, new alerts inserted in one. In the
pipeline the totals come from routing's read of the same projects (`OtherEntriesTotals`) plus the batch.
"""

import datetime as dt
import math
from decimal import Decimal

from django.core.mail import send_mass_mail
from django.db import transaction
from django.db.models import Max, Q, Sum
from django.utils import timezone

from projects.bulk import upsert_all
from projects.models import (
    AlertKind,
    BudgetAlert,
    EntryStatus,
    Project,
    ProjectBudget,
    ProjectStatus,
    TimeEntry,
)

# Processed entries use the budget, whether approved yet or not; rejected ones never will.
USING_STATUSES = (EntryStatus.PENDING, EntryStatus.APPROVED, EntryStatus.INVOICED)
# Revenue is what the firm will bill: approved time.
REVENUE_STATUSES = (EntryStatus.APPROVED, EntryStatus.INVOICED)
BURN_WEEKS = 4
ZERO = Decimal("0.00")


def burn_window(today: dt.date) -> tuple[dt.date, dt.date]:
    """The last four full Monday-to-Sunday weeks before this week."""
    this_monday = today - dt.timedelta(days=today.weekday())
    return this_monday - dt.timedelta(weeks=BURN_WEEKS), this_monday - dt.timedelta(days=1)


def _percent(project: Project, minutes: int, amount: Decimal) -> Decimal | None:
    percents = []
    if project.budget_hours:
        percents.append(Decimal(minutes) / 60 / project.budget_hours * 100)
    if project.budget_amount is not None and project.budget_amount.amount > 0:
        percents.append(amount / project.budget_amount.amount * 100)
    return max(percents).quantize(Decimal("0.1")) if percents else None


def _run_out(project: Project, budget: ProjectBudget, today: dt.date) -> dt.date | None:
    """When the budget runs out at the current burn rate: the earlier of the hours and amount forecasts."""
    dates = []
    if project.budget_hours is not None and budget.burn_weekly_minutes > 0:
        left = project.budget_hours * 60 - budget.minutes_used
        dates.append(today + dt.timedelta(days=max(0, math.ceil(left / budget.burn_weekly_minutes * 7))))
    if project.budget_amount is not None and budget.burn_weekly_amount > 0:
        left = project.budget_amount.amount - budget.amount_used
        dates.append(today + dt.timedelta(days=max(0, math.ceil(left / budget.burn_weekly_amount * 7))))
    return min(dates) if dates else None


def _alerts_due(project: Project, budget: ProjectBudget, today: dt.date) -> list[BudgetAlert]:
    alerts = []
    if budget.percent_used is not None:
        for threshold in sorted(project.alert_thresholds or []):
            if budget.percent_used >= threshold:
                alerts.append(BudgetAlert(
                    project=project, kind=AlertKind.THRESHOLD, threshold=threshold,
                    percent_used=budget.percent_used,
                    message=f"{project.name} ({project.code}) has used {budget.percent_used}% of its budget, "
                            f"crossing the {threshold}% alert.",
                ))
    if project.end_date and project.status == ProjectStatus.ACTIVE:
        if budget.forecast_run_out and budget.forecast_run_out < project.end_date:
            alerts.append(BudgetAlert(
                project=project, kind=AlertKind.RUN_OUT_BEFORE_END, percent_used=budget.percent_used,
                message=f"At the current burn rate the budget of {project.name} ({project.code}) runs out on "
                        f"{budget.forecast_run_out}, before the project ends on {project.end_date}.",
            ))
        if project.end_date < today:
            alerts.append(BudgetAlert(
                project=project, kind=AlertKind.PAST_END_DATE, percent_used=budget.percent_used,
                message=f"{project.name} ({project.code}) ended on {project.end_date} but is still active.",
            ))
    return alerts


class OtherEntriesTotals:
    """The budget totals of some projects over their entries outside one batch: read once per batch.

    Routing needs the use before the batch's entries; the budget refresh after routing needs the same sums
    with the batch's entries added as routing left them. In one transaction nothing else writes those
    projects' entries in between (the pipeline's own writes are the batch's), so the refresh adds the batch
    in memory instead of reading every entry of the projects a second time.
    """

    def __init__(self, project_ids, batch_ids):
        self.project_ids = frozenset(project_ids)
        self.batch_ids = frozenset(batch_ids)
        rows = (TimeEntry.objects.filter(project_id__in=self.project_ids).exclude(id__in=self.batch_ids)
                .values("project_id").annotate(**TOTALS))
        self.by_project = {row.pop("project_id"): row for row in rows}

    def used(self, project_id: int) -> tuple[int, Decimal]:
        row = self.by_project.get(project_id, {})
        return row.get("used_minutes") or 0, row.get("used_amount") or ZERO

    def with_batch(self, entries) -> dict[int, dict]:
        """The totals with the batch's entries as they are in memory (and now written)."""
        totals = {project_id: dict(row) for project_id, row in self.by_project.items()}
        for entry in entries:
            total = totals.setdefault(entry.project_id, {})
            if entry.cost_amount_currency and entry.cost_amount_currency > (total.get("cost_currency") or ""):
                total["cost_currency"] = entry.cost_amount_currency
            if entry.status not in USING_STATUSES:
                continue
            amount = entry.amount.amount if entry.amount is not None else None
            total["used_minutes"] = (total.get("used_minutes") or 0) + entry.minutes
            if amount is not None:
                total["used_amount"] = (total.get("used_amount") or ZERO) + amount
                if entry.status in REVENUE_STATUSES:
                    total["revenue"] = (total.get("revenue") or ZERO) + amount
            if entry.cost_amount is not None:
                total["cost"] = (total.get("cost") or ZERO) + entry.cost_amount.amount
        return totals

    def covers(self, project_ids, entries) -> bool:
        return set(project_ids) <= self.project_ids and {entry.id for entry in entries} == self.batch_ids


# The budget figures of a project's entries, as one grouped aggregate.
TOTALS = {
    "used_minutes": Sum("minutes", filter=Q(status__in=USING_STATUSES)),
    "used_amount": Sum("amount", filter=Q(status__in=USING_STATUSES)),
    "revenue": Sum("amount", filter=Q(status__in=REVENUE_STATUSES)),
    "cost": Sum("cost_amount", filter=Q(status__in=USING_STATUSES)),
    "cost_currency": Max("cost_amount_currency"),
}


def refresh_budgets(*, project_ids, today: dt.date | None = None, batch=None) -> list[BudgetAlert]:
    """Recompute the budget figures of these projects and record (and email) alerts not raised before.

    `batch`: the entries the pipeline just routed; when routing left the totals of the other entries on it
    (`other_totals`), the figures are those plus the batch's, without reading the projects' entries again.
    """
    project_ids = set(project_ids)
    if not project_ids:
        return []
    today = today or timezone.localdate()
    projects = Project.objects.select_related("contract", "manager").in_bulk(project_ids)
    entries = TimeEntry.objects.filter(project_id__in=project_ids)
    others = getattr(batch, "other_totals", None)
    if others is not None and others.covers(project_ids, batch):
        totals = others.with_batch(batch)
    else:
        totals = {row.pop("project_id"): row for row in entries.values("project_id").annotate(**TOTALS)}
    start, end = burn_window(today)
    burn = {
        row["project_id"]: row
        for row in entries.filter(status__in=USING_STATUSES, work_date__range=(start, end))
        .values("project_id").annotate(used_minutes=Sum("minutes"), used_amount=Sum("amount"))
    }
    raised = set(BudgetAlert.objects.filter(project_id__in=project_ids).values_list("project_id", "kind", "threshold"))

    now = timezone.now()
    budgets, new_alerts = [], []
    for project_id, project in projects.items():
        total = totals.get(project_id, {})
        window = burn.get(project_id, {})
        budget = ProjectBudget(
            project=project, currency=project.contract.currency, refreshed_at=now,
            minutes_used=total.get("used_minutes") or 0, amount_used=total.get("used_amount") or ZERO,
            revenue=total.get("revenue") or ZERO, cost=total.get("cost") or ZERO,
            cost_currency=total.get("cost_currency") or "",
            burn_weekly_minutes=round((window.get("used_minutes") or 0) / BURN_WEEKS),
            burn_weekly_amount=((window.get("used_amount") or ZERO) / BURN_WEEKS).quantize(Decimal("0.01")),
        )
        budget.percent_used = _percent(project, budget.minutes_used, budget.amount_used)
        budget.forecast_run_out = _run_out(project, budget, today)
        budgets.append(budget)
        for alert in _alerts_due(project, budget, today):
            if (project_id, alert.kind, alert.threshold) not in raised:
                alert.emailed_to = project.manager.email if project.manager else ""
                new_alerts.append(alert)

    with transaction.atomic():
        upsert_all(budgets, unique_fields=["project"])
        # A concurrent refresh may raise the same alert: the unique constraint keeps one, silently.
        BudgetAlert.objects.bulk_create(new_alerts, ignore_conflicts=True)
        messages = [(f"Budget alert: {a.project.code}", a.message + "\n\nThis message was sent by Billable.",
                     None, [a.emailed_to]) for a in new_alerts if a.emailed_to]
        if messages:
            transaction.on_commit(lambda: send_mass_mail(messages, fail_silently=True))
    return new_alerts
