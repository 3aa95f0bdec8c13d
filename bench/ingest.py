"""Ingest: entries through billing.pipeline.ingest in batches of 1,000 (record, rate, route, budgets).

Baseline: the same final rows (every column the pipeline wrote) loaded into an empty copy of the
time-entry table, with its indexes and constraints, by one COPY.

Inputs arrive day by day, as a time-tracking source delivers them; all are new entries. Peak memory is
read after the first tenth of the batches and at the end: if the pipeline kept anything per entry, the
second would be about ten times the first.

`make bench` must finish in 15 minutes on two cores, so the batches stop when the pipeline has used its
time budget (BENCH_INGEST_SECONDS, 180 s by default) even if fewer than all entries went in; the COPY
baseline then loads exactly the rows that did, so the ratio stays a like-for-like comparison, and the
notes give the measured rate and what the full count would take at it.
The local server runs with autovacuum off, so nothing would ever analyze the growing tables and the planner
would keep the estimates of an empty table (scans where a production server uses the indexes). Between
batches, outside the timed section, the benchmark does what autovacuum does with its default thresholds:
`VACUUM (ANALYZE)` of the tables ingest writes once the rows added since the last one exceed 50 + 10% of
the table.
"""

import os
import time
from itertools import islice

from bench.context import Context
from bench.generator import FirmIds, ingest_inputs
from bench.harness import (
    BenchResult,
    Check,
    Measurement,
    MemoryWatch,
    StageClock,
    counting_queries,
    create_database,
    drop_database,
    in_child,
    ratio,
    raw_connection,
    vacuum_analyze,
)

NAME = "ingest"
DEFAULT_ENTRIES = 100_000
BATCH = 1000
TARGET_RATIO = 6.0
MEMORY_GROWTH_LIMIT = 1.5
TIME_BUDGET = float(os.environ.get("BENCH_INGEST_SECONDS", "180"))
# The tables a batch writes, and autovacuum's default analyze threshold (autovacuum_analyze_threshold,
# autovacuum_analyze_scale_factor).
WRITTEN_TABLES = ["projects_timeentry", "approvals_approvalrequest", "projects_projectbudget"]
ANALYZE_THRESHOLD, ANALYZE_SCALE = 50, 0.1

COLUMNS = ("id, member_id, project_id, task_type_id, work_date, minutes, description, billable, started_at, "
           "stopped_at, source, external_id, status, billable_minutes, over_cap_minutes, covered_minutes, rate, "
           "rate_currency, amount, amount_currency, cost_amount, cost_amount_currency, rate_rule, "
           "billability_reason, rated_at, conflict, created_by_id, created_at, updated_at")


def _pipeline(context: Context, count: int) -> Measurement:
    from django.db.models import Count
    from django.db.models.query import QuerySet

    from billing import pipeline
    from projects.models import EntrySource, TimeEntry

    clock = StageClock()
    for name, label in (("record_time_entries", "record"), ("rate_entries", "rate"), ("route_entries", "route"),
                        ("refresh_budgets", "budgets")):
        clock.wrap(pipeline, name, label)
    clock.wrap(QuerySet, "bulk_update", "bulk_update calls within rate and route")
    firm = FirmIds.load()
    inputs = ingest_inputs(firm, count, context.size.seed)
    batches = -(-count // BATCH)
    # Memory is compared between the first tenth of the batches and the end; with a time budget the end
    # may come early, so the early reading is taken after at most five batches.
    early_batches = max(1, min(batches // 10, 5))

    watch = MemoryWatch()
    counter, wrapper = counting_queries()
    seconds, queries, stored, rejected, early_peak = [], [], 0, 0, None
    analyzed_at, vacuums = 0, 0
    with wrapper:
        while batch := list(islice(inputs, BATCH)):
            before = counter.count
            started = time.perf_counter()
            result = pipeline.ingest(batch, EntrySource.API)
            seconds.append(time.perf_counter() - started)
            queries.append(counter.count - before)
            stored += len(result.created)
            rejected += len(result.rejected)
            del result, batch
            if len(seconds) == early_batches:
                early_peak = watch.peak_above_start()
            if len(seconds) % 10 == 0:
                context.log(f"ingest: {len(seconds)} of {batches} batches, {sum(seconds):.1f}s")
            if sum(seconds) >= TIME_BUDGET:
                context.log(f"ingest: time budget of {TIME_BUDGET:g}s used after {len(seconds)} batches")
                break
            if stored - analyzed_at > ANALYZE_THRESHOLD + ANALYZE_SCALE * analyzed_at:
                # Untimed, on a connection of its own (not counted): what autovacuum would do by now.
                vacuum_analyze(context.url(), WRITTEN_TABLES)
                analyzed_at, vacuums = stored, vacuums + 1
    total = sum(seconds)
    statuses = dict(TimeEntry.objects.order_by().values_list("status").annotate(Count("id")))
    tenth = max(1, len(seconds) // 10)
    return Measurement(
        label=f"pipeline: {len(seconds)} batches of {BATCH:,}", seconds=total, rows=stored, queries=counter.count,
        peak_mb=watch.peak_above_start(),
        extra={"planned": count, "early_peak_mb": early_peak, "early_batches": early_batches, "rejected": rejected,
               "statuses": statuses, "queries_per_batch": {"first": queries[0], "last": queries[-1],
                                                           "min": min(queries), "max": max(queries)},
               "seconds_first_tenth": round(sum(seconds[:tenth]), 2),
               "seconds_last_tenth": round(sum(seconds[-tenth:]), 2),
               "db_seconds": round(counter.seconds, 1), "stages": clock.shares(total), "vacuums": vacuums},
    )


def _copy_baseline(context: Context) -> Measurement:
    with raw_connection(context.url()) as source, source.cursor() as cursor:
        with cursor.copy(f"COPY (SELECT {COLUMNS} FROM projects_timeentry ORDER BY id) TO STDOUT") as copy:
            data = b"".join(bytes(block) for block in copy)
        rows = cursor.connection.execute("SELECT count(*) FROM projects_timeentry").fetchone()[0]
    target = f"{context.database}_copy"
    create_database(context.server, target, template=context.template)
    try:
        watch = MemoryWatch()
        with raw_connection(context.url(target)) as connection, connection.cursor() as cursor:
            started = time.perf_counter()
            with cursor.copy(f"COPY projects_timeentry ({COLUMNS}) FROM STDIN") as copy:
                copy.write(data)
            seconds = time.perf_counter() - started
        return Measurement(label="baseline: one COPY of the same rows", seconds=seconds, rows=rows, queries=1,
                           peak_mb=watch.peak_above_start(), extra={"bytes": len(data)})
    finally:
        drop_database(context.server, target)


def run(context: Context) -> BenchResult:
    count = context.scaled(DEFAULT_ENTRIES)
    result = BenchResult(NAME)
    context.log(f"ingest: {count:,} entries in batches of {BATCH:,}")
    subject = in_child(lambda: _pipeline(context, count))
    baseline = in_child(lambda: _copy_baseline(context))
    result.measurements += [subject, baseline]

    extra = subject.extra
    result.checks.append(Check("pipeline time / COPY time", ratio(subject, baseline), f"<= {TARGET_RATIO:g}x",
                               (ratio(subject, baseline) or 0) <= TARGET_RATIO, unit="x"))
    early = extra["early_peak_mb"] or 0
    growth = round(subject.peak_mb / early, 2) if early > 0 else None
    result.checks.append(Check(
        f"peak memory after all batches / after the first {extra['early_batches']}", growth,
        f"<= {MEMORY_GROWTH_LIMIT:g}x", growth is not None and growth <= MEMORY_GROWTH_LIMIT, unit="x",
        note=f"{early} MB then {subject.peak_mb} MB"))
    per_batch = extra["queries_per_batch"]
    if subject.rows < extra["planned"]:
        result.notes.append(
            f"stopped at the {TIME_BUDGET:g}s time budget after {subject.rows:,} of {extra['planned']:,} entries; "
            f"at {subject.rows_per_second:,.0f} entries/s all of them would take "
            f"{extra['planned'] / subject.rows_per_second:,.0f}s")
    result.notes += [
        f"{subject.rows:,} entries stored, {extra['rejected']} rejected; statuses {extra['statuses']}",
        f"queries per batch: first {per_batch['first']}, last {per_batch['last']}, min {per_batch['min']}, "
        f"max {per_batch['max']}; {extra['db_seconds']}s of {subject.seconds:.1f}s waiting on PostgreSQL",
        f"time by stage: {extra['stages']}",
        f"first tenth of the batches {extra['seconds_first_tenth']}s, last tenth {extra['seconds_last_tenth']}s",
        f"peak memory {early} MB after {extra['early_batches']} batches, {subject.peak_mb} MB after all",
        f"autovacuum is off on the local server: VACUUM (ANALYZE) of {', '.join(WRITTEN_TABLES)} ran "
        f"{extra['vacuums']} times between batches, untimed, whenever the rows added since the last one exceeded "
        f"{ANALYZE_THRESHOLD} + {ANALYZE_SCALE:.0%} of the table (autovacuum's default analyze threshold)",
    ]
    return result
