"""REST API v1 for clients, their contacts and contracts (serializers, filters, viewsets)."""

from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django_filters import rest_framework as filters
from rest_framework import serializers, viewsets

from billing.pipeline import queue_reprocessing
from clients.models import Client, Contact, Contract
from config.api import CurrencyField, ModelCheckedSerializer, ModelPermissions, money_fields


class ClientSerializer(ModelCheckedSerializer):
    currency = CurrencyField(required=False)
    invoice_emails = serializers.ListField(child=serializers.EmailField(), required=False,
                                          help_text="Addresses that receive invoice previews and invoices.")

    class Meta:
        model = Client
        fields = ["id", "code", "name", "currency", "billing_period", "consolidation", "line_grouping",
                  "payment_terms_days", "tax_rate", "invoice_emails", "include_time_detail", "address",
                  "is_active", "created_at", "updated_at"]
        extra_kwargs = {"tax_rate": {"min_value": 0, "max_value": 100, "help_text": "Percent, e.g. 20.00."}}


class ClientFilter(filters.FilterSet):
    class Meta:
        model = Client
        fields = ["code", "currency", "billing_period", "is_active"]


class ClientViewSet(viewsets.ModelViewSet):
    queryset = Client.objects.all()
    serializer_class = ClientSerializer
    permission_classes = [ModelPermissions]
    filterset_class = ClientFilter


class ContactSerializer(ModelCheckedSerializer):
    class Meta:
        model = Contact
        fields = ["id", "client", "name", "email", "receives_weekly_summary", "receives_invoices"]


class ContactFilter(filters.FilterSet):
    class Meta:
        model = Contact
        fields = ["client", "email", "receives_weekly_summary", "receives_invoices"]


class ContactViewSet(viewsets.ModelViewSet):
    queryset = Contact.objects.all()
    serializer_class = ContactSerializer
    permission_classes = [ModelPermissions]
    filterset_class = ContactFilter


class ContractSerializer(ModelCheckedSerializer):
    currency = CurrencyField(required=False, help_text="Defaults to the client's currency.")
    cap_amount_currency = CurrencyField(required=False, allow_null=True)
    monthly_spend_limit_currency = CurrencyField(required=False, allow_null=True)
    auto_approve_max_amount_currency = CurrencyField(required=False, allow_null=True)
    fixed_fee_amount_currency = CurrencyField(required=False, allow_null=True)
    retainer_amount_currency = CurrencyField(required=False, allow_null=True)

    class Meta:
        model = Contract
        fields = ["id", "client", "number", "billing_type", "currency", "start_date", "end_date", "status",
                  "rounding_increment", "rounding_mode", "cap_hours", *money_fields("cap_amount"), "cap_period",
                  *money_fields("monthly_spend_limit", "auto_approve_max_amount"), "auto_approve_max_minutes",
                  "budget_review_percent", *money_fields("fixed_fee_amount"), "fixed_fee_schedule",
                  *money_fields("retainer_amount"), "retainer_hours", "review_window_days", "auto_finalize",
                  "created_at", "updated_at"]
        extra_kwargs = {
            "cap_hours": {"min_value": Decimal("0.01")},
            "retainer_hours": {"min_value": 0},
            "budget_review_percent": {"max_value": 1000},
        }

    def _contract_currency(self, attrs: dict) -> str:
        if "currency" in attrs:
            return attrs["currency"]
        if self.instance is not None:
            return self.instance.currency
        client = attrs.get("client")
        return client.currency if client is not None else settings.DEFAULT_CURRENCY

    def money_currency(self, name: str, attrs: dict) -> str:
        # Every amount of a contract is in the contract's currency.
        return self._contract_currency(attrs)

    def validate(self, attrs):
        if self.instance is None:
            attrs.setdefault("currency", self._contract_currency(attrs))
        return super().validate(attrs)

    def rule_errors(self, attrs):
        errors = super().rule_errors(attrs)
        cap = attrs.get("cap_amount")
        if cap is not None and cap.amount <= 0:
            errors["cap_amount"] = ["A cap must be more than zero."]
        return errors


class ContractFilter(filters.FilterSet):
    class Meta:
        model = Contract
        fields = ["client", "number", "status", "billing_type", "currency"]


# The terms that rating and approval routing read: changing one re-rates the contract's entries not yet
# invoiced (a person's approval decision stands; invoiced entries keep what they were billed at).
RATING_TERMS = ("billing_type", "currency", "start_date", "end_date", "rounding_increment", "rounding_mode",
                "cap_hours", "cap_amount", "cap_period", "monthly_spend_limit", "auto_approve_max_amount",
                "auto_approve_max_minutes", "budget_review_percent", "retainer_amount", "retainer_hours")


class ContractViewSet(viewsets.ModelViewSet):
    queryset = Contract.objects.all()
    serializer_class = ContractSerializer
    permission_classes = [ModelPermissions]
    filterset_class = ContractFilter

    @transaction.atomic
    def perform_update(self, serializer):
        before = [getattr(serializer.instance, name) for name in RATING_TERMS]
        contract = serializer.save()
        if before != [getattr(contract, name) for name in RATING_TERMS]:
            # A term can change any entry's outcome (caps and retainers count from the first entry on).
            queue_reprocessing(contract_ids=[contract.id], from_date=None)
