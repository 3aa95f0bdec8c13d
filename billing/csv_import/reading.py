"""From the bytes of an uploaded file to rows keyed by column, each with its physical line number.

The files come from Toggl, Harvest or a spreadsheet: a UTF-8 byte order mark is common (Excel
writes one), European Excel separates with semicolons, and a quoted note may span lines, so a
row's line number is counted from the file itself, not from the row's position.
"""

import codecs
import csv
import io
from dataclasses import dataclass, field


class CsvFileError(Exception):
    """The file as a whole cannot be imported; the message says why and what to do about it."""


DELIMITERS = (",", ";", "\t")


def column_key(name: str) -> str:
    """Headers are matched ignoring case and spacing: "Start date" = "start  Date"."""
    return " ".join(name.split()).casefold()


@dataclass
class Row:
    line: int
    values: dict[str, str]

    def __getitem__(self, column: str) -> str:
        return self.values.get(column, "")


@dataclass
class Table:
    header: list[str]
    rows: list[Row] = field(default_factory=list)
    # (line, reason) for records that cannot be read as a row of this header.
    malformed: list[tuple[int, str]] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return len(self.rows) + len(self.malformed)


def decode(data: bytes) -> str:
    if not data.strip():
        raise CsvFileError("The file is empty.")
    if data.startswith(b"PK\x03\x04"):
        raise CsvFileError("This is a spreadsheet workbook (or another zip file), not CSV: "
                           "save or export it as CSV (UTF-8) and upload that.")
    encoding = "utf-16" if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise CsvFileError(
            f"The file is not UTF-8 text: byte 0x{data[error.start]:02X} on line {line} cannot be read. "
            "Export it again as CSV (UTF-8)."
        ) from None
    if not text.strip():
        raise CsvFileError("The file is empty.")
    return text


def _first_record(text: str, delimiter: str) -> list[str]:
    for record in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
        if any(cell.strip() for cell in record):
            return record
    return []


def _pick_delimiter(text: str, known_columns: set[str]) -> str:
    """The separator under which the header shows the most columns we know (comma on a tie)."""
    def known_in_header(delimiter: str) -> int:
        return len({column_key(cell) for cell in _first_record(text, delimiter)} & known_columns)

    return max(DELIMITERS, key=known_in_header)


def read_table(text: str, *, columns: tuple[str, ...]) -> Table:
    """Rows keyed by our names for `columns`; other columns (Toggl's "Amount (EUR)"...) are ignored."""
    wanted = {column_key(name): name for name in columns}
    delimiter = _pick_delimiter(text, set(wanted))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    table: Table | None = None
    positions: dict[str, int] = {}
    last_line = 0
    try:
        for record in reader:
            line, last_line = last_line + 1, reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if table is None:
                table = Table(header=[cell.strip() for cell in record])
                for index, cell in enumerate(record):
                    name = wanted.get(column_key(cell))
                    if name is not None:
                        positions.setdefault(name, index)
                continue
            extra = record[len(table.header):]
            if len(record) < len(table.header) or any(cell.strip() for cell in extra):
                table.malformed.append((line, f"The row has {len(record)} values but the header has "
                                              f"{len(table.header)}: check for a missing or unquoted separator."))
                continue
            table.rows.append(Row(line, {name: record[index].strip() for name, index in positions.items()}))
    except csv.Error as error:
        raise CsvFileError(f"Line {reader.line_num} cannot be read as CSV: {error}.") from None
    if table is None:
        raise CsvFileError("The file is empty.")
    return table
