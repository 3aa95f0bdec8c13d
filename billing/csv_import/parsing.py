"""Turning the text of one CSV cell into a value, with a readable error when it cannot be.

Every parser raises `ValueError` with a message meant for the person who exported the file; the
format modules put that message on the row under the field it concerns.
"""

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# Shorter than this rounds to zero minutes: refused rather than stored as nothing.
MIN_SECONDS = 30

_TRUE = {"yes", "y", "true", "1"}
_FALSE = {"no", "n", "false", "0"}


@dataclass
class ParsedEntry:
    """One row of a time export, parsed but not yet matched to our members, projects and task types."""

    line: int
    external_id: str | None
    # True when the file gave the id itself; False when it is a hash of the row.
    external_id_given: bool = False
    member_email: str = ""
    member_name: str = ""
    client_name: str = ""
    project_code: str = ""
    project_name: str = ""
    task: str = ""
    # Toggl and Harvest: an empty or unknown task means the firm's default task type.
    task_falls_back: bool = True
    work_date: date | None = None
    minutes: int | None = None
    description: str = ""
    billable: bool = True
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    currency: str | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)

    def add_error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)


def stable_id(*parts: str) -> str:
    """An id for a row that has none: the same identifying content always gives the same id."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return f"row-{digest[:40]}"


def parse_yes_no(value: str, *, default: bool = True) -> bool:
    text = value.strip().lower()
    if not text:
        return default
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{value!r} is not Yes or No.")


def parse_iso_date(value: str) -> date:
    text = value.strip()
    if not text:
        raise ValueError("No date given.")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a date (expected YYYY-MM-DD).")


_YMD = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
_DMY_DOTS = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")
_SLASHES = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")


def slash_dates_day_first(values) -> bool | None:
    """Whether the file's d/m/y-or-m/d/y dates put the day first, judged from the whole column.

    Harvest writes dates in the account's chosen format; 03/04/2026 alone cannot say which it is,
    but 13/04/2026 elsewhere in the same file can. None when the file does not tell.
    """
    day_first = month_first = False
    for value in values:
        match = _SLASHES.fullmatch(value.strip())
        if match:
            first, second = int(match[1]), int(match[2])
            day_first |= first > 12
            month_first |= second > 12
    if day_first != month_first:
        return day_first
    return None


def parse_date(value: str, *, day_first: bool | None = None) -> date:
    """ISO dates, day.month.year, and slashed dates whose order the file has shown."""
    text = value.strip()
    if not text:
        raise ValueError("No date given.")
    not_a_date = f"{value!r} is not a date (expected YYYY-MM-DD)."
    if match := _YMD.fullmatch(text):
        year, month, day = match[1], match[2], match[3]
    elif match := _DMY_DOTS.fullmatch(text):
        year, month, day = match[3], match[2], match[1]
    elif match := _SLASHES.fullmatch(text):
        if day_first is None and match[1] != match[2]:
            raise ValueError(f"{value!r} could be day/month or month/day: export dates as YYYY-MM-DD.")
        year, month, day = (match[3], match[2], match[1]) if day_first else (match[3], match[1], match[2])
    else:
        raise ValueError(not_a_date)
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        raise ValueError(not_a_date) from None


def parse_clock(value: str) -> time:
    text = value.strip()
    if not text:
        raise ValueError("No time given.")
    if match := re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", text):
        try:
            return time(int(match[1]), int(match[2]), int(match[3] or 0))
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a time of day (expected HH:MM:SS).")


def parse_duration_seconds(value: str) -> int:
    """Toggl's HH:MM:SS; the hours may pass 24 (the pipeline then refuses the entry as too long)."""
    match = re.fullmatch(r"(\d+):([0-5]\d):([0-5]\d)", value.strip())
    if not match:
        raise ValueError(f"{value!r} is not a duration (expected HH:MM:SS).")
    return int(match[1]) * 3600 + int(match[2]) * 60 + int(match[3])


def parse_decimal(value: str) -> Decimal:
    """A number written with a decimal point or a decimal comma: "2.75", "0,25", "1.234,5", "1,234.5".

    With both marks, the last one is the decimal mark. With one mark once, it is the decimal mark
    (hours are small: "1,5" is one and a half, never fifteen). A mark repeated is a thousands separator.
    """
    text = value.strip().replace("\u00a0", "").replace(" ", "").replace("'", "")
    if not re.fullmatch(r"[+-]?[\d.,]*\d[\d.,]*", text):
        raise ValueError(f"{value!r} is not a number.")
    sign = "-" if text.startswith("-") else ""
    text = text.lstrip("+-")
    last_dot, last_comma = text.rfind("."), text.rfind(",")
    if last_dot >= 0 and last_comma >= 0:
        decimal_mark = "." if last_dot > last_comma else ","
    elif text.count(".") == 1:
        decimal_mark = "."
    elif text.count(",") == 1:
        decimal_mark = ","
    else:
        decimal_mark = None
    whole, _, fraction = text.rpartition(decimal_mark) if decimal_mark else (text, "", "")
    if decimal_mark and not whole:
        whole = "0"
    groups = re.split(r"[.,]", whole)
    if len(groups) > 1:
        # Thousands separators must be one kind and group digits by three.
        separators = set(re.findall(r"[.,]", whole))
        if len(separators) > 1 or separators == {decimal_mark} or not (
            1 <= len(groups[0]) <= 3 and all(len(group) == 3 for group in groups[1:])
        ):
            raise ValueError(f"{value!r} is not a number.")
    try:
        return Decimal(f"{sign}{''.join(groups)}.{fraction or '0'}")
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number.") from None


def parse_hours_seconds(value: str) -> Decimal:
    """Harvest's hours: decimal ("1,5", "2.75") or, in accounts set to show hh:mm, "1:30"."""
    text = value.strip()
    if not text:
        raise ValueError("No hours given.")
    if match := re.fullmatch(r"(\d+):([0-5]\d)", text):
        return Decimal(int(match[1]) * 3600 + int(match[2]) * 60)
    try:
        return parse_decimal(text) * 3600
    except ValueError:
        raise ValueError(f"{value!r} is not a number of hours.") from None


def minutes_from_seconds(seconds: Decimal | int) -> int:
    """Whole minutes, a half rounding up; under half a minute is refused rather than stored as zero."""
    seconds = Decimal(seconds)
    if 0 < seconds < MIN_SECONDS:
        shown = f"{seconds.normalize():f}"
        raise ValueError(f"Under half a minute ({shown} s): too short to record.")
    return int((seconds / 60).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def parse_currency(value: str) -> str | None:
    """A currency code from "EUR", "eur" or Harvest's "Euro - EUR"; None when the cell is empty."""
    text = value.strip()
    if not text:
        return None
    if re.fullmatch(r"[A-Za-z]{3}", text):
        return text.upper()
    if match := re.search(r"\b([A-Z]{3})\)?$", text):
        return match[1]
    raise ValueError(f"{value!r} does not name a currency (expected a code such as EUR, or 'Euro - EUR').")
