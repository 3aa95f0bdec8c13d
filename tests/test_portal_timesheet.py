"""The weekly timesheet grid: render a week, save it whole through the pipeline, add and copy rows."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from projects.models import EntrySource, EntryStatus, ProjectStatus, TimeEntry
from projects.views.week_grid import grid_external_id
from tests.factories import ProjectFactory, TaskTypeFactory, TimeEntryFactory

pytestmark = pytest.mark.django_db

MONDAY = dt.date(2026, 3, 2)
WEEK = [MONDAY + dt.timedelta(days=offset) for offset in range(7)]


@pytest.fixture
def project():
    return ProjectFactory(code="acme-web", name="Acme website", end_date=dt.date(2026, 12, 31))


@pytest.fixture
def task_type():
    return TaskTypeFactory(code="dev", name="Development")


@pytest.fixture
def logged_in(client, staff_member):
    client.force_login(staff_member.user)
    return client


def url(week=MONDAY):
    return f"{reverse('portal:timesheet')}?week={week.isoformat()}"


def cell(project, task_type, day):
    return f"cell-{project.id}-{task_type.id}-{day.isoformat()}"


def week_post(project, task_type, hours: dict, *, week=MONDAY, action="save", extra=None):
    """A grid as the browser posts it: the row, its cells (blank where no hours), and the action."""
    data = {"week": week.isoformat(), "row": [f"{project.id}:{task_type.id}"], "action": action}
    for offset in range(7):
        day = week + dt.timedelta(days=offset)
        data[cell(project, task_type, day)] = hours.get(day, "")
    data.update(extra or {})
    return data


def grid_entry(member, project, task_type, day, minutes, **overrides):
    return TimeEntryFactory(member=member, project=project, task_type=task_type, work_date=day, minutes=minutes,
                            source=EntrySource.PORTAL,
                            external_id=grid_external_id(member.id, (project.id, task_type.id), day), **overrides)


def test_the_grid_shows_the_week_with_its_entries_and_totals(logged_in, staff_member, project, task_type):
    grid_entry(staff_member, project, task_type, WEEK[0], 90)
    grid_entry(staff_member, project, task_type, WEEK[2], 30)
    TimeEntryFactory(member=staff_member, project=project, task_type=task_type, work_date=WEEK[2], minutes=60,
                     source=EntrySource.TOGGL, external_id="toggl-1")

    response = logged_in.get(url(WEEK[3]))  # any day of the week shows its Monday-based week

    assert response.status_code == 200
    grid = response.context["grid"]
    assert grid.start == MONDAY
    page = response.content.decode()
    assert f'name="{cell(project, task_type, WEEK[0])}" value="1:30"' in page
    assert f'name="{cell(project, task_type, WEEK[2])}" value="0:30"' in page
    # The Toggl hour is shown beside the grid's own cell, counted in the totals, listed below.
    assert "+1:00" in page and "Toggl Track" in page
    assert grid.day_total_displays() == ["1:30", "0:00", "1:30", "0:00", "0:00", "0:00", "0:00"]
    assert grid.week_total_display() == "3:00"
    assert response.context["previous_url"].endswith("week=2026-02-23")
    assert response.context["next_url"].endswith("week=2026-03-09")


def test_saving_a_week_creates_one_entry_per_filled_cell_with_exact_minutes(logged_in, staff_member, project,
                                                                            task_type):
    hours = {WEEK[0]: "1.5", WEEK[1]: "1:45", WEEK[2]: "90m", WEEK[3]: "2h15", WEEK[4]: "0.1"}
    response = logged_in.post(reverse("portal:timesheet"), week_post(project, task_type, hours))

    assert response.status_code == 302 and response.url == url()
    stored = {entry.work_date: entry for entry in TimeEntry.objects.all()}
    assert {day: entry.minutes for day, entry in stored.items()} == {
        WEEK[0]: 90, WEEK[1]: 105, WEEK[2]: 90, WEEK[3]: 135, WEEK[4]: 6}
    monday = stored[WEEK[0]]
    assert (monday.member, monday.project, monday.task_type, monday.source) == (
        staff_member, project, task_type, EntrySource.PORTAL)
    assert monday.external_id == f"grid:{staff_member.id}:{project.id}:{task_type.id}:2026-03-02"
    assert monday.created_by == staff_member.user


def test_saving_again_updates_the_same_entries_without_duplicates(logged_in, project, task_type):
    logged_in.post(reverse("portal:timesheet"), week_post(project, task_type, {WEEK[0]: "1", WEEK[1]: "2"}))
    first_ids = set(TimeEntry.objects.values_list("id", flat=True))

    logged_in.post(reverse("portal:timesheet"), week_post(project, task_type, {WEEK[0]: "1:15", WEEK[1]: "2"}))

    assert set(TimeEntry.objects.values_list("id", flat=True)) == first_ids
    assert dict(TimeEntry.objects.values_list("work_date", "minutes")) == {WEEK[0]: 75, WEEK[1]: 120}


def test_an_edit_keeps_what_the_entry_form_added(logged_in, staff_member, project, task_type):
    entry = grid_entry(staff_member, project, task_type, WEEK[0], 60, description="Sprint review", billable=False)
    logged_in.post(reverse("portal:timesheet"), week_post(project, task_type, {WEEK[0]: "2"}))
    entry.refresh_from_db()
    assert (entry.minutes, entry.description, entry.billable) == (120, "Sprint review", False)


def test_clearing_a_cell_deletes_its_entry(logged_in, staff_member, project, task_type):
    grid_entry(staff_member, project, task_type, WEEK[0], 60)
    kept = grid_entry(staff_member, project, task_type, WEEK[1], 60)

    response = logged_in.post(reverse("portal:timesheet"), week_post(project, task_type, {WEEK[1]: "1:00"}),
                              follow=True)

    assert list(TimeEntry.objects.all()) == [kept]
    assert "0 added, 0 changed, 1 removed" in response.content.decode()


def test_an_invalid_cell_saves_nothing_of_the_week_and_says_why(logged_in, staff_member, project, task_type):
    grid_entry(staff_member, project, task_type, WEEK[0], 60)
    hours = {WEEK[1]: "3", WEEK[2]: "25", WEEK[3]: "soon"}  # Monday cleared, one good, two bad

    response = logged_in.post(reverse("portal:timesheet"), week_post(project, task_type, hours))

    assert response.status_code == 200
    assert list(TimeEntry.objects.values_list("work_date", "minutes")) == [(WEEK[0], 60)]
    grid = response.context["grid"]
    row = grid.rows[(project.id, task_type.id)]
    assert "longer than 24 hours" in " ".join(row.cells[2].errors)
    assert "'soon' is not a duration" in " ".join(row.cells[3].errors)
    assert row.cells[1].errors == [] and row.cells[1].text == "3"  # what was typed stays on screen
    page = response.content.decode()
    assert "Nothing was saved" in page and "longer than 24 hours" in page


def test_more_than_24_hours_on_a_day_across_rows_is_refused(logged_in, staff_member, project, task_type):
    other_task = TaskTypeFactory(code="meet", name="Meetings")
    TimeEntryFactory(member=staff_member, project=project, task_type=other_task, work_date=WEEK[0],
                     minutes=20 * 60, source=EntrySource.API)
    response = logged_in.post(reverse("portal:timesheet"), week_post(project, task_type, {WEEK[0]: "5"}))
    cell_errors = response.context["grid"].rows[(project.id, task_type.id)].cells[0].errors
    assert "more than 24 hours in one day" in " ".join(cell_errors)
    assert TimeEntry.objects.count() == 1


def test_clearing_a_cell_frees_its_hours_for_another_row_the_same_day(logged_in, staff_member, project,
                                                                      task_type):
    other_task = TaskTypeFactory(code="meet", name="Meetings")
    grid_entry(staff_member, project, task_type, WEEK[0], 20 * 60)
    data = week_post(project, task_type, {})
    data["row"].append(f"{project.id}:{other_task.id}")
    data[cell(project, other_task, WEEK[0])] = "6"
    logged_in.post(reverse("portal:timesheet"), data)
    assert list(TimeEntry.objects.values_list("task_type", "minutes")) == [(other_task.id, 360)]


def test_a_date_outside_the_project_is_shown_on_the_cell(logged_in, task_type):
    project = ProjectFactory(start_date=dt.date(2026, 1, 1), end_date=WEEK[2])
    response = logged_in.post(reverse("portal:timesheet"),
                              week_post(project, task_type, {WEEK[1]: "1", WEEK[4]: "1"}))
    row = response.context["grid"].rows[(project.id, task_type.id)]
    assert "outside project" in row.cells[4].errors[0]
    assert TimeEntry.objects.count() == 0


def test_an_archived_project_error_is_shown_on_its_row(logged_in, staff_member, project, task_type):
    grid_entry(staff_member, project, task_type, WEEK[0], 60)
    project.status = ProjectStatus.ARCHIVED
    project.save()
    response = logged_in.post(reverse("portal:timesheet"), week_post(project, task_type, {WEEK[0]: "2"}))
    assert "archived" in response.context["grid"].rows[(project.id, task_type.id)].errors[0]
    assert TimeEntry.objects.get().minutes == 60


def test_invoiced_cells_are_read_only_and_cannot_be_changed(logged_in, staff_member, project, task_type):
    approved = grid_entry(staff_member, project, task_type, WEEK[0], 60, status=EntryStatus.INVOICED)

    page = logged_in.get(url()).content.decode()
    assert f'name="{cell(project, task_type, WEEK[0])}"' not in page
    assert "Invoiced: can no longer be changed." in page

    # A cell invoiced after the page was loaded: the stale value posted back is refused, nothing is saved.
    response = logged_in.post(reverse("portal:timesheet"),
                              week_post(project, task_type, {WEEK[0]: "", WEEK[1]: "1"}))
    assert "can no longer be changed" in response.context["grid"].rows[(project.id, task_type.id)].cells[0].errors[0]
    assert list(TimeEntry.objects.all()) == [approved]
    approved.refresh_from_db()
    assert approved.minutes == 60


def test_an_unchanged_approved_cell_does_not_block_the_rest_of_the_week(logged_in, staff_member, project,
                                                                        task_type):
    grid_entry(staff_member, project, task_type, WEEK[0], 60, status=EntryStatus.INVOICED)
    logged_in.post(reverse("portal:timesheet"), week_post(project, task_type, {WEEK[0]: "1:00", WEEK[1]: "2"}))
    assert dict(TimeEntry.objects.values_list("work_date", "minutes")) == {WEEK[0]: 60, WEEK[1]: 120}


def test_time_from_other_sources_is_shown_but_never_edited_by_the_grid(logged_in, staff_member, project,
                                                                      task_type):
    toggl = TimeEntryFactory(member=staff_member, project=project, task_type=task_type, work_date=WEEK[0],
                             minutes=45, source=EntrySource.TOGGL, external_id="t-9")
    # The row shows with an empty input for the grid's own time; typing there adds a grid entry.
    response = logged_in.post(reverse("portal:timesheet"), week_post(project, task_type, {WEEK[0]: "1"}))
    assert response.status_code == 302
    toggl.refresh_from_db()
    assert toggl.minutes == 45
    assert TimeEntry.objects.filter(source=EntrySource.PORTAL).get().minutes == 60
    # Clearing the grid's cell never touches the Toggl entry.
    logged_in.post(reverse("portal:timesheet"), week_post(project, task_type, {}))
    assert list(TimeEntry.objects.all()) == [toggl]


def test_a_cell_not_posted_is_left_alone(logged_in, staff_member, project, task_type):
    # E.g. an entry saved from another tab after this page was loaded.
    grid_entry(staff_member, project, task_type, WEEK[0], 60)
    data = {"week": MONDAY.isoformat(), "action": "save"}
    logged_in.post(reverse("portal:timesheet"), data)
    assert TimeEntry.objects.get().minutes == 60


def test_a_grid_entry_moved_by_the_entry_form_keeps_its_id_and_the_old_cell_gets_a_new_one(
        logged_in, staff_member, project, task_type):
    moved = grid_entry(staff_member, project, task_type, WEEK[0], 60)
    TimeEntry.objects.filter(pk=moved.pk).update(work_date=WEEK[1])
    logged_in.post(reverse("portal:timesheet"), week_post(project, task_type, {WEEK[0]: "2", WEEK[1]: "1:00"}))
    assert dict(TimeEntry.objects.values_list("work_date", "minutes")) == {WEEK[0]: 120, WEEK[1]: 60}
    assert TimeEntry.objects.get(pk=moved.pk).work_date == WEEK[1]


def test_add_row_keeps_typed_hours_and_saves_nothing(logged_in, project, task_type):
    other_task = TaskTypeFactory(code="design", name="Design")
    data = week_post(project, task_type, {WEEK[0]: "3"}, action="add_row",
                     extra={"add_project": str(project.id), "add_task_type": str(other_task.id)})

    response = logged_in.post(reverse("portal:timesheet"), data)

    assert response.status_code == 200 and TimeEntry.objects.count() == 0
    rows = response.context["rows"]
    assert [(row.project, row.task_type) for row in rows] == [(project, other_task), (project, task_type)]
    assert f'name="{cell(project, task_type, WEEK[0])}" value="3"' in response.content.decode()


def test_add_row_refuses_a_project_that_is_not_open(logged_in, project, task_type):
    archived = ProjectFactory(status=ProjectStatus.ARCHIVED)
    response = logged_in.post(reverse("portal:timesheet"), week_post(
        project, task_type, {}, action="add_row",
        extra={"add_project": str(archived.id), "add_task_type": str(task_type.id)}))
    assert len(response.context["rows"]) == 1
    assert "Choose a project and a task type" in response.content.decode()
    assert archived not in response.context["grid"].addable_projects()


def test_copy_last_weeks_rows_adds_rows_without_hours(logged_in, staff_member, project, task_type):
    design = TaskTypeFactory(code="design", name="Design")
    closed = ProjectFactory(code="old-one", end_date=dt.date(2026, 2, 27))
    last_week = MONDAY - dt.timedelta(days=7)
    TimeEntryFactory(member=staff_member, project=project, task_type=task_type, work_date=last_week, minutes=60)
    TimeEntryFactory(member=staff_member, project=project, task_type=task_type, work_date=last_week, minutes=30)
    TimeEntryFactory(member=staff_member, project=project, task_type=design, work_date=last_week + dt.timedelta(2))
    TimeEntryFactory(member=staff_member, project=closed, task_type=design, work_date=last_week)
    TimeEntryFactory(member=staff_member, project=closed, task_type=design, work_date=last_week + dt.timedelta(1))

    response = logged_in.post(reverse("portal:timesheet"),
                              {"week": MONDAY.isoformat(), "action": "copy_rows"})

    rows = response.context["rows"]
    assert [(row.project, row.task_type) for row in rows] == [(project, design), (project, task_type)]
    assert all(cell.text == "" for row in rows for cell in row.cells)
    assert TimeEntry.objects.filter(work_date__gte=MONDAY).count() == 0
    page = response.content.decode()
    assert "Copied 2 rows from last week" in page and "Not copied: 1 row" in page

    # The copied rows then save like any other.
    data = week_post(project, design, {WEEK[0]: "4"})
    logged_in.post(reverse("portal:timesheet"), data)
    assert TimeEntry.objects.get(work_date=WEEK[0]).minutes == 240


def test_a_bad_week_parameter_falls_back_to_this_week_with_a_message(logged_in):
    response = logged_in.get(f"{reverse('portal:timesheet')}?week=next-tuesday")
    assert response.status_code == 200
    assert "is not a date" in response.content.decode()


def test_the_grid_costs_the_same_queries_for_one_row_and_twenty(logged_in, staff_member, task_type,
                                                                 django_assert_max_num_queries):
    projects = [ProjectFactory() for _ in range(20)]
    grid_entry(staff_member, projects[0], task_type, WEEK[0], 60)
    with django_assert_max_num_queries(12) as one_row:
        logged_in.get(url())
    for project in projects[1:]:
        for day in WEEK[:5]:
            grid_entry(staff_member, project, task_type, day, 30)
    with django_assert_max_num_queries(len(one_row.captured_queries)):
        response = logged_in.get(url())
    assert len(response.context["rows"]) == 20


def test_saving_a_week_costs_the_same_queries_for_one_cell_and_twenty_five(logged_in, project):
    task_types = [TaskTypeFactory() for _ in range(5)]

    def post(week, rows, days, hours):
        data = {"week": week.isoformat(), "action": "save", "row": []}
        for task_type in rows:
            data["row"].append(f"{project.id}:{task_type.id}")
            for offset in range(days):
                data[cell(project, task_type, week + dt.timedelta(days=offset))] = hours
        with CaptureQueriesContext(connection) as captured:
            assert logged_in.post(reverse("portal:timesheet"), data).status_code == 302
        return len(captured.captured_queries)

    later = MONDAY + dt.timedelta(days=7)
    # Created, then updated: the grid adds no query per cell, the pipeline works in batches.
    assert post(MONDAY, task_types[:1], 1, "1") == post(later, task_types, 5, "1")
    assert post(MONDAY, task_types[:1], 1, "2") == post(later, task_types, 5, "2")
    assert TimeEntry.objects.count() == 26
    assert set(TimeEntry.objects.values_list("minutes", flat=True)) == {120}
