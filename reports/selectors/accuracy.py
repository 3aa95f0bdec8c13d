"""Billing accuracy: the share of invoiced amount that was neither disputed nor credited later.

Definitions (PRODUCT.md "Reports", made precise here):
- invoiced amount = the amounts of the lines of issued invoices (finalized, sent, paid; kind invoice;
  void ones are left out) issued in the range, before tax. Zero lines (over-cap and retainer-covered
  information) do not count.
- disputed = the whole amount of a line the client disputed from the review page (any LineDispute,
  whatever its outcome: the line needed a correction conversation).
- credited = what issued credit notes reversed on an undisputed line (the credit note line's amount),
  at most the line's amount. A disputed line that was also credited counts once, as disputed.
- accuracy = (invoiced - disputed - credited) / invoiced x 100, one place, per month of issue and per
  client. Amounts are never added across currencies: every row is for one currency.
- a project, member or role filter keeps the lines that bill at least one entry matching it (lines
  group entries, so their amounts cannot be split by person).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Case, Count, Exists, F, OuterRef, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce, Least, TruncMonth

from billing.models import Allocation, InvoiceLine, LineDispute
from reports.scope import CREDIT, INVOICE, ISSUED, ReportScope
from reports.selectors.common import CHUNK_SIZE, MONEY_FIELD, ZERO, money, percent

GROUPINGS = ("month", "client", "currency")


@dataclass(frozen=True)
class AccuracyRow:
    key: object  # the month (date) or client id; None when grouped by currency only
    name: str
    currency: str
    lines: int
    invoiced: Decimal
    disputed: Decimal
    credited: Decimal
    accurate: Decimal
    accuracy: Decimal | None


def invoiced_lines(scope: ReportScope):
    lines = InvoiceLine.objects.filter(
        invoice__kind=INVOICE,
        invoice__status__in=ISSUED,
        invoice__issue_date__range=(scope.start, scope.end),
        amount__gt=0,
    )
    if scope.client_id is not None:
        lines = lines.filter(invoice__client_id=scope.client_id)
    if scope.project_id is not None or scope.filters_people:
        lines = lines.filter(
            Exists(Allocation.objects.filter(scope.entry_filter("time_entry__"), line=OuterRef("pk")))
        )
    return lines


def _credited():
    """Minus the amounts of issued credit-note lines reversing allocations of the outer line."""
    reverses_this_line = Allocation.objects.filter(
        line=OuterRef("pk"), reverses__line=OuterRef(OuterRef("pk"))
    )
    credit_lines = (
        InvoiceLine.objects.filter(invoice__kind=CREDIT, invoice__status__in=ISSUED)
        .filter(Exists(reverses_this_line))
        .order_by()
        .values("invoice__credited_invoice")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    return Coalesce(Subquery(credit_lines, output_field=MONEY_FIELD), Value(ZERO), output_field=MONEY_FIELD)


def billing_accuracy(*, scope: ReportScope, group_by: str = "month") -> Iterator[AccuracyRow]:
    """Accuracy rows per group and currency: one query."""
    if group_by not in GROUPINGS:
        raise ValueError(f"group_by must be one of {', '.join(GROUPINGS)}")
    lines = invoiced_lines(scope).annotate(
        is_disputed=Exists(LineDispute.objects.filter(line=OuterRef("pk"))),
        credit=-_credited(),
    )
    if group_by == "month":
        keys, order = {"key": TruncMonth("invoice__issue_date"), "name": Value("")}, ("key", "currency")
    elif group_by == "client":
        keys, order = (
            {"key": F("invoice__client_id"), "name": F("invoice__client__name")},
            ("name", "key", "currency"),
        )
    else:
        keys, order = {"key": Value(0), "name": Value("")}, ("currency",)
    rows = (
        lines.order_by()
        .values(**keys, currency=F("invoice__currency"))
        .annotate(
            line_count=Count("id"),
            invoiced=Sum("amount"),
            disputed=Sum(
                Case(When(is_disputed=True, then=F("amount")), default=Value(ZERO), output_field=MONEY_FIELD)
            ),
            credited=Sum(
                Case(
                    When(is_disputed=True, then=Value(ZERO)),
                    default=Least(F("amount"), F("credit")),
                    output_field=MONEY_FIELD,
                )
            ),
        )
        .order_by(*order)
    )
    for row in rows.iterator(chunk_size=CHUNK_SIZE):
        invoiced, disputed, credited = money(row["invoiced"]), money(row["disputed"]), money(row["credited"])
        accurate = invoiced - disputed - credited
        key = row["key"] if group_by != "currency" else None
        if group_by == "month":
            name = f"{key:%B %Y}"
        elif group_by == "client":
            name = row["name"]
        else:
            name = row["currency"]
        yield AccuracyRow(
            key=key,
            name=name,
            currency=row["currency"],
            lines=row["line_count"],
            invoiced=invoiced,
            disputed=disputed,
            credited=credited,
            accurate=accurate,
            accuracy=percent(accurate, invoiced),
        )
