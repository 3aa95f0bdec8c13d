"""Toggl time entries (API v9 objects, Reports rows, webhook payloads) to pipeline inputs.

Every shape is first brought to the v9 object (that is also what the quarantine keeps), then mapped:
the Toggl user, project and task through ExternalRef (matched by email and by name), the work date
in the member's own time zone, whole minutes from Toggl's seconds. The entry's key is Toggl's id, so
an edit updates the same row. An entry with no task takes the firm's default task type; a task that is
not mapped waits in the quarantine rather than being billed as something else.
"""

import hashlib
import json
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


def _id(value) -> str | None:
    return None if value in (None, "", 0) else str(value)


def _moment(value) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if timezone.is_naive(moment):
        raise ValueError("no UTC offset")
    return moment


@dataclass
class TogglEntry:
    id: str | None
    user_id: str | None
    project_id: str | None
    task_id: str | None
    description: str
    billable: bool
    start: datetime | None
    stop: datetime | None
    seconds: int | None
    deleted: bool
    payload: dict
    problems: dict[str, list[str]] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        """Still being timed: a negative duration (Toggl's mark), or no stop and no duration."""
        return (self.seconds is not None and self.seconds < 0) or (self.stop is None and self.seconds is None)

    @property
    def key(self) -> str:
        """Toggl's id; a record without one is keyed by its content so the quarantine holds it once."""
        if self.id:
            return self.id
        digest = hashlib.sha256(json.dumps(self.payload, sort_keys=True, default=str).encode()).hexdigest()
        return f"malformed-{digest[:32]}"


def parse_entry(payload: dict) -> TogglEntry:
    """A v9 time entry object, with what is wrong with it noted (never raised)."""
    problems: dict[str, list[str]] = {}
    if not isinstance(payload, dict):
        payload = {"value": payload}
        problems["external_id"] = ["The record is not a Toggl time entry object."]
    entry_id = _id(payload.get("id"))
    if entry_id is None and "external_id" not in problems:
        problems["external_id"] = ["The Toggl entry has no id."]
    moments = {}
    for name in ("start", "stop"):
        try:
            moments[name] = _moment(payload.get(name))
        except ValueError:
            moments[name] = None
            problems.setdefault("work_date" if name == "start" else "stopped_at", []).append(
                f"{name} {payload.get(name)!r} is not a time with a UTC offset.")
    if moments["start"] is None and "work_date" not in problems:
        problems["work_date"] = ["The Toggl entry has no start time."]
    seconds = payload.get("duration")
    if seconds is not None and not isinstance(seconds, int):
        try:
            seconds = int(seconds)
        except (TypeError, ValueError):
            problems.setdefault("minutes", []).append(f"duration {payload.get('duration')!r} is not a number.")
            seconds = None
    return TogglEntry(
        id=entry_id, user_id=_id(payload.get("user_id") or payload.get("uid")),
        project_id=_id(payload.get("project_id") or payload.get("pid")),
        task_id=_id(payload.get("task_id") or payload.get("tid")),
        description=str(payload.get("description") or ""), billable=bool(payload.get("billable", True)),
        start=moments["start"], stop=moments["stop"], seconds=seconds,
        deleted=bool(payload.get("server_deleted_at")), payload=payload, problems=problems,
    )


def entries_from_report_row(row: dict) -> list[dict]:
    """A Reports v3 row as v9-shaped entries (a row may group several entries of one kind)."""
    shared = {"user_id": row.get("user_id"), "project_id": row.get("project_id"), "task_id": row.get("task_id"),
              "description": row.get("description"), "billable": row.get("billable", True),
              "tag_ids": row.get("tag_ids") or []}
    return [{**shared, "id": item.get("id"), "start": item.get("start"), "stop": item.get("stop"),
             "duration": item.get("seconds"), "at": item.get("at")}
            for item in row.get("time_entries") or []]


class TogglDirectory:
    """The workspace's users, projects and tasks, asked for only when an unknown id turns up (once per run)."""

    def __init__(self, client):
        self.client = client
        self._users: list[dict] | None = None
        self._projects: list[dict] | None = None
        self._tasks: dict[str, list[dict]] = {}
        self.notes: list[str] = []

    def _ask(self, call, what: str, default):
        try:
            return call()
        except PermanentError as error:
            # Without the directory nothing is matched automatically; the entries wait for a mapping.
            self.notes.append(f"Could not read the Toggl {what} to match them: {error}")
            return default

    def users(self, ids: set[str]) -> dict[str, Described]:
        if self._users is None:
            self._users = self._ask(self.client.workspace_users, "workspace users", [])
        return {str(u["id"]): Described(label=f"{u.get('fullname') or ''} <{u.get('email') or ''}>".strip(),
                                        email=u.get("email") or "", name=u.get("fullname") or "")
                for u in self._users if str(u.get("id")) in ids}

    def projects(self, ids: set[str]) -> dict[str, Described]:
        if self._projects is None:
            self._projects = self._ask(self.client.workspace_projects, "projects", [])
        return {str(p["id"]): Described(label=p.get("name") or "", name=p.get("name") or "")
                for p in self._projects if str(p.get("id")) in ids}

    def tasks(self, ids: set[str], project_ids: set[str]) -> dict[str, Described]:
        found = {}
        for project_id in sorted(project_ids):
            if project_id not in self._tasks:
                self._tasks[project_id] = self._ask(lambda p=project_id: self.client.project_tasks(p),
                                                    f"tasks of project {project_id}", [])
            for task in self._tasks[project_id]:
                if str(task.get("id")) in ids:
                    found[str(task["id"])] = Described(label=task.get("name") or "", name=task.get("name") or "")
        return found


def _zone(name: str | None):
    try:
        return ZoneInfo(name) if name else timezone.get_default_timezone()
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.get_default_timezone()


def to_inbound(entries: list[TogglEntry], directory: TogglDirectory | None) -> list[InboundEntry]:
    """Pipeline inputs for stopped entries, with what could not be mapped as errors (a few queries a batch)."""
    provider = Provider.TOGGL
    users = resolve_refs(provider=provider, kind=RefKind.MEMBER, external_ids={e.user_id for e in entries},
                         describe=directory.users if directory else None)
    projects = resolve_refs(provider=provider, kind=RefKind.PROJECT, external_ids={e.project_id for e in entries},
                            describe=directory.projects if directory else None)
    task_projects = {e.project_id for e in entries if e.task_id and e.project_id}
    tasks = resolve_refs(provider=provider, kind=RefKind.TASK_TYPE, external_ids={e.task_id for e in entries},
                         describe=(lambda ids: directory.tasks(ids, task_projects)) if directory else None)
    member_ids = {ref.local_id for ref in users.values() if ref.local_id}
    zones = dict(TeamMember.objects.filter(id__in=member_ids).values_list("id", "time_zone"))
    default_task_type = TaskType.objects.filter(is_default=True).values_list("id", flat=True).first()

    inbound = []
    for entry in entries:
        errors = {name: list(messages) for name, messages in entry.problems.items()}
        member_id = _local(users, entry.user_id, RefKind.MEMBER, "user", errors, "member",
                           missing="The Toggl entry has no user.")
        project_id = _local(projects, entry.project_id, RefKind.PROJECT, "project", errors, "project",
                            missing="The entry has no project in Toggl: give it one there.")
        if entry.task_id:
            task_type_id = _local(tasks, entry.task_id, RefKind.TASK_TYPE, "task", errors, "task_type")
        else:
            task_type_id = default_task_type
            if task_type_id is None:
                errors.setdefault("task_type", []).append(
                    "The entry has no task in Toggl and no default task type is set (mark one as the default).")
        work_date = entry.start.astimezone(_zone(zones.get(member_id))).date() if entry.start else None
        minutes = None
        seconds = entry.seconds
        if seconds is None and entry.start and entry.stop:
            seconds = int((entry.stop - entry.start).total_seconds())
        if seconds is not None and "minutes" not in errors:
            try:
                minutes = minutes_from_seconds(seconds)
            except ValueError as error:
                errors["minutes"] = [str(error)]
        inbound.append(InboundEntry(external_id=entry.key, payload=entry.payload, input=TimeEntryInput(
            member_id=member_id, project_id=project_id, task_type_id=task_type_id, work_date=work_date,
            minutes=minutes, description=entry.description, billable=entry.billable, started_at=entry.start,
            stopped_at=entry.stop, errors=errors,
        )))
    return inbound


def _local(refs: dict, external_id: str | None, kind: str, what: str, errors: dict, field_name: str,
           missing: str = "") -> int | None:
    if external_id is None:
        if missing:
            errors.setdefault(field_name, []).append(missing)
        return None
    ref = refs.get(external_id)
    if ref is None or ref.local_id is None:
        errors.setdefault(field_name, []).append(unmapped_reason(Provider.TOGGL, kind, external_id, ref, what))
        return None
    return ref.local_id
