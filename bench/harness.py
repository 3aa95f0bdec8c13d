"""Measuring: wall time, queries issued, peak memory, and the databases each benchmark runs in.

Every measured operation runs in a forked child process. The child starts with the parent's memory and
no database connection, resets the kernel's resident-memory high-water mark, runs the operation, and
sends back what it measured. So peak memory is what that operation needed (the RSS it reached above
where it started, Python objects and libpq buffers alike), never a leftover of an earlier step, and a
small and a large run of the same operation are measured the same way.
"""

import contextlib
import json
import os
import pickle
import re
import statistics
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

KIB = 1024


@dataclass
class Measurement:
    """One measured run: a subject (the product's code) or its baseline."""

    label: str
    seconds: float
    rows: int = 0
    queries: int | None = None
    peak_mb: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float | None:
        return self.rows / self.seconds if self.rows and self.seconds else None

    def as_dict(self) -> dict:
        data = asdict(self)
        data["rows_per_second"] = self.rows_per_second
        return data


@dataclass
class Check:
    """A target of the issue and whether this run met it."""

    name: str
    value: float | None
    target: str
    met: bool | None
    unit: str = ""
    note: str = ""


@dataclass
class BenchResult:
    name: str
    measurements: list[Measurement] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: str = ""
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"name": self.name, "skipped": self.skipped, "seconds": round(self.seconds, 1),
                "measurements": [m.as_dict() for m in self.measurements],
                "checks": [asdict(c) for c in self.checks], "notes": self.notes}


# --- memory ----------------------------------------------------------------------------------------------

def _status_kib(name: str, pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status") as status:
        match = re.search(rf"^{name}:\s+(\d+) kB", status.read(), re.MULTILINE)
    return int(match.group(1)) if match else 0


def rss_mb() -> float:
    return _status_kib("VmRSS") / KIB


def peak_rss_mb(pid: int | str = "self") -> float:
    return _status_kib("VmHWM", pid) / KIB


def reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs sets the high-water mark back to the current RSS."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


class MemoryWatch:
    """Peak RSS above the level at start, readable at any point (e.g. after 10 of 100 batches)."""

    def __init__(self):
        reset_peak_rss()
        self.start = rss_mb()

    def peak_above_start(self) -> float:
        return round(peak_rss_mb() - self.start, 1)


# --- queries ---------------------------------------------------------------------------------------------

class QueryCounter:
    """Counts the statements Django sends on the default connection, and the time spent waiting on them.

    DEBUG stays off, so Django itself keeps nothing per query.
    """

    def __init__(self):
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started


def counting_queries():
    from django.db import connection

    counter = QueryCounter()
    return counter, connection.execute_wrapper(counter)


class StageClock:
    """Wall time spent inside chosen functions, by replacing them with timed wrappers (in a child only)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.order: list[str] = []

    def wrap(self, owner, name: str, label: str) -> None:
        self.order.append(label)
        original = getattr(owner, name)
        clock = self

        def timed_call(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                clock.seconds[label] = clock.seconds.get(label, 0.0) + time.perf_counter() - started

        setattr(owner, name, timed_call)

    def shares(self, total: float) -> str:
        # Steps in the order they were wrapped (a nested one, wrapped last, reads as a part of the others).
        return ", ".join(f"{label} {self.seconds[label]:.1f}s ({self.seconds[label] / total:.0%})"
                         for label in self.order if label in self.seconds)


# --- running measured code in a child ---------------------------------------------------------------------

def in_child(operation: Callable[[], Measurement]) -> Measurement:
    """Run `operation` in a forked child with a fresh memory high-water mark; returns its Measurement.

    The operation times itself (so it can leave set-up out); the peak memory of the whole child run is
    filled in here unless the operation set one.
    """
    from django.db import connections

    connections.close_all()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_end)
        try:
            watch = MemoryWatch()
            measurement = operation()
            if measurement.peak_mb is None:
                measurement.peak_mb = watch.peak_above_start()
            payload = pickle.dumps(("ok", measurement))
        except BaseException:  # noqa: B036 - everything must reach the parent, then the child ends
            payload = pickle.dumps(("error", traceback.format_exc()))
        try:
            connections.close_all()
        finally:
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(payload)
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        payload = pipe.read()
    os.waitpid(pid, 0)
    if not payload:
        raise RuntimeError("The measured child process died without a result.")
    status, value = pickle.loads(payload)
    if status != "ok":
        raise RuntimeError(f"The measured operation failed:\n{value}")
    return value


def timed(label: str, operation: Callable[[], int | tuple[int, dict]], *, repeat: int = 1,
          repeat_within: float = 15.0) -> Measurement:
    """Time `operation` up to `repeat` times in one child (fewer once `repeat_within` seconds are used).

    The operation returns the rows it handled, or (rows, extra) to hand figures back to the parent. The
    median time counts; queries and extra are those of the last run.
    """

    def run() -> Measurement:
        times, counted, rows, extra = [], [], 0, {}
        watch = MemoryWatch()
        while len(times) < repeat and (not times or sum(times) < repeat_within):
            counter, wrapper = counting_queries()
            with wrapper:
                started = time.perf_counter()
                outcome = operation()
                times.append(time.perf_counter() - started)
            rows, extra = outcome if isinstance(outcome, tuple) else (outcome, {})
            counted.append(counter.count)
        if len(times) > 1:
            extra["runs"] = [round(t, 4) for t in times]
        return Measurement(label=label, seconds=statistics.median(times), rows=rows, queries=counted[-1],
                           peak_mb=watch.peak_above_start(), extra=extra)

    return in_child(run)


# --- databases -------------------------------------------------------------------------------------------

def database_url(server_url: str, name: str) -> str:
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


def admin_connection(server_url: str) -> psycopg.Connection:
    return psycopg.connect(database_url(server_url, "postgres").replace("postgres://", "postgresql://", 1),
                           autocommit=True)


def raw_connection(url: str) -> psycopg.Connection:
    return psycopg.connect(url.replace("postgres://", "postgresql://", 1), autocommit=True)


def drop_database(server_url: str, name: str) -> None:
    with admin_connection(server_url) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_database(server_url: str, name: str, *, template: str | None = None) -> None:
    """(Re)create a database, as a copy of `template` when given (a file copy: seconds, not a migrate)."""
    with admin_connection(server_url) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if template:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        else:
            admin.execute(f'CREATE DATABASE "{name}"')


@contextlib.contextmanager
def template_lock(server_url: str):
    """Hold the server-wide lock on the template database: one process builds or copies it at a time.

    Two runs on one server (or a run while the template is being rebuilt after a migration changed) would
    otherwise see a half-built template or fail to copy one that another session is connected to.
    """
    with admin_connection(server_url) as admin:
        admin.execute("SELECT pg_advisory_lock(hashtext('billable_bench template'))")
        try:
            yield
        finally:
            admin.execute("SELECT pg_advisory_unlock(hashtext('billable_bench template'))")


def database_comment(server_url: str, name: str) -> str | None:
    with admin_connection(server_url) as admin:
        row = admin.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                            [name]).fetchone()
    return row[0] if row else None


def set_database_comment(server_url: str, name: str, comment: str) -> None:
    with admin_connection(server_url) as admin:
        admin.execute(f'COMMENT ON DATABASE "{name}" IS {sql.quote(comment)}')


def vacuum_analyze(url: str, tables: list[str]) -> None:
    """What autovacuum would have done on a live database: statistics and visibility maps."""
    with raw_connection(url) as conn:
        for table in tables:
            conn.execute(f"VACUUM ANALYZE {table}")


def ratio(subject: Measurement, baseline: Measurement) -> float | None:
    return round(subject.seconds / baseline.seconds, 2) if baseline.seconds else None


def write_json(path, data) -> None:
    with open(path, "w") as out:
        json.dump(data, out, indent=2, default=str)
