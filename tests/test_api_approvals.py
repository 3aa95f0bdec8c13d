"""REST API: approval requests, read-only, scoped like the time they hold."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from approvals.models import ApprovalReason, ApprovalRequest, ApprovalStatus
from tests.factories import ProjectFactory, TimeEntryFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/approvals/"
REQUESTED = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)


def api_as(user) -> APIClient:
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def held(entry, reasons=(ApprovalReason.NO_RATE,), status=ApprovalStatus.PENDING, **values) -> ApprovalRequest:
    # Replace whatever the pipeline decided when the entry was made: the test states the request.
    ApprovalRequest.objects.filter(time_entry=entry).delete()
    return ApprovalRequest.objects.create(time_entry=entry, reasons=list(reasons), status=status,
                                          requested_at=REQUESTED, **values)


def test_an_approver_lists_requests_with_their_reasons(approver, staff_member):
    entry = TimeEntryFactory(member=staff_member)
    request = held(entry, reasons=[ApprovalReason.AMOUNT_OVER_LIMIT, ApprovalReason.CAP_EXCEEDED],
                   reason_messages=["Amount 1,200.00 USD is over the 1,000.00 limit."])
    data = api_as(approver.user).get(URL).json()

    assert data["count"] == 1
    row = data["results"][0]
    assert (row["id"], row["time_entry"], row["member"], row["project"]) == (
        request.id, entry.id, staff_member.id, entry.project_id)
    assert row["reasons"] == ["amount_over_limit", "cap_exceeded"]
    assert row["reason_messages"] == ["Amount 1,200.00 USD is over the 1,000.00 limit."]
    assert (row["status"], row["requested_at"], row["decided_by"], row["decided_at"], row["note"]) == (
        "pending", "2026-03-02T09:00:00Z", None, None, "")
    assert api_as(approver.user).get(f"{URL}{request.id}/").json()["id"] == request.id


def test_requests_are_read_only(finance, staff_member):
    request = held(TimeEntryFactory(member=staff_member))
    api = api_as(finance.user)
    assert api.post(URL, {"time_entry": request.time_entry_id}, format="json").status_code == 405
    assert api.patch(f"{URL}{request.id}/", {"status": "approved"}, format="json").status_code == 405
    assert api.delete(f"{URL}{request.id}/").status_code == 405
    request.refresh_from_db()
    assert request.status == ApprovalStatus.PENDING


def test_staff_cannot_see_the_queue(staff_member):
    held(TimeEntryFactory(member=staff_member))
    assert api_as(staff_member.user).get(URL).status_code == 403


def test_a_project_manager_sees_only_their_projects(project_manager, staff_member):
    mine = held(TimeEntryFactory(member=staff_member, project=ProjectFactory(manager=project_manager)))
    other = held(TimeEntryFactory(member=staff_member))
    api = api_as(project_manager.user)
    assert [row["id"] for row in api.get(URL).json()["results"]] == [mine.id]
    assert api.get(f"{URL}{other.id}/").status_code == 404


def test_filters(approver, staff_member, other_staff_member):
    project = ProjectFactory()
    first = held(TimeEntryFactory(member=staff_member, project=project),
                 reasons=[ApprovalReason.HOURS_OVER_LIMIT, ApprovalReason.BUDGET_THRESHOLD])
    second = held(TimeEntryFactory(member=other_staff_member), reasons=[ApprovalReason.NO_RATE],
                  status=ApprovalStatus.AUTO_APPROVED)
    api = api_as(approver.user)

    def ids(**params):
        response = api.get(URL, params)
        assert response.status_code == 200, response.data
        return [row["id"] for row in response.json()["results"]]

    assert ids(status="pending") == [first.id]
    assert ids(status="auto_approved") == [second.id]
    assert ids(project=project.id) == [first.id]
    assert ids(client=project.client_id) == [first.id]
    assert ids(member=other_staff_member.id) == [second.id]
    assert ids(reason="budget_threshold") == [first.id]
    assert ids(reason="no_rate") == [second.id]
    assert ids(reason="cap_exceeded") == []
    assert api.get(URL, {"reason": "because"}).status_code == 400


def test_listing_costs_the_same_queries_for_5_and_50_requests(approver, staff_member):
    def queries() -> int:
        api = api_as(approver.user)
        with CaptureQueriesContext(connection) as captured:
            assert api.get(URL, {"page_size": 100}).status_code == 200
        return len(captured)

    for _ in range(5):
        held(TimeEntryFactory(member=staff_member))
    few = queries()
    for _ in range(45):
        held(TimeEntryFactory(member=staff_member))
    assert queries() == few
