"""PDF: an issued invoice with 1,000 lines and a 5,000-entry time appendix (billing.pdf.render_invoice_pdf).

Baseline: reportlab building the same rows as bare tables: the lines and the appendix's entries read
with two plain SQL queries, every cell a str() of its value, no fitting of long text, no section rows,
no page decoration, cut into one Table per page (a single 6,000-row Table would make reportlab split it
page by page at quadratic cost, a floor no real document should be measured against).
"""

import datetime as dt
import io
from decimal import Decimal

from bench.context import Context
from bench.harness import BenchResult, Check, ratio, timed

NAME = "pdf"
DEFAULT_ENTRIES = 5000
ENTRIES_PER_LINE = 5
TARGET_RATIO = 1.5
ROWS_PER_PAGE = 44
DAY = dt.date(2025, 3, 3)


def _build_invoice(entries: int) -> int:
    """A detailed-grouping client's invoice: one line per five entries, all of them in the appendix."""
    from djmoney.money import Money

    from billing.models import Allocation, Invoice, InvoiceLine, InvoiceStatus, LineKind
    from clients.models import Client, LineGrouping
    from projects.models import EntrySource, EntryStatus, Project, TaskType, TeamMember, TimeEntry

    project = Project.objects.select_related("client", "contract").filter(contract__billing_type="time_and_materials") \
        .order_by("id").first()
    Client.objects.filter(pk=project.client_id).update(include_time_detail=True, line_grouping=LineGrouping.DETAILED)
    members = list(TeamMember.objects.order_by("id")[:40])
    tasks = list(TaskType.objects.filter(billable=True).order_by("id"))
    currency = project.contract.currency
    rate = Decimal("185.00")
    time_entries = TimeEntry.objects.bulk_create([
        TimeEntry(member=members[n % len(members)], project=project, task_type=tasks[n % len(tasks)],
                  work_date=DAY + dt.timedelta(days=n % 28), minutes=30 + 15 * (n % 8),
                  # Free text of every length, some longer than the column, as members write it.
                  description=("Reviewed the client's feedback and updated the specification " * (1 + n % 3))[:200],
                  source=EntrySource.API, external_id=f"pdf-{n}", status=EntryStatus.INVOICED,
                  billable_minutes=30 + 15 * (n % 8), rate=Money(rate, currency),
                  amount=Money((Decimal(30 + 15 * (n % 8)) * rate / 60).quantize(Decimal("0.01")), currency))
        for n in range(entries)], batch_size=1000)
    invoice = Invoice.objects.create(client=project.client, contract=project.contract, currency=currency,
                                     period_start=DAY, period_end=DAY + dt.timedelta(days=27), tax_rate=Decimal("20"))
    groups = [time_entries[i:i + ENTRIES_PER_LINE] for i in range(0, len(time_entries), ENTRIES_PER_LINE)]
    lines = InvoiceLine.objects.bulk_create([
        InvoiceLine(invoice=invoice, position=n + 1, kind=LineKind.TIME,
                    description=f"{group[0].work_date:%Y-%m-%d} · {group[0].member.name} · {group[0].task_type.name} · "
                                f"{group[0].description}"[:300],
                    quantity=(Decimal(sum(e.billable_minutes for e in group)) / 60).quantize(Decimal("0.01")),
                    unit_rate=rate, amount=sum((e.amount.amount for e in group), Decimal("0")),
                    minutes=sum(e.billable_minutes for e in group), project=project, contract=project.contract)
        for n, group in enumerate(groups)], batch_size=1000)
    Allocation.objects.bulk_create([
        Allocation(time_entry=entry, line=line, minutes=entry.billable_minutes, amount=entry.amount.amount)
        for line, group in zip(lines, groups, strict=True) for entry in group], batch_size=1000)
    subtotal = sum((line.amount for line in lines), Decimal("0"))
    tax = (subtotal * Decimal("0.2")).quantize(Decimal("0.01"))
    # Issued the way finalization leaves it (the model refuses changes to an issued invoice's content).
    Invoice.objects.filter(pk=invoice.pk).update(
        status=InvoiceStatus.FINALIZED, number="INV-2025-0001", issue_date=DAY + dt.timedelta(days=28),
        due_date=DAY + dt.timedelta(days=58), subtotal=subtotal, tax=tax, total=subtotal + tax)
    return invoice.pk


def _render(invoice_id: int) -> int:
    from billing.models import Invoice
    from billing.pdf import render_invoice_pdf

    return len(render_invoice_pdf(Invoice.objects.select_related("client").get(pk=invoice_id)))


LINES_SQL = "SELECT description, quantity, unit_rate, amount FROM billing_invoiceline WHERE invoice_id = %s ORDER BY position"
ENTRIES_SQL = """
SELECT e.work_date, m.name, t.name, e.description, a.minutes
FROM billing_allocation a
JOIN billing_invoiceline l ON l.id = a.line_id
JOIN projects_timeentry e ON e.id = a.time_entry_id
JOIN projects_teammember m ON m.id = e.member_id
JOIN projects_tasktype t ON t.id = e.task_type_id
WHERE l.invoice_id = %s
ORDER BY l.position, e.work_date, m.name, e.id
"""


def _bare_reportlab(invoice_id: int) -> int:
    from django.db import connection
    from reportlab.lib.pagesizes import A4
    from reportlab.platypus import PageBreak, SimpleDocTemplate, Table, TableStyle

    with connection.cursor() as cursor:
        cursor.execute(LINES_SQL, [invoice_id])
        lines = cursor.fetchall()
        cursor.execute(ENTRIES_SQL, [invoice_id])
        entries = cursor.fetchall()
    style = TableStyle([("FONT", (0, 0), (-1, -1), "Helvetica", 8.5, 10.5)])
    story = []
    for header, rows in ((["Description", "Quantity", "Unit rate", "Amount"], lines),
                         (["Date", "Team member", "Task type", "Description", "Minutes"], entries)):
        cells = [[str(value) for value in row] for row in rows]
        for start in range(0, len(cells), ROWS_PER_PAGE):
            story += [Table([header, *cells[start:start + ROWS_PER_PAGE]], style=style), PageBreak()]
    buffer = io.BytesIO()
    SimpleDocTemplate(buffer, pagesize=A4).build(story)
    return len(buffer.getvalue())


def run(context: Context) -> BenchResult:
    entries = min(context.scaled(DEFAULT_ENTRIES), DEFAULT_ENTRIES)
    result = BenchResult(NAME)
    invoice_id = _build_invoice(entries)
    lines = -(-entries // ENTRIES_PER_LINE)
    rows = lines + entries
    context.log(f"pdf: invoice with {lines:,} lines and {entries:,} appendix entries")
    subject = timed(f"render_invoice_pdf: {lines:,} lines, {entries:,} entries", lambda: (rows, {
        "bytes": _render(invoice_id)}), repeat=3)
    baseline = timed("baseline: bare reportlab tables of the same rows", lambda: (rows, {
        "bytes": _bare_reportlab(invoice_id)}), repeat=3)
    result.measurements += [subject, baseline]
    result.checks.append(Check("render time / bare reportlab time", ratio(subject, baseline),
                               f"<= {TARGET_RATIO:g}x", (ratio(subject, baseline) or 0) <= TARGET_RATIO, unit="x"))
    result.notes.append(f"PDF {subject.extra['bytes']:,} bytes, baseline {baseline.extra['bytes']:,} bytes; "
                        f"{subject.queries} queries to render")
    return result
