"""REST API: approvers' decisions, one by one and in bulk, through the approvals service."""

import datetime as dt

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from djmoney.money import Money
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from approvals.models import ApprovalEvent, ApprovalRequest, ApprovalStatus
from billing.pipeline import TimeEntryInput, ingest
from projects.models import EntrySource, EntryStatus
from tests.factories import ProjectFactory, RateFactory, TaskTypeFactory
from tests.queries import split_bulk

pytestmark = pytest.mark.django_db
URL = "/api/v1/approvals/"


def api_as(user) -> APIClient:
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def dev():
    return TaskTypeFactory(code="dev", name="Development")


def project_of(manager=None, code=None):
    project = ProjectFactory(manager=manager, **({"code": code} if code else {}))
    RateFactory(contract=project.contract, hourly_rate=Money("100.00", "USD"))
    return project


_keys = iter(range(10_000))


def held(member, project, task_type, *, day=2) -> ApprovalRequest:
    """An entry of 700 minutes on the day-th day from 1 March: over the 600-minute auto-approval limit."""
    result = ingest([TimeEntryInput(member_id=member.id, project_id=project.id, task_type_id=task_type.id,
                                    work_date=dt.date(2026, 2, 28) + dt.timedelta(days=day), minutes=700,
                                    external_id=f"h-{next(_keys)}")],
                    EntrySource.API)
    assert not result.rejected, result.rejected
    request = ApprovalRequest.objects.get(time_entry=result.by_index[0])
    assert request.status == ApprovalStatus.PENDING
    return request


def state(request: ApprovalRequest) -> tuple[str, str]:
    request.refresh_from_db()
    request.time_entry.refresh_from_db()
    return request.status, request.time_entry.status


# One at a time


def test_an_approver_approves_with_a_note_and_gets_the_request_back(approver, staff_member, dev):
    request = held(staff_member, project_of(), dev)
    response = api_as(approver.user).post(f"{URL}{request.id}/approve/", {"note": "Workshop day, agreed"},
                                          format="json")

    assert response.status_code == 200, response.data
    data = response.json()
    assert (data["id"], data["status"], data["decided_by"], data["note"]) == (
        request.id, "approved", approver.user.id, "Workshop day, agreed")
    assert data["decided_at"] is not None and data["reasons"] == ["amount_over_limit", "hours_over_limit"]
    assert state(request) == (ApprovalStatus.APPROVED, EntryStatus.APPROVED)
    event = ApprovalEvent.objects.get(request=request)
    assert (event.actor, event.action, event.note) == (approver.user, "approved", "Workshop day, agreed")


def test_approving_needs_no_note(finance, staff_member, dev):
    request = held(staff_member, project_of(), dev)
    response = api_as(finance.user).post(f"{URL}{request.id}/approve/", format="json")
    assert response.status_code == 200 and response.json()["note"] == ""
    assert state(request) == (ApprovalStatus.APPROVED, EntryStatus.APPROVED)


def test_a_rejection_with_its_reason_emails_the_member(approver, staff_member, dev,
                                                       django_capture_on_commit_callbacks):
    request = held(staff_member, project_of(code="acme-web"), dev)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_as(approver.user).post(f"{URL}{request.id}/reject/",
                                              {"reason": "Not agreed with the client"}, format="json")

    assert response.status_code == 200, response.data
    assert (response.json()["status"], response.json()["note"]) == ("rejected", "Not agreed with the client")
    assert state(request) == (ApprovalStatus.REJECTED, EntryStatus.REJECTED)
    [email] = mail.outbox
    assert email.to == [staff_member.email]
    assert "Reason: Not agreed with the client" in email.body


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}])
def test_a_rejection_needs_a_reason(approver, staff_member, dev, body, django_capture_on_commit_callbacks):
    request = held(staff_member, project_of(), dev)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_as(approver.user).post(f"{URL}{request.id}/reject/", body, format="json")

    assert response.status_code == 400
    assert "Say why the time is rejected" in response.json()["reason"][0]
    assert state(request) == (ApprovalStatus.PENDING, EntryStatus.PENDING)
    assert mail.outbox == []


def test_nobody_decides_their_own_time(approver, dev):
    request = held(approver, project_of(), dev)
    api = api_as(approver.user)
    for verb, body in (("approve", {}), ("reject", {"reason": "Mine"})):
        response = api.post(f"{URL}{request.id}/{verb}/", body, format="json")
        assert response.status_code == 403
        assert response.json()["detail"] == f"Entry {request.time_entry_id} is your own time: someone else must " \
                                            "decide it."
    assert state(request) == (ApprovalStatus.PENDING, EntryStatus.PENDING)
    assert not ApprovalEvent.objects.exists()


def test_a_project_manager_decides_their_projects_only(project_manager, staff_member, dev):
    mine = held(staff_member, project_of(manager=project_manager), dev)
    elsewhere = held(staff_member, project_of(code="not-mine"), dev, day=3)
    api = api_as(project_manager.user)

    assert api.post(f"{URL}{mine.id}/approve/", format="json").status_code == 200
    # Time on a project they do not manage is not in their queue: it does not exist for them.
    refused = api.post(f"{URL}{elsewhere.id}/approve/", format="json")
    assert refused.status_code == 404
    assert "not-mine" not in refused.content.decode()
    assert state(mine)[0] == ApprovalStatus.APPROVED
    assert state(elsewhere) == (ApprovalStatus.PENDING, EntryStatus.PENDING)


def test_a_project_manager_cannot_decide_their_own_time_on_their_project(project_manager, dev):
    request = held(project_manager, project_of(manager=project_manager), dev)
    response = api_as(project_manager.user).post(f"{URL}{request.id}/approve/", format="json")
    assert response.status_code == 403 and "your own time" in response.json()["detail"]
    assert state(request)[0] == ApprovalStatus.PENDING


def test_staff_and_management_cannot_decide(staff_member, other_staff_member, management, dev):
    request = held(staff_member, project_of(), dev)
    for caller in (other_staff_member, management):
        api = api_as(caller.user)
        approve = api.post(f"{URL}{request.id}/approve/", format="json")
        assert approve.status_code == 403 and approve.json()["detail"] == "You cannot approve or reject time."
        assert api.post(f"{URL}{request.id}/reject/", {"reason": "No"}, format="json").status_code == 403
        assert api.post(f"{URL}approve/", {"ids": [request.id]}, format="json").status_code == 403
    assert state(request) == (ApprovalStatus.PENDING, EntryStatus.PENDING)
    # Management reads the queue; staff do not see it at all.
    assert api_as(management.user).get(URL).json()["count"] == 1
    assert api_as(other_staff_member.user).get(URL).status_code == 403


def test_anonymous_callers_get_401(staff_member, dev):
    request = held(staff_member, project_of(), dev)
    assert APIClient().post(f"{URL}{request.id}/approve/", format="json").status_code == 401
    assert APIClient().post(f"{URL}approve/", {"ids": [request.id]}, format="json").status_code == 401


def test_an_already_decided_request_is_a_400_with_the_reason(approver, finance, staff_member, dev):
    request = held(staff_member, project_of(), dev)
    assert api_as(approver.user).post(f"{URL}{request.id}/approve/", format="json").status_code == 200
    again = api_as(finance.user).post(f"{URL}{request.id}/reject/", {"reason": "Too late"}, format="json")

    assert again.status_code == 400
    assert again.json()["non_field_errors"] == [
        f"Entry {request.time_entry_id} is not awaiting approval (it is approved)."]
    assert state(request) == (ApprovalStatus.APPROVED, EntryStatus.APPROVED)
    assert ApprovalEvent.objects.filter(request=request).count() == 1


def test_an_unknown_request_is_a_404(approver):
    assert api_as(approver.user).post(f"{URL}999999/approve/", format="json").status_code == 404


def test_a_non_text_note_is_a_400(approver, staff_member, dev):
    request = held(staff_member, project_of(), dev)
    response = api_as(approver.user).post(f"{URL}{request.id}/approve/", {"note": {"a": 1}}, format="json")
    assert response.status_code == 400 and "note" in response.json()
    assert state(request)[0] == ApprovalStatus.PENDING


# In bulk


def test_bulk_approval_decides_what_it_can_and_says_why_not_for_the_rest(project_manager, staff_member,
                                                                         other_staff_member, approver, dev):
    project = project_of(manager=project_manager)
    first, second = held(staff_member, project, dev), held(other_staff_member, project, dev, day=3)
    own = held(project_manager, project, dev, day=4)
    elsewhere = held(staff_member, project_of(code="not-mine"), dev, day=5)
    decided = held(staff_member, project, dev, day=6)
    api_as(approver.user).post(f"{URL}{decided.id}/approve/", format="json")

    ids = [second.id, own.id, elsewhere.id, 999999, first.id, decided.id, second.id]
    response = api_as(project_manager.user).post(f"{URL}approve/", {"ids": ids, "note": "Fine"}, format="json")

    assert response.status_code == 200, response.data
    data = response.json()
    assert data["decided"] == [second.id, first.id]
    assert data["refused"] == [
        {"id": own.id, "reason": f"Entry {own.time_entry_id} is your own time: someone else must decide it."},
        {"id": elsewhere.id, "reason": f"Approval request {elsewhere.id} does not exist or is not in your queue."},
        {"id": 999999, "reason": "Approval request 999999 does not exist or is not in your queue."},
        {"id": decided.id, "reason": f"Entry {decided.time_entry_id} is not awaiting approval (it is approved)."},
    ]
    assert state(first) == state(second) == (ApprovalStatus.APPROVED, EntryStatus.APPROVED)
    assert ApprovalRequest.objects.get(pk=first.pk).note == "Fine"
    assert state(own)[0] == state(elsewhere)[0] == ApprovalStatus.PENDING


def test_bulk_rejection_needs_a_reason_and_emails_each_member(approver, staff_member, other_staff_member, dev,
                                                             django_capture_on_commit_callbacks):
    project = project_of()
    requests = [held(staff_member, project, dev), held(other_staff_member, project, dev, day=3)]
    api = api_as(approver.user)
    ids = [r.id for r in requests]

    with django_capture_on_commit_callbacks(execute=True):
        missing = api.post(f"{URL}reject/", {"ids": ids}, format="json")
    assert missing.status_code == 400 and "reason" in missing.json()
    assert all(state(r)[0] == ApprovalStatus.PENDING for r in requests) and mail.outbox == []

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"{URL}reject/", {"ids": ids, "reason": "Billed elsewhere"}, format="json")
    assert response.json() == {"decided": ids, "refused": []}
    assert all(state(r) == (ApprovalStatus.REJECTED, EntryStatus.REJECTED) for r in requests)
    assert sorted(email.to[0] for email in mail.outbox) == sorted([staff_member.email, other_staff_member.email])


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "ids"), ({"ids": []}, "ids"), ({"ids": "1,2"}, "ids"), ({"ids": ["one"]}, "ids"), ({"ids": [0]}, "ids"),
     ({"ids": list(range(1, 1002))}, "ids")],
)
def test_a_bad_bulk_body_is_a_400(approver, staff_member, dev, body, field):
    request = held(staff_member, project_of(), dev)
    response = api_as(approver.user).post(f"{URL}approve/", body, format="json")
    assert response.status_code == 400 and field in response.json()
    assert state(request)[0] == ApprovalStatus.PENDING


def test_bulk_approval_costs_the_same_queries_for_3_and_30_requests(approver, staff_member, dev):
    project = project_of()

    def approve(count: int, first_day: int) -> int:
        # One entry a day: a member logs at most 24 hours a day.
        ids = [held(staff_member, project, dev, day=first_day + n).id for n in range(count)]
        api = api_as(approver.user)
        with CaptureQueriesContext(connection) as captured:
            response = api.post(f"{URL}approve/", {"ids": ids}, format="json")
        assert response.status_code == 200 and len(response.json()["decided"]) == count
        # SQLite splits a bulk update by its parameter limit; every other statement must stay flat.
        return split_bulk(captured)[0]

    assert approve(3, first_day=1) == approve(30, first_day=4)


# The queue


def test_a_project_managers_queue_holds_only_their_projects(project_manager, staff_member, dev):
    mine = held(staff_member, project_of(manager=project_manager), dev)
    held(staff_member, project_of(), dev, day=3)
    # Their own time on someone else's project is not theirs to decide, so it is not in their queue either.
    held(project_manager, project_of(), dev, day=4)
    rows = api_as(project_manager.user).get(URL).json()["results"]
    assert [row["id"] for row in rows] == [mine.id]


def test_approvers_and_finance_see_every_request(approver, finance, staff_member, project_manager, dev):
    requests = {held(staff_member, project_of(), dev).id, held(project_manager, project_of(), dev, day=3).id}
    for caller in (approver, finance):
        assert {row["id"] for row in api_as(caller.user).get(URL).json()["results"]} == requests
