"""Weekly client summaries, scheduled billing at period end, and the run_billing command."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from djmoney.money import Money

from billing.models import ClientMessage, Invoice
from billing.notifications import last_week, send_weekly_summaries
from billing.tasks import bill_clients_at_period_end
from clients.models import BillingPeriod
from tests.billing_helpers import approved_time
from tests.factories import (
    ClientFactory,
    ContactFactory,
    ContractFactory,
    ProjectFactory,
    RateFactory,
    TaskTypeFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(staff_member):
    client = ClientFactory(code="acme", name="Acme", billing_period=BillingPeriod.WEEKLY)
    ContactFactory(client=client, email="pm@acme.test", receives_weekly_summary=True)
    ContactFactory(client=client, email="quiet@acme.test", receives_weekly_summary=False)
    project = ProjectFactory(contract=ContractFactory(client=client), name="Acme website",
                             budget_hours=Decimal("100"))
    RateFactory(contract=project.contract, hourly_rate=Money("100.00", "USD"))
    dev = TaskTypeFactory(code="dev", name="Development")
    approved_time(staff_member, project, dev, [(dt.date(2026, 3, 9), 120), (dt.date(2026, 3, 10), 90),
                                               (dt.date(2026, 3, 2), 60)])
    return client


def test_last_week_is_monday_to_sunday():
    assert last_week(dt.date(2026, 3, 16)) == (dt.date(2026, 3, 9), dt.date(2026, 3, 15))
    assert last_week(dt.date(2026, 3, 18)) == (dt.date(2026, 3, 9), dt.date(2026, 3, 15))


def test_weekly_summary_goes_to_opted_in_contacts_with_last_weeks_figures(acme):
    assert send_weekly_summaries(today=dt.date(2026, 3, 16)) == 1
    [message] = mail.outbox
    assert message.to == ["pm@acme.test"]
    assert "Acme website · Development: 3.50 h, 350.00 USD" in message.body
    assert "Acme website: 4.5% of budget used" in message.body
    assert "450.00 USD" in message.body  # unbilled: all three approved entries
    logged = ClientMessage.objects.get()
    assert (logged.kind, logged.to, logged.status) == ("weekly_summary", ["pm@acme.test"], "sent")


def test_clients_are_billed_the_day_after_their_period_ends(acme):
    # Sunday 15 March closes Acme's week of 9-15 March.
    assert bill_clients_at_period_end("2026-03-16") == "1 clients billed, 1 draft invoices"
    invoice = Invoice.objects.get()
    assert (invoice.period_start, invoice.period_end, invoice.subtotal) == (
        dt.date(2026, 3, 9), dt.date(2026, 3, 15), Decimal("350.00"))
    assert bill_clients_at_period_end("2026-03-17") == "0 clients billed, 0 draft invoices"


def test_run_billing_command(acme, capsys):
    call_command("run_billing", "--start", "2026-03-01", "--end", "2026-03-31", "--client", "acme")
    output = capsys.readouterr().out
    assert "Done: 1 draft invoices, 3 entries billed." in output
    with pytest.raises(CommandError, match="No client with code 'nope'"):
        call_command("run_billing", "--start", "2026-03-01", "--end", "2026-03-31", "--client", "nope")
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("run_billing", "--start", "March", "--end", "2026-03-31")
