"""Admin for rate cards, finance's invoice console, and read-only views of what billing records.

Rates are normally edited inline on their contract (clients/admin.py). Both ways refuse what rating
cannot resolve: a rate in another currency than its contract, a project of another contract, and
two rates at the same level and scope whose periods overlap.

Billing runs, invoices, allocations, charges, disputes and messages are written by the billing
services only (runs, finalization, voids, credit notes, client review); here they are looked at, never
typed in. Invoice transitions and dispute dismissals are admin actions that call those services and
show what they refuse, so an issued invoice cannot be altered behind the services' backs.
"""
import datetime as dt
from dataclasses import dataclass

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import content_disposition_header

from approvals.admin import (
    ListColumnsChangeList,
    PlainActionCheckbox,
    action_hidden_fields,
    confirmation_page,
    error_text,
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
    ContractCharge,
    DisputeStatus,
    Invoice,
    InvoiceEvent,
    InvoiceLine,
    InvoiceSequence,
    InvoiceStatus,
    LineDispute,
    MessageKind,
    MessageStatus,
    Rate,
)
from billing.pipeline import queue_reprocessing
from billing.review import dispute_resolve, invoice_send_preview
from clients.models import Client

# The "open-ended" end of a rate period, for comparing periods.
FOREVER = dt.date.max
# What the billing services refuse with; the admin shows them as messages, never as a 500.
SERVICE_ERRORS = (ValidationError, BillingConflict, PermissionDenied)


@dataclass(frozen=True)
class RateTerms:
    """What decides whether two rates compete: their level and project scope, and their period."""

    scope: tuple
    effective_from: dt.date
    effective_to: dt.date | None
    description: str

    @classmethod
    def of(cls, rate: Rate) -> "RateTerms":
        parts = [f"member {rate.member}" if rate.member_id else "",
                 f"role {rate.role}" if rate.role_id else "",
                 f"task type {rate.task_type}" if rate.task_type_id else ""]
        level = ", ".join(part for part in parts if part) or "contract default"
        scope = f" on project {rate.project.code}" if rate.project_id else ""
        period = f"from {rate.effective_from} to {rate.effective_to or 'open-ended'}"
        return cls(scope=(rate.member_id, rate.role_id, rate.task_type_id, rate.project_id),
                   effective_from=rate.effective_from, effective_to=rate.effective_to,
                   description=f"{level}{scope}, {period}")

    def overlaps(self, other: "RateTerms") -> bool:
        return (self.scope == other.scope and self.effective_from <= (other.effective_to or FOREVER)
                and other.effective_from <= (self.effective_to or FOREVER))


def overlap_errors(candidates: list[RateTerms], existing: list[RateTerms] = ()) -> list[str]:
    """One message per pair of competing rates: rating could not choose between them."""
    messages = []
    for position, rate in enumerate(candidates):
        for other in [*candidates[position + 1:], *existing]:
            if rate.overlaps(other):
                messages.append(f"Two rates overlap: {rate.description} and {other.description}. "
                                "Give the earlier one an end date before the later one starts.")
    return messages


def _check_rate_against_contract(form: forms.ModelForm, contract) -> None:
    rate, project = form.cleaned_data.get("hourly_rate"), form.cleaned_data.get("project")
    if rate is not None and str(rate.currency) != contract.currency:
        form.add_error("hourly_rate", f"Must be in the contract currency {contract.currency}, not {rate.currency}.")
    # A contract being added has no projects yet, so any project belongs to another contract.
    if project is not None and (contract.pk is None or project.contract_id != contract.pk):
        form.add_error("project", f"Project {project.code} belongs to another contract.")


class RateInlineFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        kept = []
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or not form.cleaned_data or self._should_delete_form(form):
                continue
            _check_rate_against_contract(form, self.instance)
            if form.is_valid():
                kept.append(RateTerms.of(form.instance))
        # The formset holds every rate of the contract, so the check needs no other rows.
        messages = overlap_errors(kept)
        if messages:
            raise ValidationError(messages)


class RateInline(admin.TabularInline):
    model = Rate
    formset = RateInlineFormSet
    extra = 0
    fields = ["project", "member", "role", "task_type", "hourly_rate", "effective_from", "effective_to"]

    def get_queryset(self, request):
        # Each row's title names its contract.
        return super().get_queryset(request).select_related("contract")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        # Load each select's options once for the page, not once per rate row (iterating, unlike
        # list(), skips the COUNT query).
        field.choices = [choice for choice in field.choices]
        return field


class RateForm(forms.ModelForm):
    class Meta:
        model = Rate
        fields = ["contract", "project", "member", "role", "task_type", "hourly_rate", "effective_from",
                  "effective_to"]

    def clean(self):
        cleaned = super().clean()
        contract = cleaned.get("contract")
        if contract is None or self.errors:
            return cleaned
        _check_rate_against_contract(self, contract)
        if self.errors:
            return cleaned
        others = (Rate.objects.filter(contract=contract).exclude(pk=self.instance.pk)
                  .select_related("member", "role", "task_type", "project"))
        self.instance.contract = contract
        for name in ("project", "member", "role", "task_type", "effective_from", "effective_to"):
            setattr(self.instance, name, cleaned.get(name))
        messages = overlap_errors([RateTerms.of(self.instance)], [RateTerms.of(other) for other in others])
        if messages:
            raise ValidationError(messages)
        return cleaned


@admin.register(Rate)
class RateAdmin(admin.ModelAdmin):
    form = RateForm
    list_display = ["contract", "rate_level", "project", "member", "role", "task_type", "hourly_rate",
                    "effective_from", "effective_to"]
    # The contract's name includes its client's.
    list_select_related = ["contract__client", "project", "member", "role", "task_type"]
    list_filter = ["contract__client", "contract__billing_type", "role", "task_type",
                   ("effective_to", admin.EmptyFieldListFilter)]
    search_fields = ["contract__number", "contract__client__name", "project__code", "member__name", "role__name",
                     "task_type__name"]
    date_hierarchy = "effective_from"
    autocomplete_fields = ["contract", "project", "member"]

    @admin.display(description="Level")
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        queue_reprocessing(contract_ids=[obj.contract_id], from_date=self._from(obj, form))

    def delete_model(self, request, obj):
        contract_id, start = obj.contract_id, obj.effective_from
        super().delete_model(request, obj)
        queue_reprocessing(contract_ids=[contract_id], from_date=start)

    @staticmethod
    def _from(rate: Rate, form) -> dt.date:
        """The earliest day the change can affect: the rate's start, or its old start when that moved."""
        earlier = form.initial.get("effective_from")
        return min(rate.effective_from, earlier) if earlier else rate.effective_from

    def rate_level(self, rate: Rate) -> str:
        return rate.level.label


class RecordAdmin(admin.ModelAdmin):
    """Rows the billing services write: shown, never added, changed or deleted here."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class RecordInline(admin.TabularInline):
    extra = 0

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class InvoiceLineInline(RecordInline):
    model = InvoiceLine
    fields = ["position", "kind", "description", "quantity", "unit_rate", "amount", "project"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("invoice", "project")


class InvoiceEventInline(RecordInline):
    model = InvoiceEvent
    fields = ["created_at", "action", "status_before", "status_after", "actor", "details"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")


@admin.register(BillingRun)
class BillingRunAdmin(RecordAdmin):
    """Past runs, read-only; "Add" runs billing for a period through the billing service."""

    list_display = ["started_at", "period_start", "period_end", "client", "started_by", "invoices_created",
                    "entries_billed", "finished_at"]
    list_select_related = ["client", "started_by"]
    list_filter = ["client"]
    date_hierarchy = "started_at"
    search_fields = ["summary", "client__name"]

    def has_add_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("billing.run_billing")

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = BillingRunForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                result = billing_run_create(period_start=form.cleaned_data["period_start"],
                                            period_end=form.cleaned_data["period_end"],
                                            client=form.cleaned_data["client"], user=request.user)
            except (ValidationError, BillingConflict) as error:
                self.message_user(request, " ".join(getattr(error, "messages", [str(error)])), messages.ERROR)
            else:
                run = result.run
                self.message_user(request, f"Billing run {run.period_start} to {run.period_end}: "
                                           f"{run.invoices_created} draft invoices, {run.entries_billed} entries.",
                                  messages.SUCCESS)
                return HttpResponseRedirect(
                    reverse("admin:billing_invoice_changelist") + f"?billing_run__id__exact={run.pk}")
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "form": form,
                   "title": "Run billing", "action_label": "Run billing"}
        return TemplateResponse(request, "admin/billing/billingrun/run.html", context)


class BillingRunForm(forms.Form):
    period_start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    period_end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    client = forms.ModelChoiceField(queryset=Client.objects.filter(is_active=True), required=False,
                                    help_text="Leave empty to bill every client.")

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("period_start"), cleaned.get("period_end")
        if start and end and end < start:
            self.add_error("period_end", "The period cannot end before it starts.")
        return cleaned


def invoice_label(invoice: Invoice) -> str:
    return invoice.number or f"Draft #{invoice.pk}"


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


@admin.register(Invoice)
class InvoiceAdmin(PlainActionCheckbox, RecordAdmin):
    """Finance's invoice console: read-only pages, and one action per transition, each calling its service.

    Nothing here edits an invoice: drafts are made and remade by billing runs, issued invoices never change.
    Actions run the service invoice by invoice, each in its own transaction, so one refusal (shown as a
    message) does not undo the others.
    """

    list_display = ["label", "client", "period", "kind", "status", "total_due", "open_disputes", "issue_date",
                    "due_date", "paid_on"]
    list_display_links = ["label"]
    list_select_related = ["client"]
    list_filter = ["status", "kind", "client", "currency"]
    search_fields = ["number", "client__name", "client__code"]
    date_hierarchy = "period_end"
    inlines = [InvoiceLineInline, InvoiceEventInline]
    actions = ["send_preview", "finalize", "send", "mark_paid", "void", "regenerate_drafts", "delete_drafts"]
    fieldsets = [
        (None, {"fields": ["number", "kind", "status", "client", "contract", "project", "billing_run",
                           "credited_invoice", "period_start", "period_end"]}),
        ("Amounts", {"fields": ["currency", "subtotal", "tax_rate", "tax", "total", "allocation_summary"]}),
        ("Dates", {"fields": ["payment_terms_days", "issue_date", "due_date", "finalized_at", "sent_at", "paid_on",
                              "voided_at", "void_reason"]}),
        ("Client review", {"fields": ["review_sent_at", "review_expires_at", "accepted_at", "accepted_by",
                                      "dispute_list"]}),
    ]
    readonly_fields = ["allocation_summary", "dispute_list"]
    # The page's "Download PDF" link is in templates/admin/billing/invoice/change_form.html.

    def get_changelist(self, request, **kwargs):
        # The list shows the client only; an invoice's page and the actions use the other relations.
        return ListColumnsChangeList

    def get_queryset(self, request):
        open_disputes = (LineDispute.objects.filter(line__invoice=OuterRef("pk"), status=DisputeStatus.OPEN)
                         .order_by().values("line__invoice").annotate(count=Count("pk")).values("count"))
        # One subquery for the whole page, not a count per row.
        return (super().get_queryset(request)
                .select_related("client", "contract", "project", "billing_run", "credited_invoice")
                .annotate(open_disputes=Coalesce(Subquery(open_disputes), 0)))

    # --- Permissions: looked at by finance and management, acted on by finance -----------------------------

    def has_run_billing_permission(self, request) -> bool:
        return request.user.has_perm("billing.run_billing")

    def has_finalize_invoice_permission(self, request) -> bool:
        return request.user.has_perm("billing.finalize_invoice")

    def has_delete_permission(self, request, obj=None) -> bool:
        # Only drafts, and only through invoice_draft_delete (delete_model below), which releases their time.
        return (admin.ModelAdmin.has_delete_permission(self, request, obj) and self.has_run_billing_permission(request)
                and (obj is None or obj.status == InvoiceStatus.DRAFT))

    def get_actions(self, request):
        # The stock bulk delete would delete rows behind the service's back; delete_drafts replaces it.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    # --- Columns -----------------------------------------------------------------------------------------

    @admin.display(description="Invoice", ordering="number")
    def label(self, invoice: Invoice) -> str:
        return invoice_label(invoice)

    @admin.display(description="Period", ordering="period_end")
    def period(self, invoice: Invoice) -> str:
        return f"{invoice.period_start:%d %b %Y} – {invoice.period_end:%d %b %Y}"

    @admin.display(description="Total", ordering="total")
    def total_due(self, invoice: Invoice) -> str:
        return f"{invoice.total:,.2f} {invoice.currency}"

    @admin.display(description="Open disputes", ordering="open_disputes")
    def open_disputes(self, invoice: Invoice) -> int:
        return invoice.open_disputes

    @admin.display(description="Time billed")
    def allocation_summary(self, invoice: Invoice) -> str:
        counts = Allocation.objects.filter(line__invoice=invoice).aggregate(
            total=Count("pk"), live=Count("pk", filter=Q(is_live=True)),
            written_off=Count("pk", filter=Q(written_off=True)))
        return (f"{_plural(counts['total'], 'allocation', 'allocations')} of time entries "
                f"({counts['live']} live, {counts['written_off']} written off)")

    @admin.display(description="Disputes")
    def dispute_list(self, invoice: Invoice):
        disputes = list(LineDispute.objects.filter(line__invoice=invoice).select_related("line", "resolved_by"))
        if not disputes:
            return "None."
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((dispute.line.description, dispute.comment, dispute.raised_by or "—", dispute.get_status_display(),
              dispute.resolution or "—") for dispute in disputes),
        )
        link = reverse("admin:billing_linedispute_changelist") + f"?invoice={invoice.pk}"
        return format_html('<table><thead><tr><th>Line</th><th>Comment</th><th>Raised by</th><th>Status</th>'
                           '<th>Resolution</th></tr></thead><tbody>{}</tbody></table>'
                           '<p><a href="{}">Dismiss or review these disputes</a></p>', rows, link)

    # --- The PDF -----------------------------------------------------------------------------------------

    def get_urls(self):
        own = [path("<path:object_id>/pdf/", self.admin_site.admin_view(self.pdf_view), name="billing_invoice_pdf")]
        # Before the defaults: their "<path:object_id>/" catch-all would swallow it.
        return own + super().get_urls()

    def pdf_view(self, request, object_id: str):
        invoice = self.get_object(request, unquote(object_id))
        if invoice is None:
            raise Http404("No such invoice.")
        if not self.has_view_permission(request, invoice):
            raise PermissionDenied
        response = HttpResponse(invoice_pdf(invoice), content_type="application/pdf")
        name = f"{invoice.number}.pdf" if invoice.number else f"draft-{invoice.pk}.pdf"
        response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=name)
        return response

    # --- Transitions -------------------------------------------------------------------------------------

    def _each(self, request, invoices, move, done: str) -> None:
        """Run `move` (one service call, returning what it did) on each invoice; report both outcomes."""
        outcomes = []
        for invoice in sorted(invoices, key=lambda invoice: invoice.pk):
            try:
                outcomes.append(move(invoice))
            except SERVICE_ERRORS as error:
                self.message_user(request, f"{invoice_label(invoice)}: {error_text(error)}", messages.ERROR)
        if outcomes:
            self.message_user(request, f"{done}: {'; '.join(outcomes)}.", messages.SUCCESS)

    @admin.action(description="Send the preview to the client", permissions=["run_billing"])
    def send_preview(self, request, queryset) -> None:
        def move(invoice: Invoice) -> str:
            invoice = invoice_send_preview(invoice=invoice, user=request.user)
            # The service records a failed email instead of raising it.
            sent = invoice.messages.filter(kind=MessageKind.INVOICE_PREVIEW).first()
            if sent is None or sent.status != MessageStatus.SENT:
                raise ValidationError(f"the preview email could not be sent: {sent.error if sent else ''}")
            return f"{invoice_label(invoice)} to {', '.join(sent.to)}"

        self._each(request, queryset, move, "Preview sent")

    @admin.action(description="Finalize (number, lock, PDF)", permissions=["finalize_invoice"])
    def finalize(self, request, queryset) -> None:
        def move(invoice: Invoice) -> str:
            label = invoice_label(invoice)
            invoice = invoice_finalize(invoice=invoice, user=request.user)
            return f"{label} as {invoice.number}, due {invoice.due_date:%d %b %Y}"

        self._each(request, queryset, move, "Finalized")

    @admin.action(description="Email to the client with the PDF", permissions=["finalize_invoice"])
    def send(self, request, queryset) -> None:
        def move(invoice: Invoice) -> str:
            invoice = invoice_send(invoice=invoice, user=request.user)
            return invoice_label(invoice)

        self._each(request, queryset, move, "Emailed with the PDF")

    @admin.action(description="Mark paid today", permissions=["finalize_invoice"])
    def mark_paid(self, request, queryset) -> None:
        today = timezone.localdate()

        def move(invoice: Invoice) -> str:
            return invoice_label(invoice_mark_paid(invoice=invoice, user=request.user, paid_on=today))

        self._each(request, queryset, move, f"Marked paid on {today:%d %b %Y}")

    @admin.action(description="Void…", permissions=["finalize_invoice"])
    def void(self, request, queryset):
        invoices = list(queryset)
        reason = request.POST.get("reason", "").strip()
        if request.POST.get("post") and reason:
            def move(invoice: Invoice) -> str:
                return invoice_label(invoice_void(invoice=invoice, user=request.user, reason=reason))

            self._each(request, invoices, move, "Voided; their time and fees may be billed again")
            return None
        return confirmation_page(
            self, request, title="Void invoices",
            intro="These invoices will be void: their numbers stay used, and their time and fees are released "
                  "for rebilling. A paid invoice is corrected by a credit note instead.",
            items=[f"{invoice_label(i)} · {i.client.name} · {self.total_due(i)}" for i in invoices],
            submit_label="Void", hidden=action_hidden_fields("void", invoices), text_field="reason",
            text_label="Reason", text_help="Kept on the invoice and in its history.",
            text_error="Say why the invoice is voided." if request.POST.get("post") else "",
        )

    @admin.action(description="Regenerate draft (bill the period again)", permissions=["run_billing"])
    def regenerate_drafts(self, request, queryset) -> None:
        def move(invoice: Invoice) -> str:
            label = invoice_label(invoice)
            result = invoice_draft_regenerate(invoice=invoice, user=request.user)
            made = ", ".join(invoice_label(new) for new in result.invoices) or "no invoice"
            return f"{label} became {made}"

        self._each(request, queryset, move, "Billed again")

    @admin.action(description="Delete selected drafts…", permissions=["delete"])
    def delete_drafts(self, request, queryset):
        invoices = list(queryset)
        if not request.POST.get("post"):
            return confirmation_page(
                self, request, title="Delete draft invoices",
                intro="These drafts will be deleted; their time and fees go back to be billed by the next run. "
                      "Issued invoices are never deleted (void them instead).",
                items=[f"{invoice_label(i)} · {i.client.name} · {i.get_status_display()} · {self.total_due(i)}"
                       for i in invoices],
                submit_label="Delete", hidden=action_hidden_fields("delete_drafts", invoices),
            )

        def move(invoice: Invoice) -> str:
            label = invoice_label(invoice)
            released = invoice_draft_delete(invoice=invoice, user=request.user)
            return f"{label} ({_plural(released, 'entry', 'entries')} released)"

        self._each(request, invoices, move, "Deleted")
        return None

    # The change page's "Delete" link: the draft goes through the service too.

    def get_deleted_objects(self, objs, request):
        # The service deletes a draft with its lines and releases its entries; the admins of those rows are
        # read-only, so the stock check would always refuse. List what goes instead.
        invoices = list(objs)
        lines = InvoiceLine.objects.filter(invoice__in=invoices).count()
        entries = Allocation.objects.filter(line__invoice__in=invoices, is_live=True).count()
        described = [f"{invoice_label(i)} · {i.client.name}: its lines go, and "
                     f"{_plural(entries, 'time entry is', 'time entries are')} released for the next run"
                     for i in invoices]
        return described, {"invoices": len(invoices), "invoice lines": lines}, set(), []

    def delete_model(self, request, obj: Invoice) -> None:
        try:
            invoice_draft_delete(invoice=obj, user=request.user)
        except ValidationError as error:
            # It was issued since the page was shown; the admin's transaction rolls back its log entry.
            self.message_user(request, error_text(error), messages.ERROR)
            raise PermissionDenied(error_text(error)) from error

    def delete_queryset(self, request, queryset) -> None:
        for invoice in queryset:
            self.delete_model(request, invoice)


@admin.register(InvoiceLine)
class InvoiceLineAdmin(RecordAdmin):
    list_display = ["description", "invoice", "kind", "quantity", "unit_rate", "amount", "project"]
    # A draft's name includes its client's.
    list_select_related = ["invoice__client", "project"]
    list_filter = ["kind", "invoice__status"]
    search_fields = ["description", "invoice__number", "invoice__client__name"]


@admin.register(Allocation)
class AllocationAdmin(RecordAdmin):
    list_display = ["time_entry_id", "line", "minutes", "amount", "is_live", "written_off", "credited_minutes"]
    list_select_related = ["line"]
    list_filter = ["is_live", "written_off"]
    search_fields = ["line__invoice__number", "time_entry__external_id"]


@admin.register(ContractCharge)
class ContractChargeAdmin(RecordAdmin):
    list_display = ["contract", "kind", "period_start", "milestone", "line"]
    # The contract's and the milestone's names include their contract's client and number.
    list_select_related = ["contract__client", "milestone__contract", "line"]
    list_filter = ["kind"]
    search_fields = ["contract__number", "contract__client__name"]


@admin.register(InvoiceSequence)
class InvoiceSequenceAdmin(RecordAdmin):
    list_display = ["prefix", "year", "last_number"]


class DisputedInvoiceFilter(admin.SimpleListFilter):
    """Opened from an invoice's page ("its disputes"): offers only that invoice, and nothing otherwise."""

    title = "invoice"
    parameter_name = "invoice"

    def lookups(self, request, model_admin):
        value = self.value()
        if value is None:
            return []
        # A filter without choices is not applied at all: an unknown invoice must still filter (to nothing).
        invoice = Invoice.objects.filter(pk=value).first() if value.isdigit() else None
        return [(value, invoice_label(invoice) if invoice else f"{value} (no such invoice)")]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if not value.isdigit():
            raise IncorrectLookupParameters(f"Not an invoice id: {value}")
        return queryset.filter(line__invoice_id=value)


@admin.register(LineDispute)
class LineDisputeAdmin(RecordAdmin):
    """Clients' disputes. Dismissing one (the line stands) is an action here; taking entries off a line is
    done on the invoice page of the portal, where the line's entries are listed."""

    list_display = ["raised_at", "line", "invoice", "comment", "status", "raised_by", "resolution", "resolved_by",
                    "resolved_at"]
    list_select_related = ["line__invoice__client", "resolved_by"]
    list_filter = ["status", DisputedInvoiceFilter]
    search_fields = ["comment", "raised_by", "line__invoice__number"]
    date_hierarchy = "raised_at"
    actions = ["dismiss"]

    def has_run_billing_permission(self, request) -> bool:
        return request.user.has_perm("billing.run_billing")

    @admin.display(description="Invoice")
    def invoice(self, dispute: LineDispute) -> str:
        return invoice_label(dispute.line.invoice)

    @admin.action(description="Dismiss with a resolution…", permissions=["run_billing"])
    def dismiss(self, request, queryset):
        disputes = list(queryset)
        resolution = request.POST.get("resolution", "").strip()
        if request.POST.get("post") and resolution:
            dismissed = 0
            for dispute in sorted(disputes, key=lambda dispute: dispute.pk):
                try:
                    dispute_resolve(dispute=dispute, user=request.user, resolution=resolution, dismiss=True)
                except SERVICE_ERRORS as error:
                    self.message_user(request, f"Dispute of “{dispute.line}” on {self.invoice(dispute)}: "
                                               f"{error_text(error)}", messages.ERROR)
                else:
                    dismissed += 1
            if dismissed:
                self.message_user(request, f"Dismissed {_plural(dismissed, 'dispute', 'disputes')}; "
                                           "the lines stand as billed.", messages.SUCCESS)
            return None
        return confirmation_page(
            self, request, title="Dismiss disputes",
            intro="These disputes will be closed and their lines left as they are. The resolution is kept on "
                  "each dispute and in the invoice's history.",
            items=[f"{self.invoice(d)} · {d.line}: “{d.comment}” ({d.get_status_display()})" for d in disputes],
            submit_label="Dismiss", hidden=action_hidden_fields("dismiss", disputes), text_field="resolution",
            text_label="Resolution", text_help="How the dispute was answered; the client may ask.",
            text_error="Record how the dispute was resolved." if request.POST.get("post") else "",
        )


@admin.register(ClientMessage)
class ClientMessageAdmin(RecordAdmin):
    list_display = ["sent_at", "kind", "client", "recipients", "subject", "status", "invoice"]
    list_select_related = ["client", "invoice__client"]
    list_filter = ["kind", "status", "client"]
    search_fields = ["subject", "client__name", "invoice__number"]
    date_hierarchy = "sent_at"

    @admin.display(description="To")
    def recipients(self, message: ClientMessage) -> str:
        return ", ".join(message.to)


@admin.register(InvoiceEvent)
class InvoiceEventAdmin(RecordAdmin):
    list_display = ["created_at", "invoice", "action", "status_before", "status_after", "actor"]
    list_select_related = ["invoice__client", "actor"]
    list_filter = ["action"]
    search_fields = ["invoice__number", "action"]
    date_hierarchy = "created_at"
