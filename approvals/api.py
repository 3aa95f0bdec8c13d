"""REST API v1 for approval requests: the routing decision of each entry, read-only for now."""

from django.db.models import Q
from django_filters import rest_framework as filters
from rest_framework import serializers, viewsets

from approvals.models import ApprovalReason, ApprovalRequest, ApprovalStatus
from config.api import IdFilter, ModelPermissions


class ApprovalRequestSerializer(serializers.ModelSerializer):
    reasons = serializers.ListField(child=serializers.ChoiceField(choices=ApprovalReason.choices), read_only=True)
    reason_messages = serializers.ListField(child=serializers.CharField(), read_only=True)
    member = serializers.IntegerField(source="time_entry.member_id", read_only=True)
    project = serializers.IntegerField(source="time_entry.project_id", read_only=True)

    class Meta:
        model = ApprovalRequest
        fields = ["id", "time_entry", "member", "project", "reasons", "reason_messages", "status",
                  "requested_at", "decided_by", "decided_at", "note"]
        read_only_fields = fields


class ApprovalRequestFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=ApprovalStatus.choices)
    project = IdFilter(field_name="time_entry__project")
    client = IdFilter(field_name="time_entry__project__client")
    member = IdFilter(field_name="time_entry__member")
    reason = filters.ChoiceFilter(choices=ApprovalReason.choices, method="filter_reason",
                                  help_text="Requests held for this reason (among others).")

    class Meta:
        model = ApprovalRequest
        fields = ["status", "project", "client", "member", "reason"]

    def filter_reason(self, queryset, name, value):
        # `reasons` is a JSON list of codes; matching the quoted code works on SQLite and PostgreSQL alike.
        return queryset.filter(reasons__icontains=f'"{value}"')


class ApprovalRequestViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = ApprovalRequest.objects.all()
    serializer_class = ApprovalRequestSerializer
    permission_classes = [ModelPermissions]
    filterset_class = ApprovalRequestFilter

    def get_queryset(self):
        requests = ApprovalRequest.objects.select_related("time_entry")
        user = self.request.user
        if user.has_perm("projects.view_all_time"):
            return requests
        # A project manager sees the requests of their projects' entries (and their own).
        member = getattr(user, "member", None)
        if member is None:
            return requests.none()
        return requests.filter(Q(time_entry__member=member) | Q(time_entry__project__manager=member))
