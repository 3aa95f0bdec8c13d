"""Entries not yet invoiced are rated again when their project, task type, member or role changes.

Rating reads the project's and task type's billable flags, the project's contract, the member's role (role
rates) and cost rate, and the role's default cost. A change to any of them, wherever it is made, queues the
same re-rating as a rate change; invoiced time keeps its figures.
"""

import datetime as dt

import pytest
from djmoney.money import Money

from billing.invoicing import billing_run_create
from projects.models import EntryStatus
from tests.billing_helpers import approved_time
from tests.factories import (
    ContractFactory,
    ProjectFactory,
    RateFactory,
    RoleFactory,
    TaskTypeFactory,
    TeamMemberFactory,
)

pytestmark = pytest.mark.django_db


def usd(value: str) -> Money:
    return Money(value, "USD")


@pytest.fixture
def firm():
    """150.00/h by default, 200.00/h for seniors; a junior's hour invoiced in February, 90 minutes open in March."""
    contract = ContractFactory(number="C-300", currency="USD")
    project = ProjectFactory(contract=contract, code="acme-web")
    junior = RoleFactory(code="junior", default_cost_rate=usd("60.00"))
    senior = RoleFactory(code="senior", default_cost_rate=usd("90.00"))
    RateFactory(contract=contract, hourly_rate=usd("150.00"))
    RateFactory(contract=contract, role=senior, hourly_rate=usd("200.00"))
    member = TeamMemberFactory(role=junior)
    dev = TaskTypeFactory(code="dev", name="Development")
    [invoiced] = approved_time(member, project, dev, [(dt.date(2026, 2, 2), 60)], prefix="feb")
    billing_run_create(period_start=dt.date(2026, 2, 1), period_end=dt.date(2026, 2, 28))
    [open_entry] = approved_time(member, project, dev, [(dt.date(2026, 3, 2), 90)], prefix="mar")
    return type("Firm", (), dict(contract=contract, project=project, junior=junior, senior=senior, member=member,
                                  dev=dev, invoiced=invoiced, open=open_entry))


def figures(entry):
    entry.refresh_from_db()
    return entry.billable_minutes, entry.amount, entry.cost_amount


def test_the_figures_before_any_change(firm):
    assert figures(firm.open) == (90, usd("225.00"), usd("90.00"))
    assert figures(firm.invoiced) == (60, usd("150.00"), usd("60.00"))
    assert firm.invoiced.status == EntryStatus.INVOICED


def test_a_project_made_non_billable_rates_its_open_time_at_nothing(firm, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        firm.project.billable = False
        firm.project.save()

    assert figures(firm.open) == (0, usd("0.00"), usd("90.00"))
    assert figures(firm.invoiced) == (60, usd("150.00"), usd("60.00"))


def test_a_project_moved_to_another_contract_takes_that_contracts_rates(firm, django_capture_on_commit_callbacks):
    other = ContractFactory(number="C-301", currency="USD", client=firm.contract.client)
    RateFactory(contract=other, hourly_rate=usd("120.00"))

    with django_capture_on_commit_callbacks(execute=True):
        firm.project.contract = other
        firm.project.save()

    assert figures(firm.open)[:2] == (90, usd("180.00"))
    assert figures(firm.invoiced)[:2] == (60, usd("150.00"))


def test_a_task_type_made_non_billable_rates_its_open_time_at_nothing(firm, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        firm.dev.billable = False
        firm.dev.save()

    assert figures(firm.open)[:2] == (0, usd("0.00"))
    assert figures(firm.invoiced)[:2] == (60, usd("150.00"))


def test_a_promotion_rates_open_time_at_the_new_roles_rate_and_cost(firm, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        firm.member.role = firm.senior
        firm.member.save()

    assert figures(firm.open) == (90, usd("300.00"), usd("135.00"))
    assert figures(firm.invoiced) == (60, usd("150.00"), usd("60.00"))


def test_a_members_own_cost_rate_and_then_the_roles_default_cost(firm, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        firm.junior.default_cost_rate = usd("70.00")
        firm.junior.save()
    assert figures(firm.open)[2] == usd("105.00")

    with django_capture_on_commit_callbacks(execute=True):
        firm.member.cost_rate = usd("50.00")
        firm.member.save()
    assert figures(firm.open)[2] == usd("75.00")

    # The member now has a cost of their own: the role's default no longer concerns their time.
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        firm.junior.default_cost_rate = usd("80.00")
        firm.junior.save()
    assert callbacks == [] and figures(firm.open)[2] == usd("75.00")
    assert figures(firm.invoiced)[2] == usd("60.00")


def test_changes_that_rating_does_not_read_queue_nothing(firm, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        firm.project.name = "Acme website, phase 2"
        firm.project.save()
        firm.dev.name = "Software development"
        firm.dev.save()
        firm.member.name = "Jo Junior"
        firm.member.save()
        firm.senior.name = "Senior consultant"
        firm.senior.save()

    assert callbacks == []
