"""Query counts of the batch services the benchmarks measure, pinned so a regression fails CI.

`make bench` shows what a batch costs at full size; these tests hold the shape: the statements a batch
issues must not grow with the entries, clients, contracts or groupings in it. Bulk inserts and updates
come in chunks (SQLite caps the parameters of one statement), counted from the same limits as
tests/queries.py does. The last test keeps the benchmark's own data generator honest on PostgreSQL.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from djmoney.money import Money

from approvals.models import ApprovalRequest
from billing.invoicing import billing_run_create
from billing.models import Allocation, Invoice, InvoiceEvent, InvoiceLine
from billing.pipeline import TimeEntryInput, ingest
from clients.models import BillingType, CapPeriod, Consolidation, LineGrouping, RoundingMode
from projects.models import EntrySource, EntryStatus, TimeEntry
from tests.factories import (
    ClientFactory,
    ContractFactory,
    ProjectFactory,
    RateFactory,
    RoleFactory,
    TaskTypeFactory,
    TeamMemberFactory,
)
from tests.queries import insert_chunks, split_bulk
from tests.test_time_capture import rated_write_chunks

pytestmark = pytest.mark.django_db

START = dt.date(2026, 1, 1)
GROUPINGS = list(LineGrouping.values)
CONSOLIDATIONS = list(Consolidation.values)
# One contract of each kind the rating step treats differently: plain, capped by hours a month, capped
# by amount, rounded, with a spend limit, and a retainer.
CONTRACT_TERMS = [
    {},
    {"cap_hours": Decimal("40"), "cap_period": CapPeriod.MONTH},
    {"cap_amount": Money("50000", "USD")},
    {"rounding_increment": 15, "rounding_mode": RoundingMode.UP},
    {"monthly_spend_limit": Money("20000", "USD")},
    {"billing_type": BillingType.RETAINER, "retainer_amount": Money("5000", "USD"), "retainer_hours": Decimal("20")},
]


@pytest.fixture
def people():
    role = RoleFactory(code="consultant")
    return [TeamMemberFactory(role=role) for _ in range(3)], TaskTypeFactory(code="dev")


def _projects(count: int, *, tag: str, terms=None):
    """`count` clients with a project each, their preferences and contract terms cycling through every kind."""
    projects = []
    for n in range(count):
        client = ClientFactory(code=f"{tag}-{n}", line_grouping=GROUPINGS[n % len(GROUPINGS)],
                               consolidation=CONSOLIDATIONS[n % len(CONSOLIDATIONS)])
        options = (terms or [{}])[n % len(terms or [{}])]
        contract = ContractFactory(client=client, number=f"C-{tag}-{n}", start_date=START, **options)
        RateFactory(contract=contract, effective_from=START)
        projects.append(ProjectFactory(contract=contract, code=f"{tag}-p{n}", start_date=START))
    return projects


def _inputs(projects, members, task_type, *, per_project: int, first_day: dt.date, tag: str):
    inputs = []
    for p, project in enumerate(projects):
        for n in range(per_project):
            inputs.append(TimeEntryInput(member_id=members[n % len(members)].id, project_id=project.id,
                                         task_type_id=task_type.id, work_date=first_day + dt.timedelta(days=n % 20),
                                         minutes=30 + 15 * (n % 5), external_id=f"{tag}-{p}-{n}"))
    return inputs


def test_a_billing_run_costs_the_same_queries_for_2_clients_and_for_12(people):
    members, task_type = people
    february, march = (dt.date(2026, 2, 1), dt.date(2026, 2, 28)), (dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    few = _projects(2, tag="few")
    many = _projects(12, tag="many")
    assert not ingest(_inputs(few, members, task_type, per_project=3, first_day=february[0], tag="f"),
                      EntrySource.API).rejected
    assert not ingest(_inputs(many, members, task_type, per_project=25, first_day=march[0], tag="m"),
                      EntrySource.API).rejected

    def billed(period):
        with CaptureQueriesContext(connection) as captured:
            result = billing_run_create(period_start=period[0], period_end=period[1])
        invoices = result.invoices
        lines = InvoiceLine.objects.filter(invoice__in=invoices).count()
        entries = Allocation.objects.filter(line__invoice__in=invoices).count()
        return captured, len(invoices), lines, entries

    small, *_ = billed(february)
    large, invoices, lines, entries = billed(march)
    assert entries == 12 * 25 and TimeEntry.objects.filter(status=EntryStatus.INVOICED).count() == 2 * 3 + 300
    fixed_small, *_ = split_bulk(small)
    fixed_large, inserts, updates = split_bulk(large)
    # Locking and reading the candidates, earlier billing, fees and charges, saving the run: whatever the size.
    # The savepoint and its release; clients, contracts, projects, members, task types and fees already
    # charged, read once; the candidates, read client by client through one cursor; the entries' status; the run.
    assert fixed_small == fixed_large == 11
    # The run, then invoices (with their totals), lines, allocations and invoice events in chunks (the entries'
    # status is one plain UPDATE, counted with the fixed statements).
    assert inserts == (1 + insert_chunks(Invoice, invoices) + insert_chunks(InvoiceLine, lines)
                       + insert_chunks(Allocation, entries) + insert_chunks(InvoiceEvent, invoices))
    assert updates == 0


def test_ingest_costs_the_same_queries_for_one_contract_and_for_every_kind_of_contract(people):
    """Caps, retainers, rounding and spend limits add their aggregates once per batch, not per contract."""
    members, task_type = people
    projects = _projects(len(CONTRACT_TERMS) * 2, tag="kinds", terms=CONTRACT_TERMS)

    def ingested(inputs):
        with CaptureQueriesContext(connection) as captured:
            result = ingest(inputs, EntrySource.API)
        assert not result.rejected, [r.errors for r in result.rejected]
        return captured, len(result.created)

    # Every kind of contract in both batches; the second is 40 times larger and later in the month.
    small, _ = ingested(_inputs(projects, members, task_type, per_project=1, first_day=dt.date(2026, 3, 2),
                                tag="one"))
    large, created = ingested(_inputs(projects, members, task_type, per_project=40, first_day=dt.date(2026, 4, 1),
                                      tag="many"))
    fixed_small, *_ = split_bulk(small)
    fixed_large, inserts, updates = split_bulk(large)
    assert fixed_small == fixed_large
    assert created == len(projects) * 40
    # Entries and their approval requests inserted, budgets upserted in one statement.
    assert inserts == insert_chunks(TimeEntry, created) + insert_chunks(ApprovalRequest, created) + 1
    # Rated fields and statuses written together (one UPDATE … FROM unnest on PostgreSQL, fixed).
    assert updates == rated_write_chunks(created)


# Statements of one ingest batch on PostgreSQL, whatever its size and whatever is stored already: 5 to
# validate (members, projects, task types, existing entries, day totals) and the insert in a savepoint (3);
# then, in a savepoint (2): 4 to rate (projects of the capped and retainer contracts, their later entries,
# prior use, rates), 6 to route (policy, requests, the other entries' budget totals, spend, new requests,
# requests routed again), 1 to write the rated fields and statuses, 3 to read budgets (projects, burn
# window, alerts: the totals are routing's plus the batch's) and the budgets' upsert in a savepoint (3; new
# alerts would add one insert).
INGEST_BATCH_STATEMENTS = 27


def test_an_ingest_batch_costs_the_same_queries_however_many_entries_are_stored(people):
    members, task_type = people
    projects = _projects(len(CONTRACT_TERMS), tag="stored", terms=CONTRACT_TERMS)

    def statements(inputs):
        with CaptureQueriesContext(connection) as captured:
            result = ingest(inputs, EntrySource.API)
        assert not result.rejected, [r.errors for r in result.rejected]
        fixed, _, _ = split_bulk(captured)  # on SQLite, bulk writes come in chunks of the rows they write
        return (fixed, len(captured.captured_queries)), len(result.created)

    # Each measured batch is dated before stored entries, so capped and retainer contracts rate those again.
    statements(_inputs(projects, members, task_type, per_project=1, first_day=dt.date(2026, 3, 20), tag="seed"))
    first, _ = statements(_inputs(projects, members, task_type, per_project=2, first_day=dt.date(2026, 3, 10),
                                  tag="first"))
    for n, first_day in enumerate([dt.date(2026, 2, 2), dt.date(2026, 2, 23), dt.date(2026, 3, 16)]):
        statements(_inputs(projects, members, task_type, per_project=20, first_day=first_day, tag=f"more-{n}"))
    # The same size again, now among twenty times as many stored entries of every kind of contract.
    later, created = statements(_inputs(projects, members, task_type, per_project=2, first_day=dt.date(2026, 3, 12),
                                        tag="last"))
    assert created == len(projects) * 2
    assert first[0] == later[0]
    if connection.vendor == "postgresql":
        assert first[1] == later[1] == INGEST_BATCH_STATEMENTS


def test_utilization_and_profitability_are_one_and_two_queries_at_any_size(people):
    from reports.scope import ReportScope
    from reports.selectors import profitability, utilization

    members, task_type = people
    scope = ReportScope(start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 31))

    def counted():
        with CaptureQueriesContext(connection) as by_member:
            member_rows = list(utilization(scope=scope, group_by="member"))
        with CaptureQueriesContext(connection) as by_role:
            list(utilization(scope=scope, group_by="role"))
        with CaptureQueriesContext(connection) as by_project:
            project_rows = list(profitability(scope=scope, group_by="project"))
        with CaptureQueriesContext(connection) as by_client:
            list(profitability(scope=scope, group_by="client"))
        return ([len(by_member), len(by_role), len(by_project), len(by_client)], len(member_rows),
                len(project_rows))

    few = _projects(1, tag="r1")
    assert not ingest(_inputs(few, members[:1], task_type, per_project=2, first_day=scope.start, tag="r1"),
                      EntrySource.API).rejected
    small, _, small_projects = counted()
    more_members = [TeamMemberFactory(role=members[0].role) for _ in range(5)]
    many = _projects(8, tag="r8")
    assert not ingest(_inputs(many, members + more_members, task_type, per_project=30, first_day=scope.start,
                              tag="r8"), EntrySource.API).rejected
    large, member_rows, project_rows = counted()
    assert (small_projects, project_rows) == (1, 9) and member_rows == len(members) + len(more_members)
    # One grouped query per utilization; profitability adds the fee lines' query.
    assert small == large == [1, 1, 2, 2]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the generator writes history with PostgreSQL SQL")
def test_the_benchmark_generator_writes_a_consistent_firm_and_history():
    from django.db.models import Sum

    from bench.generator import FirmSize, build_firm, insert_history
    from clients.models import Contract

    build_firm(FirmSize(members=12, clients=20, projects=40))
    assert set(Contract.objects.values_list("billing_type", flat=True)) == set(BillingType.values)
    history = insert_history(tag="check", entries=3000, start=dt.date(2025, 1, 1), end=dt.date(2025, 3, 31),
                             invoiced_before=dt.date(2025, 3, 1), approvals=True, pending_every=20, rejected_every=50)
    assert TimeEntry.objects.count() == 3000 == history.approval_requests
    invoiced = TimeEntry.objects.filter(status=EntryStatus.INVOICED)
    # Every invoiced entry has one live allocation whose line adds up to its entries, and nothing else does.
    assert Allocation.objects.filter(is_live=True).count() == invoiced.count() == history.allocations > 0
    assert not invoiced.filter(work_date__gte=dt.date(2025, 3, 1)).exists()
    for line in InvoiceLine.objects.annotate(allocated=Sum("allocations__amount"))[:50]:
        assert line.allocated == sum(a.amount for a in line.allocations.all())
        assert line.minutes == sum(a.minutes for a in line.allocations.all())
    assert Invoice.objects.aggregate(total=Sum("subtotal"))["total"] == InvoiceLine.objects.aggregate(
        total=Sum("amount"))["total"]
