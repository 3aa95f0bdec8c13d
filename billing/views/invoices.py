"""Finance's invoice screens: the list with its billing-run form, one invoice with its actions, and its PDF.

Every action is a POST that calls one billing service; whatever the service refuses comes back as a message
on the invoice page, so the rules stay in the services and a refusal is never a 500.
"""

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, Prefetch, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_POST

from billing.credit_notes import CreditRequest, credit_note_create
from billing.forms import (
    BillingRunForm,
    CreditNoteForm,
    DisputeResolveForm,
    InvoiceFilterForm,
    MarkPaidForm,
    Outcome,
    VoidForm,
)
from billing.invoicing import (
    BillingConflict,
    billing_run_create,
    invoice_draft_delete,
    invoice_draft_regenerate,
)
from billing.lifecycle import invoice_finalize, invoice_mark_paid, invoice_pdf, invoice_send, invoice_void
from billing.models import (
    Allocation,
    BillingRun,
    ClientMessage,
    DisputeStatus,
    Invoice,
    InvoiceEvent,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
    LineDispute,
    MessageKind,
    MessageStatus,
)
from billing.money import hours
from billing.periods import month_end
from billing.review import dispute_resolve, invoice_send_preview
from billing.views.access import invoice_permission_required

INVOICES_PER_PAGE = 50
SERVICE_ERRORS = (ValidationError, BillingConflict, PermissionDenied)


def invoice_label(invoice: Invoice) -> str:
    return invoice.number or f"Draft #{invoice.pk}"


def _error_text(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    return str(error) or "This action is not allowed."


@contextmanager
def _refusals_as_messages(request) -> Iterator[None]:
    """Run a service call; what it refuses becomes an error message instead of a 500."""
    try:
        yield
    except SERVICE_ERRORS as error:
        messages.error(request, _error_text(error))


def _detail_url(invoice_id: int, anchor: str = "") -> str:
    url = reverse("billing:invoice-detail", args=[invoice_id])
    return f"{url}#{anchor}" if anchor else url


def _run_url(run: BillingRun) -> str:
    return f"{reverse('billing:invoice-list')}?run={run.pk}"


# The list --------------------------------------------------------------------------------------------------


def _last_month() -> dict:
    end = timezone.localdate().replace(day=1) - dt.timedelta(days=1)
    return {"period_start": end.replace(day=1), "period_end": month_end(end)}


@invoice_permission_required("billing.view_invoice")
def invoice_list(request):
    return _list_page(request, BillingRunForm(initial=_last_month()))


def _open_disputes() -> Subquery:
    """Each invoice's count of open disputes, as a subquery the page runs for its own rows only.

    (Counted through a join and GROUP BY instead, every page would group all invoices with all their
    lines, and the paginator's count would have to group them again.)
    """
    disputes = (LineDispute.objects.filter(line__invoice=OuterRef("pk"), status=DisputeStatus.OPEN)
                .order_by().values("line__invoice").annotate(count=Count("pk")).values("count"))
    return Coalesce(Subquery(disputes), 0)


def _share_client_choices(*forms) -> None:
    """The filters and the billing-run form both list every client: read them once, names and codes only.

    (Each form's own list would read whole clients, through a server-side cursor each.)
    """
    clients = forms[0].fields["client"].queryset.only("name", "code")
    choices = [(client.pk, str(client)) for client in clients]
    for form in forms:
        field = form.fields["client"]
        field.choices = [("", field.empty_label), *choices]


def _list_page(request, run_form: BillingRunForm):
    filters = InvoiceFilterForm(request.GET or None)
    _share_client_choices(filters, run_form)
    invoices = filters.apply(
        Invoice.objects.select_related("client").annotate(open_disputes=_open_disputes())
        .order_by("-period_end", "-id")  # the newest periods first
    )
    page = Paginator(invoices, INVOICES_PER_PAGE).get_page(request.GET.get("page"))
    run_id = filters.cleaned_data.get("run") if filters.is_bound else None
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "billing/invoice_list.html", {
        "filters": filters,
        "filter_query": query.urlencode(),
        "page": page,
        "run": BillingRun.objects.filter(pk=run_id).select_related("client").first() if run_id else None,
        "run_form": run_form,
    })


@invoice_permission_required("billing.run_billing")
@require_POST
def billing_run(request):
    """Draft the period's invoices, then list what the run made."""
    form = BillingRunForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            result = billing_run_create(period_start=data["period_start"], period_end=data["period_end"],
                                        client=data["client"], user=request.user)
        except ValidationError as error:
            _add_service_errors(form, error)
        except BillingConflict as error:
            messages.error(request, str(error))
        else:
            run = result.run
            period = f"{run.period_start:%d %b %Y} to {run.period_end:%d %b %Y}"
            if result.invoices:
                messages.success(request, f"Billing run for {period}: {run.summary}.")
            else:
                messages.info(request, f"Billing run for {period}: nothing to bill. No approved, unbilled "
                                       "billable time or due fees in this period.")
            return redirect(_run_url(run))
    return _list_page(request, form)


def _add_service_errors(form, error: ValidationError) -> None:
    """A service's field errors land on the form's fields of the same name; the rest above the form."""
    if hasattr(error, "error_dict"):
        for field, field_errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, field_errors)
    else:
        form.add_error(None, error)


# One invoice -----------------------------------------------------------------------------------------------


def _invoice_with_everything(pk: int) -> Invoice:
    """The invoice with its lines, their time, disputes, messages, history and credit notes: a fixed number
    of queries however many lines and entries it has."""
    allocations = Allocation.objects.select_related("time_entry__member", "time_entry__task_type") \
        .order_by("time_entry__work_date", "time_entry_id", "id")
    disputes = LineDispute.objects.select_related("resolved_by").order_by("raised_at", "id")
    lines = InvoiceLine.objects.order_by("position").prefetch_related(
        Prefetch("allocations", queryset=allocations), Prefetch("disputes", queryset=disputes))
    return get_object_or_404(
        Invoice.objects.select_related("client", "contract", "project", "credited_invoice", "billing_run")
        .prefetch_related(
            Prefetch("lines", queryset=lines),
            Prefetch("messages", queryset=ClientMessage.objects.order_by("-sent_at", "-id")),
            Prefetch("events", queryset=InvoiceEvent.objects.select_related("actor").order_by("-created_at", "-id")),
            Prefetch("credit_notes", queryset=Invoice.objects.order_by("id")),
        ),
        pk=pk,
    )


def _actions(user, invoice: Invoice) -> set[str]:
    """The buttons to show for this user and state; the services still decide when one is pressed."""
    may_run, may_finalize = user.has_perm("billing.run_billing"), user.has_perm("billing.finalize_invoice")
    shown = set()
    if invoice.status == InvoiceStatus.DRAFT:
        if may_run:
            shown |= {"preview", "regenerate", "delete", "resolve"}
        if may_finalize:
            shown.add("finalize")
    elif may_finalize:
        if invoice.status in (InvoiceStatus.FINALIZED, InvoiceStatus.SENT):
            shown |= {"send", "void"}
            if invoice.kind == InvoiceKind.INVOICE:
                shown.add("paid")
        if invoice.kind == InvoiceKind.INVOICE and invoice.is_issued:
            shown.add("credit")
    return shown


def _removable(line: InvoiceLine) -> list[Allocation]:
    """The entries a dispute on this line can take off it: those still billed on it."""
    return [a for a in line.allocations.all() if a.is_live and a.minutes > 0]


def _detail_page(request, invoice: Invoice, bound_forms: dict | None = None):
    bound_forms = bound_forms or {}
    actions = _actions(request.user, invoice)
    lines = list(invoice.lines.all())
    disputes = []
    for line in lines:
        line.time_detail = [a for a in line.allocations.all() if a.minutes or a.written_off]
        for allocation in line.time_detail:
            allocation.hours = hours(allocation.minutes)
        line.open_disputes = 0
        for dispute in line.disputes.all():
            disputes.append(dispute)
            if dispute.status == DisputeStatus.OPEN:
                line.open_disputes += 1
                if "resolve" in actions:
                    prefix = f"dispute-{dispute.pk}"
                    dispute.form = bound_forms.get(prefix) or DisputeResolveForm(
                        prefix=prefix, allocations=_removable(line))
    disputes.sort(key=lambda d: (d.raised_at, d.pk))
    return render(request, "billing/invoice_detail.html", {
        "invoice": invoice,
        "label": invoice_label(invoice),
        "lines": lines,
        "disputes": disputes,
        "open_disputes": sum(line.open_disputes for line in lines),
        "client_messages": invoice.messages.all(),
        "events": invoice.events.all(),
        "credit_notes": invoice.credit_notes.all(),
        "actions": actions,
        "paid_form": bound_forms.get("paid") or MarkPaidForm(initial={"paid_on": timezone.localdate()}),
    })


@invoice_permission_required("billing.view_invoice")
def invoice_detail(request, pk: int):
    return _detail_page(request, _invoice_with_everything(pk))


@invoice_permission_required("billing.view_invoice")
def invoice_pdf_download(request, pk: int):
    invoice = get_object_or_404(Invoice.objects.select_related("client"), pk=pk)
    response = HttpResponse(invoice_pdf(invoice), content_type="application/pdf")
    name = f"{invoice.number or f'draft-{invoice.pk}'}.pdf"
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=name)
    return response


# Draft actions (billing.run_billing) -----------------------------------------------------------------------


@invoice_permission_required("billing.run_billing")
@require_POST
def invoice_preview_send(request, pk: int):
    invoice = get_object_or_404(Invoice, pk=pk)
    with _refusals_as_messages(request):
        invoice = invoice_send_preview(invoice=invoice, user=request.user)
        # The service logs a failed send instead of raising, so the log says whether it went out.
        sent = ClientMessage.objects.filter(invoice=invoice, kind=MessageKind.INVOICE_PREVIEW).first()
        if sent is not None and sent.status == MessageStatus.FAILED:
            messages.error(request, f"The preview email could not be sent: {sent.error}")
        else:
            until = timezone.localtime(invoice.review_expires_at)
            messages.success(request, f"Preview sent to {', '.join(sent.to if sent else [])}. The review link "
                                      f"is open until {until:%d %b %Y %H:%M}.")
    return redirect(_detail_url(pk))


@invoice_permission_required("billing.run_billing")
@require_POST
def invoice_regenerate(request, pk: int):
    invoice = get_object_or_404(Invoice, pk=pk)
    label = invoice_label(invoice)
    with _refusals_as_messages(request):
        result = invoice_draft_regenerate(invoice=invoice, user=request.user)
        messages.success(request, f"{label} was billed again: {result.run.summary}.")
        if len(result.invoices) == 1:
            return redirect(_detail_url(result.invoices[0].pk))
        return redirect(_run_url(result.run))
    return redirect(_detail_url(pk))


@invoice_permission_required("billing.run_billing")
def invoice_delete(request, pk: int):
    """Ask first (GET), then delete the draft and release its time and fees (POST)."""
    invoice = get_object_or_404(Invoice.objects.select_related("client"), pk=pk)
    if request.method != "POST":
        return render(request, "billing/invoice_confirm_delete.html",
                      {"invoice": invoice, "label": invoice_label(invoice)})
    label = invoice_label(invoice)
    with _refusals_as_messages(request):
        released = invoice_draft_delete(invoice=invoice, user=request.user)
        messages.success(request, f"{label} for {invoice.client.name} was deleted; {released} "
                                  f"entr{'y was' if released == 1 else 'ies were'} released for the next run.")
        return redirect("billing:invoice-list")
    return redirect(_detail_url(pk))


@invoice_permission_required("billing.run_billing")
@require_POST
def dispute_resolve_view(request, pk: int):
    dispute = get_object_or_404(LineDispute.objects.select_related("line"), pk=pk)
    line = dispute.line
    allocations = list(Allocation.objects.filter(line=line).select_related("time_entry__member",
                                                                             "time_entry__task_type"))
    form = DisputeResolveForm(request.POST, prefix=f"dispute-{pk}",
                              allocations=[a for a in allocations if a.is_live and a.minutes > 0])
    if not form.is_valid():
        messages.error(request, "The dispute was not resolved: see the form below.")
        return _detail_page(request, _invoice_with_everything(line.invoice_id), {form.prefix: form})
    outcome = form.cleaned_data["outcome"]
    with _refusals_as_messages(request):
        dispute_resolve(dispute=dispute, user=request.user, resolution=form.cleaned_data["resolution"],
                        remove_entry_ids=form.cleaned_data["entries"], release=outcome == Outcome.RELEASE,
                        dismiss=outcome == Outcome.DISMISS)
        done = {Outcome.RELEASE: "resolved; the entries taken off were released for a later invoice",
                Outcome.WRITE_OFF: "resolved; the entries taken off were written off",
                Outcome.DISMISS: "dismissed; the line is unchanged"}[outcome]
        messages.success(request, f"The dispute of “{line.description}” was {done}.")
    return redirect(_detail_url(line.invoice_id, "disputes"))


# Issuing actions (billing.finalize_invoice) ----------------------------------------------------------------


@invoice_permission_required("billing.finalize_invoice")
@require_POST
def invoice_finalize_view(request, pk: int):
    invoice = get_object_or_404(Invoice, pk=pk)
    with _refusals_as_messages(request):
        invoice = invoice_finalize(invoice=invoice, user=request.user)
        messages.success(request, f"Finalized as {invoice.number}, issued {invoice.issue_date:%d %b %Y}, "
                                  f"due {invoice.due_date:%d %b %Y}.")
    return redirect(_detail_url(pk))


@invoice_permission_required("billing.finalize_invoice")
@require_POST
def invoice_send_view(request, pk: int):
    invoice = get_object_or_404(Invoice, pk=pk)
    with _refusals_as_messages(request):
        invoice = invoice_send(invoice=invoice, user=request.user)
        sent = ClientMessage.objects.filter(invoice=invoice).exclude(kind=MessageKind.INVOICE_PREVIEW).first()
        messages.success(request, f"{invoice.number} was emailed to {', '.join(sent.to if sent else [])} "
                                  "with its PDF.")
    return redirect(_detail_url(pk))


@invoice_permission_required("billing.finalize_invoice")
@require_POST
def invoice_mark_paid_view(request, pk: int):
    form = MarkPaidForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The invoice was not marked paid: see the payment date.")
        return _detail_page(request, _invoice_with_everything(pk), {"paid": form})
    invoice = get_object_or_404(Invoice, pk=pk)
    with _refusals_as_messages(request):
        invoice = invoice_mark_paid(invoice=invoice, user=request.user, paid_on=form.cleaned_data["paid_on"])
        messages.success(request, f"{invoice.number} was marked paid on {invoice.paid_on:%d %b %Y}.")
    return redirect(_detail_url(pk))


@invoice_permission_required("billing.finalize_invoice")
def invoice_void_view(request, pk: int):
    """Ask for the reason and a confirmation (GET), then void (POST)."""
    invoice = get_object_or_404(Invoice.objects.select_related("client"), pk=pk)
    form = VoidForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with _refusals_as_messages(request):
            invoice = invoice_void(invoice=invoice, user=request.user, reason=form.cleaned_data["reason"])
            messages.success(request, f"{invoice.number} is void; its time and fees may be billed again.")
        return redirect(_detail_url(pk))
    return render(request, "billing/invoice_confirm_void.html",
                  {"invoice": invoice, "label": invoice_label(invoice), "form": form})


@invoice_permission_required("billing.finalize_invoice")
def invoice_credit(request, pk: int):
    """The credit-note form: the invoice's billed entries, each with the minutes to credit."""
    invoice = get_object_or_404(Invoice.objects.select_related("client"), pk=pk)
    billed = list(
        Allocation.objects.filter(line__invoice=invoice, reverses__isnull=True, minutes__gt=0)
        .select_related("line", "time_entry__member", "time_entry__task_type")
        .order_by("line__position", "time_entry__work_date", "time_entry_id")
    )
    form = CreditNoteForm(request.POST or None, allocations=billed)
    if request.method == "POST" and form.is_valid():
        try:
            note = credit_note_create(
                invoice=invoice, release=form.cleaned_data["release"], user=request.user,
                reason=form.cleaned_data["reason"],
                parts=[CreditRequest(time_entry_id=entry_id, minutes=minutes) for entry_id, minutes in form.parts])
        except SERVICE_ERRORS as error:
            form.add_error(None, _error_text(error))
        else:
            messages.success(request, f"Credit note {note.number} issued for {note.total:,.2f} {note.currency} "
                                      f"against {invoice.number}.")
            return redirect(_detail_url(note.pk))
    return render(request, "billing/invoice_credit.html",
                  {"invoice": invoice, "label": invoice_label(invoice), "form": form})
