"""What every report is asked for: a date range and optional filters (client, project, member, role).

The statuses below are the reports' vocabulary; each selector's docstring says which it counts.
"""

import datetime as dt
from dataclasses import dataclass, replace

from django.db.models import Q

from billing.models import ISSUED_STATUSES, InvoiceKind
from billing.periods import month_end
from projects.models import EntryStatus

# Logged time: every processed entry. Recorded ones are not rated yet; rejected ones will never count.
PROCESSED_STATUSES = (EntryStatus.PENDING, EntryStatus.APPROVED, EntryStatus.INVOICED)
# Revenue: what the firm bills or will bill, i.e. approved time (as on the Projects page).
REVENUE_STATUSES = (EntryStatus.APPROVED, EntryStatus.INVOICED)
# Issued invoices are the ones a client received; drafts and void invoices are not.
ISSUED = tuple(ISSUED_STATUSES)
INVOICE = InvoiceKind.INVOICE
CREDIT = InvoiceKind.CREDIT

# Reports that read months look back this far by default: the current month and the two before it.
DEFAULT_MONTHS = 3
MAX_RANGE_DAYS = 3 * 366


@dataclass(frozen=True)
class ReportScope:
    """A date range (inclusive) and the filters that narrow the time behind a report."""

    start: dt.date
    end: dt.date
    client_id: int | None = None
    project_id: int | None = None
    member_id: int | None = None
    role_id: int | None = None

    @property
    def filters_people(self) -> bool:
        return self.member_id is not None or self.role_id is not None

    @property
    def filters_work(self) -> bool:
        return self.client_id is not None or self.project_id is not None

    def entry_filter(self, path: str = "") -> Q:
        """The filters as a Q on time entries, reached through `path` (e.g. "time_entry__")."""
        q = Q()
        if self.client_id is not None:
            q &= Q(**{f"{path}project__client_id": self.client_id})
        if self.project_id is not None:
            q &= Q(**{f"{path}project_id": self.project_id})
        if self.member_id is not None:
            q &= Q(**{f"{path}member_id": self.member_id})
        if self.role_id is not None:
            q &= Q(**{f"{path}member__role_id": self.role_id})
        return q

    def work_filter(self, path: str = "") -> Q:
        """Only the client and project filters, as a Q on entries (for people-side queries)."""
        return ReportScope(self.start, self.end, self.client_id, self.project_id).entry_filter(path)

    def with_range(self, start: dt.date, end: dt.date) -> "ReportScope":
        return replace(self, start=start, end=end)

    @property
    def weekdays(self) -> int:
        return weekdays_between(self.start, self.end)

    def months(self) -> list[tuple[dt.date, dt.date]]:
        """Each calendar month the range touches, clipped to the range: (first day, last day)."""
        months, day = [], self.start
        while day <= self.end:
            last = min(month_end(day), self.end)
            months.append((day, last))
            day = last + dt.timedelta(days=1)
        return months


def weekdays_between(start: dt.date, end: dt.date) -> int:
    """Monday-to-Friday days in [start, end]: whole weeks count five, the rest day by day."""
    if end < start:
        return 0
    days = (end - start).days + 1
    whole_weeks, rest = divmod(days, 7)
    extra = sum(1 for offset in range(rest) if (start.weekday() + offset) % 7 < 5)
    return whole_weeks * 5 + extra


def default_range(today: dt.date) -> tuple[dt.date, dt.date]:
    """The current month to date and the two whole months before it."""
    first = today.replace(day=1)
    for _ in range(DEFAULT_MONTHS - 1):
        first = (first - dt.timedelta(days=1)).replace(day=1)
    return first, today


def previous_month(today: dt.date) -> tuple[dt.date, dt.date]:
    last = today.replace(day=1) - dt.timedelta(days=1)
    return last.replace(day=1), last
