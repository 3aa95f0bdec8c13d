"""REST API v1 for rates (invoices and billing runs come later)."""

from django.db.models import Q
from django_filters import rest_framework as filters
from rest_framework import serializers, viewsets

from billing.models import Rate
from config.api import CurrencyField, ModelCheckedSerializer, ModelPermissions, money_fields

SCOPE_FIELDS = ("project", "member", "role", "task_type")


class RateSerializer(ModelCheckedSerializer):
    hourly_rate_currency = CurrencyField(required=False, help_text="Defaults to the contract's currency.")
    level = serializers.IntegerField(read_only=True, help_text=(
        "Precedence: 1 member and task type, 2 member, 3 role and task type, 4 task type, 5 role, "
        "6 contract default; the lowest level with a candidate wins."))

    class Meta:
        model = Rate
        fields = ["id", "contract", *SCOPE_FIELDS, *money_fields("hourly_rate"), "effective_from", "effective_to",
                  "level"]
        extra_kwargs = {"effective_to": {"help_text": "Inclusive; empty means open-ended."}}

    def _value(self, attrs: dict, name: str):
        return attrs[name] if name in attrs else getattr(self.instance, name, None)

    def money_currency(self, name, attrs):
        # Rates are per hour in the contract's currency.
        return self._value(attrs, "contract").currency

    def rule_errors(self, attrs):
        errors = super().rule_errors(attrs)
        contract = self._value(attrs, "contract")
        starts, ends = self._value(attrs, "effective_from"), self._value(attrs, "effective_to")
        if starts and ends and ends < starts:
            errors["effective_to"] = ["The rate cannot end before it starts."]
        if self._value(attrs, "member") and self._value(attrs, "role"):
            errors["role"] = ["A rate is for a member or for a role, not both."]
        project = self._value(attrs, "project")
        if project is not None and project.contract_id != contract.id:
            errors["project"] = [f"Project {project.code} is not under contract {contract.number}."]
        rate = attrs.get("hourly_rate")
        if rate is not None and "hourly_rate" not in errors and str(rate.currency) != contract.currency:
            errors["hourly_rate"] = [f"Must be in the contract currency {contract.currency}, not {rate.currency}."]
        if not errors and starts and self._overlapping(attrs, contract, starts, ends):
            errors["effective_from"] = ["Another rate of this contract with the same scope is in effect "
                                        "in this period: two candidates at one level would be ambiguous."]
        return errors

    def _overlapping(self, attrs, contract, starts, ends) -> bool:
        # The same scope: a null scope field matches only null, a set one only the same object.
        same_scope = {}
        for name in SCOPE_FIELDS:
            value = self._value(attrs, name)
            same_scope.update({f"{name}__isnull": True} if value is None else {name: value})
        rates = Rate.objects.filter(contract=contract, **same_scope).filter(
            Q(effective_to__isnull=True) | Q(effective_to__gte=starts))
        if ends is not None:
            rates = rates.filter(effective_from__lte=ends)
        if self.instance is not None:
            rates = rates.exclude(pk=self.instance.pk)
        return rates.exists()


class RateFilter(filters.FilterSet):
    effective_on = filters.DateFilter(method="filter_effective_on", help_text="Rates in effect on this day.")

    class Meta:
        model = Rate
        fields = ["contract", *SCOPE_FIELDS, "effective_on"]

    def filter_effective_on(self, queryset, name, day):
        return queryset.filter(Q(effective_to__isnull=True) | Q(effective_to__gte=day), effective_from__lte=day)


class RateViewSet(viewsets.ModelViewSet):
    queryset = Rate.objects.all()
    serializer_class = RateSerializer
    permission_classes = [ModelPermissions]
    filterset_class = RateFilter
