"""Shared set-up for invoicing tests: a client with a contract, rates and approved time."""

import datetime as dt

from djmoney.money import Money

from billing.pipeline import TimeEntryInput, ingest
from projects.models import EntrySource, TimeEntry


def approved_time(member, project, task_type, rows, prefix="t"):
    """Log (day, minutes) rows for a member and return the stored entries; all must come out approved."""
    inputs = [TimeEntryInput(member_id=member.id, project_id=project.id, task_type_id=task_type.id,
                             work_date=day, minutes=minutes, external_id=f"{prefix}-{member.id}-{n}")
              for n, (day, minutes) in enumerate(rows)]
    result = ingest(inputs, EntrySource.API)
    assert not result.rejected, [r.errors for r in result.rejected]
    entries = list(TimeEntry.objects.filter(pk__in=[e.pk for e in result.by_index.values()]).order_by("id"))
    return entries


def money(value, currency="USD"):
    return Money(value, currency)


MARCH = (dt.date(2026, 3, 1), dt.date(2026, 3, 31))
