"""Report pages under /reports/ and the reports API under /api/v1/reports/ (both mounted by config.urls)."""

from django.urls import path

from reports import api, views

app_name = "reports"

urlpatterns = [
    path("", views.dashboard_page, name="dashboard"),
    path("utilization/", views.utilization_page, name="utilization"),
    path("profitability/", views.profitability_page, name="profitability"),
    path("budgets/", views.budgets_page, name="budgets"),
    path("time-to-invoice/", views.time_to_invoice_page, name="time-to-invoice"),
    path("billing-accuracy/", views.billing_accuracy_page, name="billing-accuracy"),
    path("wip/", views.wip_page, name="wip"),
    path("entries/", views.entries_page, name="entries"),
]

# Names are part of the public API (docs/API.md): keep them.
api_urlpatterns = [
    path("utilization/", api.UtilizationReportApi.as_view(), name="utilization"),
    path("profitability/", api.ProfitabilityReportApi.as_view(), name="profitability"),
    path("budgets/", api.BudgetsReportApi.as_view(), name="budgets"),
    path("time-to-invoice/", api.TimeToInvoiceReportApi.as_view(), name="time-to-invoice"),
    path("billing-accuracy/", api.BillingAccuracyReportApi.as_view(), name="billing-accuracy"),
    path("wip/", api.WipReportApi.as_view(), name="wip"),
]
