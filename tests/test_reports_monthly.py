"""The monthly management summary: last month's utilization and profitability, emailed to management."""

import datetime as dt

import pytest
from django.core import mail

from config.schedules import schedules
from reports.monthly import management_recipients, send_monthly_summary
from reports.tasks import monthly_management_report
from tests.factories import TeamMemberFactory, UserFactory
from tests.test_reports_data import FIRM_TIME_ZONE, build_firm

pytestmark = pytest.mark.django_db


@pytest.fixture
def firm(settings, finance):
    settings.TIME_ZONE = FIRM_TIME_ZONE
    return build_firm(finance.user)


def test_management_with_an_email_receive_it(firm, management, finance):
    second = UserFactory(username="second-manager@firm.test", roles=["management"])
    UserFactory(username="gone@firm.test", roles=["management"], is_active=False)
    nameless = UserFactory(username="no-email", roles=["management"])
    nameless.email = ""
    nameless.save()
    assert management_recipients() == sorted([management.user.email, second.email])
    mail.outbox.clear()

    assert send_monthly_summary(today=dt.date(2026, 4, 1)) == 2
    assert sorted(message.to[0] for message in mail.outbox) == sorted([management.user.email, second.email])
    assert all(len(message.to) == 1 for message in mail.outbox)  # nobody sees the others' addresses
    message = mail.outbox[0]
    assert message.subject.endswith("utilization and profitability, March 2026")
    body = message.body
    # March 2026: the fixed firm plus the manager's and finance's own 40 h weeks (active members count):
    # capacity 448.80 + 2 x 176 = 800.80 h, 32.00 billable hours: 4.00 %.
    assert "Firm: 4.0% billable (32.00 of 800.80 capacity hours; 34.00 h logged by 5 members)" in body
    assert "Consultant: 10.2% (31.50 of 308.00 h)" in body
    assert "Acme: revenue 2,220.00 USD, cost 2,010.00 USD, margin 210.00 USD (9.5%)" in body
    assert "Beta: revenue 50.00 EUR, cost 30.00 USD, margin – (–)" in body
    # Invoices finalized and issued in March: Beta's, 31 and 13 days after the work.
    assert "Time to invoice: median 22.0 days, 90th percentile 29.2 days (2 entries invoiced)" in body
    assert "Billing accuracy (EUR): 100.0% of 600.00 EUR" in body
    assert "/reports/?start=2026-03-01&end=2026-03-31" in body


def test_nobody_to_tell_sends_nothing(firm):
    mail.outbox.clear()
    assert send_monthly_summary(today=dt.date(2026, 4, 1)) == 0
    assert mail.outbox == []


def test_the_task_and_its_schedule(management):
    TeamMemberFactory()
    mail.outbox.clear()
    assert monthly_management_report("2026-04-01") == "1 monthly management summaries sent"
    assert "No invoiced time this month." in mail.outbox[0].body
    [schedule] = [s for s in schedules() if s["name"] == "reports.monthly_management_report"]
    assert schedule["func"] == "reports.tasks.monthly_management_report" and schedule["cron"] == "0 7 1 * *"
