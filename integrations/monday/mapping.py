"""monday.com time-tracking sessions to pipeline inputs.

- A board is a project: ExternalRef kind project keyed by the board id (matched by the board's name
  against project codes and names, else mapped by hand).
- Each stopped session in an item's time-tracking history is one entry, keyed "<item id>:<session id>",
  timed from `started_at` to `ended_at` (monday has no per-session duration). A running session is
  skipped until it stops; a manual session without a start cannot be timed and waits in the quarantine.
- The member is the item's person (people column) mapped through ExternalRef or matched by the monday
  user's email. When the column names several people, the one who ran the timer is taken if listed;
  with nobody in the column, the user who ran the timer.
- monday has no task types: entries take the firm's default task type. The item name is the description.
"""

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import timezone

from billing.csv_import.parsing import minutes_from_seconds
from integrations.http import PermanentError
from integrations.inbound import InboundEntry
from integrations.models import Provider, RefKind
from integrations.refs import Described, resolve_refs, unmapped_reason
from projects.models import TaskType, TeamMember
from projects.time_capture import TimeEntryInput


def session_key(item_id, session_id) -> str:
    return f"{item_id}:{session_id}"


def item_prefix(item_id) -> str:
    return f"{item_id}:"


@dataclass
class Session:
    """One history session with the item around it; `payload` is what the quarantine keeps."""

    board_id: str
    item_id: str
    item_name: str
    people: list[str]
    session: dict
    payload: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return session_key(self.item_id, self.session.get("id"))

    @property
    def running(self) -> bool:
        return self.session.get("status") == "active" or (bool(self.session.get("started_at"))
                                                          and not self.session.get("ended_at"))


def _columns(item: dict, kind: str) -> list[dict]:
    return [column for column in item.get("column_values") or [] if column.get("type") == kind]


def sessions_of(item: dict, board_id: str | None = None) -> list[Session]:
    """Every history session of every time-tracking column of an item."""
    people = []
    for column in _columns(item, "people"):
        people += [str(p["id"]) for p in column.get("persons_and_teams") or [] if p.get("kind", "person") == "person"]
    board_id = str(board_id or (item.get("board") or {}).get("id") or "")
    item_id, name = str(item.get("id")), item.get("name") or ""
    found = []
    for column in _columns(item, "time_tracking"):
        for session in column.get("history") or []:
            payload = {"board_id": board_id, "item": {"id": item_id, "name": name, "people": people},
                       "session": session}
            found.append(Session(board_id=board_id, item_id=item_id, item_name=name, people=people,
                                 session=dict(session), payload=payload))
    return found


def session_from_payload(payload: dict) -> Session:
    item = payload.get("item") or {}
    return Session(board_id=str(payload.get("board_id") or ""), item_id=str(item.get("id")),
                   item_name=item.get("name") or "", people=[str(p) for p in item.get("people") or []],
                   session=dict(payload.get("session") or {}), payload=payload)


class MondayDirectory:
    """Board names and users' emails, asked for only for ids not seen before."""

    def __init__(self, client):
        self.client = client
        self.notes: list[str] = []

    def _ask(self, call, what: str):
        try:
            return call()
        except PermanentError as error:
            self.notes.append(f"Could not read the monday {what} to match them: {error}")
            return []

    def boards(self, ids: set[str]) -> dict[str, Described]:
        boards = self._ask(lambda: self.client.boards(sorted(ids)), "boards")
        return {str(b["id"]): Described(label=b.get("name") or "", name=b.get("name") or "") for b in boards}

    def users(self, ids: set[str]) -> dict[str, Described]:
        users = self._ask(lambda: self.client.users(sorted(ids)), "users")
        return {str(u["id"]): Described(label=f"{u.get('name') or ''} <{u.get('email') or ''}>".strip(),
                                        email=u.get("email") or "", name=u.get("name") or "") for u in users}


def _moment(value) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, ZoneInfo("UTC"))


def _zone(name: str | None):
    try:
        return ZoneInfo(name) if name else timezone.get_default_timezone()
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.get_default_timezone()


def _person(session: Session) -> tuple[str | None, str | None]:
    """(monday user id, why none) for a session, from the people column and the timer's user."""
    timer_user = str(session.session.get("started_user_id") or "") or None
    if len(session.people) == 1:
        return session.people[0], None
    if session.people:
        if timer_user in session.people:
            return timer_user, None
        return None, (f"Item {session.item_id} ({session.item_name}) names {len(session.people)} people and the "
                      "session does not say which of them tracked it.")
    if timer_user:
        return timer_user, None
    return None, f"Item {session.item_id} ({session.item_name}) has nobody in its people column."


def to_inbound(sessions: list[Session], directory: MondayDirectory | None) -> list[InboundEntry]:
    """Pipeline inputs for stopped sessions, with what could not be mapped as errors (a few queries a batch)."""
    people = {session.key: _person(session) for session in sessions}
    users = resolve_refs(provider=Provider.MONDAY, kind=RefKind.MEMBER,
                         external_ids={user for user, _ in people.values() if user},
                         describe=directory.users if directory else None)
    boards = resolve_refs(provider=Provider.MONDAY, kind=RefKind.PROJECT,
                          external_ids={session.board_id for session in sessions},
                          describe=directory.boards if directory else None)
    zones = dict(TeamMember.objects.filter(id__in={r.local_id for r in users.values() if r.local_id})
                 .values_list("id", "time_zone"))
    default_task_type = TaskType.objects.filter(is_default=True).values_list("id", flat=True).first()

    inbound = []
    for session in sessions:
        errors: dict[str, list[str]] = {}
        user_id, no_person = people[session.key]
        member_id = None
        if user_id is None:
            errors["member"] = [no_person]
        elif (ref := users.get(user_id)) is None or ref.local_id is None:
            errors["member"] = [unmapped_reason(Provider.MONDAY, RefKind.MEMBER, user_id, ref, "user")]
        else:
            member_id = ref.local_id
        project_id = None
        board = boards.get(session.board_id)
        if not session.board_id:
            errors["project"] = ["The session's board is not known."]
        elif board is None or board.local_id is None:
            errors["project"] = [unmapped_reason(Provider.MONDAY, RefKind.PROJECT, session.board_id, board, "board")]
        else:
            project_id = board.local_id
        if default_task_type is None:
            errors["task_type"] = ["monday has no task types and no default task type is set (mark one as the "
                                   "default)."]
        started = stopped = None
        try:
            started, stopped = _moment(session.session.get("started_at")), _moment(session.session.get("ended_at"))
        except ValueError:
            errors["work_date"] = [f"The session's times {session.session.get('started_at')!r} .. "
                                   f"{session.session.get('ended_at')!r} cannot be read."]
        minutes = work_date = None
        if "work_date" not in errors:
            if started is None:
                errors["work_date"] = ["A manual session without a start time cannot be timed: monday gives no "
                                       "duration per session."]
            else:
                work_date = started.astimezone(_zone(zones.get(member_id))).date()
                if stopped is not None:
                    try:
                        minutes = minutes_from_seconds(int((stopped - started).total_seconds()))
                    except ValueError as error:
                        errors["minutes"] = [str(error)]
        inbound.append(InboundEntry(external_id=session.key, payload=session.payload, input=TimeEntryInput(
            member_id=member_id, project_id=project_id, task_type_id=default_task_type, work_date=work_date,
            minutes=minutes, description=session.item_name, started_at=started, stopped_at=stopped,
            errors=errors,
        )))
    return inbound
