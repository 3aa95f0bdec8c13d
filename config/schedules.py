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
