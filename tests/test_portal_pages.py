"""Portal login, logout, access rules and the home dashboard."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from approvals.models import ApprovalRequest, ApprovalStatus
from projects.models import EntryStatus
from projects.views.week_grid import member_today, week_start
from tests.factories import PASSWORD, ProjectFactory, TeamMemberFactory, TimeEntryFactory, UserFactory

pytestmark = pytest.mark.django_db

LOGGING_PAGES = ["portal:timesheet", "portal:my-time", "portal:entry-new"]


def test_the_login_page_renders(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b'name="username"' in response.content and b'name="password"' in response.content


def test_logging_in_with_the_right_password_opens_the_home_page(client, staff_member):
    response = client.post(reverse("login"), {"username": staff_member.user.username, "password": PASSWORD},
                           follow=True)
    assert response.redirect_chain[-1][0] == reverse("portal:home")
    assert "Sam Staff" in response.content.decode()


def test_a_wrong_password_is_refused_with_a_message(client, staff_member):
    response = client.post(reverse("login"), {"username": staff_member.user.username, "password": "nope"})
    assert response.status_code == 200
    assert "correct" in response.content.decode()  # Django's "Please enter a correct username and password."
    assert "_auth_user_id" not in client.session


def test_logging_out_is_a_post_and_ends_the_session(client, staff_member):
    client.force_login(staff_member.user)
    response = client.post(reverse("logout"))
    assert response.status_code == 302 and response.url == reverse("login")
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("name", ["portal:home", *LOGGING_PAGES])
def test_anonymous_visitors_are_sent_to_the_login_page(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={reverse(name)}"


@pytest.mark.parametrize("name", LOGGING_PAGES)
def test_a_login_without_a_team_member_cannot_log_time_but_is_told_why(client, name):
    admin = UserFactory(is_superuser=True, is_staff=True)
    client.force_login(admin)
    response = client.get(reverse(name))
    assert response.status_code == 403
    assert "not linked to a team member" in response.content.decode()


@pytest.mark.parametrize("name", LOGGING_PAGES)
def test_a_member_without_the_log_time_permission_is_refused(client, name):
    member = TeamMemberFactory(user=UserFactory(roles=[]))
    client.force_login(member.user)
    response = client.get(reverse(name))
    assert response.status_code == 403
    assert "not allowed to log time" in response.content.decode()


def test_a_superuser_without_a_team_member_gets_a_working_home_page(client):
    admin = UserFactory(is_superuser=True, is_staff=True)
    client.force_login(admin)
    response = client.get(reverse("portal:home"))
    assert response.status_code == 200
    assert "not linked to a team member" in response.content.decode()


def test_home_shows_this_weeks_hours_and_what_waits_or_came_back(client, staff_member, other_staff_member):
    project = ProjectFactory(code="acme-web")
    monday = week_start(member_today(staff_member))
    TimeEntryFactory(member=staff_member, project=project, work_date=monday, minutes=90)
    TimeEntryFactory(member=staff_member, project=project, work_date=monday + dt.timedelta(days=1), minutes=45,
                     status=EntryStatus.PENDING)
    rejected = TimeEntryFactory(member=staff_member, project=project, work_date=monday - dt.timedelta(days=7),
                                minutes=30, status=EntryStatus.REJECTED)
    ApprovalRequest.objects.create(time_entry=rejected, status=ApprovalStatus.REJECTED,
                                   note="Wrong project: bill this to the retainer.", requested_at=timezone.now())
    # Someone else's time and last week's time do not count in this week's total.
    TimeEntryFactory(member=other_staff_member, project=project, work_date=monday, minutes=600)
    client.force_login(staff_member.user)

    response = client.get(reverse("portal:home"))

    page = response.content.decode()
    assert response.status_code == 200
    assert response.context["week_duration"] == "2:15"
    assert [entry.minutes for entry in response.context["pending"]] == [45]
    assert "Wrong project: bill this to the retainer." in page
    assert reverse("portal:entry-edit", args=[rejected.pk]) in page


def test_home_lists_a_managers_projects_with_hours_logged(client, project_manager, staff_member):
    managed = ProjectFactory(code="managed-one", manager=project_manager, budget_hours=10)
    ProjectFactory(code="someone-elses")
    TimeEntryFactory(member=staff_member, project=managed, minutes=150)
    client.force_login(project_manager.user)
    response = client.get(reverse("portal:home"))
    projects = response.context["projects"]
    assert [project.code for project in projects] == ["managed-one"]
    assert (projects[0].logged_duration, projects[0].budget_percent) == ("2:30", 25)
    assert 'id="projects"' in response.content.decode()


def test_the_home_page_costs_the_same_queries_however_many_entries(client, staff_member,
                                                                   django_assert_max_num_queries):
    project = ProjectFactory()
    monday = week_start(member_today(staff_member))
    client.force_login(staff_member.user)
    TimeEntryFactory(member=staff_member, project=project, work_date=monday, status=EntryStatus.PENDING)
    with django_assert_max_num_queries(12) as few:
        client.get(reverse("portal:home"))
    for offset in range(40):
        TimeEntryFactory(member=staff_member, project=project, work_date=monday - dt.timedelta(days=offset),
                         minutes=10, status=EntryStatus.PENDING if offset % 2 else EntryStatus.REJECTED)
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(reverse("portal:home"))
