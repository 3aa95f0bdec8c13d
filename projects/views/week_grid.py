"""The weekly timesheet grid: one row per (project, task type), one cell per day.

The grid owns the entries it created: each cell's entry has the deterministic external id
`grid:<member>:<project>:<task type>:<date>` (source "portal"), so saving a week again updates the same
entries. Entries from anywhere else (the single-entry form, the API, CSV, connectors) are shown in the
cells as read-only extra time. Saving goes through `billing.pipeline.ingest` as one all-or-nothing batch.
"""

import datetime as dt
import uuid
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.http import QueryDict
from django.utils import timezone

from billing.pipeline import TimeEntryInput, ingest
from projects.forms import format_duration, parse_duration
from projects.models import EntrySource, EntryStatus, Project, ProjectStatus, TaskType, TeamMember, TimeEntry
from projects.time_capture import time_entries_delete

WEEK = dt.timedelta(days=7)

RowKey = tuple[int, int]  # (project id, task type id)


def member_today(member: TeamMember | None) -> dt.date:
    """Today where the member works, so "this week" turns over at their midnight, not the server's."""
    if member is not None:
        try:
            return timezone.localdate(timezone=ZoneInfo(member.time_zone))
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return timezone.localdate()


def week_start(day: dt.date) -> dt.date:
    """The Monday of the day's week."""
    return day - dt.timedelta(days=day.weekday())


def grid_external_id(member_id: int, key: RowKey, day: dt.date) -> str:
    return f"grid:{member_id}:{key[0]}:{key[1]}:{day.isoformat()}"


def _hours(minutes: int) -> str:
    return format_duration(minutes) or "0:00"


@dataclass
class Cell:
    key: RowKey
    day: dt.date
    # The grid's own entry for this project, task type and day, if there is one.
    entry: TimeEntry | None = None
    # Time logged elsewhere for the same project, task type and day: shown, never edited here.
    others: list[TimeEntry] = field(default_factory=list)
    # What the input shows: the stored duration, or what the member typed when a save failed.
    text: str = ""
    posted: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"cell-{self.key[0]}-{self.key[1]}-{self.day.isoformat()}"

    @property
    def editable(self) -> bool:
        return self.entry is None or self.entry.is_editable

    @property
    def own_minutes(self) -> int:
        if not self.editable:
            return self.entry.minutes
        try:
            return parse_duration(self.text) or 0
        except ValidationError:
            return 0

    @property
    def other_minutes(self) -> int:
        return sum(entry.minutes for entry in self.others)

    @property
    def fixed_minutes(self) -> int:
        """Minutes the input does not hold (locked or from elsewhere): the live totals add these."""
        return self.other_minutes + (0 if self.editable else self.entry.minutes)

    @property
    def total_minutes(self) -> int:
        return self.own_minutes + self.other_minutes

    @property
    def other_display(self) -> str:
        return format_duration(self.other_minutes)

    @property
    def other_title(self) -> str:
        return "Also logged elsewhere: " + "; ".join(
            f"{format_duration(entry.minutes)} via {entry.get_source_display()} ({entry.get_status_display()})"
            for entry in self.others
        )

    @property
    def status(self) -> str:
        return self.entry.status if self.entry is not None else ""

    @property
    def note(self) -> str:
        """Why the cell looks the way it does, for its tooltip."""
        if self.entry is None:
            return ""
        if not self.editable:
            return f"{self.entry.get_status_display()}: can no longer be changed."
        approval = getattr(self.entry, "approval", None)
        if self.entry.status == EntryStatus.REJECTED and approval is not None and approval.note:
            return f"Rejected: {approval.note}"
        return self.entry.get_status_display()


@dataclass
class Row:
    project: Project
    task_type: TaskType
    cells: list[Cell]
    errors: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.project.id}:{self.task_type.id}"

    @property
    def total_minutes(self) -> int:
        return sum(cell.total_minutes for cell in self.cells)

    @property
    def total_display(self) -> str:
        return _hours(self.total_minutes)

    def add_error(self, message: str) -> None:
        if message not in self.errors:
            self.errors.append(message)


@dataclass
class SaveOutcome:
    saved: bool
    created: int = 0
    updated: int = 0
    deleted: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)

    def summary(self) -> str:
        return f"{self.created} added, {self.updated} changed, {self.deleted} removed"


class WeekGrid:
    """One member's week: rows, cells, totals, and the save that turns typed hours into entries."""

    def __init__(self, *, member: TeamMember, start: dt.date, entries: list[TimeEntry],
                 loggable: list[Project], task_types: list[TaskType]):
        self.member = member
        self.start = start
        self.days = [start + dt.timedelta(days=offset) for offset in range(7)]
        self.loggable = {project.id: project for project in loggable}
        self.task_types = {task_type.id: task_type for task_type in task_types}
        self.projects = dict(self.loggable)
        self.rows: dict[RowKey, Row] = {}
        # Problems that stop the save but belong to no cell or row (e.g. the member is inactive).
        self.errors: list[str] = []
        # Things worth telling that do not stop the save (e.g. a posted row that no longer exists).
        self.notices: list[str] = []
        self.other_entries: list[TimeEntry] = []
        for entry in entries:
            self._place(entry)

    @classmethod
    def load(cls, *, member: TeamMember, start: dt.date) -> "WeekGrid":
        end = start + dt.timedelta(days=6)
        entries = list(
            TimeEntry.objects.filter(member=member, work_date__range=(start, end))
            .select_related("project__client", "task_type", "approval")
            .order_by("work_date", "id")
        )
        loggable = list(
            Project.objects.filter(status=ProjectStatus.ACTIVE, start_date__lte=end)
            .filter(Q(end_date__isnull=True) | Q(end_date__gte=start))
            .select_related("client")
        )
        return cls(member=member, start=start, entries=entries, loggable=loggable,
                   task_types=list(TaskType.objects.all()))

    # Building ---------------------------------------------------------------------------------

    @property
    def previous_week(self) -> dt.date:
        return self.start - WEEK

    @property
    def next_week(self) -> dt.date:
        return self.start + WEEK

    def is_grid_entry(self, entry: TimeEntry) -> bool:
        return entry.source == EntrySource.PORTAL and entry.external_id.startswith(f"grid:{self.member.id}:")

    def _row(self, project: Project, task_type: TaskType) -> Row:
        key = (project.id, task_type.id)
        if key not in self.rows:
            self.projects.setdefault(project.id, project)
            self.rows[key] = Row(project=project, task_type=task_type,
                                 cells=[Cell(key=key, day=day) for day in self.days])
        return self.rows[key]

    def _place(self, entry: TimeEntry) -> None:
        entry.duration = format_duration(entry.minutes)
        row = self._row(entry.project, entry.task_type)
        cell = row.cells[(entry.work_date - self.start).days]
        # An entry is placed by its facts; an edit in the entry form may have moved a grid entry here.
        if cell.entry is None and self.is_grid_entry(entry):
            cell.entry = entry
            cell.text = format_duration(entry.minutes)
        else:
            cell.others.append(entry)
            self.other_entries.append(entry)

    def sorted_rows(self) -> list[Row]:
        return sorted(self.rows.values(), key=lambda row: (row.project.client.name.lower(),
                                                           row.project.code, row.task_type.name.lower()))

    def day_totals(self) -> list[int]:
        return [sum(row.cells[index].total_minutes for row in self.rows.values()) for index in range(7)]

    def day_total_displays(self) -> list[str]:
        return [_hours(total) for total in self.day_totals()]

    def week_total_display(self) -> str:
        return _hours(sum(self.day_totals()))

    @property
    def has_errors(self) -> bool:
        return bool(self.errors) or any(row.errors or any(cell.errors for cell in row.cells)
                                        for row in self.rows.values())

    # What the member posted ---------------------------------------------------------------------

    def apply_posted(self, posted: QueryDict) -> None:
        """Bring back the rows and typed values of a posted grid, so nothing typed is lost on a re-render."""
        keys: list[RowKey] = []
        for token in posted.getlist("row"):
            try:
                project_id, task_type_id = (int(part) for part in token.split(":"))
            except ValueError:
                self.notices.append(f"Ignored a malformed row {token!r}.")
                continue
            keys.append((project_id, task_type_id))
        missing = {project_id for project_id, _ in keys if project_id not in self.projects}
        if missing:
            self.projects.update(Project.objects.select_related("client").in_bulk(missing))
        for project_id, task_type_id in keys:
            project, task_type = self.projects.get(project_id), self.task_types.get(task_type_id)
            if project is None or task_type is None:
                self.notices.append("A row's project or task type no longer exists; that row was left out.")
                continue
            self._row(project, task_type)
        for row in self.rows.values():
            for cell in row.cells:
                if cell.name in posted:
                    cell.text = posted[cell.name].strip()
                    cell.posted = True

    def add_row(self, *, project_id: str | None, task_type_id: str | None) -> str | None:
        """Add an empty row; returns why not, if it cannot be added."""
        try:
            project = self.loggable.get(int(project_id or ""))
            task_type = self.task_types.get(int(task_type_id or ""))
        except ValueError:
            project = task_type = None
        if project is None or task_type is None:
            return "Choose a project and a task type to add a row."
        if (project.id, task_type.id) in self.rows:
            return f"{project.code} · {task_type.name} is already in the grid."
        self._row(project, task_type)
        return None

    def copy_last_week_rows(self) -> tuple[int, int]:
        """Add last week's rows without their hours; returns (rows added, rows of inactive projects skipped)."""
        previous = self.previous_week
        pairs = (
            TimeEntry.objects.filter(member=self.member,
                                     work_date__range=(previous, previous + dt.timedelta(days=6)))
            # No ordering: the default (-work_date, -id) would make DISTINCT see every entry as different.
            .order_by().values_list("project_id", "task_type_id").distinct()
        )
        added = skipped = 0
        for project_id, task_type_id in pairs:
            project, task_type = self.loggable.get(project_id), self.task_types.get(task_type_id)
            if project is None or task_type is None:
                skipped += 1
            elif (project_id, task_type_id) not in self.rows:
                self._row(project, task_type)
                added += 1
        return added, skipped

    def addable_projects(self) -> list[Project]:
        return sorted(self.loggable.values(), key=lambda project: (project.client.name.lower(), project.code))

    # Saving -------------------------------------------------------------------------------------

    def save(self, *, acting_user) -> SaveOutcome:
        """Save every posted cell at once; when any cell is wrong nothing of the week is saved."""
        inputs: list[TimeEntryInput] = []
        input_cells: list[Cell] = []
        to_delete: list[Cell] = []
        new_cells: list[Cell] = []
        for row in self.rows.values():
            for cell in row.cells:
                if not cell.posted:
                    # Not on the member's screen (e.g. logged in another tab meanwhile): leave it alone.
                    continue
                parse_errors: list[str] = []
                try:
                    minutes = parse_duration(cell.text) or 0
                except ValidationError as error:
                    minutes, parse_errors = 0, error.messages
                if not cell.editable:
                    # Approved or invoiced meanwhile: only an unchanged value may come back.
                    if parse_errors or minutes != cell.entry.minutes:
                        cell.errors.append(f"This entry is {cell.entry.get_status_display().lower()} "
                                           "and can no longer be changed.")
                    continue
                if parse_errors:
                    # Handed to the pipeline with the error, so every other problem is reported too.
                    inputs.append(self._input(cell, minutes=None, errors={"minutes": parse_errors}))
                    input_cells.append(cell)
                elif minutes == 0:
                    if cell.entry is not None:
                        to_delete.append(cell)
                elif cell.entry is None or cell.entry.minutes != minutes:
                    inputs.append(self._input(cell, minutes=minutes))
                    input_cells.append(cell)
                    if cell.entry is None:
                        new_cells.append(cell)
        if self.has_errors:
            return SaveOutcome(saved=False)
        self._avoid_taken_external_ids(inputs, input_cells, new_cells)

        outcome = SaveOutcome(saved=True)
        with transaction.atomic():
            # Deletions first, so the pipeline's 24-hours-a-day check does not count cleared cells.
            if to_delete:
                try:
                    outcome.deleted = time_entries_delete(entries=[cell.entry for cell in to_delete])
                except ValidationError as error:
                    for cell in to_delete:
                        cell.errors.extend(error.messages)
            if not self.has_errors and inputs:
                result = ingest(inputs, EntrySource.PORTAL, acting_user=acting_user,
                                allowed_member_ids={self.member.id}, all_or_nothing=True)
                for rejected in result.rejected:
                    self._show_errors(input_cells[rejected.index], rejected.errors)
                outcome.created, outcome.updated = len(result.created), len(result.updated)
            if self.has_errors:
                # The deletions above are undone too: the week is saved whole or not at all.
                transaction.set_rollback(True)
                return SaveOutcome(saved=False)
        return outcome

    def _input(self, cell: Cell, *, minutes: int | None, errors: dict | None = None) -> TimeEntryInput:
        entry = cell.entry
        project_id, task_type_id = cell.key
        return TimeEntryInput(
            member_id=self.member.id, project_id=project_id, task_type_id=task_type_id, work_date=cell.day,
            minutes=minutes,
            # The grid only sets hours: what the entry form added (description, billable) is kept.
            description=entry.description if entry else "",
            billable=entry.billable if entry else True,
            started_at=entry.started_at if entry else None,
            stopped_at=entry.stopped_at if entry else None,
            external_id=entry.external_id if entry else grid_external_id(self.member.id, cell.key, cell.day),
            errors=errors or {},
        )

    def _avoid_taken_external_ids(self, inputs, input_cells, new_cells) -> None:
        """A grid entry moved elsewhere with the entry form keeps its id; a new cell must not take it over."""
        if not new_cells:
            return
        wanted = {grid_external_id(self.member.id, cell.key, cell.day) for cell in new_cells}
        taken = set(TimeEntry.objects.filter(source=EntrySource.PORTAL, external_id__in=wanted)
                    .values_list("external_id", flat=True))
        for item in inputs:
            if item.external_id in taken:
                item.external_id = f"{item.external_id}:{uuid.uuid4().hex[:8]}"

    def _show_errors(self, cell: Cell, errors: dict[str, list[str]]) -> None:
        row = self.rows[cell.key]
        for name, messages in errors.items():
            for message in messages:
                if name in ("project", "task_type"):
                    row.add_error(message)
                elif name == "member":
                    if message not in self.errors:
                        self.errors.append(message)
                elif message not in cell.errors:
                    cell.errors.append(message)
