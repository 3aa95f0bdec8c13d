"""The weekly time summary clients opt in to: last week's time, budget status, and unbilled work."""

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from django.conf import settings
from django.db.models import Q, Sum
from django.utils import timezone

from billing.client_messages import send_client_message
from billing.models import MessageKind
from clients.models import Client, Contact
from projects.models import EntryStatus, Project, ProjectBudget, ProjectStatus, TimeEntry

# Time a client sees: everything processed that will be billed, not rejected or waiting to be rated.
REPORTED_STATUSES = (EntryStatus.PENDING, EntryStatus.APPROVED, EntryStatus.INVOICED)


def last_week(today: dt.date) -> tuple[dt.date, dt.date]:
    monday = today - dt.timedelta(days=today.weekday())
    return monday - dt.timedelta(days=7), monday - dt.timedelta(days=1)


def _hours(minutes: int) -> str:
    return f"{Decimal(minutes) / 60:.2f} h"


def weekly_summary_body(client: Client, week: tuple[dt.date, dt.date], rows, budgets, unbilled) -> str:
    lines = [f"Dear {client.name},", "", f"Here is the time we logged for you from {week[0]:%d %b} to "
             f"{week[1]:%d %b %Y}.", ""]
    if rows:
        for (project_name, task_name), (minutes, amount, currency) in sorted(rows.items()):
            lines.append(f"  {project_name} · {task_name}: {_hours(minutes)}, {amount:,.2f} {currency}")
        total_minutes = sum(m for m, _, _ in rows.values())
        lines.append(f"  Total: {_hours(total_minutes)}")
    else:
        lines.append("  No time was logged last week.")
    if budgets:
        lines += ["", "Budget status:"]
        for name, percent in budgets:
            lines.append(f"  {name}: {percent}% of budget used" if percent is not None else f"  {name}: no budget set")
    lines += ["", "Unbilled work to date:"]
    if unbilled:
        lines += [f"  {amount:,.2f} {currency}" for currency, amount in sorted(unbilled.items())]
    else:
        lines.append("  none")
    lines += ["", f"Kind regards,\n{settings.FIRM_NAME}"]
    return "\n".join(lines)


def send_weekly_summaries(*, today: dt.date | None = None) -> int:
    """Email each client's opted-in contacts last week's summary; returns the number of messages sent."""
    today = today or timezone.localdate()
    week = last_week(today)
    recipients = defaultdict(list)
    for client_id, email in Contact.objects.filter(receives_weekly_summary=True, client__is_active=True) \
            .values_list("client_id", "email").order_by("client_id", "email"):
        recipients[client_id].append(email)
    if not recipients:
        return 0
    clients = Client.objects.in_bulk(recipients.keys())
    rows = defaultdict(dict)
    for row in (TimeEntry.objects.filter(project__client_id__in=recipients.keys(), work_date__range=week,
                                         status__in=REPORTED_STATUSES)
                .values("project__client_id", "project__name", "task_type__name", "amount_currency")
                .annotate(total_minutes=Sum("minutes"), total_amount=Sum("amount"))):
        rows[row["project__client_id"]][(row["project__name"], row["task_type__name"])] = (
            row["total_minutes"] or 0, row["total_amount"] or Decimal("0"), row["amount_currency"] or "")
    budgets = defaultdict(list)
    percents = dict(ProjectBudget.objects.filter(project__client_id__in=recipients.keys())
                    .values_list("project_id", "percent_used"))
    for project in Project.objects.filter(client_id__in=recipients.keys(), status=ProjectStatus.ACTIVE) \
            .order_by("name").only("id", "name", "client_id"):
        budgets[project.client_id].append((project.name, percents.get(project.id)))
    unbilled = defaultdict(dict)
    for row in (TimeEntry.objects.filter(Q(billable_minutes__gt=0), project__client_id__in=recipients.keys(),
                                         status=EntryStatus.APPROVED)
                .values("project__client_id", "amount_currency").annotate(total=Sum("amount"))):
        unbilled[row["project__client_id"]][row["amount_currency"]] = row["total"] or Decimal("0")

    sent = 0
    for client_id, to in recipients.items():
        client = clients[client_id]
        body = weekly_summary_body(client, week, rows[client_id], budgets[client_id], unbilled[client_id])
        send_client_message(client=client, kind=MessageKind.WEEKLY_SUMMARY, to=to, body=body,
                            subject=f"Your weekly time summary, {week[0]:%d %b} to {week[1]:%d %b %Y}")
        sent += 1
    return sent
