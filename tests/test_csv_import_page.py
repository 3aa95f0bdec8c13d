"""The finance upload page for time exports: /billing/import/ (billing:import-time)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.forms import MAX_UPLOAD_MB
from projects.models import EntrySource, TimeEntry
from tests.factories import PASSWORD
from tests.test_csv_import_firm import DATA, build_firm, toggl_rows

pytestmark = pytest.mark.django_db

URL = "/billing/import/"


@pytest.fixture
def firm():
    return build_firm()


def login(client, member):
    assert client.login(username=member.user.username, password=PASSWORD)
    return client


def upload(name, content: bytes):
    return SimpleUploadedFile(name, content, content_type="text/csv")


def test_the_url_keeps_its_name():
    assert reverse("billing:import-time") == URL


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("role", ["staff_member", "project_manager", "approver", "management"])
def test_only_finance_may_import(client, firm, role, request):
    login(client, request.getfixturevalue(role))
    assert client.get(URL).status_code == 403
    response = client.post(URL, {"format": "native", "file": upload("t.csv", (DATA / "native.csv").read_bytes())})
    assert response.status_code == 403
    assert TimeEntry.objects.count() == 0


def test_finance_sees_the_form(client, finance):
    response = login(client, finance).get(URL)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'enctype="multipart/form-data"' in body
    assert 'name="file"' in body and 'name="format"' in body and 'name="dry_run"' in body
    assert 'value="toggl"' in body and 'value="harvest"' in body and 'value="native"' in body


def test_an_upload_shows_the_report_with_each_rejected_row(client, firm, finance):
    login(client, finance)
    response = client.post(URL, {"format": "toggl",
                                 "file": upload("toggl.csv", (DATA / "toggl_bad_rows.csv").read_bytes())})

    assert response.status_code == 200
    report = response.context["report"]
    assert (report.rows_read, report.created, len(report.rejected)) == (17, 3, 14)
    body = response.content.decode()
    assert "Import done" in body
    assert '<td class="numeric" id="count-created">3</td>' in body
    assert '<td class="numeric" id="count-rejected">14</td>' in body
    assert "<td class=\"numeric\">3</td><td>Member: No team member has the email &#x27;nobody@firm.test&#x27;." \
           in body
    assert TimeEntry.objects.filter(source=EntrySource.TOGGL, created_by=finance.user).count() == 3


def test_a_dry_run_upload_saves_nothing(client, firm, finance):
    login(client, finance)
    response = client.post(URL, {"format": "harvest", "dry_run": "on",
                                 "file": upload("harvest.csv", (DATA / "harvest_time.csv").read_bytes())})
    assert response.status_code == 200
    assert "Dry run: nothing was saved" in response.content.decode()
    assert response.context["report"].created == 4
    assert TimeEntry.objects.count() == 0


def test_a_file_level_problem_is_a_form_error(client, firm, finance):
    login(client, finance)
    response = client.post(URL, {"format": "toggl",
                                 "file": upload("h.csv", (DATA / "harvest_time.csv").read_bytes())})
    assert response.status_code == 200
    assert response.context["report"] is None
    errors = response.context["form"].errors["file"]
    assert "missing the columns Email" in errors[0] and "looks like a Harvest time export" in errors[0]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "The submitted file is empty."),
        (b"\xef\xbb\xbf", "The file is empty."),
        ("email,project\ncaf\xe9,x\n".encode("latin-1"), "not UTF-8 text"),
    ],
)
def test_unreadable_files_are_form_errors(client, firm, finance, content, fragment):
    response = login(client, finance).post(URL, {"format": "native", "file": upload("x.csv", content)})
    assert fragment in response.context["form"].errors["file"][0]


def test_files_over_10_mb_are_refused(client, firm, finance):
    big = upload("big.csv", b"email,project,work_date,minutes\n" + b"x" * (MAX_UPLOAD_MB * 1024 * 1024))
    response = login(client, finance).post(URL, {"format": "native", "file": big})
    assert response.status_code == 200
    assert "the limit is 10 MB" in response.context["form"].errors["file"][0]
    assert response.context["report"] is None


def test_a_post_without_a_file_says_so(client, finance):
    response = login(client, finance).post(URL, {})
    assert response.context["form"].errors["file"] == ["This field is required."]


def test_an_unknown_format_is_a_form_error(client, firm, finance):
    response = login(client, finance).post(URL, {"format": "excel",
                                                 "file": upload("n.csv", (DATA / "native.csv").read_bytes())})
    assert "excel is not one of the available choices" in response.context["form"].errors["format"][0]


def test_the_page_costs_the_same_queries_for_10_and_200_rows(client, firm, finance):
    login(client, finance)

    def post(count):
        with CaptureQueriesContext(connection) as captured:
            response = client.post(URL, {"format": "toggl",
                                         "file": upload("t.csv", toggl_rows(count).encode())})
        assert response.context["report"].created == count
        TimeEntry.objects.all().delete()
        return sum(not q["sql"].startswith(("INSERT", "UPDATE")) for q in captured.captured_queries)

    assert post(10) == post(200)
