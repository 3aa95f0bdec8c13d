"""CSV export: the reports' entries download streamed for a month of 10,000 and a month of 100,000 entries.

It runs the code the download runs (reports.views.entries_page streams
`csv_lines(ENTRY_HEADER, entry_rows(entries_behind(...)))`), consuming every line as the response would.
Each size runs in a fresh process; their peak memory shows whether it grows with the rows exported.

Baseline: PostgreSQL writing the same columns as CSV itself (COPY ... TO STDOUT WITH CSV).
"""

import datetime as dt

from bench.context import Context
from bench.generator import HISTORY_TABLES, insert_history
from bench.harness import BenchResult, Check, ratio, raw_connection, timed, vacuum_analyze

NAME = "csv"
DEFAULT_ENTRIES = 100_000
MEMORY_GROWTH_LIMIT = 1.5
SMALL_MONTH = (dt.date(2025, 2, 1), dt.date(2025, 2, 28))
MONTH = (dt.date(2025, 3, 1), dt.date(2025, 3, 31))

COPY_SQL = """
COPY (
    SELECT e.id, e.work_date, m.name, r.name, c.name, p.code, t.name, e.minutes, e.billable_minutes, e.amount,
           e.amount_currency, e.cost_amount, e.cost_amount_currency, e.status,
           (SELECT i.number FROM billing_allocation a JOIN billing_invoiceline l ON l.id = a.line_id
            JOIN billing_invoice i ON i.id = l.invoice_id
            WHERE a.time_entry_id = e.id AND a.reverses_id IS NULL AND i.status IN ('finalized', 'sent', 'paid')
              AND i.kind = 'invoice' ORDER BY i.issue_date DESC, a.id DESC LIMIT 1),
           e.source, e.external_id, e.description
    FROM projects_timeentry e
    JOIN projects_teammember m ON m.id = e.member_id JOIN projects_role r ON r.id = m.role_id
    JOIN projects_project p ON p.id = e.project_id JOIN clients_client c ON c.id = p.client_id
    JOIN projects_tasktype t ON t.id = e.task_type_id
    WHERE e.status IN ('pending', 'approved', 'invoiced') AND e.work_date BETWEEN '{start}' AND '{end}'
    ORDER BY e.work_date, e.id
) TO STDOUT WITH CSV HEADER
"""


def _stream(period) -> tuple[int, dict]:
    from reports.csv_export import ENTRY_HEADER, csv_lines, entry_rows
    from reports.scope import ReportScope
    from reports.selectors import entries_behind

    entries = entries_behind(scope=ReportScope(start=period[0], end=period[1]), basis="logged")
    lines = size = 0
    for line in csv_lines(ENTRY_HEADER, entry_rows(entries)):
        lines += 1
        size += len(line)
    return lines - 1, {"bytes": size}


def _copy(url: str, period) -> tuple[int, dict]:
    size = 0
    with raw_connection(url) as connection, connection.cursor() as cursor:
        with cursor.copy(COPY_SQL.format(start=period[0], end=period[1])) as copy:
            for block in copy:
                size += len(block)
        rows = cursor.rowcount
    return rows, {"bytes": size}


def run(context: Context) -> BenchResult:
    result = BenchResult(NAME)
    try:
        import reports.csv_export  # noqa: F401
    except ImportError as error:
        result.skipped = f"reports.csv_export cannot be imported yet ({error})"
        return result
    from django.db import connections

    entries = context.scaled(DEFAULT_ENTRIES)
    small = max(entries // 10, 100)
    context.log(f"csv: writing {small:,} + {entries:,} entries")
    insert_history(tag="feb", entries=small, start=SMALL_MONTH[0], end=SMALL_MONTH[1])
    insert_history(tag="mar", entries=entries, start=MONTH[0], end=MONTH[1])
    connections.close_all()
    vacuum_analyze(context.url(), HISTORY_TABLES)

    small_run = timed(f"entries CSV streamed, {small:,} rows", lambda: _stream(SMALL_MONTH))
    full_run = timed(f"entries CSV streamed, {entries:,} rows", lambda: _stream(MONTH))
    baseline = timed("baseline: COPY ... TO STDOUT WITH CSV", lambda: _copy(context.url(), MONTH), repeat=3)
    baseline.queries = 1  # on its own connection, which Django's counter does not see
    result.measurements += [full_run, baseline, small_run]

    growth = round(full_run.peak_mb / small_run.peak_mb, 2) if small_run.peak_mb else None
    result.checks.append(Check(f"peak memory at {entries:,} / at {small:,} rows", growth,
                               f"<= {MEMORY_GROWTH_LIMIT:g}x", growth is not None and growth <= MEMORY_GROWTH_LIMIT,
                               unit="x", note=f"{small_run.peak_mb} MB then {full_run.peak_mb} MB"))
    result.checks.append(Check("streamed CSV time / COPY time (no target)", ratio(full_run, baseline), "-", None,
                               unit="x"))
    result.notes.append(f"{full_run.extra['bytes']:,} bytes streamed in {full_run.queries} queries; COPY wrote "
                        f"{baseline.extra['bytes']:,} bytes")
    return result
