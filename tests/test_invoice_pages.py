"""Finance's invoice screens: the list with billing runs (/billing/invoices/), one invoice with its actions, the PDF.

Who may do what: billing.view_invoice reads (finance, management); billing.run_billing runs billing and manages
drafts and disputes; billing.finalize_invoice finalizes, sends, marks paid, voids and credits (finance only).
"""

import datetime as dt
import re
from decimal import Decimal
from unittest import mock

import pytest
from django.core import mail
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.invoicing import BillingConflict
from billing.lifecycle import invoice_finalize, invoice_mark_paid
from billing.models import (
    Allocation,
    BillingRun,
    ClientMessage,
    DisputeStatus,
    Invoice,
    InvoiceEvent,
    InvoiceKind,
    InvoiceStatus,
    LineDispute,
    MessageKind,
)
from billing.review import invoice_send_preview, review_dispute
from clients.models import LineGrouping
from projects.models import EntryStatus, TimeEntry
from tests.billing_helpers import MARCH
from tests.factories import PASSWORD, ClientFactory, TaskTypeFactory
from tests.test_client_review import Acme, lines_of, path_from_email

pytestmark = pytest.mark.django_db

LIST = "/billing/invoices/"


def login(client, member):
    assert client.login(username=member.user.username, password=PASSWORD)
    return client


def url(name: str, invoice) -> str:
    return reverse(f"billing:{name}", args=[invoice.pk])


def page_of(response) -> str:
    return response.content.decode()


def totals(invoice: Invoice) -> tuple[str, str, str]:
    invoice.refresh_from_db()
    return str(invoice.subtotal), str(invoice.tax), str(invoice.total)


@pytest.fixture
def acme(staff_member):
    return Acme(staff_member)


@pytest.fixture
def draft(acme):
    return acme.bill()


@pytest.fixture
def finalized(draft):
    return invoice_finalize(invoice=draft, issue_date=dt.date(2026, 4, 1))


@pytest.fixture
def as_finance(client, finance):
    return login(client, finance)


def dispute_development(draft, comment="The API design took one hour, not 95 minutes."):
    invoice_send_preview(invoice=draft)
    line = draft.lines.get(description="Development")
    return review_dispute(invoice=draft, line_id=line.pk, comment=comment, name="Carla")


# Names and who may come in ------------------------------------------------------------------------------------


def test_the_urls_keep_their_names():
    assert reverse("billing:invoice-list") == LIST
    assert reverse("billing:invoice-detail", args=[7]) == "/billing/invoices/7/"
    assert reverse("billing:invoice-pdf", args=[7]) == "/billing/invoices/7/pdf/"
    assert reverse("billing:import-time") == "/billing/import/"


@pytest.mark.parametrize("name", ["invoice-list", "invoice-detail", "invoice-pdf", "invoice-finalize",
                                  "billing-run"])
def test_anonymous_visitors_are_sent_to_log_in(client, draft, name):
    target = reverse(f"billing:{name}") if name in ("invoice-list", "billing-run") else url(name, draft)
    response = client.post(target) if name in ("invoice-finalize", "billing-run") else client.get(target)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    draft.refresh_from_db()
    assert draft.status == InvoiceStatus.DRAFT


@pytest.mark.parametrize("name", ["invoice-list", "invoice-detail", "invoice-pdf"])
def test_staff_cannot_see_invoices(client, staff_member, draft, name):
    login(client, staff_member)
    response = client.get(LIST if name == "invoice-list" else url(name, draft))
    assert response.status_code == 403
    assert "cannot see invoices" in page_of(response)
    assert "Not available for this login" in page_of(response)


def test_management_reads_the_list_and_the_invoice_but_sees_no_actions(client, management, draft):
    login(client, management)
    listing = page_of(client.get(LIST))
    assert f"Draft #{draft.pk}" in listing and "Run billing" not in listing
    response = client.get(url("invoice-detail", draft))
    assert response.status_code == 200
    page = page_of(response)
    assert "Development" in page
    for button in ("Finalize", "Send preview", "Regenerate", "Delete draft", "Resolve this dispute"):
        assert button not in page
    pdf = client.get(url("invoice-pdf", draft))
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    # The menu leads management to the list they may read.
    assert f'href="{LIST}"' in page_of(client.get(reverse("portal:home")))


@pytest.mark.parametrize(("name", "data"), [
    ("invoice-preview", {}), ("invoice-regenerate", {}), ("invoice-delete", {}), ("invoice-finalize", {}),
])
def test_management_cannot_act_on_a_draft(client, management, draft, name, data):
    login(client, management)
    response = client.post(url(name, draft), data)
    assert response.status_code == 403
    assert "Ask finance to do it." in page_of(response)
    draft.refresh_from_db()
    assert (draft.status, draft.review_sent_at) == (InvoiceStatus.DRAFT, None)
    assert len(mail.outbox) == 0 and Invoice.objects.count() == 1


@pytest.mark.parametrize(("name", "data"), [
    ("invoice-send", {}), ("invoice-paid", {"paid_on": "2026-04-10"}), ("invoice-void", {"reason": "Wrong"}),
    ("invoice-credit", {"release": "release"}),
])
def test_management_cannot_act_on_an_issued_invoice(client, management, finalized, name, data):
    login(client, management)
    data = {**data, **{f"minutes_{a.time_entry_id}": "all" for a in Allocation.objects.all()}}
    assert client.post(url(name, finalized), data).status_code == 403
    finalized.refresh_from_db()
    assert finalized.status == InvoiceStatus.FINALIZED
    assert Invoice.objects.filter(kind=InvoiceKind.CREDIT).count() == 0 and len(mail.outbox) == 0


def test_management_cannot_run_billing_or_resolve_disputes(client, management, draft):
    dispute = dispute_development(draft)
    login(client, management)
    assert client.post(reverse("billing:billing-run"),
                       {"period_start": "2026-03-01", "period_end": "2026-03-31"}).status_code == 403
    assert BillingRun.objects.count() == 1
    response = client.post(reverse("billing:dispute-resolve", args=[dispute.pk]),
                           {f"dispute-{dispute.pk}-resolution": "x", f"dispute-{dispute.pk}-outcome": "dismiss"})
    assert response.status_code == 403
    dispute.refresh_from_db()
    assert dispute.status == DisputeStatus.OPEN


def test_finance_gets_the_menu_link_and_every_draft_action(as_finance, draft):
    assert f'href="{LIST}"' in page_of(as_finance.get(reverse("portal:home")))
    page = page_of(as_finance.get(url("invoice-detail", draft)))
    for button in ("Send preview to client", "Finalize", "Regenerate", "Delete draft"):
        assert button in page
    for button in ("Mark paid", "Void…", "Credit note…", "Send to client"):
        assert button not in page


def test_actions_are_posts(as_finance, draft):
    for name in ("invoice-preview", "invoice-regenerate", "invoice-finalize", "invoice-send", "invoice-paid"):
        assert as_finance.get(url(name, draft)).status_code == 405
    assert as_finance.get(reverse("billing:billing-run")).status_code == 405


# The list ------------------------------------------------------------------------------------------------------


def make_invoice(client, *, end=dt.date(2026, 3, 31), status=InvoiceStatus.DRAFT, kind=InvoiceKind.INVOICE,
                 number=None, total="100.00", credited=None):
    return Invoice.objects.create(client=client, currency="USD", period_start=end.replace(day=1), period_end=end,
                                  status=status, kind=kind, number=number, total=Decimal(total),
                                  subtotal=Decimal(total), credited_invoice=credited)


def rows_of(page: str) -> list[str]:
    body = page.split('<table class="striped" id="invoices">')[1].split("</table>")[0]
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in body.split("<tr>")[2:]]


def test_the_list_shows_number_client_period_status_total_and_open_disputes(as_finance, acme, other_staff_member):
    draft = acme.bill()
    dispute_development(draft)
    globex = Acme(other_staff_member, code="globex", name="Globex")
    invoice_finalize(invoice=globex.bill(), issue_date=dt.date(2026, 4, 1))
    # Newest first within the same period end.
    assert rows_of(page_of(as_finance.get(LIST))) == [
        "INV-2026-0001 Globex 1 Mar 2026 – 31 Mar 2026 Finalized 405.01 USD 0",
        f"Draft #{draft.pk} Acme Corp 1 Mar 2026 – 31 Mar 2026 Draft 405.01 USD 1",
    ]


def test_the_list_filters_by_status_client_kind_and_period(as_finance):
    acme, globex = ClientFactory(code="acme", name="Acme"), ClientFactory(code="globex", name="Globex")
    march = make_invoice(acme, total="1.00")
    april = make_invoice(acme, end=dt.date(2026, 4, 30), status=InvoiceStatus.FINALIZED, number="INV-2026-0001",
                         total="2.00")
    other = make_invoice(globex, total="3.00")
    credit = make_invoice(acme, end=dt.date(2026, 4, 30), status=InvoiceStatus.FINALIZED, kind=InvoiceKind.CREDIT,
                          number="CN-2026-0001", total="-2.00", credited=april)

    def shown(**query):
        page = page_of(as_finance.get(LIST, query))
        return {invoice for invoice in (march, april, other, credit)
                if reverse("billing:invoice-detail", args=[invoice.pk]) + '"' in page}

    assert shown() == {march, april, other, credit}
    assert shown(status="draft") == {march, other}
    assert shown(client=globex.pk) == {other}
    assert shown(kind="credit") == {credit}
    assert shown(kind="invoice", client=acme.pk) == {march, april}
    assert shown(period_from="2026-04-01") == {april, credit}
    assert shown(period_to="2026-03-31") == {march, other}
    assert shown(period_from="2026-03-31", period_to="2026-03-31", status="draft", client=acme.pk) == {march}


def test_a_bad_filter_is_reported_and_the_others_still_apply(as_finance):
    acme = ClientFactory(code="acme", name="Acme")
    march = make_invoice(acme)
    finalized = make_invoice(acme, status=InvoiceStatus.FINALIZED, number="INV-2026-0001")
    page = page_of(as_finance.get(LIST, {"status": "draft", "period_from": "2026-03-01", "period_to": "2026-02-01"}))
    assert "Must not be before" in page
    assert url("invoice-detail", march) + '"' in page and url("invoice-detail", finalized) + '"' not in page
    assert "Select a valid choice" in page_of(as_finance.get(LIST, {"status": "lost"}))


def test_the_list_counts_open_disputes_over_all_lines_and_not_the_closed_ones(as_finance):
    acme = ClientFactory(code="acme", name="Acme")
    # Same period: the newer invoice is listed first.
    quiet, disputed = make_invoice(acme, number="INV-2026-0001"), make_invoice(acme, number="INV-2026-0002")
    first, second = (disputed.lines.create(position=n, kind="time", description="Work", quantity=1, unit_rate=1,
                                           amount=1) for n in (1, 2))
    for line, status in ((first, DisputeStatus.OPEN), (first, DisputeStatus.OPEN), (second, DisputeStatus.OPEN),
                         (second, DisputeStatus.RESOLVED)):
        LineDispute.objects.create(line=line, comment="Why?", status=status)
    quiet.lines.create(position=1, kind="time", description="Work", quantity=1, unit_rate=1, amount=1)
    rows = rows_of(page_of(as_finance.get(LIST)))
    assert [row.split(" USD ")[1] for row in rows] == ["3", "0"]
    assert [row.split(" ")[0] for row in rows] == [disputed.number, quiet.number]


def test_both_client_lists_offer_every_client_by_name_and_the_filter_keeps_its_choice(as_finance):
    zeta, acme = ClientFactory(code="zeta", name="Zeta"), ClientFactory(code="acme", name="Acme")
    page = page_of(as_finance.get(LIST, {"client": zeta.pk}))
    run_list, filter_list = re.findall(r'<select name="client"[^>]*>(.*?)</select>', page, re.S)
    options = re.compile(r'<option value="([^"]*)"( selected)?>([^<]*)</option>')
    assert options.findall(run_list) == [("", " selected", "All clients"), (str(acme.pk), "", "Acme (acme)"),
                                         (str(zeta.pk), "", "Zeta (zeta)")]
    assert options.findall(filter_list) == [("", "", "Any client"), (str(acme.pk), "", "Acme (acme)"),
                                            (str(zeta.pk), " selected", "Zeta (zeta)")]


def test_the_list_pages_by_50(as_finance):
    acme = ClientFactory(code="acme", name="Acme")
    for day in range(51):
        make_invoice(acme, end=dt.date(2026, 1, 1) + dt.timedelta(days=day))
    first = page_of(as_finance.get(LIST, {"client": acme.pk}))
    assert len(rows_of(first)) == 50 and "1–50 of 51 invoices" in first
    assert f"client={acme.pk}&amp;page=2" in first
    second = page_of(as_finance.get(LIST, {"client": acme.pk, "page": 2}))
    assert len(rows_of(second)) == 1


def _list_queries(client, invoices: int) -> int:
    acme = ClientFactory(code=f"client-{invoices}", name=f"Client {invoices}")
    for _ in range(invoices):
        invoice = make_invoice(acme, end=dt.date(2026, 3, 31))
        line = invoice.lines.create(position=1, kind="time", description="Work", quantity=1, unit_rate=1, amount=1)
        LineDispute.objects.create(line=line, comment="Why?")
    with CaptureQueriesContext(connection) as queries:
        response = client.get(LIST, {"client": acme.pk})
    assert response.status_code == 200 and len(rows_of(page_of(response))) == invoices
    assert all(row.endswith(" 1") for row in rows_of(page_of(response)))
    return len(queries)


def test_the_list_costs_the_same_queries_for_3_invoices_as_for_40(as_finance):
    as_finance.get(LIST)  # the session and permissions once
    few = _list_queries(as_finance, 3)
    many = _list_queries(as_finance, 40)
    # Session, user, member, permissions (2), the client filter's check, the client list (one for both the
    # filters and the billing-run form), count, page; the second scenario also has one more client in the
    # list, which costs nothing.
    assert few == many == 9


# Billing runs from the list -----------------------------------------------------------------------------------


def test_running_billing_drafts_the_invoices_and_lists_what_the_run_made(as_finance, acme, finance):
    response = as_finance.post(reverse("billing:billing-run"),
                               {"period_start": "2026-03-01", "period_end": "2026-03-31", "client": ""})
    run = BillingRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"{LIST}?run={run.pk}"
    assert (run.period_start, run.period_end, run.started_by, run.invoices_created) == (
        *MARCH, finance.user, 1)
    [invoice] = run.invoices.all()
    assert lines_of(invoice) == [("Design", "0.33", "45.67"), ("Development", "2.42", "331.08")]
    page = page_of(as_finance.get(response["Location"]))
    assert "Billing run for 01 Mar 2026 to 31 Mar 2026: 1 draft invoices, 3 entries, 2 lines." in page
    assert 'id="run-summary"' in page and rows_of(page) == [
        f"Draft #{invoice.pk} Acme Corp 1 Mar 2026 – 31 Mar 2026 Draft 405.01 USD 0"]


def test_a_run_for_one_client_bills_only_that_client(as_finance, acme, other_staff_member):
    globex = Acme(other_staff_member, code="globex", name="Globex")
    as_finance.post(reverse("billing:billing-run"),
                    {"period_start": "2026-03-01", "period_end": "2026-03-31", "client": globex.client.pk})
    assert list(Invoice.objects.values_list("client__code", flat=True)) == ["globex"]


def test_a_period_ending_before_it_starts_is_refused_on_the_form(as_finance, acme):
    response = as_finance.post(reverse("billing:billing-run"),
                               {"period_start": "2026-03-31", "period_end": "2026-03-01"})
    assert response.status_code == 200
    assert "The period cannot end before it starts." in page_of(response)
    assert not BillingRun.objects.exists() and not Invoice.objects.exists()


def test_missing_dates_are_refused_on_the_form(as_finance):
    response = as_finance.post(reverse("billing:billing-run"), {"period_start": "", "period_end": "31/31/2026"})
    page = page_of(response)
    assert response.status_code == 200 and "This field is required." in page and "Enter a valid date." in page
    assert not BillingRun.objects.exists()


def test_a_run_with_nothing_to_bill_says_so(as_finance):
    response = as_finance.post(reverse("billing:billing-run"),
                               {"period_start": "2026-03-01", "period_end": "2026-03-31"}, follow=True)
    assert "nothing to bill" in page_of(response)


def test_a_conflicting_run_is_reported_not_a_500(as_finance, acme):
    with mock.patch("billing.views.invoices.billing_run_create",
                    side_effect=BillingConflict("Another billing run billed some of the same time.")):
        response = as_finance.post(reverse("billing:billing-run"),
                                   {"period_start": "2026-03-01", "period_end": "2026-03-31"})
    assert response.status_code == 200 and "Another billing run billed some of the same time." in page_of(response)


# One invoice ---------------------------------------------------------------------------------------------------


def test_the_invoice_page_shows_header_lines_time_totals_messages_and_history(as_finance, draft, acme):
    invoice_send_preview(invoice=draft)
    page = page_of(as_finance.get(url("invoice-detail", draft)))
    for text in (f"Draft #{draft.pk}", "assigned when finalized", "Acme Corp", "1 Mar 2026 – 31 Mar 2026",
                 "Design", "0.33", "45.67", "Development", "2.42", "331.08", "137.00",
                 "Time detail (2 entries)", "Kick-off workshop", "API design", "Sam Staff", "0.83", "1.58",
                 ">376.75<", ">28.26<", "405.01 USD",
                 "Invoice preview", "ap@acme.test, cfo@acme.test", "preview_sent"):
        assert text in page, text


def _detail_queries(client, member, entries: int, code: str) -> int:
    task = TaskTypeFactory(code="dev", name="Development")
    rows = [(task, dt.date(2026, 3, 1) + dt.timedelta(days=n % 28), 15 + n, f"Entry {n}") for n in range(entries)]
    invoice = Acme(member, grouping=LineGrouping.DETAILED, code=code, name=code.title(), entries=rows).bill()
    invoice_send_preview(invoice=invoice)
    # Every line disputed, so disputes and their resolve forms grow with the lines too.
    for line in invoice.lines.all():
        review_dispute(invoice=invoice, line_id=line.pk, comment="Too long")
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url("invoice-detail", invoice))
    assert response.status_code == 200 and page_of(response).count("Resolve this dispute") == entries
    assert page_of(response).count('<tr id="line-') == entries
    return len(queries)


def test_the_invoice_page_costs_the_same_queries_for_2_lines_as_for_30(as_finance, staff_member,
                                                                      other_staff_member):
    few = _detail_queries(as_finance, staff_member, 2, "small")
    many = _detail_queries(as_finance, other_staff_member, 30, "large")
    # Session, user, permissions (2), member for the menu; the invoice, its lines, their time, disputes,
    # messages, events and credit notes.
    assert few == many == 12


def test_an_unknown_invoice_is_404(as_finance):
    assert as_finance.get(reverse("billing:invoice-detail", args=[999])).status_code == 404


def test_the_pdf_of_a_draft_downloads_as_draft_id(as_finance, draft):
    response = as_finance.get(url("invoice-pdf", draft))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="draft-{draft.pk}.pdf"'
    assert response.content.startswith(b"%PDF")


def test_the_pdf_of_an_issued_invoice_is_its_stored_file(as_finance, finalized):
    response = as_finance.get(url("invoice-pdf", finalized))
    assert response["Content-Disposition"] == 'attachment; filename="INV-2026-0001.pdf"'
    with finalized.pdf.open("rb") as stored:
        assert response.content == stored.read()


# Draft actions -------------------------------------------------------------------------------------------------


def test_the_preview_button_emails_the_client_a_link_that_opens_the_review_page(as_finance, draft, finance):
    response = as_finance.post(url("invoice-preview", draft), follow=True)
    assert "Preview sent to ap@acme.test, cfo@acme.test." in page_of(response)
    [message] = mail.outbox
    assert message.to == ["ap@acme.test", "cfo@acme.test"]
    assert "405.01" in message.body
    review = HttpClient().get(path_from_email(message))
    assert review.status_code == 200 and "Dispute this line" in page_of(review)
    logged = ClientMessage.objects.get(invoice=draft)
    assert (logged.kind, logged.to) == (MessageKind.INVOICE_PREVIEW, ["ap@acme.test", "cfo@acme.test"])
    assert InvoiceEvent.objects.get(invoice=draft, action="preview_sent").actor == finance.user


def test_a_preview_for_a_client_without_recipients_is_refused_with_a_message(as_finance, draft, acme):
    acme.client.invoice_emails = []
    acme.client.save()
    acme.client.contacts.update(receives_invoices=False)
    response = as_finance.post(url("invoice-preview", draft), follow=True)
    assert "Acme Corp has no invoice email address or opted-in contact." in page_of(response)
    assert len(mail.outbox) == 0


def test_a_failed_preview_email_is_reported(as_finance, draft, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 1
    response = as_finance.post(url("invoice-preview", draft), follow=True)
    assert "The preview email could not be sent" in page_of(response)


def test_finalizing_is_refused_with_the_message_while_a_line_is_disputed(as_finance, draft):
    dispute_development(draft)
    page = page_of(as_finance.get(url("invoice-detail", draft)))
    assert "1 open dispute" in page and "The API design took one hour" in page and "Carla" in page
    response = as_finance.post(url("invoice-finalize", draft), follow=True)
    assert "1 disputed line must be resolved before this invoice can be finalized." in page_of(response)
    draft.refresh_from_db()
    assert (draft.status, draft.number) == (InvoiceStatus.DRAFT, None)


def resolve(client, dispute, **fields):
    data = {f"dispute-{dispute.pk}-{name}": value for name, value in fields.items()}
    return client.post(reverse("billing:dispute-resolve", args=[dispute.pk]), data, follow=True)


def test_resolving_by_release_takes_the_entry_off_and_recomputes_to_the_cent(as_finance, draft, acme, finance):
    dispute = dispute_development(draft)
    api_design = acme.entries[1]
    response = resolve(as_finance, dispute, resolution="Agreed: one hour, the rest next month.", outcome="release",
                       entries=[api_design.pk])
    assert "was resolved; the entries taken off were released" in page_of(response)
    # Development keeps 50 minutes: 0.83 h, round(50 x 137 / 60) = 114.17; subtotal 159.84, tax 11.99.
    assert lines_of(draft) == [("Design", "0.33", "45.67"), ("Development", "0.83", "114.17")]
    assert totals(draft) == ("159.84", "11.99", "171.83")
    api_design.refresh_from_db()
    assert api_design.status == EntryStatus.APPROVED
    assert not Allocation.objects.filter(time_entry=api_design).exists()
    dispute.refresh_from_db()
    assert (dispute.status, dispute.resolved_by, dispute.resolution) == (
        DisputeStatus.RESOLVED, finance.user, "Agreed: one hour, the rest next month.")
    # Nothing is open now, so the draft finalizes.
    response = as_finance.post(url("invoice-finalize", draft), follow=True)
    draft.refresh_from_db()
    assert draft.status == InvoiceStatus.FINALIZED and draft.number == "INV-2026-0001"
    assert "Finalized as INV-2026-0001" in page_of(response)


def test_resolving_by_write_off_keeps_the_entry_billed_at_zero(as_finance, draft, acme):
    dispute = dispute_development(draft)
    api_design = acme.entries[1]
    response = resolve(as_finance, dispute, resolution="Written off as a goodwill gesture.", outcome="write_off",
                       entries=[api_design.pk])
    assert "the entries taken off were written off" in page_of(response)
    assert lines_of(draft) == [("Design", "0.33", "45.67"), ("Development", "0.83", "114.17")]
    assert totals(draft) == ("159.84", "11.99", "171.83")
    api_design.refresh_from_db()
    allocation = Allocation.objects.get(time_entry=api_design)
    assert api_design.status == EntryStatus.INVOICED
    assert (allocation.minutes, allocation.amount, allocation.written_off, allocation.is_live) == (
        0, Decimal("0.00"), True, True)
    assert "written off" in page_of(as_finance.get(url("invoice-detail", draft)))


def test_dismissing_leaves_the_line_as_it_is(as_finance, draft):
    dispute = dispute_development(draft)
    response = resolve(as_finance, dispute, resolution="The workshop notes show 95 minutes.", outcome="dismiss")
    assert "was dismissed; the line is unchanged" in page_of(response)
    assert totals(draft) == ("376.75", "28.26", "405.01")
    dispute.refresh_from_db()
    assert dispute.status == DisputeStatus.DISMISSED
    assert as_finance.post(url("invoice-finalize", draft)).status_code == 302
    draft.refresh_from_db()
    assert draft.status == InvoiceStatus.FINALIZED


def test_a_resolution_needs_its_text(as_finance, draft, acme):
    dispute = dispute_development(draft)
    response = resolve(as_finance, dispute, resolution=" ", outcome="release", entries=[acme.entries[1].pk])
    assert response.status_code == 200
    page = page_of(response)
    assert "The dispute was not resolved" in page and "This field is required." in page
    dispute.refresh_from_db()
    assert dispute.status == DisputeStatus.OPEN and totals(draft) == ("376.75", "28.26", "405.01")


@pytest.mark.parametrize(("outcome", "pick", "message"), [
    ("release", False, "Choose the entries to take off the line, or dismiss the dispute."),
    ("dismiss", True, "Either dismiss the dispute or remove entries, not both."),
])
def test_the_services_objections_to_a_resolution_are_shown(as_finance, draft, acme, outcome, pick, message):
    dispute = dispute_development(draft)
    response = resolve(as_finance, dispute, resolution="Done.", outcome=outcome,
                       **({"entries": [acme.entries[1].pk]} if pick else {}))
    assert message in page_of(response)
    dispute.refresh_from_db()
    assert dispute.status == DisputeStatus.OPEN and totals(draft) == ("376.75", "28.26", "405.01")


def test_an_entry_of_another_line_cannot_be_taken_off(as_finance, draft, acme):
    dispute = dispute_development(draft)
    wireframes = acme.entries[2]  # on the Design line
    response = resolve(as_finance, dispute, resolution="Done.", outcome="release", entries=[wireframes.pk])
    assert "Select a valid choice" in page_of(response)
    dispute.refresh_from_db()
    assert dispute.status == DisputeStatus.OPEN


def test_regenerating_bills_the_period_again(as_finance, draft, acme):
    response = as_finance.post(url("invoice-regenerate", draft))
    new = Invoice.objects.get()
    assert new.pk != draft.pk and response["Location"] == url("invoice-detail", new)
    assert lines_of(new) == [("Design", "0.33", "45.67"), ("Development", "2.42", "331.08")]
    assert f"Draft #{draft.pk} was billed again" in page_of(as_finance.get(response["Location"]))


def test_deleting_a_draft_asks_first_then_releases_its_time(as_finance, draft, acme):
    confirm = as_finance.get(url("invoice-delete", draft))
    assert confirm.status_code == 200 and "Delete the draft" in page_of(confirm)
    assert Invoice.objects.filter(pk=draft.pk).exists()
    response = as_finance.post(url("invoice-delete", draft), follow=True)
    assert f"Draft #{draft.pk} for Acme Corp was deleted; 3 entries were released" in page_of(response)
    assert not Invoice.objects.exists()
    assert set(TimeEntry.objects.values_list("status", flat=True)) == {EntryStatus.APPROVED}


def test_an_issued_invoice_cannot_be_deleted(as_finance, finalized):
    response = as_finance.post(url("invoice-delete", finalized), follow=True)
    assert "Only a draft can be deleted; void an issued invoice instead." in page_of(response)
    assert Invoice.objects.filter(pk=finalized.pk).exists()


# Issuing actions -----------------------------------------------------------------------------------------------


def test_an_issued_invoice_offers_send_paid_credit_and_void(as_finance, finalized):
    page = page_of(as_finance.get(url("invoice-detail", finalized)))
    for text in ("INV-2026-0001", "1 Apr 2026", "15 Apr 2026", "Send to client", "Mark paid", "Credit note…",
                 "Void…"):
        assert text in page, text
    for button in ("Finalize</button>", "Regenerate", "Delete draft"):
        assert button not in page


def test_sending_emails_the_pdf(as_finance, finalized):
    response = as_finance.post(url("invoice-send", finalized), follow=True)
    assert "INV-2026-0001 was emailed to ap@acme.test, cfo@acme.test with its PDF." in page_of(response)
    [message] = mail.outbox
    [(name, content, mimetype)] = message.attachments
    assert (name, mimetype) == ("INV-2026-0001.pdf", "application/pdf") and content.startswith(b"%PDF")
    finalized.refresh_from_db()
    assert finalized.status == InvoiceStatus.SENT
    assert "Send again" in page_of(as_finance.get(url("invoice-detail", finalized)))


def test_sending_a_draft_is_refused_with_a_message(as_finance, draft):
    response = as_finance.post(url("invoice-send", draft), follow=True)
    assert "is draft: it cannot be sent" in page_of(response)
    assert len(mail.outbox) == 0


def test_marking_paid_records_the_date(as_finance, finalized):
    response = as_finance.post(url("invoice-paid", finalized), {"paid_on": "2026-04-10"}, follow=True)
    assert "INV-2026-0001 was marked paid on 10 Apr 2026." in page_of(response)
    finalized.refresh_from_db()
    assert (finalized.status, finalized.paid_on) == (InvoiceStatus.PAID, dt.date(2026, 4, 10))


@pytest.mark.parametrize(("paid_on", "error"), [
    ("", "This field is required."), ("10.04.2026x", "Enter a valid date."),
    ((timezone.localdate() + dt.timedelta(days=2)).isoformat(), "A payment date cannot be in the future."),
])
def test_a_bad_payment_date_is_refused_on_the_form(as_finance, finalized, paid_on, error):
    response = as_finance.post(url("invoice-paid", finalized), {"paid_on": paid_on})
    assert response.status_code == 200 and error in page_of(response)
    finalized.refresh_from_db()
    assert finalized.status == InvoiceStatus.FINALIZED


def test_marking_a_draft_paid_is_refused_with_a_message(as_finance, draft):
    response = as_finance.post(url("invoice-paid", draft), {"paid_on": "2026-04-10"}, follow=True)
    assert "cannot be marked paid" in page_of(response)


def test_voiding_asks_for_a_reason_then_releases_the_time(as_finance, finalized, finance):
    confirm = as_finance.get(url("invoice-void", finalized))
    assert confirm.status_code == 200 and "Void the invoice" in page_of(confirm)
    refused = as_finance.post(url("invoice-void", finalized), {"reason": "  "})
    assert refused.status_code == 200 and "This field is required." in page_of(refused)
    finalized.refresh_from_db()
    assert finalized.status == InvoiceStatus.FINALIZED
    response = as_finance.post(url("invoice-void", finalized), {"reason": "Billed to the wrong entity."},
                               follow=True)
    assert "INV-2026-0001 is void" in page_of(response)
    finalized.refresh_from_db()
    assert (finalized.status, finalized.void_reason) == (InvoiceStatus.VOID, "Billed to the wrong entity.")
    assert set(TimeEntry.objects.values_list("status", flat=True)) == {EntryStatus.APPROVED}
    assert "Billed to the wrong entity." in page_of(response)


def test_a_paid_invoice_is_not_voided(as_finance, finalized):
    invoice_mark_paid(invoice=finalized, paid_on=dt.date(2026, 4, 10))
    response = as_finance.post(url("invoice-void", finalized), {"reason": "Oops"}, follow=True)
    assert "is paid: issue a credit note instead of voiding it." in page_of(response)
    finalized.refresh_from_db()
    assert finalized.status == InvoiceStatus.PAID


def credit_field(entry) -> str:
    return f"minutes_{entry.pk}"


def test_a_credit_note_reverses_the_chosen_minutes(as_finance, finalized, acme):
    kickoff, api_design, wireframes = acme.entries
    form = page_of(as_finance.get(url("invoice-credit", finalized)))
    assert all(f'name="{credit_field(e)}"' in form for e in acme.entries)
    response = as_finance.post(url("invoice-credit", finalized), {
        credit_field(kickoff): "", credit_field(api_design): "all", credit_field(wireframes): " 10 ",
        "release": "release", "reason": "Client goodwill"})
    note = Invoice.objects.get(kind=InvoiceKind.CREDIT)
    assert response["Location"] == url("invoice-detail", note)
    # -10 min of Design: -22.83; -95 min of Development: -216.92; tax 7.5 % of -239.75 = -17.98.
    assert lines_of(note) == [("Credit: Design", "-0.17", "-22.83"), ("Credit: Development", "-1.58", "-216.92")]
    assert totals(note) == ("-239.75", "-17.98", "-257.73")
    assert (note.number, note.credited_invoice) == ("CN-2026-0001", finalized)
    page = page_of(as_finance.get(response["Location"]))
    assert "Credit note CN-2026-0001 issued for -257.73 USD against INV-2026-0001." in page
    assert "Credits" in page and url("invoice-detail", finalized) in page
    assert "CN-2026-0001" in page_of(as_finance.get(url("invoice-detail", finalized)))
    api_design.refresh_from_db()
    wireframes.refresh_from_db()
    # Released: both may be billed again, the partly credited one for its 10 credited minutes.
    assert (api_design.status, wireframes.status) == (EntryStatus.APPROVED, EntryStatus.APPROVED)
    assert Allocation.objects.get(time_entry=wireframes, reverses__isnull=True).credited_minutes == 10
    # What is left to credit is offered again, and a fully credited entry is not.
    again = page_of(as_finance.get(url("invoice-credit", finalized)))
    assert f'name="{credit_field(api_design)}"' not in again and "fully credited" in again
    assert "all = 10" in again


def test_a_credit_note_can_write_off(as_finance, finalized, acme):
    kickoff = acme.entries[0]
    as_finance.post(url("invoice-credit", finalized), {credit_field(kickoff): "all", "release": "write_off"})
    allocation = Allocation.objects.get(time_entry=kickoff, reverses__isnull=True)
    kickoff.refresh_from_db()
    assert (allocation.written_off, allocation.credited_minutes, kickoff.status) == (True, 50, EntryStatus.INVOICED)


@pytest.mark.parametrize(("value", "message"), [
    ("abc", "Enter whole minutes (up to 95) or “all”."),
    ("-5", "Enter whole minutes (up to 95) or “all”."),
    ("0", "Enter whole minutes (up to 95) or “all”."),
    ("96", "Between 1 and 95 minutes of entry"),
    ("", "Enter the minutes to credit for at least one entry."),
])
def test_bad_credit_minutes_are_refused_and_nothing_is_issued(as_finance, finalized, acme, value, message):
    response = as_finance.post(url("invoice-credit", finalized),
                               {credit_field(acme.entries[1]): value, "release": "release"})
    assert response.status_code == 200 and message in page_of(response)
    assert not Invoice.objects.filter(kind=InvoiceKind.CREDIT).exists()


def test_a_draft_cannot_be_credited(as_finance, draft, acme):
    response = as_finance.post(url("invoice-credit", draft), {credit_field(acme.entries[0]): "all",
                                                              "release": "release"})
    assert response.status_code == 200 and "Only an issued invoice can be credited" in page_of(response)


# The whole flow, as finance and the client would do it ---------------------------------------------------------


def test_run_preview_dispute_resolve_finalize_and_download(as_finance, acme, finance):
    # Finance runs billing for March.
    response = as_finance.post(reverse("billing:billing-run"),
                               {"period_start": "2026-03-01", "period_end": "2026-03-31"}, follow=True)
    [invoice] = Invoice.objects.all()
    assert f"Draft #{invoice.pk}" in page_of(response)
    # ... sends the preview.
    as_finance.post(url("invoice-preview", invoice))
    [preview] = mail.outbox
    assert preview.to == ["ap@acme.test", "cfo@acme.test"]

    # The client opens the emailed link and disputes the Development line.
    browser = HttpClient()
    review = path_from_email(preview)
    development = invoice.lines.get(description="Development")
    assert browser.get(review).status_code == 200
    browser.post(review, {"action": "dispute", "line": development.pk, "comment": "API design was one hour.",
                          "name": "Carla"})
    dispute = LineDispute.objects.get(line=development)

    # Finance cannot finalize yet; it takes the 95-minute entry off the line and releases it for April.
    response = as_finance.post(url("invoice-finalize", invoice), follow=True)
    assert "1 disputed line must be resolved" in page_of(response)
    resolve(as_finance, dispute, resolution="Moved to April.", outcome="release", entries=[acme.entries[1].pk])
    assert totals(invoice) == ("159.84", "11.99", "171.83")

    # The client sees the answer.
    assert "Moved to April." in page_of(browser.get(review))

    # Finance finalizes and downloads the PDF.
    as_finance.post(url("invoice-finalize", invoice))
    invoice.refresh_from_db()
    assert (invoice.status, invoice.number) == (InvoiceStatus.FINALIZED, "INV-2026-0001")
    pdf = as_finance.get(url("invoice-pdf", invoice))
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert pdf["Content-Disposition"] == 'attachment; filename="INV-2026-0001.pdf"'
    # The review link is closed now.
    assert browser.get(review).status_code == 410
    actions = list(InvoiceEvent.objects.filter(invoice=invoice).order_by("id").values_list("action", flat=True))
    assert actions == ["created", "preview_sent", "line_disputed", "dispute_resolved", "finalized"]
