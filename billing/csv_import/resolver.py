"""Matching a file's emails, names, project codes and task names to our ids.

One query per table for the whole file, whatever its length: the values are collected first and
looked up together. Case is ignored; the database narrows the candidates (lower() there may only
fold ASCII, so exact spellings are asked for too) and Python makes the final, Unicode-aware match.
"""

from collections import defaultdict

from django.db.models import Q
from django.db.models.functions import Lower

from billing.csv_import.parsing import ParsedEntry
from projects.models import Project, TaskType, TeamMember
from projects.time_capture import TimeEntryInput


def _key(value: str) -> str:
    return " ".join(value.split()).casefold()


def _matching(field: str, values: set[str]) -> Q:
    """Rows whose `field` equals one of `values`, exactly or ignoring (ASCII) case."""
    values = {value for value in values if value}
    if not values:
        return Q(pk__in=[])
    return Q(**{f"{field}__in": values}) | Q(**{f"{field}_key__in": {value.lower() for value in values}})


def _one(candidates: list, what: str) -> tuple[object | None, str | None]:
    """The single candidate, preferring live projects over archived ones; else why not."""
    if len(candidates) > 1:
        live = [c for c in candidates if not getattr(c, "is_archived", False)]
        if len(live) == 1:
            return live[0], None
        return None, f"{len(candidates)} {what}"
    return (candidates[0], None) if candidates else (None, None)


class ReferenceData:
    """The members, projects and task types a file names, each table read once."""

    def __init__(self, entries: list[ParsedEntry]):
        emails = {e.member_email for e in entries}
        names = {e.member_name for e in entries}
        members = (TeamMember.objects.annotate(email_key=Lower("email"), name_key=Lower("name"))
                   .filter(_matching("email", emails) | _matching("name", names)).only("id", "email", "name"))
        self.members_by_email = {_key(m.email): m for m in members}
        self.members_by_name: dict[str, list[TeamMember]] = defaultdict(list)
        for member in self.members_by_email.values():
            self.members_by_name[_key(member.name)].append(member)

        codes = {e.project_code for e in entries}
        project_names = {e.project_name for e in entries}
        projects = (Project.objects.select_related("client")
                    .annotate(code_key=Lower("code"), name_key=Lower("name"))
                    .filter(_matching("code", codes) | _matching("name", project_names))
                    .only("id", "code", "name", "status", "client__name"))
        self.projects_by_code: dict[str, Project] = {}
        self.projects_by_name: dict[str, list[Project]] = defaultdict(list)
        for project in projects:
            self.projects_by_code[_key(project.code)] = project
            self.projects_by_name[_key(project.name)].append(project)

        tasks = {e.task for e in entries}
        task_types = (TaskType.objects.annotate(code_key=Lower("code"), name_key=Lower("name"))
                      .filter(_matching("code", tasks) | _matching("name", tasks) | Q(is_default=True)))
        self.default_task_type = next((t for t in task_types if t.is_default), None)
        self.task_types: dict[str, TaskType] = {}
        # Codes win over names when a task's text is one type's code and another's name.
        for task_type in sorted(task_types, key=lambda t: t.id):
            self.task_types.setdefault(_key(task_type.name), task_type)
        for task_type in task_types:
            self.task_types[_key(task_type.code)] = task_type

    def member_id(self, entry: ParsedEntry) -> int | None:
        if entry.member_email:
            member = self.members_by_email.get(_key(entry.member_email))
            if member is None:
                entry.add_error("member", f"No team member has the email {entry.member_email!r}.")
            return member.id if member else None
        if entry.member_name:
            member, ambiguous = _one(self.members_by_name.get(_key(entry.member_name), []),
                                     f"team members are named {entry.member_name!r}: add an Email column.")
            if ambiguous:
                entry.add_error("member", ambiguous)
            elif member is None:
                entry.add_error("member", f"No team member is named {entry.member_name!r}.")
            return member.id if member else None
        return None

    def project_id(self, entry: ParsedEntry) -> int | None:
        if entry.project_code:
            project = self.projects_by_code.get(_key(entry.project_code))
            if project is not None:
                return project.id
            if not entry.project_name:
                entry.add_error("project", f"No project has the code {entry.project_code!r}.")
                return None
        if not entry.project_name:
            return None
        candidates = self.projects_by_name.get(_key(entry.project_name), [])
        named = f"named {entry.project_name!r}"
        if entry.client_name:
            candidates = [p for p in candidates if _key(p.client.name) == _key(entry.client_name)]
            named += f" for client {entry.client_name!r}"
        project, ambiguous = _one(candidates, f"projects are {named}: they cannot be told apart.")
        if ambiguous:
            entry.add_error("project", ambiguous)
        elif project is None:
            code = f"has the code {entry.project_code!r} or is " if entry.project_code else "is "
            entry.add_error("project", f"No project {code}{named}.")
        return project.id if project else None

    def task_type_id(self, entry: ParsedEntry) -> int | None:
        task_type = self.task_types.get(_key(entry.task)) if entry.task else None
        if task_type is not None:
            return task_type.id
        if entry.task and not entry.task_falls_back:
            entry.add_error("task_type", f"No task type has the code or name {entry.task!r}.")
            return None
        if self.default_task_type is None:
            given = f"Task {entry.task!r} matches no task type" if entry.task else "No task given"
            entry.add_error("task_type", f"{given} and no default task type is set (mark one as the default).")
            return None
        return self.default_task_type.id


def resolve(entries: list[ParsedEntry]) -> list[TimeEntryInput]:
    """Pipeline inputs for the parsed rows, with what could not be matched as errors on each."""
    reference = ReferenceData(entries)
    inputs = []
    for entry in entries:
        member_id = reference.member_id(entry)
        project_id = reference.project_id(entry)
        task_type_id = reference.task_type_id(entry)
        inputs.append(TimeEntryInput(
            member_id=member_id, project_id=project_id, task_type_id=task_type_id, work_date=entry.work_date,
            minutes=entry.minutes, description=entry.description, billable=entry.billable,
            external_id=entry.external_id, started_at=entry.started_at, stopped_at=entry.stopped_at,
            currency=entry.currency, line=entry.line, errors=entry.errors,
        ))
    return inputs
