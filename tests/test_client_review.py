"""The client's review page: /billing/review/<token>/ (billing:client-review), no login, the signed link is the key."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.conf import settings
from django.core import mail
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from djmoney.money import Money

from billing.invoicing import billing_run_create
from billing.lifecycle import invoice_finalize
from billing.models import DisputeStatus, Invoice, InvoiceEvent, LineDispute
from billing.pipeline import TimeEntryInput, ingest
from billing.review import invoice_send_preview, review_dispute, review_token
from clients.models import LineGrouping
from projects.models import EntrySource, EntryStatus, TimeEntry
from tests.billing_helpers import MARCH
from tests.factories import (
    ClientFactory,
    ContactFactory,
    ContractFactory,
    ProjectFactory,
    RateFactory,
    TaskTypeFactory,
)

pytestmark = pytest.mark.django_db


class Acme:
    """A March draft for Acme at 137.00/h with 7.5 % tax, three entries on two lines:

    Design       20 min -> 0.33 h, 45.67
    Development  50 + 95 = 145 min -> 2.42 h, 331.08     subtotal 376.75, tax 28.26, total 405.01
    """

    def __init__(self, member, *, grouping=LineGrouping.TASK_TYPE, code="acme", name="Acme Corp", entries=None):
        self.member = member
        self.client = ClientFactory(code=code, name=name, tax_rate=Decimal("7.50"), line_grouping=grouping,
                                    invoice_emails=[f"ap@{code}.test"], payment_terms_days=14)
        ContactFactory(client=self.client, email=f"cfo@{code}.test", receives_invoices=True)
        ContactFactory(client=self.client, email=f"pm@{code}.test", receives_invoices=False)
        self.project = ProjectFactory(contract=ContractFactory(client=self.client, number=f"C-{code}"),
                                      code=f"{code}-web", name=f"{name} website")
        RateFactory(contract=self.project.contract, hourly_rate=Money("137.00", "USD"))
        self.dev = TaskTypeFactory(code="dev", name="Development")
        self.design = TaskTypeFactory(code="design", name="Design")
        rows = entries or [(self.dev, dt.date(2026, 3, 2), 50, "Kick-off workshop"),
                           (self.dev, dt.date(2026, 3, 3), 95, "API design"),
                           (self.design, dt.date(2026, 3, 4), 20, "Wireframes")]
        self.entries = log_time(member, self.project, rows, prefix=code)

    def bill(self, user=None) -> Invoice:
        [invoice] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1], client=self.client,
                                       user=user).invoices
        return invoice


def log_time(member, project, rows, prefix="t") -> list[TimeEntry]:
    """(task type, day, minutes, description) rows, stored and approved through the pipeline."""
    inputs = [TimeEntryInput(member_id=member.id, project_id=project.id, task_type_id=task.id, work_date=day,
                             minutes=minutes, description=text, external_id=f"{prefix}-{n}")
              for n, (task, day, minutes, text) in enumerate(rows)]
    result = ingest(inputs, EntrySource.API)
    assert not result.rejected, [r.errors for r in result.rejected]
    entries = list(TimeEntry.objects.filter(pk__in=[e.pk for e in result.by_index.values()]).order_by("id"))
    assert {e.status for e in entries} == {EntryStatus.APPROVED}
    return entries


def review_path(invoice: Invoice) -> str:
    return reverse("billing:client-review", args=[review_token(invoice)])


def path_from_email(message) -> str:
    """The review link as the client gets it, made local for the test client."""
    [url] = re.findall(re.escape(settings.SITE_URL) + r"/billing/review/\S+", message.body)
    return url.removeprefix(settings.SITE_URL)


def altered(token: str) -> str:
    """The same token with one character changed."""
    position = len(token) // 2
    replacement = "A" if token[position] != "A" else "B"
    return token[:position] + replacement + token[position + 1:]


@pytest.fixture
def acme(staff_member):
    return Acme(staff_member)


@pytest.fixture
def draft(acme):
    """Acme's draft with the preview sent, so its link is open."""
    return invoice_send_preview(invoice=acme.bill())


def lines_of(invoice: Invoice):
    return [(line.description, str(line.quantity), str(line.amount)) for line in invoice.lines.order_by("position")]


def test_the_url_has_its_name():
    assert reverse("billing:client-review", args=["abc:def"]) == "/billing/review/abc:def/"


def test_a_valid_link_shows_the_lines_with_their_time_and_the_totals(client, draft, acme):
    response = client.get(review_path(draft))
    assert response.status_code == 200
    page = response.content.decode()
    assert settings.FIRM_NAME in page and "Acme Corp" in page
    assert "1 Mar 2026" in page and "31 Mar 2026" in page
    # Each line: description, quantity, unit rate, amount.
    for text in ("Design", "0.33", "45.67", "Development", "2.42", "331.08", "137.00"):
        assert text in page
    # The time behind the lines: date, member, task type, description, hours.
    for text in ("2 Mar 2026", "3 Mar 2026", "4 Mar 2026", "Sam Staff", "Kick-off workshop", "API design",
                 "Wireframes", "0.83", "1.58"):
        assert text in page
    assert ">376.75<" in page and ">28.26<" in page and "405.01 USD" in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert '<meta name="robots" content="noindex, nofollow">' in page


def test_accepting_records_when_and_who_then_redirects_back(client, draft):
    path = review_path(draft)
    response = client.post(path, {"action": "accept", "name": "  Carla CFO "})
    assert response.status_code == 302 and response["Location"] == path
    draft.refresh_from_db()
    assert draft.accepted_at is not None and draft.accepted_by == "Carla CFO"
    assert InvoiceEvent.objects.filter(invoice=draft, action="accepted_by_client").count() == 1
    page = client.get(path).content.decode()
    assert "you accepted this invoice" in page and "by Carla CFO" in page
    assert 'value="accept"' not in page


def test_accepting_without_a_name_is_fine(client, draft):
    client.post(review_path(draft), {"action": "accept"})
    draft.refresh_from_db()
    assert draft.accepted_at is not None and draft.accepted_by == ""


def test_disputing_a_line_records_the_comment_and_shows_it(client, draft):
    line = draft.lines.get(description="Development")
    path = review_path(draft)
    response = client.post(path, {"action": "dispute", "line": line.pk, "comment": "The workshop was 30 minutes.",
                                  "name": "Carla"})
    assert response.status_code == 302 and response["Location"] == f"{path}#line-{line.pk}"
    dispute = LineDispute.objects.get()
    assert (dispute.line, dispute.comment, dispute.raised_by, dispute.status) == (
        line, "The workshop was 30 minutes.", "Carla", DisputeStatus.OPEN)
    page = client.get(path).content.decode()
    assert "we have your comment" in page and "The workshop was 30 minutes." in page and "Disputed" in page


def test_a_dispute_withdraws_an_earlier_acceptance(client, draft):
    path = review_path(draft)
    client.post(path, {"action": "accept", "name": "Carla"})
    client.post(path, {"action": "dispute", "line": draft.lines.first().pk, "comment": "Wrong rate."})
    draft.refresh_from_db()
    assert draft.accepted_at is None
    # And while the dispute is open the invoice cannot be accepted.
    response = client.post(path, {"action": "accept"}, follow=True)
    assert "A disputed line is still open" in response.content.decode()
    draft.refresh_from_db()
    assert draft.accepted_at is None


def test_a_dispute_needs_a_comment(client, draft):
    line = draft.lines.first()
    response = client.post(review_path(draft), {"action": "dispute", "line": line.pk, "comment": "  "})
    assert response.status_code == 200
    assert "Tell us what is wrong with this line." in response.content.decode()
    assert not LineDispute.objects.exists()


def test_a_line_of_another_invoice_cannot_be_disputed_through_this_link(client, draft, other_staff_member):
    other = invoice_send_preview(invoice=Acme(other_staff_member, code="globex", name="Globex").bill())
    foreign_line = other.lines.first()
    response = client.post(review_path(draft), {"action": "dispute", "line": foreign_line.pk, "comment": "No."},
                           follow=True)
    assert "That line is not on this invoice." in response.content.decode()
    assert not LineDispute.objects.exists()


def test_an_unknown_action_changes_nothing(client, draft):
    response = client.post(review_path(draft), {"action": "pay"}, follow=True)
    assert "Choose to accept the invoice or to dispute a line." in response.content.decode()
    draft.refresh_from_db()
    assert draft.accepted_at is None and not LineDispute.objects.exists()


def test_an_altered_link_is_refused_with_403_and_records_nothing(client, draft):
    token = altered(review_token(draft))
    path = reverse("billing:client-review", args=[token])
    response = client.get(path)
    assert response.status_code == 403
    assert "This review link is not valid" in response.content.decode()
    assert client.post(path, {"action": "accept", "name": "Mallory"}).status_code == 403
    assert client.post(path, {"action": "dispute", "line": draft.lines.first().pk,
                              "comment": "x"}).status_code == 403
    draft.refresh_from_db()
    assert draft.accepted_at is None and not LineDispute.objects.exists()


def test_a_forged_link_is_refused_with_403(client, draft):
    response = client.get(reverse("billing:client-review", args=["not-a-token"]))
    assert response.status_code == 403


def test_an_expired_link_is_gone(client, draft):
    Invoice.objects.filter(pk=draft.pk).update(review_expires_at=timezone.now() - dt.timedelta(minutes=1))
    path = review_path(draft)
    response = client.get(path)
    assert response.status_code == 410
    assert "This review link has expired" in response.content.decode()
    assert client.post(path, {"action": "accept"}).status_code == 410
    draft.refresh_from_db()
    assert draft.accepted_at is None


def test_a_draft_never_sent_for_review_is_not_open(client, acme):
    invoice = acme.bill()
    assert client.get(review_path(invoice)).status_code == 410


def test_a_finalized_invoice_is_no_longer_open_for_review(client, draft):
    path = review_path(draft)
    invoice_finalize(invoice=draft)
    response = client.get(path)
    assert response.status_code == 410
    assert "no longer open for review" in response.content.decode()
    assert client.post(path, {"action": "dispute", "line": draft.lines.first().pk, "comment": "x"}).status_code == 410
    assert not LineDispute.objects.exists()


def test_a_deleted_draft_is_gone(client, draft):
    from billing.invoicing import invoice_draft_delete

    path = review_path(draft)
    invoice_draft_delete(invoice=draft)
    assert client.get(path).status_code == 410


def test_a_link_for_one_invoice_never_opens_another(client, draft, other_staff_member):
    other = invoice_send_preview(invoice=Acme(other_staff_member, code="globex", name="Globex").bill())
    page = client.get(review_path(draft)).content.decode()
    assert "Acme Corp" in page and "Globex" not in page
    page = client.get(review_path(other)).content.decode()
    assert "Globex" in page and "Acme Corp" not in page
    # Pointing A's token at B's id breaks the signature.
    token = review_token(draft)
    payload, rest = token.split(":", 1)
    forged_payload = review_token(other).split(":", 1)[0]
    assert forged_payload != payload
    response = client.get(reverse("billing:client-review", args=[f"{forged_payload}:{rest}"]))
    assert response.status_code == 403


def test_the_emailed_link_opens_the_page(client, acme):
    invoice = acme.bill()
    invoice_send_preview(invoice=invoice)
    [message] = mail.outbox
    assert message.to == ["ap@acme.test", "cfo@acme.test"]
    response = client.get(path_from_email(message))
    assert response.status_code == 200 and "Acme Corp" in response.content.decode()


def test_csrf_protection_stays_on(draft):
    browser = HttpClient(enforce_csrf_checks=True)
    path = review_path(draft)
    assert browser.post(path, {"action": "accept"}).status_code == 403
    draft.refresh_from_db()
    assert draft.accepted_at is None
    # With the token from the page, the same post goes through.
    page = browser.get(path).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
    assert browser.post(path, {"action": "accept", "csrfmiddlewaretoken": token}).status_code == 302
    draft.refresh_from_db()
    assert draft.accepted_at is not None


def _queries_for_page(client, member, entries: int, code: str) -> int:
    # Detailed grouping: one line per entry, so the page has as many lines as entries.
    task = TaskTypeFactory(code="dev", name="Development")
    rows = [(task, dt.date(2026, 3, 1) + dt.timedelta(days=n % 28), 15 + n, f"Entry {n}") for n in range(entries)]
    acme = Acme(member, grouping=LineGrouping.DETAILED, code=code, name=code.title(), entries=rows)
    invoice = invoice_send_preview(invoice=acme.bill())
    assert invoice.lines.count() == entries
    LineDispute.objects.create(line=invoice.lines.first(), comment="Too long")
    path = review_path(invoice)
    client.get(path)  # warm up: the session and anything cached once per process
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200 and response.content.decode().count("Dispute this line") == entries
    return len(queries)


def test_the_page_costs_the_same_queries_for_2_lines_as_for_30(client, staff_member, other_staff_member):
    few = _queries_for_page(client, staff_member, 2, "small")
    many = _queries_for_page(client, other_staff_member, 30, "large")
    # The invoice; its lines; their time (entries, members, task types joined); their disputes.
    assert few == many == 4


def test_taking_covered_time_off_a_retainer_fee_line_keeps_the_fee(staff_member, finance):
    """The March retainer (100.00 for 1 hour) covers two 30-minute entries; the client disputes one of them.

    The fee is owed whatever time it covers: the line shows 30 minutes fewer and still bills 100.00.
    """
    from billing.models import LineKind
    from billing.review import dispute_resolve
    from clients.models import BillingType

    contract = ContractFactory(billing_type=BillingType.RETAINER, retainer_hours=Decimal("1.00"),
                               retainer_amount=Money("100.00", "USD"))
    project = ProjectFactory(contract=contract, code="acme-care")
    RateFactory(contract=contract, hourly_rate=Money("120.00", "USD"))
    dev = TaskTypeFactory(code="dev", name="Development")
    first, second = log_time(staff_member, project, [(dev, dt.date(2026, 3, 2), 30, "Patching"),
                                                     (dev, dt.date(2026, 3, 3), 30, "Upgrade")])
    [invoice] = billing_run_create(period_start=dt.date(2026, 3, 1), period_end=dt.date(2026, 3, 31)).invoices
    fee = invoice.lines.get(kind=LineKind.RETAINER_FEE)
    assert (fee.minutes, fee.amount, invoice.subtotal) == (60, Decimal("100.00"), Decimal("100.00"))

    dispute = review_dispute(invoice=invoice, line_id=fee.id, comment="We did not ask for this on the 3rd.")
    dispute_resolve(dispute=dispute, user=finance.user, resolution="Taken off; the retainer stands.",
                    remove_entry_ids=[second.id], release=False)

    fee.refresh_from_db()
    invoice.refresh_from_db()
    assert (fee.minutes, fee.quantity, fee.amount) == (30, Decimal("1.00"), Decimal("100.00"))
    assert invoice.subtotal == Decimal("100.00")


def test_time_written_off_in_a_dispute_stays_written_off_when_the_draft_is_regenerated(draft, acme, finance):
    """Development: 50 + 95 minutes; the client disputes the 95-minute API design and finance writes it off."""
    from django.core.exceptions import ValidationError

    from billing.invoicing import invoice_draft_delete, invoice_draft_regenerate
    from billing.models import Allocation
    from billing.review import dispute_resolve

    api_design = acme.entries[1]
    development = draft.lines.get(description="Development")
    dispute = review_dispute(invoice=draft, line_id=development.id, comment="The API design was your mistake.")
    dispute_resolve(dispute=dispute, user=finance.user, resolution="Written off.", remove_entry_ids=[api_design.id],
                    release=False)

    # Deleting would bill the written-off time again: refused, naming the entry, and nothing changes.
    with pytest.raises(ValidationError, match=f"written off while resolving disputes \\(entries {api_design.id}\\)"):
        invoice_draft_delete(invoice=draft, user=finance.user)
    assert Invoice.objects.filter(pk=draft.pk).exists()

    [fresh] = invoice_draft_regenerate(invoice=draft, user=finance.user).invoices

    # Development is the 50 minutes only (0.83 h x 137.00 = 114.17) and Design 45.67.
    assert lines_of(fresh) == [("Design", "0.33", "45.67"), ("Development", "0.83", "114.17")]
    assert fresh.subtotal == Decimal("159.84")
    kept = Allocation.objects.get(line__invoice=fresh, time_entry=api_design)
    assert (kept.is_live, kept.written_off, kept.minutes, kept.amount) == (True, True, 0, Decimal("0.00"))
    assert TimeEntry.objects.get(pk=api_design.pk).status == EntryStatus.INVOICED
    assert billing_run_create(period_start=MARCH[0], period_end=MARCH[1], client=acme.client).invoices == []
