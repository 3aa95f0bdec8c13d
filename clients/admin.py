"""Admin for clients, their contacts and contracts: where finance keeps the commercial terms.

Contract terms, milestones and the rate card are edited on one page, so a rate is always seen
next to the contract it prices.
"""

from django import forms
from django.contrib import admin
from django.forms.models import BaseInlineFormSet

from billing.admin import RateInline
from billing.pipeline import queue_reprocessing
from clients.models import Client, Contact, Contract, FeeMilestone


class ContactInline(admin.TabularInline):
    model = Contact
    extra = 0
    fields = ["name", "email", "receives_weekly_summary", "receives_invoices"]


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "currency", "billing_period", "consolidation", "line_grouping",
                    "payment_terms_days", "tax_rate", "is_active"]
    list_filter = ["is_active", "currency", "billing_period", "consolidation", "line_grouping"]
    search_fields = ["name", "code", "contacts__email"]
    prepopulated_fields = {"code": ["name"]}
    readonly_fields = ["created_at", "updated_at"]
    inlines = [ContactInline]
    fieldsets = [
        (None, {"fields": ["name", "code", "currency", "is_active", "address"]}),
        ("Invoicing preferences", {"fields": ["billing_period", "consolidation", "line_grouping",
                                              "payment_terms_days", "tax_rate", "invoice_emails",
                                              "include_time_detail"]}),
        ("History", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "client", "receives_weekly_summary", "receives_invoices"]
    list_select_related = ["client"]
    list_filter = ["receives_weekly_summary", "receives_invoices", "client"]
    search_fields = ["name", "email", "client__name", "client__code"]
    autocomplete_fields = ["client"]


class MilestoneInlineFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        # The contract on the page (possibly with a currency just changed) is the one that counts.
        currency = self.instance.currency
        for form in self.forms:
            amount = getattr(form, "cleaned_data", {}).get("amount")
            if amount is not None and str(amount.currency) != currency:
                form.add_error("amount", f"Must be in the contract currency {currency}, not {amount.currency}.")


class FeeMilestoneInline(admin.TabularInline):
    model = FeeMilestone
    formset = MilestoneInlineFormSet
    extra = 0
    fields = ["name", "amount", "due_date", "completed_on"]

    def get_queryset(self, request):
        # Each row's title names its contract.
        return super().get_queryset(request).select_related("contract")


@admin.register(Contract)
class ContractAdmin(admin.ModelAdmin):
    list_display = ["number", "client", "billing_type", "currency", "status", "start_date", "end_date",
                    "rounding"]
    list_select_related = ["client"]
    list_filter = ["billing_type", "status", "currency", "client"]
    search_fields = ["number", "client__name", "client__code"]
    date_hierarchy = "start_date"
    autocomplete_fields = ["client"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [FeeMilestoneInline, RateInline]
    fieldsets = [
        (None, {"fields": ["number", "client", "billing_type", "currency", "status", "start_date", "end_date"]}),
        ("Rounding", {"fields": ["rounding_increment", "rounding_mode"]}),
        ("Not-to-exceed caps", {"fields": ["cap_hours", "cap_amount", "cap_period"]}),
        ("Approval overrides", {
            "fields": ["monthly_spend_limit", "auto_approve_max_amount", "auto_approve_max_minutes",
                       "budget_review_percent"],
            "description": "Leave empty to use the firm's approval policy.",
        }),
        ("Fixed fee", {"fields": ["fixed_fee_amount", "fixed_fee_schedule"]}),
        ("Retainer", {"fields": ["retainer_amount", "retainer_hours"]}),
        ("Client review", {"fields": ["review_window_days", "auto_finalize"]}),
        ("History", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # New terms or rates: every entry of the contract not yet invoiced is rated and routed again.
        if change and (form.has_changed() or any(formset.has_changed() for formset in formsets)):
            queue_reprocessing(contract_ids=[form.instance.pk])
            self.message_user(request, "The contract's entries not yet invoiced are being rated again.")

    @admin.display(description="Rounding")
    def rounding(self, contract: Contract) -> str:
        if not contract.rounding_increment:
            return "none"
        return f"{contract.rounding_increment} min, {contract.get_rounding_mode_display().lower()}"


class FeeMilestoneForm(forms.ModelForm):
    class Meta:
        model = FeeMilestone
        fields = ["contract", "name", "amount", "due_date", "completed_on"]

    def clean(self):
        cleaned = super().clean()
        contract, amount = cleaned.get("contract"), cleaned.get("amount")
        if contract is not None and amount is not None and str(amount.currency) != contract.currency:
            self.add_error("amount", f"Must be in the contract currency {contract.currency}, not {amount.currency}.")
        return cleaned


@admin.register(FeeMilestone)
class FeeMilestoneAdmin(admin.ModelAdmin):
    form = FeeMilestoneForm
    list_display = ["name", "contract", "amount", "due_date", "completed_on"]
    # The contract's name includes its client's.
    list_select_related = ["contract__client"]
    list_filter = [("completed_on", admin.EmptyFieldListFilter), "contract__client"]
    search_fields = ["name", "contract__number", "contract__client__name"]
    date_hierarchy = "due_date"
    autocomplete_fields = ["contract"]
