"""A small fixed firm for the report tests (no tests here); every figure asserted is worked out by hand below.

People (cost 60.00 USD/h each, through their role):
  Alice (Consultant, 40 h/week), Bob (Consultant, 30 h/week), Carol (Designer, 32 h/week)
Work:
  Acme (USD, lines grouped by member), contract at 120.00/h, project acme-web with a 100 h budget
  Beta (EUR), contract at 100.00/h, project beta-app without a budget
Time (minutes; all approved automatically unless said otherwise):
  Alice  Jan 12  acme  60          never billed (old WIP)
  Carol  Feb 2   beta  240, Feb 20 beta 120   billed on Beta's February invoice
  Alice  Mar 2   acme  480, Mar 3 240, Mar 4 120 on a non-billable task
  Bob    Mar 2   acme  360, Mar 5 60
  Alice  Mar 10  acme  660         held for approval (pending): over 600 minutes and 1,000.00
  Bob    Mar 6   acme  300         rejected (never counts)
  Alice  Mar 9   acme  120         recorded, not rated yet (never counts)
  Bob    Mar 30  acme  90          approved after March was billed: unbilled
  Carol  Mar 16  beta  30          on a draft invoice (not issued)
Invoices:
  Beta February: one line 360 min x 100.00 = 600.00 EUR, issued 5 Mar 2026, finalized 5 Mar 10:00 UTC
  Acme March: Alice's line 720 min = 1,440.00 and Bob's line 420 min = 840.00 USD; the client disputed
  Bob's line (dismissed), issued 3 Apr 2026, finalized 2 Apr 23:30 UTC = 3 Apr in the firm's time zone
  (Europe/Berlin); then a credit note writes off 120 of the 480 minutes of Alice's 2 March entry
  (120 min x 120.00 = 240.00).
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone
from djmoney.money import Money

from billing.credit_notes import CreditRequest, credit_note_create
from billing.invoicing import billing_run_create
from billing.lifecycle import invoice_finalize
from billing.models import Invoice, InvoiceLine
from billing.pipeline import TimeEntryInput, ingest
from billing.review import dispute_resolve, review_dispute
from projects.models import EntrySource, EntryStatus, TimeEntry
from tests.factories import (
    ClientFactory,
    ContractFactory,
    ProjectFactory,
    RateFactory,
    RoleFactory,
    TaskTypeFactory,
    TeamMemberFactory,
    TimeEntryFactory,
)

FIRM_TIME_ZONE = "Europe/Berlin"
MARCH = (dt.date(2026, 3, 1), dt.date(2026, 3, 31))
WIP_TODAY = dt.date(2026, 5, 15)


@dataclass
class Firm:
    alice: object
    bob: object
    carol: object
    consultant: object
    designer: object
    acme: object
    beta: object
    acme_web: object
    beta_app: object
    acme_invoice: Invoice
    beta_invoice: Invoice
    credit_note: Invoice
    entries: dict


def log(member, project, task_type, day, minutes, key, expect=EntryStatus.APPROVED):
    result = ingest(
        [
            TimeEntryInput(
                member_id=member.id,
                project_id=project.id,
                task_type_id=task_type.id,
                work_date=day,
                minutes=minutes,
                external_id=key,
            )
        ],
        EntrySource.API,
    )
    assert not result.rejected, [r.errors for r in result.rejected]
    entry = TimeEntry.objects.get(external_id=key)
    assert entry.status == expect, (key, entry.status)
    return entry


def _issue(invoice, finalized_at: dt.datetime, issue_date: dt.date) -> Invoice:
    invoice = invoice_finalize(invoice=invoice, issue_date=issue_date)
    Invoice.objects.filter(pk=invoice.pk).update(finalized_at=finalized_at)
    invoice.refresh_from_db()
    return invoice


def build_firm(finance_user=None) -> Firm:
    consultant = RoleFactory(code="consultant", name="Consultant", default_cost_rate=Money("60.00", "USD"))
    designer = RoleFactory(code="designer", name="Designer", default_cost_rate=Money("60.00", "USD"))
    alice = TeamMemberFactory(name="Alice Adams", role=consultant, weekly_capacity_hours=Decimal("40"))
    bob = TeamMemberFactory(name="Bob Brown", role=consultant, weekly_capacity_hours=Decimal("30"))
    carol = TeamMemberFactory(name="Carol Chen", role=designer, weekly_capacity_hours=Decimal("32"))
    dev = TaskTypeFactory(code="dev", name="Development")
    admin = TaskTypeFactory(code="admin", name="Administration", billable=False)

    acme = ClientFactory(
        code="acme", name="Acme", currency="USD", line_grouping="member", invoice_emails=["ap@acme.test"]
    )
    beta = ClientFactory(code="beta", name="Beta", currency="EUR", invoice_emails=["ap@beta.test"])
    acme_web = ProjectFactory(
        contract=ContractFactory(client=acme, number="C-1", currency="USD"),
        code="acme-web",
        name="Acme web",
        budget_hours=Decimal("100"),
        start_date=dt.date(2026, 1, 1),
    )
    beta_app = ProjectFactory(
        contract=ContractFactory(client=beta, number="C-2", currency="EUR"),
        code="beta-app",
        name="Beta app",
        start_date=dt.date(2026, 1, 1),
    )
    RateFactory(contract=acme_web.contract, hourly_rate=Money("120.00", "USD"))
    RateFactory(contract=beta_app.contract, hourly_rate=Money("100.00", "EUR"))

    entries = {
        "alice-jan12": log(alice, acme_web, dev, dt.date(2026, 1, 12), 60, "alice-jan12"),
        "carol-feb02": log(carol, beta_app, dev, dt.date(2026, 2, 2), 240, "carol-feb02"),
        "carol-feb20": log(carol, beta_app, dev, dt.date(2026, 2, 20), 120, "carol-feb20"),
        "alice-mar02": log(alice, acme_web, dev, dt.date(2026, 3, 2), 480, "alice-mar02"),
        "alice-mar03": log(alice, acme_web, dev, dt.date(2026, 3, 3), 240, "alice-mar03"),
        "alice-mar04": log(alice, acme_web, admin, dt.date(2026, 3, 4), 120, "alice-mar04"),
        "bob-mar02": log(bob, acme_web, dev, dt.date(2026, 3, 2), 360, "bob-mar02"),
        "bob-mar05": log(bob, acme_web, dev, dt.date(2026, 3, 5), 60, "bob-mar05"),
        "alice-mar10": log(
            alice, acme_web, dev, dt.date(2026, 3, 10), 660, "alice-mar10", expect=EntryStatus.PENDING
        ),
    }
    # Neither ever counts: rejected, and recorded but not rated.
    TimeEntryFactory(
        member=bob,
        project=acme_web,
        task_type=dev,
        work_date=dt.date(2026, 3, 6),
        minutes=300,
        status=EntryStatus.REJECTED,
        billable_minutes=300,
        amount=Money("600.00", "USD"),
        cost_amount=Money("300.00", "USD"),
    )
    TimeEntryFactory(
        member=alice, project=acme_web, task_type=dev, work_date=dt.date(2026, 3, 9), minutes=120
    )

    [beta_draft] = billing_run_create(
        period_start=dt.date(2026, 2, 1), period_end=dt.date(2026, 2, 28), client=beta
    ).invoices
    beta_invoice = _issue(beta_draft, dt.datetime(2026, 3, 5, 10, 0, tzinfo=dt.UTC), dt.date(2026, 3, 5))

    [acme_draft] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1], client=acme).invoices
    bob_line = InvoiceLine.objects.get(invoice=acme_draft, description="Bob Brown")
    dispute = review_dispute(invoice=acme_draft, line_id=bob_line.id, comment="Was this really 7 hours?")
    dispute_resolve(dispute=dispute, user=finance_user, resolution="Checked with Bob: correct.", dismiss=True)
    acme_invoice = _issue(acme_draft, dt.datetime(2026, 4, 2, 23, 30, tzinfo=dt.UTC), dt.date(2026, 4, 3))
    credit_note = credit_note_create(
        invoice=acme_invoice,
        release=False,
        reason="Goodwill",
        parts=[CreditRequest(entries["alice-mar02"].id, minutes=120)],
    )

    entries["bob-mar30"] = log(bob, acme_web, dev, dt.date(2026, 3, 30), 90, "bob-mar30")
    entries["carol-mar16"] = log(carol, beta_app, dev, dt.date(2026, 3, 16), 30, "carol-mar16")
    billing_run_create(period_start=MARCH[0], period_end=MARCH[1], client=beta)
    assert timezone.get_current_timezone_name() == FIRM_TIME_ZONE
    return Firm(
        alice=alice,
        bob=bob,
        carol=carol,
        consultant=consultant,
        designer=designer,
        acme=acme,
        beta=beta,
        acme_web=acme_web,
        beta_app=beta_app,
        acme_invoice=acme_invoice,
        beta_invoice=beta_invoice,
        credit_note=credit_note,
        entries=entries,
    )
