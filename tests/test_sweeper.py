"""The sweeper finishes entries left recorded, and the schedules are defined once."""

import datetime as dt
from datetime import timedelta

import pytest
from django.core.management import call_command
from django_q.models import Schedule
from djmoney.money import Money

from billing.pipeline import TimeEntryInput, sweep_unprocessed
from billing.tasks import sweep_unprocessed_entries
from config.schedules import schedules
from projects.models import EntrySource, EntryStatus, ProjectBudget, TimeEntry
from projects.time_capture import record_time_entries
from tests.factories import ProjectFactory, RateFactory, TaskTypeFactory

pytestmark = pytest.mark.django_db


def test_entries_left_recorded_are_rated_routed_and_budgeted(staff_member):
    project = ProjectFactory()
    RateFactory(contract=project.contract, hourly_rate=Money("120.00", "USD"))
    dev = TaskTypeFactory(code="dev")
    # Recording alone is what a crash right after step 1 leaves behind.
    record_time_entries(inputs=[TimeEntryInput(member_id=staff_member.id, project_id=project.id,
                                               task_type_id=dev.id, work_date=dt.date(2026, 3, 2),
                                               minutes=m, external_id=f"e{m}") for m in (30, 45)],
                        source=EntrySource.API)
    assert set(TimeEntry.objects.values_list("status", flat=True)) == {EntryStatus.RECORDED}
    assert sweep_unprocessed(older_than=timedelta(0)) == 2
    assert sorted(TimeEntry.objects.values_list("status", "amount")) == [
        (EntryStatus.APPROVED, Money("60.00", "USD").amount), (EntryStatus.APPROVED, Money("90.00", "USD").amount)]
    assert ProjectBudget.objects.get(project=project).minutes_used == 75
    assert sweep_unprocessed(older_than=timedelta(0)) == 0


def test_the_sweeper_leaves_fresh_entries_to_the_pipeline(staff_member):
    project = ProjectFactory()
    dev = TaskTypeFactory(code="dev")
    record_time_entries(inputs=[TimeEntryInput(member_id=staff_member.id, project_id=project.id,
                                               task_type_id=dev.id, work_date=dt.date(2026, 3, 2), minutes=30)],
                        source=EntrySource.API)
    assert sweep_unprocessed_entries() == "0 entries processed"


def test_sync_schedules_upserts_by_name():
    call_command("sync_schedules")
    call_command("sync_schedules")
    names = [s["name"] for s in schedules()]
    assert sorted(Schedule.objects.values_list("name", flat=True)) == sorted(names)
    sweeper = Schedule.objects.get(name="billing.sweep_unprocessed_entries")
    assert (sweeper.func, sweeper.schedule_type, sweeper.repeats) == (
        "billing.tasks.sweep_unprocessed_entries", Schedule.MINUTES, -1)
