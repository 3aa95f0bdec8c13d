"""Approval thresholds: each rule trips alone and together; auto-approval is recorded as such."""

import datetime as dt
from decimal import Decimal

import pytest
from djmoney.money import Money

from approvals.models import ApprovalPolicy, ApprovalStatus
from billing.pipeline import TimeEntryInput, ingest
from projects.models import EntrySource, EntryStatus, TimeEntry
from tests.factories import ProjectFactory, RateFactory, TaskTypeFactory, TeamMemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup():
    member = TeamMemberFactory(name="Sam Staff")
    dev = TaskTypeFactory(code="dev", name="Development")
    project = ProjectFactory(code="acme-web", contract__number="C-200", contract__client__name="Acme")
    RateFactory(contract=project.contract, hourly_rate=Money("100.00", "USD"))
    return member, dev, project


def log(setup, minutes=60, day=dt.date(2026, 3, 2), key="e", **overrides):
    member, dev, project = setup
    values = {"member_id": member.id, "project_id": project.id, "task_type_id": dev.id,
              "work_date": day, "minutes": minutes, "external_id": key}
    values.update(overrides)
    result = ingest([TimeEntryInput(**values)], EntrySource.API)
    assert not result.rejected, result.rejected[0].errors
    return TimeEntry.objects.select_related("approval").get(pk=result.by_index[0].pk)


def test_an_ordinary_entry_is_approved_automatically(setup):
    entry = log(setup)
    assert entry.status == EntryStatus.APPROVED
    request = entry.approval
    assert (request.status, request.reasons, request.decided_by) == (ApprovalStatus.AUTO_APPROVED, [], None)
    assert request.policy == ApprovalPolicy.objects.get(is_active=True)
    assert "automatically" in request.note and request.decided_at is not None


def test_amount_over_limit(setup):
    # 601 minutes would also trip the hours rule; 10 h at 100.00 = 1,000.00 is not over, 1,000.01+ is.
    project = setup[2]
    project.contract.auto_approve_max_amount = Money("150.00", "USD")
    project.contract.save()
    assert log(setup, minutes=90, key="a").approval.reasons == []
    held = log(setup, minutes=91, key="b")
    assert held.status == EntryStatus.PENDING
    assert held.approval.reasons == ["amount_over_limit"]
    assert held.approval.reason_messages == ["Amount 151.67 USD is over the auto-approval limit of 150.00 USD."]


def test_the_global_amount_limit_applies_without_an_override(setup):
    policy = ApprovalPolicy.objects.get(is_active=True)
    policy.auto_approve_max_amount, policy.auto_approve_max_minutes = Decimal("50.00"), 1000
    policy.save()
    assert log(setup, minutes=31).approval.reasons == ["amount_over_limit"]


def test_hours_over_limit(setup):
    policy = ApprovalPolicy.objects.get(is_active=True)
    policy.auto_approve_max_amount = Decimal("100000")
    policy.save()
    assert log(setup, minutes=600, key="a").approval.reasons == []
    held = log(setup, minutes=601, key="b", day=dt.date(2026, 3, 3))
    assert held.approval.reasons == ["hours_over_limit"]
    assert held.approval.reason_messages == ["10:01 h is longer than the auto-approval limit of 10:00 h."]


def test_budget_threshold_counts_the_entry_itself(setup):
    project = setup[2]
    project.budget_hours = Decimal("10")
    project.save()
    assert log(setup, minutes=480, key="a").approval.reasons == []          # 80 %
    held = log(setup, minutes=60, key="b", day=dt.date(2026, 3, 3))          # 90 %
    assert held.approval.reasons == ["budget_threshold"]
    assert held.approval.reason_messages == [
        "With this entry the budget of acme-web is 90.0% used (review from 90%)."]


def test_budget_threshold_by_amount_and_a_contract_override(setup):
    project = setup[2]
    project.budget_amount = Money("1000.00", "USD")
    project.save()
    project.contract.budget_review_percent = 50
    project.contract.save()
    assert log(setup, minutes=240, key="a").approval.reasons == []           # 400.00 = 40 %
    assert log(setup, minutes=60, key="b", day=dt.date(2026, 3, 3)).approval.reasons == ["budget_threshold"]


def test_client_spend_limit_counts_the_month(setup):
    project = setup[2]
    project.contract.monthly_spend_limit = Money("250.00", "USD")
    project.contract.save()
    assert log(setup, minutes=120, key="a", day=dt.date(2026, 3, 2)).approval.reasons == []   # 200.00
    assert log(setup, minutes=30, key="b", day=dt.date(2026, 3, 3)).approval.reasons == []    # 250.00
    held = log(setup, minutes=1, key="c", day=dt.date(2026, 3, 4))                            # 251.67
    assert held.approval.reasons == ["client_spend_limit"]
    assert "Acme's billable time in March 2026 reaches 251.67 USD" in held.approval.reason_messages[0]
    assert log(setup, minutes=60, key="d", day=dt.date(2026, 4, 1)).approval.reasons == []    # a new month


def test_non_billable_time_never_trips_the_spend_limit(setup):
    project = setup[2]
    project.contract.monthly_spend_limit = Money("10.00", "USD")
    project.contract.save()
    assert log(setup, minutes=120, billable=False).approval.reasons == []


def test_cap_exceeded_and_no_rate(setup):
    project = setup[2]
    project.contract.cap_hours = Decimal("1")
    project.contract.save()
    assert log(setup, minutes=90).approval.reasons == ["cap_exceeded"]
    other = ProjectFactory(code="no-rates")
    member, dev, _ = setup
    held = log((member, dev, other), key="x")
    assert held.approval.reasons == ["no_rate"]
    assert held.approval.reason_messages == [f"No rate on contract {other.contract.number} matches this entry."]


def test_every_tripped_rule_is_recorded_together(setup):
    project = setup[2]
    project.budget_hours = Decimal("10")
    project.save()
    contract = project.contract
    contract.cap_hours = Decimal("10")
    contract.monthly_spend_limit = Money("500.00", "USD")
    contract.auto_approve_max_amount = Money("900.00", "USD")
    contract.save()
    held = log(setup, minutes=660)  # 600 billable minutes under the cap: 1,000.00
    assert held.approval.reasons == [
        "amount_over_limit", "hours_over_limit", "budget_threshold", "client_spend_limit", "cap_exceeded"]
    assert len(held.approval.reason_messages) == 5


def test_a_changed_entry_goes_back_through_approval(setup):
    entry = log(setup, minutes=60)
    assert entry.status == EntryStatus.APPROVED
    changed = log(setup, minutes=700)
    assert changed.pk == entry.pk
    assert (changed.status, changed.approval.reasons) == (
        EntryStatus.PENDING, ["amount_over_limit", "hours_over_limit"])
