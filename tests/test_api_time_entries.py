"""REST API: time entries, written through the pipeline (all or nothing), visible as the roles allow."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from approvals.models import ApprovalReason, ApprovalRequest
from billing.models import Allocation, Invoice, InvoiceLine
from projects.api import TimeEntrySerializer, with_live_invoice
from projects.models import EDITABLE_STATUSES, EntrySource, EntryStatus, ProjectStatus, TimeEntry
from tests.factories import ProjectFactory, TaskTypeFactory, TimeEntryFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/time-entries/"
DAY = dt.date(2026, 3, 2)


def api_as(user) -> APIClient:
    """A client that signs every request with the user's token, as a script would."""
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def project():
    return ProjectFactory(code="acme-web", contract__end_date=dt.date(2026, 12, 31), end_date=dt.date(2026, 6, 30))


@pytest.fixture
def task_type():
    return TaskTypeFactory(code="dev", name="Development")


@pytest.fixture
def body(project, task_type):
    return {"project": project.id, "task_type": task_type.id, "work_date": "2026-03-02", "minutes": 90,
            "description": "Wireframes", "external_id": "jira-1"}


def entry_of(member, project, task_type, **values):
    return TimeEntryFactory(member=member, project=project, task_type=task_type, **values)


# Logging time


def test_a_valid_entry_is_stored_for_the_caller_and_answered_with_its_status(staff_member, body):
    response = api_as(staff_member.user).post(URL, body, format="json")

    assert response.status_code == 201, response.data
    stored = TimeEntry.objects.get()
    assert (stored.member, stored.minutes, stored.work_date, stored.description) == (
        staff_member, 90, DAY, "Wireframes")
    assert (stored.source, stored.external_id, stored.created_by) == (EntrySource.API, "jira-1", staff_member.user)
    data = response.json()
    assert data["id"] == stored.id and data["member"] == staff_member.id
    assert data["status"] == stored.status and data["status"] in EntryStatus.values
    approval = ApprovalRequest.objects.filter(time_entry=stored).first()
    assert data["approval_reasons"] == (approval.reasons if approval else [])
    assert data["source"] == "api" and data["invoice"] is None
    assert {"billable_minutes", "over_cap_minutes", "rate", "rate_currency", "amount", "amount_currency",
            "cost_amount", "rate_rule", "billability_reason"} <= data.keys()


def test_posting_the_same_external_id_again_updates_the_same_row(staff_member, body):
    client = api_as(staff_member.user)
    first = client.post(URL, body, format="json")
    again = client.post(URL, {**body, "minutes": 45}, format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert list(TimeEntry.objects.values_list("minutes", flat=True)) == [45]


def test_an_entry_without_external_id_gets_one(staff_member, body):
    del body["external_id"]
    response = api_as(staff_member.user).post(URL, body, format="json")
    assert response.status_code == 201
    assert response.json()["external_id"] == TimeEntry.objects.get().external_id != ""


def test_finance_logs_time_for_another_member(finance, staff_member, body):
    response = api_as(finance.user).post(URL, {**body, "member": staff_member.id}, format="json")
    assert response.status_code == 201
    assert TimeEntry.objects.get().member == staff_member


def test_staff_cannot_log_time_for_someone_else(staff_member, other_staff_member, body):
    response = api_as(staff_member.user).post(URL, {**body, "member": other_staff_member.id}, format="json")
    assert response.status_code == 400
    assert "own time" in response.json()["member"][0]
    assert not TimeEntry.objects.exists()


def test_a_user_who_is_not_a_team_member_cannot_log_time(body):
    user = UserFactory(roles=["finance"])
    response = api_as(user).post(URL, body, format="json")
    assert response.status_code == 403
    assert not TimeEntry.objects.exists()


def test_anonymous_callers_are_refused(body):
    client = APIClient()
    assert client.get(URL).status_code == 401
    assert client.post(URL, body, format="json").status_code == 401
    assert not TimeEntry.objects.exists()


# Bad input: 400 naming the field, nothing saved


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"minutes": 0}, "minutes", "positive"),
        ({"minutes": -30}, "minutes", "positive"),
        ({"minutes": 25 * 60}, "minutes", "24 hours"),
        ({"minutes": "abc"}, "minutes", "valid integer"),
        ({"minutes": None}, "minutes", "may not be null"),
        ({"project": 999999}, "project", "Unknown project"),
        ({"project": "acme"}, "project", "valid integer"),
        ({"member": 999999}, "member", "Unknown team member"),
        ({"task_type": 999999}, "task_type", "Unknown task type"),
        ({"work_date": "2025-12-31"}, "work_date", "outside project"),
        ({"work_date": "2026-07-01"}, "work_date", "outside project"),
        ({"work_date": "02/03/2026"}, "work_date", "wrong format"),
        ({"work_date": "2026-02-30"}, "work_date", "wrong format"),
        ({"started_at": "2026-03-02T10:00:00Z", "stopped_at": "2026-03-02T09:00:00Z"}, "stopped_at", "before"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(staff_member, body, changes, field, fragment):
    response = api_as(staff_member.user).post(URL, {**body, **changes}, format="json")
    assert response.status_code == 400
    assert fragment in " ".join(response.json()[field])
    assert not TimeEntry.objects.exists()


def test_a_required_field_left_out_is_named(staff_member, body):
    del body["project"]
    response = api_as(staff_member.user).post(URL, body, format="json")
    assert response.status_code == 400 and "required" in response.json()["project"][0]


def test_an_archived_project_takes_no_time(staff_member, project, body):
    project.status = ProjectStatus.ARCHIVED
    project.save()
    response = api_as(staff_member.user).post(URL, body, format="json")
    assert response.status_code == 400 and "archived" in response.json()["project"][0]
    assert not TimeEntry.objects.exists()


def test_a_date_outside_the_contract_is_refused(staff_member, task_type, body):
    project = ProjectFactory(contract__start_date=dt.date(2026, 3, 1), start_date=dt.date(2026, 1, 1))
    response = api_as(staff_member.user).post(URL, {**body, "project": project.id, "work_date": "2026-02-27"},
                                              format="json")
    assert response.status_code == 400 and "outside contract" in response.json()["work_date"][0]
    assert not TimeEntry.objects.exists()


def test_more_than_24_hours_in_one_day_counts_what_is_stored(staff_member, project, task_type, body):
    entry_of(staff_member, project, task_type, work_date=DAY, minutes=20 * 60)
    response = api_as(staff_member.user).post(URL, {**body, "minutes": 5 * 60}, format="json")
    assert response.status_code == 400
    assert "more than 24 hours" in response.json()["minutes"][0]
    assert TimeEntry.objects.count() == 1


def test_malformed_json_is_a_400(staff_member):
    response = api_as(staff_member.user).post(URL, '{"minutes": 60,', content_type="application/json")
    assert response.status_code == 400 and "JSON parse error" in response.json()["detail"]
    assert not TimeEntry.objects.exists()


def test_a_body_that_is_neither_an_object_nor_a_list_is_a_400(staff_member):
    response = api_as(staff_member.user).post(URL, '"ninety minutes"', content_type="application/json")
    assert response.status_code == 400 and "non_field_errors" in response.json()


# A list body: all or nothing


def test_a_list_body_stores_every_entry_and_answers_them_in_order(staff_member, body):
    items = [{**body, "external_id": f"jira-{n}", "minutes": 10 * n} for n in (1, 2, 3)]
    response = api_as(staff_member.user).post(URL, items, format="json")

    assert response.status_code == 201
    assert [item["minutes"] for item in response.json()] == [10, 20, 30]
    assert [item["external_id"] for item in response.json()] == ["jira-1", "jira-2", "jira-3"]
    assert TimeEntry.objects.count() == 3


def test_one_bad_item_rejects_the_whole_list_with_errors_in_input_order(staff_member, body):
    items = [{**body, "external_id": "a"}, {**body, "external_id": "b", "minutes": 0}, {**body, "external_id": "c"}]
    response = api_as(staff_member.user).post(URL, items, format="json")

    assert response.status_code == 400
    errors = response.json()
    assert errors[0] == {} and errors[2] == {}
    assert "positive" in errors[1]["minutes"][0]
    assert not TimeEntry.objects.exists()


def test_a_type_error_in_one_item_rejects_the_list(staff_member, body):
    response = api_as(staff_member.user).post(URL, [body, {**body, "external_id": "x", "work_date": "soon"}],
                                              format="json")
    assert response.status_code == 400
    assert response.json()[0] == {} and "work_date" in response.json()[1]
    assert not TimeEntry.objects.exists()


def test_duplicated_external_ids_in_one_list_are_refused(staff_member, body):
    response = api_as(staff_member.user).post(URL, [body, {**body, "minutes": 30}], format="json")
    assert response.status_code == 400
    errors = response.json()
    assert errors[0] == {} and "more than once" in errors[1]["external_id"][0]
    assert not TimeEntry.objects.exists()


def test_an_empty_list_is_refused(staff_member):
    response = api_as(staff_member.user).post(URL, [], format="json")
    assert response.status_code == 400 and not TimeEntry.objects.exists()


def test_the_list_is_checked_against_24_hours_as_a_whole(staff_member, body):
    items = [{**body, "external_id": "a", "minutes": 13 * 60}, {**body, "external_id": "b", "minutes": 12 * 60}]
    response = api_as(staff_member.user).post(URL, items, format="json")
    assert response.status_code == 400
    assert response.json()[0] == {} and "24 hours" in response.json()[1]["minutes"][0]
    assert not TimeEntry.objects.exists()


# Reading: a member sees their own entries, a manager their projects', finance everything


def test_another_members_entry_does_not_exist_for_a_staff_member(staff_member, other_staff_member, project,
                                                                    task_type):
    theirs = entry_of(other_staff_member, project, task_type, minutes=60)
    mine = entry_of(staff_member, project, task_type, minutes=30)
    client = api_as(staff_member.user)

    assert [item["id"] for item in client.get(URL).json()["results"]] == [mine.id]
    assert client.get(f"{URL}{theirs.id}/").status_code == 404
    assert client.patch(f"{URL}{theirs.id}/", {"minutes": 5}, format="json").status_code == 404
    assert client.delete(f"{URL}{theirs.id}/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.minutes == 60


def test_finance_and_the_project_manager_see_the_entry(staff_member, finance, project_manager, task_type):
    project = ProjectFactory(manager=project_manager)
    entry = entry_of(staff_member, project, task_type)
    assert api_as(finance.user).get(f"{URL}{entry.id}/").status_code == 200
    assert api_as(project_manager.user).get(f"{URL}{entry.id}/").status_code == 200


def test_a_project_manager_cannot_change_a_members_entry(staff_member, project_manager, task_type):
    project = ProjectFactory(manager=project_manager)
    entry = entry_of(staff_member, project, task_type, minutes=60)
    client = api_as(project_manager.user)
    assert client.patch(f"{URL}{entry.id}/", {"minutes": 5}, format="json").status_code == 403
    assert client.delete(f"{URL}{entry.id}/").status_code == 403
    entry.refresh_from_db()
    assert entry.minutes == 60


def test_approval_reasons_come_from_the_approval_request(staff_member, project, task_type):
    entry = entry_of(staff_member, project, task_type)
    ApprovalRequest.objects.create(time_entry=entry, reasons=[ApprovalReason.NO_RATE],
                                   requested_at=dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC))
    data = api_as(staff_member.user).get(f"{URL}{entry.id}/").json()
    assert data["approval_reasons"] == ["no_rate"]


def test_cost_figures_are_hidden_from_staff(staff_member, finance, project, task_type):
    entry = entry_of(staff_member, project, task_type)
    TimeEntry.objects.filter(id=entry.id).update(cost_amount=60, cost_amount_currency="USD")
    assert api_as(staff_member.user).get(f"{URL}{entry.id}/").json()["cost_amount"] is None
    data = api_as(finance.user).get(f"{URL}{entry.id}/").json()
    assert (data["cost_amount"], data["cost_amount_currency"]) == ("60.00", "USD")


# Changing and deleting


def test_a_member_changes_their_entry_through_the_pipeline(staff_member, project, task_type):
    entry = entry_of(staff_member, project, task_type, minutes=60, source=EntrySource.PORTAL, external_id="p-1",
                     description="Draft")
    response = api_as(staff_member.user).patch(f"{URL}{entry.id}/", {"minutes": 75}, format="json")

    assert response.status_code == 200, response.data
    entry.refresh_from_db()
    assert (entry.minutes, entry.description, entry.source, entry.external_id) == (75, "Draft", "portal", "p-1")
    assert TimeEntry.objects.count() == 1
    assert response.json()["minutes"] == 75 and response.json()["status"] == entry.status


def test_put_replaces_the_facts(staff_member, project, task_type, body):
    entry = entry_of(staff_member, project, task_type, minutes=60, external_id="jira-1", description="Old")
    response = api_as(staff_member.user).put(f"{URL}{entry.id}/", {**body, "minutes": 120}, format="json")
    assert response.status_code == 200, response.data
    entry.refresh_from_db()
    assert (entry.minutes, entry.description) == (120, "Wireframes")


def test_finance_changes_a_members_entry_without_taking_it_over(staff_member, finance, project, task_type):
    entry = entry_of(staff_member, project, task_type, minutes=60)
    response = api_as(finance.user).patch(f"{URL}{entry.id}/", {"minutes": 30}, format="json")
    assert response.status_code == 200
    entry.refresh_from_db()
    assert (entry.member, entry.minutes) == (staff_member, 30)


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"minutes": 0}, "minutes"), ({"work_date": "2027-01-04"}, "work_date"), ({"project": 999999}, "project"),
     ({"external_id": "other"}, "external_id"), ({"minutes": "lots"}, "minutes")],
)
def test_a_bad_change_is_a_400_and_changes_nothing(staff_member, project, task_type, changes, field):
    entry = entry_of(staff_member, project, task_type, minutes=60)
    response = api_as(staff_member.user).patch(f"{URL}{entry.id}/", changes, format="json")
    assert response.status_code == 400 and field in response.json()
    entry.refresh_from_db()
    assert (entry.minutes, entry.work_date, entry.project) == (60, DAY, project)


@pytest.mark.parametrize(
    "values",
    [{"status": state} for state in EntryStatus if state not in EDITABLE_STATUSES]
    + [{"status": EntryStatus.PENDING, "conflict": "Changed at the source after invoicing"}],
)
def test_an_entry_no_longer_editable_cannot_be_changed_or_deleted(staff_member, project, task_type, values):
    entry = entry_of(staff_member, project, task_type, minutes=60, **values)
    client = api_as(staff_member.user)

    response = client.patch(f"{URL}{entry.id}/", {"minutes": 30}, format="json")
    assert response.status_code == 400
    assert "can no longer be changed" in response.json()["non_field_errors"][0]
    deleted = client.delete(f"{URL}{entry.id}/")
    assert deleted.status_code == 400 and "can no longer be deleted" in deleted.json()["non_field_errors"][0]
    entry.refresh_from_db()
    assert entry.minutes == 60


@pytest.mark.parametrize("state", EDITABLE_STATUSES)
def test_a_member_deletes_their_entry_while_it_is_editable(staff_member, project, task_type, state):
    entry = entry_of(staff_member, project, task_type, status=state)
    assert api_as(staff_member.user).delete(f"{URL}{entry.id}/").status_code == 204
    assert not TimeEntry.objects.exists()


def test_correcting_an_approved_entry_sends_it_back_through_the_pipeline(staff_member, project, task_type):
    entry = entry_of(staff_member, project, task_type, minutes=60, status=EntryStatus.APPROVED)
    response = api_as(staff_member.user).patch(f"{URL}{entry.id}/", {"minutes": 45}, format="json")
    assert response.status_code == 200
    entry.refresh_from_db()
    assert entry.minutes == 45 and entry.rated_at is not None
    assert response.json()["status"] == entry.status


# Filters and pagination


def test_filters_narrow_the_list(finance, staff_member, other_staff_member, project, task_type):
    other_project = ProjectFactory()
    other_task = TaskTypeFactory()
    early = entry_of(staff_member, project, task_type, work_date=dt.date(2026, 3, 2), billable=False)
    late = entry_of(staff_member, project, task_type, work_date=dt.date(2026, 3, 20), status=EntryStatus.APPROVED)
    elsewhere = entry_of(other_staff_member, other_project, other_task, work_date=dt.date(2026, 3, 10),
                         source=EntrySource.TOGGL)
    client = api_as(finance.user)

    def ids(**params):
        response = client.get(URL, params)
        assert response.status_code == 200, response.data
        return {item["id"] for item in response.json()["results"]}

    assert ids() == {early.id, late.id, elsewhere.id}
    assert ids(member=staff_member.id) == {early.id, late.id}
    assert ids(project=other_project.id) == {elsewhere.id}
    assert ids(client=other_project.client_id) == {elsewhere.id}
    assert ids(task_type=other_task.id) == {elsewhere.id}
    assert ids(status="approved") == {late.id}
    assert ids(source="toggl") == {elsewhere.id}
    assert ids(billable="false") == {early.id}
    assert ids(work_date_after="2026-03-05", work_date_before="2026-03-20") == {late.id, elsewhere.id}
    assert ids(start="2026-03-01", end="2026-03-10") == {early.id, elsewhere.id}
    assert client.get(URL, {"work_date_after": "March"}).status_code == 400
    assert client.get(URL, {"status": "lost"}).status_code == 400


def test_the_list_is_paginated(staff_member, project, task_type):
    for day in range(1, 6):
        entry_of(staff_member, project, task_type, work_date=dt.date(2026, 3, day))
    data = api_as(staff_member.user).get(URL, {"page_size": 2, "page": 2}).json()
    assert data["count"] == 5 and len(data["results"]) == 2
    assert "page=3" in data["next"] and data["previous"]


# Query counts stay flat as rows grow


def _entries(member, project, task_type, count):
    for n in range(count):
        entry = entry_of(member, project, task_type, work_date=DAY + dt.timedelta(days=n % 90), minutes=1)
        if n % 2:
            ApprovalRequest.objects.create(time_entry=entry, reasons=["no_rate"],
                                           requested_at=dt.datetime(2026, 3, 2, tzinfo=dt.UTC))


def _list_queries(user) -> int:
    client = api_as(user)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL, {"page_size": 100})
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("role", ["staff_member", "finance"])
def test_listing_costs_the_same_queries_for_5_and_50_entries(request, project, task_type, role):
    caller = request.getfixturevalue(role)
    project.end_date = None
    project.save()
    _entries(caller, project, task_type, 5)
    few = _list_queries(caller.user)
    _entries(caller, project, task_type, 45)
    assert _list_queries(caller.user) == few
    assert few <= 8


def test_posting_a_list_costs_the_same_queries_for_5_and_50_entries(staff_member, project, task_type, body):
    project.end_date = None
    project.save()

    def post(count, prefix):
        items = [{**body, "external_id": f"{prefix}-{n}", "minutes": 1,
                  "work_date": str(DAY + dt.timedelta(days=n))} for n in range(count)]
        client = api_as(staff_member.user)
        with CaptureQueriesContext(connection) as queries:
            response = client.post(URL, items, format="json")
        assert response.status_code == 201, response.data
        # SQLite splits a large bulk insert by its parameter limit; everything else must stay flat.
        return len([query for query in queries if not query["sql"].startswith("INSERT INTO")])

    assert post(5, "small") == post(50, "large")
    assert TimeEntry.objects.count() == 55



def test_a_list_longer_than_the_batch_limit_is_refused_as_a_whole(staff_member, body):
    response = api_as(staff_member.user).post(URL, [body] * 1001, format="json")
    assert response.status_code == 400
    assert "1000" in response.json()["non_field_errors"][0]
    assert not TimeEntry.objects.exists()


# The list's fast rendering


def _drf_field_walk(entry: TimeEntry, *, sees_money: bool) -> dict:
    """What DRF's generic serializer gives for the entry: the reference the fast path must match."""
    walked = serializers.ModelSerializer.to_representation(TimeEntrySerializer(context={}), entry)
    return walked if sees_money else {**walked, "cost_amount": None, "cost_amount_currency": None}


def _invoiced(entry: TimeEntry) -> Invoice:
    contract = entry.project.contract
    invoice = Invoice.objects.create(client=contract.client, contract=contract, currency="EUR",
                                     period_start=dt.date(2026, 3, 1), period_end=dt.date(2026, 3, 31))
    line = InvoiceLine.objects.create(invoice=invoice, position=1, kind="time", description="Time",
                                      quantity=Decimal("1.50"), unit_rate=Decimal("120.00"),
                                      amount=Decimal("180.00"), project=entry.project, contract=contract)
    Allocation.objects.create(time_entry=entry, line=line, minutes=90, amount=Decimal("180.00"))
    return invoice


@pytest.mark.parametrize("role", ["staff_member", "finance"])
def test_the_list_renders_every_kind_of_entry_byte_for_byte_as_drf_does(request, staff_member, project,
                                                                         task_type, role):
    project.end_date = None
    project.save()
    caller = request.getfixturevalue(role)
    at = dt.datetime(2026, 3, 2, 9, 15, 30, 250000, tzinfo=dt.UTC)
    unrated = entry_of(staff_member, project, task_type, status=EntryStatus.PENDING, description="Café ☕ \"q\"")
    in_euros = entry_of(staff_member, project, task_type, status=EntryStatus.REJECTED, started_at=at,
                        stopped_at=at + dt.timedelta(minutes=90), conflict="Changed at the source")
    invoiced = entry_of(staff_member, project, task_type, status=EntryStatus.INVOICED, billable=False)
    TimeEntry.objects.filter(id=in_euros.id).update(
        rate=Decimal("120"), rate_currency="EUR", amount=Decimal("180.5"), amount_currency="EUR",
        cost_amount=Decimal("0.1"), cost_amount_currency="GBP", billable_minutes=90, over_cap_minutes=15,
        rate_rule="Contract rate", billability_reason="over_cap")
    TimeEntry.objects.filter(id=invoiced.id).update(
        rate=Decimal("99.999"), rate_currency="USD", amount=Decimal("1234567.89"), amount_currency="USD")
    ApprovalRequest.objects.create(time_entry=unrated, reasons=[ApprovalReason.NO_RATE, ApprovalReason.CAP_EXCEEDED],
                                   requested_at=at)
    ApprovalRequest.objects.create(time_entry=in_euros, reasons=[], requested_at=at)
    invoice = _invoiced(invoiced)

    response = api_as(caller.user).get(URL)

    assert response.status_code == 200
    stored = with_live_invoice(TimeEntry.objects.select_related("approval")).in_bulk()
    rows = response.json()["results"]
    assert sorted(row["id"] for row in rows) == sorted([unrated.id, in_euros.id, invoiced.id])
    sees_money = role == "finance"
    expected = [_drf_field_walk(stored[row["id"]], sees_money=sees_money) for row in rows]
    assert response.content.endswith(json.dumps(expected, ensure_ascii=False, separators=(",", ":"))
                                      .encode() + b"}")
    by_id = {row["id"]: row for row in rows}
    assert (by_id[unrated.id]["rate"], by_id[unrated.id]["amount_currency"]) == (None, None)
    assert by_id[unrated.id]["approval_reasons"] == ["no_rate", "cap_exceeded"]
    assert by_id[in_euros.id]["started_at"] == "2026-03-02T09:15:30.250000Z"
    assert (by_id[in_euros.id]["amount"], by_id[in_euros.id]["amount_currency"]) == ("180.50", "EUR")
    assert by_id[in_euros.id]["cost_amount"] == ("0.10" if sees_money else None)
    assert (by_id[invoiced.id]["rate"], by_id[invoiced.id]["invoice"]) == ("100.00", invoice.id)
    assert by_id[invoiced.id]["approval_reasons"] == []


@override_settings(TIME_ZONE="America/New_York")
def test_the_list_renders_times_in_the_firms_time_zone_as_drf_does(staff_member, project, task_type):
    at = dt.datetime(2026, 3, 2, 14, 0, tzinfo=dt.UTC)
    entry = entry_of(staff_member, project, task_type, started_at=at, stopped_at=at + dt.timedelta(hours=1))

    row = api_as(staff_member.user).get(URL).json()["results"][0]

    assert (row["started_at"], row["stopped_at"]) == ("2026-03-02T09:00:00-05:00", "2026-03-02T10:00:00-05:00")
    stored = with_live_invoice(TimeEntry.objects.select_related("approval")).get(id=entry.id)
    assert row == _drf_field_walk(stored, sees_money=False)
