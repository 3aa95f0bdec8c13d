"""python manage.py import_time FILE --format native|toggl|harvest [--dry-run]"""

import io

import pytest
from django.core.management import call_command, execute_from_command_line
from django.core.management.base import CommandError

from billing.csv_import import importer
from projects.models import TimeEntry
from tests.test_csv_import_firm import DATA, build_firm, toggl_rows, write

pytestmark = pytest.mark.django_db


@pytest.fixture
def firm():
    return build_firm()


def run(*args) -> str:
    out = io.StringIO()
    call_command("import_time", *map(str, args), stdout=out)
    return out.getvalue()


def test_the_command_imports_and_ends_with_a_summary_listing_each_rejected_row(firm):
    output = run(DATA / "toggl_bad_rows.csv", "--format", "toggl")

    assert TimeEntry.objects.count() == 3
    lines = output.splitlines()
    for count in ("Rows read: 17", "Created: 3", "Updated: 0", "Unchanged: 0", "Rejected: 14"):
        assert count in lines
    assert "  line 3: Member: No team member has the email 'nobody@firm.test'." in lines
    assert "  line 16: Row: The row has 6 values but the header has 14: check for a missing or unquoted " \
           "separator." in lines
    rejected = [line for line in lines if line.startswith("  line ")]
    assert len(rejected) == 14
    assert [int(line.split()[1].rstrip(":")) for line in rejected] == [
        3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15, 16, 18]


def test_a_second_run_of_the_same_file_reports_everything_unchanged(firm):
    run(DATA / "harvest_time.csv", "--format", "harvest")
    output = run(DATA / "harvest_time.csv", "--format", "harvest")
    assert "Created: 0" in output and "Unchanged: 4" in output and "Rejected: 3" in output


def test_a_dry_run_saves_nothing_and_says_so(firm):
    output = run(DATA / "native.csv", "--format", "native", "--dry-run")
    assert TimeEntry.objects.count() == 0
    assert output.startswith("Dry run: the file is checked in full, nothing is saved.")
    assert "Would be created: 3" in output


def test_big_files_print_progress(firm, tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "BATCH_SIZE", 5)
    output = run(write(tmp_path, toggl_rows(12)), "--format", "toggl")
    assert "Read 12 rows; recording them in batches of 5." in output
    assert "Recorded 5 of 12 rows." in output and "Recorded 12 of 12 rows." in output
    assert "Created: 12" in output


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("missing.csv", None, "The file cannot be read: No such file or directory."),
        ("empty.csv", b"", "The file is empty."),
        ("header.csv", b"Email,Project\n", "missing the columns Client, Description"),
    ],
)
def test_a_file_that_cannot_be_read_at_all_is_an_error(firm, tmp_path, name, content, fragment):
    path = write(tmp_path, content, name) if content is not None else tmp_path / name
    with pytest.raises(CommandError, match=fragment.replace(".", r"\.")):
        run(path, "--format", "toggl")


def test_exit_codes(firm, tmp_path, capsys):
    # Rejected rows are a normal outcome: exit code 0.
    execute_from_command_line(["manage.py", "import_time", str(DATA / "toggl_bad_rows.csv"), "--format", "toggl"])
    assert "Rejected: 14" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        execute_from_command_line(["manage.py", "import_time", str(tmp_path / "nope.csv"), "--format", "toggl"])
    assert exited.value.code == 1
    assert "The file cannot be read" in capsys.readouterr().err


def test_the_format_is_required_and_checked(firm):
    with pytest.raises(CommandError, match="--format"):
        run(DATA / "native.csv")
    with pytest.raises(CommandError, match="invalid choice: 'excel'"):
        run(DATA / "native.csv", "--format", "excel")
