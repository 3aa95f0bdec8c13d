"""A deterministic firm for the benchmarks, and its time history.

`build_firm` makes the reference data with bulk_create: members with users and roles, clients with
their preferences, contracts of every billing type (time and materials with caps, rounding, spend limits
and approval overrides; retainers; fixed fees in installments and milestones; non-billable) and their rate
cards (contract defaults, roles, task types, members, project-scoped rates, a mid-year rate change), and
projects with budgets. Everything derives from the size and the seed, so two runs build the same firm.

`insert_history` writes months of already processed time (rated, approved, invoiced with issued
invoices, lines and allocations, approval requests) in a handful of INSERT ... SELECT statements over
generate_series: a million entries take seconds, not the pipeline's hours. Only the ingest benchmark
sends time through the pipeline; `ingest_inputs` makes its inputs.
"""

import datetime as dt
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import connection, transaction
from djmoney.money import Money

from billing.models import Rate
from billing.pipeline import TimeEntryInput
from clients.models import (
    BillingPeriod,
    BillingType,
    CapPeriod,
    Client,
    Consolidation,
    Contact,
    Contract,
    FeeMilestone,
    FixedFeeSchedule,
    LineGrouping,
    RoundingMode,
)
from projects.access import APPROVER, FINANCE, MANAGEMENT, PROJECT_MANAGER, STAFF
from projects.models import Project, Role, TaskType, TeamMember

# Every date is fixed, so a run next year builds the same firm with the same history.
FIRM_START = dt.date(2024, 1, 1)
RATE_CHANGE = dt.date(2025, 7, 1)
OPERATOR_EMAIL = "operator@bench.firm"
MEMBER_DOMAIN = "bench.firm"

ROLE_NAMES = ["Partner", "Principal", "Senior Consultant", "Consultant", "Analyst", "Designer", "Engineer",
              "Project Lead"]
TASK_NAMES = [("development", "Development", True), ("design", "Design", True), ("analysis", "Analysis", True),
              ("meetings", "Client meetings", True), ("research", "Research", True), ("qa", "Quality assurance", True),
              ("workshop", "Workshops", True), ("documentation", "Documentation", True),
              ("internal", "Internal", False), ("training", "Training", False)]
GROUPINGS = [LineGrouping.TASK_TYPE, LineGrouping.MEMBER, LineGrouping.PROJECT, LineGrouping.DAY,
             LineGrouping.DETAILED, LineGrouping.TASK_TYPE, LineGrouping.MEMBER, LineGrouping.PROJECT,
             LineGrouping.TASK_TYPE, LineGrouping.MEMBER]
CONSOLIDATIONS = [Consolidation.CLIENT, Consolidation.CLIENT, Consolidation.CONTRACT, Consolidation.PROJECT]


@dataclass(frozen=True)
class FirmSize:
    members: int = 200
    clients: int = 100
    projects: int = 400
    seed: int = 2025

    def stamp(self) -> str:
        return f"members={self.members} clients={self.clients} projects={self.projects} seed={self.seed}"


def _currency(index: int) -> str:
    return {7: "EUR", 9: "GBP"}.get(index % 10, "USD")


def _contract_terms(client_index: int, currency: str) -> list[dict]:
    """The client's contracts: every billing type appears across any ten clients, with every term."""
    kind = client_index % 10

    def money(amount) -> Money:
        return Money(Decimal(amount), currency)

    terms = {"billing_type": BillingType.TIME_AND_MATERIALS}
    if kind == 1:
        terms.update(cap_hours=Decimal("90.00"), cap_period=CapPeriod.MONTH)
    elif kind == 2:
        terms.update(cap_amount=money(150000), cap_period=CapPeriod.CONTRACT)
    elif kind == 3:
        terms.update(rounding_increment=15, rounding_mode=RoundingMode.UP)
    elif kind == 4:
        terms.update(rounding_increment=6, rounding_mode=RoundingMode.NEAREST, monthly_spend_limit=money(15000))
    elif kind == 5:
        terms.update(auto_approve_max_amount=money(400), auto_approve_max_minutes=480)
    elif kind in (6, 7):
        terms = {"billing_type": BillingType.RETAINER, "retainer_amount": money(12000),
                 "retainer_hours": Decimal("80.00")}
    elif kind == 8:
        schedule = FixedFeeSchedule.INSTALLMENTS if client_index % 20 == 8 else FixedFeeSchedule.MILESTONES
        terms = {"billing_type": BillingType.FIXED_FEE, "fixed_fee_schedule": schedule,
                 "fixed_fee_amount": money(360000), "end_date": dt.date(2026, 12, 31)}
    elif kind == 9:
        terms = {"billing_type": BillingType.NON_BILLABLE}
    contracts = [terms]
    if client_index % 4 == 0:
        contracts.append({"billing_type": BillingType.TIME_AND_MATERIALS})
    return contracts


def _users(emails: list[str]) -> list:
    User = get_user_model()
    password = make_password("bench-password")
    return User.objects.bulk_create([User(username=email, email=email, password=password) for email in emails])


def _join_groups(users, names: list[str]) -> None:
    User = get_user_model()
    groups = list(Group.objects.filter(name__in=names))
    User.groups.through.objects.bulk_create(
        [User.groups.through(user_id=user.id, group_id=group.id) for user in users for group in groups])


@transaction.atomic
def build_firm(size: FirmSize) -> None:
    """The reference data of a firm of this size; a few dozen bulk statements."""
    rng = random.Random(size.seed)
    roles = Role.objects.bulk_create([
        Role(code=f"bench-role-{n}", name=name, default_cost_rate=Money(Decimal(40 + 12 * (len(ROLE_NAMES) - n)), "USD"))
        for n, name in enumerate(ROLE_NAMES)])
    task_types = TaskType.objects.bulk_create([
        TaskType(code=code, name=name, billable=billable, is_default=(code == "development"))
        for code, name, billable in TASK_NAMES])

    emails = [f"member{n:03d}@{MEMBER_DOMAIN}" for n in range(size.members)]
    users = _users(emails)
    members = TeamMember.objects.bulk_create([
        TeamMember(user=user, email=user.email, name=f"Member {n:03d}", role=roles[n % len(roles)],
                   cost_rate=Money(Decimal(55 + n % 40), "USD") if n % 5 == 0 else None,
                   weekly_capacity_hours=Decimal("32.00") if n % 8 == 0 else Decimal("40.00"))
        for n, user in enumerate(users)])
    _join_groups(users, [STAFF])
    managers = [user for n, user in enumerate(users) if n % 10 == 0]
    get_user_model().objects.filter(pk__in=[u.pk for u in managers]).update(is_staff=True)
    _join_groups(managers, [PROJECT_MANAGER])
    [operator] = _users([OPERATOR_EMAIL])
    get_user_model().objects.filter(pk=operator.pk).update(is_staff=True)
    _join_groups([operator], [FINANCE, APPROVER, MANAGEMENT])

    clients = Client.objects.bulk_create([
        Client(code=f"bench-c{n:03d}", name=f"Client {n:03d}", currency=_currency(n),
               billing_period={3: BillingPeriod.WEEKLY, 6: BillingPeriod.SEMIMONTHLY}.get(n % 10, BillingPeriod.MONTHLY),
               consolidation=CONSOLIDATIONS[n % len(CONSOLIDATIONS)], line_grouping=GROUPINGS[n % len(GROUPINGS)],
               payment_terms_days=(14, 30, 45)[n % 3], tax_rate=(Decimal("0.00"), Decimal("20.00"), Decimal("7.50"))[n % 3],
               invoice_emails=[f"ap@client{n:03d}.test"], include_time_detail=(n % 5 == 0))
        for n in range(size.clients)])
    Contact.objects.bulk_create([Contact(client=client, name=f"Accounts {client.code}", email=f"ap@{client.code}.test",
                                         receives_weekly_summary=True, receives_invoices=True) for client in clients])

    contracts_of: dict[int, list[Contract]] = {}
    contracts = []
    for n, client in enumerate(clients):
        for k, terms in enumerate(_contract_terms(n, client.currency)):
            contract = Contract(client=client, number=f"C-{n:03d}-{k}", currency=client.currency,
                                start_date=FIRM_START, **terms)
            contracts.append(contract)
            contracts_of.setdefault(n, []).append(contract)
    Contract.objects.bulk_create(contracts)
    FeeMilestone.objects.bulk_create([
        FeeMilestone(contract=contract, name=f"Phase {m + 1}", amount=Money(Decimal(90000), contract.currency),
                     due_date=dt.date(2025, 3 * m + 2, 15),
                     completed_on=dt.date(2025, 3 * m + 2, 15) if m < 2 else None)
        for contract in contracts if contract.fixed_fee_schedule == FixedFeeSchedule.MILESTONES
        and contract.billing_type == BillingType.FIXED_FEE for m in range(4)])

    projects = []
    for p in range(size.projects):
        n = p % size.clients
        client, options = clients[n], contracts_of[n]
        contract = options[(p // size.clients) % len(options)]
        budget_hours = Decimal(400 + (p * 37) % 2600) if p % 3 != 1 else None
        budget_amount = Money(Decimal(60000 + (p * 7919) % 240000), contract.currency) if p % 3 != 0 else None
        projects.append(Project(client=client, contract=contract, code=f"bench-p{p:03d}",
                                name=f"{client.name} · project {p:03d}", manager=members[(p * 10) % size.members],
                                billable=(p % 25 != 24), start_date=FIRM_START, budget_hours=budget_hours,
                                budget_amount=budget_amount))
    Project.objects.bulk_create(projects)

    rates = []
    first_project = {}
    for project in projects:
        first_project.setdefault(project.contract_id, project)
    for index, contract in enumerate(contracts):
        if contract.billing_type not in (BillingType.TIME_AND_MATERIALS, BillingType.RETAINER):
            continue
        base = Decimal(120 + (index * 7) % 100)
        changes = index % 3 == 0
        periods = [(FIRM_START, RATE_CHANGE - dt.timedelta(days=1), Decimal("1.00")),
                   (RATE_CHANGE, None, Decimal("1.05"))] if changes else [(FIRM_START, None, Decimal("1.00"))]

        def rate(amount: Decimal, start=FIRM_START, end=None, contract=contract, **scope) -> Rate:
            return Rate(contract=contract, hourly_rate=Money(amount.quantize(Decimal("0.01")), contract.currency),
                        effective_from=start, effective_to=end, **scope)

        for start, end, factor in periods:
            rates.append(rate(base * factor, start, end))
            for r, role in enumerate(roles):
                rates.append(rate((base + 15 * (len(roles) - r)) * factor, start, end, role=role))
        for t in rng.sample(range(8), 2):
            rates.append(rate(base + 25, task_type=task_types[t]))
        member_a, member_b = rng.sample(members, 2)
        rates.append(rate(base + 40, member=member_a))
        rates.append(rate(base + 55, member=member_b, task_type=task_types[0]))
        rates.append(rate(base + 10, project=first_project[contract.id], role=roles[0]))
    Rate.objects.bulk_create(rates)


# --- the history, in SQL ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class History:
    """What `insert_history` wrote."""

    tag: str
    entries: int
    first_day: dt.date
    last_day: dt.date
    invoices: int = 0
    allocations: int = 0
    approval_requests: int = 0


def weekdays(start: dt.date, end: dt.date) -> list[dt.date]:
    days = [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]
    return [day for day in days if day.weekday() < 5]


ENTRY_COLUMNS = ("member_id, project_id, task_type_id, work_date, minutes, description, billable, source, external_id, "
                 "status, billable_minutes, over_cap_minutes, covered_minutes, rate, rate_currency, amount, "
                 "amount_currency, cost_amount, cost_amount_currency, rate_rule, billability_reason, rated_at, "
                 "conflict, created_at, updated_at")

# Consecutive numbers share a day, so ids grow with work dates as they would in a live firm. Within a day,
# member j % M works on three neighbouring projects (so every project and client gets time), task types
# rotate, and entries last 15 to 30 minutes (about 7.5 h per member and weekday at the reports' size).
# The firm is passed in as arrays indexed by position: no join per generated row.
_ENTRIES_SQL = f"""
WITH slot AS (
    SELECT g, g / %(per_day)s AS day_idx, g %% %(per_day)s AS j FROM generate_series(0, %(entries)s - 1) AS g
), pick AS (
    SELECT g, 1 + day_idx AS d, 1 + j %% %(members)s AS m,
           1 + ((j %% %(members)s) * 2 + (j / %(members)s) %% 3) %% %(projects)s AS p,
           1 + (j / %(members)s + day_idx) %% %(tasks)s AS t, 15 + 5 * ((g * 7 + day_idx) %% 4) AS minutes
    FROM slot
), fact AS (
    SELECT g, minutes, (%(days)s::date[])[d] AS day, (%(member_ids)s::bigint[])[m] AS member_id,
           (%(cost_rates)s::numeric[])[m] AS cost_rate, (%(cost_currencies)s::text[])[m] AS cost_currency,
           (%(project_ids)s::bigint[])[p] AS project_id, (%(currencies)s::text[])[p] AS currency,
           (%(numbers)s::text[])[p] AS number, (%(rates)s::numeric[])[p] AS rate,
           (%(task_ids)s::bigint[])[t] AS task_type_id, (%(task_billable)s::boolean[])[t] AS task_billable,
           (%(bills)s::boolean[])[p] AS bills
    FROM pick
), rated AS (
    SELECT *, CASE WHEN bills AND task_billable AND rate IS NOT NULL THEN minutes ELSE 0 END AS billable_minutes
    FROM fact
)
INSERT INTO projects_timeentry ({ENTRY_COLUMNS})
SELECT member_id, project_id, task_type_id, day, minutes, 'Bench work ' || g, true, %(source)s,
       %(tag)s || '-' || g,
       CASE WHEN billable_minutes > 0 AND day < %(invoiced_before)s THEN 'invoiced'
            WHEN %(rejected_every)s > 0 AND g %% %(rejected_every)s = 1 THEN 'rejected'
            WHEN %(pending_every)s > 0 AND g %% %(pending_every)s = 0 THEN 'pending'
            ELSE 'approved' END,
       billable_minutes, 0, 0,
       CASE WHEN billable_minutes > 0 THEN rate END, CASE WHEN billable_minutes > 0 THEN currency END,
       round(billable_minutes * COALESCE(rate, 0) / 60.0, 2), currency,
       round(minutes * cost_rate / 60.0, 2), cost_currency,
       CASE WHEN billable_minutes > 0 THEN 'Contract ' || number || ' · contract default' ELSE '' END,
       CASE WHEN billable_minutes > 0 THEN 'billable' WHEN NOT task_billable THEN 'task_type_non_billable'
            WHEN NOT bills THEN 'contract_non_billable' ELSE 'no_rate' END,
       day + time '18:00', '', day + time '18:00', day + time '18:00'
FROM rated
"""

# The billed entries with the invoice of their client, month and currency, kept for the lines and allocations.
_BILLED_SQL = """
CREATE TEMP TABLE bench_billed AS
SELECT e.id AS entry_id, p.client_id, date_trunc('month', e.work_date)::date AS month, e.amount_currency AS currency,
       p.id AS project_id, p.contract_id, left(p.name, 300) AS project_name, e.rate, e.billable_minutes, e.amount,
       NULL::bigint AS invoice_id, NULL::bigint AS line_id
FROM projects_timeentry e JOIN projects_project p ON p.id = e.project_id
WHERE e.status = 'invoiced' AND e.external_id LIKE %(pattern)s
"""

_INVOICES_SQL = """
INSERT INTO billing_invoice (kind, status, client_id, currency, period_start, period_end, number, issue_date,
                             due_date, paid_on, tax_rate, subtotal, tax, total, payment_terms_days, accepted_by,
                             pdf, void_reason, finalized_at, sent_at, created_at)
SELECT 'invoice', CASE WHEN month < %(paid_before)s THEN 'paid' ELSE 'sent' END, c.id, billed.currency, month,
       (month + interval '1 month - 1 day')::date,
       %(tag)s || '-' || lpad((row_number() OVER (ORDER BY month, c.id, billed.currency))::text, 6, '0'),
       (month + interval '1 month 4 days')::date, (month + interval '1 month 34 days')::date,
       CASE WHEN month < %(paid_before)s THEN (month + interval '1 month 30 days')::date END,
       c.tax_rate, 0, 0, 0, c.payment_terms_days, '', '', '',
       month + interval '1 month 4 days', month + interval '1 month 4 days', month + interval '1 month 3 days'
FROM (SELECT DISTINCT client_id, month, currency FROM bench_billed) AS billed
JOIN clients_client c ON c.id = billed.client_id
"""

_BILLED_INVOICES_SQL = """
UPDATE bench_billed b SET invoice_id = i.id FROM billing_invoice i
WHERE i.number LIKE %(pattern)s AND i.client_id = b.client_id AND i.period_start = b.month AND i.currency = b.currency
"""

_LINES_SQL = """
INSERT INTO billing_invoiceline (invoice_id, position, kind, description, quantity, unit_rate, amount, minutes,
                                 project_id, contract_id)
SELECT invoice_id, row_number() OVER (PARTITION BY invoice_id ORDER BY project_id, rate), 'time', project_name,
       round(sum(billable_minutes) / 60.0, 2), rate, round(sum(billable_minutes) * rate / 60.0, 2),
       sum(billable_minutes), project_id, contract_id
FROM bench_billed GROUP BY invoice_id, project_id, contract_id, project_name, rate
"""

_BILLED_LINES_SQL = """
UPDATE bench_billed b SET line_id = l.id FROM billing_invoiceline l
WHERE l.invoice_id = b.invoice_id AND l.project_id = b.project_id AND l.unit_rate = b.rate
"""

_ALLOCATIONS_SQL = """
INSERT INTO billing_allocation (time_entry_id, line_id, minutes, amount, covered_minutes, over_cap_minutes, is_live,
                                credited_minutes, written_off)
SELECT entry_id, line_id, billable_minutes, amount, 0, 0, true, 0, false FROM bench_billed
"""

_TOTALS_SQL = """
UPDATE billing_invoice i SET subtotal = s.total, tax = round(s.total * i.tax_rate / 100, 2),
                             total = s.total + round(s.total * i.tax_rate / 100, 2)
FROM (SELECT invoice_id, sum(amount) AS total FROM billing_invoiceline GROUP BY invoice_id) AS s
WHERE s.invoice_id = i.id AND i.number LIKE %(pattern)s
"""

_APPROVALS_SQL = """
INSERT INTO approvals_approvalrequest (time_entry_id, status, reasons, reason_messages, policy_id, requested_at,
                                       decided_at, note)
SELECT e.id,
       CASE e.status WHEN 'pending' THEN 'pending' WHEN 'rejected' THEN 'rejected' ELSE 'auto_approved' END,
       CASE WHEN e.status = 'pending' THEN '["amount_over_limit"]'::jsonb ELSE '[]'::jsonb END,
       CASE WHEN e.status = 'pending' THEN '["Amount over the auto-approval limit."]'::jsonb ELSE '[]'::jsonb END,
       (SELECT id FROM approvals_approvalpolicy WHERE is_active), e.created_at,
       CASE WHEN e.status <> 'pending' THEN e.created_at END,
       CASE WHEN e.status = 'rejected' THEN 'Not billable work.' ELSE '' END
FROM projects_timeentry e
WHERE e.external_id LIKE %(pattern)s AND e.status IN ('pending', 'approved', 'rejected', 'invoiced')
"""

# Secondary indexes are rebuilt after a large load instead of being maintained row by row (the way a
# bulk restore works); the primary keys and unique constraints stay and are checked as rows go in.
_SECONDARY_INDEXES_SQL = """
SELECT i.indexname, i.indexdef FROM pg_indexes i
JOIN pg_class c ON c.relname = i.indexname JOIN pg_index x ON x.indexrelid = c.oid
WHERE i.tablename = ANY(%s) AND NOT x.indisprimary AND NOT x.indisunique
"""


def insert_history(*, tag: str, entries: int, start: dt.date, end: dt.date, invoiced_before: dt.date | None = None,
                   paid_before: dt.date | None = None, approvals: bool = False, pending_every: int = 0,
                   rejected_every: int = 0, project_ids: list[int] | None = None) -> History:
    """Write `entries` processed entries on the weekdays of [start, end], spread evenly over the days.

    Billable entries worked before `invoiced_before` are invoiced: one issued invoice per client, month and
    currency, one line per project and rate, one live allocation per entry. Of the rest, every
    `pending_every`-th waits for approval and every `rejected_every`-th was rejected; `approvals` adds
    the approval request of every processed entry.
    """
    days = weekdays(start, end)
    members = list(TeamMember.objects.filter(email__endswith=f"@{MEMBER_DOMAIN}").select_related("role")
                   .order_by("id"))
    projects = Project.objects.select_related("contract").order_by("id")
    if project_ids is not None:
        projects = projects.filter(id__in=project_ids)
    default_rates = {rate.contract_id: rate.hourly_rate.amount for rate in Rate.objects.filter(
        member=None, role=None, task_type=None, project=None).order_by("-effective_from")}
    task_types = list(TaskType.objects.order_by("id"))
    params = {
        "days": days, "per_day": math.ceil(entries / len(days)), "entries": entries, "members": len(members),
        "member_ids": [m.id for m in members],
        "cost_rates": [m.effective_cost_rate.amount for m in members],
        "cost_currencies": [str(m.effective_cost_rate.currency) for m in members],
        "projects": len(projects), "project_ids": [p.id for p in projects],
        "currencies": [p.contract.currency for p in projects], "numbers": [p.contract.number for p in projects],
        "rates": [default_rates.get(p.contract_id) for p in projects],
        "bills": [p.contract.bills_time and p.billable for p in projects],
        "tasks": len(task_types), "task_ids": [t.id for t in task_types],
        "task_billable": [t.billable for t in task_types],
        "source": "harvest", "tag": tag, "invoiced_before": invoiced_before or dt.date.min,
        "pending_every": pending_every, "rejected_every": rejected_every, "pattern": f"{tag}-%",
        "paid_before": paid_before or dt.date.min,
    }
    invoices = allocations = approval_requests = 0
    tables = ["projects_timeentry", "billing_allocation", "approvals_approvalrequest"]
    with transaction.atomic(), connection.cursor() as cursor:
        # Every reference is consistent by construction: skip the foreign-key triggers for this load.
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(_SECONDARY_INDEXES_SQL, [tables])
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute(_ENTRIES_SQL, params)
        if invoiced_before is not None:
            cursor.execute(_BILLED_SQL, params)
            cursor.execute("ANALYZE bench_billed")
            cursor.execute(_INVOICES_SQL, params)
            invoices = cursor.rowcount
            cursor.execute(_BILLED_INVOICES_SQL, params)
            cursor.execute(_LINES_SQL, params)
            cursor.execute(_BILLED_LINES_SQL, params)
            cursor.execute(_ALLOCATIONS_SQL, params)
            allocations = cursor.rowcount
            cursor.execute(_TOTALS_SQL, params)
            cursor.execute("DROP TABLE bench_billed")
        if approvals:
            cursor.execute(_APPROVALS_SQL, params)
            approval_requests = cursor.rowcount
        for _, definition in indexes:
            cursor.execute(definition)
    return History(tag=tag, entries=entries, first_day=days[0], last_day=days[-1], invoices=invoices,
                   allocations=allocations, approval_requests=approval_requests)


HISTORY_TABLES = ["projects_timeentry", "approvals_approvalrequest", "billing_invoice", "billing_invoiceline",
                  "billing_allocation"]


# --- the ingest benchmark's inputs --------------------------------------------------------------------------

@dataclass(frozen=True)
class FirmIds:
    members: list[int]
    projects: list[int]
    billable_task_types: list[int]
    other_task_types: list[int]

    @classmethod
    def load(cls) -> "FirmIds":
        return cls(
            members=list(TeamMember.objects.filter(email__endswith=f"@{MEMBER_DOMAIN}").order_by("id")
                         .values_list("id", flat=True)),
            projects=list(Project.objects.order_by("id").values_list("id", flat=True)),
            billable_task_types=list(TaskType.objects.filter(billable=True).order_by("id").values_list("id", flat=True)),
            other_task_types=list(TaskType.objects.filter(billable=False).order_by("id").values_list("id", flat=True)),
        )


INGEST_START = dt.date(2025, 1, 6)
MINUTE_CHOICES = [30, 45, 60, 60, 90, 90, 120, 150, 180, 240]


def ingest_inputs(firm: FirmIds, count: int, seed: int) -> Iterator[TimeEntryInput]:
    """`count` inputs as a time-tracking source delivers them: day by day, one to three entries per member.

    Each member works on three projects of their own; one entry in ten is on a non-billable task; one in
    five hundred is an 11-hour day (held for review). Deterministic for a given firm and seed.
    """
    rng = random.Random(seed)
    day, made = INGEST_START, 0
    while True:
        if day.weekday() < 5:
            for m, member_id in enumerate(firm.members):
                for _ in range(rng.randint(1, 3)):
                    if made == count:
                        return
                    project = firm.projects[(m * 2 + rng.randrange(3)) % len(firm.projects)]
                    if rng.random() < 0.1:
                        task_type = rng.choice(firm.other_task_types)
                    else:
                        task_type = rng.choice(firm.billable_task_types)
                    minutes = 660 if rng.random() < 0.002 else rng.choice(MINUTE_CHOICES)
                    made += 1
                    yield TimeEntryInput(member_id=member_id, project_id=project, task_type_id=task_type,
                                         work_date=day, minutes=minutes, description=f"Bench task {made}",
                                         external_id=f"ingest-{made:07d}")
        day += dt.timedelta(days=1)
