"""CSV import of time: Toggl and Harvest exports as those tools write them, and the native format."""

import datetime as dt
import zoneinfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.csv_import import import_time_csv, importer
from projects.models import EntrySource, EntryStatus, TimeEntry
from tests.factories import TimeEntryFactory
from tests.test_csv_import_firm import DATA, TOGGL_HEADER, build_firm, toggl_rows, write

pytestmark = pytest.mark.django_db


@pytest.fixture
def firm():
    return build_firm()


def facts(source):
    """(member, project code, task type code, work date, minutes, billable) per entry, oldest first."""
    return sorted(
        (e.member.name, e.project.code, e.task_type.code, str(e.work_date), e.minutes, e.billable)
        for e in TimeEntry.objects.filter(source=source).select_related("member", "project", "task_type")
    )


def rejected_lines(report):
    return {row.line: row.reason for row in report.rejected}


# --- Toggl -------------------------------------------------------------------------------------------------


def test_a_toggl_export_imports_with_members_projects_minutes_and_billable_flags(firm):
    report = import_time_csv(file=DATA / "toggl_detailed.csv", format="toggl", dry_run=False, acting_user=None)

    assert report.file_error is None and report.rejected == []
    assert (report.rows_read, report.created, report.updated, report.unchanged) == (4, 4, 0, 0)
    assert facts(EntrySource.TOGGL) == [
        # 01:30:00; 00:44:30 rounds half up to 45; "Code review" is no task type: the default.
        ("Ada Lovelace", "acme-web", "design", "2026-03-02", 45, True),
        ("Ada Lovelace", "acme-web", "dev", "2026-03-02", 90, True),
        # Email in capitals; 45 seconds are one minute.
        ("Grace Hopper", "acme-support", "general", "2026-03-03", 1, True),
        # A client with a comma in its name, no task, 02:15:29, notes over two lines.
        ("Grace Hopper", "glx-data", "general", "2026-03-03", 135, False),
    ]
    migration = TimeEntry.objects.get(project=firm.migration)
    assert migration.description == "Schema mapping\r\nsecond line of the notes"
    assert migration.external_id.startswith("row-")


def test_toggl_start_and_end_are_read_in_the_firms_time_zone(firm, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    import_time_csv(file=DATA / "toggl_detailed.csv", format="toggl", dry_run=False, acting_user=None)
    entry = TimeEntry.objects.get(description="Homepage hero section")
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    assert entry.started_at == dt.datetime(2026, 3, 2, 9, 0, tzinfo=berlin)
    assert entry.stopped_at == dt.datetime(2026, 3, 2, 10, 30, tzinfo=berlin)
    assert entry.started_at.astimezone(dt.UTC).hour == 8


def test_importing_the_same_file_twice_changes_nothing(firm):
    first = import_time_csv(file=DATA / "toggl_detailed.csv", format="toggl", dry_run=False, acting_user=None)
    stored = {e.id: (e.external_id, e.minutes, e.updated_at) for e in TimeEntry.objects.all()}

    again = import_time_csv(file=DATA / "toggl_detailed.csv", format="toggl", dry_run=False, acting_user=None)

    assert first.created == 4
    assert (again.created, again.updated, again.unchanged, again.rejected) == (0, 0, 4, [])
    assert {e.id: (e.external_id, e.minutes, e.updated_at) for e in TimeEntry.objects.all()} == stored


def test_a_changed_billable_flag_or_duration_updates_the_same_entry(firm, tmp_path):
    row = ("Ada,ada@firm.test,Acme Corp,Website Redesign,Development,Wireframes,{billable},2026-03-02,09:00:00,"
           "2026-03-02,10:00:00,{duration},,")
    def export(billable, duration):
        return write(tmp_path, f"{TOGGL_HEADER}\n{row.format(billable=billable, duration=duration)}\n")

    import_time_csv(file=export("Yes", "01:00:00"), format="toggl", dry_run=False, acting_user=None)
    flag = import_time_csv(file=export("No", "01:00:00"), format="toggl", dry_run=False, acting_user=None)
    assert (flag.created, flag.updated) == (0, 1)
    assert list(TimeEntry.objects.values_list("billable", flat=True)) == [False]

    # Editing a hashed field in Toggl gives the row another hash, but the person and the start are the same
    # entry's: it is updated, not imported a second time beside the old one.
    edited = import_time_csv(file=export("No", "00:50:00"), format="toggl", dry_run=False, acting_user=None)
    assert (edited.created, edited.updated) == (0, 1)
    assert list(TimeEntry.objects.values_list("minutes", flat=True)) == [50]


def test_bad_rows_are_listed_with_their_line_and_the_good_rows_are_imported(firm):
    report = import_time_csv(file=DATA / "toggl_bad_rows.csv", format="toggl", dry_run=False, acting_user=None)

    reasons = rejected_lines(report)
    expected = {
        3: "No team member has the email 'nobody@firm.test'",
        4: "No project is named 'Mobile App' for client 'Acme Corp'",
        5: "'2026-02-30' is not a date",
        6: "'1h30' is not a duration",
        7: "too short",
        8: "The stop time is before the start time",
        9: "Duplicate of line 2",
        10: "Project acme-old is archived",
        11: "outside project acme-web",
        12: "still running",
        14: "more than 24 hours in one day",
        15: "'Maybe' is not Yes or No",
        16: "The row has 6 values but the header has 14",
        18: "Must be a positive number of minutes",
    }
    assert sorted(reasons) == sorted(expected)
    for line, fragment in expected.items():
        assert fragment in reasons[line], (line, reasons[line])
    assert reasons[3].startswith("Member: ")

    assert (report.rows_read, report.created) == (17, 3)
    assert sorted(TimeEntry.objects.values_list("description", flat=True)) == [
        "Good row one", "Good row two", "Long day"]


def test_a_toggl_row_without_email_is_matched_by_the_users_name(firm, tmp_path):
    path = write(tmp_path, f"{TOGGL_HEADER}\nada lovelace,,Acme Corp,Website Redesign,,No email,Yes,"
                           "2026-03-02,09:00:00,2026-03-02,10:00:00,01:00:00,,\n"
                           ",,Acme Corp,Website Redesign,,Nobody at all,Yes,"
                           "2026-03-02,11:00:00,2026-03-02,12:00:00,01:00:00,,\n")
    report = import_time_csv(file=path, format="toggl", dry_run=False, acting_user=None)
    assert TimeEntry.objects.get().member == firm.ada
    assert "Member: No email given." in rejected_lines(report)[3]


def test_an_entry_over_24_hours_on_its_own_is_refused(firm, tmp_path):
    path = write(tmp_path, f"{TOGGL_HEADER}\nAda,ada@firm.test,Acme Corp,Website Redesign,,Marathon,Yes,"
                           "2026-03-02,00:00:00,2026-03-03,01:00:00,25:00:00,,\n")
    report = import_time_csv(file=path, format="toggl", dry_run=False, acting_user=None)
    assert "longer than 24 hours" in rejected_lines(report)[2]


def test_a_project_name_alone_must_be_unambiguous(firm, tmp_path):
    from tests.factories import ProjectFactory

    ProjectFactory(code="other-web", name="Website Redesign")
    path = write(tmp_path, f"{TOGGL_HEADER}\nAda,ada@firm.test,,Website Redesign,,No client,Yes,"
                           "2026-03-02,09:00:00,2026-03-02,10:00:00,01:00:00,,\n")
    report = import_time_csv(file=path, format="toggl", dry_run=False, acting_user=None)
    assert "2 projects are named 'Website Redesign'" in rejected_lines(report)[2]


def test_without_a_default_task_type_an_unknown_task_is_refused(firm, tmp_path):
    firm.general.is_default = False
    firm.general.save()
    path = write(tmp_path, f"{TOGGL_HEADER}\nAda,ada@firm.test,Acme Corp,Website Redesign,Juggling,Fun,Yes,"
                           "2026-03-02,09:00:00,2026-03-02,10:00:00,01:00:00,,\n")
    report = import_time_csv(file=path, format="toggl", dry_run=False, acting_user=None)
    assert "Task 'Juggling' matches no task type and no default task type is set" in rejected_lines(report)[2]


# --- Harvest -----------------------------------------------------------------------------------------------


def test_a_harvest_export_imports_with_decimal_commas_names_and_project_codes(firm):
    report = import_time_csv(file=DATA / "harvest_time.csv", format="harvest", dry_run=False, acting_user=None)

    assert (report.rows_read, report.created) == (7, 4)
    assert facts(EntrySource.HARVEST) == [
        # "0,25" hours; project code in capitals; "1,5" hours of a non-billable meeting.
        ("Ada Lovelace", "acme-web", "dev", "2026-03-02", 15, True),
        ("Ada Lovelace", "acme-web", "meeting", "2026-03-02", 90, False),
        # No project code: Support by name within Acme Corp; "2.75" hours.
        ("Grace Hopper", "acme-support", "dev", "2026-03-03", 165, True),
        # Names in lower case; an unknown task falls back to the default; USD matches Globex's contract.
        ("Grace Hopper", "glx-data", "general", "2026-03-04", 60, True),
    ]
    reasons = rejected_lines(report)
    assert sorted(reasons) == [6, 7, 8]
    assert "The entry is in USD but contract" in reasons[6] and "is in EUR" in reasons[6]
    assert "longer than 24 hours" in reasons[7]  # "1.234,5" hours
    assert "No team member is named 'Linus Unknown'" in reasons[8]

    again = import_time_csv(file=DATA / "harvest_time.csv", format="harvest", dry_run=False, acting_user=None)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)


HARVEST_HEADER = ("Date,Client,Project,Project Code,Task,Notes,Hours,Billable?,Invoiced?,Approved?,First Name,"
                  "Last Name,Roles,Employee?,Billable Rate,Billable Amount,Cost Rate,Cost Amount,Currency,"
                  "External Reference URL")


def test_harvest_dates_in_the_accounts_format_and_semicolons_from_european_excel(firm, tmp_path):
    header = HARVEST_HEADER.replace(",", ";")
    rows = [
        "02/03/2026;Acme Corp;Website Redesign;acme-web;Development;Day first;1,5;Yes;No;No;Ada;Lovelace;;Yes;;;;;EUR;",
        "13/03/2026;Acme Corp;Website Redesign;acme-web;Development;Tells the order;0,5;Yes;No;No;Ada;Lovelace;;Yes;;;;;EUR;",
        "20.03.2026;Acme Corp;Website Redesign;acme-web;Development;Dots;1:15;Yes;No;No;Ada;Lovelace;;Yes;;;;;EUR;",
    ]
    path = write(tmp_path, "\n".join([header, *rows]) + "\n")
    report = import_time_csv(file=path, format="harvest", dry_run=False, acting_user=None)
    assert report.rejected == []
    assert sorted(TimeEntry.objects.values_list("work_date", "minutes")) == [
        (dt.date(2026, 3, 2), 90), (dt.date(2026, 3, 13), 30), (dt.date(2026, 3, 20), 75)]


def test_a_harvest_email_column_matches_members_before_names(firm, tmp_path):
    path = write(tmp_path, f"{HARVEST_HEADER},Email\n2026-03-02,Acme Corp,Website Redesign,acme-web,Development,"
                           "Renamed since,1,Yes,No,No,Ada,Byron,,Yes,,,,,EUR,,ADA@firm.test\n")
    report = import_time_csv(file=path, format="harvest", dry_run=False, acting_user=None)
    assert report.rejected == []
    assert TimeEntry.objects.get().member == firm.ada


def test_harvest_slashed_dates_that_cannot_be_told_apart_are_refused(firm, tmp_path):
    path = write(tmp_path, f"{HARVEST_HEADER}\n03/04/2026,Acme Corp,Website Redesign,acme-web,Development,"
                           "Which month,1,Yes,No,No,Ada,Lovelace,,Yes,,,,,EUR,\n")
    report = import_time_csv(file=path, format="harvest", dry_run=False, acting_user=None)
    assert "could be day/month or month/day" in rejected_lines(report)[2]


# --- Native ------------------------------------------------------------------------------------------------


def test_a_native_file_imports_and_an_empty_external_id_is_a_stable_hash(firm):
    report = import_time_csv(file=DATA / "native.csv", format="native", dry_run=False, acting_user=None)
    assert (report.created, report.rejected) == (3, [])
    assert facts(EntrySource.CSV) == [
        ("Ada Lovelace", "acme-web", "design", "2026-03-04", 30, True),
        ("Ada Lovelace", "acme-web", "dev", "2026-03-02", 90, True),
        ("Grace Hopper", "glx-data", "general", "2026-03-03", 45, False),
    ]
    assert TimeEntry.objects.filter(external_id="sheet-1").exists()
    again = import_time_csv(file=DATA / "native.csv", format="native", dry_run=False, acting_user=None)
    assert (again.created, again.unchanged) == (0, 3)


def test_native_rows_with_bad_values(firm, tmp_path):
    path = write(tmp_path, "\n".join([
        "email,project,task_type,work_date,minutes,description,billable,external_id",
        "ada@firm.test,acme-web,dev,2026-03-02,1.5,Fraction,yes,a",
        "ada@firm.test,acme-web,juggling,2026-03-02,30,Unknown task type,yes,b",
        "ada@firm.test,nope,dev,2026-03-02,30,Unknown code,yes,c",
        "ada@firm.test,acme-web,dev,02.03.26,30,Bad date,yes,d",
        "ada@firm.test,acme-web,dev,2026-03-02,0,Zero,yes,e",
        "ada@firm.test,acme-web,dev,2026-03-02,30,Same id,yes,a",
        "ada@firm.test,glx-data,dev,2027-01-05,30,After the project,yes,f",
    ]) + "\n")
    reasons = rejected_lines(import_time_csv(file=path, format="native", dry_run=False, acting_user=None))
    assert "'1.5' is not a whole number of minutes" in reasons[2]
    assert "No task type has the code or name 'juggling'" in reasons[3]
    assert "No project has the code 'nope'" in reasons[4]
    assert "'02.03.26' is not a date" in reasons[5]
    assert "positive" in reasons[6]
    assert "The external id 'a' is also on line 2" in reasons[7]
    assert "outside project glx-data" in reasons[8]
    assert TimeEntry.objects.count() == 0


def test_an_invoiced_entry_changed_in_the_file_is_a_conflict_not_a_change(firm, tmp_path):
    TimeEntryFactory(member=firm.ada, project=firm.website, task_type=firm.development, source=EntrySource.CSV,
                     external_id="inv-1", minutes=60, status=EntryStatus.INVOICED)
    path = write(tmp_path, "email,project,task_type,work_date,minutes,description,billable,external_id\n"
                           "ada@firm.test,acme-web,dev,2026-03-02,75,Changed,yes,inv-1\n")
    report = import_time_csv(file=path, format="native", dry_run=False, acting_user=None)
    assert report.conflicts == 1
    assert TimeEntry.objects.get().minutes == 60


# --- Dry run, whole-file errors ----------------------------------------------------------------------------


def test_a_dry_run_reports_everything_and_saves_nothing(firm):
    report = import_time_csv(file=DATA / "toggl_bad_rows.csv", format="toggl", dry_run=True, acting_user=None)
    assert report.dry_run and report.created == 3
    # The 24-hour and duplicate checks need the other rows of the file: they run in a dry run too.
    assert {9, 14} <= set(rejected_lines(report))
    assert TimeEntry.objects.count() == 0


def test_the_acting_user_is_recorded_as_creator(firm, finance):
    import_time_csv(file=DATA / "native.csv", format="native", dry_run=False, acting_user=finance.user)
    assert set(TimeEntry.objects.values_list("created_by", flat=True)) == {finance.user.id}


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "The file is empty"),
        (b"\xef\xbb\xbf\r\n\r\n", "The file is empty"),
        (b"Email,Client,Project\nada@firm.test,Acme Corp,Website Redesign\n",
         "missing the columns Description, Billable, Start date, Start time, End date, End time, Duration"),
        (b"User,Email,Client,Project,Description\n", "missing the columns Billable"),
        (f"{TOGGL_HEADER}\nAda,ada@firm.test,Caf\xe9 Cr\xe8me,Website Redesign,,x,Yes,2026-03-02,09:00:00,"
         "2026-03-02,10:00:00,01:00:00,,\n".encode("latin-1"), "not UTF-8 text: byte 0xE9 on line 2"),
        (b"PK\x03\x04\x14\x00\x06\x00", "spreadsheet workbook"),
    ],
)
def test_a_file_that_cannot_be_read_is_one_clear_error(firm, tmp_path, content, fragment):
    report = import_time_csv(file=write(tmp_path, content), format="toggl", dry_run=False, acting_user=None)
    assert fragment in report.file_error
    assert (report.rows_read, report.created, report.rejected) == (0, 0, [])
    assert TimeEntry.objects.count() == 0


def test_a_missing_columns_error_names_the_format_the_file_looks_like(firm):
    report = import_time_csv(file=DATA / "harvest_time.csv", format="toggl", dry_run=False, acting_user=None)
    assert "missing the columns Email" in report.file_error
    assert "looks like a Harvest time export" in report.file_error


def test_a_bom_and_crlf_line_ends_are_read(firm, tmp_path):
    content = (DATA / "toggl_detailed.csv").read_bytes()
    assert content.startswith(b"\xef\xbb\xbf") and b"\r\n" in content
    without_bom = write(tmp_path, content[3:])
    utf16 = write(tmp_path, content[3:].decode().encode("utf-16"), name="utf16.csv")
    for path in (DATA / "toggl_detailed.csv", without_bom, utf16):
        report = import_time_csv(file=path, format="toggl", dry_run=True, acting_user=None)
        assert (report.created, report.rejected) == (4, []), path


def test_a_binary_upload_object_is_read_like_a_path(firm):
    with open(DATA / "native.csv", "rb") as handle:
        report = import_time_csv(file=handle, format="native", dry_run=False, acting_user=None)
    assert report.created == 3


# --- Batches and queries -----------------------------------------------------------------------------------


def _split(captured):
    """(other statements, time entry inserts): SQLite splits one bulk write into chunks by its limit."""
    table = TimeEntry._meta.db_table
    bulk = [q for q in captured.captured_queries
            if q["sql"].startswith("INSERT") or (q["sql"].startswith("UPDATE") and " CASE " in q["sql"])]
    entry_inserts = [q for q in bulk if q["sql"].startswith(f'INSERT INTO "{table}"')]
    return len(captured.captured_queries) - len(bulk), len(entry_inserts)


def test_the_queries_do_not_grow_with_the_rows_of_the_file(firm, tmp_path):
    small_file, large_file = write(tmp_path, toggl_rows(10), "small.csv"), write(tmp_path, toggl_rows(200), "large.csv")
    with CaptureQueriesContext(connection) as small:
        small_report = import_time_csv(file=small_file, format="toggl", dry_run=False, acting_user=None)
    TimeEntry.objects.all().delete()
    with CaptureQueriesContext(connection) as large:
        large_report = import_time_csv(file=large_file, format="toggl", dry_run=False, acting_user=None)

    assert (small_report.created, large_report.created) == (10, 200)
    assert large_report.rejected == []
    # Members, projects and task types once each for the file, then the pipeline's fixed set per batch;
    # only the chunks SQLite cuts bulk writes into may differ.
    assert _split(small)[0] == _split(large)[0]
    fields = [f for f in TimeEntry._meta.concrete_fields if not f.primary_key]
    assert _split(large)[1] == -(-200 // min(1000, connection.ops.bulk_batch_size(fields, [None] * 200)))


def test_a_file_longer_than_a_batch_is_recorded_in_batches_with_progress(firm, tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "BATCH_SIZE", 4)
    messages = []
    # Rows 1 and 10 are the same entry: the duplicate is found across batches too.
    text = toggl_rows(9) + toggl_rows(1).splitlines()[1] + "\n"
    report = import_time_csv(file=write(tmp_path, text), format="toggl", dry_run=False, acting_user=None,
                             progress=messages.append)
    assert (report.rows_read, report.created) == (10, 9)
    assert "Duplicate of line 2" in rejected_lines(report)[11]
    assert messages == ["Read 10 rows; recording them in batches of 4.", "Recorded 4 of 10 rows.",
                        "Recorded 8 of 10 rows.", "Recorded 10 of 10 rows."]
