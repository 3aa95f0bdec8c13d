"""Worked examples of PRODUCT.md's billing rules, to the cent, with the reason and rule texts."""

import datetime as dt
from decimal import Decimal

import pytest
from djmoney.money import Money

from billing.pipeline import TimeEntryInput, ingest, reprocess_contracts
from billing.rating import round_minutes
from clients.models import BillingType, CapPeriod, RoundingMode
from projects.models import EntrySource, EntryStatus, TimeEntry
from tests.factories import (
    ContractFactory,
    ProjectFactory,
    RateFactory,
    RoleFactory,
    TaskTypeFactory,
    TeamMemberFactory,
)

pytestmark = pytest.mark.django_db

MARCH_2 = dt.date(2026, 3, 2)


@pytest.fixture
def firm():
    """Contract C-104 in USD; Sam is a Senior Consultant costing 60.00/h; Development is billable."""
    role = RoleFactory(code="senior", name="Senior Consultant", default_cost_rate=Money("60.00", "USD"))
    member = TeamMemberFactory(name="Sam Staff", role=role)
    dev = TaskTypeFactory(code="dev", name="Development")
    contract = ContractFactory(number="C-104", client__currency="USD")
    project = ProjectFactory(contract=contract, code="acme-web")
    return type("Firm", (), {"role": role, "member": member, "dev": dev, "contract": contract,
                             "project": project})


def log(firm, minutes=60, day=MARCH_2, key=None, **overrides):
    values = {"member_id": firm.member.id, "project_id": firm.project.id, "task_type_id": firm.dev.id,
              "work_date": day, "minutes": minutes, "external_id": key or f"{day}-{minutes}-{id(overrides)}"}
    values.update(overrides)
    result = ingest([TimeEntryInput(**values)], EntrySource.API)
    assert result.rejected == [], result.rejected[0].errors
    return TimeEntry.objects.get(pk=result.by_index[0].pk)


def rate(firm, amount, **scope):
    scope.setdefault("effective_from", dt.date(2026, 1, 1))
    return RateFactory(contract=firm.contract, hourly_rate=Money(amount, firm.contract.currency), **scope)


# -- Rate resolution: the six levels ------------------------------------------------------------------

LEVELS = [
    # (level, the scope that creates a rate at that level, its amount, the rule's words)
    (1, "member_task", "180.00", "member Sam Staff · task Development"),
    (2, "member", "170.00", "member Sam Staff"),
    (3, "role_task", "160.00", "role Senior Consultant · task Development"),
    (4, "task", "120.00", "task Development"),
    (5, "role", "150.00", "role Senior Consultant"),
    (6, "default", "100.00", "contract default"),
]


def _scope(firm, name):
    return {
        "member_task": {"member": firm.member, "task_type": firm.dev},
        "member": {"member": firm.member},
        "role_task": {"role": firm.role, "task_type": firm.dev},
        "task": {"task_type": firm.dev},
        "role": {"role": firm.role},
        "default": {},
    }[name]


@pytest.mark.parametrize(("level", "scope", "amount", "words"), LEVELS)
def test_the_first_level_with_a_candidate_wins(firm, level, scope, amount, words):
    for _, lower_scope, lower_amount, _ in LEVELS[level - 1:]:
        rate(firm, lower_amount, **_scope(firm, lower_scope))
    entry = log(firm, minutes=90)
    assert entry.rate == Money(amount, "USD")
    assert entry.amount == Money(Decimal(amount) * Decimal("1.5"), "USD")
    assert entry.rate_rule == f"Contract C-104 · {words} · from 2026-01-01 · {amount} USD/h"
    assert entry.billability_reason == "billable"


def test_a_rate_for_another_member_role_or_task_does_not_match(firm):
    other_role = RoleFactory(code="designer", name="Designer")
    other_task = TaskTypeFactory(code="design", name="Design")
    rate(firm, "300.00", member=TeamMemberFactory(name="Someone Else"))
    rate(firm, "290.00", role=other_role)
    rate(firm, "280.00", task_type=other_task)
    rate(firm, "100.00")
    assert log(firm).rate == Money("100.00", "USD")


def test_a_project_scoped_rate_beats_an_unscoped_one_at_the_same_level(firm):
    rate(firm, "150.00", role=firm.role)
    rate(firm, "155.00", role=firm.role, project=firm.project)
    entry = log(firm)
    assert entry.rate == Money("155.00", "USD")
    assert entry.rate_rule == "Contract C-104 · project acme-web · role Senior Consultant · from 2026-01-01 · 155.00 USD/h"


def test_a_higher_level_beats_a_project_scoped_lower_level(firm):
    rate(firm, "155.00", role=firm.role, project=firm.project)
    rate(firm, "170.00", member=firm.member)
    assert log(firm).rate == Money("170.00", "USD")


def test_a_rate_scoped_to_another_project_does_not_apply(firm):
    other = ProjectFactory(contract=firm.contract, code="acme-app")
    rate(firm, "155.00", role=firm.role, project=other)
    rate(firm, "100.00")
    assert log(firm).rate == Money("100.00", "USD")


@pytest.mark.parametrize(
    ("day", "expected"),
    [(dt.date(2026, 3, 31), "100.00"), (dt.date(2026, 4, 1), "110.00"), (dt.date(2026, 4, 2), "110.00")],
)
def test_effective_dates_are_inclusive_boundaries(firm, day, expected):
    rate(firm, "100.00", effective_to=dt.date(2026, 3, 31))
    rate(firm, "110.00", effective_from=dt.date(2026, 4, 1))
    entry = log(firm, day=day)
    assert entry.rate == Money(expected, "USD")
    assert ("to 2026-03-31" in entry.rate_rule) == (expected == "100.00")


def test_no_rate_makes_the_entry_not_billable(firm):
    entry = log(firm, minutes=45)
    assert entry.billability_reason == "no_rate"
    assert (entry.billable_minutes, entry.amount, entry.rate) == (0, Money("0.00", "USD"), None)
    assert entry.rate_rule == "No rate on the contract matches this entry"


def test_a_rate_not_yet_effective_is_no_rate(firm):
    rate(firm, "100.00", effective_from=dt.date(2026, 3, 3))
    assert log(firm, day=MARCH_2).billability_reason == "no_rate"


# -- Rounding -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("minutes", "increment", "mode", "expected"),
    [
        (7, 15, RoundingMode.UP, 15), (16, 15, RoundingMode.UP, 30), (15, 15, RoundingMode.UP, 15),
        (7, 15, RoundingMode.NEAREST, 0), (8, 15, RoundingMode.NEAREST, 15), (22, 15, RoundingMode.NEAREST, 15),
        (23, 15, RoundingMode.NEAREST, 30), (16, 15, RoundingMode.DOWN, 15), (14, 15, RoundingMode.DOWN, 0),
        (61, 6, RoundingMode.UP, 66), (61, 0, RoundingMode.UP, 61), (44, 30, RoundingMode.NEAREST, 30),
        (45, 30, RoundingMode.NEAREST, 60),
    ],
)
def test_rounding_modes(minutes, increment, mode, expected):
    assert round_minutes(minutes, increment, mode) == expected


@pytest.mark.parametrize(
    ("mode", "minutes", "billable", "amount"),
    [(RoundingMode.UP, 7, 15, "37.50"), (RoundingMode.UP, 16, 30, "75.00"),
     (RoundingMode.NEAREST, 7, 0, "0.00"), (RoundingMode.NEAREST, 8, 15, "37.50"),
     (RoundingMode.DOWN, 16, 15, "37.50")],
)
def test_rounding_applies_to_billable_minutes_not_raw_minutes(firm, mode, minutes, billable, amount):
    firm.contract.rounding_increment, firm.contract.rounding_mode = 15, mode
    firm.contract.save()
    rate(firm, "150.00")
    entry = log(firm, minutes=minutes)
    assert (entry.minutes, entry.billable_minutes, entry.amount) == (minutes, billable, Money(amount, "USD"))


# -- Amount and cost ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("minutes", "hourly", "amount"),
    [(7, "100.00", "11.67"), (1, "0.30", "0.01"), (50, "133.33", "111.11"), (90, "180.00", "270.00"),
     (1, "0.29", "0.00")],
)
def test_amount_rounds_half_up_to_the_cent(firm, minutes, hourly, amount):
    rate(firm, hourly)
    assert log(firm, minutes=minutes).amount == Money(amount, "USD")


def test_cost_counts_every_minute_at_the_member_cost_rate(firm):
    firm.member.cost_rate = Money("72.50", "USD")
    firm.member.save()
    billable = log(firm, minutes=90, key="a")
    internal = log(firm, minutes=30, key="b", billable=False)
    assert billable.cost_amount == Money("108.75", "USD")
    assert internal.cost_amount == Money("36.25", "USD")


def test_cost_falls_back_to_the_role_default(firm):
    assert log(firm, minutes=45).cost_amount == Money("45.00", "USD")


# -- Billability --------------------------------------------------------------------------------------

def test_an_entry_marked_non_billable(firm):
    rate(firm, "150.00")
    entry = log(firm, billable=False)
    assert (entry.billability_reason, entry.billable_minutes, entry.amount) == (
        "entry_non_billable", 0, Money("0.00", "USD"))


def test_a_non_billable_task_type(firm):
    rate(firm, "150.00")
    meeting = TaskTypeFactory(code="meeting", name="Internal meeting", billable=False)
    assert log(firm, task_type_id=meeting.id).billability_reason == "task_type_non_billable"


def test_a_non_billable_project(firm):
    rate(firm, "150.00")
    firm.project.billable = False
    firm.project.save()
    assert log(firm).billability_reason == "project_non_billable"


def test_fixed_fee_time_is_tracked_not_billed(firm):
    firm.contract.billing_type = BillingType.FIXED_FEE
    firm.contract.save()
    rate(firm, "150.00")
    entry = log(firm, minutes=120)
    assert (entry.billability_reason, entry.billable_minutes, entry.minutes) == ("contract_fixed_fee", 0, 120)
    assert entry.cost_amount == Money("120.00", "USD")


def test_a_non_billable_contract(firm):
    firm.contract.billing_type = BillingType.NON_BILLABLE
    firm.contract.save()
    assert log(firm).billability_reason == "contract_non_billable"


def test_the_entry_flag_is_reported_before_the_contract(firm):
    firm.contract.billing_type = BillingType.NON_BILLABLE
    firm.contract.save()
    assert log(firm, billable=False).billability_reason == "entry_non_billable"


# -- Caps -----------------------------------------------------------------------------------------------

def _cap(firm, *, hours=None, amount=None, period=CapPeriod.CONTRACT):
    firm.contract.cap_hours = Decimal(hours) if hours else None
    firm.contract.cap_amount = Money(amount, "USD") if amount else None
    firm.contract.cap_period = period
    firm.contract.save()


def _rated(*entries):
    return [(e.billable_minutes, e.over_cap_minutes, str(e.amount.amount), e.billability_reason)
            for e in TimeEntry.objects.filter(pk__in=[e.pk for e in entries]).order_by("work_date", "id")]


def test_an_hours_cap_splits_the_crossing_entry(firm):
    _cap(firm, hours="2")
    rate(firm, "150.00")
    first = log(firm, minutes=90, day=dt.date(2026, 3, 2))
    crossing = log(firm, minutes=60, day=dt.date(2026, 3, 3))
    over = log(firm, minutes=30, day=dt.date(2026, 3, 4))
    assert _rated(first, crossing, over) == [
        (90, 0, "225.00", "billable"),
        (30, 30, "75.00", "cap_exceeded"),
        (0, 30, "0.00", "cap_exceeded"),
    ]


def test_an_amount_cap_keeps_the_minutes_that_fit(firm):
    _cap(firm, amount="250.00")
    rate(firm, "150.00")
    first = log(firm, minutes=60, day=dt.date(2026, 3, 2))
    crossing = log(firm, minutes=60, day=dt.date(2026, 3, 3))
    # 100.00 left at 150.00/h: floor(100 x 60 / 150) = 40 minutes.
    assert _rated(first, crossing) == [(60, 0, "150.00", "billable"), (40, 20, "100.00", "cap_exceeded")]


def test_an_amount_cap_floors_to_whole_minutes(firm):
    _cap(firm, amount="100.00")
    rate(firm, "137.00")
    entry = log(firm, minutes=60)
    # floor(100 x 60 / 137) = 43 minutes, amount round(43 x 137 / 60) = 98.18.
    assert _rated(entry) == [(43, 17, "98.18", "cap_exceeded")]


def test_with_both_caps_the_smaller_result_wins(firm):
    _cap(firm, hours="1.5", amount="200.00")
    rate(firm, "150.00")
    entry = log(firm, minutes=120)
    assert _rated(entry) == [(80, 40, "200.00", "cap_exceeded")]


def test_a_monthly_hours_cap_starts_again_each_month(firm):
    _cap(firm, hours="2", period=CapPeriod.MONTH)
    rate(firm, "150.00")
    march = [log(firm, minutes=90, day=dt.date(2026, 3, 30)), log(firm, minutes=60, day=dt.date(2026, 3, 31))]
    april = log(firm, minutes=60, day=dt.date(2026, 4, 1))
    assert _rated(*march, april) == [
        (90, 0, "225.00", "billable"), (30, 30, "75.00", "cap_exceeded"), (60, 0, "150.00", "billable")]


def test_a_monthly_amount_cap_splits_within_the_month(firm):
    _cap(firm, amount="300.00", period=CapPeriod.MONTH)
    rate(firm, "120.00")
    entries = [log(firm, minutes=120, day=dt.date(2026, 3, 10)), log(firm, minutes=120, day=dt.date(2026, 3, 11)),
               log(firm, minutes=30, day=dt.date(2026, 4, 1))]
    # 60.00 left at 120.00/h: 30 minutes.
    assert _rated(*entries) == [
        (120, 0, "240.00", "billable"), (30, 90, "60.00", "cap_exceeded"), (30, 0, "60.00", "billable")]


def test_an_earlier_dated_entry_takes_the_cap_first(firm):
    _cap(firm, hours="2")
    rate(firm, "150.00")
    later = log(firm, minutes=90, day=dt.date(2026, 3, 10))
    latest = log(firm, minutes=60, day=dt.date(2026, 3, 12))
    earlier = log(firm, minutes=60, day=dt.date(2026, 3, 5))
    assert _rated(earlier, later, latest) == [
        (60, 0, "150.00", "billable"), (60, 30, "150.00", "cap_exceeded"), (0, 60, "0.00", "cap_exceeded")]


def test_invoiced_entries_keep_their_cap_use(firm):
    _cap(firm, hours="2")
    rate(firm, "150.00")
    invoiced = log(firm, minutes=90, day=dt.date(2026, 3, 10))
    TimeEntry.objects.filter(pk=invoiced.pk).update(status=EntryStatus.INVOICED)
    earlier = log(firm, minutes=60, day=dt.date(2026, 3, 5))
    # The invoiced entry is history: it keeps its 90 minutes; the cap then has 30 minutes left for others.
    later = log(firm, minutes=60, day=dt.date(2026, 3, 11))
    assert _rated(earlier, invoiced, later) == [
        (60, 0, "150.00", "billable"), (90, 0, "225.00", "billable"), (0, 60, "0.00", "cap_exceeded")]


def test_a_cap_counts_the_time_of_every_project_under_the_contract(firm):
    _cap(firm, hours="2")
    rate(firm, "150.00")
    app = ProjectFactory(contract=firm.contract, code="acme-app")
    web = log(firm, minutes=90, day=dt.date(2026, 3, 2))
    later = log(firm, minutes=60, day=dt.date(2026, 3, 4), project_id=app.id)
    # Arrives last but is dated between: the web entry is use before it, the later app entry is rated again.
    earlier = log(firm, minutes=60, day=dt.date(2026, 3, 3), project_id=app.id)
    assert _rated(web, earlier, later) == [
        (90, 0, "225.00", "billable"), (30, 30, "75.00", "cap_exceeded"), (0, 60, "0.00", "cap_exceeded")]


def _cheap_task(firm):
    """A billable task rated at 1.00/h against the contract's 180.00/h default: it would always fit."""
    admin = TaskTypeFactory(code="admin", name="Administration")
    rate(firm, "180.00")
    rate(firm, "1.00", task_type=admin)
    return admin


def test_after_an_amount_cap_is_crossed_a_cheaper_later_entry_is_entirely_over_cap(firm):
    _cap(firm, amount="100.00")
    admin = _cheap_task(firm)
    crossing = log(firm, minutes=40, day=dt.date(2026, 3, 3))
    cheap = log(firm, minutes=60, day=dt.date(2026, 3, 4), task_type_id=admin.id)
    # An earlier entry arrives: the three are rated again in one pass, in (work date, id) order.
    earlier = log(firm, minutes=20, day=dt.date(2026, 3, 2))
    # 60.00 used, 40.00 left at 180.00/h: floor(40 x 60 / 180) = 13 minutes (39.00); 0.67 is left unused.
    assert _rated(earlier, crossing, cheap) == [
        (20, 0, "60.00", "billable"), (13, 27, "39.00", "cap_exceeded"), (0, 60, "0.00", "cap_exceeded")]


def test_an_invoiced_crossing_entry_still_exhausts_the_cap(firm):
    _cap(firm, amount="100.00")
    admin = _cheap_task(firm)
    crossing = log(firm, minutes=40, day=dt.date(2026, 3, 3))
    TimeEntry.objects.filter(pk=crossing.pk).update(status=EntryStatus.INVOICED)
    cheap = log(firm, minutes=60, day=dt.date(2026, 3, 4), task_type_id=admin.id)
    # Dated before the invoiced entry, so the contract's entries are walked again through it.
    before = log(firm, minutes=30, day=dt.date(2026, 3, 2), billable=False)
    # The invoiced entry keeps its 33 billable minutes (99.00) and 7 over: 1.00 is left, but the cap is spent.
    assert _rated(before, crossing, cheap) == [
        (0, 0, "0.00", "entry_non_billable"), (33, 7, "99.00", "cap_exceeded"), (0, 60, "0.00", "cap_exceeded")]


def test_rounding_comes_before_the_cap(firm):
    firm.contract.rounding_increment, firm.contract.rounding_mode = 15, RoundingMode.UP
    _cap(firm, hours="1")
    rate(firm, "100.00")
    first = log(firm, minutes=40, day=dt.date(2026, 3, 2))   # rounds to 45
    second = log(firm, minutes=20, day=dt.date(2026, 3, 3))  # rounds to 30, 15 left under the cap
    assert _rated(first, second) == [(45, 0, "75.00", "billable"), (15, 15, "25.00", "cap_exceeded")]


# -- Retainer -------------------------------------------------------------------------------------------

def test_retainer_hours_are_covered_and_the_rest_is_overage(firm):
    contract = firm.contract
    contract.billing_type = BillingType.RETAINER
    contract.retainer_amount, contract.retainer_hours = Money("5000.00", "USD"), Decimal("10")
    contract.save()
    rate(firm, "150.00")
    first = log(firm, minutes=480, day=dt.date(2026, 3, 2))
    crossing = log(firm, minutes=180, day=dt.date(2026, 3, 3))
    next_month = log(firm, minutes=60, day=dt.date(2026, 4, 1))
    rows = [(e.billable_minutes, e.covered_minutes, str(e.amount.amount))
            for e in TimeEntry.objects.filter(pk__in=[first.pk, crossing.pk, next_month.pk]).order_by("work_date")]
    # 600 minutes covered in March: 480 + 120 of the crossing entry; its other 60 are overage.
    assert rows == [(480, 480, "1200.00"), (180, 120, "450.00"), (60, 60, "150.00")]


# -- Re-rating -------------------------------------------------------------------------------------------

def test_a_new_rate_rerates_entries_not_yet_invoiced(firm):
    rate(firm, "100.00")
    open_entry = log(firm, minutes=60, key="open")
    invoiced = log(firm, minutes=60, key="invoiced")
    TimeEntry.objects.filter(pk=invoiced.pk).update(status=EntryStatus.INVOICED)
    rate(firm, "150.00", role=firm.role)
    reprocess_contracts(contract_ids=[firm.contract.id])
    open_entry.refresh_from_db()
    invoiced.refresh_from_db()
    assert open_entry.amount == Money("150.00", "USD")
    assert invoiced.amount == Money("100.00", "USD")


def test_rating_is_repeatable(firm):
    _cap(firm, hours="1")
    rate(firm, "150.00")
    entries = [log(firm, minutes=45, day=dt.date(2026, 3, d)) for d in (2, 3, 4)]
    before = _rated(*entries)
    reprocess_contracts(contract_ids=[firm.contract.id])
    assert _rated(*entries) == before


def test_a_contract_term_change_queued_for_reprocessing(firm, django_capture_on_commit_callbacks):
    from billing.pipeline import queue_reprocessing

    rate(firm, "100.00")
    entry = log(firm, minutes=50)
    assert entry.billable_minutes == 50
    firm.contract.rounding_increment, firm.contract.rounding_mode = 30, RoundingMode.UP
    firm.contract.save()
    with django_capture_on_commit_callbacks(execute=True):
        queue_reprocessing(contract_ids=[firm.contract.id])
    entry.refresh_from_db()
    assert (entry.billable_minutes, entry.amount) == (60, Money("100.00", "USD"))
