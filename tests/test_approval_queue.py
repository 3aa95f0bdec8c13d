"""The admin approval queue: pending time with its reasons, filters, search, and decisions through the service."""

import datetime as dt

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from djmoney.money import Money

from approvals.admin import InQueueFilter
from approvals.models import ApprovalEvent, ApprovalReason, ApprovalRequest, ApprovalStatus
from billing.pipeline import TimeEntryInput, ingest
from projects.models import EntrySource, EntryStatus, TimeEntry
from tests.factories import (
    ClientFactory,
    ProjectFactory,
    RateFactory,
    TaskTypeFactory,
    TeamMemberFactory,
    TimeEntryFactory,
)

pytestmark = pytest.mark.django_db

QUEUE = reverse("admin:approvals_approvalrequest_changelist")
LABELS = dict(ApprovalReason.choices)


def held(member, project, *, reasons=("amount_over_limit",), minutes=90, amount="1500.00", description="",
         waiting=dt.timedelta(hours=1), status=ApprovalStatus.PENDING) -> ApprovalRequest:
    """A request as routing leaves it: the entry pending, the reasons with their messages."""
    entry = TimeEntryFactory(member=member, project=project, minutes=minutes, description=description,
                             status=EntryStatus.PENDING if status == ApprovalStatus.PENDING else EntryStatus.APPROVED,
                             billable_minutes=minutes, amount=Money(amount, "USD"))
    return ApprovalRequest.objects.create(time_entry=entry, status=status, reasons=list(reasons),
                                          reason_messages=[f"{LABELS[code]}." for code in reasons],
                                          requested_at=timezone.now() - waiting)


def shown(response) -> list[ApprovalRequest]:
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def act(client, action: str, requests, url: str = QUEUE, **data):
    return client.post(url, {"action": action, ACTION_CHECKBOX_NAME: [r.pk for r in requests], "index": 0,
                             **data}, follow=True)


def confirm(client, action: str, requests, url: str = QUEUE, **data):
    """The confirmation page posts back without `index`, with `post`."""
    return client.post(url, {"action": action, ACTION_CHECKBOX_NAME: [r.pk for r in requests], "post": "yes",
                             **data}, follow=True)


@pytest.fixture
def acme(db):
    return ProjectFactory(code="acme-web", name="Acme website", contract__client__name="Acme")


@pytest.fixture
def globex(db):
    return ProjectFactory(code="globex-app", name="Globex app", contract__client__name="Globex")


@pytest.fixture
def as_approver(client, approver):
    client.force_login(approver.user)
    return client


# --- The queue ------------------------------------------------------------------------------------------

def test_the_queue_shows_pending_time_oldest_first_with_its_reasons(as_approver, staff_member, acme):
    # A real held entry: 700 minutes at 100.00/h is over both the amount and the hours limits.
    RateFactory(contract=acme.contract, hourly_rate=Money("100.00", "USD"))
    dev = TaskTypeFactory(code="dev", name="Development")
    result = ingest([TimeEntryInput(member_id=staff_member.id, project_id=acme.id, task_type_id=dev.id,
                                    work_date=dt.date(2026, 3, 2), minutes=700, external_id="long-day")],
                    EntrySource.API)
    fresh = ApprovalRequest.objects.get(time_entry=result.by_index[0])
    older = held(staff_member, acme, reasons=["cap_exceeded"], waiting=dt.timedelta(days=3, hours=2))
    held(staff_member, acme, status=ApprovalStatus.APPROVED, waiting=dt.timedelta(days=9))

    response = as_approver.get(QUEUE)
    assert shown(response) == [older, fresh]
    page = response.content.decode()
    for text in ("Sam Staff", "Acme", "acme-web", "11.67", "1,166.67 USD",
                 "Amount 1,166.67 USD is over the auto-approval limit of 1,000.00 USD.",
                 "is longer than the auto-approval limit", "Contract cap exceeded.", "3\xa0days"):
        assert text in page, text

    model_admin = response.context["cl"].model_admin
    assert list(response.context["cl"].list_display)[1:] == [
        "member", "client", "project", "work_date", "hours", "amount", "reason_list", "age", "status"]
    assert model_admin.age(older) == "3\xa0days"
    assert model_admin.amount(fresh) == "1,166.67 USD"
    # A request stored with codes only still says what they mean.
    older.reason_messages = []
    assert model_admin.reason_list(older) == "Contract cap exceeded"


def test_all_shows_decided_requests_too(as_approver, staff_member, acme):
    pending = held(staff_member, acme)
    approved = held(staff_member, acme, status=ApprovalStatus.APPROVED, waiting=dt.timedelta(days=2))
    assert shown(as_approver.get(QUEUE, {"status": "all"})) == [approved, pending]
    assert shown(as_approver.get(QUEUE, {"status": "approved"})) == [approved]


@pytest.mark.parametrize(("params", "expected"), [
    ({"reason": "cap_exceeded"}, {"cap"}),
    ({"reason": "amount_over_limit"}, {"amount", "both"}),
    ({"reason": "hours_over_limit"}, {"both"}),
    ({"reason": "no_rate"}, set()),
    ({"client": "Globex"}, {"both"}),
    ({"project": "acme-web"}, {"amount", "cap"}),
    ({"member": "Olive Other"}, {"cap"}),
    ({"reason": "amount_over_limit", "project": "acme-web"}, {"amount"}),
])
def test_the_queue_filters_by_reason_client_project_and_member(as_approver, staff_member, other_staff_member,
                                                                acme, globex, params, expected):
    requests = {
        "amount": held(staff_member, acme, reasons=["amount_over_limit"]),
        "cap": held(other_staff_member, acme, reasons=["cap_exceeded"]),
        "both": held(staff_member, globex, reasons=["amount_over_limit", "hours_over_limit"]),
    }
    query = {}
    for name, value in params.items():
        if name == "reason":
            query["reason"] = value
        elif name == "client":
            query["time_entry__project__client__id__exact"] = globex.client.pk
        elif name == "project":
            query["time_entry__project__id__exact"] = acme.pk
        elif name == "member":
            query["time_entry__member__id__exact"] = other_staff_member.pk
    assert set(shown(as_approver.get(QUEUE, query))) == {requests[name] for name in expected}


def test_the_queue_renders_with_facet_counts(as_approver, staff_member, acme):
    request = held(staff_member, acme, reasons=["cap_exceeded"])
    response = as_approver.get(QUEUE, {"_facets": "True", "reason": "cap_exceeded"})
    assert shown(response) == [request]


def test_the_filters_offer_only_what_is_in_the_queue(as_approver, staff_member, acme, globex):
    held(staff_member, acme)
    ClientFactory(name="Initech")
    response = as_approver.get(QUEUE)
    page = response.content.decode()
    assert "Globex" not in page and "Initech" not in page
    assert LABELS["budget_threshold"] in page


def test_the_filters_offer_what_djangos_related_only_filters_would(as_approver, staff_member, other_staff_member,
                                                                   acme, globex):
    held(staff_member, acme)
    # A decided request is in the queue too (under "All").
    held(other_staff_member, globex, status=ApprovalStatus.APPROVED)
    # Time without a request yet (not routed), and a client with no time at all, are not.
    initech = ProjectFactory(code="initech-ops", name="Initech ops", contract__client__name="Initech")
    TimeEntryFactory(member=TeamMemberFactory(name="Rita Recorded"), project=initech, status=EntryStatus.RECORDED)
    ClientFactory(name="Umbrella")
    response = as_approver.get(QUEUE)
    changelist = response.context["cl"]
    specs = [spec for spec in changelist.filter_specs if isinstance(spec, InQueueFilter)]
    offered = {spec.field_path: spec.lookup_choices for spec in specs}
    assert {label for _, label in offered["time_entry__project__client"]} == {str(acme.client), str(globex.client)}
    assert offered["time_entry__project"] == [(acme.pk, str(acme)), (globex.pk, str(globex))]
    assert offered["time_entry__member"] == [(other_staff_member.pk, str(other_staff_member)),
                                             (staff_member.pk, str(staff_member))]
    for spec in specs:
        django_filter = admin.RelatedOnlyFieldListFilter(spec.field, response.wsgi_request, {}, ApprovalRequest,
                                                         changelist.model_admin, spec.field_path)
        assert spec.lookup_choices == django_filter.lookup_choices, spec.field_path


@pytest.mark.parametrize("query", [{}, {"q": "Acme", "status": "all"}, {"reason": "amount_over_limit", "o": "2.-3"}])
def test_the_filter_links_are_the_ones_django_builds(as_approver, staff_member, other_staff_member, acme, globex,
                                                     query):
    held(staff_member, acme)
    held(other_staff_member, globex)
    response = as_approver.get(QUEUE, {**query, "time_entry__member__id__exact": staff_member.pk})
    changelist = response.context["cl"]
    specs = [spec for spec in changelist.filter_specs if isinstance(spec, InQueueFilter)]
    assert len(specs) == 3
    for spec in specs:
        links = list(spec.choices(changelist))
        assert links == list(admin.RelatedFieldListFilter.choices(spec, changelist)), spec.field_path
        assert len(links) == 3  # "All" and two choices
    [member_filter] = [spec for spec in specs if spec.field_path == "time_entry__member"]
    assert [link["selected"] for link in member_filter.choices(changelist)] == [
        False, *(pk == staff_member.pk for pk, _ in member_filter.lookup_choices)]


def test_the_queue_reads_only_what_its_page_shows(as_approver, staff_member, acme, globex):
    held(staff_member, acme)
    held(staff_member, globex)
    with CaptureQueriesContext(connection) as queries:
        assert len(shown(as_approver.get(QUEUE))) == 2
    statements = [query["sql"] for query in queries]
    # The filters probe each client, project and member for a request instead of a DISTINCT over all of them,
    # and the list joins the tables of its columns only: not the task type, policy or decider of a request's page.
    assert not any("DISTINCT" in sql for sql in statements)
    assert not any("approvals_approvalpolicy" in sql or "projects_tasktype" in sql for sql in statements)


def test_the_row_checkboxes_are_written_as_django_writes_them(as_approver, staff_member, acme):
    request = held(staff_member, acme)
    model_admin = admin.site._registry[ApprovalRequest]
    checkbox = model_admin.action_checkbox(request)
    assert checkbox == admin.ModelAdmin.action_checkbox(model_admin, request)
    assert checkbox in as_approver.get(QUEUE).content.decode()


@pytest.mark.parametrize(("search", "expected"), [
    ("Olive", {"cap"}), ("globex-app", {"both"}), ("Acme website", {"amount", "cap"}), ("Globex", {"both"}),
    ("workshop", {"amount"}), ("nothing like it", set()),
])
def test_the_queue_searches_member_project_client_and_description(as_approver, staff_member,
                                                                   other_staff_member, acme, globex, search,
                                                                   expected):
    requests = {
        "amount": held(staff_member, acme, description="Client workshop"),
        "cap": held(other_staff_member, acme),
        "both": held(staff_member, globex),
    }
    assert set(shown(as_approver.get(QUEUE, {"q": search}))) == {requests[name] for name in expected}


# --- Decisions ---------------------------------------------------------------------------------------------

def test_approve_selected_approves_through_the_service(as_approver, approver, staff_member, acme):
    first, second = held(staff_member, acme), held(staff_member, acme)
    untouched = held(staff_member, acme)
    response = act(as_approver, "approve_selected", [first, second])
    assert "Approved 2 entries." in messages_of(response)
    for request in (first, second):
        request.refresh_from_db()
        assert (request.status, request.decided_by, request.time_entry.status) == (
            ApprovalStatus.APPROVED, approver.user, EntryStatus.APPROVED)
        assert request.decided_at is not None
        event = ApprovalEvent.objects.get(request=request)
        assert (event.actor, event.action, event.status_before) == (approver.user, "approved", "pending")
    untouched.refresh_from_db()
    assert untouched.status == ApprovalStatus.PENDING


def test_reject_selected_asks_for_a_reason_and_emails_each_member(as_approver, approver, staff_member,
                                                                  other_staff_member, acme,
                                                                  django_capture_on_commit_callbacks):
    mine, theirs = held(staff_member, acme), held(other_staff_member, acme)

    page = act(as_approver, "reject_selected", [mine, theirs])
    assert page.templates[0].name == "admin/billable/confirm_action.html"
    text = page.content.decode()
    assert "Sam Staff · acme-web" in text and "Olive Other · acme-web" in text
    assert 'name="reason"' in text and "Say why" not in text

    blank = confirm(as_approver, "reject_selected", [mine, theirs], reason="   ")
    assert blank.status_code == 200
    assert "Say why the time is rejected." in blank.content.decode()
    assert ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING).count() == 2
    assert mail.outbox == []

    with django_capture_on_commit_callbacks(execute=True):
        done = confirm(as_approver, "reject_selected", [mine, theirs], reason="Not agreed with the client")
    assert "Rejected 2 entries; each member is emailed the reason." in messages_of(done)
    for request in (mine, theirs):
        request.refresh_from_db()
        assert (request.status, request.note, request.decided_by) == (
            ApprovalStatus.REJECTED, "Not agreed with the client", approver.user)
        assert request.time_entry.status == EntryStatus.REJECTED
    assert sorted(message.to[0] for message in mail.outbox) == sorted([staff_member.email,
                                                                        other_staff_member.email])
    assert all("Reason: Not agreed with the client" in message.body for message in mail.outbox)


def test_own_time_is_refused_with_a_message_and_left_pending(as_approver, approver, staff_member, acme):
    own, other = held(approver, acme), held(staff_member, acme)
    response = act(as_approver, "approve_selected", [own, other])
    texts = messages_of(response)
    assert "Approved 1 entry." in texts
    assert f"Not decided: Entry {own.time_entry_id} is your own time: someone else must decide it." in texts
    own.refresh_from_db()
    assert own.status == ApprovalStatus.PENDING
    assert not ApprovalEvent.objects.filter(request=own).exists()


def test_a_request_decided_meanwhile_is_reported_not_silently_skipped(as_approver, finance, staff_member, acme):
    request = held(staff_member, acme)
    ApprovalRequest.objects.filter(pk=request.pk).update(status=ApprovalStatus.APPROVED)
    response = act(as_approver, "approve_selected", [request])
    assert any("is not awaiting approval" in text for text in messages_of(response))


def test_a_project_manager_sees_and_decides_only_their_projects(client, project_manager, staff_member, acme,
                                                                globex):
    acme.manager = project_manager
    acme.save()
    mine = held(staff_member, acme)
    elsewhere = held(staff_member, globex)
    client.force_login(project_manager.user)

    assert shown(client.get(QUEUE)) == [mine]
    assert shown(client.get(QUEUE, {"status": "all"})) == [mine]
    assert "Globex" not in client.get(QUEUE).content.decode()

    response = act(client, "approve_selected", [elsewhere])
    assert "Nothing was decided: none of the selected entries is in your queue." in messages_of(response)
    response = act(client, "approve_selected", [mine, elsewhere])
    assert "Approved 1 entry." in messages_of(response)
    elsewhere.refresh_from_db()
    assert elsewhere.status == ApprovalStatus.PENDING
    mine.refresh_from_db()
    assert (mine.status, mine.decided_by) == (ApprovalStatus.APPROVED, project_manager.user)

    # Nor through a request's own page.
    other_url = reverse("admin:approvals_approvalrequest_approve", args=[elsewhere.pk])
    assert client.post(other_url).status_code == 302
    elsewhere.refresh_from_db()
    assert elsewhere.status == ApprovalStatus.PENDING
    assert client.get(reverse("admin:approvals_approvalrequest_change", args=[elsewhere.pk])).status_code == 302


def test_management_sees_the_queue_but_cannot_decide(client, management, staff_member, acme):
    request = held(staff_member, acme)
    client.force_login(management.user)
    response = client.get(QUEUE)
    assert shown(response) == [request]
    assert response.context["cl"].model_admin.get_actions(response.wsgi_request) == {}
    assert client.post(reverse("admin:approvals_approvalrequest_approve", args=[request.pk])).status_code == 403
    assert act(client, "approve_selected", [request]).status_code == 200
    request.refresh_from_db()
    assert request.status == ApprovalStatus.PENDING


def test_approvers_and_project_managers_may_view_and_change_requests_and_decide():
    for role in ("approver", "project_manager"):
        names = set(Group.objects.get(name=role).permissions.values_list("codename", flat=True))
        assert {"view_approvalrequest", "change_approvalrequest", "decide_approvals"} <= names, role


# --- A request's page ------------------------------------------------------------------------------------

def test_the_request_page_is_read_only_and_shows_the_decision_buttons(as_approver, staff_member, acme):
    request = held(staff_member, acme, description="Client workshop")
    url = reverse("admin:approvals_approvalrequest_change", args=[request.pk])
    page = as_approver.get(url)
    text = page.content.decode()
    assert page.status_code == 200 and not page.context["has_change_permission"]
    assert "Client workshop" in text and "Amount over the auto-approval limit." in text
    assert reverse("admin:approvals_approvalrequest_approve", args=[request.pk]) in text
    assert reverse("admin:approvals_approvalrequest_reject", args=[request.pk]) in text
    assert "No decision yet." in text

    # Fields cannot be posted.
    assert as_approver.post(url, {"status": "approved", "note": "typed in"}).status_code == 403
    request.refresh_from_db()
    assert (request.status, request.note) == (ApprovalStatus.PENDING, "")


def test_the_approve_button_approves_with_the_note_and_the_history_shows_it(as_approver, approver, staff_member,
                                                                            acme):
    request = held(staff_member, acme)
    url = reverse("admin:approvals_approvalrequest_approve", args=[request.pk])
    assert as_approver.get(url).status_code == 405
    response = as_approver.post(url, {"note": "Workshop day, agreed"}, follow=True)
    assert response.redirect_chain[-1][0] == QUEUE
    assert "Approved 1 entry." in messages_of(response)
    request.refresh_from_db()
    assert (request.status, request.note, request.decided_by) == (
        ApprovalStatus.APPROVED, "Workshop day, agreed", approver.user)

    page = as_approver.get(reverse("admin:approvals_approvalrequest_change", args=[request.pk]))
    text = page.content.decode()
    assert "Workshop day, agreed" in text and approver.user.username in text
    # Decided: no buttons any more.
    assert reverse("admin:approvals_approvalrequest_approve", args=[request.pk]) not in text


def test_the_reject_button_asks_for_the_reason_then_rejects_and_emails(as_approver, staff_member, acme,
                                                                       django_capture_on_commit_callbacks):
    request = held(staff_member, acme)
    url = reverse("admin:approvals_approvalrequest_reject", args=[request.pk])
    asked = as_approver.post(url, {"note": ""})
    assert asked.status_code == 200 and 'name="reason"' in asked.content.decode()
    again = as_approver.post(url, {"post": "yes", "reason": " "})
    assert "Say why the time is rejected." in again.content.decode()
    request.refresh_from_db()
    assert request.status == ApprovalStatus.PENDING

    with django_capture_on_commit_callbacks(execute=True):
        done = as_approver.post(url, {"post": "yes", "reason": "Duplicate of Monday's entry"}, follow=True)
    assert "Rejected 1 entry; each member is emailed the reason." in messages_of(done)
    request.refresh_from_db()
    assert (request.status, request.note) == (ApprovalStatus.REJECTED, "Duplicate of Monday's entry")
    [email] = mail.outbox
    assert email.to == [staff_member.email] and "Reason: Duplicate of Monday's entry" in email.body


def test_the_button_on_ones_own_time_is_refused_with_the_reason(as_approver, approver, acme):
    request = held(approver, acme)
    url = reverse("admin:approvals_approvalrequest_approve", args=[request.pk])
    response = as_approver.post(url, follow=True)
    assert response.redirect_chain[-1][0] == reverse("admin:approvals_approvalrequest_change", args=[request.pk])
    assert any("your own time" in text for text in messages_of(response))
    request.refresh_from_db()
    assert request.status == ApprovalStatus.PENDING


# --- Cost -------------------------------------------------------------------------------------------------

def _bulk_pending(count: int) -> None:
    """`count` pending requests spread over several members, projects and clients, inserted in bulk."""
    members = [TeamMemberFactory() for _ in range(4)]
    projects = [ProjectFactory() for _ in range(4)]
    dev = TaskTypeFactory(code="dev")
    start = TimeEntry.objects.count()
    entries = TimeEntry.objects.bulk_create([
        TimeEntry(member=members[n % 4], project=projects[n % 3], task_type=dev, work_date=dt.date(2026, 3, 2),
                  minutes=600, billable_minutes=600, amount=Money("1500.00", "USD"), rate=Money("150.00", "USD"),
                  source=EntrySource.API, external_id=f"bulk-{start + n}", status=EntryStatus.PENDING)
        for n in range(count)
    ], batch_size=500)
    now = timezone.now()
    ApprovalRequest.objects.bulk_create([
        ApprovalRequest(time_entry=entry, reasons=["amount_over_limit"],
                        reason_messages=["Amount 1,500.00 USD is over the auto-approval limit."],
                        requested_at=now - dt.timedelta(minutes=n))
        for n, entry in enumerate(entries)
    ], batch_size=500)


def _queue_queries(client) -> int:
    ContentType.objects.clear_cache()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(QUEUE)
    assert response.status_code == 200
    return len(queries)


def test_the_queue_costs_the_same_queries_for_5_requests_as_for_1000(as_approver):
    _bulk_pending(5)
    few = _queue_queries(as_approver)
    _bulk_pending(995)
    assert ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING).count() == 1000
    assert _queue_queries(as_approver) == few
    # Session, user, permissions (2), the three related filters, the page's count and its rows.
    assert few <= 12
