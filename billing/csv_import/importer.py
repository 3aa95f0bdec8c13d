"""Importing a time export: read, parse, match, then record through the pipeline in batches."""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from billing.csv_import.formats import FORMATS, FileFormat, ImportFormat
from billing.csv_import.parsing import ParsedEntry
from billing.csv_import.reading import CsvFileError, decode, read_table
from billing.csv_import.resolver import resolve
from billing.pipeline import ingest
from projects.models import EntrySource
from projects.toggl_identity import match_toggl_entries

# Rows recorded per pipeline call: bounds the size of each query's IN list (SQLite caps the
# parameters of a statement) and lets the command show progress on big files.
BATCH_SIZE = 1000

# How each error key reads in a report.
FIELD_LABELS = {
    "row": "Row",
    "member": "Member",
    "project": "Project",
    "task_type": "Task",
    "work_date": "Date",
    "minutes": "Duration",
    "started_at": "Start",
    "stopped_at": "End",
    "billable": "Billable",
    "currency": "Currency",
    "external_id": "Row",
}


@dataclass
class RejectedRow:
    line: int | None
    errors: dict[str, list[str]]

    @property
    def reason(self) -> str:
        return "; ".join(f"{FIELD_LABELS.get(name, name.replace('_', ' ').capitalize())}: {' '.join(messages)}"
                         for name, messages in self.errors.items())


@dataclass
class ImportReport:
    format: str
    dry_run: bool
    rows_read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    # Entries already invoiced whose row now says something else: flagged for finance, not changed.
    conflicts: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    # Set when the file as a whole cannot be imported; then nothing was read or saved.
    file_error: str | None = None

    def summary(self) -> str:
        verb = "would be " if self.dry_run else ""
        return (f"{self.rows_read} rows read: {self.created} {verb}created, {self.updated} {verb}updated, "
                f"{self.unchanged} unchanged, {self.conflicts} conflicts, {len(self.rejected)} rejected")


def _read_bytes(file) -> bytes:
    try:
        if isinstance(file, str | Path):
            return Path(file).read_bytes()
        if hasattr(file, "seek"):
            file.seek(0)
        data = file.read()
    except OSError as error:
        raise CsvFileError(f"The file cannot be read: {error.strerror or error}.") from None
    return data.encode() if isinstance(data, str) else data


def _missing_columns_message(file_format: FileFormat, header: list[str]) -> str:
    missing = file_format.missing(header)
    message = (f"The file is missing the column{'s' if len(missing) > 1 else ''} {', '.join(missing)}. "
               f"A {file_format.label} has: {', '.join(file_format.columns)}.")
    others = [other.label for other in FORMATS.values() if other is not file_format and not other.missing(header)]
    if others:
        message += f" This file looks like a {others[0]}: choose that format."
    return message


def _mark_duplicates(entries: list[ParsedEntry]) -> None:
    """Refuse a row whose id an earlier row of the file already has.

    The pipeline checks this within one batch; the file may span several. The refused row's id is
    dropped so the pipeline does not report the same duplicate again in its own words.
    """
    first_line: dict[str, int] = {}
    for entry in entries:
        if not entry.external_id:
            continue
        if entry.external_id not in first_line:
            first_line[entry.external_id] = entry.line
            continue
        first = first_line[entry.external_id]
        if entry.external_id_given:
            entry.add_error("external_id", f"The external id {entry.external_id!r} is also on line {first}.")
        else:
            entry.add_error("external_id", f"Duplicate of line {first}: the same entry appears twice in the file.")
        entry.external_id = None


def _record(inputs, source: str, acting_user, report: ImportReport, progress) -> None:
    for start in range(0, len(inputs), BATCH_SIZE):
        batch = inputs[start:start + BATCH_SIZE]
        if source == EntrySource.TOGGL:
            # The export has no Toggl ids: an entry already here (synced, or from an earlier export) is updated.
            match_toggl_entries(batch)
        result = ingest(batch, source, acting_user=acting_user)
        report.created += len(result.created)
        report.updated += len(result.updated)
        report.unchanged += len(result.unchanged)
        report.conflicts += len(result.conflicts)
        report.rejected.extend(RejectedRow(line=rejected.line, errors=rejected.errors)
                               for rejected in result.rejected)
        if progress and len(inputs) > BATCH_SIZE:
            progress(f"Recorded {min(start + BATCH_SIZE, len(inputs))} of {len(inputs)} rows.")


def import_time_csv(
    *,
    file,
    format: str,
    dry_run: bool,
    acting_user=None,
    progress: Callable[[str], None] | None = None,
) -> ImportReport:
    """Import the time entries of a CSV export; every row that cannot be imported is reported by line.

    `file` is a path or a binary file object. With `dry_run`, everything is checked exactly as for
    a real import (the 24-hour and duplicate checks included) and then rolled back.
    """
    file_format = FORMATS[ImportFormat(format)]
    report = ImportReport(format=file_format.name, dry_run=dry_run)
    try:
        table = read_table(decode(_read_bytes(file)), columns=file_format.columns)
        if file_format.missing(table.header):
            raise CsvFileError(_missing_columns_message(file_format, table.header))
    except CsvFileError as error:
        report.file_error = str(error)
        return report

    report.rows_read = table.rows_read
    report.rejected = [RejectedRow(line=line, errors={"row": [reason]}) for line, reason in table.malformed]
    entries = file_format.parse(table.rows)
    _mark_duplicates(entries)
    inputs = resolve(entries)
    if progress and len(inputs) > BATCH_SIZE:
        progress(f"Read {report.rows_read} rows; recording them in batches of {BATCH_SIZE}.")
    if dry_run:
        with transaction.atomic():
            _record(inputs, file_format.source, acting_user, report, progress)
            transaction.set_rollback(True)
    else:
        _record(inputs, file_format.source, acting_user, report, progress)
    report.rejected.sort(key=lambda row: row.line or 0)
    return report
