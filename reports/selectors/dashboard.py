"""The management dashboard: the three key metrics for the range and their trend by month.

- billable utilization: the firm row of reports.selectors.utilization, and its monthly trend
- time-to-invoice: median and 90th percentile days over the range, and per month of finalization
- billing accuracy: per currency over the range, and per month of issue and currency
- unbilled work: WIP totals per currency (context for the other three)
A fixed number of queries, whatever the number of entries, members, projects or invoices.
"""

from dataclasses import dataclass, field
from decimal import Decimal

from reports.scope import ReportScope
from reports.selectors.accuracy import AccuracyRow, billing_accuracy
from reports.selectors.time_to_invoice import TimeToInvoiceRow, overall_time_to_invoice, time_to_invoice
from reports.selectors.utilization import UtilizationMonth, UtilizationRow, utilization, utilization_by_month
from reports.selectors.wip import wip, wip_totals


@dataclass
class Dashboard:
    scope: ReportScope
    utilization: UtilizationRow
    utilization_months: list[UtilizationMonth]
    time_to_invoice: TimeToInvoiceRow
    time_to_invoice_months: list[TimeToInvoiceRow]
    accuracy: list[AccuracyRow]
    accuracy_months: list[AccuracyRow]
    unbilled: dict[str, Decimal] = field(default_factory=dict)


def dashboard(*, scope: ReportScope) -> Dashboard:
    return Dashboard(
        scope=scope,
        utilization=next(iter(utilization(scope=scope, group_by="firm"))),
        utilization_months=utilization_by_month(scope=scope),
        time_to_invoice=overall_time_to_invoice(scope=scope),
        time_to_invoice_months=list(time_to_invoice(scope=scope, group_by="month")),
        accuracy=list(billing_accuracy(scope=scope, group_by="currency")),
        accuracy_months=list(billing_accuracy(scope=scope, group_by="month")),
        unbilled={total.currency: total.total for total in wip_totals(wip(scope=scope))},
    )
