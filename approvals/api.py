"""REST API v1 for approval requests: the queue, and approvers' decisions one by one or in bulk.

Decisions go through `approvals.services.approval_requests_decide`; this module only maps its answers
to HTTP: a request the caller cannot see is a 404, one they may not decide a 403 with the service's
reason, one already decided a 400.
"""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.settings import api_settings

from approvals.models import ApprovalReason, ApprovalRequest, ApprovalStatus
from approvals.services import DecisionResult, approval_requests_decide
from config.api import MAX_ID, IdFilter, ModelPermissions

DECIDE = "approvals.decide_approvals"
BULK_LIMIT = 1000
# The viewset's actions that decide requests rather than read them.
DECISIONS = frozenset({"approve", "reject", "bulk_approve", "bulk_reject"})


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


class ApproveSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="",
                                 help_text="Kept with the decision, e.g. why held time is fine.")


class RejectSerializer(serializers.Serializer):
    # Left out or blank, the service answers with its own message under `reason`.
    reason = serializers.CharField(required=False, allow_blank=True, default="",
                                   help_text="Required: the member is emailed this reason.")


class BulkApproveSerializer(ApproveSerializer):
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=MAX_ID), allow_empty=False,
                                max_length=BULK_LIMIT, help_text="Approval request ids.")


class BulkRejectSerializer(RejectSerializer):
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=MAX_ID), allow_empty=False,
                                max_length=BULK_LIMIT, help_text="Approval request ids.")


class RefusalSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reason = serializers.CharField()


class BulkDecisionSerializer(serializers.Serializer):
    decided = serializers.ListField(child=serializers.IntegerField(), help_text="Ids decided, in input order.")
    refused = RefusalSerializer(many=True, help_text="Ids left as they were, each with the reason.")


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


class ApprovalPermissions(ModelPermissions):
    """Reading the queue needs view_approvalrequest; deciding needs decide_approvals."""

    message = "You cannot approve or reject time."

    def has_permission(self, request, view):
        if view.action in DECISIONS:
            return bool(request.user and request.user.is_authenticated and request.user.has_perm(DECIDE))
        return super().has_permission(request, view)


class ApprovalRequestViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = ApprovalRequest.objects.all()
    serializer_class = ApprovalRequestSerializer
    permission_classes = [ApprovalPermissions]
    filterset_class = ApprovalRequestFilter

    def get_queryset(self):
        requests = ApprovalRequest.objects.select_related("time_entry")
        user = self.request.user
        if user.has_perm("projects.view_all_time"):
            return requests
        # A project manager's queue is the time on the projects they manage; nothing else exists for them.
        member = getattr(user, "member", None)
        if member is None:
            return requests.none()
        return requests.filter(time_entry__project__manager=member)

    def filter_queryset(self, queryset):
        # The list's filters do not apply to decisions (a bulk body names its own ids).
        return queryset if self.action in DECISIONS else super().filter_queryset(queryset)

    def _decide(self, ids: list[int], *, approve: bool, note: str) -> DecisionResult:
        try:
            return approval_requests_decide(request_ids=ids, user=self.request.user, approve=approve, note=note)
        except DjangoPermissionDenied as error:
            raise exceptions.PermissionDenied(str(error) or None) from None

    def _decide_one(self, serializer_class, *, approve: bool, note_field: str) -> Response:
        request = self.get_object()  # 404 unless it is in the caller's queue
        body = serializer_class(data=self.request.data)
        body.is_valid(raise_exception=True)
        result = self._decide([request.id], approve=approve, note=body.validated_data[note_field])
        if result.refused:
            refused, reason = result.refused[0]
            if refused.status != ApprovalStatus.PENDING:
                # Decided meanwhile (or long ago): the caller's view of it is stale, not forbidden.
                raise exceptions.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: [reason]})
            raise exceptions.PermissionDenied(reason)
        if not result.decided:
            raise exceptions.NotFound()  # deleted between the lookup and the decision
        return Response(self.get_serializer(result.decided[0]).data)

    def _decide_many(self, serializer_class, *, approve: bool, note_field: str) -> Response:
        body = serializer_class(data=self.request.data)
        body.is_valid(raise_exception=True)
        ids = list(dict.fromkeys(body.validated_data["ids"]))  # once each, in input order
        visible = set(self.get_queryset().filter(id__in=ids).values_list("id", flat=True))
        result = self._decide([i for i in ids if i in visible], approve=approve,
                              note=body.validated_data[note_field])
        decided = {request.id for request in result.decided}
        reasons = {request.id: reason for request, reason in result.refused}
        # A request outside the caller's queue is reported like a missing one, so its existence does not leak.
        missing = "Approval request {} does not exist or is not in your queue."
        refused = [{"id": i, "reason": reasons.get(i) or missing.format(i)} for i in ids if i not in decided]
        return Response({"decided": [i for i in ids if i in decided], "refused": refused})

    @extend_schema(request=ApproveSerializer, responses=ApprovalRequestSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """Approve one held entry. Your own time is refused (403); a request outside your queue is a 404."""
        return self._decide_one(ApproveSerializer, approve=True, note_field="note")

    @extend_schema(request=RejectSerializer, responses=ApprovalRequestSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        """Reject one held entry with a reason; the member is emailed it."""
        return self._decide_one(RejectSerializer, approve=False, note_field="reason")

    # The bulk answer is 200 even when some (or all) requests were refused: `refused` says which and why.
    @extend_schema(request=BulkApproveSerializer, responses=BulkDecisionSerializer,
                   operation_id="v1_approvals_bulk_approve")
    @action(detail=False, methods=["post"], url_path="approve", url_name="bulk-approve")
    def bulk_approve(self, request):
        """Approve several requests: those that cannot be approved are listed with the reason."""
        return self._decide_many(BulkApproveSerializer, approve=True, note_field="note")

    @extend_schema(request=BulkRejectSerializer, responses=BulkDecisionSerializer,
                   operation_id="v1_approvals_bulk_reject")
    @action(detail=False, methods=["post"], url_path="reject", url_name="bulk-reject")
    def bulk_reject(self, request):
        """Reject several requests with one reason: those that cannot be rejected are listed with the reason."""
        return self._decide_many(BulkRejectSerializer, approve=False, note_field="reason")

