"""Budgets: every figure on a known dataset, alerts once per crossing, emailed to the project manager."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from djmoney.money import Money

from billing.pipeline import TimeEntryInput, ingest
from projects.budgets import burn_window, refresh_budgets
from projects.models import AlertKind, BudgetAlert, EntrySource, ProjectBudget
from tests.factories import ProjectFactory, RateFactory, RoleFactory, TaskTypeFactory, TeamMemberFactory

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 3, 25)  # a Wednesday; the last four full weeks are Feb 23 - Mar 22


@pytest.fixture
def project():
    manager = TeamMemberFactory(name="Priya Manager", email="priya@firm.test", user__username="priya@firm.test")
    project = ProjectFactory(code="acme-web", name="Acme website", manager=manager,
                             budget_hours=Decimal("100"), budget_amount=Money("20000.00", "USD"),
                             end_date=dt.date(2026, 12, 31))
    RateFactory(contract=project.contract, hourly_rate=Money("150.00", "USD"))
    # Long days would be held for their amount; these tests are about budgets, not approval.
    project.contract.auto_approve_max_amount = Money("5000.00", "USD")
    project.contract.budget_review_percent = 1000
    project.contract.save()
    return project


@pytest.fixture
def member():
    return TeamMemberFactory(role=RoleFactory(code="consultant", default_cost_rate=Money("50.00", "USD")))


def log(member, project, entries):
    dev = TaskTypeFactory(code="dev")
    inputs = [TimeEntryInput(member_id=member.id, project_id=project.id, task_type_id=dev.id, work_date=day,
                             minutes=minutes, external_id=f"{day}-{n}", billable=billable)
              for n, (day, minutes, billable) in enumerate(entries)]
    result = ingest(inputs, EntrySource.API)
    assert not result.rejected
    return result


def test_burn_window_is_the_last_four_full_weeks():
    assert burn_window(TODAY) == (dt.date(2026, 2, 23), dt.date(2026, 3, 22))
    assert burn_window(dt.date(2026, 3, 23)) == (dt.date(2026, 2, 23), dt.date(2026, 3, 22))


def test_budget_figures_on_a_known_dataset(project, member):
    # 8 h in each of the four burn weeks (two of them non-billable), 4 h before the window, 2 h this week.
    days = [(dt.date(2026, 2, 16), 240, True), (dt.date(2026, 2, 23), 480, True), (dt.date(2026, 3, 2), 480, True),
            (dt.date(2026, 3, 9), 480, False), (dt.date(2026, 3, 16), 480, True), (dt.date(2026, 3, 24), 120, True)]
    log(member, project, days)
    refresh_budgets(project_ids=[project.id], today=TODAY)
    budget = ProjectBudget.objects.get(project=project)
    # Used: 38 h raw; amount 30 billable hours x 150 = 4,500.00.
    assert (budget.hours_used, budget.amount_used) == (Decimal("38.00"), Decimal("4500.00"))
    assert (budget.remaining_hours, budget.remaining_amount) == (Decimal("62.00"), Decimal("15500.00"))
    assert budget.percent_used == Decimal("38.0")
    # Burn: 32 h and 3 x 1,200.00 over four weeks.
    assert (budget.burn_weekly_hours, budget.burn_weekly_amount) == (Decimal("8.00"), Decimal("900.00"))
    # Hours run out first: 62 h / 8 h a week = 7.75 weeks = 55 days (rounded up) after today.
    assert budget.forecast_run_out == TODAY + dt.timedelta(days=55)
    # Revenue is approved billable amount; cost is every minute at 50.00/h.
    assert (budget.revenue, budget.cost) == (Decimal("4500.00"), Decimal("1900.00"))
    assert (budget.margin, budget.margin_percent) == (Decimal("2600.00"), Decimal("57.8"))


def test_each_threshold_alerts_once_and_emails_the_manager(project, member, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        log(member, project, [(dt.date(2026, 3, 2), 600, True), (dt.date(2026, 3, 3), 600, True),
                              (dt.date(2026, 3, 4), 600, True), (dt.date(2026, 3, 5), 600, True),
                              (dt.date(2026, 3, 6), 600, True)])  # 50 h = 50 %, 7,500.00
    assert list(BudgetAlert.objects.filter(kind=AlertKind.THRESHOLD).values_list("threshold", flat=True)) == [50]
    assert [m.to for m in mail.outbox] == [["priya@firm.test"]]
    assert "crossing the 50% alert" in mail.outbox[0].body

    with django_capture_on_commit_callbacks(execute=True):
        log(member, project, [(dt.date(2026, 3, 9), 60, True)])  # 51 %: no new crossing
    assert BudgetAlert.objects.count() == 1 and len(mail.outbox) == 1

    with django_capture_on_commit_callbacks(execute=True):
        log(member, project, [(dt.date(2026, 3, 10), 600, True), (dt.date(2026, 3, 11), 600, True),
                              (dt.date(2026, 3, 12), 600, True), (dt.date(2026, 3, 13), 600, True)])  # 91 %
    thresholds = sorted(BudgetAlert.objects.filter(kind=AlertKind.THRESHOLD).values_list("threshold", flat=True))
    assert thresholds == [50, 75, 90]
    assert len(mail.outbox) == 3
    refresh_budgets(project_ids=[project.id])
    assert BudgetAlert.objects.filter(kind=AlertKind.THRESHOLD).count() == 3


def test_timeline_risk_when_the_budget_runs_out_before_the_end(project, member):
    project.budget_hours, project.budget_amount = Decimal("40"), None
    project.save()
    log(member, project, [(dt.date(2026, 3, d), 480, True) for d in (2, 9, 16)])  # 8 h a week in 3 of 4 weeks
    refresh_budgets(project_ids=[project.id], today=TODAY)
    budget = ProjectBudget.objects.get(project=project)
    # 24 h used, burn 6 h a week, 16 h left: 2.67 weeks = 19 days.
    assert budget.forecast_run_out == dt.date(2026, 4, 13)
    alert = BudgetAlert.objects.get(project=project, kind=AlertKind.RUN_OUT_BEFORE_END)
    assert "runs out on 2026-04-13, before the project ends on 2026-12-31" in alert.message
    assert refresh_budgets(project_ids=[project.id], today=TODAY) == []


def test_an_active_project_past_its_end_date_alerts(project, member):
    project.end_date = dt.date(2026, 3, 10)
    project.save()
    log(member, project, [(dt.date(2026, 3, 2), 60, True)])
    refresh_budgets(project_ids=[project.id], today=TODAY)
    alert = BudgetAlert.objects.get(project=project, kind=AlertKind.PAST_END_DATE)
    assert alert.message == "Acme website (acme-web) ended on 2026-03-10 but is still active."


def test_refreshing_many_projects_costs_the_same_queries(member):
    projects = [ProjectFactory(budget_hours=Decimal("10")) for _ in range(3)]
    with CaptureQueriesContext(connection) as one:
        refresh_budgets(project_ids=[projects[0].id], today=TODAY)
    with CaptureQueriesContext(connection) as three:
        refresh_budgets(project_ids=[p.id for p in projects], today=TODAY)
    assert len(one.captured_queries) == len(three.captured_queries)


def _figures(project_ids):
    return {b.project_id: (b.minutes_used, b.amount_used, b.revenue, b.cost, b.cost_currency, b.percent_used,
                           b.burn_weekly_minutes, b.burn_weekly_amount, b.forecast_run_out)
            for b in ProjectBudget.objects.filter(project_id__in=project_ids)}


def _same_as_a_full_recomputation(project_ids):
    """The figures the pipeline left (routing's totals plus the batch) equal those read from every entry."""
    after_pipeline = _figures(project_ids)
    refresh_budgets(project_ids=project_ids)
    assert _figures(project_ids) == after_pipeline
    return after_pipeline


def test_the_pipelines_budgets_equal_a_full_recomputation_after_edits_deletions_and_re_rating(
        project, member, monkeypatch):
    from approvals.models import ApprovalRequest, ApprovalStatus
    from billing.models import Rate
    from billing.pipeline import reprocess_contracts
    from projects.models import EntryStatus, TimeEntry
    from projects.time_capture import time_entries_delete

    # The pipeline refreshes budgets as of today: today is in the known dataset's burn window.
    monkeypatch.setattr("projects.budgets.timezone.localdate", lambda: TODAY)
    other = ProjectFactory(code="acme-app", contract=project.contract, budget_hours=Decimal("10"))
    dev = TaskTypeFactory(code="dev")

    def deliver(rows):
        result = ingest([TimeEntryInput(member_id=member.id, project_id=p.id, task_type_id=dev.id, work_date=day,
                                        minutes=minutes, external_id=key, billable=billable)
                         for key, p, day, minutes, billable in rows], EntrySource.API)
        assert not result.rejected
        return _same_as_a_full_recomputation([project.id, other.id])

    # 11 h is held for its length (pending: uses the budget, no revenue yet); 1 h is not billable.
    figures = deliver([("a", project, dt.date(2026, 3, 2), 240, True), ("b", project, dt.date(2026, 3, 3), 660, True),
                       ("c", project, dt.date(2026, 3, 4), 60, False), ("d", other, dt.date(2026, 3, 4), 120, True)])
    # 16 h used; 15 billable h x 150 = 2,250.00, of which the held 11 h (1,650.00) is not revenue yet; cost 50/h.
    assert figures[project.id][:5] == (960, Decimal("2250.00"), Decimal("600.00"), Decimal("800.00"), "USD")
    assert figures[other.id][:5] == (120, Decimal("300.00"), Decimal("300.00"), Decimal("100.00"), "USD")

    # An edit at the source: the entry is rated and routed again, its old figures replaced, not added.
    figures = deliver([("a", project, dt.date(2026, 3, 2), 300, True), ("e", project, dt.date(2026, 3, 5), 30, True)])
    assert figures[project.id][:2] == (1050, Decimal("2475.00"))

    # A deletion and a person's rejection, then a new batch on the same project.
    time_entries_delete(entries=[TimeEntry.objects.get(external_id="e")])
    TimeEntry.objects.filter(external_id="b").update(status=EntryStatus.REJECTED)
    ApprovalRequest.objects.filter(time_entry__external_id="b").update(status=ApprovalStatus.REJECTED)
    figures = deliver([("f", project, dt.date(2026, 3, 6), 60, True)])
    assert figures[project.id][:3] == (420, Decimal("900.00"), Decimal("900.00"))

    # A new rate: open time is rated again in the pipeline's batches.
    Rate.objects.filter(contract=project.contract).update(hourly_rate=Decimal("200.00"))
    assert reprocess_contracts(contract_ids=[project.contract_id]) == 5
    figures = _same_as_a_full_recomputation([project.id, other.id])
    assert figures[project.id][:3] == (420, Decimal("1200.00"), Decimal("1200.00"))
    assert figures[other.id][:3] == (120, Decimal("400.00"), Decimal("400.00"))


def test_an_entry_moved_to_another_project_leaves_the_first_projects_budget(project, member, monkeypatch):
    monkeypatch.setattr("projects.budgets.timezone.localdate", lambda: TODAY)
    other = ProjectFactory(code="acme-app", contract=project.contract, budget_hours=Decimal("10"))
    dev = TaskTypeFactory(code="dev")

    def deliver(target):
        result = ingest([TimeEntryInput(member_id=member.id, project_id=target.id, task_type_id=dev.id,
                                        work_date=dt.date(2026, 3, 4), minutes=120, external_id="moved")],
                        EntrySource.API)
        assert not result.rejected
        return {b.project_id: (b.minutes_used, b.amount_used) for b in ProjectBudget.objects.all()}

    assert deliver(other)[other.id] == (120, Decimal("300.00"))
    budgets = deliver(project)
    assert budgets[project.id] == (120, Decimal("300.00"))
    assert budgets[other.id] == (0, Decimal("0.00"))
