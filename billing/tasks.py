"""Scheduled and queued work of billing: small functions that call services (see config/schedules.py)."""

import datetime as dt

from django.utils import timezone

from billing.invoicing import billing_run_create
from billing.notifications import send_weekly_summaries
from billing.periods import period_containing
from billing.pipeline import sweep_unprocessed
from billing.review import finalize_reviewed_drafts
from clients.models import Client


def sweep_unprocessed_entries() -> str:
    """Finish entries a crash left recorded but not rated (every few minutes)."""
    return f"{sweep_unprocessed()} entries processed"


def bill_clients_at_period_end(today: str | None = None) -> str:
    """Bill every active client whose billing period ended yesterday (daily)."""
    today = dt.date.fromisoformat(today) if today else timezone.localdate()
    yesterday = today - dt.timedelta(days=1)
    invoices = 0
    clients = [client for client in Client.objects.filter(is_active=True)
               if period_containing(yesterday, client.billing_period)[1] == yesterday]
    for client in clients:
        start, end = period_containing(yesterday, client.billing_period)
        invoices += len(billing_run_create(period_start=start, period_end=end, client=client).invoices)
    return f"{len(clients)} clients billed, {invoices} draft invoices"


def weekly_client_summaries() -> str:
    return f"{send_weekly_summaries()} weekly summaries sent"


def finalize_reviewed_invoices() -> str:
    return f"{finalize_reviewed_drafts()} drafts finalized after their review window"
