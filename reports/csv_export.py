"""CSV downloads that stream: rows are written as they are read, so memory does not grow with the report.

Selectors read the database in chunks (`.iterator(chunk_size=...)`); `stream_csv` turns any iterable
of rows into a StreamingHttpResponse without building the file in memory.
"""

import csv
from collections.abc import Iterable, Iterator, Sequence

from django.http import StreamingHttpResponse

from reports.selectors import AGE_BUCKETS
from reports.selectors.common import CHUNK_SIZE


class _Echo:
    """A file-like object whose write() hands the line back, so csv.writer produces one line at a time."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: Sequence[str], rows: Iterable[Sequence]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow(["" if value is None else value for value in row])


def stream_csv(filename: str, header: Sequence[str], rows: Iterable[Sequence]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(csv_lines(header, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# Columns of each report's CSV, as (header, row -> values).

UTILIZATION = (
    [
        "id",
        "name",
        "role",
        "members",
        "capacity_hours",
        "logged_hours",
        "billable_hours",
        "billable_utilization_percent",
    ],
    lambda r: [
        r.key,
        r.name,
        r.role_name,
        r.members,
        r.capacity_hours,
        r.logged_hours,
        r.billable_hours,
        r.billable_utilization,
    ],
)

PROFITABILITY = (
    [
        "id",
        "code",
        "name",
        "client",
        "currency",
        "hours",
        "billable_hours",
        "invoiced",
        "unbilled",
        "fees",
        "revenue",
        "cost",
        "cost_currency",
        "margin",
        "margin_percent",
        "effective_rate",
    ],
    lambda r: [
        r.key,
        r.code,
        r.name,
        r.client_name,
        r.currency,
        r.hours,
        r.billable_hours,
        r.invoiced,
        r.unbilled,
        r.fees,
        r.revenue,
        r.cost,
        r.cost_currency,
        r.margin,
        r.margin_percent,
        r.effective_rate,
    ],
)

BUDGETS = (
    [
        "project_id",
        "code",
        "name",
        "client",
        "currency",
        "budget_hours",
        "hours_used",
        "budget_amount",
        "amount_used",
        "percent_used",
        "burn_weekly_hours",
        "burn_weekly_amount",
        "forecast_run_out",
        "hours_in_range",
        "revenue",
        "cost",
        "margin",
        "margin_percent",
        "latest_alert",
    ],
    lambda r: [
        r.project.id,
        r.project.code,
        r.project.name,
        r.project.client.name,
        r.budget.currency if r.budget else r.project.contract.currency,
        r.project.budget_hours,
        r.budget.hours_used if r.budget else None,
        r.project.budget_amount.amount if r.project.budget_amount is not None else None,
        r.budget.amount_used if r.budget else None,
        r.percent_used,
        r.budget.burn_weekly_hours if r.budget else None,
        r.budget.burn_weekly_amount if r.budget else None,
        r.budget.forecast_run_out if r.budget else None,
        r.hours_in_range,
        r.budget.revenue if r.budget else None,
        r.budget.cost if r.budget else None,
        r.budget.margin if r.budget else None,
        r.budget.margin_percent if r.budget else None,
        r.alerts[0].message if r.alerts else "",
    ],
)

TIME_TO_INVOICE = (
    ["group", "name", "entries", "mean_days", "median_days", "p90_days"],
    lambda r: [r.key, r.name, r.entries, r.mean_days, r.median_days, r.p90_days],
)

ACCURACY = (
    [
        "group",
        "name",
        "currency",
        "lines",
        "invoiced",
        "disputed",
        "credited",
        "accurate",
        "accuracy_percent",
    ],
    lambda r: [
        r.key,
        r.name,
        r.currency,
        r.lines,
        r.invoiced,
        r.disputed,
        r.credited,
        r.accurate,
        r.accuracy,
    ],
)

WIP = (
    [
        "client_id",
        "client",
        "currency",
        *[f"hours_{label}" for label, _, _ in AGE_BUCKETS],
        *[f"amount_{label}" for label, _, _ in AGE_BUCKETS],
        "hours",
        "amount",
        "on_drafts",
    ],
    lambda r: [
        r.key,
        r.name,
        r.currency,
        *[b.hours for b in r.buckets],
        *[b.amount for b in r.buckets],
        r.hours,
        r.amount,
        r.on_drafts,
    ],
)

ENTRY_FIELDS = [
    "id",
    "work_date",
    "member__name",
    "member__role__name",
    "project__client__name",
    "project__code",
    "task_type__name",
    "minutes",
    "billable_minutes",
    "amount",
    "amount_currency",
    "cost_amount",
    "cost_amount_currency",
    "status",
    "invoice_number",
    "source",
    "external_id",
    "description",
]
ENTRY_HEADER = [
    "id",
    "work_date",
    "member",
    "role",
    "client",
    "project",
    "task_type",
    "minutes",
    "billable_minutes",
    "amount",
    "currency",
    "cost",
    "cost_currency",
    "status",
    "invoice",
    "source",
    "external_id",
    "description",
]


def entry_rows(entries) -> Iterator[Sequence]:
    """The entries of a drill-down as plain values, read from the database CHUNK_SIZE rows at a time."""
    return entries.values_list(*ENTRY_FIELDS).iterator(chunk_size=CHUNK_SIZE)


def report_csv(filename: str, columns, rows: Iterable) -> StreamingHttpResponse:
    header, values = columns
    return stream_csv(filename, header, (values(row) for row in rows))
