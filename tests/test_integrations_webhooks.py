"""Webhooks: Toggl's signed deliveries and handshake, monday's challenge and item events; replays change nothing."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from integrations.events import process_pending
from integrations.models import InboundRecord, WebhookEvent
from projects.models import EntrySource, TimeEntry
from tests.factories import ProjectFactory, RateFactory, TaskTypeFactory, TeamMemberFactory, UserFactory

pytestmark = pytest.mark.django_db

TOGGL_URL = "/api/v1/webhooks/toggl/"
MONDAY_URL = "/api/v1/webhooks/monday/"
YESTERDAY = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=1)


@pytest.fixture
def project(db):
    project = ProjectFactory(code="web", name="Website Redesign")
    RateFactory(contract=project.contract)
    TaskTypeFactory(code="dev", name="Development", is_default=True)
    return project


@pytest.fixture
def ann(db):
    return TeamMemberFactory(user=UserFactory(username="ann@firm.test", roles=["staff"]), email="ann@firm.test")


def _post_toggl(client, fake, event, *, signature=None, secret=None):
    body, good = fake.signed(event, secret)
    headers = {} if signature == "" else {"HTTP_X_WEBHOOK_SIGNATURE_256": signature or good}
    return client.post(TOGGL_URL, data=body, content_type="application/json", **headers)


@pytest.fixture
def toggl_entry(fake_toggl, project, ann):
    user = fake_toggl.add_user("ann@firm.test", "Ann")
    toggl_project = fake_toggl.add_project("Website Redesign")
    return fake_toggl.add_entry(user_id=user, project_id=toggl_project, start=YESTERDAY, seconds=2700,
                                description="Call")


def test_the_url_is_mounted_before_the_api_router():
    assert reverse("webhooks:toggl") == TOGGL_URL and reverse("webhooks:monday") == MONDAY_URL


def test_a_signed_toggl_event_is_stored_and_processed(client, fake_toggl, toggl_entry, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = _post_toggl(client, fake_toggl, fake_toggl.event("created", toggl_entry["id"], event_id=501))

    assert response.status_code == 200 and response.json() == {"status": "accepted"}
    event = WebhookEvent.objects.get(provider="toggl", event_id="501")
    assert event.processed and event.error == ""
    entry = TimeEntry.objects.get(source=EntrySource.TOGGL, external_id=str(toggl_entry["id"]))
    assert (entry.minutes, entry.description, entry.member.email) == (45, "Call", "ann@firm.test")


@pytest.mark.parametrize("case", ["wrong", "missing", "other secret"])
def test_a_bad_or_missing_signature_is_refused_and_nothing_stored(client, fake_toggl, toggl_entry, case,
                                                                   django_capture_on_commit_callbacks):
    event = fake_toggl.event("created", toggl_entry["id"])
    with django_capture_on_commit_callbacks(execute=True):
        if case == "wrong":
            response = _post_toggl(client, fake_toggl, event, signature="sha256=" + "0" * 64)
        elif case == "missing":
            response = _post_toggl(client, fake_toggl, event, signature="")
        else:
            response = _post_toggl(client, fake_toggl, event, secret="not-the-secret")

    assert response.status_code == 401
    assert not WebhookEvent.objects.exists() and not TimeEntry.objects.exists()


def test_toggl_webhooks_are_refused_while_no_secret_is_configured(client, fake_toggl, toggl_entry, settings):
    settings.TOGGL_WEBHOOK_SECRET = ""
    assert _post_toggl(client, fake_toggl, fake_toggl.event("created", toggl_entry["id"])).status_code == 401
    assert not WebhookEvent.objects.exists()


def test_the_same_event_delivered_three_times_changes_nothing(client, fake_toggl, toggl_entry,
                                                               django_capture_on_commit_callbacks):
    event = fake_toggl.event("created", toggl_entry["id"], event_id=777)
    answers = []
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            answers.append(_post_toggl(client, fake_toggl, event).json()["status"])
        if len(answers) == 1:
            first = TimeEntry.objects.get()
    assert answers == ["accepted", "duplicate", "duplicate"]
    assert WebhookEvent.objects.count() == 1
    entry = TimeEntry.objects.get()
    assert (entry.id, entry.updated_at) == (first.id, first.updated_at)


def test_the_toggl_handshake_echoes_the_validation_code(client, fake_toggl):
    ping = fake_toggl.ping_event("code-123")
    response = _post_toggl(client, fake_toggl, ping)
    assert response.status_code == 200 and response.json() == {"validation_code": "code-123"}
    # An unsigned ping is refused like any other delivery.
    assert _post_toggl(client, fake_toggl, ping, signature="").status_code == 401
    assert not WebhookEvent.objects.exists()


def test_toggl_edits_and_deletions_by_webhook(client, fake_toggl, toggl_entry, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _post_toggl(client, fake_toggl, fake_toggl.event("created", toggl_entry["id"]))
        fake_toggl.edit_entry(toggl_entry["id"], seconds=3600)
        _post_toggl(client, fake_toggl, fake_toggl.event("updated", toggl_entry["id"]))
    assert TimeEntry.objects.get().minutes == 60

    fake_toggl.delete_entry(toggl_entry["id"])
    with django_capture_on_commit_callbacks(execute=True):
        _post_toggl(client, fake_toggl, fake_toggl.event("deleted", toggl_entry["id"]))

    assert not TimeEntry.objects.exists()
    assert WebhookEvent.objects.filter(processed_at__isnull=False).count() == 3


def test_a_webhook_for_an_unmapped_user_is_quarantined(client, fake_toggl, project,
                                                       django_capture_on_commit_callbacks):
    stranger = fake_toggl.add_user("zed@elsewhere.test", "Zed")
    entry = fake_toggl.add_entry(user_id=stranger, project_id=fake_toggl.add_project("Website Redesign"),
                                 start=YESTERDAY, seconds=600)
    with django_capture_on_commit_callbacks(execute=True):
        _post_toggl(client, fake_toggl, fake_toggl.event("created", entry["id"]))

    assert not TimeEntry.objects.exists()
    assert "zed@elsewhere.test" in InboundRecord.objects.get(external_id=str(entry["id"])).reason


def test_malformed_and_oversized_bodies_are_refused(client, fake_toggl, settings):
    body = b"{not json"
    from integrations.fakes.toggl import sign

    response = client.post(TOGGL_URL, data=body, content_type="application/json",
                           HTTP_X_WEBHOOK_SIGNATURE_256=sign(body, fake_toggl.webhook_secret))
    assert response.status_code == 400

    settings.INTEGRATIONS_WEBHOOK_MAX_BYTES = 1000
    big = json.dumps({"event_id": 1, "payload": "x" * 2000}).encode()
    response = client.post(TOGGL_URL, data=big, content_type="application/json",
                           HTTP_X_WEBHOOK_SIGNATURE_256=sign(big, fake_toggl.webhook_secret))
    assert response.status_code == 413
    assert client.post(MONDAY_URL, data=big, content_type="application/json").status_code == 413
    assert not WebhookEvent.objects.exists()


def test_an_event_left_unprocessed_is_finished_by_the_next_sync(client, fake_toggl, toggl_entry):
    # The worker never ran it (no on-commit execution here).
    _post_toggl(client, fake_toggl, fake_toggl.event("created", toggl_entry["id"], event_id=9))
    assert not TimeEntry.objects.exists()
    WebhookEvent.objects.update(received_at=datetime.now(UTC) - timedelta(minutes=5))

    assert process_pending(provider="toggl") == 1

    assert TimeEntry.objects.count() == 1 and WebhookEvent.objects.get().processed


# --- monday ---------------------------------------------------------------------------------------------

@pytest.fixture
def board(fake_monday, project, ann, settings):
    board = fake_monday.add_board("web")
    settings.MONDAY_BOARD_IDS = [board]
    return board


def test_the_monday_challenge_is_echoed(client, fake_monday):
    challenge = fake_monday.challenge()
    response = client.post(MONDAY_URL, data=challenge, content_type="application/json")
    assert response.status_code == 200 and response.json() == challenge
    assert not WebhookEvent.objects.exists()


def test_a_monday_event_reads_the_item_back_and_lands_its_sessions(client, fake_monday, board,
                                                                   django_capture_on_commit_callbacks):
    person = fake_monday.add_user("ann@firm.test", "Ann")
    item = fake_monday.add_item(board, "Design review", people=[person])
    session = fake_monday.add_session(item, user_id=person, started_at=YESTERDAY,
                                      ended_at=YESTERDAY + timedelta(minutes=50))
    event = fake_monday.event(item)

    for expected in ("accepted", "duplicate", "duplicate"):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(MONDAY_URL, data=event, content_type="application/json")
        assert response.json() == {"status": expected}

    entry = TimeEntry.objects.get(source=EntrySource.MONDAY)
    assert (entry.external_id, entry.minutes, entry.description) == (f"{item}:{session}", 50, "Design review")
    # The body was only a hint: the item was read back from the API, once.
    assert sum("items(ids" in r.json["query"] for r in fake_monday.requests) == 1

    fake_monday.delete_item(item)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(MONDAY_URL, data=fake_monday.event(item, "item_deleted"), content_type="application/json")
    assert not TimeEntry.objects.exists()


def test_monday_webhooks_need_the_url_secret_when_one_is_set(client, fake_monday, board, settings):
    settings.MONDAY_WEBHOOK_SECRET = "s3cret"
    item = fake_monday.add_item(board, "Anything")
    assert client.post(MONDAY_URL, data=fake_monday.event(item), content_type="application/json").status_code == 401
    assert client.post(MONDAY_URL + "?secret=nope", data=fake_monday.challenge(),
                       content_type="application/json").status_code == 401
    assert client.post(MONDAY_URL + "?secret=s3cret", data=fake_monday.event(item),
                       content_type="application/json").status_code == 200
    assert WebhookEvent.objects.count() == 1


def test_an_event_for_a_board_not_synced_is_ignored(client, fake_monday, board, django_capture_on_commit_callbacks):
    elsewhere = fake_monday.add_board("Someone else's")
    person = fake_monday.add_user("ann@firm.test")
    item = fake_monday.add_item(elsewhere, "Not ours", people=[person])
    fake_monday.add_session(item, user_id=person, started_at=YESTERDAY, ended_at=YESTERDAY + timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(MONDAY_URL, data=fake_monday.event(item), content_type="application/json")
    assert not TimeEntry.objects.exists() and WebhookEvent.objects.get().processed
