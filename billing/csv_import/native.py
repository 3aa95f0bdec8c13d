"""Billable's own CSV: email,project,task_type,work_date,minutes,description,billable,external_id.

`project` is the project code, `task_type` a task type code or name (empty: the default task type),
`work_date` is YYYY-MM-DD, `minutes` whole minutes, `billable` Yes/No (empty: yes). An empty
`external_id` becomes a hash of the row, so importing the same file twice changes nothing.
"""

import re

from billing.csv_import.parsing import ParsedEntry, parse_iso_date, parse_yes_no, stable_id
from billing.csv_import.reading import Row

REQUIRED = ("email", "project", "work_date", "minutes")
OPTIONAL = ("task_type", "description", "billable", "external_id")

# TimeEntry.external_id's length.
MAX_EXTERNAL_ID = 128


def parse_row(row: Row) -> ParsedEntry:
    given_id = row["external_id"]
    identity = (row["email"].casefold(), row["project"].casefold(), row["task_type"].casefold(), row["work_date"],
                row["minutes"], row["description"])
    entry = ParsedEntry(
        line=row.line, external_id=given_id or stable_id(*identity), external_id_given=bool(given_id),
        member_email=row["email"], project_code=row["project"], task=row["task_type"],
        task_falls_back=not row["task_type"], description=row["description"],
    )
    if len(given_id) > MAX_EXTERNAL_ID:
        entry.add_error("external_id", f"Longer than {MAX_EXTERNAL_ID} characters.")
    if not entry.member_email:
        entry.add_error("member", "No email given.")
    if not entry.project_code:
        entry.add_error("project", "No project code given.")
    try:
        entry.work_date = parse_iso_date(row["work_date"])
    except ValueError as error:
        entry.add_error("work_date", str(error))
    minutes = row["minutes"]
    if not minutes:
        entry.add_error("minutes", "No minutes given.")
    elif re.fullmatch(r"[+-]?\d+", minutes):
        entry.minutes = int(minutes)
    else:
        entry.add_error("minutes", f"{minutes!r} is not a whole number of minutes.")
    try:
        entry.billable = parse_yes_no(row["billable"])
    except ValueError as error:
        entry.add_error("billable", str(error))
    return entry


def parse(rows: list[Row]) -> list[ParsedEntry]:
    return [parse_row(row) for row in rows]
