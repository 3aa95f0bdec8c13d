"""Toggl Track in: the connector against the fake Toggl over real HTTP on loopback."""

import datetime as dt
import io
import logging
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from billing.invoicing import billing_run_create
from integrations import inbound
from integrations.models import ExternalRef, InboundRecord, RecordStatus, RunStatus, SyncCursor, SyncRun
from integrations.runs import StreamBusy, run_stream
from integrations.tasks import sync_toggl
from integrations.toggl.sync import sync_time_entries
from projects.models import EntrySource, EntryStatus, TimeEntry
from tests.factories import ProjectFactory, RateFactory, TaskTypeFactory, TeamMemberFactory, UserFactory

pytestmark = pytest.mark.django_db

TODAY = dt.date.today()


def _at(days_ago: int, hour: int = 9) -> datetime:
    day = TODAY - timedelta(days=days_ago)
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def _member(email: str, name: str, **kwargs):
    user = UserFactory(username=email, roles=["staff"])
    return TeamMemberFactory(user=user, email=email, name=name, **kwargs)


@pytest.fixture
def firm(db, fake_toggl, settings):
    """Two members, a project with a rate, a default and a second task type, mirrored in the fake."""
    # One 31-day slice of the Reports window on the first run.
    settings.TOGGL_BACKFILL_DAYS = 30
    project = ProjectFactory(code="web", name="Website Redesign")
    RateFactory(contract=project.contract)
    ann, bob = _member("ann@firm.test", "Ann Archer"), _member("bob@firm.test", "Bob Baker")
    development = TaskTypeFactory(code="dev", name="Development", is_default=True)
    design = TaskTypeFactory(code="design", name="Design")
    toggl_project = fake_toggl.add_project("Website Redesign")
    return SimpleNamespace(
        project=project, ann=ann, bob=bob, development=development, design=design,
        toggl_ann=fake_toggl.add_user("ann@firm.test", "Ann Archer"),
        toggl_bob=fake_toggl.add_user("bob@firm.test", "Bob Baker"),
        toggl_project=toggl_project, toggl_design=fake_toggl.add_task(toggl_project, "Design"),
    )


def _sync(page_size: int = 50, **kwargs) -> SyncRun:
    return run_stream(provider="toggl", trigger="test",
                      work=lambda ctx: sync_time_entries(ctx, page_size=page_size), **kwargs)


def _entries():
    return TimeEntry.objects.filter(source=EntrySource.TOGGL)


def _searches(fake):
    return [r for r in fake.requests if r.path.endswith("/search/time_entries")]


def test_first_sync_pages_through_the_whole_workspace(firm, fake_toggl):
    made = [fake_toggl.add_entry(user_id=firm.toggl_ann if n % 2 else firm.toggl_bob,
                                 project_id=firm.toggl_project, start=_at(10 - n), seconds=3600 + n * 60,
                                 description=f"Work {n}") for n in range(7)]

    run = _sync(page_size=3)

    assert run.status == RunStatus.SUCCEEDED, run.errors
    assert (run.created, run.updated, run.quarantined, run.skipped) == (7, 0, 0, 0)
    searches = _searches(fake_toggl)
    # 7 entries in pages of 3: the second and third requests resend the body with the paging headers.
    assert [s.json.get("first_row_number") for s in searches] == [None, 4, 7]
    assert searches[1].json["first_id"] == made[3]["id"]
    assert all(s.basic_auth() == (fake_toggl.token, "api_token") for s in searches)
    # The backfill window with a day's margin each side (Toggl dates entries in each user's time zone).
    assert (searches[0].json["start_date"], searches[0].json["end_date"]) == (
        str(TODAY - timedelta(days=31)), str(TODAY + timedelta(days=1)))
    stored = {e.external_id: e for e in _entries().select_related("member")}
    assert set(stored) == {str(m["id"]) for m in made}
    first = stored[str(made[0]["id"])]
    assert (first.member, first.project, first.task_type, first.minutes, first.work_date) == (
        firm.bob, firm.project, firm.development, 60, (TODAY - timedelta(days=10)))
    assert first.started_at == _at(10) and first.stopped_at == _at(10) + timedelta(hours=1)
    assert first.description == "Work 0" and first.status == EntryStatus.APPROVED
    # Users and projects were matched once, by email and by name, and remembered.
    assert ExternalRef.objects.get(kind="member", external_id=str(firm.toggl_ann)).local_id == firm.ann.id
    assert ExternalRef.objects.get(kind="project", external_id=str(firm.toggl_project)).matched_by == "name"
    assert fake_toggl.paths("GET").count(f"/api/v9/workspaces/{fake_toggl.workspace_id}/users") == 1
    assert SyncCursor.objects.get(provider="toggl").position == {"synced_through": str(TODAY)}


def test_a_task_maps_to_its_task_type_and_the_user_time_zone_sets_the_work_date(firm, fake_toggl):
    firm.ann.time_zone = "Pacific/Auckland"
    firm.ann.save()
    entry = fake_toggl.add_entry(user_id=firm.toggl_ann, project_id=firm.toggl_project, start=_at(3, hour=20),
                                 seconds=1800, task_id=firm.toggl_design)

    _sync()

    stored = _entries().get(external_id=str(entry["id"]))
    assert stored.task_type == firm.design
    # 20:00 UTC is the next morning in Auckland.
    assert stored.work_date == TODAY - timedelta(days=2)


def test_running_entries_wait_until_they_stop(firm, fake_toggl):
    running = fake_toggl.add_entry(user_id=firm.toggl_ann, project_id=firm.toggl_project, start=_at(0),
                                   seconds=None)
    assert _sync().skipped == 1
    assert not _entries().exists()

    fake_toggl.stop_entry(running["id"], seconds=45 * 60)
    run = _sync()

    assert (run.created, run.skipped) == (1, 0)
    assert _entries().get().minutes == 45


def test_a_later_sync_rereads_only_the_open_window_and_takes_in_only_what_changed(firm, fake_toggl, settings):
    settings.TOGGL_REPULL_DAYS = 7
    entries = [fake_toggl.add_entry(user_id=firm.toggl_ann, project_id=firm.toggl_project, start=_at(n),
                                    seconds=3600) for n in range(1, 5)]
    _sync()
    row = _entries().get(external_id=str(entries[0]["id"]))

    fake_toggl.edit_entry(entries[0]["id"], seconds=5400, description="Longer")
    added = fake_toggl.add_entry(user_id=firm.toggl_bob, project_id=firm.toggl_project, start=_at(1),
                                 seconds=600)
    run = _sync()

    assert (run.created, run.updated, run.unchanged, run.deleted) == (1, 1, 3, 0)
    # Edits update the same row: the key is Toggl's id.
    row.refresh_from_db()
    assert (row.minutes, row.description, row.status) == (90, "Longer", EntryStatus.APPROVED)
    assert _entries().count() == 5 and _entries().filter(external_id=str(added["id"])).exists()
    # From the cursor (today) back TOGGL_REPULL_DAYS, with a day's margin for time zones.
    assert _searches(fake_toggl)[-1].json["start_date"] == str(TODAY - timedelta(days=8))


def test_deleted_entries_are_removed_unless_invoiced_which_are_flagged(firm, fake_toggl):
    kept = fake_toggl.add_entry(user_id=firm.toggl_ann, project_id=firm.toggl_project, start=_at(3), seconds=3600)
    billed = fake_toggl.add_entry(user_id=firm.toggl_ann, project_id=firm.toggl_project, start=_at(4),
                                  seconds=3600)
    _sync()
    billed_day = TODAY - timedelta(days=4)
    billing_run_create(period_start=billed_day, period_end=billed_day)
    billed_row = _entries().get(external_id=str(billed["id"]))
    assert billed_row.status == EntryStatus.INVOICED

    fake_toggl.delete_entry(kept["id"])
    fake_toggl.delete_entry(billed["id"])
    run = _sync()

    assert (run.deleted, run.conflicts) == (1, 1)
    assert not _entries().filter(external_id=str(kept["id"])).exists()
    billed_row.refresh_from_db()
    assert billed_row.status == EntryStatus.INVOICED and billed_row.minutes == 60
    assert billed_row.conflict.startswith("Deleted at the source")
    # Flagged once: the next run does not count it again, and the invoice keeps its allocation.
    assert (_sync().conflicts, billed_row.allocations.count()) == (0, 1)


def test_an_edit_after_invoicing_is_flagged_and_the_entry_kept(firm, fake_toggl):
    entry = fake_toggl.add_entry(user_id=firm.toggl_ann, project_id=firm.toggl_project, start=_at(2),
                                 seconds=3600)
    _sync()
    billing_run_create(period_start=TODAY - timedelta(days=2), period_end=TODAY - timedelta(days=2))

    fake_toggl.edit_entry(entry["id"], seconds=7200)
    run = _sync()

    stored = _entries().get()
    assert run.conflicts == 1
    assert (stored.minutes, stored.status) == (60, EntryStatus.INVOICED)
    assert "minutes: 60 → 120" in stored.conflict


def test_rate_limits_are_retried_honouring_retry_after_and_the_quota_headers(firm, fake_toggl, caplog):
    fake_toggl.add_entry(user_id=firm.toggl_ann, project_id=firm.toggl_project, start=_at(1), seconds=3600)
    fake_toggl.fail_next(1, status=429, headers={"Retry-After": "3"})
    fake_toggl.exhaust_quota(resets_in=7)

    with caplog.at_level(logging.INFO, logger="integrations.http"):
        run = _sync()

    assert run.status == RunStatus.SUCCEEDED and (run.retries, run.created) == (2, 1)
    assert [r.status for r in fake_toggl.requests[:3]] == [429, 402, 200]
    waits = [m for m in caplog.messages if "waiting" in m]
    assert "waiting 3.0s" in waits[0] and "rate limited (429)" in waits[0]
    assert "waiting 7.0s" in waits[1] and "quota used up (402)" in waits[1]


def test_a_wait_longer_than_allowed_ends_the_run_for_the_next_one(firm, fake_toggl, settings):
    settings.INTEGRATIONS_MAX_WAIT_SECONDS = 60
    fake_toggl.exhaust_quota(resets_in=1800)

    run = _sync()

    assert run.status == RunStatus.FAILED and len(fake_toggl.requests) == 1
    assert "resets in 1800s" in run.errors and "left for the next run" in run.errors


def test_server_errors_and_slow_answers_are_retried(firm, fake_toggl, settings):
    settings.INTEGRATIONS_TIMEOUT_SECONDS = 0.3
    fake_toggl.add_entry(user_id=firm.toggl_ann, project_id=firm.toggl_project, start=_at(1), seconds=3600)
    fake_toggl.fail_next(1, status=503)
    fake_toggl.fail_next(1, status=500)
    fake_toggl.slow_next(1, seconds=1.0)

    run = _sync()

    assert run.status == RunStatus.SUCCEEDED and run.retries == 3 and run.created == 1


def test_an_expired_token_is_a_permanent_error_in_the_run_log(firm, fake_toggl):
    fake_toggl.expire_token()

    run = _sync()

    assert run.status == RunStatus.FAILED
    assert "403" in run.errors and "TOGGL_API_TOKEN" in run.errors
    # Not retried: waiting does not fix a token.
    assert len(fake_toggl.requests) == 1 and run.retries == 0
    assert SyncCursor.objects.get(provider="toggl").position == {}


def test_a_malformed_or_unmappable_record_is_quarantined_while_the_rest_lands(firm, fake_toggl):
    good = fake_toggl.add_entry(user_id=firm.toggl_ann, project_id=firm.toggl_project, start=_at(2), seconds=3600)
    broken = fake_toggl.add_entry(user_id=firm.toggl_ann, project_id=firm.toggl_project, start=_at(2, 11),
                                  seconds=600)
    fake_toggl.corrupt_entry(broken["id"], start="yesterday-ish")
    blink = fake_toggl.add_entry(user_id=firm.toggl_ann, project_id=firm.toggl_project, start=_at(2, 13), seconds=10)
    homeless = fake_toggl.add_entry(user_id=firm.toggl_bob, project_id=None, start=_at(2, 14), seconds=600)
    stranger = fake_toggl.add_user("cara@elsewhere.test", "Cara Contractor")
    theirs = fake_toggl.add_entry(user_id=stranger, project_id=firm.toggl_project, start=_at(2, 15), seconds=600)

    run = _sync()

    assert run.status == RunStatus.PARTIAL and (run.created, run.quarantined) == (1, 4)
    assert list(_entries().values_list("external_id", flat=True)) == [str(good["id"])]
    reasons = {r.external_id: r.reason for r in InboundRecord.objects.filter(status=RecordStatus.QUARANTINED)}
    assert "'yesterday-ish' is not a time" in reasons[str(broken["id"])]
    assert "Under half a minute" in reasons[str(blink["id"])]
    assert "no project in Toggl" in reasons[str(homeless["id"])]
    assert f"user {stranger} (Cara Contractor <cara@elsewhere.test>) is not mapped to a team member" in \
        reasons[str(theirs["id"])]
    # The raw record is kept whole for the next attempt.
    assert InboundRecord.objects.get(external_id=str(theirs["id"])).payload["user_id"] == stranger


def test_a_quarantined_entry_lands_at_the_next_sync_once_its_member_exists(firm, fake_toggl):
    stranger = fake_toggl.add_user("cara@firm.test", "Cara Cole")
    entry = fake_toggl.add_entry(user_id=stranger, project_id=firm.toggl_project, start=_at(1), seconds=1800)
    _sync()
    record = InboundRecord.objects.get(external_id=str(entry["id"]))
    assert record.status == RecordStatus.QUARANTINED and record.attempts == 1
    ref = ExternalRef.objects.get(provider="toggl", kind="member", external_id=str(stranger))
    assert ref.local_id is None and ref.details == {"email": "cara@firm.test", "name": "Cara Cole"}

    cara = _member("cara@firm.test", "Cara Cole")
    run = _sync()

    record.refresh_from_db()
    assert record.status == RecordStatus.PROCESSED and record.processed_at is not None
    assert _entries().get(external_id=str(entry["id"])).member == cara
    assert (run.created, run.quarantined) == (1, 0)
    ref.refresh_from_db()
    assert (ref.local_id, ref.matched_by) == (cara.id, "email")


def test_a_quarantined_entry_deleted_in_toggl_is_discarded_not_kept_waiting(firm, fake_toggl):
    stranger = fake_toggl.add_user("cara@firm.test", "Cara Cole")
    entry = fake_toggl.add_entry(user_id=stranger, project_id=firm.toggl_project, start=_at(1), seconds=1800)
    waiting = fake_toggl.add_entry(user_id=stranger, project_id=firm.toggl_project, start=_at(2), seconds=600)
    assert _sync().quarantined == 2

    fake_toggl.delete_entry(entry["id"])
    run = _sync()

    assert (run.created, run.deleted, run.quarantined) == (0, 0, 1)
    statuses = dict(InboundRecord.objects.values_list("external_id", "status"))
    assert statuses == {str(entry["id"]): RecordStatus.DISCARDED, str(waiting["id"]): RecordStatus.QUARANTINED}
    # Mapping the user later lands only the entry that still exists.
    _member("cara@firm.test", "Cara Cole")
    assert _sync().created == 1
    assert list(_entries().values_list("external_id", flat=True)) == [str(waiting["id"])]


def test_an_unmapped_task_waits_instead_of_being_billed_as_another_type(firm, fake_toggl):
    other = fake_toggl.add_task(firm.toggl_project, "Legal review")
    entry = fake_toggl.add_entry(user_id=firm.toggl_ann, project_id=firm.toggl_project, start=_at(1),
                                 seconds=1800, task_id=other)
    _sync()
    assert "task" in InboundRecord.objects.get(external_id=str(entry["id"])).reason
    ExternalRef.objects.filter(kind="task_type", external_id=str(other)).update(local_id=firm.design.id)

    _sync()

    assert _entries().get().task_type == firm.design


def test_with_a_third_of_the_calls_failing_a_run_to_completion_stores_every_entry_once(firm, fake_toggl):
    made = [fake_toggl.add_entry(user_id=firm.toggl_ann if n % 3 else firm.toggl_bob,
                                 project_id=firm.toggl_project, start=_at(1 + n % 20, 8 + n % 5), seconds=1200)
            for n in range(40)]
    fake_toggl.fail_randomly(1 / 3, seed=20261126)

    runs = []
    while not runs or runs[-1].status != RunStatus.SUCCEEDED:
        assert len(runs) < 10, [r.errors for r in runs]
        runs.append(_sync(page_size=4))

    assert sum(r.retries for r in runs) > 5
    assert sorted(_entries().values_list("external_id", flat=True)) == sorted(str(m["id"]) for m in made)
    assert sum(r.created for r in runs) == 40
    assert {r.status for r in fake_toggl.requests} >= {200, 429, 500}


def test_a_run_killed_half_way_keeps_its_committed_pages_and_the_next_finishes(firm, fake_toggl, monkeypatch):
    for n in range(6):
        fake_toggl.add_entry(user_id=firm.toggl_ann, project_id=firm.toggl_project, start=_at(2, 8 + n),
                             seconds=600)
    real_land, calls = inbound.land_entries, []

    def dies_on_the_second_page(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the worker is killed mid-batch
        return real_land(**kwargs)

    monkeypatch.setattr("integrations.toggl.sync.land_entries", dies_on_the_second_page)
    with pytest.raises(KeyboardInterrupt):
        _sync(page_size=3)
    assert _entries().count() == 3
    cursor = SyncCursor.objects.get(provider="toggl")
    assert (cursor.position, cursor.leased_until) == ({}, None)
    interrupted = SyncRun.objects.get()
    assert (interrupted.status, interrupted.created) == (RunStatus.ABANDONED, 3)

    monkeypatch.setattr("integrations.toggl.sync.land_entries", real_land)
    run = _sync(page_size=3)

    assert (run.status, run.created, run.unchanged) == (RunStatus.SUCCEEDED, 3, 3)
    assert _entries().count() == 6


def test_a_run_whose_worker_died_is_marked_abandoned_once_its_lease_lapses(firm, fake_toggl):
    dead = SyncRun.objects.create(provider="toggl", stream="time_entries", started_at=timezone.now())
    SyncCursor.objects.create(provider="toggl", stream="time_entries",
                              leased_until=timezone.now() - timedelta(seconds=1))

    assert _sync().status == RunStatus.SUCCEEDED

    dead.refresh_from_db()
    assert dead.status == RunStatus.ABANDONED and "Stopped before it finished" in dead.errors


def test_two_runs_of_one_stream_never_overlap(firm, fake_toggl):
    SyncCursor.objects.create(provider="toggl", stream="time_entries",
                              leased_until=timezone.now() + timedelta(minutes=5))
    with pytest.raises(StreamBusy):
        _sync()
    assert sync_toggl().startswith("skipped: Toggl Track time_entries is already being synced")
    assert fake_toggl.requests == []


def test_the_schedule_skips_quietly_while_toggl_is_not_configured(db, settings):
    settings.TOGGL_API_TOKEN, settings.TOGGL_WORKSPACE_ID = "", ""
    assert sync_toggl() == "skipped: Toggl Track is not configured: set TOGGL_API_TOKEN, with TOGGL_WORKSPACE_ID."
    assert not SyncRun.objects.exists()


def test_the_sync_command_prints_progress_and_a_summary(firm, fake_toggl):
    fake_toggl.add_entry(user_id=firm.toggl_ann, project_id=firm.toggl_project, start=_at(1), seconds=3600)
    stranger = fake_toggl.add_user("dan@elsewhere.test", "Dan")
    fake_toggl.add_entry(user_id=stranger, project_id=firm.toggl_project, start=_at(1), seconds=600)
    out = io.StringIO()

    call_command("sync", "toggl", stdout=out)

    text = out.getvalue()
    assert "page 1: 2 entries: 1 created" in text
    assert ("Finished with problems: 1 created, 0 updated, 0 unchanged, 0 deleted, 0 conflicts, "
            "1 quarantined, 0 skipped (running), 0 retries, 0 errors.") in text


def test_the_sync_command_fails_loudly_on_a_refused_token(firm, fake_toggl):
    fake_toggl.expire_token()
    with pytest.raises(CommandError, match="Failed: 0 created"):
        call_command("sync", "toggl", stdout=io.StringIO())


def test_landing_a_batch_costs_the_same_queries_for_5_or_50_entries(firm, fake_toggl):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from integrations.inbound import land_entries
    from integrations.toggl.mapping import parse_entry, to_inbound
    from tests.queries import split_bulk

    def batch(size: int, offset: int) -> list:
        return [parse_entry(fake_toggl.v9(fake_toggl.add_entry(
            user_id=firm.toggl_ann if n % 2 else firm.toggl_bob, project_id=firm.toggl_project,
            start=_at(1 + (offset + n) % 9, 0) + timedelta(minutes=20 * ((offset + n) // 9)), seconds=600)))
            for n in range(size)]

    # Known users and project: no directory calls, only the database.
    for kind, external_id, local in (("member", firm.toggl_ann, firm.ann), ("member", firm.toggl_bob, firm.bob),
                                     ("project", firm.toggl_project, firm.project)):
        ExternalRef.objects.create(provider="toggl", kind=kind, external_id=str(external_id), local_id=local.pk)

    def cost(entries) -> int:
        with CaptureQueriesContext(connection) as queries:
            landed = land_entries(provider="toggl", source=EntrySource.TOGGL, entries=to_inbound(entries, None))
        assert landed.created == len(entries) and not landed.quarantined, landed.reasons
        return split_bulk(queries)[0]

    assert cost(batch(5, 0)) == cost(batch(50, 5))


def test_the_fake_answers_as_toggl_does(fake_toggl, settings):
    from integrations.http import ApiSession, PermanentError
    from integrations.toggl.client import classify

    owner = fake_toggl.add_user("owner@firm.test")
    done = fake_toggl.add_entry(user_id=owner, project_id=None, start=_at(1), seconds=600)
    running = fake_toggl.add_entry(user_id=owner, project_id=None, start=_at(0), seconds=None)
    since = int(datetime.now(UTC).timestamp()) - 60
    fake_toggl.delete_entry(done["id"])
    session = ApiSession(provider="toggl", base_url=settings.TOGGL_BASE_URL, auth=(fake_toggl.token, "api_token"),
                         classify=classify)

    listed = session.get_json("/api/v9/me/time_entries", params={"since": since})
    # A bare array; `since` includes the deleted entry, marked; a running entry has a negative duration.
    assert isinstance(listed, list)
    by_id = {e["id"]: e for e in listed}
    assert by_id[done["id"]]["server_deleted_at"] is not None
    assert (by_id[running["id"]]["duration"], by_id[running["id"]]["stop"]) == (-1, None)
    assert [e["id"] for e in session.get_json("/api/v9/me/time_entries")] == [running["id"]]
    assert session.get_json("/api/v9/me/time_entries/current")["id"] == running["id"]
    assert session.request("GET", "/api/v9/me").headers["X-Toggl-Quota-Remaining"].isdigit()

    wrong = ApiSession(provider="toggl", base_url=settings.TOGGL_BASE_URL, auth=(fake_toggl.token, "secret"),
                       classify=classify)
    with pytest.raises(PermanentError, match="403"):
        wrong.get_json("/api/v9/me")


# --- the same Toggl entry through the CSV export and the connector ------------------------------------------


def _export(tmp_path, firm, start: datetime, minutes: int, description: str = "Wireframes"):
    """Toggl's detailed export of one of Ann's entries, written in the firm's time zone (UTC here)."""
    end = start + timedelta(minutes=minutes)
    header = ("User,Email,Client,Project,Task,Description,Billable,Start date,Start time,End date,End time,"
              "Duration,Tags")
    row = (f"Ann Archer,ann@firm.test,{firm.project.client.name},{firm.project.name},,{description},Yes,"
           f"{start:%Y-%m-%d},{start:%H:%M:%S},{end:%Y-%m-%d},{end:%H:%M:%S},"
           f"{minutes // 60:02d}:{minutes % 60:02d}:00,")
    path = tmp_path / "toggl_export.csv"
    path.write_text(f"{header}\n{row}\n", encoding="utf-8")
    return path


@pytest.fixture
def firm_in_utc(firm, settings):
    settings.TIME_ZONE = "UTC"
    return firm


def test_an_entry_imported_from_an_export_is_taken_over_by_the_connector_not_landed_twice(firm_in_utc, fake_toggl,
                                                                                          tmp_path):
    from billing.csv_import import import_time_csv

    firm = firm_in_utc
    start = _at(3)
    imported = import_time_csv(file=_export(tmp_path, firm, start, 60), format="toggl", dry_run=False,
                               acting_user=None)
    assert imported.created == 1, imported.rejected
    row = _entries().get()
    assert row.external_id.startswith("row-")

    synced = fake_toggl.add_entry(user_id=firm.toggl_ann, project_id=firm.toggl_project, start=start,
                                  seconds=90 * 60, description="Wireframes")
    run = _sync()

    assert run.status == RunStatus.SUCCEEDED, run.errors
    assert (run.created, run.updated, run.deleted) == (0, 1, 0)
    stored = _entries().get()
    assert (stored.id, stored.external_id, stored.minutes) == (row.id, str(synced["id"]), 90)


def test_an_export_of_weeks_already_synced_updates_the_synced_entries(firm_in_utc, fake_toggl, tmp_path):
    from billing.csv_import import import_time_csv

    firm = firm_in_utc
    start = _at(5, hour=14)
    synced = fake_toggl.add_entry(user_id=firm.toggl_ann, project_id=firm.toggl_project, start=start,
                                  seconds=3600, description="Wireframes")
    _sync()

    report = import_time_csv(file=_export(tmp_path, firm, start, 45), format="toggl", dry_run=False,
                             acting_user=None)

    assert (report.created, report.updated, report.rejected) == (0, 1, [])
    stored = _entries().get()
    assert (stored.external_id, stored.minutes) == (str(synced["id"]), 45)


def test_an_invoiced_export_row_met_again_by_the_connector_is_a_conflict_not_a_second_bill(firm_in_utc,
                                                                                          fake_toggl, tmp_path):
    from billing.csv_import import import_time_csv

    firm = firm_in_utc
    start = _at(4)
    import_time_csv(file=_export(tmp_path, firm, start, 60), format="toggl", dry_run=False, acting_user=None)
    day = start.date()
    billing_run_create(period_start=day, period_end=day)
    assert _entries().get().status == EntryStatus.INVOICED

    fake_toggl.add_entry(user_id=firm.toggl_ann, project_id=firm.toggl_project, start=start, seconds=7200,
                         description="Wireframes")
    run = _sync()

    assert (run.created, run.conflicts) == (0, 1)
    stored = _entries().get()
    assert (stored.minutes, stored.status) == (60, EntryStatus.INVOICED)
    assert "minutes: 60 → 120" in stored.conflict


def test_two_entries_of_one_person_at_the_same_second_with_different_toggl_ids_stay_two(firm, fake_toggl):
    start = _at(6)
    for seconds in (1800, 2700):
        fake_toggl.add_entry(user_id=firm.toggl_ann, project_id=firm.toggl_project, start=start, seconds=seconds)

    run = _sync()

    assert run.created == 2
    assert sorted(_entries().values_list("minutes", flat=True)) == [30, 45]
