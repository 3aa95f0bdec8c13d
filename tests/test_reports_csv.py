"""CSV downloads stream: nothing is read before the download starts, and memory does not grow with rows."""

import datetime as dt
import tracemalloc

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from djmoney.money import Money

from projects.models import EntrySource, EntryStatus, TimeEntry
from reports.csv_export import csv_lines
from tests.factories import PASSWORD, ProjectFactory, TaskTypeFactory, TeamMemberFactory

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 3, 2)
PARAMS = {"start": "2026-03-01", "end": "2026-03-31", "basis": "logged", "download": "csv"}


def add_entries(count: int, prefix: str) -> None:
    member, project, task = TeamMemberFactory(), ProjectFactory(), TaskTypeFactory()
    TimeEntry.objects.bulk_create(
        [
            TimeEntry(
                member=member,
                project=project,
                task_type=task,
                work_date=DAY + dt.timedelta(days=n % 28),
                minutes=60,
                billable_minutes=60,
                amount=Money("100.00", "USD"),
                cost_amount=Money("50.00", "USD"),
                status=EntryStatus.APPROVED,
                source=EntrySource.API,
                external_id=f"{prefix}-{n}",
                description="Detailed description of the work, long enough to weigh something in memory",
            )
            for n in range(count)
        ],
        batch_size=2000,
    )


def download(client):
    """The response, and the queries that ran before its first byte was read."""
    with CaptureQueriesContext(connection) as before_reading:
        response = client.get(reverse("reports:entries"), PARAMS)
    return response, before_reading


def consume(response) -> tuple[int, int]:
    """(lines, peak bytes allocated) while reading the whole download and throwing it away."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        lines = sum(chunk.count(b"\n") for chunk in response.streaming_content)
        return lines, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_entries_csv_streams_in_chunks(client, management):
    assert client.login(username=management.user.username, password=PASSWORD)
    add_entries(4_000, "small")
    response, before = download(client)
    assert response.streaming
    # The view only validated the filters: the entries are read while the download is read.
    assert not any(
        "projects_timeentry" in q["sql"] and "SELECT" in q["sql"] and "minutes" in q["sql"]
        for q in before.captured_queries
    )
    small_lines, small_peak = consume(response)
    assert small_lines == 4_001

    add_entries(16_000, "large")
    response, _ = download(client)
    large_lines, large_peak = consume(response)
    assert large_lines == 20_001
    # Five times the rows, the same memory: a chunk of 2,000 rows (and the next) at a time, never the whole
    # file. Reading all 20,000 rows at once would take about 1 MB per 1,000 rows here.
    assert large_peak < small_peak * 1.25, (small_peak, large_peak)
    assert large_peak < 8_000_000, large_peak


def test_csv_lines_are_produced_one_at_a_time():
    lines = csv_lines(["a", "b"], iter([(1, None), (2, "x,y")]))
    assert next(lines) == "a,b\r\n"
    assert next(lines) == "1,\r\n"
    assert next(lines) == '2,"x,y"\r\n'
