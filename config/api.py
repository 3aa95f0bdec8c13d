"""The REST API's shared pieces: router, pagination, permissions, model-checked serializers, one error shape."""

import copy
from decimal import Decimal

from django import forms
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404
from django_filters import rest_framework as filters
from djmoney.contrib.django_rest_framework import register_money_field
from djmoney.models.fields import MoneyField
from djmoney.money import Money
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, pagination, permissions, serializers
from rest_framework.routers import DefaultRouter
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

# Money fields render as `"amount": "150.00"` with a sibling `amount_currency` (django-money's convention).
register_money_field()


class Pagination(pagination.PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def field_errors(error: DjangoValidationError) -> dict[str, list[str]]:
    """Django's error dict in DRF's shape: `__all__` becomes `non_field_errors`."""
    if not hasattr(error, "error_dict"):
        return {api_settings.NON_FIELD_ERRORS_KEY: error.messages}
    return {
        (api_settings.NON_FIELD_ERRORS_KEY if name == "__all__" else name): messages
        for name, messages in error.message_dict.items()
    }


def _protected_message(exc: ProtectedError | RestrictedError) -> str:
    blockers = exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects
    kinds = sorted({str(obj._meta.verbose_name_plural) for obj in blockers})
    return f"This cannot be deleted while {', '.join(kinds)} still refer to it."


def exception_handler(exc, context):
    """Domain errors raised by services become DRF's 400 field-error shape."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(field_errors(exc))
    elif isinstance(exc, ProtectedError | RestrictedError):
        # Deleting something still in use (a client with contracts, a role with members) is the
        # caller's mistake, not a server error.
        exc = exceptions.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: [_protected_message(exc)]})
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    return drf_exception_handler(exc, context)


class ModelPermissions(permissions.DjangoModelPermissions):
    """Reads need the model's view permission, writes its add/change/delete permission."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }


class ReadAnyWriteModelPermissions(ModelPermissions):
    """Any signed-in user reads (staff need the list to log time); writes need the model permission."""

    def has_permission(self, request, view):
        if request.method in permissions.SAFE_METHODS:
            return bool(request.user and request.user.is_authenticated)
        return super().has_permission(request, view)


# Ids are 64-bit integers in every database; a larger number is bad input, not a database error.
MAX_ID = 2**63 - 1


class IdFilter(filters.NumberFilter):
    """Filters by a related object's id without loading it: a staff member learns nothing from a miss."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


# The firm's currencies come from the environment, so the schema states the format, not a fixed enum.
@extend_schema_field({"type": "string", "pattern": "^[A-Z]{3}$",
                      "description": "ISO 4217 code of one of the firm's currencies."})
class CurrencyField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=settings.CURRENCY_CHOICES, **kwargs)


class ModelCheckedSerializer(serializers.ModelSerializer):
    """A model serializer that also runs the model's own rules (clean, constraints) before saving.

    Each money field takes its currency from the sibling `<name>_currency` value; when that is left
    out, `money_currency()` decides (subclasses answer with the contract's currency, for instance).
    """

    def money_fields(self) -> list[str]:
        return [field.name for field in self.Meta.model._meta.fields
                if isinstance(field, MoneyField) and field.name in self.fields]

    def money_currency(self, name: str, attrs: dict) -> str:
        """The currency of a money value given without one: the one it had, else the field's default."""
        current = getattr(self.instance, name, None) if self.instance is not None else None
        if current is not None:
            return str(current.currency)
        return self.Meta.model._meta.get_field(name).default_currency or settings.DEFAULT_CURRENCY

    def _attach_currencies(self, attrs: dict) -> dict:
        errors = {}
        for name in self.money_fields():
            currency_key = f"{name}_currency"
            currency = attrs.pop(currency_key, None)
            if name not in attrs:
                if currency is not None:
                    errors[name] = [f"Give the amount together with {currency_key}."]
                continue
            value = attrs[name]
            if value is None:
                continue
            amount = value.amount if isinstance(value, Money) else Decimal(value)
            attrs[name] = Money(amount, currency or self.money_currency(name, attrs))
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def rule_errors(self, attrs: dict) -> dict[str, list[str]]:
        """Rules worth a specific message before the model's own checks run (field name -> messages)."""
        # No amount in this domain is negative (rates, fees, caps, budgets).
        return {name: ["Must not be negative."] for name in self.money_fields()
                if attrs.get(name) is not None and attrs[name].amount < 0}

    def validate(self, attrs):
        attrs = self._attach_currencies(super().validate(attrs))
        errors = self.rule_errors(attrs)
        if errors:
            raise serializers.ValidationError(errors)
        # Validate a copy: the stored instance must not change when the request is refused.
        # (Django copies the related-object cache too, so the original keeps its relations.)
        candidate = self.Meta.model() if self.instance is None else copy.copy(self.instance)
        for name, value in attrs.items():
            setattr(candidate, name, value)
        managed = {field.source for field in self.fields.values() if not field.read_only}
        managed |= {f"{name}_currency" for name in self.money_fields()}
        exclude = [field.name for field in self.Meta.model._meta.fields if field.name not in managed]
        try:
            # Uniqueness is already checked by DRF's validators, with the same messages.
            candidate.full_clean(exclude=exclude, validate_unique=False)
        except DjangoValidationError as error:
            raise serializers.ValidationError(field_errors(error)) from None
        return attrs


def money_fields(*names: str) -> list[str]:
    """`cap_amount` -> `cap_amount`, `cap_amount_currency`: the API names of money values."""
    return [name for money in names for name in (money, f"{money}_currency")]


router = DefaultRouter()


def register_routes() -> None:
    """Every resource of API v1, in one place (see docs/API.md; the names are a promise)."""
    if router.registry:
        return
    from approvals.api import ApprovalRequestViewSet
    from billing.api import BillingRunViewSet, InvoiceViewSet, RateViewSet
    from clients.api import ClientViewSet, ContactViewSet, ContractViewSet
    from projects.api import ProjectViewSet, RoleViewSet, TaskTypeViewSet, TeamMemberViewSet, TimeEntryViewSet

    router.register("roles", RoleViewSet)
    router.register("members", TeamMemberViewSet)
    router.register("task-types", TaskTypeViewSet)
    router.register("clients", ClientViewSet)
    router.register("contacts", ContactViewSet)
    router.register("contracts", ContractViewSet)
    router.register("rates", RateViewSet)
    router.register("projects", ProjectViewSet)
    router.register("time-entries", TimeEntryViewSet)
    router.register("approvals", ApprovalRequestViewSet)
    router.register("invoices", InvoiceViewSet)
    router.register("billing-runs", BillingRunViewSet)
