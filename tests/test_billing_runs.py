"""Billing runs: worked examples of lines, subtotals, tax and totals to the cent (PRODUCT.md, Invoices)."""

import datetime as dt
from decimal import Decimal

import pytest
from djmoney.money import Money

from billing.invoicing import billing_run_create, invoice_draft_delete, invoice_draft_regenerate
from billing.models import Allocation, ContractCharge, Invoice, InvoiceStatus, LineKind
from clients.models import BillingType, CapPeriod, Consolidation, FixedFeeSchedule, LineGrouping
from projects.models import EntryStatus, TimeEntry
from tests.billing_helpers import MARCH, approved_time
from tests.factories import (
    ClientFactory,
    ContractFactory,
    ProjectFactory,
    RateFactory,
    RoleFactory,
    TaskTypeFactory,
    TeamMemberFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def firm(db):
    senior = RoleFactory(code="senior", name="Senior Consultant")
    junior = RoleFactory(code="junior", name="Consultant")
    ana = TeamMemberFactory(name="Ana Senior", role=senior)
    ben = TeamMemberFactory(name="Ben Junior", role=junior)
    dev = TaskTypeFactory(code="dev", name="Development")
    design = TaskTypeFactory(code="design", name="Design")
    client = ClientFactory(code="acme", name="Acme", currency="USD", tax_rate=Decimal("20.00"),
                           line_grouping=LineGrouping.TASK_TYPE)
    contract = ContractFactory(client=client, number="C-104", currency="USD")
    project = ProjectFactory(contract=contract, code="acme-web", name="Acme website")
    RateFactory(contract=contract, role=senior, hourly_rate=Money("180.00", "USD"))
    RateFactory(contract=contract, role=junior, hourly_rate=Money("110.00", "USD"))
    return type("Firm", (), dict(senior=senior, junior=junior, ana=ana, ben=ben, dev=dev, design=design,
                                  client=client, contract=contract, project=project))


def lines_of(invoice):
    return [(line.kind, line.description, str(line.quantity), str(line.unit_rate), str(line.amount))
            for line in invoice.lines.order_by("position")]


def totals(invoice):
    return str(invoice.subtotal), str(invoice.tax), str(invoice.total)


def test_task_type_lines_split_by_rate_with_tax(firm):
    approved_time(firm.ana, firm.project, firm.dev, [(dt.date(2026, 3, 2), 90), (dt.date(2026, 3, 3), 50)], "a")
    approved_time(firm.ben, firm.project, firm.dev, [(dt.date(2026, 3, 2), 45)], "b")
    approved_time(firm.ana, firm.project, firm.design, [(dt.date(2026, 3, 4), 20)], "c")
    result = billing_run_create(period_start=MARCH[0], period_end=MARCH[1])
    [invoice] = result.invoices
    assert lines_of(invoice) == [
        ("time", "Design", "0.33", "180.00", "60.00"),
        ("time", "Development", "0.75", "110.00", "82.50"),
        ("time", "Development", "2.33", "180.00", "420.00"),   # 140 min x 180 / 60
    ]
    assert totals(invoice) == ("562.50", "112.50", "675.00")
    assert (invoice.status, invoice.currency, invoice.period_start, invoice.period_end) == (
        InvoiceStatus.DRAFT, "USD", MARCH[0], MARCH[1])
    assert set(TimeEntry.objects.values_list("status", flat=True)) == {EntryStatus.INVOICED}
    assert Allocation.objects.filter(is_live=True).count() == 4


def test_a_line_amount_rounds_the_summed_minutes_once(firm):
    # Three entries of 7 minutes at 110.00: 12.83 each alone, but the line is round(21 x 110 / 60) = 38.50.
    approved_time(firm.ben, firm.project, firm.dev, [(dt.date(2026, 3, d), 7) for d in (2, 3, 4)])
    [invoice] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices
    assert lines_of(invoice) == [("time", "Development", "0.35", "110.00", "38.50")]


@pytest.mark.parametrize(
    ("grouping", "expected"),
    [
        (LineGrouping.MEMBER, [("Ana Senior", "1.50", "180.00", "270.00"), ("Ben Junior", "1.00", "110.00", "110.00")]),
        (LineGrouping.PROJECT, [("Acme website", "1.00", "110.00", "110.00"),
                                ("Acme website", "1.50", "180.00", "270.00")]),
        (LineGrouping.DAY, [("Mon 02 Mar 2026", "1.00", "110.00", "110.00"),
                            ("Mon 02 Mar 2026", "0.50", "180.00", "90.00"),
                            ("Tue 03 Mar 2026", "1.00", "180.00", "180.00")]),
    ],
)
def test_groupings(firm, grouping, expected):
    firm.client.line_grouping = grouping
    firm.client.save()
    approved_time(firm.ana, firm.project, firm.dev, [(dt.date(2026, 3, 2), 30), (dt.date(2026, 3, 3), 60)], "a")
    approved_time(firm.ben, firm.project, firm.design, [(dt.date(2026, 3, 2), 60)], "b")
    [invoice] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices
    assert [row[1:] for row in lines_of(invoice)] == expected
    assert invoice.subtotal == Decimal("380.00")


def test_detailed_grouping_is_one_line_per_entry(firm):
    firm.client.line_grouping = LineGrouping.DETAILED
    firm.client.save()
    approved_time(firm.ana, firm.project, firm.dev, [(dt.date(2026, 3, 2), 30), (dt.date(2026, 3, 3), 30)])
    [invoice] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices
    assert [row[1] for row in lines_of(invoice)] == [
        "2026-03-02 · Ana Senior · Development", "2026-03-03 · Ana Senior · Development"]
    assert invoice.subtotal == Decimal("180.00")


def test_client_consolidation_makes_one_invoice_per_currency(firm):
    second = ProjectFactory(contract=ContractFactory(client=firm.client, number="C-105"), code="acme-app")
    RateFactory(contract=second.contract, hourly_rate=Money("100.00", "USD"))
    euro = ProjectFactory(contract=ContractFactory(client=firm.client, number="C-106", currency="EUR"),
                          code="acme-eu")
    RateFactory(contract=euro.contract, hourly_rate=Money("90.00", "EUR"))
    approved_time(firm.ana, firm.project, firm.dev, [(dt.date(2026, 3, 2), 60)], "a")
    approved_time(firm.ana, second, firm.dev, [(dt.date(2026, 3, 3), 60)], "b")
    approved_time(firm.ana, euro, firm.dev, [(dt.date(2026, 3, 4), 60)], "c")
    invoices = sorted(billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices,
                      key=lambda i: i.currency)
    assert [(i.currency, i.contract_id, totals(i)) for i in invoices] == [
        ("EUR", None, ("90.00", "18.00", "108.00")),
        ("USD", None, ("280.00", "56.00", "336.00")),
    ]


@pytest.mark.parametrize("consolidation", [Consolidation.CONTRACT, Consolidation.PROJECT])
def test_contract_and_project_consolidation(firm, consolidation):
    firm.client.consolidation = consolidation
    firm.client.save()
    sibling = ProjectFactory(contract=firm.contract, code="acme-app")
    approved_time(firm.ana, firm.project, firm.dev, [(dt.date(2026, 3, 2), 60)], "a")
    approved_time(firm.ana, sibling, firm.dev, [(dt.date(2026, 3, 3), 60)], "b")
    invoices = billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices
    if consolidation == Consolidation.CONTRACT:
        assert [(i.contract_id, i.project_id, i.subtotal) for i in invoices] == [
            (firm.contract.id, None, Decimal("360.00"))]
    else:
        assert sorted((i.project_id, i.subtotal) for i in invoices) == [
            (firm.project.id, Decimal("180.00")), (sibling.id, Decimal("180.00"))]


def test_over_cap_hours_show_as_a_zero_line(firm):
    firm.contract.cap_hours, firm.contract.cap_period = Decimal("2"), CapPeriod.CONTRACT
    firm.contract.save()
    entries = approved_time(firm.ana, firm.project, firm.dev, [(dt.date(2026, 3, 2), 90), (dt.date(2026, 3, 3), 60),
                                                               (dt.date(2026, 3, 4), 30)])
    # Over-cap entries are held for review; an approver lets them through.
    TimeEntry.objects.filter(pk__in=[e.pk for e in entries]).update(status=EntryStatus.APPROVED)
    [invoice] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices
    assert lines_of(invoice) == [
        ("time", "Development", "2.00", "180.00", "360.00"),
        ("over_cap", "Over the cap of contract C-104: not billed", "1.00", "0.00", "0.00"),
    ]
    assert totals(invoice) == ("360.00", "72.00", "432.00")
    assert Allocation.objects.filter(is_live=True).count() == 3


def test_retainer_fee_covered_time_and_overage(firm):
    contract = firm.contract
    contract.billing_type = BillingType.RETAINER
    contract.retainer_amount, contract.retainer_hours = Money("1500.00", "USD"), Decimal("10")
    contract.save()
    approved_time(firm.ben, firm.project, firm.dev, [(dt.date(2026, 3, d), 240) for d in (2, 3, 4)])
    [invoice] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices
    assert lines_of(invoice) == [
        ("retainer_overage", "Overage · Development", "2.00", "110.00", "220.00"),
        ("retainer_fee", "Retainer March 2026 (C-104), covering 10.00 h", "1.00", "1500.00", "1500.00"),
    ]
    assert totals(invoice) == ("1720.00", "344.00", "2064.00")
    assert ContractCharge.objects.count() == 1


def test_retainer_fee_is_billed_once_even_without_time(firm):
    contract = firm.contract
    contract.billing_type = BillingType.RETAINER
    contract.retainer_amount, contract.retainer_hours = Money("1500.00", "USD"), Decimal("10")
    contract.save()
    [invoice] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices
    assert totals(invoice) == ("1500.00", "300.00", "1800.00")
    assert billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices == []


def test_fixed_fee_installments_split_equally_the_last_takes_the_cents(firm):
    contract = firm.contract
    contract.billing_type = BillingType.FIXED_FEE
    contract.fixed_fee_amount = Money("10000.00", "USD")
    contract.start_date, contract.end_date = dt.date(2026, 1, 1), dt.date(2026, 3, 31)
    contract.save()
    approved_time(firm.ana, firm.project, firm.dev, [(dt.date(2026, 3, 2), 60)])   # tracked, not billed
    march = billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices[0]
    assert lines_of(march) == [("fixed_fee", "Fixed fee (C-104), installment 3 of 3: 01 Mar to 31 Mar 2026",
                                "1.00", "3333.34", "3333.34")]
    jan = billing_run_create(period_start=dt.date(2026, 1, 1), period_end=dt.date(2026, 1, 31)).invoices[0]
    assert jan.subtotal == Decimal("3333.33")


def test_milestones_are_billed_once_complete(firm):
    contract = firm.contract
    contract.billing_type, contract.fixed_fee_schedule = BillingType.FIXED_FEE, FixedFeeSchedule.MILESTONES
    contract.save()
    done = contract.milestones.create(name="Discovery", amount=Money("4000.00", "USD"),
                                      completed_on=dt.date(2026, 3, 10))
    contract.milestones.create(name="Launch", amount=Money("6000.00", "USD"))
    [invoice] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices
    assert lines_of(invoice) == [("milestone", "Milestone: Discovery (C-104)", "1.00", "4000.00", "4000.00")]
    assert ContractCharge.objects.get().milestone == done
    assert billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices == []


def test_only_approved_time_in_the_period_is_billed(firm):
    inside = approved_time(firm.ana, firm.project, firm.dev, [(dt.date(2026, 3, 31), 60)], "in")
    approved_time(firm.ana, firm.project, firm.dev, [(dt.date(2026, 4, 1), 60)], "out")
    held = approved_time(firm.ana, firm.project, firm.dev, [(dt.date(2026, 3, 5), 60)], "held")
    TimeEntry.objects.filter(pk=held[0].pk).update(status=EntryStatus.PENDING)
    [invoice] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices
    assert list(Allocation.objects.values_list("time_entry_id", flat=True)) == [inside[0].pk]
    assert invoice.subtotal == Decimal("180.00")


def test_a_second_run_bills_nothing_twice(firm):
    approved_time(firm.ana, firm.project, firm.dev, [(dt.date(2026, 3, 2), 60)])
    billing_run_create(period_start=MARCH[0], period_end=MARCH[1])
    again = billing_run_create(period_start=MARCH[0], period_end=MARCH[1])
    assert again.invoices == [] and again.run.entries_billed == 0
    assert Invoice.objects.count() == 1


def test_deleting_a_draft_releases_its_entries_and_fees(firm):
    entries = approved_time(firm.ana, firm.project, firm.dev, [(dt.date(2026, 3, 2), 60)])
    [invoice] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices
    assert invoice_draft_delete(invoice=invoice) == 1
    assert TimeEntry.objects.get(pk=entries[0].pk).status == EntryStatus.APPROVED
    assert (Invoice.objects.count(), Allocation.objects.count()) == (0, 0)
    [again] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices
    assert again.subtotal == Decimal("180.00")


def test_regenerating_a_draft_picks_up_new_time(firm):
    approved_time(firm.ana, firm.project, firm.dev, [(dt.date(2026, 3, 2), 60)], "a")
    [invoice] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices
    approved_time(firm.ana, firm.project, firm.dev, [(dt.date(2026, 3, 3), 60)], "b")
    [fresh] = invoice_draft_regenerate(invoice=invoice).invoices
    assert fresh.subtotal == Decimal("360.00")
    assert not Invoice.objects.filter(pk=invoice.pk).exists()


def test_multi_currency_clients_bill_in_their_own_currency(firm):
    euro_client = ClientFactory(code="bonjour", name="Bonjour SA", currency="EUR", tax_rate=Decimal("19.00"))
    project = ProjectFactory(contract=ContractFactory(client=euro_client, number="E-1", currency="EUR"))
    RateFactory(contract=project.contract, hourly_rate=Money("95.50", "EUR"))
    approved_time(firm.ana, project, firm.dev, [(dt.date(2026, 3, 2), 100)])
    [invoice] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1], client=euro_client).invoices
    # 100 min x 95.50 / 60 = 159.1666 -> 159.17; tax 19 % = 30.2423 -> 30.24.
    assert (invoice.currency, totals(invoice)) == ("EUR", ("159.17", "30.24", "189.41"))
    assert lines_of(invoice)[0][3:] == ("95.50", "159.17")
    assert LineKind.TIME == lines_of(invoice)[0][0]


def test_day_lines_read_in_date_order(firm):
    firm.client.line_grouping = LineGrouping.DAY
    firm.client.save()
    approved_time(firm.ana, firm.project, firm.dev, [(dt.date(2026, 3, d), 60) for d in (2, 6, 10)])
    [invoice] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices
    assert [row[1] for row in lines_of(invoice)] == ["Mon 02 Mar 2026", "Fri 06 Mar 2026", "Tue 10 Mar 2026"]


def test_a_run_writes_finished_clients_in_batches_with_the_same_invoices(firm, monkeypatch):
    """Entries are read a few at a time and each client's drafts are written once enough wait (here: at once),
    so a run holds one batch and one client in memory; the invoices are the same as in one go."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from billing import invoicing

    globex = ClientFactory(code="globex", name="Globex", tax_rate=Decimal("10.00"),
                           line_grouping=LineGrouping.DETAILED)
    other = ProjectFactory(contract=ContractFactory(client=globex, number="C-200"), code="globex-app")
    RateFactory(contract=other.contract, hourly_rate=Money("100.00", "USD"))
    approved_time(firm.ana, firm.project, firm.dev, [(dt.date(2026, 3, d), 45) for d in (2, 3, 4)], "a")
    approved_time(firm.ben, other, firm.dev, [(dt.date(2026, 3, d), 30) for d in (2, 3)], "g")
    approved_time(firm.ben, firm.project, firm.design, [(dt.date(2026, 3, 5), 60)], "b")
    monkeypatch.setattr(invoicing, "ENTRY_CHUNK", 2)
    monkeypatch.setattr(invoicing, "WRITE_AT", 1)
    with CaptureQueriesContext(connection) as captured:
        result = billing_run_create(period_start=MARCH[0], period_end=MARCH[1])
    # One batch of invoices per client.
    assert sum(query["sql"].startswith('INSERT INTO "billing_invoice" ') for query in captured) == 2
    acme, globex_invoice = sorted(result.invoices, key=lambda invoice: invoice.client.code)
    assert lines_of(acme) == [("time", "Design", "1.00", "110.00", "110.00"),
                              ("time", "Development", "2.25", "180.00", "405.00")]
    assert totals(acme) == ("515.00", "103.00", "618.00")
    assert [line[2:] for line in lines_of(globex_invoice)] == [("0.50", "100.00", "50.00")] * 2
    assert totals(globex_invoice) == ("100.00", "10.00", "110.00")
    assert result.run.entries_billed == Allocation.objects.filter(is_live=True).count() == 6
    assert set(TimeEntry.objects.values_list("status", flat=True)) == {EntryStatus.INVOICED}
