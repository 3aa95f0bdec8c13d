"""REST API v1 for roles, team members, task types, projects and time entries.

Time entries are written only through `billing.pipeline.ingest`, like every other way time comes in.
"""

import functools
import zoneinfo
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone
from django_filters import rest_framework as filters
from djmoney.contrib.django_rest_framework import MoneyField as MoneySerializerField
from djmoney.money import Money
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema, extend_schema_view
from rest_framework import exceptions, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.fields import SerializerMethodField
from rest_framework.relations import PrimaryKeyRelatedField
from rest_framework.response import Response
from rest_framework.settings import ISO_8601, api_settings

from billing.models import Allocation
from billing.pipeline import TimeEntryInput, ingest
from clients.models import Client
from config.api import (
    MAX_ID,
    CurrencyField,
    IdFilter,
    ModelCheckedSerializer,
    ReadAnyWriteModelPermissions,
    money_fields,
)
from projects.access import managed_project_ids
from projects.models import (
    BudgetAlert,
    EntrySource,
    Project,
    ProjectBudget,
    Role,
    TaskType,
    TeamMember,
    TimeEntry,
)
from projects.services import member_create, member_delete, member_update
from projects.time_capture import time_entry_delete

# Cost rates, costs and budgets are the firm's own figures: only finance and management see them
# (and a project manager the budget of their own project). Others get the field as null.
SEES_MONEY = "projects.view_project_budgets"


def _sees_money(serializer) -> bool:
    request = serializer.context.get("request")
    return request is None or request.user.has_perm(SEES_MONEY)


def _hide(data: dict, names: tuple[str, ...]) -> dict:
    for name in names:
        data[name] = None
    return data


# Roles


class RoleSerializer(ModelCheckedSerializer):
    default_cost_rate_currency = CurrencyField(required=False)

    class Meta:
        model = Role
        fields = ["id", "code", "name", *money_fields("default_cost_rate")]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        return data if _sees_money(self) else _hide(data, ("default_cost_rate", "default_cost_rate_currency"))


class RoleViewSet(viewsets.ModelViewSet):
    queryset = Role.objects.all()
    serializer_class = RoleSerializer
    permission_classes = [ReadAnyWriteModelPermissions]
    filterset_fields = ["code"]


# Team members


class TeamMemberSerializer(ModelCheckedSerializer):
    cost_rate_currency = CurrencyField(required=False, allow_null=True)

    class Meta:
        model = TeamMember
        fields = ["id", "email", "name", "role", *money_fields("cost_rate"), "weekly_capacity_hours",
                  "time_zone", "is_active"]
        extra_kwargs = {
            "cost_rate": {"help_text": "Hourly cost to the firm; empty means the role's default."},
            "weekly_capacity_hours": {"min_value": 0, "max_value": 168},
        }

    def validate_email(self, email: str) -> str:
        users = get_user_model().objects.filter(username__iexact=email)
        if self.instance is not None:
            users = users.exclude(pk=self.instance.user_id)
        if users.exists():
            raise serializers.ValidationError("A user with this email address already exists.")
        return email

    def validate_time_zone(self, name: str) -> str:
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise serializers.ValidationError(f"{name!r} is not a known time zone (e.g. Europe/Berlin).") from None
        return name

    def create(self, validated_data):
        return member_create(**validated_data)

    def update(self, instance, validated_data):
        return member_update(member=instance, changes=validated_data)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        return data if _sees_money(self) else _hide(data, ("cost_rate", "cost_rate_currency"))


class TeamMemberFilter(filters.FilterSet):
    class Meta:
        model = TeamMember
        fields = ["email", "role", "is_active"]


class TeamMemberViewSet(viewsets.ModelViewSet):
    queryset = TeamMember.objects.all()
    serializer_class = TeamMemberSerializer
    permission_classes = [ReadAnyWriteModelPermissions]
    filterset_class = TeamMemberFilter

    def get_queryset(self):
        user = self.request.user
        if user.has_perm("projects.view_teammember"):
            return TeamMember.objects.all()
        # Everyone else sees only themselves.
        return TeamMember.objects.filter(user_id=user.id)

    def perform_destroy(self, instance):
        member_delete(member=instance)


# Task types


class TaskTypeSerializer(ModelCheckedSerializer):
    class Meta:
        model = TaskType
        fields = ["id", "code", "name", "billable", "is_default"]


class TaskTypeViewSet(viewsets.ModelViewSet):
    queryset = TaskType.objects.all()
    serializer_class = TaskTypeSerializer
    permission_classes = [ReadAnyWriteModelPermissions]
    filterset_fields = ["code", "billable", "is_default"]


# Projects


class ProjectSerializer(ModelCheckedSerializer):
    client = serializers.PrimaryKeyRelatedField(queryset=Client.objects.all(), required=False,
                                                help_text="Defaults to the contract's client.")
    budget_amount_currency = CurrencyField(required=False, allow_null=True)
    alert_thresholds = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=1000), required=False,
        help_text="Budget percentages that raise an alert, e.g. [50, 75, 90, 100].",
    )

    BUDGET_FIELDS = ("budget_hours", "budget_amount", "budget_amount_currency")

    class Meta:
        model = Project
        fields = ["id", "client", "contract", "code", "name", "manager", "billable", "start_date", "end_date",
                  "budget_hours", *money_fields("budget_amount"), "alert_thresholds", "status",
                  "created_at", "updated_at"]
        extra_kwargs = {"budget_hours": {"min_value": 0}}

    def money_currency(self, name, attrs):
        # A project's budget is in its contract's currency.
        contract = attrs.get("contract") or self.instance.contract
        return contract.currency

    def validate(self, attrs):
        if self.instance is None and "client" not in attrs and attrs.get("contract") is not None:
            attrs["client"] = attrs["contract"].client
        return super().validate(attrs)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if _sees_money(self) or instance.id in self._managed_ids():
            return data
        return _hide(data, self.BUDGET_FIELDS)

    def _managed_ids(self) -> set[int]:
        # Looked up once per response, not once per project (the context is shared by a list's rows).
        if "managed_project_ids" not in self.context:
            self.context["managed_project_ids"] = managed_project_ids(self.context["request"].user)
        return self.context["managed_project_ids"]


class ProjectFilter(filters.FilterSet):
    class Meta:
        model = Project
        fields = ["client", "contract", "manager", "code", "status", "billable"]


class BudgetAlertSerializer(serializers.ModelSerializer):
    class Meta:
        model = BudgetAlert
        fields = ["kind", "threshold", "percent_used", "message", "created_at"]
        read_only_fields = fields


class ProjectBudgetSerializer(serializers.Serializer):
    """The figures the pipeline keeps for a project; amounts in the contract's currency."""

    project = serializers.IntegerField(source="project_id")
    currency = serializers.CharField()
    hours_used = serializers.DecimalField(max_digits=12, decimal_places=2)
    amount_used = serializers.DecimalField(max_digits=14, decimal_places=2)
    remaining_hours = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    remaining_amount = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    percent_used = serializers.DecimalField(max_digits=7, decimal_places=1, allow_null=True)
    burn_rate_weekly_amount = serializers.DecimalField(source="burn_weekly_amount", max_digits=14,
                                                       decimal_places=2)
    burn_rate_weekly_hours = serializers.DecimalField(source="burn_weekly_hours", max_digits=12, decimal_places=2)
    forecast_run_out = serializers.DateField(allow_null=True)
    revenue = serializers.DecimalField(max_digits=14, decimal_places=2)
    cost = serializers.DecimalField(max_digits=14, decimal_places=2)
    cost_currency = serializers.CharField(help_text="Empty until time with a cost is logged.")
    margin = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True,
                                      help_text="Null when costs are in another currency than the contract.")
    margin_percent = serializers.DecimalField(max_digits=7, decimal_places=1, allow_null=True)
    alerts = BudgetAlertSerializer(source="project.budget_alerts", many=True)
    refreshed_at = serializers.DateTimeField(allow_null=True)


class ProjectViewSet(viewsets.ModelViewSet):
    queryset = Project.objects.all()
    serializer_class = ProjectSerializer
    permission_classes = [ReadAnyWriteModelPermissions]
    filterset_class = ProjectFilter

    @extend_schema(responses=ProjectBudgetSerializer)
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def budget(self, request, pk=None):
        """Budget use, burn, forecast, profitability and alerts: for finance, management and the manager."""
        project = self.get_object()
        if not request.user.has_perm(SEES_MONEY) and project.id not in managed_project_ids(request.user):
            raise exceptions.PermissionDenied("Only finance, management and the project's manager see its budget.")
        # No row yet means nothing has been processed for the project: every figure is zero.
        budget = ProjectBudget.objects.filter(project=project).first() \
            or ProjectBudget(project=project, currency=project.contract.currency)
        budget.project = project
        return Response(ProjectBudgetSerializer(budget).data)


# Time entries


class TimeEntryWriteSerializer(serializers.Serializer):
    """One entry as a caller logs it. Ids are checked by the pipeline, in one batch, with its messages."""

    member = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_ID,
                                      help_text="Defaults to the caller.")
    project = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    task_type = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    work_date = serializers.DateField()
    minutes = serializers.IntegerField(help_text="Whole minutes: more than 0, at most 24 hours a day.")
    description = serializers.CharField(allow_blank=True, default="")
    billable = serializers.BooleanField(default=True)
    external_id = serializers.CharField(
        max_length=128, required=False,
        help_text="Your id for the entry: posting it again updates the same entry. Generated when left out.",
    )
    started_at = serializers.DateTimeField(required=False, allow_null=True)
    stopped_at = serializers.DateTimeField(required=False, allow_null=True)


# Serializer field -> TimeEntryInput attribute, for the facts a caller may give.
INPUT_ATTRIBUTES = {"member": "member_id", "project": "project_id", "task_type": "task_type_id",
                    "work_date": "work_date", "minutes": "minutes", "description": "description",
                    "billable": "billable", "external_id": "external_id", "started_at": "started_at",
                    "stopped_at": "stopped_at"}


def _entry_input(given: dict, *, defaults: dict) -> TimeEntryInput:
    values = dict(defaults)
    for name, value in given.items():
        if name == "member" and value is None:
            continue
        values[INPUT_ATTRIBUTES[name]] = value
    return TimeEntryInput(**values)


def _in_input_order(errors: dict, count: int) -> list[dict] | dict:
    """DRF keys a list's errors by item index; the API answers a list with one error object per item."""
    if not all(isinstance(key, int) for key in errors):
        return errors  # about the body as a whole: empty, too long
    return [errors.get(index, {}) for index in range(count)]


def with_live_invoice(entries: QuerySet) -> QuerySet:
    """Entries annotated with `live_invoice_id`: one subquery for the whole page, not a query per entry.

    The database allows one live allocation per entry, so the first one found is the only one.
    """
    live = Allocation.objects.filter(time_entry=OuterRef("pk"), is_live=True).values("line__invoice_id")[:1]
    return entries.annotate(live_invoice_id=Subquery(live))


def _stored_facts(entry: TimeEntry) -> dict:
    return {attribute: getattr(entry, attribute) for attribute in INPUT_ATTRIBUTES.values()}


class TimeEntrySerializer(serializers.ModelSerializer):
    rate_currency = CurrencyField(read_only=True)
    amount_currency = CurrencyField(read_only=True)
    cost_amount_currency = CurrencyField(read_only=True)
    approval_reasons = serializers.SerializerMethodField()
    invoice = serializers.IntegerField(
        source="live_invoice_id", read_only=True, allow_null=True,
        help_text="The invoice (draft or issued) that bills the entry now; null while it is not billed.",
    )

    COST_FIELDS = ("cost_amount", "cost_amount_currency")

    class Meta:
        model = TimeEntry
        fields = ["id", "member", "project", "task_type", "work_date", "minutes", "description", "billable",
                  "external_id", "started_at", "stopped_at", "source", "status", "billable_minutes",
                  "over_cap_minutes", *money_fields("rate", "amount", "cost_amount"), "rate_rule",
                  "billability_reason", "approval_reasons", "invoice", "conflict", "created_at", "updated_at"]
        read_only_fields = fields

    def get_approval_reasons(self, entry) -> list[str]:
        try:
            return list(entry.approval.reasons)
        except ObjectDoesNotExist:
            return []

    def to_representation(self, instance):
        # The same values DRF's field-by-field walk gives (tests compare the two byte for byte), at a
        # fraction of its cost: a page lists 50 entries of 26 fields each.
        data = {name: represent(self, instance) for name, represent in _entry_row_plan()}
        return data if self._sees_money() else _hide(data, self.COST_FIELDS)

    def _sees_money(self) -> bool:
        # Asked once per response, not once per row (a list's rows share the serializer).
        if not hasattr(self, "_money_visible"):
            self._money_visible = _sees_money(self)
        return self._money_visible

    def output_time_zone(self):
        """The zone DRF renders date-times in, or None when its own (slower) path must decide."""
        if not hasattr(self, "_output_time_zone"):
            iso = str(api_settings.DATETIME_FORMAT).lower() == ISO_8601
            self._output_time_zone = timezone.get_current_timezone() if iso and settings.USE_TZ else None
        return self._output_time_zone


def _represent_attribute(field: serializers.Field):
    """DRF's rule for a plain attribute: None stays None, anything else goes through the field."""
    source, to_representation = field.source, field.to_representation

    def represent(serializer, entry):
        value = getattr(entry, source)
        return None if value is None else to_representation(value)
    return represent


def _represent_related_id(field: serializers.Field):
    # The stored id, as DRF's primary-key optimisation gives it, without building a stand-in object.
    attname = TimeEntry._meta.get_field(field.source).attname

    def represent(serializer, entry):
        return getattr(entry, attname)
    return represent


def _represent_money(field: serializers.Field):
    # The amount as stored (a Decimal) unless something already made a Money of it: reading the model
    # attribute would build a Money per value only for the amount to be taken out again.
    name, to_representation = field.source, field.to_representation

    def represent(serializer, entry):
        value = entry.__dict__[name]
        if value is None:
            return None
        return to_representation(value.amount if isinstance(value, Money) else value)
    return represent


def _represent_date_time(field: serializers.DateTimeField):
    # DRF's ISO rendering with the zone looked up once per response instead of once per value.
    source, fallback = field.source, field.to_representation

    def represent(serializer, entry):
        value = getattr(entry, source)
        if value is None:
            return None
        zone = serializer.output_time_zone()
        if zone is None or timezone.is_naive(value):
            return fallback(value)
        text = value.astimezone(zone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    return represent


def _represent_method(field: serializers.SerializerMethodField):
    method_name = f"get_{field.field_name}"

    def represent(serializer, entry):
        return getattr(serializer, method_name)(entry)
    return represent


@functools.cache
def _entry_row_plan() -> list[tuple[str, Callable]]:
    """(output name, how to get it) for each field of TimeEntrySerializer, in its order; built once.

    The fields come from the serializer itself, so the API's shape and formats stay defined in one place.
    """
    plan = []
    for name, field in TimeEntrySerializer().fields.items():
        if isinstance(field, SerializerMethodField):
            represent = _represent_method(field)
        elif isinstance(field, PrimaryKeyRelatedField):
            represent = _represent_related_id(field)
        elif isinstance(field, MoneySerializerField):
            represent = _represent_money(field)
        elif isinstance(field, serializers.DateTimeField) and getattr(field, "format", None) is None \
                and not hasattr(field, "timezone"):
            represent = _represent_date_time(field)
        else:
            represent = _represent_attribute(field)
        plan.append((name, represent))
    return plan


@functools.cache
def _entry_columns_shown() -> tuple[str, ...]:
    """The entry's own columns TimeEntrySerializer reads (money amounts with their currencies)."""
    sources = {field.source for field in TimeEntrySerializer().fields.values()}
    return tuple(field.attname for field in TimeEntry._meta.concrete_fields
                 if field.name in sources or field.attname in sources)


class TimeEntryFilter(filters.FilterSet):
    member = IdFilter()
    project = IdFilter()
    task_type = IdFilter()
    client = IdFilter(field_name="project__client")
    work_date = filters.DateFromToRangeFilter(help_text="work_date_after / work_date_before, inclusive.")
    start = filters.DateFilter(field_name="work_date", lookup_expr="gte", help_text="Same as work_date_after.")
    end = filters.DateFilter(field_name="work_date", lookup_expr="lte", help_text="Same as work_date_before.")

    class Meta:
        model = TimeEntry
        fields = ["member", "project", "task_type", "client", "status", "source", "billable", "external_id"]


class TimeEntryPermissions(permissions.IsAuthenticated):
    """Reading is for anyone signed in (the queryset limits what they see); logging needs log_time.

    A member changes and deletes their own entries; anyone else's need finance's permissions.
    """

    def has_permission(self, request, view):
        if not super().has_permission(request, view):
            return False
        return request.method in permissions.SAFE_METHODS or request.user.has_perm("projects.log_time")

    def has_object_permission(self, request, view, entry):
        if request.method in permissions.SAFE_METHODS:
            return True
        member = getattr(request.user, "member", None)
        if member is not None and entry.member_id == member.id:
            return True
        needed = "projects.delete_timeentry" if request.method == "DELETE" else "projects.change_timeentry"
        return request.user.has_perm(needed)


TIME_ENTRY_BATCH_LIMIT = 1000

_one_or_many_inputs = PolymorphicProxySerializer(
    component_name="TimeEntryWriteOneOrMany",
    serializers=[TimeEntryWriteSerializer, TimeEntryWriteSerializer(many=True)],
    resource_type_field_name=None,
    many=False,
)
_one_or_many_entries = PolymorphicProxySerializer(
    component_name="TimeEntryOneOrMany",
    serializers=[TimeEntrySerializer, TimeEntrySerializer(many=True)],
    resource_type_field_name=None,
    many=False,
)


@extend_schema_view(
    create=extend_schema(
        request=_one_or_many_inputs,
        responses={201: _one_or_many_entries, 200: _one_or_many_entries},
        description=(
            "Log one entry (an object) or several (a list, at most 1000): all are saved or none. "
            "An error answer has the shape of the body: field errors, or a list of them in input order "
            "(`{}` for a good item). Posting an `external_id` again updates that entry (200)."
        ),
    ),
    update=extend_schema(request=TimeEntryWriteSerializer, responses=TimeEntrySerializer),
    partial_update=extend_schema(request=TimeEntryWriteSerializer, responses=TimeEntrySerializer),
)
class TimeEntryViewSet(viewsets.ModelViewSet):
    serializer_class = TimeEntrySerializer
    queryset = TimeEntry.objects.all()
    permission_classes = [TimeEntryPermissions]
    filterset_class = TimeEntryFilter

    def get_queryset(self):
        # Another member's entry does not exist for a staff member (404, not 403).
        entries = TimeEntry.objects.visible_to(self.request.user).select_related("approval")
        if self.action == "list":
            # A page reads only what it shows: the approval's messages, notes and dates, the entry's
            # bookkeeping columns are neither fetched nor decoded for 50 rows.
            entries = entries.only(*_entry_columns_shown(), "approval__reasons")
        return with_live_invoice(entries)

    def _allowed_member_ids(self, member: TeamMember | None) -> set[int] | None:
        if self.request.user.has_perm("projects.change_timeentry"):
            return None
        return {member.id} if member is not None else set()

    def _ingest(self, inputs: list[TimeEntryInput], source: str, member: TeamMember | None):
        result = ingest(inputs, source, acting_user=self.request.user,
                        allowed_member_ids=self._allowed_member_ids(member), all_or_nothing=True)
        if result.rejected:
            errors: list[dict] = [{} for _ in inputs]
            for rejected in result.rejected:
                errors[rejected.index] = rejected.errors
            return result, errors
        # Read the entries back: later pipeline stages may have rated and routed them.
        ids = [result.by_index[index].id for index in range(len(inputs))]
        stored = with_live_invoice(TimeEntry.objects.select_related("approval")).in_bulk(ids)
        return result, [stored[entry_id] for entry_id in ids]

    def create(self, request, *args, **kwargs):
        member = getattr(request.user, "member", None)
        if member is None:
            raise exceptions.PermissionDenied("Only a team member can log time, and you are not one.")
        many = isinstance(request.data, list)
        options = {"many": True, "allow_empty": False, "max_length": TIME_ENTRY_BATCH_LIMIT} if many else {}
        write = TimeEntryWriteSerializer(data=request.data, **options)
        if not write.is_valid():
            raise exceptions.ValidationError(_in_input_order(write.errors, len(request.data)) if many
                                             else write.errors)
        given = write.validated_data if many else [write.validated_data]
        inputs = [_entry_input(item, defaults={"member_id": member.id}) for item in given]
        result, outcome = self._ingest(inputs, EntrySource.API, member)
        if result.rejected:
            raise exceptions.ValidationError(outcome if many else outcome[0])
        data = self.get_serializer(outcome, many=True).data
        return Response(data if many else data[0],
                        status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)

    def update(self, request, *args, **kwargs):
        entry = self.get_object()
        if not entry.is_editable:
            state = "in conflict with its source" if entry.conflict else entry.get_status_display().lower()
            raise exceptions.ValidationError(
                {api_settings.NON_FIELD_ERRORS_KEY: [f"This entry is {state} and can no longer be changed."]}
            )
        write = TimeEntryWriteSerializer(data=request.data, partial=kwargs.get("partial", False))
        write.is_valid(raise_exception=True)
        given = dict(write.validated_data)
        if given.get("external_id", entry.external_id) != entry.external_id:
            raise exceptions.ValidationError({"external_id": ["The external id of a stored entry cannot change."]})
        # Same source and external id: the pipeline updates this very row.
        item = _entry_input(given, defaults=_stored_facts(entry))
        result, outcome = self._ingest([item], entry.source, getattr(request.user, "member", None))
        if result.rejected:
            raise exceptions.ValidationError(outcome[0])
        return Response(self.get_serializer(outcome[0]).data)

    def perform_destroy(self, instance):
        time_entry_delete(entry=instance)
