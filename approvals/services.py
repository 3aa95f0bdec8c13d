"""Approvers' decisions on held entries: one by one or in bulk, never on one's own time."""

from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mass_mail
from django.db import transaction
from django.utils import timezone

from approvals.models import ApprovalEvent, ApprovalRequest, ApprovalStatus
from projects.access import can_decide_entry
from projects.budgets import refresh_budgets
from projects.models import EntryStatus, TimeEntry


@dataclass
class DecisionResult:
    decided: list[ApprovalRequest] = field(default_factory=list)
    # Requests that could not be decided, with the reason, e.g. the approver's own time.
    refused: list[tuple[ApprovalRequest, str]] = field(default_factory=list)


def _refusal(user, request: ApprovalRequest) -> str | None:
    entry = request.time_entry
    if request.status != ApprovalStatus.PENDING:
        return f"Entry {entry.id} is not awaiting approval (it is {request.get_status_display().lower()})."
    member = getattr(user, "member", None)
    if member is not None and entry.member_id == member.id:
        return f"Entry {entry.id} is your own time: someone else must decide it."
    if not can_decide_entry(user, entry):
        return f"Entry {entry.id} is on project {entry.project.code}, which you do not manage."
    return None


def _rejection_email(request: ApprovalRequest, reason: str):
    entry = request.time_entry
    body = (
        f"Hello {entry.member.name},\n\n"
        f"Your time entry of {entry.hours} h on {entry.work_date} for {entry.project.name} "
        f"({entry.task_type.name}) was rejected.\n\nReason: {reason}\n\n"
        "You can see it, correct it or delete it under “My time” in Billable."
    )
    return (f"Time entry rejected: {entry.project.code} on {entry.work_date}", body,
            settings.DEFAULT_FROM_EMAIL, [entry.member.email])


def approval_requests_decide(*, request_ids, user, approve: bool, note: str = "") -> DecisionResult:
    """Approve or reject these pending requests; a rejection needs a reason and tells the member."""
    if not user.has_perm("approvals.decide_approvals"):
        raise PermissionDenied("You cannot approve or reject time.")
    note = (note or "").strip()
    if not approve and not note:
        raise ValidationError({"reason": "Say why the time is rejected: the member sees this reason."})

    result = DecisionResult()
    now = timezone.now()
    with transaction.atomic():
        requests = list(
            ApprovalRequest.objects.select_for_update(of=("self",))
            .select_related("time_entry__project", "time_entry__member", "time_entry__task_type")
            .filter(id__in=list(request_ids)).order_by("id")
        )
        for request in requests:
            refusal = _refusal(user, request)
            if refusal:
                result.refused.append((request, refusal))
            else:
                result.decided.append(request)
        if not result.decided:
            return result

        status = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
        events = [ApprovalEvent(request=r, actor=user, action=status, status_before=r.status, note=note)
                  for r in result.decided]
        for request in result.decided:
            request.status, request.decided_by, request.decided_at, request.note = status, user, now, note
            request.time_entry.status = EntryStatus.APPROVED if approve else EntryStatus.REJECTED
        ApprovalRequest.objects.bulk_update(result.decided, ["status", "decided_by", "decided_at", "note"])
        TimeEntry.objects.bulk_update([r.time_entry for r in result.decided], ["status"])
        ApprovalEvent.objects.bulk_create(events)
        if not approve:
            # Rejected time no longer uses its project's budget.
            refresh_budgets(project_ids={r.time_entry.project_id for r in result.decided})
            emails = [_rejection_email(r, note) for r in result.decided]
            transaction.on_commit(lambda: send_mass_mail(emails, fail_silently=True))
    return result


def approval_request_approve(*, request_id: int, user, note: str = "") -> ApprovalRequest:
    """Approve one request, or say exactly why not."""
    return _decide_one(request_id=request_id, user=user, approve=True, note=note)


def approval_request_reject(*, request_id: int, user, reason: str) -> ApprovalRequest:
    """Reject one request with the reason the member will see."""
    return _decide_one(request_id=request_id, user=user, approve=False, note=reason)


def _decide_one(*, request_id: int, user, approve: bool, note: str) -> ApprovalRequest:
    result = approval_requests_decide(request_ids=[request_id], user=user, approve=approve, note=note)
    if result.refused:
        raise PermissionDenied(result.refused[0][1])
    if not result.decided:
        raise ApprovalRequest.DoesNotExist(f"No approval request {request_id}.")
    return result.decided[0]
