"""REST API: roles, team members, task types and projects."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from djmoney.money import Money
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from projects.models import (
    AlertKind,
    BudgetAlert,
    Project,
    ProjectBudget,
    ProjectStatus,
    Role,
    TaskType,
    TeamMember,
)
from tests.factories import (
    ClientFactory,
    ContractFactory,
    ProjectFactory,
    RoleFactory,
    TaskTypeFactory,
    TeamMemberFactory,
    TimeEntryFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
User = get_user_model()


def api_as(user) -> APIClient:
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


# Roles


def test_finance_manages_roles(finance):
    api = api_as(finance.user)
    created = api.post("/api/v1/roles/", {"code": "senior", "name": "Senior Consultant",
                                          "default_cost_rate": "85.50", "default_cost_rate_currency": "EUR"},
                       format="json")
    assert created.status_code == 201, created.data
    role = Role.objects.get(code="senior")
    assert role.default_cost_rate == Money("85.50", "EUR")
    assert (created.json()["default_cost_rate"], created.json()["default_cost_rate_currency"]) == ("85.50", "EUR")

    url = f"/api/v1/roles/{role.id}/"
    assert api.patch(url, {"default_cost_rate": "90"}, format="json").status_code == 200
    role.refresh_from_db()
    assert role.default_cost_rate == Money("90.00", "EUR")  # keeps its currency
    assert api.delete(url).status_code == 204 and not Role.objects.filter(code="senior").exists()


def test_a_role_in_use_cannot_be_deleted(finance):
    response = api_as(finance.user).delete(f"/api/v1/roles/{finance.role_id}/")
    assert response.status_code == 400 and "team members" in response.json()["non_field_errors"][0]


def test_staff_read_roles_without_cost_rates_and_cannot_write(staff_member):
    api = api_as(staff_member.user)
    listed = api.get("/api/v1/roles/")
    assert listed.status_code == 200
    assert {row["id"] for row in listed.json()["results"]} == {staff_member.role_id}
    assert listed.json()["results"][0]["default_cost_rate"] is None
    assert api.post("/api/v1/roles/", {"code": "x", "name": "X"}, format="json").status_code == 403
    assert api.patch(f"/api/v1/roles/{staff_member.role_id}/", {"name": "Boss"}, format="json").status_code == 403
    assert Role.objects.get().name != "Boss"


def test_a_negative_cost_rate_is_refused(finance):
    response = api_as(finance.user).post("/api/v1/roles/", {"code": "x", "name": "X", "default_cost_rate": "-1"},
                                         format="json")
    assert response.status_code == 400 and "default_cost_rate" in response.json()


# Team members


def member_body(of_role, **changes):
    return {"email": "new.hire@firm.test", "name": "New Hire", "role": of_role.id, "weekly_capacity_hours": "32.00",
            "time_zone": "Europe/Berlin", **changes}


def test_creating_a_member_creates_their_login_in_the_staff_group(finance):
    role = RoleFactory()
    response = api_as(finance.user).post("/api/v1/members/", member_body(role, cost_rate="55.00"), format="json")

    assert response.status_code == 201, response.data
    member = TeamMember.objects.get(email="new.hire@firm.test")
    assert (member.name, member.role, member.weekly_capacity_hours, member.time_zone) == (
        "New Hire", role, Decimal("32.00"), "Europe/Berlin")
    assert member.cost_rate == Money("55.00", "USD")
    user = member.user
    assert (user.username, user.email) == ("new.hire@firm.test", "new.hire@firm.test")
    assert list(user.groups.values_list("name", flat=True)) == ["staff"]
    assert not user.has_usable_password() and not user.is_staff
    assert response.json()["id"] == member.id


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"weekly_capacity_hours": "200"}, "weekly_capacity_hours"),
        ({"role": 999999}, "role"),
        ({"cost_rate": "-3"}, "cost_rate"),
        ({"cost_rate": "50", "cost_rate_currency": "ZZZ"}, "cost_rate_currency"),
    ],
)
def test_a_bad_member_is_a_400_and_makes_no_login(finance, changes, field):
    users_before = User.objects.count()
    response = api_as(finance.user).post("/api/v1/members/", member_body(RoleFactory(), **changes), format="json")
    assert response.status_code == 400 and field in response.json()
    assert User.objects.count() == users_before
    assert not TeamMember.objects.filter(name="New Hire").exists()


def test_an_email_that_already_signs_in_is_refused(finance, staff_member):
    response = api_as(finance.user).post("/api/v1/members/",
                                         member_body(RoleFactory(), email=staff_member.user.username.upper()),
                                         format="json")
    assert response.status_code == 400 and "already exists" in response.json()["email"][0]


def test_changing_a_members_email_changes_their_login(finance, staff_member):
    response = api_as(finance.user).patch(f"/api/v1/members/{staff_member.id}/", {"email": "sam@firm.test"},
                                          format="json")
    assert response.status_code == 200
    staff_member.user.refresh_from_db()
    assert (staff_member.user.username, staff_member.user.email) == ("sam@firm.test", "sam@firm.test")


def test_deleting_a_member_removes_their_login_unless_they_logged_time(finance, staff_member,
                                                                        other_staff_member):
    TimeEntryFactory(member=other_staff_member)
    api = api_as(finance.user)
    user_id = staff_member.user_id
    assert api.delete(f"/api/v1/members/{staff_member.id}/").status_code == 204
    assert not TeamMember.objects.filter(id=staff_member.id).exists()
    assert not User.objects.filter(id=user_id).exists()

    refused = api.delete(f"/api/v1/members/{other_staff_member.id}/")
    assert refused.status_code == 400 and "time entries" in refused.json()["non_field_errors"][0]
    assert TeamMember.objects.filter(id=other_staff_member.id).exists()


def test_staff_see_only_themselves(staff_member, other_staff_member):
    api = api_as(staff_member.user)
    rows = api.get("/api/v1/members/").json()["results"]
    assert [row["id"] for row in rows] == [staff_member.id]
    assert rows[0]["cost_rate"] is None
    assert api.get(f"/api/v1/members/{other_staff_member.id}/").status_code == 404
    assert api.patch(f"/api/v1/members/{staff_member.id}/", {"weekly_capacity_hours": "10"},
                     format="json").status_code == 403
    assert api.post("/api/v1/members/", member_body(staff_member.role), format="json").status_code == 403
    staff_member.refresh_from_db()
    assert staff_member.weekly_capacity_hours == Decimal("40.00")


def test_an_approver_sees_every_member(approver, staff_member):
    rows = api_as(approver.user).get("/api/v1/members/").json()["results"]
    assert {row["id"] for row in rows} == {approver.id, staff_member.id}


def test_member_filters(finance, staff_member):
    TeamMemberFactory(is_active=False, name="Gone")
    api = api_as(finance.user)
    assert [r["name"] for r in api.get("/api/v1/members/", {"is_active": "false"}).json()["results"]] == ["Gone"]
    rows = api.get("/api/v1/members/", {"role": staff_member.role_id}).json()["results"]
    assert [r["id"] for r in rows] == [staff_member.id]


def test_the_member_services_keep_the_login_in_step(finance):
    from django.core.exceptions import ValidationError

    from projects.services import member_create, member_delete, member_update

    member = member_create(email="ana@firm.test", name="Ana", role=RoleFactory())
    assert (member.weekly_capacity_hours, member.time_zone, member.user.username) == (
        Decimal("40.00"), "UTC", "ana@firm.test")
    assert list(member.user.groups.values_list("name", flat=True)) == ["staff"]

    member_update(member=member, changes={"email": "ana.b@firm.test", "weekly_capacity_hours": Decimal("20")})
    member.user.refresh_from_db()
    assert (member.user.username, member.user.email) == ("ana.b@firm.test", "ana.b@firm.test")
    with pytest.raises(ValueError, match="Not a member detail: user"):
        member_update(member=member, changes={"user": finance.user})
    with pytest.raises(ValidationError):
        member_update(member=member, changes={"weekly_capacity_hours": Decimal("200")})

    user_id = member.user_id
    member_delete(member=member)
    assert not TeamMember.objects.filter(email="ana.b@firm.test").exists()
    assert not User.objects.filter(id=user_id).exists()


# Task types


def test_finance_manages_task_types_and_staff_read_them(finance, staff_member):
    api = api_as(finance.user)
    created = api.post("/api/v1/task-types/", {"code": "dev", "name": "Development", "billable": False},
                       format="json")
    assert created.status_code == 201
    task_type = TaskType.objects.get(code="dev")
    assert task_type.billable is False
    assert api.patch(f"/api/v1/task-types/{task_type.id}/", {"billable": True}, format="json").status_code == 200
    task_type.refresh_from_db()
    assert task_type.billable

    staff = api_as(staff_member.user)
    assert [row["code"] for row in staff.get("/api/v1/task-types/").json()["results"]] == ["dev"]
    assert staff.delete(f"/api/v1/task-types/{task_type.id}/").status_code == 403
    assert api.delete(f"/api/v1/task-types/{task_type.id}/").status_code == 204
    assert not TaskType.objects.exists()


def test_only_one_task_type_is_the_default(finance):
    TaskTypeFactory(code="general", is_default=True)
    response = api_as(finance.user).post("/api/v1/task-types/", {"code": "misc", "name": "Misc",
                                                                 "is_default": True}, format="json")
    assert response.status_code == 400
    assert TaskType.objects.filter(is_default=True).count() == 1


# Projects


def project_body(under, **changes):
    return {"contract": under.id, "code": "acme-web", "name": "Acme website", "start_date": "2026-01-01",
            **changes}


def test_finance_creates_a_project_under_the_contracts_client_with_a_budget(finance, project_manager):
    contract = ContractFactory(client__currency="EUR")
    response = api_as(finance.user).post("/api/v1/projects/", project_body(
        contract, manager=project_manager.id, budget_hours="120", budget_amount="18000",
        alert_thresholds=[80, 100]), format="json")

    assert response.status_code == 201, response.data
    project = Project.objects.get()
    assert (project.client, project.contract, project.manager) == (contract.client, contract, project_manager)
    assert project.budget_amount == Money("18000.00", "EUR")
    assert (project.budget_hours, project.alert_thresholds) == (Decimal("120.00"), [80, 100])
    data = response.json()
    assert (data["budget_amount"], data["budget_amount_currency"], data["client"]) == (
        "18000.00", "EUR", contract.client_id)


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"budget_amount": "100", "budget_amount_currency": "GBP"}, "budget_amount", "contract currency"),
        ({"end_date": "2025-06-30"}, "end_date", "before it starts"),
        ({"alert_thresholds": [0, 50]}, "alert_thresholds", "greater than or equal"),
        ({"alert_thresholds": "50"}, "alert_thresholds", "list"),
        ({"budget_hours": "-1"}, "budget_hours", "greater than or equal"),
        ({"budget_amount": "-1"}, "budget_amount", "negative"),
        ({"status": "paused"}, "status", "valid choice"),
        ({"contract": 999999}, "contract", "does not exist"),
    ],
)
def test_a_bad_project_is_a_400_naming_the_field(finance, changes, field, fragment):
    response = api_as(finance.user).post("/api/v1/projects/", project_body(ContractFactory(), **changes),
                                         format="json")
    assert response.status_code == 400
    assert fragment in str(response.json()[field])
    assert not Project.objects.exists()


def test_a_project_whose_contract_belongs_to_another_client_is_a_400(finance):
    contract = ContractFactory()
    response = api_as(finance.user).post("/api/v1/projects/", project_body(contract, client=ClientFactory().id),
                                         format="json")
    assert response.status_code == 400
    assert "another client" in response.json()["contract"][0]
    assert not Project.objects.exists()


def test_changing_a_project(finance):
    project = ProjectFactory(name="Old")
    api = api_as(finance.user)
    url = f"/api/v1/projects/{project.id}/"
    assert api.patch(url, {"name": "New", "status": "archived"}, format="json").status_code == 200
    project.refresh_from_db()
    assert (project.name, project.status) == ("New", ProjectStatus.ARCHIVED)
    refused = api.patch(url, {"client": ClientFactory().id}, format="json")
    assert refused.status_code == 400 and "contract" in refused.json()
    project.refresh_from_db()
    assert project.client == project.contract.client


def test_staff_read_projects_without_budgets_and_cannot_write(staff_member, project_manager):
    mine = ProjectFactory(manager=project_manager, budget_hours=Decimal("10"),
                          budget_amount=Money("1000", "USD"))
    staff = api_as(staff_member.user)
    row = staff.get(f"/api/v1/projects/{mine.id}/").json()
    assert row["code"] == mine.code and row["budget_hours"] is None and row["budget_amount"] is None
    assert staff.post("/api/v1/projects/", project_body(mine.contract, code="new"), format="json").status_code == 403
    assert staff.patch(f"/api/v1/projects/{mine.id}/", {"name": "X"}, format="json").status_code == 403
    assert staff.delete(f"/api/v1/projects/{mine.id}/").status_code == 403
    assert Project.objects.get().name == mine.name

    managed = api_as(project_manager.user).get(f"/api/v1/projects/{mine.id}/").json()
    assert (managed["budget_hours"], managed["budget_amount"]) == ("10.00", "1000.00")


def test_project_filters(finance):
    project = ProjectFactory()
    ProjectFactory(status=ProjectStatus.ARCHIVED)
    api = api_as(finance.user)
    assert [r["id"] for r in api.get("/api/v1/projects/", {"client": project.client_id}).json()["results"]] == [
        project.id]
    assert [r["id"] for r in api.get("/api/v1/projects/", {"status": "active"}).json()["results"]] == [project.id]


def test_a_project_with_time_cannot_be_deleted(finance):
    entry = TimeEntryFactory()
    response = api_as(finance.user).delete(f"/api/v1/projects/{entry.project_id}/")
    assert response.status_code == 400 and Project.objects.filter(id=entry.project_id).exists()


# Query counts stay flat as rows grow


def _list_queries(user, path) -> int:
    api = api_as(user)
    with CaptureQueriesContext(connection) as queries:
        response = api.get(path, {"page_size": 100})
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize(
    ("path", "make"),
    [
        ("/api/v1/roles/", lambda: RoleFactory()),
        ("/api/v1/members/", lambda: TeamMemberFactory(cost_rate=Money("50", "USD"))),
        ("/api/v1/task-types/", lambda: TaskTypeFactory()),
        ("/api/v1/projects/", lambda: ProjectFactory(manager=TeamMemberFactory(), budget_amount=Money("5", "USD"))),
    ],
)
@pytest.mark.parametrize("role", ["finance", "staff_member"])
def test_lists_cost_the_same_queries_for_5_and_50_rows(request, path, make, role):
    caller = request.getfixturevalue(role)
    for _ in range(5):
        make()
    few = _list_queries(caller.user, path)
    for _ in range(45):
        make()
    assert _list_queries(caller.user, path) == few


def test_dates_are_iso(finance):
    project = ProjectFactory(start_date=dt.date(2026, 2, 1))
    assert api_as(finance.user).get(f"/api/v1/projects/{project.id}/").json()["start_date"] == "2026-02-01"


# Budget figures


@pytest.fixture
def budgeted(project_manager):
    project = ProjectFactory(manager=project_manager, budget_hours=Decimal("100"),
                             budget_amount=Money("20000", "USD"))
    ProjectBudget.objects.create(
        project=project, currency="USD", minutes_used=600, amount_used=Decimal("1500.00"),
        revenue=Decimal("1200.00"), cost=Decimal("600.00"), cost_currency="USD", percent_used=Decimal("10.0"),
        burn_weekly_minutes=120, burn_weekly_amount=Decimal("300.00"), forecast_run_out=dt.date(2027, 5, 1),
        refreshed_at=timezone.now(),
    )
    BudgetAlert.objects.create(project=project, kind=AlertKind.THRESHOLD, threshold=10,
                               percent_used=Decimal("10.0"), message="Acme has used 10% of its budget.")
    return project


def test_finance_and_the_manager_read_a_projects_budget(finance, project_manager, budgeted):
    for member in (finance, project_manager):
        response = api_as(member.user).get(f"/api/v1/projects/{budgeted.id}/budget/")
        assert response.status_code == 200, response.data
        data = response.json()
        assert (data["hours_used"], data["amount_used"], data["remaining_hours"], data["remaining_amount"]) == (
            "10.00", "1500.00", "90.00", "18500.00")
        assert (data["percent_used"], data["burn_rate_weekly_hours"], data["burn_rate_weekly_amount"]) == (
            "10.0", "2.00", "300.00")
        assert (data["revenue"], data["cost"], data["margin"], data["margin_percent"]) == (
            "1200.00", "600.00", "600.00", "50.0")
        assert (data["forecast_run_out"], data["currency"]) == ("2027-05-01", "USD")
        assert [(a["kind"], a["threshold"]) for a in data["alerts"]] == [("threshold", 10)]


def test_a_project_with_nothing_processed_has_zero_figures(finance):
    project = ProjectFactory(budget_hours=Decimal("40"))
    data = api_as(finance.user).get(f"/api/v1/projects/{project.id}/budget/").json()
    assert (data["hours_used"], data["remaining_hours"], data["percent_used"], data["alerts"]) == (
        "0.00", "40.00", None, [])


def test_staff_and_other_managers_cannot_read_a_budget(staff_member, budgeted):
    other_manager = TeamMemberFactory(user=UserFactory(roles=["staff", "project_manager"]))
    for member in (staff_member, other_manager):
        assert api_as(member.user).get(f"/api/v1/projects/{budgeted.id}/budget/").status_code == 403
    assert APIClient().get(f"/api/v1/projects/{budgeted.id}/budget/").status_code == 401
