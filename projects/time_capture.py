"""Validating and recording time entries in batches: step 1 of the pipeline.

Everything that logs time (portal, API, CSV, connectors) reaches this through
`billing.pipeline.ingest`. A batch costs a fixed handful of queries however many entries it holds.
"""

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from projects.bulk import create_all, update_fields
from projects.models import (
    LOCKED_STATUSES,
    EntryStatus,
    Project,
    ProjectStatus,
    TaskType,
    TeamMember,
    TimeEntry,
)

MINUTES_PER_DAY = 24 * 60

# The raw facts a source may change; anything else on the row belongs to us.
FACT_FIELDS = ("member_id", "project_id", "task_type_id", "work_date", "minutes", "description", "billable",
               "started_at", "stopped_at")


@dataclass
class TimeEntryInput:
    """One entry as a source gives it, with our ids already resolved (None where it could not be)."""

    member_id: int | None = None
    project_id: int | None = None
    task_type_id: int | None = None
    work_date: date | None = None
    minutes: int | None = None
    description: str = ""
    billable: bool = True
    external_id: str | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    # The currency the source priced the entry in, when it says; must match the contract.
    currency: str | None = None
    # Where the input came from in its file, for per-row reports.
    line: int | None = None
    # Errors found before this step (e.g. a CSV value that could not be parsed).
    errors: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class RejectedInput:
    index: int
    line: int | None
    errors: dict[str, list[str]]

    def summary(self) -> str:
        return "; ".join(f"{name}: {' '.join(messages)}" for name, messages in self.errors.items())


class RecordedEntries(list):
    """Entries exactly as the record step just wrote them, with their member (and role), project (and
    contract and client) and task type attached: the pipeline rates them without reading them again."""


@dataclass
class RecordResult:
    created: list[TimeEntry] = field(default_factory=list)
    updated: list[TimeEntry] = field(default_factory=list)
    unchanged: list[TimeEntry] = field(default_factory=list)
    conflicts: list[TimeEntry] = field(default_factory=list)
    rejected: list[RejectedInput] = field(default_factory=list)
    # The stored entry for each accepted input, by the input's index.
    by_index: dict[int, TimeEntry] = field(default_factory=dict)
    # Projects that updated entries moved away from: their budgets change too.
    left_project_ids: set[int] = field(default_factory=set)

    @property
    def changed(self) -> list[TimeEntry]:
        """Entries whose facts are new or different: these need rating and routing."""
        return RecordedEntries(self.created + self.updated)


def _format_minutes(minutes: int) -> str:
    return f"{minutes // 60}:{minutes % 60:02d}"


class _Batch:
    """The reference data one batch needs, loaded with one query per table."""

    def __init__(self, inputs: list[TimeEntryInput], source: str):
        # With what rating needs of each (a member's role for the cost rate, a project's contract and client),
        # so the recorded entries go on through the pipeline without being read again.
        self.members = TeamMember.objects.select_related("role").in_bulk(
            {i.member_id for i in inputs if i.member_id}
        )
        self.projects = Project.objects.select_related("contract", "client").in_bulk(
            {i.project_id for i in inputs if i.project_id}
        )
        self.task_types = TaskType.objects.in_bulk({i.task_type_id for i in inputs if i.task_type_id})
        external_ids = [i.external_id for i in inputs if i.external_id]
        self.existing = {
            entry.external_id: entry
            for entry in TimeEntry.objects.filter(source=source, external_id__in=external_ids)
        }

    def attach(self, entry: TimeEntry) -> None:
        """Give a recorded entry the related objects already loaded for its (valid) facts."""
        entry.member = self.members[entry.member_id]
        entry.project = self.projects[entry.project_id]
        entry.task_type = self.task_types[entry.task_type_id]


def _validate_facts(item: TimeEntryInput, batch: _Batch, allowed_member_ids) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = defaultdict(list)
    for name, messages in item.errors.items():
        errors[name].extend(messages)

    if item.minutes is None:
        if "minutes" not in errors:
            errors["minutes"].append("This field is required.")
    elif item.minutes <= 0:
        errors["minutes"].append("Must be a positive number of minutes.")
    elif item.minutes > MINUTES_PER_DAY:
        errors["minutes"].append("One entry cannot be longer than 24 hours.")

    if item.started_at and item.stopped_at and item.stopped_at < item.started_at:
        errors["stopped_at"].append("The stop time is before the start time.")

    if item.work_date is None and "work_date" not in errors:
        errors["work_date"].append("This field is required.")

    member = batch.members.get(item.member_id) if item.member_id else None
    if member is None:
        if "member" not in errors:
            errors["member"].append("Unknown team member." if item.member_id else "This field is required.")
    elif not member.is_active:
        errors["member"].append(f"{member.name} is no longer active.")
    elif allowed_member_ids is not None and member.id not in allowed_member_ids:
        errors["member"].append("You can only log your own time.")

    task_type = batch.task_types.get(item.task_type_id) if item.task_type_id else None
    if task_type is None and "task_type" not in errors:
        errors["task_type"].append("Unknown task type." if item.task_type_id else "This field is required.")

    project = batch.projects.get(item.project_id) if item.project_id else None
    if project is None:
        if "project" not in errors:
            errors["project"].append("Unknown project." if item.project_id else "This field is required.")
    else:
        if project.status == ProjectStatus.ARCHIVED:
            errors["project"].append(f"Project {project.code} is archived: time can no longer be logged to it.")
        if item.work_date is not None:
            if not project.covers(item.work_date):
                errors["work_date"].append(
                    f"{item.work_date} is outside project {project.code} "
                    f"({project.start_date} to {project.end_date or 'open'})."
                )
            elif not project.contract.covers(item.work_date):
                errors["work_date"].append(
                    f"{item.work_date} is outside contract {project.contract.number} "
                    f"({project.contract.start_date} to {project.contract.end_date or 'open'})."
                )
        if item.currency and item.currency.upper() != project.contract.currency:
            errors["currency"].append(
                f"The entry is in {item.currency.upper()} but contract {project.contract.number} "
                f"is in {project.contract.currency}."
            )
    return errors


def _check_batch_duplicates(inputs: list[TimeEntryInput], errors_by_index: dict[int, dict]) -> None:
    first_seen: dict[str, int] = {}
    for index, item in enumerate(inputs):
        if not item.external_id:
            continue
        if item.external_id in first_seen:
            other = inputs[first_seen[item.external_id]]
            where = f"line {other.line}" if other.line else f"item {first_seen[item.external_id] + 1}"
            errors_by_index[index].setdefault("external_id", []).append(
                f"{item.external_id!r} appears more than once in this batch (first at {where})."
            )
        else:
            first_seen[item.external_id] = index


def _check_daily_totals(inputs, batch: _Batch, errors_by_index: dict[int, dict]) -> None:
    """Refuse any input that takes a member over 24 hours on a day, counting what is stored already."""
    candidates = [(index, item) for index, item in enumerate(inputs)
                  if not errors_by_index[index] and item.member_id and item.work_date and item.minutes]
    if not candidates:
        return
    replaced_ids = [batch.existing[item.external_id].id for _, item in candidates
                    if item.external_id in batch.existing]
    member_ids = {item.member_id for _, item in candidates}
    days = {item.work_date for _, item in candidates}
    stored = (
        TimeEntry.objects.filter(member_id__in=member_ids, work_date__in=days)
        .exclude(id__in=replaced_ids)
        .values_list("member_id", "work_date")
        .annotate(total=Sum("minutes"))
    )
    totals = {(member_id, day): total for member_id, day, total in stored}
    for index, item in candidates:
        key = (item.member_id, item.work_date)
        totals[key] = totals.get(key, 0) + item.minutes
        if totals[key] > MINUTES_PER_DAY:
            totals[key] -= item.minutes
            name = batch.members[item.member_id].name
            errors_by_index[index].setdefault("minutes", []).append(
                f"{name} would have {_format_minutes(totals[key] + item.minutes)} logged on {item.work_date}, "
                "more than 24 hours in one day."
            )


def record_time_entries(
    *,
    inputs: list[TimeEntryInput],
    source: str,
    acting_user=None,
    allowed_member_ids: set[int] | None = None,
    all_or_nothing: bool = False,
) -> RecordResult:
    """Validate a batch and upsert its entries by (source, external_id).

    With `all_or_nothing`, one bad input rejects the whole batch and nothing is written.
    """
    result = RecordResult()
    batch = _Batch(inputs, source)
    errors_by_index: dict[int, dict] = {}
    for index, item in enumerate(inputs):
        errors_by_index[index] = dict(_validate_facts(item, batch, allowed_member_ids))
        existing = batch.existing.get(item.external_id) if item.external_id else None
        if existing is not None and allowed_member_ids is not None and existing.member_id not in allowed_member_ids:
            errors_by_index[index].setdefault("external_id", []).append("This external id is already in use.")
    _check_batch_duplicates(inputs, errors_by_index)
    _check_daily_totals(inputs, batch, errors_by_index)

    result.rejected = [RejectedInput(index=i, line=inputs[i].line, errors=errs)
                       for i, errs in errors_by_index.items() if errs]
    if result.rejected and all_or_nothing:
        return result

    now = timezone.now()
    to_create: list[tuple[int, TimeEntry]] = []
    to_update: list[TimeEntry] = []
    for index, item in enumerate(inputs):
        if errors_by_index[index]:
            continue
        facts = {
            "member_id": item.member_id, "project_id": item.project_id, "task_type_id": item.task_type_id,
            "work_date": item.work_date, "minutes": item.minutes, "description": item.description or "",
            "billable": item.billable, "started_at": item.started_at, "stopped_at": item.stopped_at,
        }
        existing = batch.existing.get(item.external_id) if item.external_id else None
        if existing is None:
            entry = TimeEntry(source=source, external_id=item.external_id or uuid.uuid4().hex,
                              created_by=acting_user, **facts)
            batch.attach(entry)
            to_create.append((index, entry))
            continue
        result.by_index[index] = existing
        if all(getattr(existing, name) == value for name, value in facts.items()):
            result.unchanged.append(existing)
        elif existing.status in LOCKED_STATUSES:
            # The invoice stays as issued; finance sees what the source now says.
            changes = ", ".join(f"{name.removesuffix('_id')}: {getattr(existing, name)} → {value}"
                                for name, value in facts.items() if getattr(existing, name) != value)
            existing.conflict = f"Changed at the source after invoicing ({now:%Y-%m-%d %H:%M}): {changes}"
            existing.updated_at = now
            to_update.append(existing)
            result.conflicts.append(existing)
        else:
            if existing.project_id != facts["project_id"]:
                result.left_project_ids.add(existing.project_id)
            for name, value in facts.items():
                setattr(existing, name, value)
            batch.attach(existing)
            # Changed facts go back through rating and approval.
            existing.status = EntryStatus.RECORDED
            existing.rated_at = None
            existing.updated_at = now
            to_update.append(existing)
            result.updated.append(existing)

    with transaction.atomic():
        created = create_all([entry for _, entry in to_create])
        for (index, _), entry in zip(to_create, created, strict=True):
            result.by_index[index] = entry
        result.created = created
        update_fields(to_update, [*FACT_FIELDS, "status", "rated_at", "conflict", "updated_at"])
    return result


KEPT_FOR_HISTORY = "It has been on an invoice, so it is kept with the invoice's history."


@transaction.atomic
def time_entries_delete(*, entries) -> int:
    """Delete entries the member may still change, all or none; returns how many were deleted.

    Deleted time stops using its project's budget at once.
    """
    from django.core.exceptions import ValidationError
    from django.db.models import ProtectedError

    from projects.budgets import refresh_budgets

    ids = [entry.pk for entry in entries]
    locked = list(TimeEntry.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
    refused = [entry for entry in locked if not entry.is_editable]
    if refused:
        raise ValidationError([f"The entry of {entry.work_date} is {entry.get_status_display().lower()} and can "
                               "no longer be deleted." for entry in refused])
    try:
        with transaction.atomic():
            TimeEntry.objects.filter(pk__in=ids).delete()
    except ProtectedError:
        # A voided or credited invoice still holds the entry's allocations.
        raise ValidationError(KEPT_FOR_HISTORY) from None
    refresh_budgets(project_ids={entry.project_id for entry in locked})
    return len(locked)


def time_entry_delete(*, entry: TimeEntry) -> None:
    """Delete one entry the member may still change; anything downstream has used is kept."""
    time_entries_delete(entries=[entry])
