"""monday.com in: the connector against the fake monday over real HTTP on loopback."""

import datetime as dt
import logging
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from billing.invoicing import billing_run_create
from integrations.models import ExternalRef, InboundRecord, RecordStatus, RunStatus, SyncCursor, SyncRun
from integrations.monday.sync import sync_items
from integrations.runs import run_stream
from projects.models import EntrySource, EntryStatus, TimeEntry
from tests.factories import ProjectFactory, RateFactory, TaskTypeFactory, TeamMemberFactory, UserFactory

pytestmark = pytest.mark.django_db

TODAY = dt.date.today()


def _at(days_ago: int, hour: int = 9, minute: int = 0) -> datetime:
    day = TODAY - timedelta(days=days_ago)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def _member(email: str, name: str):
    return TeamMemberFactory(user=UserFactory(username=email, roles=["staff"]), email=email, name=name)


@pytest.fixture
def firm(db, fake_monday, settings):
    """A project with a rate whose board is named by its code, two members known to monday by email."""
    project = ProjectFactory(code="brand", name="Brand Refresh")
    RateFactory(contract=project.contract)
    TaskTypeFactory(code="work", name="Work", is_default=True)
    board = fake_monday.add_board("brand")
    settings.MONDAY_BOARD_IDS = [board]
    return SimpleNamespace(project=project, board=board,
                           ann=_member("ann@firm.test", "Ann Archer"), bob=_member("bob@firm.test", "Bob Baker"),
                           monday_ann=fake_monday.add_user("ann@firm.test", "Ann Archer"),
                           monday_bob=fake_monday.add_user("bob@firm.test", "Bob Baker"))


def _sync(limit: int = 500) -> SyncRun:
    return run_stream(provider="monday", trigger="test", work=lambda ctx: sync_items(ctx, limit=limit))


def _entries():
    return TimeEntry.objects.filter(source=EntrySource.MONDAY)


def _queries(fake):
    return [r.json for r in fake.requests if r.status == 200]


def _item_with_session(fake, firm, name: str, *, days_ago: int = 2, minutes: int = 90, person=None):
    item = fake.add_item(firm.board, name, people=[person or firm.monday_ann])
    session = fake.add_session(item, user_id=person or firm.monday_ann, started_at=_at(days_ago),
                               ended_at=_at(days_ago) + timedelta(minutes=minutes))
    return item, session


def test_a_full_read_pages_through_the_board_and_lands_each_stopped_session(firm, fake_monday):
    made = [_item_with_session(fake_monday, firm, f"Item {n}", days_ago=1 + n, minutes=30 + n)
            for n in range(7)]
    running_item = fake_monday.add_item(firm.board, "Still timing", people=[firm.monday_bob])
    fake_monday.add_session(running_item, user_id=firm.monday_bob, started_at=_at(0))

    run = _sync(limit=3)

    assert run.status == RunStatus.SUCCEEDED, run.errors
    assert (run.created, run.skipped, run.quarantined) == (7, 1, 0)
    pages = [q for q in _queries(fake_monday) if "items_page" in q["query"]]
    # 8 items, 3 a page: one items_page and two next_items_page calls; a cursor carries the filter.
    assert [("next_items_page" in q["query"]) for q in pages] == [False, True, True]
    assert set(pages[1]["variables"]) == {"cursor", "limit"}
    assert pages[0]["variables"]["query_params"] is None
    headers = fake_monday.requests[0].headers
    assert headers["authorization"] == fake_monday.token and headers["api-version"] == "2025-10"
    stored = {e.external_id: e for e in _entries()}
    assert set(stored) == {f"{item}:{session}" for item, session in made}
    first = stored[f"{made[0][0]}:{made[0][1]}"]
    assert (first.member, first.project, first.minutes, first.work_date, first.description) == (
        firm.ann, firm.project, 30, TODAY - timedelta(days=1), "Item 0")
    assert first.status == EntryStatus.APPROVED
    assert ExternalRef.objects.get(provider="monday", kind="project", external_id=firm.board).matched_by == "code"
    assert ExternalRef.objects.get(provider="monday", kind="member", external_id=firm.monday_ann).matched_by == "email"


def test_later_runs_ask_only_for_updated_items_and_take_in_edits_and_removed_sessions(firm, fake_monday):
    old_item, old_session = _item_with_session(fake_monday, firm, "Old", days_ago=20)
    fake_monday.set_updated_at(old_item, datetime.now(UTC) - timedelta(days=20))
    item, session = _item_with_session(fake_monday, firm, "Busy", days_ago=1)
    second = fake_monday.add_session(item, user_id=firm.monday_ann, started_at=_at(1, 14),
                                     ended_at=_at(1, 15))
    assert _sync().created == 3

    fake_monday.edit_session(item, session, ended_at=_at(1) + timedelta(minutes=120))
    fake_monday.delete_session(item, second)
    run = _sync()

    query = [q for q in _queries(fake_monday) if "items_page" in q["query"]][-1]
    rule = query["variables"]["query_params"]["rules"][0]
    assert (rule["column_id"], rule["operator"]) == ("__last_updated__", "greater_than_or_equals")
    assert rule["compare_value"] == ["EXACT", str(TODAY - timedelta(days=1))]
    # The old item was not asked for again; the busy one was edited and lost a session.
    assert (run.created, run.updated, run.unchanged, run.deleted) == (0, 1, 0, 1)
    assert _entries().get(external_id=f"{item}:{session}").minutes == 120
    assert set(_entries().values_list("external_id", flat=True)) == {f"{item}:{session}",
                                                                     f"{old_item}:{old_session}"}


def test_a_full_read_finds_deleted_and_archived_items(firm, fake_monday):
    gone, _ = _item_with_session(fake_monday, firm, "Deleted later", days_ago=3)
    archived, _ = _item_with_session(fake_monday, firm, "Archived later", days_ago=4)
    billed, _ = _item_with_session(fake_monday, firm, "Invoiced", days_ago=5)
    staying, _ = _item_with_session(fake_monday, firm, "Staying", days_ago=3)
    _sync()
    billing_run_create(period_start=TODAY - timedelta(days=5), period_end=TODAY - timedelta(days=5))

    for item in (gone, billed):
        fake_monday.delete_item(item)
    fake_monday.delete_item(archived, state="archived")
    # Not yet time for the daily full read: an incremental run cannot see vanished items.
    assert _sync().deleted == 0
    SyncCursor.objects.filter(provider="monday").update(position={
        "updated_since": timezone.now().isoformat(),
        "last_full_at": (timezone.now() - timedelta(hours=25)).isoformat()})
    run = _sync()

    assert (run.deleted, run.conflicts) == (2, 1)
    remaining = {e.external_id.split(":")[0]: e for e in _entries()}
    assert set(remaining) == {billed, staying}
    assert remaining[billed].status == EntryStatus.INVOICED
    assert remaining[billed].conflict.startswith("Deleted at the source")


def test_graphql_errors_inside_200_answers_are_retried_when_they_are_limits(firm, fake_monday, caplog):
    _item_with_session(fake_monday, firm, "Work")
    fake_monday.exhaust_complexity(2, retry_in_seconds=4)
    fake_monday.fail_next(1, status=429, headers={"Retry-After": "2"})

    with caplog.at_level(logging.INFO, logger="integrations.http"):
        run = _sync()

    assert run.status == RunStatus.SUCCEEDED and (run.retries, run.created) == (3, 1)
    waits = [m for m in caplog.messages if "waiting" in m]
    assert "rate limited (429)" in waits[0] and "waiting 2.0s" in waits[0]
    assert "COMPLEXITY_BUDGET_EXHAUSTED" in waits[1] and "waiting 4.0s" in waits[1]


def test_other_graphql_errors_are_permanent(firm, fake_monday):
    fake_monday.graphql_error(code="InvalidBoardIdException", message="Board not found")

    run = _sync()

    assert run.status == RunStatus.FAILED and run.retries == 0
    assert "monday: InvalidBoardIdException: Board not found" in run.errors
    assert len(fake_monday.requests) == 1


def test_server_errors_are_retried_and_an_expired_token_is_permanent(firm, fake_monday):
    _item_with_session(fake_monday, firm, "Work")
    fake_monday.fail_next(2, status=502)
    assert _sync().created == 1

    fake_monday.expire_token()
    run = _sync()

    assert run.status == RunStatus.FAILED and "credentials were refused (401)" in run.errors
    assert fake_monday.requests[-1].status == 401


def test_people_are_matched_by_email_and_the_unknown_wait_in_quarantine(firm, fake_monday):
    stranger = fake_monday.add_user("cara@elsewhere.test", "Cara")
    known_item, known = _item_with_session(fake_monday, firm, "Known")
    theirs_item, theirs = _item_with_session(fake_monday, firm, "Theirs", person=stranger)
    crowd = fake_monday.add_item(firm.board, "Crowded", people=[firm.monday_ann, firm.monday_bob])
    by_bob = fake_monday.add_session(crowd, user_id=firm.monday_bob, started_at=_at(2), ended_at=_at(2, 10))
    by_nobody = fake_monday.add_session(crowd, user_id=stranger, started_at=_at(2, 11), ended_at=_at(2, 12))
    manual = fake_monday.add_session(known_item, user_id=firm.monday_ann, started_at=None, ended_at=_at(2, 16),
                                     manual=True)

    run = _sync()

    assert (run.created, run.quarantined) == (2, 3)
    assert _entries().get(external_id=f"{crowd}:{by_bob}").member == firm.bob
    reasons = {r.external_id: r.reason for r in InboundRecord.objects.all()}
    assert (f"Monday.com user {stranger} (Cara <cara@elsewhere.test>) is not mapped to a team member"
            in reasons[f"{theirs_item}:{theirs}"])
    assert "names 2 people and the session does not say" in reasons[f"{crowd}:{by_nobody}"]
    assert "manual session without a start time cannot be timed" in reasons[f"{known_item}:{manual}"]
    assert InboundRecord.objects.get(external_id=f"{theirs_item}:{theirs}").payload["item"]["people"] == [stranger]


def test_an_unmapped_board_quarantines_its_sessions_until_mapped(firm, fake_monday, settings):
    other = ProjectFactory(code="ops", name="Operations")
    RateFactory(contract=other.contract)
    board = fake_monday.add_board("Ops board")
    settings.MONDAY_BOARD_IDS = [firm.board, board]
    item = fake_monday.add_item(board, "Run book", people=[firm.monday_bob])
    session = fake_monday.add_session(item, user_id=firm.monday_bob, started_at=_at(1), ended_at=_at(1, 11))

    assert _sync().quarantined == 1
    record = InboundRecord.objects.get()
    assert f"board {board} (Ops board) is not mapped to a project" in record.reason
    ExternalRef.objects.filter(provider="monday", kind="project", external_id=board).update(local_id=other.id)

    run = _sync()

    record.refresh_from_db()
    assert record.status == RecordStatus.PROCESSED and run.created == 1
    assert _entries().get(external_id=f"{item}:{session}").project == other


def test_with_a_third_of_the_calls_failing_a_run_to_completion_stores_every_session_once(firm, fake_monday):
    made = [_item_with_session(fake_monday, firm, f"Item {n}", days_ago=1 + n % 10, minutes=20 + n)
            for n in range(25)]
    fake_monday.fail_randomly(1 / 3, seed=11)

    runs = []
    while not runs or runs[-1].status != RunStatus.SUCCEEDED:
        assert len(runs) < 10, [r.errors for r in runs]
        runs.append(_sync(limit=4))

    assert sum(r.retries for r in runs) > 0 and {r.status for r in fake_monday.requests} - {200}
    assert sorted(_entries().values_list("external_id", flat=True)) == sorted(f"{i}:{s}" for i, s in made)
    assert sum(r.created for r in runs) == 25


def test_monday_needs_its_boards_named(firm, settings):
    settings.MONDAY_BOARD_IDS = []
    run = _sync()
    assert run.status == RunStatus.FAILED and "MONDAY_BOARD_IDS is empty" in run.errors
