"""Recording time through the pipeline: validation, upsert by (source, external_id), batches."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.models import ApprovalRequest
from billing.pipeline import TimeEntryInput, ingest
from billing.rating import RATED_FIELDS
from projects.models import EntrySource, EntryStatus, ProjectStatus, TimeEntry
from tests.factories import ProjectFactory, TaskTypeFactory, TimeEntryFactory
from tests.queries import insert_chunks, split_bulk, update_chunks

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 3, 2)


@pytest.fixture
def project():
    return ProjectFactory(code="acme-web", contract__end_date=dt.date(2026, 12, 31), end_date=dt.date(2026, 6, 30))


@pytest.fixture
def task_type():
    return TaskTypeFactory(code="dev", name="Development")


def entry(member, project, task_type, **overrides):
    values = {"member_id": member.id, "project_id": project.id, "task_type_id": task_type.id,
              "work_date": DAY, "minutes": 90, "external_id": "e-1"}
    values.update(overrides)
    return TimeEntryInput(**values)


def test_a_valid_entry_is_recorded(staff_member, project, task_type):
    result = ingest([entry(staff_member, project, task_type, description="Wireframes")], EntrySource.API)
    assert result.rejected == []
    stored = TimeEntry.objects.get()
    assert (stored.member, stored.project, stored.minutes, stored.description) == (
        staff_member, project, 90, "Wireframes")
    # No rate on the contract yet, so the pipeline holds it for review.
    assert (stored.source, stored.external_id, stored.status) == ("api", "e-1", EntryStatus.PENDING)


def test_the_same_external_id_updates_one_row(staff_member, project, task_type):
    ingest([entry(staff_member, project, task_type, minutes=60)], EntrySource.API)
    again = ingest([entry(staff_member, project, task_type, minutes=75)], EntrySource.API)
    assert len(again.updated) == 1 and not again.created
    assert list(TimeEntry.objects.values_list("minutes", flat=True)) == [75]
    same = ingest([entry(staff_member, project, task_type, minutes=75)], EntrySource.API)
    assert len(same.unchanged) == 1 and TimeEntry.objects.count() == 1


def test_the_same_external_id_from_another_source_is_another_entry(staff_member, project, task_type):
    ingest([entry(staff_member, project, task_type)], EntrySource.API)
    ingest([entry(staff_member, project, task_type)], EntrySource.TOGGL)
    assert TimeEntry.objects.count() == 2


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"minutes": 0}, "minutes", "positive"),
        ({"minutes": -30}, "minutes", "positive"),
        ({"minutes": 25 * 60}, "minutes", "24 hours"),
        ({"minutes": None}, "minutes", "required"),
        ({"member_id": 999999}, "member", "Unknown team member"),
        ({"project_id": 999999}, "project", "Unknown project"),
        ({"task_type_id": 999999}, "task_type", "Unknown task type"),
        ({"work_date": dt.date(2025, 12, 31)}, "work_date", "outside project"),
        ({"work_date": dt.date(2026, 7, 1)}, "work_date", "outside project"),
        ({"currency": "EUR"}, "currency", "contract"),
        ({"started_at": dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC),
          "stopped_at": dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)}, "stopped_at", "before the start"),
    ],
)
def test_bad_input_is_refused_with_a_specific_error(staff_member, project, task_type, overrides, field, fragment):
    result = ingest([entry(staff_member, project, task_type, **overrides)], EntrySource.API)
    assert len(result.rejected) == 1
    assert fragment in " ".join(result.rejected[0].errors[field])
    assert TimeEntry.objects.count() == 0


def test_a_date_outside_the_contract_is_refused(staff_member, task_type):
    project = ProjectFactory(contract__start_date=dt.date(2026, 3, 1), start_date=dt.date(2026, 1, 1))
    result = ingest([entry(staff_member, project, task_type, work_date=dt.date(2026, 2, 27))], EntrySource.API)
    assert "outside contract" in result.rejected[0].errors["work_date"][0]


def test_an_archived_project_takes_no_time(staff_member, project, task_type):
    project.status = ProjectStatus.ARCHIVED
    project.save()
    result = ingest([entry(staff_member, project, task_type)], EntrySource.API)
    assert "archived" in result.rejected[0].errors["project"][0]


def test_more_than_24_hours_a_day_counts_what_is_stored(staff_member, project, task_type):
    TimeEntryFactory(member=staff_member, project=project, task_type=task_type, work_date=DAY, minutes=20 * 60)
    result = ingest([entry(staff_member, project, task_type, minutes=3 * 60),
                     entry(staff_member, project, task_type, minutes=2 * 60, external_id="e-2")], EntrySource.API)
    assert [r.index for r in result.rejected] == [1]
    assert "more than 24 hours" in result.rejected[0].errors["minutes"][0]
    assert TimeEntry.objects.count() == 2


def test_duplicates_within_a_batch_are_refused(staff_member, project, task_type):
    result = ingest([entry(staff_member, project, task_type, line=2),
                     entry(staff_member, project, task_type, line=3)], EntrySource.CSV)
    assert [r.line for r in result.rejected] == [3]
    assert "first at line 2" in result.rejected[0].errors["external_id"][0]


def test_all_or_nothing_saves_nothing_when_one_input_is_bad(staff_member, project, task_type):
    result = ingest([entry(staff_member, project, task_type),
                     entry(staff_member, project, task_type, external_id="e-2", minutes=0)],
                    EntrySource.API, all_or_nothing=True)
    assert [r.index for r in result.rejected] == [1]
    assert TimeEntry.objects.count() == 0


def test_a_member_cannot_log_for_someone_else(staff_member, other_staff_member, project, task_type):
    result = ingest([entry(other_staff_member, project, task_type)], EntrySource.API,
                    allowed_member_ids={staff_member.id})
    assert "own time" in result.rejected[0].errors["member"][0]


def test_an_invoiced_entry_changed_at_the_source_is_flagged_not_altered(staff_member, project, task_type):
    ingest([entry(staff_member, project, task_type, minutes=60)], EntrySource.TOGGL)
    TimeEntry.objects.update(status=EntryStatus.INVOICED)
    result = ingest([entry(staff_member, project, task_type, minutes=90)], EntrySource.TOGGL)
    stored = TimeEntry.objects.get()
    assert result.conflicts == [stored]
    assert stored.minutes == 60 and "minutes: 60 → 90" in stored.conflict


def _batch(member, project, task_type, size):
    return [entry(member, project, task_type, external_id=f"batch-{i}", minutes=1,
                  work_date=DAY + dt.timedelta(days=i % 100)) for i in range(size)]


def test_recording_costs_the_same_queries_for_10_and_500_entries(staff_member, project, task_type):
    project.end_date = None
    project.save()
    with CaptureQueriesContext(connection) as small:
        ingest(_batch(staff_member, project, task_type, 10), EntrySource.API)
    TimeEntry.objects.all().delete()
    with CaptureQueriesContext(connection) as large:
        ingest(_batch(staff_member, project, task_type, 500), EntrySource.API)
    assert TimeEntry.objects.count() == 500
    fixed_small, *_ = split_bulk(small)
    fixed_large, inserts, updates = split_bulk(large)
    assert fixed_small == fixed_large
    # Entries and their approval requests are inserted, the project's budget upserted;
    # rated fields and statuses are written together.
    assert inserts == insert_chunks(TimeEntry, 500) + insert_chunks(ApprovalRequest, 500) + 1
    assert updates == rated_write_chunks(500)


def rated_write_chunks(entries: int) -> int:
    """CASE statements that write a batch's rated fields and statuses: none on PostgreSQL, where one
    UPDATE … FROM unnest (counted with the fixed statements) writes them all; SQLite's bulk_update chunks."""
    if connection.vendor == "postgresql":
        return 0
    return update_chunks(TimeEntry, [*RATED_FIELDS, "status"], entries)


def test_deleting_frees_the_budget(staff_member, project, task_type):
    from projects.models import ProjectBudget
    from projects.time_capture import time_entries_delete

    project.budget_hours = 10
    project.save()
    result = ingest([entry(staff_member, project, task_type, minutes=120)], EntrySource.API)
    assert ProjectBudget.objects.get(project=project).minutes_used == 120
    assert time_entries_delete(entries=[result.by_index[0]]) == 1
    assert ProjectBudget.objects.get(project=project).minutes_used == 0


def test_an_entry_kept_by_a_void_invoice_is_refused_not_crashed(staff_member, project, task_type):
    from django.core.exceptions import ValidationError
    from djmoney.money import Money

    from billing.invoicing import billing_run_create
    from billing.lifecycle import invoice_finalize, invoice_void
    from projects.time_capture import time_entry_delete
    from tests.factories import RateFactory

    RateFactory(contract=project.contract, hourly_rate=Money("100.00", "USD"))
    result = ingest([entry(staff_member, project, task_type, minutes=60)], EntrySource.API)
    [invoice] = billing_run_create(period_start=DAY, period_end=DAY).invoices
    invoice_void(invoice=invoice_finalize(invoice=invoice), reason="Reissue")
    stored = TimeEntry.objects.get(pk=result.by_index[0].pk)
    assert stored.status == EntryStatus.APPROVED
    with pytest.raises(ValidationError, match="kept with the invoice"):
        time_entry_delete(entry=stored)
    assert TimeEntry.objects.filter(pk=stored.pk).exists()


# -- Bulk writes ----------------------------------------------------------------------------------------

def test_bulk_writes_store_exactly_the_values_in_memory_and_nothing_else(staff_member, project, task_type):
    from decimal import Decimal

    from django.utils import timezone
    from djmoney.money import Money

    from projects.bulk import update_fields

    result = ingest([entry(staff_member, project, task_type, external_id=f"bulk-{n}", minutes=30 + n)
                     for n in range(3)], EntrySource.API)
    first, second, untouched = [TimeEntry.objects.get(pk=e.pk) for e in result.created]
    rated_at = timezone.now().replace(microsecond=123456)
    first.rate, first.amount, first.billable_minutes = Money("180.50", "EUR"), Money("92.26", "EUR"), 31
    first.rate_rule, first.rated_at, first.status = "O'Brien's \"rate\", {braces}", rated_at, EntryStatus.PENDING
    second.rate, second.amount, second.billable_minutes = None, Money("0.00", "USD"), 0
    second.rate_rule, second.rated_at, second.status = "", None, EntryStatus.APPROVED
    second.description = "changed in memory only"
    update_fields([first, second], [*RATED_FIELDS, "status"])

    stored = {e.pk: e for e in TimeEntry.objects.filter(pk__in=[first.pk, second.pk, untouched.pk])}
    assert (stored[first.pk].rate, stored[first.pk].amount, stored[first.pk].billable_minutes) == (
        Money("180.50", "EUR"), Money("92.26", "EUR"), 31)
    assert (stored[first.pk].rate_rule, stored[first.pk].rated_at, stored[first.pk].status) == (
        "O'Brien's \"rate\", {braces}", rated_at, EntryStatus.PENDING)
    assert (stored[second.pk].rate, stored[second.pk].amount.amount, stored[second.pk].rated_at) == (
        None, Decimal("0.00"), None)
    assert stored[second.pk].status == EntryStatus.APPROVED
    # Only the fields named are written, only for the entries given.
    assert stored[second.pk].description == ""
    assert (stored[untouched.pk].billable_minutes, stored[untouched.pk].status) == (
        untouched.billable_minutes, untouched.status)


def test_bulk_writes_refuse_a_value_the_column_cannot_hold(staff_member, project, task_type):
    from django.db import DataError, IntegrityError, transaction

    from projects.bulk import update_fields

    result = ingest([entry(staff_member, project, task_type)], EntrySource.API)
    stored = TimeEntry.objects.get(pk=result.created[0].pk)
    reason = stored.billability_reason
    stored.covered_minutes = stored.billable_minutes + 1  # the table's checks apply
    with pytest.raises(IntegrityError), transaction.atomic():
        update_fields([stored], ["covered_minutes"])
    if connection.vendor == "postgresql":  # SQLite does not hold text to a length
        stored.billability_reason = "x" * 41  # the column holds 40 characters: never cut short silently
        with pytest.raises(DataError), transaction.atomic():
            update_fields([stored], ["billability_reason"])
    assert TimeEntry.objects.get(pk=stored.pk).billability_reason == reason


def test_recorded_entries_are_stored_with_their_ids_times_and_facts_in_order(staff_member, project, task_type):
    # A batch is inserted in one statement: each input's entry gets the id of its own row.
    start = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    inputs = [entry(staff_member, project, task_type, external_id=f"e-{n}", minutes=30 + n,
                    started_at=start + dt.timedelta(hours=n), stopped_at=start + dt.timedelta(hours=n, minutes=30 + n))
              for n in range(5)]
    # A source's naive time is read in the firm's time zone, as Django reads it.
    inputs.append(entry(staff_member, project, task_type, external_id="naive",
                        started_at=dt.datetime(2026, 3, 2, 18, 0), stopped_at=None))
    with pytest.warns(RuntimeWarning, match="naive datetime"):
        result = ingest(inputs, EntrySource.API)
    assert [e.external_id for e in result.created] == [i.external_id for i in inputs]
    stored = {e.id: e for e in TimeEntry.objects.all()}
    for made, item in zip(result.created, inputs, strict=True):
        row = stored[made.id]
        started = item.started_at if item.started_at.tzinfo else timezone.make_aware(item.started_at)
        assert (row.external_id, row.minutes, row.started_at, row.stopped_at) == (
            item.external_id, item.minutes, started, item.stopped_at)
        assert row.created_at is not None and row.updated_at >= row.created_at
        assert row.created_by_id is None
    assert stored[result.created[2].id].started_at == dt.datetime(2026, 3, 2, 11, 0, tzinfo=dt.UTC)
