"""The whole workflow in a real browser, every step through the pages people use:

staff logs a week in the timesheet grid (one 11-hour day is held for approval) -> an approver approves it in
the admin queue -> finance runs March's billing and sends the draft's preview -> the client, from the link in
the email, disputes the Design line -> finance writes off the disputed entry and finalizes -> the PDF
downloads with the invoice number and total on it.

Acme is billed at 120.00/h with 10 % tax, one line per task type:

    Development  8 + 7.5 + 11 + 6 + 4 = 36.5 h   4,380.00
    Design       1.5 + 2              =  3.5 h     420.00    subtotal 4,800.00, tax 480.00, total 5,280.00

The client disputes Design; finance writes off Thursday's 2 h, so Design is 1.5 h = 180.00 and the invoice
is finalized at subtotal 4,560.00, tax 456.00, total 5,016.00.
"""

import datetime as dt
import io
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.core import mail
from djmoney.money import Money

from approvals.models import ApprovalPolicy, ApprovalRequest, ApprovalStatus
from billing.models import Allocation, DisputeStatus, Invoice, InvoiceStatus, LineDispute
from clients.models import LineGrouping
from projects.models import EntrySource, EntryStatus, TimeEntry
from tests.e2e.browser import expect_message, log_in, new_page, readable
from tests.factories import (
    PASSWORD,
    ClientFactory,
    ContractFactory,
    ProjectFactory,
    RateFactory,
    TaskTypeFactory,
)

pytestmark = [
    pytest.mark.browser,
    # The live server reads what the test seeds (and the other way round): real commits, not a rolled-back
    # transaction. Serialized rollback brings back the migrations' data (access groups, the approval policy)
    # that an earlier transactional test's flush may have removed.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

WEEK = dt.date(2026, 3, 2)  # Monday; the whole week is in March
DAY_NAMES = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
DEVELOPMENT_HOURS = ["8", "7.5", "11", "6", "4"]  # Wednesday's 11 h is over the 10 h auto-approval limit
DESIGN_HOURS = {"Wednesday": "1.5", "Thursday": "2"}


@pytest.fixture
def acme(db):
    """Acme Corp, time and materials at 120.00/h, 10 % tax, one line per task type, previews to ap@acme.test;
    entries longer than 10 hours or over 1,000.00 wait for an approver."""
    ApprovalPolicy.objects.update_or_create(
        is_active=True, defaults={"name": "Firm default", "auto_approve_max_minutes": 600,
                                  "auto_approve_max_amount": Decimal("1000.00")})
    client = ClientFactory(code="acme", name="Acme Corp", tax_rate=Decimal("10.00"),
                           line_grouping=LineGrouping.TASK_TYPE, invoice_emails=["ap@acme.test"],
                           payment_terms_days=14)
    contract = ContractFactory(client=client, number="C-ACME-1", auto_approve_max_minutes=600)
    RateFactory(contract=contract, hourly_rate=Money("120.00", "USD"))
    TaskTypeFactory(code="development", name="Development")
    TaskTypeFactory(code="design", name="Design")
    return ProjectFactory(contract=contract, client=client, code="acme-web", name="Acme website")


def _cell(page, task: str, day_name: str, day: int):
    return page.get_by_label(f"acme-web {task}, {day_name} {day} March")


def test_from_timesheet_to_finalized_invoice_pdf_in_a_real_browser(chromium, live_server, settings, acme,
                                                                    staff_member, approver, finance, screenshots):
    from playwright.sync_api import expect

    # Review links in emails point at this server.
    settings.SITE_URL = live_server.url

    # 1. Staff logs the week in the timesheet grid ------------------------------------------------------------
    staff = new_page(chromium, live_server.url)
    log_in(staff, staff_member.user.username, PASSWORD)
    staff.get_by_role("link", name="Timesheet").click()
    staff.get_by_label("Go to the week of").fill(WEEK.isoformat())
    staff.get_by_role("button", name="Go", exact=True).click()
    expect(staff.locator("hgroup p")).to_have_text("Week of Monday 2 March 2026")
    for task in ("Development", "Design"):
        staff.get_by_label("Project", exact=True).select_option(label="Acme Corp · acme-web · Acme website")
        staff.get_by_label("Task type", exact=True).select_option(label=task)
        staff.get_by_role("button", name="Add row").click()
    for offset, (day_name, hours) in enumerate(zip(DAY_NAMES, DEVELOPMENT_HOURS, strict=True)):
        _cell(staff, "Development", day_name, 2 + offset).fill(hours)
    for day_name, hours in DESIGN_HOURS.items():
        _cell(staff, "Design", day_name, 2 + DAY_NAMES.index(day_name)).fill(hours)
    # The page's script adds up the week while it is typed.
    expect(staff.locator("[data-week-total]")).to_have_text("40:00")
    staff.get_by_role("button", name="Save week").click()
    expect_message(staff, "Week saved: 7 added, 0 changed, 0 removed.")
    # Wednesday's 11 hours wait for approval; the cell says so.
    expect(_cell(staff, "Development", "Wednesday", 4).locator("xpath=..")).to_have_class(re.compile("cell-pending"))
    screenshots.take(staff, "timesheet-saved")

    entries = TimeEntry.objects.filter(member=staff_member, source=EntrySource.PORTAL)
    assert entries.count() == 7
    assert sum(e.minutes for e in entries) == 40 * 60
    held = entries.get(status=EntryStatus.PENDING)
    assert (held.work_date, held.minutes, held.amount) == (dt.date(2026, 3, 4), 660, Money("1320.00", "USD"))
    assert set(entries.exclude(pk=held.pk).values_list("status", flat=True)) == {EntryStatus.APPROVED}

    # 2. The approver approves it in the admin queue ---------------------------------------------------------
    desk = new_page(chromium, live_server.url)
    log_in(desk, approver.user.username, PASSWORD)
    desk.goto("/admin/approvals/approvalrequest/")
    rows = desk.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("11:00 h is longer than the auto-approval limit of 10:00 h.")
    screenshots.take(desk, "approval-queue")
    rows.first.locator("input.action-select").check()
    desk.locator("select[name=action]").select_option(label="Approve selected time")
    desk.locator("button[name=index]").click()
    expect_message(desk, "Approved 1 entry.")
    held.refresh_from_db()
    assert held.status == EntryStatus.APPROVED
    assert ApprovalRequest.objects.get(time_entry=held).status == ApprovalStatus.APPROVED
    assert ApprovalRequest.objects.get(time_entry=held).decided_by == approver.user

    # 3. Finance runs March's billing and sends the draft's preview ------------------------------------------
    office = new_page(chromium, live_server.url)
    log_in(office, finance.user.username, PASSWORD)
    office.get_by_role("link", name="Invoices").click()
    run_form = office.locator("#run-billing")
    run_form.get_by_label("Period start", exact=True).fill("2026-03-01")
    run_form.get_by_label("Period end", exact=True).fill("2026-03-31")
    run_form.get_by_label("Client", exact=True).select_option(label="Acme Corp (acme)")
    run_form.get_by_role("button", name="Run billing").click()
    expect_message(office, "Billing run for 01 Mar 2026 to 31 Mar 2026")
    invoice = Invoice.objects.get(client=acme.client)
    office.get_by_role("link", name=f"Draft #{invoice.pk}").click()
    expect(office.locator("#total")).to_have_text("5,280.00 USD")
    office.get_by_role("button", name="Send preview to client").click()
    expect_message(office, "Preview sent to ap@acme.test.")
    screenshots.take(office, "draft-preview-sent")

    [preview] = [message for message in mail.outbox if message.to == ["ap@acme.test"]]
    link = re.search(rf"{re.escape(live_server.url)}/billing/review/\S+/", preview.body)
    assert link, preview.body

    # 4. The client disputes the Design line from the emailed link (no login) --------------------------------
    design = invoice.lines.get(description__contains="Design")
    client = new_page(chromium, live_server.url)
    client.goto(link.group(0))
    expect(client.locator("h1")).to_have_text("Invoice for review")
    line = client.locator(f"#line-{design.pk}")
    line.get_by_text("Dispute this line").click()
    line.get_by_label("What is wrong with this line?").fill("We did not ask for design work on Thursday.")
    line.get_by_label("Your name (optional)").fill("Alex Buyer")
    with client.expect_response(lambda response: response.request.method == "POST") as posted:
        line.get_by_role("button", name="Send my comment").click()
    # Said plainly when the browser's post is refused (a CSRF failure would otherwise be a 15 s wait).
    assert posted.value.status == 302, (
        f"The client's dispute was refused with {posted.value.status}: {readable(posted.value.text())}")
    expect_message(client, "Thank you: we have your comment on this line")
    expect(client.locator(f"#line-{design.pk} .dispute")).to_contain_text("We did not ask for design work")
    screenshots.take(client, "client-dispute")
    dispute = LineDispute.objects.get(line=design)
    assert (dispute.status, dispute.raised_by) == (DisputeStatus.OPEN, "Alex Buyer")

    # 5. Finance writes off the disputed entry, finalizes, and downloads the PDF -----------------------------
    office.reload()
    expect(office.locator("main")).to_contain_text("1 open dispute")
    resolve = office.locator(f"#dispute-{dispute.pk}")
    resolve.get_by_text("Resolve this dispute").click()
    resolve.get_by_label(re.compile(r"05 Mar 2026 · Sam Staff · Design · 2:00 h")).check()
    resolve.get_by_label(re.compile("write them off")).check()
    resolve.get_by_label("Resolution (the client may read it)").fill("Thursday's design time is written off.")
    resolve.get_by_role("button", name="Resolve", exact=True).click()
    expect_message(office, "was resolved; the entries taken off were written off")
    expect(office.locator("#total")).to_have_text("5,016.00 USD")
    office.get_by_role("button", name="Finalize", exact=True).click()
    expect_message(office, re.compile(r"Finalized as \S+, issued"))
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.FINALIZED
    expect(office.locator("h1")).to_contain_text(invoice.number)
    screenshots.take(office, "invoice-finalized")

    with office.expect_download() as download_info:
        office.get_by_role("button", name="Download PDF").click()
    download = download_info.value
    assert download.suggested_filename == f"{invoice.number}.pdf"
    pdf = Path(download.path()).read_bytes()
    assert pdf.startswith(b"%PDF")

    from pypdf import PdfReader

    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert invoice.number in text
    assert "5,016.00" in text

    # What the database says at the end ------------------------------------------------------------------
    assert (invoice.subtotal, invoice.tax, invoice.total) == (Decimal("4560.00"), Decimal("456.00"),
                                                              Decimal("5016.00"))
    dispute.refresh_from_db()
    assert dispute.status == DisputeStatus.RESOLVED and dispute.resolved_by == finance.user
    written_off = Allocation.objects.get(time_entry__work_date=dt.date(2026, 3, 5), line=design)
    assert (written_off.written_off, written_off.minutes) == (True, 0)
    billed = Allocation.objects.filter(line__invoice=invoice, minutes__gt=0)
    assert billed.count() == 6 and sum(a.minutes for a in billed) == 38 * 60

