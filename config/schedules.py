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
