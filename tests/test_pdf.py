"""Invoice and credit-note PDFs: what a client reads on them, page by page, from what the invoice stores."""

import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from djmoney.money import Money
from hypothesis import given, settings
from hypothesis import strategies as st
from pypdf import PdfReader
from reportlab.lib import rl_accel
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase.pdfmetrics import stringWidth

from billing import pdf
from billing.invoicing import billing_run_create
from billing.models import Invoice, InvoiceKind, InvoiceLine, InvoiceStatus, LineKind
from billing.pdf import render_invoice_pdf
from clients.models import LineGrouping
from projects.models import EntryStatus, TimeEntry
from tests.billing_helpers import MARCH, approved_time
from tests.factories import (
    ClientFactory,
    ContractFactory,
    ProjectFactory,
    RateFactory,
    RoleFactory,
    TaskTypeFactory,
    TeamMemberFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def firm(db, settings):
    settings.FIRM_NAME = "Northwind Advisory"
    settings.FIRM_ADDRESS = "12 Harbour Lane\nBristol BS1 4DJ"
    senior = RoleFactory(code="senior", name="Senior Consultant")
    junior = RoleFactory(code="junior", name="Consultant")
    ana = TeamMemberFactory(name="Ana Senior", role=senior)
    ben = TeamMemberFactory(name="Ben Junior", role=junior)
    dev = TaskTypeFactory(code="dev", name="Development")
    design = TaskTypeFactory(code="design", name="Design")
    client = ClientFactory(code="acme", name="Acme Corporation", currency="USD", tax_rate=Decimal("20.00"),
                           address="1 Main Street\nSpringfield, IL 62701", line_grouping=LineGrouping.TASK_TYPE)
    contract = ContractFactory(client=client, number="C-104", currency="USD")
    project = ProjectFactory(contract=contract, code="acme-web", name="Acme website")
    RateFactory(contract=contract, role=senior, hourly_rate=Money("180.00", "USD"))
    RateFactory(contract=contract, role=junior, hourly_rate=Money("110.00", "USD"))
    return type("Firm", (), dict(ana=ana, ben=ben, dev=dev, design=design, client=client, project=project))


def march_invoice(firm) -> Invoice:
    """Lines Design 0.75 h x 110 = 82.50, Design 0.33 h x 180 = 60.00, Development 15.00 h x 180 = 2,700.00."""
    approved_time(firm.ana, firm.project, firm.dev, [(dt.date(2026, 3, d), 300) for d in (2, 3, 4)], "a")
    approved_time(firm.ben, firm.project, firm.design, [(dt.date(2026, 3, 4), 45)], "b")
    approved_time(firm.ana, firm.project, firm.design, [(dt.date(2026, 3, 5), 20)], "c")
    [invoice] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices
    return invoice


def finalize(invoice: Invoice, number: str) -> Invoice:
    """What finalization stores, set directly: the PDF is not concerned with how it got there."""
    Invoice.objects.filter(pk=invoice.pk).update(number=number, status=InvoiceStatus.FINALIZED,
                                                 issue_date=dt.date(2026, 4, 1), due_date=dt.date(2026, 5, 1))
    return fresh(invoice)


def pages_of(pdf: bytes) -> list[str]:
    """Each page's text, whitespace collapsed: a table row reads as its cells separated by spaces."""
    assert pdf.startswith(b"%PDF-")
    return [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(pdf)).pages]


def fresh(invoice: Invoice) -> Invoice:
    """The invoice as a view or task would load it: nothing related cached."""
    return Invoice.objects.get(pk=invoice.pk)


def test_finalized_invoice_shows_parties_lines_totals_and_terms(firm):
    invoice = finalize(march_invoice(firm), "INV-2026-0042")
    assert (invoice.subtotal, invoice.tax, invoice.total) == (Decimal("2842.50"), Decimal("568.50"),
                                                              Decimal("3411.00"))
    [text] = pages_of(render_invoice_pdf(fresh(invoice)))

    for expected in ("Northwind Advisory", "12 Harbour Lane", "Bristol BS1 4DJ",
                     "Acme Corporation", "1 Main Street", "Springfield, IL 62701",
                     "Invoice number INV-2026-0042", "Issue date 01 Apr 2026", "Due date 01 May 2026",
                     "Period 01 Mar 2026 – 31 Mar 2026", "Currency USD",
                     "Subtotal 2,842.50", "Tax (20%) 568.50", "Total USD 3,411.00",
                     "Payment due within 30 days of the issue date, by 01 May 2026.", "Page 1 of 1"):
        assert expected in text, expected
    # The lines in position order, each with quantity, unit rate and amount.
    rows = ["Design 0.75 110.00 82.50", "Design 0.33 180.00 60.00", "Development 15.00 180.00 2,700.00"]
    positions = [text.index(row) for row in rows]
    assert positions == sorted(positions)
    assert text.index(rows[-1]) < text.index("Subtotal")
    assert "DRAFT" not in text
    assert "Time detail" not in text and "Ana Senior" not in text


def test_fee_lines_show_a_quantity_of_one(firm):
    draft = march_invoice(firm)
    InvoiceLine.objects.create(invoice=draft, position=4, kind=LineKind.MILESTONE, description="Milestone: launch",
                               quantity=Decimal("1.00"), unit_rate=Decimal("12500.00"), amount=Decimal("12500.00"))
    [text] = pages_of(render_invoice_pdf(finalize(draft, "INV-2026-0043")))
    assert "Milestone: launch 1 12,500.00 12,500.00" in text


def test_credit_note_names_the_invoice_it_credits_and_shows_negative_amounts(firm, django_assert_num_queries):
    original = finalize(march_invoice(firm), "INV-2026-0042")
    credit = Invoice.objects.create(
        kind=InvoiceKind.CREDIT, credited_invoice=original, client=original.client, currency="USD",
        period_start=MARCH[0], period_end=MARCH[1], tax_rate=Decimal("20.00"), subtotal=Decimal("-2700.00"),
        tax=Decimal("-540.00"), total=Decimal("-3240.00"),
    )
    InvoiceLine.objects.create(invoice=credit, position=1, kind=LineKind.CREDIT, description="Credit: Development",
                               quantity=Decimal("-15.00"), unit_rate=Decimal("180.00"), amount=Decimal("-2700.00"))
    credit = finalize(credit, "CN-2026-0001")
    with django_assert_num_queries(3):   # the client, the lines, the credited invoice
        pdf = render_invoice_pdf(credit)
    [text] = pages_of(pdf)

    assert "Credit note" in text
    for expected in ("Credit note number CN-2026-0001", "Credits invoice INV-2026-0042",
                     "Credit: Development -15.00 180.00 -2,700.00",
                     "Subtotal -2,700.00", "Tax (20%) -540.00", "Total USD -3,240.00",
                     "This credit note corrects invoice INV-2026-0042 of 01 Apr 2026"):
        assert expected in text, expected
    assert "Payment due" not in text


def test_draft_is_marked_draft_and_has_no_number(firm):
    invoice = march_invoice(firm)
    [text] = pages_of(render_invoice_pdf(fresh(invoice)))
    assert "DRAFT" in text
    assert "Draft invoice" in text
    assert "Invoice number" not in text and "Issue date" not in text
    # Still a complete document the client can review.
    assert "Total USD 3,411.00" in text
    assert "Payment due within 30 days of the issue date." in text


def test_a_void_invoice_is_marked_void(firm):
    invoice = finalize(march_invoice(firm), "INV-2026-0047")
    Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.VOID)
    [text] = pages_of(render_invoice_pdf(fresh(invoice)))
    assert "VOID" in text and "Invoice number INV-2026-0047" in text and "DRAFT" not in text


def test_time_detail_appendix_lists_each_lines_entries(firm):
    firm.client.include_time_detail = True
    firm.client.save()
    invoice = finalize(march_invoice(firm), "INV-2026-0044")
    pages = pages_of(render_invoice_pdf(fresh(invoice)))

    assert len(pages) == 2
    assert "Time detail" not in pages[0]
    appendix = pages[1]
    assert "Time detail" in appendix and "Date Team member Task type Description Hours" in appendix
    # Each line heads its own entries in date order: date, member, task type, hours billed.
    expected = ["Line 1 · Design", "04 Mar 2026 Ben Junior Design 0.75",
                "Line 2 · Design", "05 Mar 2026 Ana Senior Design 0.33",
                "Line 3 · Development", "02 Mar 2026 Ana Senior Development 5.00",
                "03 Mar 2026 Ana Senior Development 5.00", "04 Mar 2026 Ana Senior Development 5.00"]
    positions = [appendix.index(row) for row in expected]
    assert positions == sorted(positions)
    assert appendix.endswith("Page 2 of 2")


def test_a_group_of_entries_longer_than_a_page_continues_under_its_heading(firm):
    firm.client.include_time_detail = True
    firm.client.save()
    approved_time(firm.ana, firm.project, firm.dev, [(dt.date(2026, 3, 2 + n % 20), 15) for n in range(90)])
    [invoice] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices
    pages = pages_of(render_invoice_pdf(finalize(invoice, "INV-2026-0048")))

    [line_page, *appendix] = pages
    assert "Development 22.50 180.00 4,050.00" in line_page
    assert len(appendix) >= 2
    assert "Line 1 · Development" in appendix[0] and "(continued)" not in appendix[0]
    assert all("Line 1 · Development (continued)" in page for page in appendix[1:])
    assert sum(page.count(" Ana Senior Development 0.25") for page in appendix) == 90


def test_over_cap_time_says_why_it_is_not_billed(firm):
    firm.client.include_time_detail = True
    firm.client.save()
    firm.project.contract.cap_hours = Decimal("2")
    firm.project.contract.save()
    entries = approved_time(firm.ana, firm.project, firm.dev, [(dt.date(2026, 3, 2), 90), (dt.date(2026, 3, 3), 60),
                                                               (dt.date(2026, 3, 4), 30)])
    # Over-cap entries are held for review; an approver lets them through.
    TimeEntry.objects.filter(pk__in=[e.pk for e in entries]).update(status=EntryStatus.APPROVED)
    [invoice] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices
    [lines, appendix] = pages_of(render_invoice_pdf(finalize(invoice, "INV-2026-0049")))

    assert "Over the cap of contract C-104: not billed 1.00 0.00 0.00" in lines
    assert "03 Mar 2026 Ana Senior Development (0.50 h over the cap, not billed) 0.50" in appendix
    assert "04 Mar 2026 Ana Senior Development (0.50 h over the cap, not billed) 0.00" in appendix


def test_without_time_detail_there_is_no_appendix(firm):
    assert firm.client.include_time_detail is False
    pages = pages_of(render_invoice_pdf(fresh(march_invoice(firm))))
    assert len(pages) == 1
    assert "Time detail" not in pages[0] and "Ben Junior" not in pages[0] and "04 Mar 2026" not in pages[0]


@pytest.fixture
def small_invoice(firm):
    firm.client.include_time_detail = True
    firm.client.save()
    return finalize(march_invoice(firm), "INV-2026-0045")


@pytest.fixture
def long_invoice(firm):
    """300 entries, one line each (detailed grouping), with the time detail appendix."""
    firm.client.line_grouping, firm.client.include_time_detail = LineGrouping.DETAILED, True
    firm.client.save()
    rows = [(dt.date(2026, 3, 2 + n % 27), 15 + n % 4 * 15) for n in range(300)]
    approved_time(firm.ana, firm.project, firm.dev, rows, "long")
    [invoice] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices
    return finalize(invoice, "INV-2026-0300")


def test_a_long_invoice_continues_on_the_next_pages_under_the_same_header(long_invoice):
    assert long_invoice.lines.count() == 300
    pages = pages_of(render_invoice_pdf(fresh(long_invoice)))

    [appendix_start] = [n for n, page in enumerate(pages) if "Time detail" in page]
    line_pages, appendix_pages = pages[:appendix_start], pages[appendix_start:]
    assert len(line_pages) >= 4 and len(appendix_pages) >= 4
    assert all(page.count("Description Quantity Unit rate Amount (USD)") == 1 for page in line_pages)
    assert all(page.count("Date Team member Task type Description Hours") == 1 for page in appendix_pages)
    assert all(page.endswith(f"Page {n} of {len(pages)}") for n, page in enumerate(pages, start=1))
    # Every line once on the line pages and once heading its entry in the appendix; the totals follow the lines.
    assert "".join(line_pages).count("· Ana Senior · Development") == 300
    assert "".join(appendix_pages).count("· Ana Senior · Development") == 300
    assert "".join(appendix_pages).count(" Ana Senior Development ") == 300
    assert "Line 300 · " in appendix_pages[-1]
    # A line's heading never ends a page without its entry under it: each page ends on an entry's hours.
    assert all(re.search(r" \d\.\d\d Page \d+ of \d+$", page) for page in appendix_pages)
    assert f"Total USD {long_invoice.total:,.2f}" in line_pages[-1]
    assert "Subtotal" not in "".join(line_pages[:-1])


def test_query_count_does_not_grow_with_lines_or_entries(small_invoice, long_invoice, django_assert_num_queries):
    assert small_invoice.lines.count() == 3 and long_invoice.lines.count() == 300
    # The client, the lines, the allocations with their entries, members and task types.
    for invoice in (fresh(small_invoice), fresh(long_invoice)):
        with django_assert_num_queries(3):
            render_invoice_pdf(invoice)


def test_long_texts_wrap_inside_their_cells(firm):
    draft = march_invoice(firm)
    words = " ".join(f"word{n}" for n in range(30))
    InvoiceLine.objects.filter(invoice=draft, position=1).update(description=f"{words} {'q' * 100}")
    [text] = pages_of(render_invoice_pdf(finalize(draft, "INV-2026-0046")))
    # Nothing dropped: every word is printed, and the unbreakable run is cut across lines, not clipped.
    assert all(f"word{n}" in text for n in range(30))
    assert "q" * 100 in text.replace(" ", "")
    assert "Subtotal 2,842.50" in text


def test_markup_and_very_long_entry_descriptions_print_safely(firm):
    firm.client.name, firm.client.include_time_detail = "Smith & Sons <UK>", True
    firm.client.save()
    draft = march_invoice(firm)
    TimeEntry.objects.filter(minutes=45).update(description="Workshop <b>prep</b> " + "agenda " * 2000)
    [lines, appendix] = pages_of(render_invoice_pdf(finalize(draft, "INV-2026-0050")))
    assert "Smith & Sons <UK>" in lines
    # Printed as typed, and cut to a dozen lines so the row still fits on a page.
    assert "Workshop <b>prep</b> agenda" in appendix
    assert 50 < appendix.count("agenda") < 200 and "agenda …" in appendix


# --- Measuring and wrapping cell text, as reportlab would ------------------------------------------------------

CELL_TEXT = st.text(alphabet=st.sampled_from(list("abcdefghij KLMNOP.,;'\"-—…é€Ω漢\n\t0123456789Wi")), max_size=300)


@settings(max_examples=300, deadline=None)
@given(text=CELL_TEXT, width=st.floats(min_value=5, max_value=450), font=st.sampled_from([pdf.FONT, pdf.BOLD]))
def test_cell_text_is_measured_and_wrapped_as_reportlab_does(text, width, font):
    # The PDF measures text from cached character widths and wraps a paragraph in one pass; the result must be
    # reportlab's own stringWidth and simpleSplit.
    assert pdf._width(text, font) == pytest.approx(stringWidth(text, font, pdf.CELL_SIZE), abs=1e-9)
    assert pdf._wrap(text, width, font) == simpleSplit(text, font, pdf.CELL_SIZE, width)


def test_reportlab_runs_with_its_c_accelerator():
    # Without it every text width, coordinate and page stream goes through Python: a long invoice's PDF
    # takes about half as long again.
    assert not rl_accel._py_funcs
