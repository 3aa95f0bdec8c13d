"""Invoice and credit-note PDFs: A4, reportlab platypus, built from what the invoice stores.

Nothing is recomputed here: quantities, rates, amounts and totals are printed as the billing run (or the
credit note) saved them. Long documents (1,000 lines, a 5,000-entry time appendix) stay cheap: rows are read
with values_list in a fixed number of queries, cells are plain strings (a long text is broken into lines with
reportlab's string metrics, not a Paragraph per cell), and long tables are cut into pages in Python.
"""

import io
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import accumulate
from xml.sax.saxutils import escape

from django.conf import settings
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    CellStyle,
    Flowable,
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from billing.models import Allocation, Invoice, InvoiceKind, InvoiceStatus, LineKind
from billing.money import hours

FONT = "Helvetica"
BOLD = "Helvetica-Bold"
CELL_SIZE = 8.5
CELL_LEADING = 10.5
CELL_PADDING = 4  # points left and right of a cell's text
CELL_PADDING_Y = 3  # points above and below
# A row taller than a page cannot be laid out, and an entry description is free text of any length.
MAX_CELL_LINES = 12

MARGIN = 18 * mm
# SimpleDocTemplate's frame pads its content by 6 points: the page margins leave room for it.
FRAME_PADDING = 6
CONTENT_WIDTH = A4[0] - 2 * MARGIN
INK = colors.HexColor("#1f2933")
MUTED = colors.HexColor("#616e7c")
RULE = colors.HexColor("#cbd2d9")
HEADER_FILL = colors.HexColor("#2d3a4a")
STRIPE = colors.HexColor("#f5f7fa")
SECTION_FILL = colors.HexColor("#e4e7eb")
WATERMARK = colors.HexColor("#e8ebef")

# Fees are one unit each; every other line counts hours.
FEE_KINDS = (LineKind.RETAINER_FEE, LineKind.FIXED_FEE, LineKind.MILESTONE)

# Description | quantity | unit rate | amount: the totals below reuse the widths so the amounts line up.
LINE_COLUMNS = (CONTENT_WIDTH - 80 * mm, 22 * mm, 28 * mm, 30 * mm)
# Date | team member | task type | description | hours.
DETAIL_COLUMNS = (21 * mm, 34 * mm, 30 * mm, CONTENT_WIDTH - 103 * mm, 18 * mm)

STYLES = {
    "firm": ParagraphStyle("firm", fontName=BOLD, fontSize=15, leading=18, textColor=INK),
    "small": ParagraphStyle("small", fontName=FONT, fontSize=8.5, leading=11, textColor=MUTED),
    "title": ParagraphStyle("title", fontName=BOLD, fontSize=20, leading=24, textColor=INK, alignment=TA_RIGHT),
    "subtitle": ParagraphStyle("subtitle", fontName=FONT, fontSize=10, leading=13, textColor=MUTED,
                               alignment=TA_RIGHT),
    "label": ParagraphStyle("label", fontName=BOLD, fontSize=7.5, leading=10, textColor=MUTED),
    "client": ParagraphStyle("client", fontName=BOLD, fontSize=10.5, leading=13.5, textColor=INK),
    "body": ParagraphStyle("body", fontName=FONT, fontSize=9, leading=12.5, textColor=INK),
    "heading": ParagraphStyle("heading", fontName=BOLD, fontSize=13, leading=16, textColor=INK, spaceAfter=2),
}


def render_invoice_pdf(invoice: Invoice) -> bytes:
    """The invoice (or credit note) as an A4 PDF; a draft carries a DRAFT watermark and no number."""
    client = invoice.client
    lines = list(invoice.lines.order_by("position").values_list(
        "id", "position", "kind", "description", "quantity", "unit_rate", "amount", named=True))
    credited = invoice.credited_invoice if invoice.kind == InvoiceKind.CREDIT else None

    story = [*_heading(invoice, client, credited), Spacer(0, 8 * mm), _lines_table(invoice, lines),
             KeepTogether([_totals_table(invoice), Spacer(0, 6 * mm), *_terms(invoice, credited)])]
    if client.include_time_detail:
        story.extend(_time_detail(invoice, lines))

    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer, pagesize=A4, leftMargin=MARGIN - FRAME_PADDING, rightMargin=MARGIN - FRAME_PADDING,
        topMargin=MARGIN - FRAME_PADDING, bottomMargin=22 * mm - FRAME_PADDING,
        title=f"{_title(invoice)} {invoice.number or ''}".strip(), author=settings.FIRM_NAME, creator="Billable",
    )
    decorate = _PageDecoration(invoice)
    document.build(story, onFirstPage=decorate, onLaterPages=decorate, canvasmaker=_NumberedCanvas)
    return buffer.getvalue()


# --- formatting -----------------------------------------------------------------------------------------

def _amount(value: Decimal) -> str:
    """Two places with thousands separators: 1,234.56; -0.00 prints as 0.00."""
    return f"{(value if value else Decimal('0.00')):,.2f}"


def _quantity(kind: str, value: Decimal) -> str:
    # A fee is "1" (or "-1" reversed on a credit note); hours keep their two places.
    if kind in FEE_KINDS and value == value.to_integral_value():
        return f"{value:,.0f}"
    return _amount(value)


def _percent(rate: Decimal) -> str:
    """20.00 -> 20, 7.50 -> 7.5."""
    text = f"{rate:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _date(day) -> str:
    return f"{day:%d %b %Y}" if day else ""


def _text(value: str) -> str:
    """Plain text for a Paragraph: markup characters escaped, line breaks kept."""
    return escape(value).replace("\n", "<br/>")


class _CharWidths(dict):
    """One font's character widths in thousandths of the font size, measured by reportlab once per character.

    A Type 1 font's string width is the sum of its characters' widths (no kerning), so adding up these
    gives reportlab's stringWidth exactly, without its per-call encoding of the text.
    """

    def __init__(self, font: str):
        super().__init__()
        self.font = font

    def __missing__(self, char: str) -> float:
        self[char] = units = stringWidth(char, self.font, 1000)
        return units


_CHAR_WIDTHS = {font: _CharWidths(font) for font in (FONT, BOLD)}


def _width(text: str, font: str = FONT) -> float:
    """The text's width at the cell size: reportlab's stringWidth, from the cached character widths."""
    return sum(map(_CHAR_WIDTHS[font].__getitem__, text)) * 0.001 * CELL_SIZE


def _wrap(text: str, width: float, font: str) -> list[str]:
    """reportlab's simpleSplit: each line of the text filled greedily with whole words up to the width.

    A paragraph's words, single-spaced, are measured in one pass. Each line then runs to the last word
    that ends within the width from the line's start (found by bisection on the widths so far), or is
    one word alone when even that is wider.
    """
    room = width / (0.001 * CELL_SIZE)  # in the character widths' units
    lines = []
    for paragraph in text.split("\n"):
        joined = " ".join(paragraph.split())
        reach = [0, *accumulate(map(_CHAR_WIDTHS[font].__getitem__, joined))]  # width of joined[:n]
        start, length = 0, len(joined)
        while start < length:
            fits = bisect_right(reach, reach[start] + room) - 1  # joined[start:fits] fits
            if fits >= length:
                end = length
            else:
                end = joined.rfind(" ", start, fits + 1)  # the last word end within the width
                if end < 0:
                    end = joined.find(" ", start)
                    end = length if end < 0 else end
            lines.append(joined[start:end])
            start = end + 1
    return lines


def _cut(line: str, width: float, font: str) -> int:
    """How many leading characters of the line fit in the width (at least one)."""
    prefix_widths = [units * 0.001 * CELL_SIZE for units in accumulate(map(_CHAR_WIDTHS[font].__getitem__, line))]
    return max(1, bisect_right(prefix_widths, width))


def _fit(text: str, width: float, font: str = FONT) -> str:
    """The text as one plain table cell, broken into lines where it is wider than the column."""
    if "\t" in text or "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    text = text.strip()
    if "\n" not in text and _width(text, font) <= width:
        return text
    lines = []
    for line in _wrap(text, width, font):
        # A word longer than the column stays whole in a wrapped line; cut it so it cannot run into the next cell.
        while len(line) > 1 and _width(line, font) > width:
            cut = _cut(line, width, font)
            lines.append(line[:cut])
            line = line[cut:]
        lines.append(line)
    if len(lines) > MAX_CELL_LINES:
        lines, last = lines[:MAX_CELL_LINES - 1], lines[MAX_CELL_LINES - 1]
        while last and _width(last + " …", font) > width:
            last = last[:-1]
        lines.append(f"{last.rstrip()} …")
    return "\n".join(lines)


def _row_height(row: list[str]) -> float:
    """What reportlab's Table gives a row of plain strings: its most lines times the leading, plus padding."""
    return max(cell.count("\n") for cell in row) * CELL_LEADING + CELL_LEADING + 2 * CELL_PADDING_Y


def _title(invoice: Invoice) -> str:
    kind = "Credit note" if invoice.kind == InvoiceKind.CREDIT else "Invoice"
    return f"Draft {kind.lower()}" if invoice.status == InvoiceStatus.DRAFT else kind


# --- page parts -----------------------------------------------------------------------------------------

def _heading(invoice: Invoice, client, credited: Invoice | None) -> list:
    firm_address = getattr(settings, "FIRM_ADDRESS", "")
    firm_tax_id = getattr(settings, "FIRM_TAX_ID", "")
    firm = [Paragraph(_text(settings.FIRM_NAME), STYLES["firm"])]
    if firm_address:
        firm.append(Paragraph(_text(firm_address), STYLES["small"]))
    if firm_tax_id:
        firm.append(Paragraph(f"Tax ID {_text(firm_tax_id)}", STYLES["small"]))

    title = [Paragraph(_text(_title(invoice)), STYLES["title"])]
    if invoice.number:
        title.append(Paragraph(_text(invoice.number), STYLES["subtitle"]))
    elif invoice.status == InvoiceStatus.DRAFT:
        title.append(Paragraph("For review: the number is assigned when it is issued", STYLES["subtitle"]))

    bill_to = [Paragraph("BILL TO" if invoice.kind == InvoiceKind.INVOICE else "CREDIT TO", STYLES["label"]),
               Spacer(0, 1.5 * mm), Paragraph(_text(client.name), STYLES["client"])]
    if client.address:
        bill_to.append(Paragraph(_text(client.address), STYLES["body"]))

    number_label = "Credit note number" if invoice.kind == InvoiceKind.CREDIT else "Invoice number"
    facts = [(number_label, invoice.number), ("Issue date", _date(invoice.issue_date)),
             ("Due date", _date(invoice.due_date) if credited is None else ""),
             ("Period", f"{_date(invoice.period_start)} – {_date(invoice.period_end)}"),
             ("Currency", invoice.currency)]
    if credited is not None:
        facts.append(("Credits invoice", credited.number or f"Draft {credited.pk}"))
    facts_table = Table([[label, value] for label, value in facts if value], colWidths=(32 * mm, 40 * mm))
    facts_table.setStyle(TableStyle([
        ("FONT", (0, 0), (0, -1), BOLD, 8.5), ("FONT", (1, 0), (1, -1), FONT, 8.5),
        ("TEXTCOLOR", (0, 0), (0, -1), MUTED), ("TEXTCOLOR", (1, 0), (1, -1), INK),
        ("ALIGN", (1, 0), (1, -1), "RIGHT"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        ("LEFTPADDING", (0, 0), (-1, -1), 0), ("RIGHTPADDING", (0, 0), (-1, -1), 0),
    ]))

    half = CONTENT_WIDTH / 2
    top = Table([[firm, title]], colWidths=(half, half))
    middle = Table([[bill_to, facts_table]], colWidths=(half, half))
    for table in (top, middle):
        table.setStyle(TableStyle([
            ("VALIGN", (0, 0), (-1, -1), "TOP"), ("ALIGN", (1, 0), (1, 0), "RIGHT"),
            ("LEFTPADDING", (0, 0), (-1, -1), 0), ("RIGHTPADDING", (0, 0), (-1, -1), 0),
        ]))
    rule = Table([[""]], colWidths=(CONTENT_WIDTH,), rowHeights=(1,))
    rule.setStyle(TableStyle([("LINEBELOW", (0, 0), (-1, -1), 0.75, RULE)]))
    return [top, Spacer(0, 5 * mm), rule, Spacer(0, 5 * mm), middle]


def _lines_table(invoice: Invoice, lines: list) -> "_PagedTable":
    width = LINE_COLUMNS[0] - 2 * CELL_PADDING
    rows = [[_fit(line.description, width), _quantity(line.kind, line.quantity), _amount(line.unit_rate),
             _amount(line.amount)] for line in lines] or [["No lines", "", "", ""]]
    return _PagedTable(_Rows(["Description", "Quantity", "Unit rate", f"Amount ({invoice.currency})"], rows,
                             LINE_COLUMNS, ("LEFT", "RIGHT", "RIGHT", "RIGHT"), stripes=True))


def _totals_table(invoice: Invoice) -> Table:
    rows = [["", "Subtotal", "", _amount(invoice.subtotal)],
            ["", f"Tax ({_percent(invoice.tax_rate)}%)", "", _amount(invoice.tax)],
            ["", f"Total {invoice.currency}", "", _amount(invoice.total)]]
    table = Table(rows, colWidths=LINE_COLUMNS)
    table.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, -1), FONT, 9, 12),
        ("TEXTCOLOR", (0, 0), (-1, -1), INK),
        ("SPAN", (1, 0), (2, 0)), ("SPAN", (1, 1), (2, 1)), ("SPAN", (1, 2), (2, 2)),
        ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
        ("FONT", (1, 2), (-1, 2), BOLD, 11, 14),
        ("LINEABOVE", (1, 2), (-1, 2), 1, INK),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ("TOPPADDING", (0, 2), (-1, 2), 5),
        ("LEFTPADDING", (0, 0), (-1, -1), CELL_PADDING), ("RIGHTPADDING", (0, 0), (-1, -1), CELL_PADDING),
    ]))
    return table


def _terms(invoice: Invoice, credited: Invoice | None) -> list:
    if credited is not None:
        original = credited.number or f"draft {credited.pk}"
        issued = f" of {_date(credited.issue_date)}" if credited.issue_date else ""
        notes = [f"This credit note corrects invoice {original}{issued}: its amounts reduce what is owed on it."]
    else:
        due = f", by {_date(invoice.due_date)}" if invoice.due_date else ""
        notes = [f"Payment due within {invoice.payment_terms_days} days of the issue date{due}."]
        if invoice.number:
            notes.append(f"Please quote {invoice.number} with your payment.")
        payment_details = getattr(settings, "FIRM_PAYMENT_DETAILS", "")
        if payment_details:
            notes.append(payment_details)
    return [Paragraph(_text(note), STYLES["body"]) for note in notes]


def _time_detail(invoice: Invoice, lines: list) -> list:
    """The appendix: under a heading row per line, the time entries it bills, in date order."""
    entries_by_line = defaultdict(list)
    allocations = (
        Allocation.objects.filter(line__invoice=invoice)
        .order_by("time_entry__work_date", "time_entry__member__name", "time_entry_id")
        .values_list("line_id", "minutes", "covered_minutes", "over_cap_minutes", "time_entry__work_date",
                     "time_entry__member__name", "time_entry__task_type__name", "time_entry__description")
    )
    for line_id, *entry in allocations:
        entries_by_line[line_id].append(entry)

    member_width, task_width, description_width = (width - 2 * CELL_PADDING for width in DETAIL_COLUMNS[1:4])
    # Member and task type names repeat on most rows: fit each once.
    members, task_types = {}, {}
    rows, sections = [], {}
    for line in lines:
        entries = entries_by_line.get(line.id)
        if not entries:
            continue
        sections[len(rows)] = title = f"Line {line.position} · {line.description}"
        rows.append(_section_row(title))
        for minutes, covered, over_cap, work_date, member, task_type, description in entries:
            # Covered and over-cap minutes were worked but are not billed at the line's rate: say why.
            if covered:
                description = f"{description} ({hours(covered)} h covered by the retainer)".lstrip()
            if over_cap:
                description = f"{description} ({hours(over_cap)} h over the cap, not billed)".lstrip()
            if member not in members:
                members[member] = _fit(member, member_width)
            if task_type not in task_types:
                task_types[task_type] = _fit(task_type, task_width)
            rows.append([_date(work_date), members[member], task_types[task_type],
                         _fit(description, description_width), _amount(hours(minutes))])

    heading = [PageBreak(), Paragraph("Time detail", STYLES["heading"]),
               Paragraph(_text(f"The time entries behind each line of {_title(invoice).lower()} "
                               f"{invoice.number or ''}".rstrip() + "; hours are the hours billed."),
                         STYLES["small"]), Spacer(0, 4 * mm)]
    if not rows:
        return [*heading, Paragraph("No time entries are billed on this invoice.", STYLES["body"])]
    table = _PagedTable(_Rows(["Date", "Team member", "Task type", "Description", "Hours"], rows,
                              DETAIL_COLUMNS, ("LEFT", "LEFT", "LEFT", "LEFT", "RIGHT"), sections=sections))
    return [*heading, table]


def _section_row(title: str) -> list[str]:
    # The title runs across the empty cells of its row, which a plain string may do.
    return [_fit(title, CONTENT_WIDTH - 2 * CELL_PADDING, BOLD), "", "", "", ""]


def _cell_style(font: str, color, alignment: str) -> CellStyle:
    style = CellStyle(f"{font} {alignment}")
    style.fontname, style.fontsize, style.leading, style.color = font, CELL_SIZE, CELL_LEADING, color
    style.alignment, style.valign = alignment, "TOP"
    style.leftPadding = style.rightPadding = CELL_PADDING
    style.topPadding = style.bottomPadding = CELL_PADDING_Y
    return style


@dataclass
class _Rows:
    """A long table's content, shared by the parts it is cut into."""

    header: list[str]
    rows: list[list[str]]
    col_widths: tuple
    alignments: tuple[str, ...]  # each column's, header included
    sections: dict[int, str] = field(default_factory=dict)  # heading row index -> its title
    stripes: bool = False
    heights: list[float] = field(init=False)  # each row's
    tops: list[float] = field(init=False)  # where each row starts, measured from the first row
    group_of: list[int] = field(init=False)  # the heading row of each row's group, or -1
    # One cell style per kind of row and column, shared by every cell of the kind. Handing them to each
    # page's Table saves it building a style per cell and applying every style command to each one.
    header_styles: list[CellStyle] = field(init=False)
    section_styles: list[CellStyle] = field(init=False)
    body_styles: list[CellStyle] = field(init=False)

    def __post_init__(self):
        self.heights = [_row_height(row) for row in self.rows]
        self.tops = [0.0, *accumulate(self.heights)]
        self.group_of, group = [], -1
        for index in range(len(self.rows)):
            group = index if index in self.sections else group
            self.group_of.append(group)
        self.header_styles = [_cell_style(BOLD, colors.white, alignment) for alignment in self.alignments]
        self.section_styles = [_cell_style(BOLD, INK, alignment) for alignment in self.alignments]
        self.body_styles = [_cell_style(FONT, INK, alignment) for alignment in self.alignments]


class _Table(Table):
    """A Table that writes a left-aligned cell of several plain-text lines as one PDF text object.

    reportlab makes each line of such a cell a text object of its own; the appendix's wrapped
    descriptions are a good share of all its lines. One object per cell, moving down a line (T*, at the
    leading the cell's font was set with) between them, puts the same glyphs in the same places. An
    empty cell (under a group heading that runs across its row) gets no text object at all.
    """

    def _drawCell(self, cellval, cellstyle, pos, size):
        if cellval == "" and not (cellstyle.href or cellstyle.destination):
            return None
        if (not isinstance(cellval, str) or "\n" not in cellval or cellstyle.alignment != "LEFT"
                or cellstyle.valign != "TOP" or cellstyle.href or cellstyle.destination or cellstyle.direction
                or cellstyle.shaping):
            return super()._drawCell(cellval, cellstyle, pos, size)
        if self._curcellstyle is not cellstyle:
            current = self._curcellstyle
            if current is None or cellstyle.color != current.color:
                self.canv.setFillColor(cellstyle.color)
            if current is None or (cellstyle.fontname, cellstyle.fontsize, cellstyle.leading) != (
                    current.fontname, current.fontsize, current.leading):
                self.canv.setFont(cellstyle.fontname, cellstyle.fontsize, cellstyle.leading)
            self._curcellstyle = cellstyle
        (column_x, row_y), (_, row_height) = pos, size
        text = self.canv.beginText(column_x + cellstyle.leftPadding,
                                   row_y + row_height - cellstyle.topPadding - cellstyle.fontsize)
        text.textLines(cellval.split("\n"))
        self.canv.drawText(text)
        return None


class _PagedTable(Flowable):
    """A long table cut into pages, each a Table of the rows that fit under a repeat of the header.

    reportlab's Table.split rebuilds the whole remaining table at every page break, so a 5,000-row
    table costs time quadratic in its rows. Plain-string rows have heights known in advance, so here
    the rows of a page are counted with a bisection and only they become a Table. A group heading row
    is never left alone at the foot of a page, and a group that continues on the next page starts
    there under its heading again.
    """

    def __init__(self, content: _Rows, start: int = 0):
        super().__init__()
        self.content, self.start = content, start  # start: the first row not yet laid out
        self.width = sum(content.col_widths)
        self.header_height = _row_height(content.header)
        self.continued = self._continued()
        self.extra_height = self.header_height + (_row_height(self.continued) if self.continued else 0)

    def _continued(self) -> list[str] | None:
        """The heading repeated over a group that carries on from the previous page."""
        group = self.content.group_of[self.start] if self.content.rows else -1
        if group < 0 or group == self.start:
            return None
        return _section_row(f"{self.content.sections[group]} (continued)")

    def wrap(self, available_width, available_height):
        self.height = self.extra_height + self.content.tops[-1] - self.content.tops[self.start]
        return self.width, self.height

    def split(self, available_width, available_height):
        room = available_height - self.extra_height
        tops, total = self.content.tops, len(self.content.rows)
        end = bisect_right(tops, tops[self.start] + room) - 1
        if end < total and end - 1 in self.content.sections:
            end -= 1  # a heading goes over to the next page with its first entry
        if end <= self.start:
            return []
        if end >= total:
            return [self._table(total)]
        return [self._table(end), _PagedTable(self.content, end)]

    def draw(self) -> None:
        table = self._table(len(self.content.rows))
        table.wrapOn(self.canv, self.width, self.height)
        table.drawOn(self.canv, 0, 0)

    def _table(self, end: int) -> Table:
        content = self.content
        rows, heights, styles = [content.header], [self.header_height], [content.header_styles]
        if self.continued:
            rows.append(self.continued)
            heights.append(_row_height(self.continued))
            styles.append(content.section_styles)
        offset = len(rows) - self.start
        rows.extend(content.rows[self.start:end])
        heights.extend(content.heights[self.start:end])
        styles.extend(content.section_styles if index in content.sections else content.body_styles
                      for index in range(self.start, end))
        commands = [("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL), ("LINEBELOW", (0, -1), (-1, -1), 0.75, RULE)]
        if self.continued:
            commands.append(("BACKGROUND", (0, 1), (-1, 1), SECTION_FILL))
        commands += [("BACKGROUND", (0, index + offset), (-1, index + offset), SECTION_FILL)
                     for index in range(self.start, end) if index in content.sections]
        if content.stripes:
            # Every other row shaded, the rest left clear so a DRAFT watermark shows through.
            commands.append(("ROWBACKGROUNDS", (0, 1), (-1, -1), [None, STRIPE]))
        else:
            commands.append(("LINEBELOW", (0, 1), (-1, -2), 0.25, RULE))
        # Each row's list of styles is shared; the Table only reads them (no command here sets a cell style).
        # repeatRows only matters if reportlab ever splits a page part itself; the heights make that unlikely.
        return _Table(rows, colWidths=content.col_widths, rowHeights=heights, repeatRows=1, cellStyles=styles,
                      style=TableStyle(commands))


class _PageDecoration:
    """What every page carries: the footer reference and, unless issued, a DRAFT or VOID watermark."""

    def __init__(self, invoice: Invoice):
        self.reference = f"{settings.FIRM_NAME} · {_title(invoice)} {invoice.number or ''}".rstrip()
        self.watermark = {InvoiceStatus.DRAFT: "DRAFT", InvoiceStatus.VOID: "VOID"}.get(invoice.status, "")

    def __call__(self, canvas: Canvas, document) -> None:
        canvas.saveState()
        if self.watermark:
            # Drawn before the page's content, so the content sits on top of it.
            canvas.setFillColor(WATERMARK)
            canvas.setFont(BOLD, 110)
            canvas.translate(A4[0] / 2, A4[1] / 2)
            canvas.rotate(45)
            canvas.drawCentredString(0, -35, self.watermark)
            canvas.restoreState()
            canvas.saveState()
        canvas.setStrokeColor(RULE)
        canvas.setLineWidth(0.5)
        canvas.line(MARGIN, 15 * mm, A4[0] - MARGIN, 15 * mm)
        canvas.setFont(FONT, 7.5)
        canvas.setFillColor(MUTED)
        canvas.drawString(MARGIN, 11 * mm, self.reference)
        canvas.restoreState()


class _NumberedCanvas(Canvas):
    """Holds the pages until the end, when their count is known, to print "Page N of M" on each."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._held_pages = []

    def showPage(self) -> None:
        self._held_pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._held_pages)
        for state in self._held_pages:
            self.__dict__.update(state)
            self.setFont(FONT, 7.5)
            self.setFillColor(MUTED)
            self.drawRightString(A4[0] - MARGIN, 11 * mm, f"Page {self._pageNumber} of {total}")
            super().showPage()
        super().save()
