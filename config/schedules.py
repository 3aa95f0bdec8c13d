"""Every django-q2 schedule, in one place. `python manage.py sync_schedules` upserts them by name.

Intervals can be tuned per deployment with environment variables; names are the keys, so running the
sync again never duplicates a schedule.
"""

import os

from django_q.models import Schedule


def _minutes(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def schedules() -> list[dict]:
    return [
        {
            "name": "billing.sweep_unprocessed_entries",
            "func": "billing.tasks.sweep_unprocessed_entries",
            "schedule_type": Schedule.MINUTES,
            "minutes": _minutes("SWEEP_INTERVAL_MINUTES", 5),
        },
        {
            # Clients are billed the day after their billing period ends.
            "name": "billing.bill_clients_at_period_end",
            "func": "billing.tasks.bill_clients_at_period_end",
            "schedule_type": Schedule.CRON,
            "cron": os.environ.get("BILLING_RUN_CRON", "0 6 * * *"),
        },
        {
            # Monday 08:00 in the firm's time zone (Q_CLUSTER["time_zone"]).
            "name": "billing.weekly_client_summaries",
            "func": "billing.tasks.weekly_client_summaries",
            "schedule_type": Schedule.CRON,
            "cron": os.environ.get("WEEKLY_SUMMARY_CRON", "0 8 * * 1"),
        },
        {
            "name": "billing.finalize_reviewed_invoices",
            "func": "billing.tasks.finalize_reviewed_invoices",
            "schedule_type": Schedule.MINUTES,
            "minutes": _minutes("AUTO_FINALIZE_INTERVAL_MINUTES", 60),
        },
        {
            # The 1st of each month, 07:00 in the firm's time zone: last month's summary to management.
            "name": "reports.monthly_management_report",
            "func": "reports.tasks.monthly_management_report",
            "schedule_type": Schedule.CRON,
            "cron": os.environ.get("MANAGEMENT_REPORT_CRON", "0 7 1 * *"),
        },
        {
            # Skips quietly while TOGGL_API_TOKEN is unset. Mind Toggl's hourly quota (30 on Free).
            "name": "integrations.sync_toggl",
            "func": "integrations.tasks.sync_toggl",
            "schedule_type": Schedule.MINUTES,
            "minutes": _minutes("TOGGL_SYNC_MINUTES", 15),
        },
        {
            # Skips quietly while MONDAY_API_TOKEN is unset.
            "name": "integrations.sync_monday",
            "func": "integrations.tasks.sync_monday",
            "schedule_type": Schedule.MINUTES,
            "minutes": _minutes("MONDAY_SYNC_MINUTES", 10),
        },
        {
            # Skips quietly while SALESFORCE_CLIENT_SECRET is unset.
            "name": "integrations.sync_salesforce",
            "func": "integrations.tasks.sync_salesforce",
            "schedule_type": Schedule.MINUTES,
            "minutes": _minutes("SALESFORCE_SYNC_MINUTES", 30),
        },
        {
            "name": "integrations.push_salesforce_accounts",
            "func": "integrations.tasks.push_salesforce_accounts",
            "schedule_type": Schedule.MINUTES,
            "minutes": _minutes("SALESFORCE_PUSH_MINUTES", 60),
        },
        {
            # Skips quietly while KANTATA_API_TOKEN is unset (likewise HubSpot and Harvest below).
            "name": "integrations.push_kantata_budgets",
            "func": "integrations.tasks.push_kantata_budgets",
            "schedule_type": Schedule.MINUTES,
            "minutes": _minutes("KANTATA_PUSH_MINUTES", 30),
        },
        {
            "name": "integrations.push_hubspot_messages",
            "func": "integrations.tasks.push_hubspot_messages",
            "schedule_type": Schedule.MINUTES,
            "minutes": _minutes("HUBSPOT_PUSH_MINUTES", 10),
        },
        {
            "name": "integrations.push_harvest_invoices",
            "func": "integrations.tasks.push_harvest_invoices",
            "schedule_type": Schedule.MINUTES,
            "minutes": _minutes("HARVEST_PUSH_MINUTES", 15),
        },
    ]


def sync_schedules() -> tuple[int, int]:
    """Create or update every schedule by name; returns (created, updated)."""
    created = updated = 0
    for definition in schedules():
        values = {key: value for key, value in definition.items() if key != "name"}
        values.setdefault("repeats", -1)
        _, was_created = Schedule.objects.update_or_create(name=definition["name"], defaults=values)
        created += was_created
        updated += not was_created
    return created, updated
