"""Reports cost the same queries for a small firm and one ten times bigger.

Bigger in every direction: members, projects, clients, entries and invoices.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from djmoney.money import Money
from rest_framework.test import APIClient

from billing.credit_notes import CreditRequest, credit_note_create
from billing.invoicing import billing_run_create
from billing.lifecycle import invoice_finalize
from billing.models import Allocation, Invoice
from billing.pipeline import TimeEntryInput, ingest
from billing.review import dispute_resolve, review_dispute
from projects.models import EntrySource
from reports.monthly import monthly_summary
from reports.scope import ReportScope
from reports.selectors import (
    billing_accuracy,
    budget_burn,
    budget_health,
    dashboard,
    days_distribution,
    entries_behind,
    profitability,
    time_to_invoice,
    utilization,
    utilization_by_month,
    wip,
)
from tests.factories import (
    PASSWORD,
    ClientFactory,
    ContractFactory,
    ProjectFactory,
    RateFactory,
    RoleFactory,
    TaskTypeFactory,
    TeamMemberFactory,
)

pytestmark = pytest.mark.django_db

SCOPE = ReportScope(start=dt.date(2026, 3, 1), end=dt.date(2026, 4, 30))
PARAMS = {"start": "2026-03-01", "end": "2026-04-30"}


def grow(size: int, prefix: str) -> None:
    """`size` members, clients and projects; every member logs three entries; March billed, one line disputed
    and one entry credited."""
    role = RoleFactory(code=f"{prefix}-role")
    task = TaskTypeFactory(code="dev")
    members = [TeamMemberFactory(role=role, name=f"{prefix} member {n}") for n in range(size)]
    projects = []
    for n in range(size):
        client = ClientFactory(code=f"{prefix}-client-{n}", invoice_emails=["ap@client.test"])
        project = ProjectFactory(
            contract=ContractFactory(client=client, number=f"{prefix}-C-{n}"),
            code=f"{prefix}-p{n}",
            budget_hours=Decimal("50"),
        )
        RateFactory(contract=project.contract, hourly_rate=Money("100.00", "USD"))
        projects.append(project)
    inputs = [
        TimeEntryInput(
            member_id=member.id,
            project_id=projects[(n + day) % size].id,
            task_type_id=task.id,
            work_date=dt.date(2026, 3, 2 + day * 7),
            minutes=120,
            external_id=f"{prefix}-{n}-{day}",
        )
        for n, member in enumerate(members)
        for day in range(3)
    ]
    assert not ingest(inputs, EntrySource.API).rejected
    drafts = billing_run_create(period_start=dt.date(2026, 3, 1), period_end=dt.date(2026, 3, 16)).invoices
    line = drafts[0].lines.first()
    dispute = review_dispute(invoice=drafts[0], line_id=line.id, comment="Too much")
    dispute_resolve(dispute=dispute, user=None, resolution="Fine as it is", dismiss=True)
    for draft in drafts:
        invoice_finalize(invoice=draft, issue_date=dt.date(2026, 4, 2))
    invoice = Invoice.objects.filter(number__isnull=False, kind="invoice").order_by("-id").first()
    entry_id = (
        Allocation.objects.filter(line__invoice=invoice).values_list("time_entry_id", flat=True).first()
    )
    credit_note_create(invoice=invoice, parts=[CreditRequest(entry_id, minutes=30)], release=True)


def queries(action) -> int:
    with CaptureQueriesContext(connection) as captured:
        action()
    return len(captured.captured_queries)


def compare(actions: dict, limit: int | None = None) -> None:
    """Run every action on a small firm, grow it ten times, and expect the same number of queries."""
    grow(2, "small")
    few = {name: queries(action) for name, action in actions.items()}
    grow(20, "large")
    many = {name: queries(action) for name, action in actions.items()}
    assert many == few
    if limit is not None:
        assert max(many.values()) <= limit, many


SELECTORS = {
    "utilization by member": lambda: list(utilization(scope=SCOPE, group_by="member")),
    "utilization by role": lambda: list(utilization(scope=SCOPE, group_by="role")),
    "utilization of the firm": lambda: list(utilization(scope=SCOPE, group_by="firm")),
    "utilization by month": lambda: utilization_by_month(scope=SCOPE),
    "profitability by project": lambda: list(profitability(scope=SCOPE, group_by="project")),
    "profitability by client": lambda: list(profitability(scope=SCOPE, group_by="client")),
    "budgets": lambda: budget_health(scope=SCOPE),
    "burn": lambda: budget_burn(scope=SCOPE),
    "time to invoice by month": lambda: list(time_to_invoice(scope=SCOPE, group_by="month")),
    "time to invoice by client": lambda: list(time_to_invoice(scope=SCOPE, group_by="client")),
    "distribution": lambda: days_distribution(scope=SCOPE),
    "accuracy by month": lambda: list(billing_accuracy(scope=SCOPE, group_by="month")),
    "accuracy by client": lambda: list(billing_accuracy(scope=SCOPE, group_by="client")),
    "wip": lambda: list(wip(scope=SCOPE)),
    "dashboard": lambda: dashboard(scope=SCOPE),
    "entries": lambda: list(entries_behind(scope=SCOPE, basis="invoiced")),
    "monthly summary": lambda: monthly_summary(scope=SCOPE),
}


def test_selectors_cost_a_fixed_number_of_queries():
    compare(SELECTORS)
    # And that number is small: one grouped query per selector; two where a second grouping joins in
    # (fees for profitability, alerts for budgets, the project budgets for burn, capacity for the months).
    assert {name: queries(action) for name, action in SELECTORS.items()} == {
        **dict.fromkeys(SELECTORS, 1),
        "utilization by month": 2,
        "profitability by project": 2,
        "profitability by client": 2,
        "budgets": 2,
        "burn": 2,
        "dashboard": 8,
        "monthly summary": 10,
    }


@pytest.fixture
def manager_client(client, management):
    assert client.login(username=management.user.username, password=PASSWORD)
    return client


PAGES = [
    ("dashboard", {}),
    ("utilization", {}),
    ("utilization", {"group_by": "role"}),
    ("profitability", {}),
    ("budgets", {}),
    ("time-to-invoice", {}),
    ("time-to-invoice", {"group_by": "client"}),
    ("billing-accuracy", {}),
    ("wip", {}),
    ("entries", {"basis": "logged"}),
    ("entries", {"basis": "unbilled"}),
    ("profitability", {"download": "csv"}),
]


def test_pages_cost_a_fixed_number_of_queries(manager_client):
    def page(name, params):
        def load():
            response = manager_client.get(reverse(f"reports:{name}"), {**PARAMS, **params})
            assert response.status_code == 200
            if response.streaming:
                b"".join(response.streaming_content)

        return load

    # A page: session, user, permissions and menu (5), the filter bar's four lists, then the report's own
    # queries; the dashboard runs four reports.
    compare({f"{name} {params}": page(name, params) for name, params in PAGES}, limit=17)


def test_api_reports_cost_a_fixed_number_of_queries(management):
    client = APIClient()
    # A session login, like the pages: every request loads the user and permissions afresh.
    assert client.login(username=management.user.username, password=PASSWORD)

    def report(name, params):
        def load():
            assert client.get(f"/api/v1/reports/{name}/", {**PARAMS, **params}).status_code == 200

        return load

    compare(
        {
            f"{name} {params}": report(name, params)
            for name, params in [
                ("utilization", {}),
                ("utilization", {"group_by": "role"}),
                ("profitability", {}),
                ("budgets", {}),
                ("time-to-invoice", {}),
                ("billing-accuracy", {"group_by": "client"}),
                ("wip", {}),
            ]
        },
        limit=6,
    )
