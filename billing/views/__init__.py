"""Finance's pages (time import, invoices) and the client's invoice review page."""

from billing.views.client_review import client_review
from billing.views.imports import import_time
from billing.views.invoices import (
    billing_run,
    dispute_resolve_view,
    invoice_credit,
    invoice_delete,
    invoice_detail,
    invoice_finalize_view,
    invoice_list,
    invoice_mark_paid_view,
    invoice_pdf_download,
    invoice_preview_send,
    invoice_regenerate,
    invoice_send_view,
    invoice_void_view,
)

__all__ = [
    "billing_run", "client_review", "dispute_resolve_view", "import_time", "invoice_credit", "invoice_delete",
    "invoice_detail", "invoice_finalize_view", "invoice_list", "invoice_mark_paid_view", "invoice_pdf_download",
    "invoice_preview_send", "invoice_regenerate", "invoice_send_view", "invoice_void_view",
]
