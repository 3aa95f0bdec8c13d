"""Profitability per project or client: hours, revenue (invoiced + unbilled approved), cost, margin.

Definitions (PRODUCT.md "Reports", made precise here):
- time counted: processed entries (pending, approved, invoiced) whose work date is in the range.
- hours = their raw minutes; cost = their cost_amount (the member's cost rate on all minutes, billable
  or not), as on the Projects page.
- revenue of an entry (approved or invoiced only): the net amount issued invoices bill for it (its
  allocations minus credit-note reversals) when it is billed now, else its rated amount (approved work
  not billed yet, released by a credit note, or waiting on a draft). See selectors.common.entry_revenue.
- fees: retainer fees, fixed-fee installments and milestones on issued invoices, dated by the period the
  charge covers (a milestone by its completion), count as revenue of their project when the line names
  one or the contract has a single project; otherwise they make a row of their own ("fees of contract
  C-1006"), because splitting them between projects would be a guess. With a member or role filter, fees
  are left out (they are nobody's time).
- margin = revenue - cost, margin % = margin / revenue x 100 (one place), effective rate = revenue /
  hours. Money is never added across currencies: a row has one revenue currency (the contract's), and
  margin is only shown when the cost is in that currency too (cost rates are in the firm's currency, so
  a EUR project costed in USD shows its cost but no margin).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.db import connections, router
from django.db.models import Case, Count, F, Max, Min, OuterRef, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce

from billing.models import Allocation, InvoiceLine, LineKind
from clients.models import Client, Contract
from projects.models import Project, TimeEntry
from reports.db import one_place
from reports.scope import INVOICE, ISSUED, PROCESSED_STATUSES, REVENUE_STATUSES, ReportScope
from reports.selectors.common import CHUNK_SIZE, MONEY_FIELD, ZERO, hours, money, percent

GROUPINGS = ("project", "client")
FEE_KINDS = (LineKind.RETAINER_FEE, LineKind.FIXED_FEE, LineKind.MILESTONE)


@dataclass(frozen=True)
class ProfitabilityRow:
    key: int | None  # project or client id; None for a contract's fees not tied to one project
    name: str
    code: str
    client_name: str
    currency: str
    hours: Decimal
    billable_hours: Decimal
    invoiced: Decimal
    unbilled: Decimal
    fees: Decimal
    revenue: Decimal
    cost: Decimal | None
    cost_currency: str
    margin: Decimal | None
    margin_percent: Decimal | None
    effective_rate: Decimal | None


def _fee_lines(scope: ReportScope):
    sole_project = (
        Project.objects.filter(contract=OuterRef("contract_id"))
        .order_by()
        .values("contract")
        .annotate(projects=Count("id"), first=Min("id"))
        .filter(projects=1)
        .values("first")
    )
    lines = (
        InvoiceLine.objects.filter(invoice__kind=INVOICE, invoice__status__in=ISSUED, kind__in=FEE_KINDS)
        .exclude(amount=0)
        .annotate(fee_date=Coalesce("charge__period_start", "invoice__period_start"))
        .filter(fee_date__range=(scope.start, scope.end))
        .annotate(attributed=Coalesce("project_id", Subquery(sole_project)))
    )
    if scope.client_id is not None:
        lines = lines.filter(invoice__client_id=scope.client_id)
    if scope.project_id is not None:
        lines = lines.filter(attributed=scope.project_id)
    return lines


def _fees(scope: ReportScope, group_by: str) -> dict[tuple, dict]:
    """Fee amounts by (row key, currency); unattributed fees keyed by ("contract", id, currency)."""
    if scope.filters_people:
        return {}
    lines = _fee_lines(scope).order_by()
    fees = {}
    if group_by == "client":
        for row in lines.values("invoice__client_id", "invoice__client__name", "invoice__currency").annotate(
            total=Sum("amount")
        ):
            fees[(row["invoice__client_id"], row["invoice__currency"])] = {
                "total": row["total"],
                "name": row["invoice__client__name"],
                "client_name": "",
            }
        return fees
    for row in lines.values(
        "attributed", "contract_id", "contract__number", "contract__client__name", "invoice__currency"
    ).annotate(total=Sum("amount")):
        if row["attributed"] is not None:
            key = (row["attributed"], row["invoice__currency"])
            fees.setdefault(key, {"total": ZERO})["total"] += row["total"]
        else:
            fees[("contract", row["contract_id"], row["invoice__currency"])] = {
                "total": row["total"],
                "name": f"Fees of contract {row['contract__number']} (not split by project)",
                "code": row["contract__number"],
                "client_name": row["contract__client__name"],
            }
    return fees


def _row(
    *,
    key,
    name,
    code,
    client_name,
    currency,
    minutes=0,
    billable_minutes=0,
    invoiced=ZERO,
    revenue=ZERO,
    fees=ZERO,
    cost=None,
    cost_currency="",
) -> ProfitabilityRow:
    revenue = money(revenue) + money(fees)
    invoiced = money(invoiced)
    margin = margin_percent = None
    if cost is not None and cost_currency == currency:
        margin = revenue - money(cost)
        margin_percent = one_place(margin / revenue * 100) if revenue else None
    return ProfitabilityRow(
        key=key,
        name=name,
        code=code,
        client_name=client_name,
        currency=currency,
        hours=hours(minutes),
        billable_hours=hours(billable_minutes),
        invoiced=invoiced + money(fees),
        unbilled=revenue - invoiced - money(fees),
        fees=money(fees),
        revenue=revenue,
        cost=money(cost) if cost is not None else None,
        cost_currency=cost_currency,
        margin=margin,
        margin_percent=margin_percent,
        effective_rate=money(revenue / (Decimal(minutes) / 60)) if minutes else None,
    )


# Each entry's net amount on issued invoices, joined to the entries it bills. The ORM writes the entries in
# scope and the allocations summed per entry; what it cannot say, a join to a grouped subquery, is written
# out here. Summing first and joining once is what keeps this one pass over each table: an expression per
# entry (selectors.common.entry_revenue) runs three correlated subqueries for every entry instead.
TIME_SQL = """
WITH entries AS ({entries}),
billed AS ({billed}),
per_project AS (
    SELECT e.project_id,
           SUM(e.minutes) AS minutes,
           SUM(e.billable_minutes) AS billable_minutes,
           SUM(CASE WHEN e.earns = 0 THEN 0 WHEN b.live = 1 THEN b.net ELSE e.rated END) AS revenue,
           SUM(CASE WHEN e.earns = 0 THEN 0 ELSE COALESCE(b.net, 0) END) AS invoiced,
           SUM(e.cost_amount) AS cost,
           MIN(e.cost_amount_currency) AS cost_currency_min,
           MAX(e.cost_amount_currency) AS cost_currency_max
    FROM entries e LEFT JOIN billed b ON b.time_entry_id = e.id
    GROUP BY e.project_id
)
SELECT {keys},
       SUM(t.minutes), SUM(t.billable_minutes), SUM(t.revenue), SUM(t.invoiced), SUM(t.cost),
       MIN(t.cost_currency_min), MAX(t.cost_currency_max)
FROM per_project t
JOIN {project} p ON p.id = t.project_id
JOIN {client} c ON c.id = p.client_id
JOIN {contract} k ON k.id = p.contract_id
GROUP BY {groups}
ORDER BY {order}
"""
# Per grouping: the row's key, name, code, currency and client name; what it groups by (PostgreSQL cannot
# group by the constant client name of a client row); its order. Columns of the project (p), its client (c)
# and its contract (k).
TIME_KEYS = {
    "project": (
        "p.id, p.name, p.code, k.currency, c.name",
        "p.id, p.name, p.code, k.currency, c.name",
        "c.name, p.name, p.id",
    ),
    "client": (
        "c.id, c.name, c.code, k.currency, ''",
        "c.id, c.name, c.code, k.currency",
        "c.name, c.id, k.currency",
    ),
}
TIME_COLUMNS = (
    "key name code currency client_name minutes billable_minutes revenue invoiced cost "
    "cost_currency_min cost_currency_max"
).split()


def _time_rows(scope: ReportScope, group_by: str) -> Iterator[dict]:
    """Hours, revenue, invoiced amount and cost of the time in scope, one dict per row: one query."""
    entries = (
        TimeEntry.objects.filter(status__in=PROCESSED_STATUSES, work_date__range=(scope.start, scope.end))
        .filter(scope.entry_filter())
        .order_by()
        .values("id", "project_id", "minutes", "billable_minutes", "cost_amount", "cost_amount_currency")
        # Approved and invoiced time earns revenue (selectors.common.entry_revenue), at its rated amount
        # unless an issued invoice bills it now.
        .annotate(
            earns=Case(When(status__in=REVENUE_STATUSES, then=Value(1)), default=Value(0)),
            rated=Coalesce(F("amount"), Value(ZERO), output_field=MONEY_FIELD),
        )
    )
    billed = (
        # Only the allocations of the entries in scope: a month or one project sums a few, not all history.
        Allocation.objects.filter(line__invoice__status__in=ISSUED, time_entry__in=entries.values("id"))
        .order_by()
        .values("time_entry_id")
        .annotate(
            net=Sum("amount"),
            live=Max(Case(When(is_live=True, then=Value(1)), default=Value(0))),
        )
    )
    keys, groups, order = TIME_KEYS[group_by]
    entries_sql, entries_params = entries.query.sql_with_params()
    billed_sql, billed_params = billed.query.sql_with_params()
    sql = TIME_SQL.format(
        entries=entries_sql,
        billed=billed_sql,
        keys=keys,
        groups=groups,
        order=order,
        project=Project._meta.db_table,
        client=Client._meta.db_table,
        contract=Contract._meta.db_table,
    )
    with connections[router.db_for_read(TimeEntry)].cursor() as cursor:
        cursor.execute(sql, (*entries_params, *billed_params))
        while chunk := cursor.fetchmany(CHUNK_SIZE):
            yield from (dict(zip(TIME_COLUMNS, row, strict=True)) for row in chunk)


def profitability(*, scope: ReportScope, group_by: str = "project") -> Iterator[ProfitabilityRow]:
    """Rows ordered by client and project name; time in one grouped query, fees in another."""
    if group_by not in GROUPINGS:
        raise ValueError(f"group_by must be one of {', '.join(GROUPINGS)}")
    fees = _fees(scope, group_by)
    for row in _time_rows(scope, group_by):
        fee = fees.pop((row["key"], row["currency"]), {}).get("total", ZERO)
        # Costs in more than one currency cannot be added: the row shows none rather than a wrong sum.
        mixed = row["cost_currency_min"] != row["cost_currency_max"]
        yield _row(
            key=row["key"],
            name=row["name"],
            code=row["code"],
            client_name=row["client_name"],
            currency=row["currency"],
            minutes=row["minutes"],
            billable_minutes=row["billable_minutes"],
            invoiced=row["invoiced"],
            revenue=row["revenue"],
            fees=fee,
            cost=None if mixed else (row["cost"] or ZERO),
            cost_currency="mixed" if mixed else (row["cost_currency_min"] or row["currency"]),
        )
    yield from _fee_only_rows(fees, group_by)


def _fee_only_rows(fees: dict[tuple, dict], group_by: str) -> Iterator[ProfitabilityRow]:
    """Fees billed in the range for projects (or clients) without time in it, and unattributed fees."""
    project_ids = [key[0] for key in fees if key[0] != "contract"] if group_by == "project" else []
    projects = Project.objects.select_related("client").in_bulk(project_ids) if project_ids else {}
    for key, fee in sorted(fees.items(), key=lambda item: str(item[1].get("name", ""))):
        if key[0] == "contract":
            yield _row(
                key=None,
                name=fee["name"],
                code=fee["code"],
                client_name=fee["client_name"],
                currency=key[2],
                fees=fee["total"],
            )
        elif group_by == "project":
            project = projects[key[0]]
            yield _row(
                key=project.id,
                name=project.name,
                code=project.code,
                client_name=project.client.name,
                currency=key[1],
                fees=fee["total"],
                cost=ZERO,
                cost_currency=key[1],
            )
        else:
            yield _row(
                key=key[0],
                name=fee["name"],
                code="",
                client_name="",
                currency=key[1],
                fees=fee["total"],
                cost=ZERO,
                cost_currency=key[1],
            )


@dataclass
class CurrencyTotal:
    currency: str
    hours: Decimal = ZERO
    revenue: Decimal = ZERO
    invoiced: Decimal = ZERO
    unbilled: Decimal = ZERO
    # Margin over the rows whose cost is in this currency too, and the revenue of those rows.
    margin: Decimal = ZERO
    comparable_revenue: Decimal = ZERO

    @property
    def margin_percent(self) -> Decimal | None:
        return percent(self.margin, self.comparable_revenue)


def currency_totals(rows) -> list[CurrencyTotal]:
    """Totals of profitability rows per currency: amounts in different currencies are never added."""
    totals: dict[str, CurrencyTotal] = {}
    for row in rows:
        total = totals.setdefault(row.currency, CurrencyTotal(currency=row.currency))
        total.hours += row.hours
        total.revenue += row.revenue
        total.invoiced += row.invoiced
        total.unbilled += row.unbilled
        if row.margin is not None:
            total.margin += row.margin
            total.comparable_revenue += row.revenue
    return [totals[currency] for currency in sorted(totals)]
