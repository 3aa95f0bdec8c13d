"""The operator's console: status page, "sync now", "retry", mapping by hand, and the schedules."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.admin import helpers
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from config.schedules import schedules
from integrations.models import ExternalRef, InboundRecord, RecordStatus, RunStatus, SyncCursor, SyncRun
from projects.models import EntrySource, TimeEntry
from tests.factories import ProjectFactory, RateFactory, TaskTypeFactory, TeamMemberFactory, UserFactory

pytestmark = pytest.mark.django_db

STATUS_URL = "/admin/integrations/syncrun/status/"
YESTERDAY = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=1)


@pytest.fixture
def quarantined(fake_toggl, settings):
    """A Toggl entry of a user nobody here has: quarantined by a first sync."""
    from integrations.runs import run_stream

    settings.TOGGL_BACKFILL_DAYS = 5
    project = ProjectFactory(code="web", name="Website Redesign")
    RateFactory(contract=project.contract)
    TaskTypeFactory(code="dev", is_default=True)
    user = fake_toggl.add_user("cara@contractors.test", "Cara")
    entry = fake_toggl.add_entry(user_id=user, project_id=fake_toggl.add_project("Website Redesign"),
                                 start=YESTERDAY, seconds=1800)
    run_stream(provider="toggl")
    return InboundRecord.objects.get(external_id=str(entry["id"])), user


def _action(admin_client, model: str, action: str, ids):
    return admin_client.post(reverse(f"admin:integrations_{model}_changelist"),
                             {"action": action, helpers.ACTION_CHECKBOX_NAME: [str(i) for i in ids]}, follow=True)


def test_the_status_page_shows_each_connection_with_its_last_run_and_backlog(admin_client, quarantined):
    response = admin_client.get(STATUS_URL)

    assert response.status_code == 200
    statuses = {c["provider"]: c for c in response.context["connections"]}
    toggl = statuses["toggl"]
    assert toggl["enabled"] and toggl["quarantined"] == 1 and toggl["unmapped"] == 1
    assert toggl["streams"][0]["last"].status == RunStatus.PARTIAL
    assert not statuses["monday"]["enabled"]
    text = response.content.decode()
    assert "Finished with problems" in text and "0 created" in text and "1 quarantined" in text
    assert "Monday.com — not configured" in text


def test_the_status_page_costs_the_same_queries_however_many_runs(admin_client, quarantined):
    def count():
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(STATUS_URL).status_code == 200
        return len(queries)

    few = count()
    now = timezone.now()
    SyncRun.objects.bulk_create([SyncRun(provider=p, stream=s, started_at=now - timedelta(minutes=n),
                                         status=RunStatus.SUCCEEDED)
                                 for n in range(30) for p, s in (("toggl", "time_entries"), ("monday", "items"))])
    InboundRecord.objects.bulk_create([InboundRecord(provider="monday", external_id=f"i:{n}", payload={},
                                                     reason="x", last_attempt_at=now) for n in range(30)])
    assert count() == few


def test_mapping_by_hand_then_retry_lands_the_quarantined_entry(admin_client, quarantined):
    record, toggl_user = quarantined
    cara = TeamMemberFactory(user=UserFactory(username="cara@firm.test"), email="cara@firm.test", name="Cara C")
    ref = ExternalRef.objects.get(provider="toggl", kind="member", external_id=str(toggl_user))

    response = admin_client.post(reverse("admin:integrations_externalref_change", args=[ref.pk]), {
        "provider": "toggl", "kind": "member", "external_id": ref.external_id, "label": ref.label,
        "member": cara.pk, "project": "", "client": "", "task_type": ""})
    assert response.status_code == 302
    ref.refresh_from_db()
    assert (ref.local_id, ref.matched_by) == (cara.pk, "manual")

    response = _action(admin_client, "inboundrecord", "retry", [record.pk])

    assert "Retry of 1 toggl records queued." in response.content.decode()
    record.refresh_from_db()
    assert record.status == RecordStatus.PROCESSED
    assert TimeEntry.objects.get(source=EntrySource.TOGGL).member == cara
    retry_run = SyncRun.objects.latest("started_at")
    assert (retry_run.trigger, retry_run.created, retry_run.status) == ("retry", 1, RunStatus.SUCCEEDED)


def test_a_mapping_names_one_object_of_its_own_kind(admin_client, db):
    project = ProjectFactory()
    response = admin_client.post(reverse("admin:integrations_externalref_add"), {
        "provider": "monday", "kind": "member", "external_id": "42", "label": "",
        "member": "", "project": project.pk, "client": "", "task_type": ""})
    assert response.status_code == 200
    assert "This reference is a team member: leave this empty." in response.content.decode()
    assert not ExternalRef.objects.exists()


def test_the_mappings_list_shows_what_each_ref_maps_to_in_one_query(admin_client, quarantined):
    member = TeamMemberFactory(name="Mapped Person")
    ExternalRef.objects.create(provider="monday", kind="member", external_id="9", local_id=member.pk)
    response = admin_client.get(reverse("admin:integrations_externalref_changelist"))
    text = response.content.decode()
    assert "Mapped Person" in text and "not mapped" in text


def test_sync_now_from_the_status_page_and_the_cursor_list(admin_client, quarantined, fake_toggl):
    before = SyncRun.objects.count()
    response = admin_client.post(reverse("admin:integrations_sync_now", args=["toggl", "time_entries"]), follow=True)
    assert "Sync of toggl time_entries queued." in response.content.decode()
    assert SyncRun.objects.count() == before + 1 and SyncRun.objects.latest("started_at").trigger == "admin"

    _action(admin_client, "synccursor", "sync_now", [SyncCursor.objects.get().pk])
    assert SyncRun.objects.count() == before + 2
    assert admin_client.get(reverse("admin:integrations_sync_now", args=["toggl", "time_entries"])).status_code == 405


def test_only_those_who_may_change_cursors_may_sync_now(client, quarantined):
    staff = UserFactory(username="viewer@firm.test")
    staff.is_staff = True
    staff.save()
    from django.contrib.auth.models import Permission

    staff.user_permissions.add(Permission.objects.get(codename="view_syncrun"))
    client.force_login(staff)
    assert client.get(STATUS_URL).status_code == 200
    assert client.post(reverse("admin:integrations_sync_now", args=["toggl", "time_entries"])).status_code == 403


def test_discarding_a_record_takes_it_out_of_the_retries(admin_client, quarantined):
    record, _ = quarantined
    _action(admin_client, "inboundrecord", "discard", [record.pk])
    record.refresh_from_db()
    assert record.status == RecordStatus.DISCARDED


def test_the_connector_schedules_are_defined_with_the_others(settings, monkeypatch):
    monkeypatch.setenv("TOGGL_SYNC_MINUTES", "30")
    by_name = {s["name"]: s for s in schedules()}
    assert by_name["integrations.sync_toggl"]["func"] == "integrations.tasks.sync_toggl"
    assert by_name["integrations.sync_toggl"]["minutes"] == 30
    assert by_name["integrations.sync_monday"]["schedule_type"] == Schedule.MINUTES
    assert by_name["integrations.sync_monday"]["minutes"] == 10


def test_a_token_without_its_workspace_fails_the_system_check(settings):
    from integrations.checks import check_connections

    settings.TOGGL_API_TOKEN, settings.TOGGL_WORKSPACE_ID = "token", ""
    assert [w.id for w in check_connections()] == ["integrations.W001"]


def test_the_integrations_changelists_cost_the_same_queries_however_many_rows(admin_client, db):
    from django.contrib.contenttypes.models import ContentType

    from integrations.models import WebhookEvent

    def populate(rows: int, start: int) -> None:
        now = timezone.now()
        for n in range(start, start + rows):
            member = TeamMemberFactory()
            ExternalRef.objects.create(provider="toggl", kind="member", external_id=str(n), local_id=member.pk)
            ExternalRef.objects.create(provider="monday", kind="project", external_id=str(n),
                                       local_id=ProjectFactory().pk)
            InboundRecord.objects.create(provider="toggl", external_id=str(n), payload={"id": n}, reason="why",
                                         last_attempt_at=now)
            SyncRun.objects.create(provider="toggl", stream="time_entries", started_at=now, errors="x" * 200)
            SyncCursor.objects.create(provider="toggl", stream=f"s{n}")
            WebhookEvent.objects.create(provider="toggl", event_id=str(n), payload={})

    names = ["externalref", "inboundrecord", "syncrun", "synccursor", "webhookevent"]

    def costs() -> dict:
        found = {}
        for name in names:
            ContentType.objects.clear_cache()
            with CaptureQueriesContext(connection) as queries:
                assert admin_client.get(reverse(f"admin:integrations_{name}_changelist")).status_code == 200
            found[name] = len(queries)
        return found

    populate(1, 0)
    few = costs()
    populate(6, 100)
    assert costs() == few
