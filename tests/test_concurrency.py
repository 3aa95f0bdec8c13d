"""Races on PostgreSQL: concurrent billing runs never bill an entry twice; concurrent finalizations
take consecutive numbers with none skipped or repeated."""

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connection, connections
from djmoney.money import Money

from billing.invoicing import BillingConflict, billing_run_create
from billing.lifecycle import invoice_finalize
from billing.models import Allocation, Invoice, InvoiceStatus
from clients.models import Consolidation
from projects.models import EntryStatus, TimeEntry
from tests.billing_helpers import MARCH, approved_time
from tests.factories import ClientFactory, ContractFactory, ProjectFactory, RateFactory, TaskTypeFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL"),
]


def run_together(count, work):
    """Start `count` threads at the same moment; collect what each returned or raised."""
    barrier = threading.Barrier(count)
    outcomes = [None] * count

    def worker(index):
        try:
            barrier.wait()
            outcomes[index] = work(index)
        except Exception as error:  # noqa: BLE001 - the test inspects what each thread met
            outcomes[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return outcomes


def test_two_billing_runs_at_once_bill_every_entry_once(staff_member):
    dev = TaskTypeFactory(code="dev")
    for n in range(4):
        project = ProjectFactory(contract=ContractFactory(client=ClientFactory(code=f"c{n}")))
        RateFactory(contract=project.contract, hourly_rate=Money("100.00", "USD"))
        approved_time(staff_member, project, dev, [(dt.date(2026, 3, d), 30) for d in range(2, 12)], f"p{n}")
    entries = TimeEntry.objects.count()

    outcomes = run_together(2, lambda _: billing_run_create(period_start=MARCH[0], period_end=MARCH[1]))

    assert not any(isinstance(o, Exception) and not isinstance(o, BillingConflict) for o in outcomes), outcomes
    billed = Allocation.objects.filter(is_live=True)
    assert billed.count() == entries
    assert billed.values("time_entry").distinct().count() == entries
    assert set(TimeEntry.objects.values_list("status", flat=True)) == {EntryStatus.INVOICED}
    assert Invoice.objects.count() == 4


def test_twenty_drafts_finalized_at_once_get_twenty_consecutive_numbers(staff_member):
    dev = TaskTypeFactory(code="dev")
    client = ClientFactory(consolidation=Consolidation.PROJECT, tax_rate=Decimal("0"))
    contract = ContractFactory(client=client)
    RateFactory(contract=contract, hourly_rate=Money("100.00", "USD"))
    for n in range(20):
        approved_time(staff_member, ProjectFactory(contract=contract), dev, [(dt.date(2026, 3, 2 + n % 20), 15)],
                      f"d{n}")
    drafts = billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices
    assert len(drafts) == 20

    outcomes = run_together(20, lambda i: invoice_finalize(invoice=drafts[i], issue_date=dt.date(2026, 4, 1)))

    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    numbers = sorted(Invoice.objects.filter(status=InvoiceStatus.FINALIZED).values_list("number", flat=True))
    assert numbers == [f"INV-2026-{n:04d}" for n in range(1, 21)]
