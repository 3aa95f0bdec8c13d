"""The demo firm: what it promises, that a second run adds nothing, and that its logins work."""

import datetime as dt
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Sum

from billing.demo import DemoCalendar, plan_time, project_spans, seed_demo_firm
from billing.models import Rate, RateLevel
from clients.models import BillingType, Client, Contact, Contract, FeeMilestone, FixedFeeSchedule
from projects.demo_logins import DEMO_PASSWORD, DEMO_USERS
from projects.models import Project, Role, TaskType, TeamMember, TimeEntry
from tests.factories import ClientFactory

pytestmark = pytest.mark.django_db

# A Thursday: the demo's time ends on the Friday of the week before.
TODAY = dt.date(2026, 3, 19)
WEEKS = 2


@pytest.fixture
def seeded():
    return seed_demo_firm(weeks=WEEKS, today=TODAY)


def _counts() -> dict[str, int]:
    models = [Client, Contact, Contract, FeeMilestone, Rate, Role, TaskType, TeamMember, Project, TimeEntry,
              get_user_model()]
    return {model.__name__: model.objects.count() for model in models}


def test_the_demo_seeds_a_believable_firm(seeded):
    assert Client.objects.count() >= 6
    assert set(Client.objects.values_list("currency", flat=True)) >= {"USD", "EUR", "GBP"}
    assert set(Contract.objects.values_list("billing_type", flat=True)) == set(BillingType.values)
    assert TeamMember.objects.count() == 25 and Role.objects.count() == 5
    assert Project.objects.count() == 15
    assert (seeded.clients, seeded.projects, seeded.members) == (Client.objects.count(), 15, 25)

    # Contracts of every kind, with the terms that kind needs.
    time_and_materials = Contract.objects.filter(billing_type=BillingType.TIME_AND_MATERIALS)
    assert {6, 15} <= set(time_and_materials.values_list("rounding_increment", flat=True))
    assert time_and_materials.filter(cap_hours__isnull=False, cap_amount__isnull=False,
                                     monthly_spend_limit__isnull=False).exists()
    fixed = Contract.objects.filter(billing_type=BillingType.FIXED_FEE)
    assert fixed.filter(fixed_fee_schedule=FixedFeeSchedule.INSTALLMENTS, fixed_fee_amount__isnull=False,
                        end_date__isnull=False).exists()
    milestones = FeeMilestone.objects.filter(contract__fixed_fee_schedule=FixedFeeSchedule.MILESTONES)
    assert milestones.count() >= 3 and milestones.filter(completed_on__isnull=False).exists()
    assert Contract.objects.filter(billing_type=BillingType.RETAINER, retainer_amount__isnull=False,
                                   retainer_hours__isnull=False).exists()
    assert Contact.objects.filter(receives_weekly_summary=True).exists()
    assert Contact.objects.filter(receives_invoices=True).exists()
    assert Client.objects.exclude(invoice_emails=[]).count() >= 5

    # Rate cards at every level the brief names, in each contract's currency.
    levels = {rate.level for rate in Rate.objects.all()}
    assert {RateLevel.DEFAULT, RateLevel.ROLE, RateLevel.ROLE_TASK, RateLevel.TASK, RateLevel.MEMBER} <= levels
    assert Rate.objects.filter(project__isnull=False).exists()
    assert all(str(rate.hourly_rate.currency) == rate.contract.currency
               for rate in Rate.objects.select_related("contract"))
    assert not Rate.objects.filter(contract__billing_type__in=[BillingType.FIXED_FEE, BillingType.NON_BILLABLE])

    # Projects: managed, budgeted, a couple nearly used up.
    assert not Project.objects.filter(manager__isnull=True).exists()
    assert Project.objects.filter(budget_amount__isnull=False).exists()
    used = dict(TimeEntry.objects.values_list("project__code").annotate(minutes=Sum("minutes")))
    near_limit = [p.code for p in Project.objects.filter(budget_hours__isnull=False)
                  if used.get(p.code, 0) / 60 >= float(p.budget_hours) * 0.9]
    assert len(near_limit) >= 2
    assert TaskType.objects.filter(is_default=True).count() == 1


def test_time_covers_the_weekdays_of_the_last_weeks_with_realistic_days(seeded):
    entries = TimeEntry.objects.all()
    assert seeded.entries == entries.count() > 25 * WEEKS * 5
    days = set(entries.values_list("work_date", flat=True))
    assert all(day.weekday() < 5 for day in days)
    assert min(days) == dt.date(2026, 3, 2) and max(days) == dt.date(2026, 3, 13)

    per_member_day = entries.values_list("member", "work_date").annotate(total=Sum("minutes"))
    totals = [total for _, _, total in per_member_day]
    assert min(totals) >= 4 * 60 and max(totals) <= 12 * 60
    assert all(entry.description for entry in entries)
    # Some internal, non-billable time is logged, on non-billable task types and projects.
    assert entries.filter(task_type__billable=False).exists()
    assert entries.filter(project__billable=False).exists()
    assert entries.filter(billable=False, task_type__billable=True).exists()
    assert set(entries.values_list("external_id", flat=True)) == {
        entry.external_id for entry in plan_time(DemoCalendar(today=TODAY, weeks=WEEKS),
                                                 project_spans(DemoCalendar(today=TODAY, weeks=WEEKS)))}


def test_running_it_twice_adds_nothing(seeded):
    before = _counts()
    again = seed_demo_firm(weeks=WEEKS, today=TODAY)
    assert _counts() == before
    assert again.entries_created == 0 and again.entries_unchanged == before["TimeEntry"]


def test_a_later_and_longer_run_adds_only_the_new_days(seeded):
    first_run = set(TimeEntry.objects.values_list("external_id", "minutes"))
    later = seed_demo_firm(weeks=4, today=TODAY + dt.timedelta(weeks=1))
    assert Project.objects.count() == 15 and TeamMember.objects.count() == 25
    assert first_run <= set(TimeEntry.objects.values_list("external_id", "minutes"))
    assert later.entries_created == TimeEntry.objects.count() - len(first_run) > 0


def test_each_demo_login_can_log_in_with_its_role(client, seeded):
    members = TeamMember.objects.select_related("user")
    assert {member.user.username for member in members} >= {username for _, username in DEMO_USERS}
    for role, username in DEMO_USERS:
        assert client.login(username=username, password=DEMO_PASSWORD), username
        user = get_user_model().objects.get(username=username)
        groups = set(user.groups.values_list("name", flat=True))
        if role == "superuser":
            assert user.is_superuser and user.is_staff
        else:
            assert role in groups
            assert user.is_staff == (role != "staff")
        client.logout()
    manager = TeamMember.objects.get(user__username=dict(DEMO_USERS)["project_manager"])
    assert manager.managed_projects.count() >= 2
    # Everyone else has no password: only the printed logins get in.
    assert not get_user_model().objects.exclude(username__in=dict(DEMO_USERS).values()).filter(
        password__startswith="md5")


def test_the_command_prints_progress_a_summary_and_the_logins():
    out = StringIO()
    call_command("demo", "--weeks", "1", stdout=out)
    output = out.getvalue()
    assert "week of" in output
    assert "Demo firm ready: 7 clients, 8 contracts, 25 team members, 15 projects" in output
    for _, username in DEMO_USERS:
        assert username in output
    assert TimeEntry.objects.exists()


def test_if_empty_leaves_a_database_with_clients_alone():
    ClientFactory()
    out = StringIO()
    call_command("demo", "--if-empty", stdout=out)
    assert "no demo seeded" in out.getvalue()
    assert Client.objects.count() == 1 and not TeamMember.objects.exists()


def test_if_empty_seeds_an_empty_database():
    call_command("demo", "--if-empty", "--weeks", "1", stdout=StringIO())
    assert Client.objects.count() >= 6 and TimeEntry.objects.exists()


def test_zero_weeks_is_refused():
    with pytest.raises(CommandError, match="at least 1"):
        call_command("demo", "--weeks", "0", stdout=StringIO())
