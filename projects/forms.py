"""Portal forms: durations as people type them, the single-entry form and the "My time" filters."""

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q

from projects.models import EntryStatus, Project, ProjectStatus, TaskType, TimeEntry
from projects.time_capture import TimeEntryInput

DURATION_HELP = "Hours as 1.5, 1:30, 1h30 or 90m."

_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
_MINUTES = re.compile(r"^(\d+)(?:m|min|mins)$")
_HOURS_AND_MINUTES = re.compile(r"^(\d+)h(?:(\d{1,2})(?:m|min|mins)?)?$")
_DECIMAL_HOURS = re.compile(r"^(\d+[.,]?\d*|[.,]\d+)h?$")


def parse_duration(text: str) -> int | None:
    """Minutes from what a person typed: "1.5", "1,5", "1:30", "1h30", "2h", "90m"; blank is None.

    Decimal hours round to the nearest whole minute (a half rounds up), since entries store whole minutes.
    The grid's live totals (static/portal/timesheet.js) read the same formats.
    """
    value = re.sub(r"\s+", "", text or "").lower()
    if not value:
        return None
    if value.startswith("-"):
        raise ValidationError("Time cannot be negative.", code="negative")
    if match := _CLOCK.match(value):
        hours, minutes = int(match[1]), int(match[2])
        if minutes >= 60:
            raise ValidationError(f"{text.strip()!r}: minutes after the colon must be under 60.", code="invalid")
        return hours * 60 + minutes
    if match := _MINUTES.match(value):
        return int(match[1])
    if match := _HOURS_AND_MINUTES.match(value):
        minutes = int(match[2] or 0)
        if minutes >= 60:
            raise ValidationError(f"{text.strip()!r}: minutes after the hours must be under 60.", code="invalid")
        return int(match[1]) * 60 + minutes
    if match := _DECIMAL_HOURS.match(value):
        try:
            hours = Decimal(match[1].replace(",", "."))
        except InvalidOperation:
            hours = None
        if hours is not None:
            return int((hours * 60).quantize(Decimal("1"), rounding=ROUND_HALF_UP))
    raise ValidationError(f"{text.strip()!r} is not a duration. {DURATION_HELP}", code="invalid")


def format_duration(minutes: int | None) -> str:
    """Minutes as h:mm, the form the portal shows and parses back exactly."""
    if not minutes:
        return ""
    return f"{minutes // 60}:{minutes % 60:02d}"


class DurationField(forms.CharField):
    """A duration typed as hours or minutes; cleans to whole minutes."""

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", DURATION_HELP)
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off",
                                                            "placeholder": "1:30"}))
        super().__init__(**kwargs)

    def prepare_value(self, value):
        return format_duration(value) if isinstance(value, int) else value

    def to_python(self, value):
        minutes = parse_duration(super().to_python(value))
        if minutes is not None and minutes <= 0:
            raise ValidationError("Enter a duration longer than zero.", code="zero")
        return minutes


class ProjectChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Project) -> str:
        return f"{obj.client.name} · {obj.code} · {obj.name}"


def loggable_projects(*, include_id: int | None = None):
    """Projects time may be logged to: the active ones (plus an entry's current project when editing it)."""
    condition = Q(status=ProjectStatus.ACTIVE)
    if include_id is not None:
        condition |= Q(pk=include_id)
    return Project.objects.filter(condition).select_related("client")


# Where each pipeline error belongs on the entry form; anything else is shown above the fields.
INGEST_ERROR_FIELDS = {"project": "project", "task_type": "task_type", "work_date": "work_date",
                       "minutes": "duration"}


class TimeEntryForm(forms.Form):
    """One time entry, logged or edited by its member; saved through the pipeline, never directly."""

    project = ProjectChoiceField(queryset=Project.objects.none(), empty_label="Choose a project…")
    task_type = forms.ModelChoiceField(queryset=TaskType.objects.all(), label="Task type",
                                       empty_label="Choose a task type…")
    work_date = forms.DateField(label="Date", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    duration = DurationField()
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    billable = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, entry: TimeEntry | None = None, **kwargs):
        if entry is not None:
            kwargs.setdefault("initial", {
                "project": entry.project_id, "task_type": entry.task_type_id, "work_date": entry.work_date,
                "duration": entry.minutes, "description": entry.description, "billable": entry.billable,
            })
        super().__init__(*args, **kwargs)
        self.entry = entry
        self.fields["project"].queryset = loggable_projects(include_id=entry.project_id if entry else None)

    def to_input(self, *, member_id: int) -> TimeEntryInput:
        data = self.cleaned_data
        entry = self.entry
        return TimeEntryInput(
            member_id=member_id,
            project_id=data["project"].id,
            task_type_id=data["task_type"].id,
            work_date=data["work_date"],
            minutes=data["duration"],
            description=data["description"],
            billable=data["billable"],
            # An edit keeps the entry's identity so the pipeline updates it in place.
            external_id=entry.external_id if entry else None,
            started_at=entry.started_at if entry else None,
            stopped_at=entry.stopped_at if entry else None,
        )

    def add_ingest_errors(self, errors: dict[str, list[str]]) -> None:
        for name, messages in errors.items():
            for message in messages:
                self.add_error(INGEST_ERROR_FIELDS.get(name), message)


class MyTimeFilterForm(forms.Form):
    date_from = forms.DateField(required=False, label="From",
                                widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    date_to = forms.DateField(required=False, label="To",
                              widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    project = ProjectChoiceField(queryset=Project.objects.none(), required=False, empty_label="All projects")
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *EntryStatus.choices])

    def __init__(self, *args, member, **kwargs):
        super().__init__(*args, **kwargs)
        # Only projects the member has time on: the filter never offers an empty result.
        self.fields["project"].queryset = Project.objects.filter(
            id__in=TimeEntry.objects.filter(member=member).values("project_id")
        ).select_related("client")

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "The end date is before the start date.")
        return data

    def apply(self, entries):
        """Narrow the member's entries by the filters that are valid; an invalid one narrows nothing."""
        self.is_valid()
        data = self.cleaned_data
        if data.get("date_from"):
            entries = entries.filter(work_date__gte=data["date_from"])
        if data.get("date_to"):
            entries = entries.filter(work_date__lte=data["date_to"])
        if data.get("project"):
            entries = entries.filter(project=data["project"])
        if data.get("status"):
            entries = entries.filter(status=data["status"])
        return entries
