"""Billing run: a month of approved entries over every client into draft invoices (billing_run_create).

Baseline: one SQL statement that computes the same time lines (invoice by the client's consolidation,
line by its grouping and the entry's rate, minutes summed, amount rounded once per line) with GROUP BY.
The drafts the run made are checked against it: the same number of time lines and the same amounts.

Two runs are measured, each in a fresh process: a month with a tenth of the entries, then the full
month. Their peak memory shows whether memory grows with the number of entries.
"""

import datetime as dt
import time

from bench.context import Context
from bench.generator import HISTORY_TABLES, insert_history
from bench.harness import (
    BenchResult,
    Check,
    Measurement,
    StageClock,
    counting_queries,
    in_child,
    ratio,
    timed,
    vacuum_analyze,
)

NAME = "billing"
DEFAULT_ENTRIES = 100_000
TARGET_RATIO = 3.0
MEMORY_GROWTH_LIMIT = 1.5
SMALL_MONTH = (dt.date(2025, 2, 1), dt.date(2025, 2, 28))
MONTH = (dt.date(2025, 3, 1), dt.date(2025, 3, 31))

# The time lines of a period as billing_run_create would draft them (billing/invoicing.py _Builder).
LINES_SQL = """
SELECT CASE c.consolidation WHEN 'contract' THEN 'contract ' || k.id
                            WHEN 'project' THEN 'project ' || p.id
                            ELSE 'client ' || c.id || ' ' || k.currency END AS invoice_key,
       CASE WHEN k.billing_type = 'retainer' THEN 'retainer_overage ' || k.id ELSE 'time' END AS kind,
       CASE c.line_grouping WHEN 'member' THEN 'member ' || e.member_id
                            WHEN 'project' THEN 'project ' || e.project_id
                            WHEN 'day' THEN 'day ' || e.work_date
                            WHEN 'detailed' THEN 'entry ' || e.id
                            ELSE 'task ' || e.task_type_id END AS line_key,
       e.rate,
       sum(e.billable_minutes - e.covered_minutes) AS minutes,
       round(sum(e.billable_minutes - e.covered_minutes) * e.rate / 60, 2) AS amount
FROM projects_timeentry e
JOIN projects_project p ON p.id = e.project_id
JOIN clients_client c ON c.id = p.client_id
JOIN clients_contract k ON k.id = p.contract_id
WHERE e.status = 'approved' AND e.work_date BETWEEN %s AND %s
  AND e.billable_minutes - e.covered_minutes > 0
GROUP BY 1, 2, 3, 4
"""


def _sql_lines(period) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(LINES_SQL, list(period))
        return cursor.fetchall()


def _billing_run(label: str, period) -> Measurement:
    from django.db.models.query import QuerySet

    from billing import invoicing

    clock = StageClock()
    clock.wrap(QuerySet, "bulk_update", "bulk_update")
    clock.wrap(QuerySet, "bulk_create", "bulk_create")
    clock.wrap(invoicing._Builder, "add_entry", "grouping entries into lines")
    counter, wrapper = counting_queries()
    with wrapper:
        started = time.perf_counter()
        result = invoicing.billing_run_create(period_start=period[0], period_end=period[1])
        seconds = time.perf_counter() - started
    return Measurement(label=label, seconds=seconds, rows=result.run.entries_billed, queries=counter.count,
                       extra={"run": result.run.id, "invoices": len(result.invoices),
                              "db_seconds": round(counter.seconds, 1), "stages": clock.shares(seconds)})


def _verify(run_id: int, expected: list[tuple]) -> tuple[bool, str]:
    from django.db.models import Count, Sum

    from billing.models import InvoiceLine, LineKind

    made = InvoiceLine.objects.filter(invoice__billing_run_id=run_id,
                                      kind__in=(LineKind.TIME, LineKind.RETAINER_OVERAGE)) \
        .aggregate(lines=Count("id"), amount=Sum("amount"), minutes=Sum("minutes"))
    want = {"lines": len(expected), "amount": sum(row[5] for row in expected),
            "minutes": sum(row[4] for row in expected)}
    same = made == want
    return same, (f"drafts have {made['lines']:,} time lines, {made['minutes']:,} minutes, {made['amount']:,} "
                  f"in all currencies; the SQL baseline {want['lines']:,}, {want['minutes']:,}, {want['amount']:,}")


def run(context: Context) -> BenchResult:
    from django.db import connections

    entries = context.scaled(DEFAULT_ENTRIES)
    small = max(entries // 10, 100)
    result = BenchResult(NAME)
    context.log(f"billing: writing {small:,} + {entries:,} approved entries")
    insert_history(tag="feb", entries=small, start=SMALL_MONTH[0], end=SMALL_MONTH[1])
    insert_history(tag="mar", entries=entries, start=MONTH[0], end=MONTH[1])
    connections.close_all()
    vacuum_analyze(context.url(), HISTORY_TABLES)

    context.log("billing: SQL baseline, then the runs")
    baseline = timed("baseline: one GROUP BY for the same lines", lambda: len(_sql_lines(MONTH)), repeat=3)
    expected = _sql_lines(MONTH)
    rows = entries
    baseline.extra["lines"], baseline.rows = baseline.rows, rows
    small_run = in_child(lambda: _billing_run(f"billing run, {small:,} entries", SMALL_MONTH))
    full_run = in_child(lambda: _billing_run(f"billing run, {entries:,} entries", MONTH))
    # Rows are the entries billed (approved and billable); the SQL groups exactly those.
    full_run.label = f"billing run: {entries:,} approved entries, {full_run.rows:,} billable"
    small_run.label = f"billing run: {small:,} approved entries, {small_run.rows:,} billable"
    baseline.rows = full_run.rows
    result.measurements += [full_run, baseline, small_run]

    same, verification = _verify(full_run.extra["run"], expected)
    result.checks.append(Check("billing run time / SQL GROUP BY time", ratio(full_run, baseline),
                               f"<= {TARGET_RATIO:g}x", (ratio(full_run, baseline) or 0) <= TARGET_RATIO, unit="x"))
    growth = round(full_run.peak_mb / small_run.peak_mb, 2) if small_run.peak_mb else None
    result.checks.append(Check(f"peak memory at {entries:,} / at {small:,} entries", growth,
                               f"<= {MEMORY_GROWTH_LIMIT:g}x", growth is not None and growth <= MEMORY_GROWTH_LIMIT,
                               unit="x", note=f"{small_run.peak_mb} MB then {full_run.peak_mb} MB"))
    result.checks.append(Check("drafts match the SQL line totals", None, "equal", same))
    result.notes += [
        verification,
        f"{full_run.extra['invoices']} draft invoices; {full_run.extra['db_seconds']}s of {full_run.seconds:.1f}s "
        f"waiting on PostgreSQL; {full_run.queries} queries for {full_run.rows:,} entries, "
        f"{small_run.queries} for {small_run.rows:,}",
        f"time by step: {full_run.extra['stages']}",
        f"peak memory {small_run.peak_mb} MB for {small_run.rows:,} entries, {full_run.peak_mb} MB for "
        f"{full_run.rows:,}",
    ]
    return result
