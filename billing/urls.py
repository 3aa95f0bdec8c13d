from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("import/", views.import_time, name="import-time"),
    path("invoices/", views.invoice_list, name="invoice-list"),
    path("invoices/run/", views.billing_run, name="billing-run"),
    path("invoices/<int:pk>/", views.invoice_detail, name="invoice-detail"),
    path("invoices/<int:pk>/pdf/", views.invoice_pdf_download, name="invoice-pdf"),
    path("invoices/<int:pk>/preview/", views.invoice_preview_send, name="invoice-preview"),
    path("invoices/<int:pk>/regenerate/", views.invoice_regenerate, name="invoice-regenerate"),
    path("invoices/<int:pk>/delete/", views.invoice_delete, name="invoice-delete"),
    path("invoices/<int:pk>/finalize/", views.invoice_finalize_view, name="invoice-finalize"),
    path("invoices/<int:pk>/send/", views.invoice_send_view, name="invoice-send"),
    path("invoices/<int:pk>/paid/", views.invoice_mark_paid_view, name="invoice-paid"),
    path("invoices/<int:pk>/void/", views.invoice_void_view, name="invoice-void"),
    path("invoices/<int:pk>/credit/", views.invoice_credit, name="invoice-credit"),
    path("disputes/<int:pk>/resolve/", views.dispute_resolve_view, name="dispute-resolve"),
    # The client's page: no login, the signed token is the key (billing.review.review_url builds it).
    path("review/<str:token>/", views.client_review, name="client-review"),
]
