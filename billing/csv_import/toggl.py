"""Toggl Track's detailed report, exported as CSV.

Header: User,Email,Client,Project,Task,Description,Billable,Start date,Start time,End date,End time,
Duration,Tags and often an "Amount (EUR)"-style column, which we ignore (the contract prices the
time). Dates and times are read in the firm's time zone.

The export carries no id of Toggl's, so a row's external id is a hash of what identifies it (email,
client, project, start, end, description, duration). Importing the same file again changes nothing,
and a change of task or billable flag updates the entry. An edit of a hashed field gives the row another
hash, but the person and the start still identify the entry (projects/toggl_identity.py), so importing
again updates it, and an entry the Toggl connector synced is updated, not imported a second time.
"""

from datetime import datetime

from django.utils import timezone

from billing.csv_import.parsing import (
    ParsedEntry,
    minutes_from_seconds,
    parse_clock,
    parse_duration_seconds,
    parse_iso_date,
    parse_yes_no,
    stable_id,
)
from billing.csv_import.reading import Row

REQUIRED = ("Email", "Client", "Project", "Description", "Billable", "Start date", "Start time", "End date",
            "End time", "Duration")
# Toggl leaves Task out in workspaces without tasks; the default task type then applies.
OPTIONAL = ("User", "Task", "Tags")


def _moment(row: Row, entry: ParsedEntry, date_column: str, time_column: str, field: str) -> datetime | None:
    try:
        day = parse_iso_date(row[date_column])
        clock = parse_clock(row[time_column])
    except ValueError as error:
        entry.add_error(field, f"{date_column} / {time_column}: {error}")
        return None
    return timezone.make_aware(datetime.combine(day, clock), timezone.get_default_timezone())


def parse_row(row: Row) -> ParsedEntry:
    identity = (row["Email"].casefold(), row["Client"], row["Project"], row["Start date"], row["Start time"],
                row["End date"], row["End time"], row["Description"], row["Duration"])
    entry = ParsedEntry(
        line=row.line, external_id=stable_id(*identity), member_email=row["Email"],
        # The member is matched by email; the user's name only when a row has no email.
        member_name=" ".join(row["User"].split()), client_name=row["Client"], project_name=row["Project"],
        task=row["Task"], description=row["Description"],
    )
    if not (entry.member_email or entry.member_name):
        entry.add_error("member", "No email given.")
    if not entry.project_name:
        entry.add_error("project", "The entry has no project in Toggl.")
    try:
        entry.billable = parse_yes_no(row["Billable"])
    except ValueError as error:
        entry.add_error("billable", str(error))

    try:
        entry.work_date = parse_iso_date(row["Start date"])
    except ValueError as error:
        entry.add_error("work_date", f"Start date: {error}")
    else:
        entry.started_at = _moment(row, entry, "Start date", "Start time", "started_at")

    running = not (row["End date"] or row["End time"] or row["Duration"])
    if running:
        entry.add_error("minutes", "The entry has no end or duration: it was still running when exported.")
        return entry
    if row["End date"] or row["End time"]:
        entry.stopped_at = _moment(row, entry, "End date", "End time", "stopped_at")

    try:
        # The duration is what Toggl bills; start and end only cross-check it (the pipeline refuses
        # an end before the start).
        if row["Duration"]:
            seconds = parse_duration_seconds(row["Duration"])
        elif entry.started_at and entry.stopped_at:
            seconds = int((entry.stopped_at - entry.started_at).total_seconds())
        else:
            raise ValueError("No duration given.")
        entry.minutes = minutes_from_seconds(seconds)
    except ValueError as error:
        entry.add_error("minutes", str(error))
    return entry


def parse(rows: list[Row]) -> list[ParsedEntry]:
    return [parse_row(row) for row in rows]
