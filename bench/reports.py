"""Reports: utilization (per member) and profitability (per project) for a year over a million entries.

Baselines: hand-written SQL for the same figures. Utilization: one GROUP BY member over the year's
processed entries joined to the members. Profitability: the entries' net billed amounts aggregated once
from the allocations on issued invoices (a hash join, where the selector asks a correlated subquery per
entry), then one GROUP BY project, plus the fee lines. Both are checked against the selectors' rows.

The year is written in SQL: entries Monday to Friday, invoiced (issued invoices, lines, allocations)
through July, then approved, with some pending and some rejected.
"""

import datetime as dt

from bench.context import Context
from bench.generator import HISTORY_TABLES, insert_history
from bench.harness import BenchResult, Check, ratio, timed, vacuum_analyze

NAME = "reports"
DEFAULT_ENTRIES = 1_000_000
TARGET_RATIO = 2.0
TARGET_SECONDS = 1.0
YEAR = (dt.date(2025, 1, 1), dt.date(2025, 12, 31))
PROCESSED = ("pending", "approved", "invoiced")
ISSUED = ("finalized", "sent", "paid")

UTILIZATION_SQL = """
WITH logged AS (
    SELECT member_id, sum(minutes) AS minutes, sum(billable_minutes) AS billable
    FROM projects_timeentry
    WHERE status IN ('pending', 'approved', 'invoiced') AND work_date BETWEEN %(start)s AND %(end)s
    GROUP BY member_id
)
SELECT m.id, m.name, r.name, m.weekly_capacity_hours * %(weekdays)s / 5 AS capacity_hours,
       COALESCE(l.minutes, 0), COALESCE(l.billable, 0),
       round(COALESCE(l.billable, 0) / 60.0 / nullif(m.weekly_capacity_hours * %(weekdays)s / 5, 0) * 100, 1)
FROM projects_teammember m
JOIN projects_role r ON r.id = m.role_id
LEFT JOIN logged l ON l.member_id = m.id
WHERE m.is_active OR l.member_id IS NOT NULL
ORDER BY m.name, m.id
"""

PROFITABILITY_SQL = """
WITH billed AS (
    SELECT a.time_entry_id, sum(a.amount) AS net, bool_or(a.is_live) AS live
    FROM billing_allocation a
    JOIN billing_invoiceline l ON l.id = a.line_id
    JOIN billing_invoice i ON i.id = l.invoice_id
    WHERE i.status IN ('finalized', 'sent', 'paid')
    GROUP BY a.time_entry_id
), per_project AS (
    SELECT e.project_id, sum(e.minutes) AS minutes, sum(e.billable_minutes) AS billable_minutes,
           sum(CASE WHEN e.status NOT IN ('approved', 'invoiced') THEN 0
                    WHEN b.live THEN b.net ELSE COALESCE(e.amount, 0) END) AS revenue,
           sum(CASE WHEN e.status IN ('approved', 'invoiced') THEN COALESCE(b.net, 0) ELSE 0 END) AS invoiced,
           sum(e.cost_amount) AS cost, min(e.cost_amount_currency) AS cost_currency_min,
           max(e.cost_amount_currency) AS cost_currency_max
    FROM projects_timeentry e
    LEFT JOIN billed b ON b.time_entry_id = e.id
    WHERE e.status IN ('pending', 'approved', 'invoiced') AND e.work_date BETWEEN %(start)s AND %(end)s
    GROUP BY e.project_id
)
SELECT p.id, p.code, p.name, c.name, k.currency, t.minutes, t.billable_minutes, t.revenue, t.invoiced, t.cost,
       t.cost_currency_min, t.cost_currency_max
FROM per_project t
JOIN projects_project p ON p.id = t.project_id
JOIN clients_client c ON c.id = p.client_id
JOIN clients_contract k ON k.id = p.contract_id
ORDER BY c.name, p.name, p.id
"""

FEES_SQL = """
SELECT COALESCE(l.project_id, l.contract_id), i.currency, sum(l.amount)
FROM billing_invoiceline l
JOIN billing_invoice i ON i.id = l.invoice_id
LEFT JOIN billing_contractcharge ch ON ch.line_id = l.id
WHERE i.kind = 'invoice' AND i.status IN ('finalized', 'sent', 'paid')
  AND l.kind IN ('retainer_fee', 'fixed_fee', 'milestone') AND l.amount <> 0
  AND COALESCE(ch.period_start, i.period_start) BETWEEN %(start)s AND %(end)s
GROUP BY 1, 2
"""


def _sql(statement: str, params: dict) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall()


def _params() -> dict:
    from reports.scope import weekdays_between

    return {"start": YEAR[0], "end": YEAR[1], "weekdays": weekdays_between(*YEAR)}


def _compare(selector_rows: dict, sql_rows: dict, what: str) -> tuple[bool, str]:
    differing = [key for key in selector_rows.keys() | sql_rows.keys() if selector_rows.get(key) != sql_rows.get(key)]
    if not differing:
        return True, f"{what}: the selector and the SQL agree on all {len(sql_rows)} rows"
    key = differing[0]
    return False, (f"{what}: {len(differing)} rows differ, e.g. {key}: selector {selector_rows.get(key)}, "
                   f"SQL {sql_rows.get(key)}")


def run(context: Context) -> BenchResult:
    result = BenchResult(NAME)
    try:
        from reports.scope import ReportScope
        from reports.selectors import profitability, utilization
    except ImportError as error:
        result.skipped = f"reports.selectors cannot be imported yet ({error}); nothing to measure"
        return result
    from django.db import connections

    from reports.selectors.common import hours, money

    entries = context.scaled(DEFAULT_ENTRIES)
    context.log(f"reports: writing a year of {entries:,} entries with invoices through July")
    history = insert_history(tag="year", entries=entries, start=YEAR[0], end=YEAR[1],
                             invoiced_before=dt.date(2025, 8, 1), paid_before=dt.date(2025, 6, 1),
                             pending_every=20, rejected_every=50)
    connections.close_all()
    vacuum_analyze(context.url(), HISTORY_TABLES)
    context.log(f"reports: {history.invoices:,} invoices, {history.allocations:,} allocations written; measuring")
    scope = ReportScope(start=YEAR[0], end=YEAR[1])
    params = _params()

    # Each operation hands its figures back, so the check below compares what was timed.
    def run_utilization():
        rows = {row.key: (row.logged_hours, row.billable_hours, row.billable_utilization)
                for row in utilization(scope=scope, group_by="member")}
        return entries, {"figures": rows}

    def run_profitability():
        rows = {row.key: (row.hours, row.revenue, row.invoiced) for row in profitability(scope=scope)}
        return entries, {"figures": rows}

    def sql_utilization():
        rows = {row[0]: (hours(row[4]), hours(row[5]), row[6]) for row in _sql(UTILIZATION_SQL, params)}
        return entries, {"figures": rows}

    def sql_profitability():
        rows = {row[0]: (hours(row[5]), money(row[7]), money(row[8])) for row in _sql(PROFITABILITY_SQL, params)}
        _sql(FEES_SQL, params)
        return entries, {"figures": rows}

    # Each pair runs back to back, three times each, so both see the same cache and the same machine load.
    util = timed("utilization by member (selector)", run_utilization, repeat=3)
    util_sql = timed("baseline: utilization in hand-written SQL", sql_utilization, repeat=3)
    prof = timed("profitability by project (selector)", run_profitability, repeat=3)
    prof_sql = timed("baseline: profitability in hand-written SQL", sql_profitability, repeat=3)
    result.measurements += [util, util_sql, prof, prof_sql]

    for subject, baseline, name in ((util, util_sql, "utilization"), (prof, prof_sql, "profitability")):
        result.checks.append(Check(f"{name}: selector time / SQL time", ratio(subject, baseline),
                                   f"<= {TARGET_RATIO:g}x", (ratio(subject, baseline) or 0) <= TARGET_RATIO,
                                   unit="x"))
        result.checks.append(Check(f"{name}: selector seconds at {entries:,} entries", round(subject.seconds, 3),
                                   f"< {TARGET_SECONDS:g}s", subject.seconds < TARGET_SECONDS, unit="s"))

    same_util, note_util = _compare(util.extra.pop("figures"), util_sql.extra.pop("figures"), "utilization")
    same_prof, note_prof = _compare(prof.extra.pop("figures"), prof_sql.extra.pop("figures"), "profitability")
    result.checks.append(Check("selectors match the hand-written SQL", None, "equal", same_util and same_prof))
    result.notes += [
        f"{entries:,} entries in the year, {history.invoices:,} issued invoices, {history.allocations:,} allocations",
        note_util, note_prof,
        f"queries: utilization {util.queries}, profitability {prof.queries}",
    ]
    return result
