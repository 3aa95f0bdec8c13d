"""Billing periods: weekly (Monday to Sunday), semimonthly (1st-15th, 16th-end) and monthly."""

import calendar
import datetime as dt
from collections.abc import Iterator

from clients.models import BillingPeriod


def month_end(day: dt.date) -> dt.date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def period_containing(day: dt.date, kind: str) -> tuple[dt.date, dt.date]:
    if kind == BillingPeriod.WEEKLY:
        start = day - dt.timedelta(days=day.weekday())
        return start, start + dt.timedelta(days=6)
    if kind == BillingPeriod.SEMIMONTHLY:
        if day.day <= 15:
            return day.replace(day=1), day.replace(day=15)
        return day.replace(day=16), month_end(day)
    return day.replace(day=1), month_end(day)


def periods_between(start: dt.date, end: dt.date, kind: str) -> Iterator[tuple[dt.date, dt.date]]:
    """Every whole or partial period from the one containing `start` to the one containing `end`."""
    day = start
    while day <= end:
        period = period_containing(day, kind)
        yield period
        day = period[1] + dt.timedelta(days=1)


def months_between(start: dt.date, end: dt.date) -> Iterator[dt.date]:
    """The first day of every month that starts within [start, end]."""
    month = start.replace(day=1)
    if month < start:
        month = month_end(month) + dt.timedelta(days=1)
    while month <= end:
        yield month
        month = month_end(month) + dt.timedelta(days=1)
