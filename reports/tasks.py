"""Scheduled work of reports (see config/schedules.py)."""

import datetime as dt

from reports.monthly import send_monthly_summary


def monthly_management_report(today: str | None = None) -> str:
    """On the first of each month: last month's utilization and profitability to management."""
    sent = send_monthly_summary(today=dt.date.fromisoformat(today) if today else None)
    return f"{sent} monthly management summaries sent"
