"""REST API v1 reports (docs/API.md): reports/utilization/, profitability/, budgets/, time-to-invoice/,
billing-accuracy/ and wip/. Read-only, for finance and management (projects.view_reports).

Every report takes `start`, `end` (YYYY-MM-DD; by default the current month and the two before it) and
the filters `client`, `project`, `member`, `role` (ids); some take `group_by`. Rows come paginated like
every list of the API, with the range and grouping echoed. The figures are defined in the docstrings of
reports.selectors.
"""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from clients.models import Client
from config.api import Pagination
from projects.models import Project, Role, TeamMember
from reports.scope import MAX_RANGE_DAYS, ReportScope, default_range
from reports.selectors import (
    billing_accuracy,
    budget_health,
    profitability,
    time_to_invoice,
    utilization,
    wip,
)

HOURS = {"max_digits": 12, "decimal_places": 2}
MONEY = {"max_digits": 14, "decimal_places": 2}
PERCENT = {"max_digits": 7, "decimal_places": 1}


class CanViewReports(permissions.BasePermission):
    message = "Management reports are for finance and management."

    def has_permission(self, request, view):
        return request.user.has_perm("projects.view_reports")


class ReportFilterSerializer(serializers.Serializer):
    start = serializers.DateField(
        required=False, help_text="First day (inclusive); default: 1st of the month two months ago."
    )
    end = serializers.DateField(required=False, help_text="Last day (inclusive); default: today.")
    client = serializers.PrimaryKeyRelatedField(queryset=Client.objects.all(), required=False)
    project = serializers.PrimaryKeyRelatedField(queryset=Project.objects.all(), required=False)
    member = serializers.PrimaryKeyRelatedField(queryset=TeamMember.objects.all(), required=False)
    role = serializers.PrimaryKeyRelatedField(queryset=Role.objects.all(), required=False)

    def validate(self, attrs):
        default_start, default_end = default_range(timezone.localdate())
        attrs.setdefault("start", default_start)
        attrs.setdefault("end", default_end)
        if attrs["end"] < attrs["start"]:
            raise serializers.ValidationError({"end": ["The range cannot end before it starts."]})
        if (attrs["end"] - attrs["start"]).days > MAX_RANGE_DAYS:
            raise serializers.ValidationError(
                {"start": [f"Choose a range of at most {MAX_RANGE_DAYS} days."]}
            )
        return attrs

    def scope(self) -> ReportScope:
        data = self.validated_data
        return ReportScope(
            start=data["start"],
            end=data["end"],
            client_id=data["client"].pk if data.get("client") else None,
            project_id=data["project"].pk if data.get("project") else None,
            member_id=data["member"].pk if data.get("member") else None,
            role_id=data["role"].pk if data.get("role") else None,
        )


def _filters_with_grouping(name: str, groupings: tuple[str, ...]) -> type[ReportFilterSerializer]:
    return type(
        name,
        (ReportFilterSerializer,),
        {
            "group_by": serializers.ChoiceField(choices=groupings, default=groupings[0], required=False),
        },
    )


class GroupedRowSerializer(serializers.Serializer):
    """Rows whose id field is named after the grouping (`member`, `role`, `project`, `client`, `month`)."""

    id_fields: tuple[str, ...] = ()

    @property
    def _readable_fields(self):
        group_by = self.context.get("group_by")
        for field in super()._readable_fields:
            if field.field_name not in self.id_fields or field.field_name == group_by:
                yield field


class UtilizationRowSerializer(GroupedRowSerializer):
    id_fields = ("member", "role")
    member = serializers.IntegerField(source="key", required=False, help_text="With group_by=member.")
    role = serializers.IntegerField(source="key", required=False, help_text="With group_by=role.")
    name = serializers.CharField()
    members = serializers.IntegerField(help_text="Members whose capacity counts.")
    capacity_hours = serializers.DecimalField(**HOURS)
    logged_hours = serializers.DecimalField(**HOURS)
    billable_hours = serializers.DecimalField(**HOURS)
    billable_utilization = serializers.DecimalField(
        **PERCENT, allow_null=True, help_text="Billable hours / capacity hours, percent."
    )


class ProfitabilityRowSerializer(GroupedRowSerializer):
    id_fields = ("project", "client")
    project = serializers.IntegerField(
        source="key",
        required=False,
        allow_null=True,
        help_text="With group_by=project; null for contract fees not tied to one project.",
    )
    client = serializers.IntegerField(source="key", required=False, help_text="With group_by=client.")
    code = serializers.CharField()
    name = serializers.CharField()
    client_name = serializers.CharField()
    currency = serializers.CharField()
    hours = serializers.DecimalField(**HOURS)
    billable_hours = serializers.DecimalField(**HOURS)
    revenue = serializers.DecimalField(**MONEY, help_text="invoiced + unbilled, in `currency`.")
    invoiced = serializers.DecimalField(**MONEY)
    unbilled = serializers.DecimalField(**MONEY)
    fees = serializers.DecimalField(**MONEY)
    cost = serializers.DecimalField(**MONEY, allow_null=True)
    cost_currency = serializers.CharField()
    margin = serializers.DecimalField(
        **MONEY, allow_null=True, help_text="Null when the cost is in another currency than the revenue."
    )
    margin_percent = serializers.DecimalField(**PERCENT, allow_null=True)
    effective_rate = serializers.DecimalField(**MONEY, allow_null=True, help_text="Revenue per hour.")


class ReportBudgetAlertSerializer(serializers.Serializer):
    kind = serializers.CharField()
    threshold = serializers.IntegerField()
    message = serializers.CharField()
    created_at = serializers.DateTimeField()


class BudgetRowSerializer(serializers.Serializer):
    project = serializers.IntegerField(source="project.id")
    code = serializers.CharField(source="project.code")
    name = serializers.CharField(source="project.name")
    client = serializers.IntegerField(source="project.client_id")
    currency = serializers.CharField(source="project.contract.currency")
    budget_hours = serializers.DecimalField(source="project.budget_hours", **HOURS, allow_null=True)
    budget_amount = serializers.DecimalField(source="project.budget_amount.amount", **MONEY, allow_null=True)
    hours_used = serializers.DecimalField(source="budget.hours_used", **HOURS, allow_null=True)
    amount_used = serializers.DecimalField(source="budget.amount_used", **MONEY, allow_null=True)
    percent_used = serializers.DecimalField(**PERCENT, allow_null=True)
    burn_rate_weekly_hours = serializers.DecimalField(
        source="budget.burn_weekly_hours", **HOURS, allow_null=True
    )
    burn_rate_weekly_amount = serializers.DecimalField(
        source="budget.burn_weekly_amount", **MONEY, allow_null=True
    )
    forecast_run_out = serializers.DateField(source="budget.forecast_run_out", allow_null=True)
    hours_in_range = serializers.DecimalField(**HOURS)
    revenue = serializers.DecimalField(source="budget.revenue", **MONEY, allow_null=True)
    cost = serializers.DecimalField(source="budget.cost", **MONEY, allow_null=True)
    margin = serializers.DecimalField(source="budget.margin", **MONEY, allow_null=True)
    margin_percent = serializers.DecimalField(source="budget.margin_percent", **PERCENT, allow_null=True)
    alerts = ReportBudgetAlertSerializer(many=True, help_text="The latest alerts, newest first.")


class TimeToInvoiceRowSerializer(GroupedRowSerializer):
    id_fields = ("month", "client")
    month = serializers.DateField(
        source="key", required=False, help_text="First day of the month of finalization (group_by=month)."
    )
    client = serializers.IntegerField(source="key", required=False, help_text="With group_by=client.")
    name = serializers.CharField()
    entries = serializers.IntegerField()
    mean_days = serializers.DecimalField(**PERCENT, allow_null=True)
    median_days = serializers.DecimalField(**PERCENT, allow_null=True)
    p90_days = serializers.DecimalField(**PERCENT, allow_null=True, help_text="90th percentile.")


class AccuracyRowSerializer(GroupedRowSerializer):
    id_fields = ("month", "client")
    month = serializers.DateField(source="key", required=False, help_text="First day of the month of issue.")
    client = serializers.IntegerField(source="key", required=False)
    name = serializers.CharField()
    currency = serializers.CharField()
    lines = serializers.IntegerField()
    invoiced = serializers.DecimalField(**MONEY)
    disputed = serializers.DecimalField(**MONEY)
    credited = serializers.DecimalField(**MONEY)
    accurate = serializers.DecimalField(**MONEY)
    accuracy = serializers.DecimalField(
        **PERCENT, allow_null=True, help_text="Share of the invoiced amount neither disputed nor credited."
    )


class WipBucketSerializer(serializers.Serializer):
    age = serializers.CharField(source="label", help_text="Days since the work: 0-30, 31-60, 61-90, 90+.")
    hours = serializers.DecimalField(**HOURS)
    amount = serializers.DecimalField(**MONEY)
    entries = serializers.IntegerField()


class WipRowSerializer(serializers.Serializer):
    client = serializers.IntegerField(source="key")
    name = serializers.CharField()
    currency = serializers.CharField()
    buckets = WipBucketSerializer(many=True)
    hours = serializers.DecimalField(**HOURS)
    amount = serializers.DecimalField(**MONEY)
    on_drafts = serializers.DecimalField(**MONEY, help_text="Of the amount, what waits on draft invoices.")


def _page_serializer(name: str, rows: type[serializers.Serializer]) -> type[serializers.Serializer]:
    return type(
        name,
        (serializers.Serializer,),
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "start": serializers.DateField(),
            "end": serializers.DateField(),
            "group_by": serializers.CharField(allow_null=True),
            "results": rows(many=True),
        },
    )


class ReportApi(APIView):
    """GET one report: validate the filters, call the selector, paginate its rows."""

    permission_classes = [permissions.IsAuthenticated, CanViewReports]
    filters_class: type[ReportFilterSerializer] = ReportFilterSerializer
    row_serializer: type[serializers.Serializer]

    def rows(self, scope: ReportScope, group_by: str | None):
        raise NotImplementedError

    def get(self, request):
        filters = self.filters_class(data=request.query_params)
        filters.is_valid(raise_exception=True)
        group_by = filters.validated_data.get("group_by")
        scope = filters.scope()
        rows = list(self.rows(scope, group_by))
        paginator = Pagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        results = self.row_serializer(page, many=True, context={"group_by": group_by}).data
        return Response(
            {
                "count": paginator.page.paginator.count,
                "next": paginator.get_next_link(),
                "previous": paginator.get_previous_link(),
                "start": scope.start,
                "end": scope.end,
                "group_by": group_by,
                "results": results,
            }
        )


def _report(name: str, filters, rows, summary: str):
    return extend_schema(
        parameters=[filters],
        responses=_page_serializer(f"{name}ReportPage", rows),
        summary=summary,
        tags=["reports"],
    )


UtilizationFilters = _filters_with_grouping("UtilizationFilters", ("member", "role", "firm"))
ProfitabilityFilters = _filters_with_grouping("ProfitabilityFilters", ("project", "client"))
TimeToInvoiceFilters = _filters_with_grouping("TimeToInvoiceFilters", ("month", "client"))
AccuracyFilters = _filters_with_grouping("AccuracyFilters", ("month", "client", "currency"))


class UtilizationReportApi(ReportApi):
    filters_class = UtilizationFilters
    row_serializer = UtilizationRowSerializer

    @_report(
        "Utilization",
        UtilizationFilters,
        UtilizationRowSerializer,
        "Capacity, logged and billable hours, utilization",
    )
    def get(self, request):
        return super().get(request)

    def rows(self, scope, group_by):
        return utilization(scope=scope, group_by=group_by)


class ProfitabilityReportApi(ReportApi):
    filters_class = ProfitabilityFilters
    row_serializer = ProfitabilityRowSerializer

    @_report(
        "Profitability",
        ProfitabilityFilters,
        ProfitabilityRowSerializer,
        "Revenue, cost and margin per project or client",
    )
    def get(self, request):
        return super().get(request)

    def rows(self, scope, group_by):
        return profitability(scope=scope, group_by=group_by)


class BudgetsReportApi(ReportApi):
    row_serializer = BudgetRowSerializer

    @_report(
        "Budgets",
        ReportFilterSerializer,
        BudgetRowSerializer,
        "Active projects' budget use, burn, run-out, alerts",
    )
    def get(self, request):
        return super().get(request)

    def rows(self, scope, group_by):
        return budget_health(scope=scope)


class TimeToInvoiceReportApi(ReportApi):
    filters_class = TimeToInvoiceFilters
    row_serializer = TimeToInvoiceRowSerializer

    @_report(
        "TimeToInvoice",
        TimeToInvoiceFilters,
        TimeToInvoiceRowSerializer,
        "Days from work to invoice: median and p90",
    )
    def get(self, request):
        return super().get(request)

    def rows(self, scope, group_by):
        return time_to_invoice(scope=scope, group_by=group_by)


class BillingAccuracyReportApi(ReportApi):
    filters_class = AccuracyFilters
    row_serializer = AccuracyRowSerializer

    @_report(
        "BillingAccuracy",
        AccuracyFilters,
        AccuracyRowSerializer,
        "Share of invoiced amount neither disputed nor credited",
    )
    def get(self, request):
        return super().get(request)

    def rows(self, scope, group_by):
        return billing_accuracy(scope=scope, group_by=group_by)


class WipReportApi(ReportApi):
    row_serializer = WipRowSerializer

    @_report("Wip", ReportFilterSerializer, WipRowSerializer, "Unbilled work by client and age")
    def get(self, request):
        return super().get(request)

    def rows(self, scope, group_by):
        return wip(scope=scope)
