"""The invoice console in the admin: read-only pages, a PDF link, and one action per transition via the services."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.contenttypes.models import ContentType
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from djmoney.money import Money

from billing.invoicing import billing_run_create
from billing.lifecycle import invoice_finalize, invoice_send
from billing.models import (
    Allocation,
    ClientMessage,
    DisputeStatus,
    Invoice,
    InvoiceEvent,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
    LineDispute,
    MessageKind,
)
from billing.review import review_dispute
from projects.models import EntryStatus, TimeEntry
from tests.billing_helpers import MARCH, approved_time
from tests.factories import (
    ClientFactory,
    ContactFactory,
    ContractFactory,
    ProjectFactory,
    RateFactory,
    TaskTypeFactory,
)

pytestmark = pytest.mark.django_db

LIST = reverse("admin:billing_invoice_changelist")
DISPUTES = reverse("admin:billing_linedispute_changelist")


def change_url(invoice) -> str:
    return reverse("admin:billing_invoice_change", args=[invoice.pk])


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def act(client, action: str, objects, url: str = LIST, **data):
    return client.post(url, {"action": action, ACTION_CHECKBOX_NAME: [o.pk for o in objects], "index": 0, **data},
                       follow=True)


def confirm(client, action: str, objects, url: str = LIST, **data):
    """What a confirmation page posts back: no `index`, and `post`."""
    return client.post(url, {"action": action, ACTION_CHECKBOX_NAME: [o.pk for o in objects], "post": "yes",
                             **data}, follow=True)


class Firm:
    """Acme: three approved entries of 60, 90 and 30 minutes at 120.00/h with 10 % tax, billed for March."""

    def __init__(self, member, code="acme", name="Acme"):
        self.client = ClientFactory(code=code, name=name, tax_rate=Decimal("10.00"), payment_terms_days=14,
                                    invoice_emails=[f"ap@{code}.test"])
        ContactFactory(client=self.client, email=f"cfo@{code}.test", receives_invoices=True)
        self.project = ProjectFactory(contract=ContractFactory(client=self.client), code=f"{code}-web")
        RateFactory(contract=self.project.contract, hourly_rate=Money("120.00", "USD"))
        dev = TaskTypeFactory(code="dev", name="Development")
        self.entries = approved_time(member, self.project, dev, [(dt.date(2026, 3, 2), 60),
                                                                 (dt.date(2026, 3, 3), 90),
                                                                 (dt.date(2026, 3, 4), 30)], prefix=code)

    def bill(self) -> Invoice:
        [invoice] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1], client=self.client).invoices
        return invoice


@pytest.fixture
def acme(staff_member):
    return Firm(staff_member)


@pytest.fixture
def draft(acme):
    return acme.bill()


@pytest.fixture
def finalized(draft):
    return invoice_finalize(invoice=draft, issue_date=dt.date(2026, 4, 1))


@pytest.fixture
def as_finance(client, finance):
    client.force_login(finance.user)
    return client


def entry_statuses(firm) -> set[str]:
    return set(TimeEntry.objects.filter(pk__in=[e.pk for e in firm.entries]).values_list("status", flat=True))


# --- The list ---------------------------------------------------------------------------------------------

def test_the_list_shows_number_client_period_status_total_and_open_disputes(as_finance, acme, other_staff_member):
    draft = acme.bill()
    line = draft.lines.first()
    review_dispute(invoice=draft, line_id=line.pk, comment="Too long")
    review_dispute(invoice=draft, line_id=line.pk, comment="Also too long")
    closed = review_dispute(invoice=draft, line_id=line.pk, comment="Never mind")
    LineDispute.objects.filter(pk=closed.pk).update(status=DisputeStatus.DISMISSED)
    globex = Firm(other_staff_member, code="globex", name="Globex")
    issued = invoice_finalize(invoice=globex.bill(), issue_date=dt.date(2026, 4, 1))

    response = as_finance.get(LIST)
    cl = response.context["cl"]
    rows = {invoice.pk: invoice for invoice in cl.result_list}
    assert set(rows) == {draft.pk, issued.pk}
    model_admin = cl.model_admin
    assert [model_admin.label(rows[draft.pk]), model_admin.label(rows[issued.pk])] == [
        f"Draft #{draft.pk}", "INV-2026-0001"]
    assert model_admin.period(rows[draft.pk]) == "01 Mar 2026 – 31 Mar 2026"
    assert model_admin.total_due(rows[draft.pk]) == "396.00 USD"
    assert (rows[draft.pk].open_disputes, rows[issued.pk].open_disputes) == (2, 0)
    page = response.content.decode()
    for text in (f"Draft #{draft.pk}", "INV-2026-0001", "Acme", "Globex", "396.00 USD", "Finalized"):
        assert text in page, text


def test_the_list_filters_by_status_client_kind_and_period(as_finance):
    acme, globex = ClientFactory(code="acme", name="Acme"), ClientFactory(code="globex", name="Globex")

    def make(customer, end, **fields):
        return Invoice.objects.create(client=customer, currency="USD", period_start=end.replace(day=1),
                                      period_end=end, **fields)

    march = make(acme, dt.date(2026, 3, 31))
    april = make(acme, dt.date(2026, 4, 30), status=InvoiceStatus.FINALIZED, number="INV-2026-0001")
    other = make(globex, dt.date(2026, 3, 31))
    credit = make(acme, dt.date(2026, 4, 30), status=InvoiceStatus.FINALIZED, kind=InvoiceKind.CREDIT,
                  number="CN-2026-0001", credited_invoice=april)

    def shown(**query):
        response = as_finance.get(LIST, query)
        assert response.status_code == 200
        return set(response.context["cl"].result_list)

    assert shown() == {march, april, other, credit}
    assert shown(status__exact="draft") == {march, other}
    assert shown(client__id__exact=globex.pk) == {other}
    assert shown(kind__exact="credit") == {credit}
    assert shown(kind__exact="invoice", client__id__exact=acme.pk) == {march, april}
    assert shown(period_end__year=2026, period_end__month=4) == {april, credit}
    assert shown(q="INV-2026") == {april}
    assert shown(_facets="True", status__exact="finalized") == {april, credit}


def _list_queries(client, invoices: int) -> int:
    customer = ClientFactory(code=f"client-{invoices}", name=f"Client {invoices}")
    for n in range(invoices):
        invoice = Invoice.objects.create(client=ClientFactory() if n % 2 else customer, currency="USD",
                                         period_start=dt.date(2026, 3, 1), period_end=dt.date(2026, 3, 31))
        line = InvoiceLine.objects.create(invoice=invoice, position=1, kind="time", description="Work",
                                          quantity=1, unit_rate=1, amount=1)
        LineDispute.objects.create(line=line, comment="Why?")
    ContentType.objects.clear_cache()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(LIST)
    assert response.status_code == 200
    assert all(invoice.open_disputes == 1 for invoice in response.context["cl"].result_list)
    return len(queries)


def test_the_list_costs_the_same_queries_for_2_invoices_as_for_30(as_finance):
    few = _list_queries(as_finance, 2)
    Invoice.objects.all().delete()
    many = _list_queries(as_finance, 30)
    assert few == many
    # Session, user, member, permissions (2), the client filter, the date hierarchy, count (2), rows.
    assert few <= 14


def test_the_list_joins_only_the_client_and_writes_django_s_checkboxes(as_finance, draft):
    with CaptureQueriesContext(connection) as queries:
        page = as_finance.get(LIST).content.decode()
    [rows] = [query["sql"] for query in queries if query["sql"].startswith('SELECT "billing_invoice"."id"')]
    # The contract, project, billing run and credited invoice are for an invoice's own page.
    assert '"clients_client"' in rows
    assert not any(table in rows for table in ('"clients_contract"', '"projects_project"', '"billing_billingrun"'))
    model_admin = admin.site._registry[Invoice]
    checkbox = model_admin.action_checkbox(draft)
    assert checkbox == admin.ModelAdmin.action_checkbox(model_admin, draft) and checkbox in page


def test_management_reads_invoices_but_has_no_actions(client, management, finalized):
    client.force_login(management.user)
    response = client.get(LIST)
    assert list(response.context["cl"].result_list) == [finalized]
    assert response.context["cl"].model_admin.get_actions(response.wsgi_request) == {}
    assert client.get(change_url(finalized)).status_code == 200
    act(client, "mark_paid", [finalized])
    finalized.refresh_from_db()
    assert finalized.status == InvoiceStatus.FINALIZED


def test_finance_gets_every_transition_and_no_stock_delete(as_finance):
    response = as_finance.get(LIST)
    actions = response.context["cl"].model_admin.get_actions(response.wsgi_request)
    assert set(actions) == {"send_preview", "finalize", "send", "mark_paid", "void", "regenerate_drafts",
                            "delete_drafts"}


# --- The change page ----------------------------------------------------------------------------------------

def test_the_invoice_page_is_read_only_with_lines_allocations_disputes_events_and_pdf(as_finance, draft):
    line = draft.lines.first()
    review_dispute(invoice=draft, line_id=line.pk, comment="The API design took one hour")
    response = as_finance.get(change_url(draft))
    assert response.status_code == 200
    assert not response.context["has_change_permission"]
    page = response.content.decode()
    assert 'name="_save"' not in page
    assert "3 allocations of time entries (3 live, 0 written off)" in page
    assert "The API design took one hour" in page and f"{DISPUTES}?invoice={draft.pk}" in page
    assert reverse("admin:billing_invoice_pdf", args=[draft.pk]) in page
    assert "line_disputed" in page and "created" in page  # the events inline
    assert "396.00" in page and line.description in page


def test_a_finalized_invoice_cannot_be_changed_through_the_admin(as_finance, finalized):
    before = Invoice.objects.values().get(pk=finalized.pk)
    line = finalized.lines.first()
    response = as_finance.post(change_url(finalized), {
        "number": "INV-2026-0999", "status": "draft", "total": "1.00", "subtotal": "1.00", "void_reason": "typed",
        "lines-TOTAL_FORMS": "1", "lines-INITIAL_FORMS": "1", "lines-0-id": line.pk, "lines-0-amount": "1.00",
    })
    assert response.status_code == 403
    assert Invoice.objects.values().get(pk=finalized.pk) == before
    line.refresh_from_db()
    assert line.amount != Decimal("1.00")
    # Nor deleted: not through its page, and not through the bulk action.
    assert as_finance.post(reverse("admin:billing_invoice_delete", args=[finalized.pk]),
                           {"post": "yes"}).status_code == 403
    assert Invoice.objects.filter(pk=finalized.pk).exists()


# --- The PDF ----------------------------------------------------------------------------------------------

def test_the_pdf_of_a_draft_downloads(as_finance, draft):
    response = as_finance.get(reverse("admin:billing_invoice_pdf", args=[draft.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert f'filename="draft-{draft.pk}.pdf"' in response["Content-Disposition"]
    assert response.content.startswith(b"%PDF-")


def test_the_pdf_of_an_issued_invoice_is_its_stored_file(client, management, finalized):
    client.force_login(management.user)
    response = client.get(reverse("admin:billing_invoice_pdf", args=[finalized.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert 'filename="INV-2026-0001.pdf"' in response["Content-Disposition"]
    with finalized.pdf.open("rb") as stored:
        assert response.content == stored.read()


def test_the_pdf_is_not_for_staff_and_unknown_invoices_are_404(client, as_finance, staff_member, draft):
    assert as_finance.get(reverse("admin:billing_invoice_pdf", args=[draft.pk + 100])).status_code == 404
    client.force_login(staff_member.user)
    response = client.get(reverse("admin:billing_invoice_pdf", args=[draft.pk]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))


# --- Transitions ----------------------------------------------------------------------------------------------

def test_send_preview_emails_the_review_link(as_finance, finance, draft):
    response = act(as_finance, "send_preview", [draft])
    assert f"Preview sent: Draft #{draft.pk} to ap@acme.test, cfo@acme.test." in messages_of(response)
    [email] = mail.outbox
    assert email.to == ["ap@acme.test", "cfo@acme.test"] and "/billing/review/" in email.body
    draft.refresh_from_db()
    assert draft.review_sent_at is not None and draft.review_expires_at > timezone.now()
    assert InvoiceEvent.objects.get(invoice=draft, action="preview_sent").actor == finance.user


def test_send_preview_without_recipients_is_refused_with_a_message(as_finance, acme, draft):
    acme.client.invoice_emails = []
    acme.client.save()
    acme.client.contacts.update(receives_invoices=False)
    response = act(as_finance, "send_preview", [draft])
    assert f"Draft #{draft.pk}: Acme has no invoice email address or opted-in contact." in messages_of(response)
    assert mail.outbox == [] and not ClientMessage.objects.exists()


def test_finalize_numbers_each_draft_and_reports_the_refused(as_finance, finance, draft, other_staff_member):
    globex = Firm(other_staff_member, code="globex", name="Globex")
    disputed = globex.bill()
    review_dispute(invoice=disputed, line_id=disputed.lines.first().pk, comment="Not ours")

    response = act(as_finance, "finalize", [draft, disputed])
    texts = messages_of(response)
    draft.refresh_from_db()
    due = draft.issue_date + dt.timedelta(days=14)
    assert f"Finalized: Draft #{draft.pk} as INV-{draft.issue_date.year}-0001, due {due:%d %b %Y}." in texts
    assert (f"Draft #{disputed.pk}: 1 disputed line must be resolved before this invoice can be finalized."
            in texts)
    assert (draft.status, draft.number) == (InvoiceStatus.FINALIZED, f"INV-{draft.issue_date.year}-0001")
    assert draft.pdf.name.endswith(".pdf")
    assert InvoiceEvent.objects.get(invoice=draft, action="finalized").actor == finance.user
    disputed.refresh_from_db()
    assert disputed.status == InvoiceStatus.DRAFT and disputed.number is None


def test_send_emails_the_invoice_with_its_pdf(as_finance, finalized, draft):
    response = act(as_finance, "send", [finalized])
    assert "Emailed with the PDF: INV-2026-0001." in messages_of(response)
    [email] = mail.outbox
    [(name, content, mimetype)] = email.attachments
    assert (name, mimetype, content[:5]) == ("INV-2026-0001.pdf", "application/pdf", b"%PDF-")
    finalized.refresh_from_db()
    assert finalized.status == InvoiceStatus.SENT
    assert ClientMessage.objects.get(kind=MessageKind.INVOICE).invoice == finalized


def test_a_draft_cannot_be_sent_or_paid(as_finance, draft):
    response = act(as_finance, "send", [draft])
    assert f"Draft #{draft.pk}: Invoice {draft.pk} is draft: it cannot be sent." in messages_of(response)
    response = act(as_finance, "mark_paid", [draft])
    assert any("cannot be marked paid" in text for text in messages_of(response))
    draft.refresh_from_db()
    assert draft.status == InvoiceStatus.DRAFT and mail.outbox == []


def test_mark_paid_today(as_finance, finalized):
    invoice_send(invoice=finalized)
    response = act(as_finance, "mark_paid", [finalized])
    today = timezone.localdate()
    assert f"Marked paid on {today:%d %b %Y}: INV-2026-0001." in messages_of(response)
    finalized.refresh_from_db()
    assert (finalized.status, finalized.paid_on) == (InvoiceStatus.PAID, today)


def test_void_asks_for_a_reason_then_releases_the_time(as_finance, finance, acme, finalized):
    page = act(as_finance, "void", [finalized])
    assert page.templates[0].name == "admin/billable/confirm_action.html"
    assert "INV-2026-0001 · Acme · 396.00 USD" in page.content.decode()

    blank = confirm(as_finance, "void", [finalized], reason="  ")
    assert "Say why the invoice is voided." in blank.content.decode()
    finalized.refresh_from_db()
    assert finalized.status == InvoiceStatus.FINALIZED

    done = confirm(as_finance, "void", [finalized], reason="Billed to the wrong entity")
    assert "Voided; their time and fees may be billed again: INV-2026-0001." in messages_of(done)
    finalized.refresh_from_db()
    assert (finalized.status, finalized.void_reason) == (InvoiceStatus.VOID, "Billed to the wrong entity")
    assert entry_statuses(acme) == {EntryStatus.APPROVED}
    assert not Allocation.objects.filter(line__invoice=finalized, is_live=True).exists()
    assert InvoiceEvent.objects.get(invoice=finalized, action="voided").actor == finance.user


def test_a_paid_invoice_is_not_voided(as_finance, finalized):
    invoice_send(invoice=finalized)
    act(as_finance, "mark_paid", [finalized])
    response = confirm(as_finance, "void", [finalized], reason="Oops")
    assert "INV-2026-0001: Invoice INV-2026-0001 is paid: issue a credit note instead of voiding it." in (
        messages_of(response))
    finalized.refresh_from_db()
    assert finalized.status == InvoiceStatus.PAID


def test_regenerate_bills_the_period_again(as_finance, acme, draft):
    RateFactory(contract=acme.project.contract, hourly_rate=Money("150.00", "USD"), effective_from=dt.date(2026, 3, 1),
                member=acme.entries[0].member)
    TimeEntry.objects.filter(pk__in=[e.pk for e in acme.entries]).update(rate=Money("150.00", "USD"))
    response = act(as_finance, "regenerate_drafts", [draft])
    [new] = Invoice.objects.all()
    assert new.pk != draft.pk and new.status == InvoiceStatus.DRAFT
    assert f"Billed again: Draft #{draft.pk} became Draft #{new.pk}." in messages_of(response)
    assert set(Allocation.objects.filter(line__invoice=new).values_list("time_entry_id", flat=True)) == {
        e.pk for e in acme.entries}


def test_regenerating_an_issued_invoice_is_refused(as_finance, finalized):
    response = act(as_finance, "regenerate_drafts", [finalized])
    assert any(text.startswith("INV-2026-0001: Only a draft can be deleted") for text in messages_of(response))
    assert Invoice.objects.get().pk == finalized.pk


def test_delete_drafts_confirms_then_deletes_through_the_service(as_finance, acme, draft, other_staff_member):
    globex = Firm(other_staff_member, code="globex", name="Globex")
    issued = invoice_finalize(invoice=globex.bill())

    page = act(as_finance, "delete_drafts", [draft, issued])
    assert page.templates[0].name == "admin/billable/confirm_action.html"
    assert Invoice.objects.count() == 2

    done = confirm(as_finance, "delete_drafts", [draft, issued])
    texts = messages_of(done)
    assert f"Deleted: Draft #{draft.pk} (3 entries released)." in texts
    assert f"{issued.number}: Only a draft can be deleted; void an issued invoice instead." in texts
    assert list(Invoice.objects.all()) == [issued]
    assert entry_statuses(acme) == {EntryStatus.APPROVED}
    assert entry_statuses(globex) == {EntryStatus.INVOICED}


def test_a_draft_deleted_from_its_page_goes_through_the_service(as_finance, acme, draft):
    url = reverse("admin:billing_invoice_delete", args=[draft.pk])
    page = as_finance.get(url)
    assert page.status_code == 200
    assert "3 time entries are released for the next run" in page.content.decode()
    assert as_finance.post(url, {"post": "yes"}).status_code == 302
    assert not Invoice.objects.exists()
    assert entry_statuses(acme) == {EntryStatus.APPROVED}


# --- Disputes -------------------------------------------------------------------------------------------------

def test_a_dispute_is_dismissed_with_a_resolution_and_the_draft_can_then_be_finalized(as_finance, finance, draft):
    line = draft.lines.first()
    dispute = review_dispute(invoice=draft, line_id=line.pk, comment="Too many hours")
    other = review_dispute(invoice=draft, line_id=line.pk, comment="Really")

    listed = as_finance.get(DISPUTES, {"invoice": draft.pk})
    assert set(listed.context["cl"].result_list) == {dispute, other}
    assert as_finance.get(DISPUTES, {"invoice": draft.pk + 100}).context["cl"].result_list.count() == 0

    page = act(as_finance, "dismiss", [dispute], url=DISPUTES)
    assert page.templates[0].name == "admin/billable/confirm_action.html"
    assert "Too many hours" in page.content.decode()
    blank = confirm(as_finance, "dismiss", [dispute], url=DISPUTES, resolution="")
    assert "Record how the dispute was resolved." in blank.content.decode()
    dispute.refresh_from_db()
    assert dispute.status == DisputeStatus.OPEN

    done = confirm(as_finance, "dismiss", [dispute, other], url=DISPUTES,
                   resolution="Timesheets confirmed with the client")
    assert "Dismissed 2 disputes; the lines stand as billed." in messages_of(done)
    dispute.refresh_from_db()
    assert (dispute.status, dispute.resolution, dispute.resolved_by) == (
        DisputeStatus.DISMISSED, "Timesheets confirmed with the client", finance.user)
    assert InvoiceEvent.objects.filter(invoice=draft, action="dispute_dismissed").count() == 2
    line.refresh_from_db()
    assert line.amount == Decimal("360.00")

    act(as_finance, "finalize", [draft])
    draft.refresh_from_db()
    assert draft.status == InvoiceStatus.FINALIZED


def test_a_closed_dispute_is_reported_not_dismissed_again(as_finance, draft):
    dispute = review_dispute(invoice=draft, line_id=draft.lines.first().pk, comment="Too many hours")
    LineDispute.objects.filter(pk=dispute.pk).update(status=DisputeStatus.RESOLVED, resolution="Fixed")
    response = confirm(as_finance, "dismiss", [dispute], url=DISPUTES, resolution="Again")
    assert any("This dispute is already closed." in text for text in messages_of(response))
    dispute.refresh_from_db()
    assert (dispute.status, dispute.resolution) == (DisputeStatus.RESOLVED, "Fixed")


def test_management_cannot_dismiss_disputes(client, management, draft):
    dispute = review_dispute(invoice=draft, line_id=draft.lines.first().pk, comment="Too many hours")
    client.force_login(management.user)
    response = client.get(DISPUTES)
    assert response.context["cl"].model_admin.get_actions(response.wsgi_request) == {}
    confirm(client, "dismiss", [dispute], url=DISPUTES, resolution="No")
    dispute.refresh_from_db()
    assert dispute.status == DisputeStatus.OPEN
