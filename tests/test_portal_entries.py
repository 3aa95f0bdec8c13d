"""Single-entry form, "My time", and editing or deleting own entries while they are still editable."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from approvals.models import ApprovalRequest, ApprovalStatus
from projects.forms import parse_duration
from projects.models import EntrySource, EntryStatus, TimeEntry
from tests.factories import ProjectFactory, RateFactory, TaskTypeFactory, TimeEntryFactory

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 3, 4)


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


def form_data(project, task_type, /, **overrides):
    data = {"project": project.id, "task_type": task_type.id, "work_date": DAY.isoformat(), "duration": "1:30",
            "description": "Wireframes", "billable": "on"}
    data.update(overrides)
    return {name: value for name, value in data.items() if value is not None}


@pytest.mark.parametrize(("typed", "minutes"), [
    ("1.5", 90), ("1,5", 90), ("1:30", 90), ("0:05", 5), ("90m", 90), ("90 min", 90), ("2h", 120),
    ("1h30", 90), ("1h 30m", 90), (".25", 15), ("8", 480), ("0.1", 6), ("1.333", 80), ("", None), ("  ", None),
])
def test_durations_are_read_as_people_type_them(typed, minutes):
    assert parse_duration(typed) == minutes


@pytest.mark.parametrize("typed", ["soon", "1:75", "1h75", "-1", "1.2.3", "1:3"])
def test_unreadable_durations_are_refused_with_the_accepted_formats(typed):
    with pytest.raises(ValidationError) as raised:
        parse_duration(typed)
    assert "negative" in raised.value.messages[0] or "under 60" in raised.value.messages[0] \
        or "1.5, 1:30" in raised.value.messages[0]


def test_the_entry_form_logs_time_through_the_pipeline(logged_in, staff_member, project, task_type):
    response = logged_in.post(reverse("portal:entry-new"), form_data(project, task_type, duration="2h15"))

    assert response.status_code == 302 and response.url == reverse("portal:my-time")
    entry = TimeEntry.objects.get()
    assert (entry.member, entry.project, entry.task_type, entry.work_date, entry.minutes) == (
        staff_member, project, task_type, DAY, 135)
    assert (entry.description, entry.billable, entry.source) == ("Wireframes", True, EntrySource.PORTAL)
    assert entry.external_id  # the pipeline gave it one
    assert entry.status != EntryStatus.RECORDED  # rated and routed


def test_the_billable_box_left_unticked_logs_non_billable_time(logged_in, project, task_type):
    logged_in.post(reverse("portal:entry-new"), form_data(project, task_type, billable=None))
    assert TimeEntry.objects.get().billable is False


def test_log_and_add_another_returns_to_the_form_on_the_same_day(logged_in, project, task_type):
    response = logged_in.post(reverse("portal:entry-new"), {**form_data(project, task_type), "add_another": "1"})
    assert response.url == f"{reverse('portal:entry-new')}?date={DAY.isoformat()}"
    assert response.status_code == 302
    page = logged_in.get(response.url).content.decode()
    assert f'value="{DAY.isoformat()}"' in page


@pytest.mark.parametrize(("overrides", "field", "fragment"), [
    ({"duration": "lots"}, "duration", "is not a duration"),
    ({"duration": "0"}, "duration", "longer than zero"),
    ({"duration": "25"}, "duration", "longer than 24 hours"),
    ({"duration": None}, "duration", "required"),
    ({"work_date": "2025-12-31"}, "work_date", "outside project"),
    ({"work_date": "31/12/2026"}, "work_date", "valid date"),
    ({"project": 999999}, "project", "valid choice"),
])
def test_the_entry_form_shows_errors_on_their_fields_and_saves_nothing(logged_in, project, task_type, overrides,
                                                                       field, fragment):
    response = logged_in.post(reverse("portal:entry-new"), form_data(project, task_type, **overrides))
    assert response.status_code == 200
    assert fragment in " ".join(response.context["form"].errors[field])
    assert fragment in response.content.decode()
    assert TimeEntry.objects.count() == 0


def test_an_archived_project_is_not_offered(logged_in, project, task_type):
    archived = ProjectFactory(status="archived")
    form = logged_in.get(reverse("portal:entry-new")).context["form"]
    assert project in form.fields["project"].queryset and archived not in form.fields["project"].queryset


def test_my_time_lists_only_own_entries_with_status_amount_and_rejection_reason(logged_in, staff_member,
                                                                                other_staff_member, project,
                                                                                task_type):
    RateFactory(contract=project.contract)  # 150.00 USD/h for everyone
    logged_in.post(reverse("portal:entry-new"), form_data(project, task_type, duration="1:30"))
    rejected = TimeEntryFactory(member=staff_member, project=project, task_type=task_type, work_date=DAY,
                                minutes=60, status=EntryStatus.REJECTED, description="Kick-off")
    ApprovalRequest.objects.create(time_entry=rejected, status=ApprovalStatus.REJECTED,
                                   note="Not in scope of the contract.", requested_at=timezone.now())
    theirs = TimeEntryFactory(member=other_staff_member, project=project, description="Someone else's work")

    response = logged_in.get(reverse("portal:my-time"))

    page = response.content.decode()
    listed = list(response.context["page"].object_list)
    assert set(listed) == set(TimeEntry.objects.filter(member=staff_member)) and theirs not in listed
    assert "Someone else&#x27;s work" not in page
    assert "225.00 USD" in page  # 1.5 h at 150.00
    assert "Approved" in page and "Rejected" in page
    assert "Not in scope of the contract." in page


def test_my_time_filters_by_dates_project_and_status(logged_in, staff_member, project, task_type):
    other_project = ProjectFactory(code="beta-app")
    march_2 = TimeEntryFactory(member=staff_member, project=project, work_date=dt.date(2026, 3, 2))
    march_9 = TimeEntryFactory(member=staff_member, project=project, work_date=dt.date(2026, 3, 9),
                               status=EntryStatus.PENDING)
    on_beta = TimeEntryFactory(member=staff_member, project=other_project, work_date=dt.date(2026, 3, 5))

    def listed(**params):
        response = logged_in.get(reverse("portal:my-time"), params)
        assert response.status_code == 200
        return set(response.context["page"].object_list)

    assert listed() == {march_2, march_9, on_beta}
    assert listed(date_from="2026-03-03") == {march_9, on_beta}
    assert listed(date_to="2026-03-05") == {march_2, on_beta}
    assert listed(date_from="2026-03-03", date_to="2026-03-08") == {on_beta}
    assert listed(project=project.id) == {march_2, march_9}
    assert listed(status="pending") == {march_9}
    response = logged_in.get(reverse("portal:my-time"), {"project": project.id})
    assert response.context["total_duration"] == "2:00"  # the two 60-minute entries on acme-web


def test_a_bad_filter_is_explained_and_narrows_nothing(logged_in, staff_member, project):
    TimeEntryFactory(member=staff_member, project=project)
    response = logged_in.get(reverse("portal:my-time"), {"date_from": "2026-03-09", "date_to": "2026-03-01"})
    assert "The end date is before the start date." in response.content.decode()
    response = logged_in.get(reverse("portal:my-time"), {"date_from": "yesterday"})
    assert "valid date" in response.content.decode()
    assert len(response.context["page"].object_list) == 1


def test_my_time_pages_by_fifty_and_keeps_the_filters(logged_in, staff_member, project):
    for offset in range(55):
        TimeEntryFactory(member=staff_member, project=project, work_date=DAY - dt.timedelta(days=offset))
    first = logged_in.get(reverse("portal:my-time"), {"project": project.id})
    assert len(first.context["page"].object_list) == 50
    assert f"project={project.id}&amp;page=2" in first.content.decode()
    second = logged_in.get(reverse("portal:my-time"), {"project": project.id, "page": 2})
    assert len(second.context["page"].object_list) == 5


def test_my_time_costs_the_same_queries_for_5_and_60_entries(logged_in, staff_member, project, task_type,
                                                              django_assert_max_num_queries):
    def add(count):
        for offset in range(count):
            entry = TimeEntryFactory(member=staff_member, project=project, task_type=task_type,
                                     work_date=DAY - dt.timedelta(days=offset), status=EntryStatus.REJECTED)
            ApprovalRequest.objects.create(time_entry=entry, status=ApprovalStatus.REJECTED, note="No.",
                                           requested_at=timezone.now())

    add(5)
    with django_assert_max_num_queries(12) as five:
        logged_in.get(reverse("portal:my-time"))
    add(55)
    with django_assert_max_num_queries(len(five.captured_queries)):
        response = logged_in.get(reverse("portal:my-time"))
    assert len(response.context["page"].object_list) == 50


def test_an_editable_entry_is_edited_in_place_through_its_own_source(logged_in, staff_member, project, task_type):
    entry = TimeEntryFactory(member=staff_member, project=project, task_type=task_type, work_date=DAY, minutes=60,
                             source=EntrySource.API, external_id="api-7", status=EntryStatus.PENDING)
    page = logged_in.get(reverse("portal:entry-edit", args=[entry.pk]))
    assert page.status_code == 200 and 'value="1:00"' in page.content.decode()

    response = logged_in.post(reverse("portal:entry-edit", args=[entry.pk]),
                              form_data(project, task_type, duration="45m", description="Fixed"))

    assert response.status_code == 302
    assert TimeEntry.objects.count() == 1
    entry.refresh_from_db()
    assert (entry.minutes, entry.description, entry.source, entry.external_id) == (45, "Fixed", "api", "api-7")


def test_a_rejected_entry_can_be_fixed_and_goes_back_through_approval(logged_in, staff_member, project,
                                                                     task_type):
    entry = TimeEntryFactory(member=staff_member, project=project, task_type=task_type, work_date=DAY,
                             status=EntryStatus.REJECTED, source=EntrySource.PORTAL)
    ApprovalRequest.objects.create(time_entry=entry, status=ApprovalStatus.REJECTED, note="Wrong task type.",
                                   requested_at=timezone.now())
    assert "Wrong task type." in logged_in.get(reverse("portal:entry-edit", args=[entry.pk])).content.decode()
    logged_in.post(reverse("portal:entry-edit", args=[entry.pk]), form_data(project, task_type, duration="2"))
    entry.refresh_from_db()
    assert entry.minutes == 120 and entry.status != EntryStatus.REJECTED


def test_edit_errors_from_the_pipeline_show_on_the_form(logged_in, staff_member, project, task_type):
    entry = TimeEntryFactory(member=staff_member, project=project, task_type=task_type, work_date=DAY,
                             status=EntryStatus.PENDING)
    response = logged_in.post(reverse("portal:entry-edit", args=[entry.pk]),
                              form_data(project, task_type, work_date="2027-01-04"))
    assert "outside project" in " ".join(response.context["form"].errors["work_date"])
    entry.refresh_from_db()
    assert entry.work_date == DAY


@pytest.mark.parametrize("status", [EntryStatus.INVOICED])
def test_an_entry_used_downstream_cannot_be_edited_or_deleted(logged_in, staff_member, project, task_type, status):
    entry = TimeEntryFactory(member=staff_member, project=project, task_type=task_type, minutes=60, status=status)

    listing = logged_in.get(reverse("portal:my-time")).content.decode()
    assert reverse("portal:entry-edit", args=[entry.pk]) not in listing
    edit = logged_in.post(reverse("portal:entry-edit", args=[entry.pk]), form_data(project, task_type),
                          follow=True)
    delete = logged_in.post(reverse("portal:entry-delete", args=[entry.pk]), follow=True)

    assert "can no longer be changed" in edit.content.decode()
    assert "can no longer be deleted" in delete.content.decode()
    entry.refresh_from_db()
    assert entry.minutes == 60


def test_an_entry_in_conflict_cannot_be_edited(logged_in, staff_member, project, task_type):
    entry = TimeEntryFactory(member=staff_member, project=project, status=EntryStatus.PENDING,
                             conflict="Changed at the source after invoicing.")
    response = logged_in.get(reverse("portal:entry-edit", args=[entry.pk]))
    assert response.status_code == 302 and response.url == reverse("portal:my-time")


def test_delete_asks_for_confirmation_then_deletes(logged_in, staff_member, project, task_type):
    entry = TimeEntryFactory(member=staff_member, project=project, task_type=task_type, minutes=90,
                             status=EntryStatus.PENDING)
    confirm = logged_in.get(reverse("portal:entry-delete", args=[entry.pk]))
    assert confirm.status_code == 200 and "Delete this entry?" in confirm.content.decode()
    assert TimeEntry.objects.count() == 1

    response = logged_in.post(reverse("portal:entry-delete", args=[entry.pk]), follow=True)

    assert TimeEntry.objects.count() == 0
    assert "Deleted 1:30 on acme-web" in response.content.decode()


@pytest.mark.parametrize("name", ["portal:entry-edit", "portal:entry-delete"])
def test_another_members_entry_is_not_found(logged_in, other_staff_member, project, name):
    theirs = TimeEntryFactory(member=other_staff_member, project=project, status=EntryStatus.PENDING)
    assert logged_in.get(reverse(name, args=[theirs.pk])).status_code == 404
    assert logged_in.post(reverse(name, args=[theirs.pk]), form_data(project, theirs.task_type)).status_code == 404
    assert TimeEntry.objects.filter(pk=theirs.pk, minutes=theirs.minutes).exists()


def test_an_auto_approved_grid_cell_can_still_be_corrected(logged_in, staff_member, project, task_type):
    RateFactory(contract=project.contract)
    monday = dt.date(2026, 3, 2)
    cell = f"cell-{project.id}-{task_type.id}-{monday.isoformat()}"
    save = {"week": monday.isoformat(), "action": "save", "row": f"{project.id}:{task_type.id}"}
    logged_in.post(reverse("portal:timesheet"), {**save, cell: "2"})
    entry = TimeEntry.objects.get()
    assert entry.status == EntryStatus.APPROVED and str(entry.amount.amount) == "300.00"
    page = logged_in.get(f"{reverse('portal:timesheet')}?week={monday.isoformat()}").content.decode()
    assert f'name="{cell}"' in page
    # The correction goes back through rating and approval.
    logged_in.post(reverse("portal:timesheet"), {**save, cell: "1.5"})
    entry.refresh_from_db()
    assert (entry.minutes, str(entry.amount.amount), entry.status) == (90, "225.00", EntryStatus.APPROVED)
