"""The cell parsers of the CSV import: numbers, durations, dates, flags, currencies, row ids."""

import datetime as dt
from decimal import Decimal

import pytest

from billing.csv_import.parsing import (
    minutes_from_seconds,
    parse_currency,
    parse_date,
    parse_decimal,
    parse_duration_seconds,
    parse_hours_seconds,
    parse_yes_no,
    slash_dates_day_first,
    stable_id,
)
from billing.csv_import.reading import CsvFileError, decode, read_table


@pytest.mark.parametrize(
    ("text", "value"),
    [("2.75", "2.75"), ("0,25", "0.25"), ("1,5", "1.5"), ("1.234,5", "1234.5"), ("1,234.5", "1234.5"),
     ("1.234.567", "1234567"), ("7", "7"), (",5", "0.5"), ("-1,5", "-1.5"), ("1 234,5", "1234.5")],
)
def test_decimals_with_a_point_or_a_comma(text, value):
    assert parse_decimal(text) == Decimal(value)


@pytest.mark.parametrize("text", ["", "abc", "1,5h", "1.23,5", "1,2,3.4,5", "1.5.5", "--1", "1,234.5,6"])
def test_malformed_numbers_are_refused(text):
    with pytest.raises(ValueError, match="is not a number"):
        parse_decimal(text)


@pytest.mark.parametrize(
    ("hours", "minutes"),
    [("0,25", 15), ("1,5", 90), ("2.75", 165), ("1:30", 90), ("0.0083", 0), ("0,01", 1), ("1.234,5", 74070)],
)
def test_harvest_hours_become_whole_minutes(hours, minutes):
    seconds = parse_hours_seconds(hours)
    if seconds < 30:
        with pytest.raises(ValueError, match="too short"):
            minutes_from_seconds(seconds)
    else:
        assert minutes_from_seconds(seconds) == minutes


@pytest.mark.parametrize(
    ("seconds", "minutes"), [(30, 1), (89, 1), (90, 2), (2699, 45), (2670, 45), (2669, 44), (0, 0), (86400, 1440)]
)
def test_seconds_round_half_up_to_minutes(seconds, minutes):
    assert minutes_from_seconds(seconds) == minutes


@pytest.mark.parametrize("seconds", [1, 20, 29])
def test_under_half_a_minute_is_too_short(seconds):
    with pytest.raises(ValueError, match=rf"Under half a minute \({seconds} s\): too short to record"):
        minutes_from_seconds(seconds)


def test_toggl_durations():
    assert parse_duration_seconds("01:30:00") == 5400
    assert parse_duration_seconds("25:00:01") == 90001
    for bad in ("1:30", "01:60:00", "1h30", ""):
        with pytest.raises(ValueError, match="expected HH:MM:SS"):
            parse_duration_seconds(bad)


def test_dates():
    assert parse_date("2026-03-02") == dt.date(2026, 3, 2)
    assert parse_date("02.03.2026") == dt.date(2026, 3, 2)
    assert parse_date("2026/03/02") == dt.date(2026, 3, 2)
    assert parse_date("02/03/2026", day_first=True) == dt.date(2026, 3, 2)
    assert parse_date("03/02/2026", day_first=False) == dt.date(2026, 3, 2)
    assert parse_date("04/04/2026") == dt.date(2026, 4, 4)
    with pytest.raises(ValueError, match="could be day/month or month/day"):
        parse_date("03/04/2026")
    for bad in ("2026-02-30", "yesterday", "2026-3"):
        with pytest.raises(ValueError, match="is not a date"):
            parse_date(bad)


def test_the_order_of_slashed_dates_is_read_from_the_whole_column():
    assert slash_dates_day_first(["01/02/2026", "13/02/2026"]) is True
    assert slash_dates_day_first(["01/02/2026", "02/13/2026"]) is False
    assert slash_dates_day_first(["01/02/2026", "2026-02-01"]) is None
    assert slash_dates_day_first(["13/02/2026", "02/13/2026"]) is None


def test_yes_no():
    assert [parse_yes_no(v) for v in ("Yes", "no", "TRUE", "0", "")] == [True, False, True, False, True]
    with pytest.raises(ValueError, match="'Maybe' is not Yes or No"):
        parse_yes_no("Maybe")


def test_currencies_as_harvest_writes_them():
    assert parse_currency("Euro - EUR") == "EUR"
    assert parse_currency("New Zealand Dollar - NZD") == "NZD"
    assert parse_currency("usd") == "USD"
    assert parse_currency("") is None
    with pytest.raises(ValueError, match="does not name a currency"):
        parse_currency("Euro")


def test_row_ids_are_stable_and_fit_the_column():
    assert stable_id("a", "b") == stable_id("a", "b")
    assert stable_id("a", "b") != stable_id("ab", "")
    assert len(stable_id("x" * 1000)) <= 128


def test_line_numbers_are_physical_lines_and_unknown_columns_are_ignored():
    text = decode(b'\xef\xbb\xbf\r\nName,Notes,Amount (EUR)\r\nAda,"two\r\nlines",1\r\n,,\r\nGrace,one,2\r\n')
    table = read_table(text, columns=("Name", "Notes"))
    assert [(row.line, row["Name"], row["Notes"]) for row in table.rows] == [
        (3, "Ada", "two\r\nlines"), (6, "Grace", "one")]
    assert table.header == ["Name", "Notes", "Amount (EUR)"]


def test_rows_that_do_not_fit_the_header_are_reported_by_line():
    table = read_table("a,b\n1,2\n1\n1,2,3\n1,2,\n", columns=("a", "b"))
    assert [row.line for row in table.rows] == [2, 5]
    assert [line for line, _ in table.malformed] == [3, 4]


def test_undecodable_bytes_name_their_line():
    with pytest.raises(CsvFileError, match="byte 0xFF on line 3"):
        decode(b"a,b\n1,2\n\xff,3\n")
