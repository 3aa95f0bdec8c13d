"""The Projects page: budget figures and alerts for managers, every project for finance."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from djmoney.money import Money

from projects.budgets import refresh_budgets
from tests.billing_helpers import approved_time
from tests.factories import PASSWORD, ProjectFactory, RateFactory, TaskTypeFactory

pytestmark = pytest.mark.django_db


def login(client, member):
    assert client.login(username=member.user.username, password=PASSWORD)
    return client


@pytest.fixture
def managed(project_manager, staff_member):
    project = ProjectFactory(code="acme-web", name="Acme website", manager=project_manager,
                             budget_hours=Decimal("10"), budget_amount=Money("2000.00", "USD"))
    RateFactory(contract=project.contract, hourly_rate=Money("100.00", "USD"))
    approved_time(staff_member, project, TaskTypeFactory(code="dev"), [(dt.date(2026, 3, 2), 480)])
    return project


def test_a_manager_sees_the_budget_of_their_projects(client, project_manager, managed):
    ProjectFactory(code="someone-else")
    page = login(client, project_manager).get(reverse("portal:projects")).content.decode()
    assert "acme-web" in page and "someone-else" not in page
    assert "8.00 h of 10 h" in page and "80%" in page
    assert "800.00 USD of 2,000.00" in page
    assert "Budget threshold crossed 75%" in page


def test_finance_sees_every_project(client, finance, managed):
    ProjectFactory(code="someone-else")
    page = login(client, finance).get(reverse("portal:projects")).content.decode()
    assert "acme-web" in page and "someone-else" in page


def test_staff_without_projects_are_refused(client, staff_member):
    assert login(client, staff_member).get(reverse("portal:projects")).status_code == 403


def test_the_page_costs_the_same_queries_for_2_and_20_projects(client, finance):
    login(client, finance)
    projects = [ProjectFactory(budget_hours=Decimal("10")) for _ in range(2)]
    refresh_budgets(project_ids=[p.id for p in projects])
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse("portal:projects")).status_code == 200
    more = [ProjectFactory(budget_hours=Decimal("10")) for _ in range(18)]
    refresh_budgets(project_ids=[p.id for p in more])
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("portal:projects"))
    assert len(few.captured_queries) == len(many.captured_queries)
