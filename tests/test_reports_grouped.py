"""Utilization and profitability read each table once and group; the cases those grouped queries must get right.

Utilization sums the entries per member and adds the members that count without time (active ones) with
zero minutes; roles and the firm add up the member rows. Profitability sums each entry's allocations on
issued invoices once and joins them to the entries, so an entry with several allocations (credited, released
and billed again) must still count its minutes once and its net amount in full. The firm is the one of
tests/test_reports_data.py; every figure is worked out by hand in the comments.
"""

import datetime as dt
from collections import defaultdict
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.credit_notes import CreditRequest, credit_note_create
from billing.invoicing import billing_run_create
from billing.lifecycle import invoice_finalize
from billing.models import Allocation
from projects.models import EntryStatus, TimeEntry
from reports.scope import ISSUED, PROCESSED_STATUSES, ReportScope
from reports.selectors import profitability, utilization
from reports.selectors.common import entry_invoiced, entry_revenue, money
from tests.factories import TeamMemberFactory
from tests.test_reports_data import FIRM_TIME_ZONE, MARCH, build_firm

pytestmark = pytest.mark.django_db

UTIL = ("name", "capacity_hours", "logged_hours", "billable_hours", "billable_utilization")
MONEY = ("hours", "invoiced", "unbilled", "revenue")


@pytest.fixture
def firm(settings):
    settings.TIME_ZONE = FIRM_TIME_ZONE
    return build_firm()


def march(**filters) -> ReportScope:
    return ReportScope(start=MARCH[0], end=MARCH[1], **filters)


def figures(row, *names):
    return tuple(getattr(row, name) for name in names)


# --- utilization: the members that count without time -----------------------------------------------


@pytest.fixture
def idle_members(firm):
    """Dave: active designer, no time. Erin: left, no time (never counts). Bob leaves but logged time in March."""
    dave = TeamMemberFactory(name="Dave Diaz", role=firm.designer, weekly_capacity_hours=D("20"))
    TeamMemberFactory(name="Erin Evans", role=firm.consultant, weekly_capacity_hours=D("35"), is_active=False)
    firm.bob.is_active = False
    firm.bob.save(update_fields=["is_active"])
    return dave


def test_an_active_member_without_time_counts_with_zero_hours(firm, idle_members):
    rows = list(utilization(scope=march()))
    # March 2026 has 22 weekdays: Dave's capacity is 20 x 22 / 5 = 88 h. Bob has left but logged time.
    assert [figures(row, *UTIL) for row in rows] == [
        ("Alice Adams", D("176.00"), D("25.00"), D("23.00"), D("13.1")),
        ("Bob Brown", D("132.00"), D("8.50"), D("8.50"), D("6.4")),
        ("Carol Chen", D("140.80"), D("0.50"), D("0.50"), D("0.4")),
        ("Dave Diaz", D("88.00"), D("0.00"), D("0.00"), D("0.0")),
    ]
    assert (rows[-1].key, rows[-1].role_name) == (idle_members.id, "Designer")


def test_roles_and_the_firm_add_up_their_members_with_and_without_time(firm, idle_members):
    roles = list(utilization(scope=march(), group_by="role"))
    assert [figures(row, *UTIL, "members", "key") for row in roles] == [
        ("Consultant", D("308.00"), D("33.50"), D("31.50"), D("10.2"), 2, firm.consultant.id),
        # 140.8 + 88 = 228.8 h; 0.5 / 228.8 = 0.22 %.
        ("Designer", D("228.80"), D("0.50"), D("0.50"), D("0.2"), 2, firm.designer.id),
    ]
    [total] = utilization(scope=march(), group_by="firm")
    # 448.8 + 88 = 536.8 h; 32 / 536.8 = 5.96 %.
    assert figures(total, *UTIL[1:], "members", "key") == (
        D("536.80"),
        D("34.00"),
        D("32.00"),
        D("6.0"),
        4,
        None,
    )


def test_people_and_work_filters_on_members_without_time(firm, idle_members):
    designers = list(utilization(scope=march(role_id=firm.designer.id)))
    assert [(row.name, row.logged_hours) for row in designers] == [
        ("Carol Chen", D("0.50")),
        ("Dave Diaz", D("0.00")),
    ]
    [dave] = utilization(scope=march(member_id=idle_members.id))
    assert figures(dave, *UTIL) == ("Dave Diaz", D("88.00"), D("0.00"), D("0.00"), D("0.0"))
    # A client filter keeps only the members who worked for the client.
    assert [row.name for row in utilization(scope=march(client_id=firm.beta.id))] == ["Carol Chen"]
    # Nobody worked for Beta in January: no member rows, and an empty firm row.
    january = ReportScope(start=dt.date(2026, 1, 1), end=dt.date(2026, 1, 31), client_id=firm.beta.id)
    assert list(utilization(scope=january)) == []
    [empty] = utilization(scope=january, group_by="firm")
    assert figures(empty, *UTIL[1:], "members") == (D("0.00"), D("0.00"), D("0.00"), None, 0)


# --- profitability: entries with several allocations on issued invoices --------------------------------


def test_a_released_entry_counts_its_rated_amount_until_it_is_billed_again(firm):
    bob_mar02 = firm.entries["bob-mar02"]
    # Release 60 of the 360 minutes of Bob's 2 March entry (720.00 on Bob's line): a reversal of -120.00.
    credit_note_create(
        invoice=firm.acme_invoice, release=True, parts=[CreditRequest(bob_mar02.id, minutes=60)]
    )
    bob_mar02.refresh_from_db()
    assert bob_mar02.status == EntryStatus.APPROVED

    [acme_web, _] = profitability(scope=march())
    # The entry is not billed now: revenue at its rated 720.00 as before; invoiced is its net 600.00, so
    # invoiced 2,040.00 - 120.00 = 1,920.00 and unbilled 180.00 + 120.00 = 300.00. Hours unchanged.
    assert figures(acme_web, *MONEY) == (D("33.50"), D("1920.00"), D("300.00"), D("2220.00"))

    # Billed again with Bob's unbilled 30 March (90 minutes, 180.00): a second original allocation.
    [draft] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1], client=firm.acme).invoices
    # A draft bills nothing yet.
    assert figures(next(profitability(scope=march())), *MONEY) == (
        D("33.50"),
        D("1920.00"),
        D("300.00"),
        D("2220.00"),
    )
    invoice_finalize(invoice=draft, issue_date=dt.date(2026, 4, 20))
    # The first original, its reversal and the second original, all on issued invoices.
    assert Allocation.objects.filter(time_entry=bob_mar02, line__invoice__status__in=ISSUED).count() == 3
    [acme_web, _] = profitability(scope=march())
    # Bob's entry nets 720.00 - 120.00 + 120.00 = 720.00 on issued invoices; the 30 March entry 180.00.
    assert figures(acme_web, *MONEY) == (D("33.50"), D("2220.00"), D("0.00"), D("2220.00"))
    [bob] = profitability(scope=march(member_id=firm.bob.id))
    # Bob: 360 + 60 + 90 = 510 minutes, once each whatever their allocations.
    assert figures(bob, *MONEY, "cost") == (D("8.50"), D("1020.00"), D("0.00"), D("1020.00"), D("510.00"))


def per_entry_figures(scope: ReportScope) -> dict[int, tuple]:
    """The definition in selectors.common, evaluated entry by entry and added up per project."""
    totals = defaultdict(lambda: [0, D("0.00"), D("0.00"), D("0.00")])
    entries = TimeEntry.objects.filter(
        scope.entry_filter(), status__in=PROCESSED_STATUSES, work_date__range=(scope.start, scope.end)
    ).annotate(revenue=entry_revenue(), invoiced=entry_invoiced())
    for entry in entries:
        total = totals[entry.project_id]
        total[0] += entry.minutes
        total[1] += entry.revenue
        total[2] += entry.invoiced
        total[3] += entry.cost_amount.amount if entry.cost_amount is not None else 0
    return {
        key: (minutes, money(rev), money(inv), money(cost))
        for key, (minutes, rev, inv, cost) in totals.items()
    }


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"member": "bob"},
        {"member": "alice"},
        {"client": "acme"},
        {"range": (dt.date(2026, 1, 1), MARCH[1])},
    ],
)
def test_grouped_profitability_equals_the_per_entry_definition(firm, filters):
    bob_mar02 = firm.entries["bob-mar02"]
    credit_note_create(
        invoice=firm.acme_invoice, release=True, parts=[CreditRequest(bob_mar02.id, minutes=60)]
    )
    start, end = filters.get("range", MARCH)
    scope = ReportScope(
        start=start,
        end=end,
        member_id=getattr(firm, filters["member"]).id if "member" in filters else None,
        client_id=getattr(firm, filters["client"]).id if "client" in filters else None,
    )
    rows = {
        row.key: (round(row.hours * 60), row.revenue, row.invoiced, row.cost)
        for row in profitability(scope=scope)
        if not row.fees
    }
    assert rows == per_entry_figures(scope)
    assert rows  # every scope above has time in it


def test_the_time_queries_sum_no_entries_in_correlated_subqueries(firm):
    """A subquery correlated to the entry runs once per entry, and a sum per member or project reads their
    entries through an index a page at a time: at a million entries, seconds to minutes of it."""
    with CaptureQueriesContext(connection) as captured:
        list(utilization(scope=march()))
        list(utilization(scope=march(), group_by="role"))
        list(profitability(scope=march()))
        list(profitability(scope=march(), group_by="client"))
    entry_id = f"({connection.ops.quote_name(TimeEntry._meta.db_table)}.{connection.ops.quote_name('id')})"
    sqls = [query["sql"] for query in captured.captured_queries]
    assert len(sqls) == 6
    assert not [sql for sql in sqls if entry_id in sql or "(SELECT SUM(" in sql]


def test_costs_in_two_currencies_show_no_cost_for_the_project_or_the_client(firm):
    # One of Acme's entries costed in EUR: neither its project nor its client can add USD and EUR costs.
    TimeEntry.objects.filter(pk=firm.entries["bob-mar05"].pk).update(cost_amount_currency="EUR")
    acme_web, beta_app = profitability(scope=march())
    acme, beta = profitability(scope=march(), group_by="client")
    for row in (acme_web, acme):
        assert (row.cost, row.cost_currency, row.margin, row.revenue) == (None, "mixed", None, D("2220.00"))
    assert (beta_app.cost, beta.cost, beta.cost_currency) == (D("30.00"), D("30.00"), "USD")
