"""The monthly management summary: last month's utilization and profitability, emailed to management.

Recipients are the active users in the management group who have an email address; each gets their own
message (send_mass_mail), so nobody sees the others' addresses. The figures are the report selectors'
for the previous calendar month, so the email and the pages always agree.
"""

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mass_mail
from django.urls import reverse
from django.utils import timezone

from projects.access import MANAGEMENT
from reports.scope import ReportScope, previous_month
from reports.selectors import (
    billing_accuracy,
    overall_time_to_invoice,
    profitability,
    utilization,
    wip,
    wip_totals,
)

# Members and projects listed in the email; the pages have everything.
LISTED_ROWS = 10


def management_recipients() -> list[str]:
    users = get_user_model().objects.filter(groups__name=MANAGEMENT, is_active=True).exclude(email="")
    return sorted(set(users.values_list("email", flat=True)))


def _percent(value) -> str:
    return "–" if value is None else f"{value}%"


def _money(value: Decimal | None, currency: str) -> str:
    return "–" if value is None else f"{value:,.2f} {currency}"


def monthly_summary(*, scope: ReportScope) -> tuple[str, str]:
    """(subject, plain-text body) of the summary for the scope's month."""
    firm = next(iter(utilization(scope=scope, group_by="firm")))
    roles = list(utilization(scope=scope, group_by="role"))
    members = sorted(
        utilization(scope=scope, group_by="member"),
        key=lambda row: (row.billable_utilization is None, -(row.billable_utilization or 0)),
    )
    clients = list(profitability(scope=scope, group_by="client"))
    projects = sorted(
        (row for row in profitability(scope=scope, group_by="project") if row.margin is not None),
        key=lambda row: row.margin_percent if row.margin_percent is not None else Decimal(0),
    )
    accuracy = list(billing_accuracy(scope=scope, group_by="currency"))
    to_invoice = overall_time_to_invoice(scope=scope)
    unbilled = wip_totals(wip(scope=scope))

    month = f"{scope.start:%B %Y}"
    lines = [
        f"{settings.FIRM_NAME}: management summary for {month}",
        "",
        "UTILIZATION",
        f"  Firm: {_percent(firm.billable_utilization)} billable ({firm.billable_hours} of "
        f"{firm.capacity_hours} capacity hours; {firm.logged_hours} h logged by {firm.members} members)",
    ]
    lines += [
        f"  {row.name}: {_percent(row.billable_utilization)} ({row.billable_hours} of {row.capacity_hours} h)"
        for row in roles
    ]
    if members:
        lines += ["", "  Highest billable utilization:"]
        lines += [f"    {row.name}: {_percent(row.billable_utilization)}" for row in members[:LISTED_ROWS]]
    lines += ["", "PROFITABILITY BY CLIENT (revenue = invoiced + unbilled approved time)"]
    lines += [
        f"  {row.name}: revenue {_money(row.revenue, row.currency)}, cost "
        f"{_money(row.cost, row.cost_currency)}, margin {_money(row.margin, row.currency)} "
        f"({_percent(row.margin_percent)})"
        for row in clients
    ] or ["  No time or fees this month."]
    if projects:
        lines += ["", "  Lowest project margins:"]
        lines += [
            f"    {row.code} {row.name}: {_percent(row.margin_percent)} "
            f"of {_money(row.revenue, row.currency)}"
            for row in projects[:LISTED_ROWS]
        ]
    lines += ["", "INVOICING"]
    if to_invoice.entries:
        lines.append(
            f"  Time to invoice: median {to_invoice.median_days} days, 90th percentile "
            f"{to_invoice.p90_days} days ({to_invoice.entries} entries invoiced)"
        )
    else:
        lines.append("  No invoiced time this month.")
    lines += [
        f"  Billing accuracy ({row.currency}): {_percent(row.accuracy)} "
        f"of {_money(row.invoiced, row.currency)}"
        for row in accuracy
    ]
    lines += [
        f"  Unbilled work from this month ({total.currency}): {_money(total.total, total.currency)}"
        for total in unbilled
    ]
    query = f"?start={scope.start.isoformat()}&end={scope.end.isoformat()}"
    lines += [
        "",
        f"The reports, with charts and the entries behind every figure: "
        f"{settings.SITE_URL}{reverse('reports:dashboard')}{query}",
        "",
        "This message was sent by Billable.",
    ]
    return f"{settings.FIRM_NAME}: utilization and profitability, {month}", "\n".join(lines)


def send_monthly_summary(*, today: dt.date | None = None) -> int:
    """Email the previous month's summary to every management user; returns the number of messages."""
    recipients = management_recipients()
    if not recipients:
        return 0
    start, end = previous_month(today or timezone.localdate())
    subject, body = monthly_summary(scope=ReportScope(start=start, end=end))
    return send_mass_mail([(subject, body, None, [address]) for address in recipients])
