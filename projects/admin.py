"""Admin for roles, team members, task types, projects and time entries.

Time entries are read-only here: every entry is created and changed through
`billing.pipeline.ingest` (portal, API, CSV, connectors), which validates, rates and routes it.
Editing rows in the admin would skip all of that, so the admin only lets people look, and delete
an entry that is still editable through the same service the portal uses.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count

from projects.models import BudgetAlert, Project, ProjectBudget, Role, TaskType, TeamMember, TimeEntry
from projects.time_capture import time_entry_delete


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "default_cost_rate", "member_count"]
    search_fields = ["name", "code"]
    prepopulated_fields = {"code": ["name"]}

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("members"))

    @admin.display(description="Members", ordering="member_count")
    def member_count(self, role: Role) -> int:
        return role.member_count


@admin.register(TeamMember)
class TeamMemberAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "role", "cost_rate", "weekly_capacity_hours", "time_zone", "access_roles",
                    "is_active"]
    list_select_related = ["role", "user"]
    list_filter = ["is_active", "role", "user__groups", "time_zone"]
    search_fields = ["name", "email", "user__username"]
    autocomplete_fields = ["user"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("user__groups")

    @admin.display(description="Access roles")
    def access_roles(self, member: TeamMember) -> str:
        names = sorted(group.name for group in member.user.groups.all())
        if member.user.is_superuser:
            names.insert(0, "superuser")
        return ", ".join(names) or "—"


class TaskTypeForm(forms.ModelForm):
    class Meta:
        model = TaskType
        fields = ["name", "code", "billable", "is_default"]

    def clean_is_default(self) -> bool:
        is_default = self.cleaned_data["is_default"]
        if is_default:
            current = TaskType.objects.filter(is_default=True).exclude(pk=self.instance.pk).first()
            if current is not None:
                raise ValidationError(f"{current.name} is the default task type; untick it there first.")
        return is_default


@admin.register(TaskType)
class TaskTypeAdmin(admin.ModelAdmin):
    form = TaskTypeForm
    list_display = ["name", "code", "billable", "is_default"]
    list_filter = ["billable", "is_default"]
    search_fields = ["name", "code"]
    prepopulated_fields = {"code": ["name"]}


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "client", "contract_number", "manager", "status", "billable", "start_date",
                    "end_date", "budget_hours", "budget_amount"]
    list_select_related = ["client", "contract", "manager"]
    list_filter = ["status", "billable", "client", "contract__billing_type",
                   ("manager", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["code", "name", "client__name", "contract__number"]
    date_hierarchy = "start_date"
    autocomplete_fields = ["client", "contract", "manager"]
    prepopulated_fields = {"code": ["name"]}
    readonly_fields = ["created_at", "updated_at"]
    BUDGET_FIELDS = ("budget_hours", "budget_amount", "alert_thresholds")
    fieldsets = [
        (None, {"fields": ["code", "name", "client", "contract", "manager", "status", "billable",
                           "start_date", "end_date"]}),
        ("Budget", {"fields": list(BUDGET_FIELDS)}),
        ("History", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]

    @admin.display(description="Contract", ordering="contract__number")
    def contract_number(self, project: Project) -> str:
        return project.contract.number

    def _sees_budget(self, request, project: Project | None) -> bool:
        if request.user.has_perm("projects.view_project_budgets"):
            return True
        member = getattr(request.user, "member", None)
        return project is not None and member is not None and project.manager_id == member.id

    def get_list_display(self, request):
        if self._sees_budget(request, None):
            return self.list_display
        return [name for name in self.list_display if name not in self.BUDGET_FIELDS]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if self._sees_budget(request, obj):
            return fieldsets
        return [(title, options) for title, options in fieldsets if title != "Budget"]


@admin.register(TimeEntry)
class TimeEntryAdmin(admin.ModelAdmin):
    list_display = ["work_date", "member", "project", "task_type", "duration", "billable", "status",
                    "billable_minutes", "amount", "source"]
    list_select_related = ["member", "project", "task_type"]
    list_filter = ["status", "source", "billable", ("project", admin.RelatedOnlyFieldListFilter),
                   ("member", admin.RelatedOnlyFieldListFilter), "task_type"]
    search_fields = ["description", "external_id", "member__name", "project__code", "project__name"]
    date_hierarchy = "work_date"
    # The table grows without bound: skip the second COUNT(*) over all rows on filtered pages.
    show_full_result_count = False
    # Everything is read-only (see the module docstring); these are also computed or provenance.
    readonly_fields = ["source", "external_id", "status", "billable_minutes", "over_cap_minutes", "covered_minutes",
                       "rate", "amount", "cost_amount", "rate_rule", "billability_reason", "rated_at", "conflict",
                       "created_by", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["member", "project", "task_type", "work_date", "minutes", "description", "billable",
                           "started_at", "stopped_at"]}),
        ("Provenance", {"fields": ["source", "external_id", "created_by", "created_at", "updated_at"]}),
        ("Rating and approval", {"fields": ["status", "billable_minutes", "over_cap_minutes", "covered_minutes",
                                            "rate", "amount", "cost_amount", "rate_rule", "billability_reason",
                                            "rated_at", "conflict"]}),
    ]

    def get_queryset(self, request):
        # Project managers see their projects' entries and their own, like everywhere else.
        return super().get_queryset(request).visible_to(request.user)

    @admin.display(description="Time", ordering="minutes")
    def duration(self, entry: TimeEntry) -> str:
        return f"{entry.minutes // 60}:{entry.minutes % 60:02d}"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and (obj is None or obj.is_editable)

    def get_actions(self, request):
        # Deleting goes one entry at a time through the service, which locks and re-checks it.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # An entry's approval request and its history go with it (the service deletes them together); their
        # own admins delete nothing, which must not block deleting the entry (finance may, as in the API).
        perms_needed -= {"approval request", "approval event"}
        return deleted, counts, perms_needed, protected

    def delete_model(self, request, obj: TimeEntry) -> None:
        try:
            time_entry_delete(entry=obj)
        except ValidationError as error:
            # It changed since the page was shown; the admin's transaction rolls back its log entry.
            self.message_user(request, " ".join(error.messages), messages.ERROR)
            raise PermissionDenied(" ".join(error.messages)) from error


class ComputedFiguresAdmin(admin.ModelAdmin):
    """For rows the pipeline computes: shown, never typed in (the next refresh would overwrite them)."""

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.has_perm("projects.view_project_budgets"):
            return queryset
        member = getattr(request.user, "member", None)
        return queryset.filter(project__manager=member) if member is not None else queryset.none()

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ProjectBudget)
class ProjectBudgetAdmin(ComputedFiguresAdmin):
    list_display = ["project", "percent_used", "hours_used", "budget_hours", "amount_used", "budget_amount",
                    "currency", "burn_weekly_hours", "forecast_run_out", "revenue", "cost", "margin_percent",
                    "refreshed_at"]
    list_select_related = ["project"]
    list_filter = ["project__status", "currency", ("forecast_run_out", admin.EmptyFieldListFilter)]
    search_fields = ["project__code", "project__name"]
    ordering = ["-percent_used"]

    @admin.display(description="Budget hours")
    def budget_hours(self, budget: ProjectBudget):
        return budget.project.budget_hours

    @admin.display(description="Budget amount")
    def budget_amount(self, budget: ProjectBudget):
        return budget.project.budget_amount


@admin.register(BudgetAlert)
class BudgetAlertAdmin(ComputedFiguresAdmin):
    list_display = ["created_at", "project", "kind", "threshold", "percent_used", "emailed_to", "message"]
    list_select_related = ["project"]
    list_filter = ["kind", "project"]
    search_fields = ["project__code", "project__name", "message", "emailed_to"]
    date_hierarchy = "created_at"
