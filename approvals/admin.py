"""Admin for the approval policy, and read-only lists of approval requests and their audit trail.

Decisions (approve, reject with a reason, in bulk) belong to the approval queue and its service,
which check who may decide what and record the decision; until that lands, requests can only be
looked at here, so the admin cannot become a way around those checks.
"""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from approvals.models import ApprovalEvent, ApprovalPolicy, ApprovalRequest
from projects.models import TimeEntry


class ApprovalPolicyForm(forms.ModelForm):
    class Meta:
        model = ApprovalPolicy
        fields = ["name", "is_active", "auto_approve_max_amount", "auto_approve_max_minutes", "budget_review_percent"]

    def clean_is_active(self) -> bool:
        is_active = self.cleaned_data["is_active"]
        if is_active:
            current = ApprovalPolicy.objects.filter(is_active=True).exclude(pk=self.instance.pk).first()
            if current is not None:
                raise ValidationError(f"“{current.name}” is the policy in force; deactivate it first.")
        return is_active


@admin.register(ApprovalPolicy)
class ApprovalPolicyAdmin(admin.ModelAdmin):
    form = ApprovalPolicyForm
    list_display = ["name", "is_active", "auto_approve_max_amount", "auto_approve_max_minutes",
                    "budget_review_percent", "updated_at"]
    list_filter = ["is_active"]
    search_fields = ["name"]
    readonly_fields = ["updated_at"]

    def has_delete_permission(self, request, obj=None) -> bool:
        # Approval needs a policy in force: only retired ones may go.
        return super().has_delete_permission(request, obj) and (obj is None or not obj.is_active)


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(admin.ModelAdmin):
    list_display = ["time_entry_id", "work_date", "member", "project", "status", "reason_list", "requested_at",
                    "decided_by", "decided_at"]
    list_display_links = ["time_entry_id", "work_date"]
    list_select_related = ["time_entry__member", "time_entry__project", "decided_by"]
    list_filter = ["status", "time_entry__project__client"]
    search_fields = ["time_entry__member__name", "time_entry__project__code", "time_entry__description", "note"]
    date_hierarchy = "requested_at"
    fields = ["time_entry", "status", "reason_messages", "policy", "requested_at", "decided_by", "decided_at",
              "note"]
    readonly_fields = fields

    def get_queryset(self, request):
        # Whoever may see an entry may see its approval request, and nobody else.
        visible = TimeEntry.objects.visible_to(request.user).values("id")
        return super().get_queryset(request).filter(time_entry__in=visible)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Entry", ordering="time_entry_id")
    def time_entry_id(self, approval: ApprovalRequest) -> int:
        return approval.time_entry_id

    @admin.display(description="Work date", ordering="time_entry__work_date")
    def work_date(self, approval: ApprovalRequest):
        return approval.time_entry.work_date

    @admin.display(description="Member", ordering="time_entry__member__name")
    def member(self, approval: ApprovalRequest):
        return approval.time_entry.member

    @admin.display(description="Project", ordering="time_entry__project__code")
    def project(self, approval: ApprovalRequest):
        return approval.time_entry.project

    @admin.display(description="Reasons")
    def reason_list(self, approval: ApprovalRequest) -> str:
        return ", ".join(approval.reasons) or "—"


@admin.register(ApprovalEvent)
class ApprovalEventAdmin(admin.ModelAdmin):
    """The audit trail: written by the approval services only, never edited."""

    list_display = ["created_at", "request", "action", "status_before", "actor", "note"]
    list_select_related = ["request", "actor"]
    list_filter = ["action", "status_before"]
    search_fields = ["note", "actor__username", "request__time_entry__member__name"]
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        visible = TimeEntry.objects.visible_to(request.user).values("id")
        return super().get_queryset(request).filter(request__time_entry__in=visible)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
