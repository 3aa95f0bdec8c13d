"""Admin for rate cards, and read-only views of what billing records.

Rates are normally edited inline on their contract (clients/admin.py). Both ways refuse what rating
cannot resolve: a rate in another currency than its contract, a project of another contract, and
two rates at the same level and scope whose periods overlap.

Billing runs, invoices, allocations, charges, disputes and messages are written by the billing
services only (runs, finalization, voids, credit notes, client review); here they can be looked at,
never typed in, so an issued invoice cannot be altered behind the services' backs.
"""

import datetime as dt
from dataclasses import dataclass

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet

from billing.models import (
    Allocation,
    BillingRun,
    ClientMessage,
    ContractCharge,
    Invoice,
    InvoiceEvent,
    InvoiceLine,
    InvoiceSequence,
    LineDispute,
    Rate,
)

# The "open-ended" end of a rate period, for comparing periods.
FOREVER = dt.date.max


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
    list_display = ["started_at", "period_start", "period_end", "client", "started_by", "invoices_created",
                    "entries_billed", "finished_at"]
    list_select_related = ["client", "started_by"]
    list_filter = ["client"]
    date_hierarchy = "started_at"
    search_fields = ["summary", "client__name"]


@admin.register(Invoice)
class InvoiceAdmin(RecordAdmin):
    list_display = ["__str__", "kind", "status", "client", "period_start", "period_end", "currency", "total",
                    "issue_date", "due_date", "paid_on"]
    list_select_related = ["client"]
    list_filter = ["status", "kind", "currency", "client"]
    search_fields = ["number", "client__name", "client__code"]
    date_hierarchy = "period_end"
    inlines = [InvoiceLineInline, InvoiceEventInline]


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


@admin.register(LineDispute)
class LineDisputeAdmin(RecordAdmin):
    list_display = ["raised_at", "line", "invoice", "status", "raised_by", "resolved_by", "resolved_at"]
    list_select_related = ["line__invoice__client", "resolved_by"]
    list_filter = ["status"]
    search_fields = ["comment", "raised_by", "line__invoice__number"]
    date_hierarchy = "raised_at"

    @admin.display(description="Invoice")
    def invoice(self, dispute: LineDispute) -> Invoice:
        return dispute.line.invoice


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
