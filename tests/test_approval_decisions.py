"""Approvers' decisions: who may decide what, the reason a rejection needs, the member told by email."""

import datetime as dt

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from djmoney.money import Money

from approvals.models import ApprovalEvent, ApprovalRequest, ApprovalStatus
from approvals.services import approval_request_approve, approval_request_reject, approval_requests_decide
from billing.pipeline import TimeEntryInput, ingest, process_entries
from projects.models import EntrySource, EntryStatus, ProjectBudget
from tests.factories import ProjectFactory, RateFactory, TaskTypeFactory

pytestmark = pytest.mark.django_db


def held_entry(member, project, key="e", minutes=700, day=2):
    RateFactory(contract=project.contract, hourly_rate=Money("100.00", "USD"))
    dev = TaskTypeFactory(code="dev")
    result = ingest([TimeEntryInput(member_id=member.id, project_id=project.id, task_type_id=dev.id,
                                    work_date=dt.date(2026, 3, day), minutes=minutes, external_id=key)],
                    EntrySource.API)
    request = ApprovalRequest.objects.get(time_entry=result.by_index[0])
    assert request.status == ApprovalStatus.PENDING
    return request


def test_an_approver_approves_with_a_note(staff_member, approver):
    request = held_entry(staff_member, ProjectFactory())
    approval_request_approve(request_id=request.id, user=approver.user, note="Workshop day, agreed")
    request.refresh_from_db()
    assert (request.status, request.decided_by, request.note) == (
        ApprovalStatus.APPROVED, approver.user, "Workshop day, agreed")
    assert request.decided_at is not None
    assert request.time_entry.status == EntryStatus.APPROVED
    event = ApprovalEvent.objects.get(request=request)
    assert (event.actor, event.action, event.status_before) == (approver.user, "approved", "pending")


def test_a_rejection_needs_a_reason_and_tells_the_member(staff_member, approver, django_capture_on_commit_callbacks):
    request = held_entry(staff_member, ProjectFactory(code="acme-web"))
    with pytest.raises(ValidationError):
        approval_request_reject(request_id=request.id, user=approver.user, reason="  ")
    request.refresh_from_db()
    assert request.status == ApprovalStatus.PENDING
    with django_capture_on_commit_callbacks(execute=True):
        approval_request_reject(request_id=request.id, user=approver.user, reason="Not agreed with the client")
    request.refresh_from_db()
    assert (request.status, request.note, request.time_entry.status) == (
        ApprovalStatus.REJECTED, "Not agreed with the client", EntryStatus.REJECTED)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [staff_member.email]
    assert "Reason: Not agreed with the client" in mail.outbox[0].body


def test_rejected_time_leaves_the_budget(staff_member, approver):
    project = ProjectFactory()
    request = held_entry(staff_member, project)
    assert ProjectBudget.objects.get(project=project).minutes_used == 700
    approval_request_reject(request_id=request.id, user=approver.user, reason="Duplicate")
    assert ProjectBudget.objects.get(project=project).minutes_used == 0


def test_nobody_approves_their_own_time(approver):
    request = held_entry(approver, ProjectFactory())
    with pytest.raises(PermissionDenied, match="your own time"):
        approval_request_approve(request_id=request.id, user=approver.user)
    request.refresh_from_db()
    assert request.status == ApprovalStatus.PENDING


def test_a_project_manager_decides_only_their_projects(staff_member, project_manager):
    mine = held_entry(staff_member, ProjectFactory(manager=project_manager), key="mine")
    other = held_entry(staff_member, ProjectFactory(code="not-mine"), key="other", day=3)
    approval_request_approve(request_id=mine.id, user=project_manager.user)
    with pytest.raises(PermissionDenied, match="do not manage"):
        approval_request_approve(request_id=other.id, user=project_manager.user)
    other.refresh_from_db()
    assert other.status == ApprovalStatus.PENDING


def test_staff_cannot_decide(staff_member, other_staff_member):
    request = held_entry(staff_member, ProjectFactory())
    with pytest.raises(PermissionDenied):
        approval_request_approve(request_id=request.id, user=other_staff_member.user)


def test_bulk_decisions_report_what_was_refused(staff_member, approver):
    project = ProjectFactory()
    requests = [held_entry(staff_member, project, key=f"e{n}", day=2 + n) for n in range(3)]
    own = held_entry(approver, project, key="own")
    result = approval_requests_decide(request_ids=[r.id for r in [*requests, own]], user=approver.user,
                                      approve=True)
    assert sorted(r.id for r in result.decided) == sorted(r.id for r in requests)
    assert [(r.id, "your own time" in why) for r, why in result.refused] == [(own.id, True)]


def test_a_decided_request_is_not_decided_again(staff_member, approver, finance):
    request = held_entry(staff_member, ProjectFactory())
    approval_request_approve(request_id=request.id, user=approver.user)
    with pytest.raises(PermissionDenied, match="not awaiting approval"):
        approval_request_reject(request_id=request.id, user=finance.user, reason="Too late")


def test_an_approved_entry_stays_approved_when_rerouted(staff_member, approver):
    request = held_entry(staff_member, ProjectFactory())
    approval_request_approve(request_id=request.id, user=approver.user)
    entry = request.time_entry
    process_entries([entry])
    request.refresh_from_db()
    entry.refresh_from_db()
    assert (request.status, entry.status) == (ApprovalStatus.APPROVED, EntryStatus.APPROVED)
