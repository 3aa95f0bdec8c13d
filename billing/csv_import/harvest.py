"""Harvest's detailed time report, exported as CSV.

Header: Date,Client,Project,Project Code,Task,Notes,Hours,Billable?,Invoiced?,Approved?,First Name,
Last Name,Roles,Employee?,Billable Rate,Billable Amount,Cost Rate,Cost Amount,Currency,External
Reference URL (newer exports add "Hours Rounded"; we take the raw Hours, the contract rounds).
Hours may use a decimal comma ("0,25", "1.234,5"); dates follow the account's date format;
Currency reads like "Euro - EUR" and must match the contract's currency.

The export carries no id of Harvest's, so a row's external id is a hash of the row (date, person,
client, project, task, notes, hours): the same file imported twice changes nothing, a changed
billable flag updates the entry, and an entry edited in Harvest comes back as a new entry.
"""

from billing.csv_import.parsing import (
    ParsedEntry,
    minutes_from_seconds,
    parse_currency,
    parse_date,
    parse_hours_seconds,
    parse_yes_no,
    slash_dates_day_first,
    stable_id,
)
from billing.csv_import.reading import Row

REQUIRED = ("Date", "Client", "Project", "Project Code", "Task", "Notes", "Hours", "Billable?", "First Name",
            "Last Name")
# Older exports have no Currency; some reports add the person's email.
OPTIONAL = ("Currency", "Email")


def parse_row(row: Row, *, day_first: bool | None) -> ParsedEntry:
    member_name = " ".join(f"{row['First Name']} {row['Last Name']}".split())
    identity = (row["Date"], member_name.casefold(), row["Email"].casefold(), row["Client"], row["Project Code"],
                row["Project"], row["Task"], row["Notes"], row["Hours"])
    entry = ParsedEntry(
        line=row.line, external_id=stable_id(*identity), member_email=row["Email"], member_name=member_name,
        client_name=row["Client"], project_code=row["Project Code"], project_name=row["Project"],
        task=row["Task"], description=row["Notes"],
    )
    if not (entry.member_email or entry.member_name):
        entry.add_error("member", "No first or last name given.")
    if not (entry.project_code or entry.project_name):
        entry.add_error("project", "No project or project code given.")
    try:
        entry.work_date = parse_date(row["Date"], day_first=day_first)
    except ValueError as error:
        entry.add_error("work_date", str(error))
    try:
        entry.minutes = minutes_from_seconds(parse_hours_seconds(row["Hours"]))
    except ValueError as error:
        entry.add_error("minutes", str(error))
    try:
        entry.billable = parse_yes_no(row["Billable?"])
    except ValueError as error:
        entry.add_error("billable", str(error))
    try:
        entry.currency = parse_currency(row["Currency"])
    except ValueError as error:
        entry.add_error("currency", str(error))
    return entry


def parse(rows: list[Row]) -> list[ParsedEntry]:
    day_first = slash_dates_day_first(row["Date"] for row in rows)
    return [parse_row(row, day_first=day_first) for row in rows]
