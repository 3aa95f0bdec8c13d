"""Read-only queries behind every report: aggregates and window functions in the database.

Each module's docstring states the exact definitions of its figures. Selectors take a ReportScope
(reports.scope) and cost a fixed number of queries whatever the number of entries, members or projects.
"""

from reports.selectors.accuracy import AccuracyRow, billing_accuracy
from reports.selectors.budgets import BudgetRow, BurnPoint, budget_burn, budget_health
from reports.selectors.dashboard import Dashboard, dashboard
from reports.selectors.entries import BASES, entries_behind
from reports.selectors.profitability import CurrencyTotal, ProfitabilityRow, currency_totals, profitability
from reports.selectors.time_to_invoice import (
    DistributionBar,
    TimeToInvoiceRow,
    days_distribution,
    overall_time_to_invoice,
    time_to_invoice,
)
from reports.selectors.utilization import UtilizationMonth, UtilizationRow, utilization, utilization_by_month
from reports.selectors.wip import AGE_BUCKETS, WipRow, WipTotal, wip, wip_totals

__all__ = [
    "AGE_BUCKETS",
    "BASES",
    "AccuracyRow",
    "CurrencyTotal",
    "WipTotal",
    "currency_totals",
    "wip_totals",
    "BudgetRow",
    "BurnPoint",
    "Dashboard",
    "DistributionBar",
    "ProfitabilityRow",
    "TimeToInvoiceRow",
    "UtilizationMonth",
    "UtilizationRow",
    "WipRow",
    "billing_accuracy",
    "budget_burn",
    "budget_health",
    "dashboard",
    "days_distribution",
    "entries_behind",
    "overall_time_to_invoice",
    "profitability",
    "time_to_invoice",
    "utilization",
    "utilization_by_month",
    "wip",
]
