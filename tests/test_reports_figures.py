"""Every report figure on the fixed firm of tests/test_reports_data.py, checked against hand arithmetic."""

import datetime as dt
from decimal import Decimal as D

import pytest

from reports.db import percentile_cont
from reports.scope import ReportScope, default_range, weekdays_between
from reports.selectors import (
    billing_accuracy,
    budget_burn,
    budget_health,
    days_distribution,
    entries_behind,
    overall_time_to_invoice,
    profitability,
    time_to_invoice,
    utilization,
    utilization_by_month,
    wip,
)
from tests.test_reports_data import FIRM_TIME_ZONE, MARCH, WIP_TODAY, build_firm

pytestmark = pytest.mark.django_db


@pytest.fixture
def firm(settings):
    settings.TIME_ZONE = FIRM_TIME_ZONE
    return build_firm()


def march(**filters) -> ReportScope:
    return ReportScope(start=MARCH[0], end=MARCH[1], **filters)


def figures(row, *names):
    return tuple(getattr(row, name) for name in names)


UTIL = ("name", "capacity_hours", "logged_hours", "billable_hours", "billable_utilization")


# --- helpers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "weekdays"),
    [
        (dt.date(2026, 3, 1), dt.date(2026, 3, 31), 22),  # March 2026 starts on a Sunday
        (dt.date(2026, 3, 7), dt.date(2026, 3, 17), 7),  # Saturday to Tuesday: 5 + 2
        (dt.date(2026, 3, 7), dt.date(2026, 3, 8), 0),  # a weekend
        (dt.date(2026, 3, 4), dt.date(2026, 3, 4), 1),
        (dt.date(2026, 3, 5), dt.date(2026, 3, 4), 0),
    ],
)
def test_weekdays_between(start, end, weekdays):
    assert weekdays_between(start, end) == weekdays


def test_percentile_cont_interpolates_like_postgresql():
    assert percentile_cont([29, 31, 32, 32], 0.5) == 31.5
    assert percentile_cont([13, 31], 0.9) == pytest.approx(29.2)
    assert percentile_cont([7], 0.9) == 7
    assert percentile_cont([], 0.5) is None


def test_the_default_range_is_the_current_month_and_the_two_before():
    assert default_range(dt.date(2026, 3, 10)) == (dt.date(2026, 1, 1), dt.date(2026, 3, 10))
    assert default_range(dt.date(2026, 1, 31)) == (dt.date(2025, 11, 1), dt.date(2026, 1, 31))


# --- utilization -----------------------------------------------------------------------------------


def test_utilization_per_member(firm):
    rows = list(utilization(scope=march(), group_by="member"))
    # Capacity: 40 x 22 / 5 = 176, 30 x 22 / 5 = 132, 32 x 22 / 5 = 140.8. Logged leaves out the rejected
    # and the recorded entry; Alice's held 660 minutes count (pending), billable excludes her admin task.
    assert [figures(row, *UTIL) for row in rows] == [
        ("Alice Adams", D("176.00"), D("25.00"), D("23.00"), D("13.1")),  # 23 / 176 = 13.07 %
        ("Bob Brown", D("132.00"), D("8.50"), D("8.50"), D("6.4")),  # 8.5 / 132 = 6.44 %
        ("Carol Chen", D("140.80"), D("0.50"), D("0.50"), D("0.4")),  # 0.5 / 140.8 = 0.36 %
    ]
    assert [row.key for row in rows] == [firm.alice.id, firm.bob.id, firm.carol.id]
    assert rows[0].role_name == "Consultant"


def test_utilization_per_role_and_firm(firm):
    roles = list(utilization(scope=march(), group_by="role"))
    assert [figures(row, *UTIL, "members") for row in roles] == [
        ("Consultant", D("308.00"), D("33.50"), D("31.50"), D("10.2"), 2),  # 31.5 / 308 = 10.23 %
        ("Designer", D("140.80"), D("0.50"), D("0.50"), D("0.4"), 1),
    ]
    [total] = utilization(scope=march(), group_by="firm")
    assert figures(total, *UTIL[1:], "members") == (
        D("448.80"),
        D("34.00"),
        D("32.00"),
        D("7.1"),
        3,
    )  # 7.13 %


def test_capacity_is_prorated_by_weekdays_in_the_range(firm):
    scope = ReportScope(start=dt.date(2026, 3, 7), end=dt.date(2026, 3, 17), member_id=firm.alice.id)
    [alice] = utilization(scope=scope)
    # 7 weekdays: 40 x 7 / 5 = 56 h; only the held 660 minutes fall inside: 11 / 56 = 19.64 %.
    assert figures(alice, *UTIL[1:]) == (D("56.00"), D("11.00"), D("11.00"), D("19.6"))


def test_utilization_filters(firm):
    consultants = list(utilization(scope=march(role_id=firm.consultant.id)))
    assert [row.name for row in consultants] == ["Alice Adams", "Bob Brown"]
    # A client filter keeps the members who worked for it, with their whole capacity.
    [carol] = utilization(scope=march(client_id=firm.beta.id))
    assert figures(carol, *UTIL) == ("Carol Chen", D("140.80"), D("0.50"), D("0.50"), D("0.4"))
    [bob] = utilization(scope=march(project_id=firm.acme_web.id, member_id=firm.bob.id))
    assert bob.billable_hours == D("8.50")


def test_utilization_by_month(firm):
    scope = ReportScope(start=dt.date(2026, 2, 1), end=dt.date(2026, 3, 31))
    months = utilization_by_month(scope=scope)
    # February 2026 has 20 weekdays: capacity (40 + 30 + 32) x 20 / 5 = 408 h; Carol's 6 h billable.
    assert [(m.month, m.capacity_hours, m.billable_hours, m.billable_utilization) for m in months] == [
        (dt.date(2026, 2, 1), D("408.00"), D("6.00"), D("1.5")),  # 6 / 408 = 1.47 %
        (dt.date(2026, 3, 1), D("448.80"), D("32.00"), D("7.1")),
    ]


# --- profitability ---------------------------------------------------------------------------------

PROFIT = (
    "name",
    "currency",
    "hours",
    "invoiced",
    "unbilled",
    "revenue",
    "cost",
    "cost_currency",
    "margin",
    "margin_percent",
    "effective_rate",
)


def test_profitability_per_project(firm):
    acme_web, beta_app = profitability(scope=march(), group_by="project")
    # Revenue: Alice 2 Mar billed 960.00 less the 240.00 credit = 720.00, 3 Mar 480.00, Bob 720.00 + 120.00
    # (invoiced 2,040.00) + Bob's unbilled 30 Mar 180.00 = 2,220.00. The held entry earns nothing yet.
    # Cost: 2,010 processed minutes at 60.00/h = 2,010.00. Margin 210.00 = 9.46 %; 2,220 / 33.5 h = 66.27/h.
    assert figures(acme_web, *PROFIT) == (
        "Acme web",
        "USD",
        D("33.50"),
        D("2040.00"),
        D("180.00"),
        D("2220.00"),
        D("2010.00"),
        "USD",
        D("210.00"),
        D("9.5"),
        D("66.27"),
    )
    assert (acme_web.key, acme_web.code, acme_web.client_name) == (firm.acme_web.id, "acme-web", "Acme")
    # Beta's March half hour waits on a draft (revenue at its rated 50.00 EUR); its cost is in USD:
    # no margin.
    assert figures(beta_app, *PROFIT) == (
        "Beta app",
        "EUR",
        D("0.50"),
        D("0.00"),
        D("50.00"),
        D("50.00"),
        D("30.00"),
        "USD",
        None,
        None,
        D("100.00"),
    )


def test_profitability_per_client_and_other_ranges(firm):
    acme, beta = profitability(scope=march(), group_by="client")
    assert (acme.key, acme.revenue, acme.margin_percent) == (firm.acme.id, D("2220.00"), D("9.5"))
    assert (beta.key, beta.revenue, beta.currency) == (firm.beta.id, D("50.00"), "EUR")
    [february] = profitability(scope=ReportScope(start=dt.date(2026, 2, 1), end=dt.date(2026, 2, 28)))
    assert figures(february, "hours", "invoiced", "unbilled", "revenue", "cost") == (
        D("6.00"),
        D("600.00"),
        D("0.00"),
        D("600.00"),
        D("360.00"),
    )
    [bob] = profitability(scope=march(member_id=firm.bob.id))
    # Bob: 510 minutes, 720.00 + 120.00 invoiced + 180.00 unbilled, cost 510.00.
    assert figures(bob, "hours", "revenue", "cost", "margin") == (
        D("8.50"),
        D("1020.00"),
        D("510.00"),
        D("510.00"),
    )


# --- budgets ---------------------------------------------------------------------------------------


def test_budget_health_and_burn(firm):
    rows = budget_health(scope=march())
    assert [row.project.code for row in rows] == ["acme-web", "beta-app"]  # most used first, no budget last
    acme_web = rows[0]
    # All processed time to date: 60 + 1,260 + 660 + 90 = 2,070 minutes = 34.5 h of 100 h.
    assert (acme_web.budget.hours_used, acme_web.percent_used, acme_web.hours_in_range) == (
        D("34.50"),
        D("34.5"),
        D("33.50"),
    )
    assert rows[1].percent_used is None
    burn = budget_burn(scope=march())
    # Running totals include January's hour, before the range; every week has a point (the week of 1 March
    # starts on 23 February), and a week without time repeats the total: 1, 22, 33, 33, 33, 34.5 hours.
    assert [(p.week, p.hours_used, p.percent_used) for p in burn[firm.acme_web.id]] == [
        (dt.date(2026, 2, 23), D("1.00"), D("1.0")),
        (dt.date(2026, 3, 2), D("22.00"), D("22.0")),
        (dt.date(2026, 3, 9), D("33.00"), D("33.0")),
        (dt.date(2026, 3, 16), D("33.00"), D("33.0")),
        (dt.date(2026, 3, 23), D("33.00"), D("33.0")),
        (dt.date(2026, 3, 30), D("34.50"), D("34.5")),
    ]
    assert [p.percent_used for p in burn[firm.beta_app.id]] == [None] * 6  # no budget


# --- time to invoice -------------------------------------------------------------------------------

SPRING = ReportScope(start=dt.date(2026, 3, 1), end=dt.date(2026, 4, 30))
TTI = ("name", "entries", "mean_days", "median_days", "p90_days")


def test_time_to_invoice_per_month_and_client(firm):
    # Beta's invoice (5 Mar): 31 and 13 days. Acme's (3 Apr in Berlin, 2 Apr in UTC): 32, 31, 32, 29 days.
    months = list(time_to_invoice(scope=SPRING, group_by="month"))
    assert [figures(row, "key", *TTI) for row in months] == [
        (dt.date(2026, 3, 1), "March 2026", 2, D("22.0"), D("22.0"), D("29.2")),  # 13 + 0.9 x (31 - 13)
        (dt.date(2026, 4, 1), "April 2026", 4, D("31.0"), D("31.5"), D("32.0")),
    ]
    clients = list(time_to_invoice(scope=SPRING, group_by="client"))
    assert [figures(row, "key", *TTI) for row in clients] == [
        (firm.acme.id, "Acme", 4, D("31.0"), D("31.5"), D("32.0")),
        (firm.beta.id, "Beta", 2, D("22.0"), D("22.0"), D("29.2")),
    ]
    # All six: 13, 29, 31, 31, 32, 32 -> median 31, 90th percentile 32, mean 28.
    assert figures(overall_time_to_invoice(scope=SPRING), *TTI[1:]) == (6, D("28.0"), D("31.0"), D("32.0"))


def test_time_to_invoice_uses_the_firm_time_zone(firm, settings):
    settings.TIME_ZONE = "UTC"
    [april] = time_to_invoice(scope=ReportScope(start=dt.date(2026, 4, 1), end=dt.date(2026, 4, 30)))
    assert april.key == dt.date(2026, 4, 1) and april.median_days == D("30.5")  # 28, 30, 31, 31
    settings.TIME_ZONE = FIRM_TIME_ZONE


def test_time_to_invoice_distribution_and_filters(firm):
    bars = {bar.label: bar.entries for bar in days_distribution(scope=SPRING)}
    assert bars == {
        "0–7 days": 0,
        "8–14 days": 1,
        "15–30 days": 1,
        "31–45 days": 4,
        "46–60 days": 0,
        "61–90 days": 0,
        "over 90 days": 0,
    }
    [bob] = time_to_invoice(scope=ReportScope(start=SPRING.start, end=SPRING.end, member_id=firm.bob.id))
    assert figures(bob, "entries", "median_days") == (2, D("30.5"))  # 32 and 29
    assert overall_time_to_invoice(scope=march(client_id=firm.acme.id)).entries == 0  # finalized in April


# --- billing accuracy ------------------------------------------------------------------------------

ACC = ("name", "currency", "lines", "invoiced", "disputed", "credited", "accurate", "accuracy")


def test_billing_accuracy_after_a_dispute_and_a_credit_note(firm):
    rows = list(billing_accuracy(scope=SPRING, group_by="month"))
    assert [figures(row, *ACC) for row in rows] == [
        ("March 2026", "EUR", 1, D("600.00"), D("0.00"), D("0.00"), D("600.00"), D("100.0")),
        # 2,280.00 invoiced; Bob's disputed line 840.00; 240.00 credited on Alice's line:
        # 1,200 / 2,280 = 52.63 %
        ("April 2026", "USD", 2, D("2280.00"), D("840.00"), D("240.00"), D("1200.00"), D("52.6")),
    ]
    by_client = list(billing_accuracy(scope=SPRING, group_by="client"))
    assert [(row.key, row.accuracy) for row in by_client] == [
        (firm.acme.id, D("52.6")),
        (firm.beta.id, D("100.0")),
    ]
    by_currency = list(billing_accuracy(scope=SPRING, group_by="currency"))
    assert [(row.name, row.accuracy) for row in by_currency] == [("EUR", D("100.0")), ("USD", D("52.6"))]


def test_billing_accuracy_filters_keep_the_lines_of_matching_entries(firm):
    [bob] = billing_accuracy(scope=ReportScope(start=SPRING.start, end=SPRING.end, member_id=firm.bob.id))
    assert figures(bob, "invoiced", "disputed", "accuracy") == (D("840.00"), D("840.00"), D("0.0"))
    [alice] = billing_accuracy(scope=ReportScope(start=SPRING.start, end=SPRING.end, member_id=firm.alice.id))
    assert figures(alice, "invoiced", "credited", "accuracy") == (D("1440.00"), D("240.00"), D("83.3"))


# --- unbilled work ---------------------------------------------------------------------------------


def test_wip_by_client_and_age(firm):
    scope = ReportScope(start=dt.date(2026, 1, 1), end=WIP_TODAY)
    acme, beta = wip(scope=scope, today=WIP_TODAY)
    # Acme: Bob's 30 March 90 minutes (46 days old) and Alice's 12 January hour (123 days); the held entry is
    # not approved and the admin task has no billable minutes.
    assert (acme.name, acme.currency) == ("Acme", "USD")
    assert [(b.label, b.hours, b.amount, b.entries) for b in acme.buckets] == [
        ("0-30", D("0.00"), D("0.00"), 0),
        ("31-60", D("1.50"), D("180.00"), 1),
        ("61-90", D("0.00"), D("0.00"), 0),
        ("90+", D("1.00"), D("120.00"), 1),
    ]
    assert (acme.hours, acme.amount, acme.on_drafts) == (D("2.50"), D("300.00"), D("0.00"))
    # Beta: Carol's 16 March half hour waits on a draft (60 days old).
    assert [(b.label, b.amount) for b in beta.buckets if b.entries] == [("31-60", D("50.00"))]
    assert (beta.currency, beta.on_drafts) == ("EUR", D("50.00"))


# --- drill-down ------------------------------------------------------------------------------------


def external_ids(entries):
    return sorted(entry.external_id for entry in entries)


def test_the_entries_behind_each_figure(firm):
    logged = entries_behind(scope=march(member_id=firm.alice.id), basis="logged")
    assert external_ids(logged) == ["alice-mar02", "alice-mar03", "alice-mar04", "alice-mar10"]
    billable = entries_behind(scope=march(member_id=firm.alice.id), basis="billable")
    assert external_ids(billable) == ["alice-mar02", "alice-mar03", "alice-mar10"]
    revenue = entries_behind(scope=march(member_id=firm.bob.id), basis="revenue")
    assert external_ids(revenue) == ["bob-mar02", "bob-mar05", "bob-mar30"]
    invoiced = entries_behind(
        scope=ReportScope(start=dt.date(2026, 4, 1), end=dt.date(2026, 4, 30)), basis="invoiced"
    )
    assert external_ids(invoiced) == ["alice-mar02", "alice-mar03", "bob-mar02", "bob-mar05"]
    assert {entry.invoice_number for entry in invoiced} == {firm.acme_invoice.number}
    issued = entries_behind(scope=march(), basis="issued")
    assert external_ids(issued) == ["carol-feb02", "carol-feb20"]
    scope = ReportScope(start=dt.date(2026, 1, 1), end=WIP_TODAY)
    old = entries_behind(scope=scope, basis="unbilled", age="90+", today=WIP_TODAY)
    assert external_ids(old) == ["alice-jan12"]
    assert external_ids(entries_behind(scope=scope, basis="unbilled", today=WIP_TODAY)) == [
        "alice-jan12",
        "bob-mar30",
        "carol-mar16",
    ]
