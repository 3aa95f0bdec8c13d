"""Billing runs: approved billable time, fees and retainers become draft invoices (PRODUCT.md, Invoices).

A run locks the candidate entries, groups them into invoices by the client's consolidation and into
lines by its grouping and rate, ties every entry to one line with an allocation, and records fees as
charges that can be taken once. Deleting a draft releases everything it held.

A run reads its entries as plain rows through one cursor, ordered by client, builds one client's drafts at
a time and writes finished clients in batches, so its memory and its statements do not grow with the
month's entries (issue #7).
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, Q, Sum
from django.utils import timezone

from billing.models import (
    ISSUED_STATUSES,
    Allocation,
    BillingRun,
    ContractCharge,
    Invoice,
    InvoiceEvent,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
)
from billing.money import ZERO, amount_for, hours, round_money
from billing.periods import months_between, periods_between
from clients.models import (
    BillingType,
    Client,
    Consolidation,
    Contract,
    ContractStatus,
    FeeMilestone,
    FixedFeeSchedule,
    LineGrouping,
)
from projects.models import EntryStatus, Project, TaskType, TeamMember, TimeEntry


class BillingConflict(Exception):
    """Another billing run took the same fee or entries at the same moment; nothing was saved."""


# A run reads its entries this many at a time, client by client, and writes the drafts of finished clients
# once this many allocations wait: memory is bounded by that batch and the largest client, not by the month.
ENTRY_CHUNK = 2000
WRITE_AT = 5000


class _Entry(NamedTuple):
    """What billing needs of a time entry: one row read from the database, no model instance."""

    id: int
    project_id: int
    member_id: int
    task_type_id: int
    work_date: dt.date
    description: str
    billable_minutes: int
    covered_minutes: int
    over_cap_minutes: int
    rate: Decimal | None
    client_id: int
    # Billed on an issued invoice before (and released since): what is left to bill is worked out later.
    billed_before: bool


ENTRY_FIELDS = ("id", "project_id", "member_id", "task_type_id", "work_date", "description", "billable_minutes",
                "covered_minutes", "over_cap_minutes", "rate", "project__client_id", "billed_before")


@dataclass
class _Firm:
    """The clients, contracts, projects, people and task types behind the entries, read once per run."""

    clients: dict[int, Client]
    contracts: dict[int, Contract]
    projects: dict[int, tuple[str, int]]  # project id: (name, contract id)
    members: dict[int, str]
    task_types: dict[int, str]


def _firm(client: Client | None) -> _Firm:
    clients = {c.id: c for c in (Client.objects.filter(pk=client.pk) if client else Client.objects.all())}
    contracts = {}
    for contract in Contract.objects.filter(client_id__in=clients) if client else Contract.objects.all():
        contract.client = clients[contract.client_id]
        contracts[contract.id] = contract
    projects = Project.objects.filter(client_id__in=clients) if client else Project.objects.all()
    return _Firm(
        clients=clients, contracts=contracts,
        projects={pk: (name, contract_id) for pk, name, contract_id in projects.values_list("id", "name", "contract")},
        members=dict(TeamMember.objects.order_by().values_list("id", "name")),
        task_types=dict(TaskType.objects.order_by().values_list("id", "name")),
    )


@dataclass
class _Line:
    kind: str
    description: str
    unit_rate: Decimal
    project_id: int | None = None
    contract_id: int | None = None
    minutes: int = 0
    fixed_amount: Decimal | None = None
    # Fees are one unit; informational lines (over cap, covered by a retainer) show their hours.
    is_fee: bool = False
    sort_key: tuple = ()
    # (entry id, minutes, amount, covered minutes, over-cap minutes): the allocations, as rows to insert.
    allocations: list[tuple] = field(default_factory=list)
    charge: ContractCharge | None = None

    @property
    def amount(self) -> Decimal:
        if self.fixed_amount is not None:
            return self.fixed_amount
        return amount_for(self.minutes, self.unit_rate)

    @property
    def quantity(self) -> Decimal:
        return Decimal("1.00") if self.is_fee else hours(self.minutes)


@dataclass
class _Draft:
    client: Client
    currency: str
    contract: Contract | None
    project_id: int | None
    lines: dict[tuple, _Line] = field(default_factory=dict)


@dataclass
class BillingRunResult:
    run: BillingRun
    invoices: list[Invoice]


def _grouping(entry: _Entry, grouping: str, firm: _Firm) -> tuple[tuple, str]:
    """The line key and description of an entry under the client's grouping."""
    if grouping == LineGrouping.MEMBER:
        return ("member", entry.member_id), firm.members[entry.member_id]
    if grouping == LineGrouping.PROJECT:
        return ("project", entry.project_id), firm.projects[entry.project_id][0]
    if grouping == LineGrouping.DAY:
        return ("day", entry.work_date), f"{entry.work_date:%a %d %b %Y}"
    if grouping == LineGrouping.DETAILED:
        text = f"{entry.work_date:%Y-%m-%d} · {firm.members[entry.member_id]} · {firm.task_types[entry.task_type_id]}"
        if entry.description:
            text += f" · {entry.description}"
        return ("entry", entry.id), text[:300]
    return ("task_type", entry.task_type_id), firm.task_types[entry.task_type_id]


def _line_order(group_key: tuple, label: str) -> str:
    """Days and entries read in date order; everything else alphabetically."""
    if group_key[0] == "day":
        return group_key[1].isoformat()
    return label


def _invoice_key(client: Client, contract: Contract, project_id: int | None):
    if client.consolidation == Consolidation.CONTRACT or (
            client.consolidation == Consolidation.PROJECT and project_id is None):
        return ("contract", contract.id)
    if client.consolidation == Consolidation.PROJECT:
        return ("project", project_id)
    return ("client", client.id, contract.currency)


class _Builder:
    """The drafts of one client: its entries on lines, then its due fees."""

    def __init__(self, start: dt.date, end: dt.date, firm: _Firm):
        self.start, self.end, self.firm = start, end, firm
        self.drafts: dict[tuple, _Draft] = {}

    def draft(self, client: Client, contract: Contract, project_id: int | None) -> _Draft:
        key = _invoice_key(client, contract, project_id)
        if key not in self.drafts:
            self.drafts[key] = _Draft(
                client=client, currency=contract.currency,
                contract=contract if key[0] in ("contract", "project") else None,
                project_id=project_id if key[0] == "project" else None,
            )
        draft = self.drafts[key]
        if draft.contract is not None and draft.contract.id != contract.id:
            draft.contract = None
        return draft

    def line(self, draft: _Draft, key: tuple, factory) -> _Line:
        if key not in draft.lines:
            draft.lines[key] = factory()
        return draft.lines[key]

    def add_entry(self, entry: _Entry, already_billed: int) -> None:
        """Put the entry on its line; once billed before, only what credit notes released is billed, at the rate
        (the retainer fee and the over-cap line of the first invoice still account for the rest)."""
        contract = self.firm.contracts[self.firm.projects[entry.project_id][1]]
        client = self.firm.clients[entry.client_id]
        draft = self.draft(client, contract, entry.project_id)
        rate = entry.rate if entry.rate is not None else ZERO
        billable = entry.billable_minutes - already_billed
        covered = entry.covered_minutes if not already_billed else 0
        over_cap = entry.over_cap_minutes if not already_billed else 0
        billed_at_rate = billable - covered
        group_key, description = _grouping(entry, client.line_grouping, self.firm)

        if billed_at_rate > 0:
            kind = LineKind.RETAINER_OVERAGE if contract.billing_type == BillingType.RETAINER else LineKind.TIME
            label = f"Overage · {description}" if kind == LineKind.RETAINER_OVERAGE else description
            line = self.line(draft, (kind, contract.id if kind == LineKind.RETAINER_OVERAGE else None,
                                     group_key, rate),
                             lambda: _Line(kind=kind, description=label, unit_rate=rate,
                                           project_id=entry.project_id if group_key[0] == "project" else None,
                                           contract_id=contract.id,
                                           sort_key=(0, _line_order(group_key, label), rate)))
            line.minutes += billed_at_rate
            minutes, amount = billed_at_rate, amount_for(billed_at_rate, rate)
        elif covered > 0:
            month = entry.work_date.replace(day=1)
            line = self.line(draft, (LineKind.RETAINER_FEE, contract.id, month), lambda: _Line(
                kind=LineKind.RETAINER_FEE, fixed_amount=ZERO, unit_rate=ZERO, contract_id=contract.id,
                description=f"Time covered by the {month:%B %Y} retainer ({contract.number})",
                sort_key=(1, month)))
            line.minutes += covered
            minutes, amount = 0, ZERO
        else:
            line = self._over_cap_line(draft, contract)
            minutes, amount = 0, ZERO
        if over_cap:
            self._over_cap_line(draft, contract).minutes += over_cap
        line.allocations.append((entry.id, minutes, amount, covered, over_cap))

    def _over_cap_line(self, draft: _Draft, contract: Contract) -> _Line:
        return self.line(draft, (LineKind.OVER_CAP, contract.id), lambda: _Line(
            kind=LineKind.OVER_CAP, unit_rate=ZERO, fixed_amount=ZERO, contract_id=contract.id,
            description=f"Over the cap of contract {contract.number}: not billed", sort_key=(9, contract.number)))

    def add_fee(self, contract: Contract, kind: str, period_start: dt.date, amount: Decimal, description: str,
                milestone: FeeMilestone | None = None) -> None:
        draft = self.draft(contract.client, contract, None)
        key = (kind, contract.id, period_start, milestone.id if milestone else None)
        line = self.line(draft, key, lambda: _Line(kind=kind, description=description, unit_rate=amount,
                                                   fixed_amount=amount, is_fee=True, contract_id=contract.id,
                                                   sort_key=(1, period_start, description)))
        if kind == LineKind.RETAINER_FEE:
            # Covered time of that month, if any, rides on the fee line instead of a zero line.
            covered = draft.lines.pop((LineKind.RETAINER_FEE, contract.id, period_start), None)
            if covered is not None and covered is not line:
                line.allocations.extend(covered.allocations)
                line.minutes += covered.minutes
        line.charge = ContractCharge(contract=contract, kind=kind, period_start=period_start, milestone=milestone)


def _installments(contract: Contract) -> list[tuple[dt.date, dt.date, Decimal]]:
    """Equal installments per billing period between the contract's dates; the last absorbs the cents."""
    periods = list(periods_between(contract.start_date, contract.end_date, contract.client.billing_period))
    fee = contract.fixed_fee_amount.amount
    each = round_money(fee / len(periods))
    amounts = [each] * (len(periods) - 1) + [fee - each * (len(periods) - 1)]
    return [(start, end, amount) for (start, end), amount in zip(periods, amounts, strict=True)]


@dataclass
class _Fees:
    """The retainer and fixed-fee contracts active in the period, their completed milestones, and the fees
    already on an invoice; read once per run, billed client by client."""

    contracts: dict[int, list[Contract]]  # by client id
    milestones: dict[int, list[FeeMilestone]]  # by contract id
    taken: set


def _fees(firm: _Firm, client: Client | None, start: dt.date, end: dt.date) -> _Fees:
    contracts = defaultdict(list)
    for contract in firm.contracts.values():
        if contract.status == ContractStatus.ACTIVE and contract.start_date <= end \
                and (contract.end_date is None or contract.end_date >= start) \
                and contract.billing_type in (BillingType.RETAINER, BillingType.FIXED_FEE):
            contracts[contract.client_id].append(contract)
    milestones = defaultdict(list)
    if contracts:
        fee_contracts = [c.id for each in contracts.values() for c in each]
        for milestone in FeeMilestone.objects.filter(contract__in=fee_contracts, completed_on__isnull=False,
                                                     completed_on__lte=end):
            milestones[milestone.contract_id].append(milestone)
    charges = ContractCharge.objects.filter(contract__in=firm.contracts) if client is not None \
        else ContractCharge.objects.all()
    taken = {(contract_id, kind, milestone_id or period_start) for contract_id, kind, period_start, milestone_id
             in charges.values_list("contract_id", "kind", "period_start", "milestone_id")}
    return _Fees(contracts=contracts, milestones=milestones, taken=taken)


def _add_fees(builder: _Builder, contracts: list[Contract], fees: _Fees) -> None:
    """A client's due retainer months, completed milestones and fixed-fee installments not yet billed."""
    taken = fees.taken
    for contract in sorted(contracts, key=lambda c: c.id):
        if contract.billing_type == BillingType.RETAINER and contract.retainer_amount is not None:
            first = max(builder.start, contract.start_date)
            last = min(builder.end, contract.end_date or builder.end)
            for month in months_between(first, last):
                if (contract.id, LineKind.RETAINER_FEE, month) not in taken:
                    builder.add_fee(contract, LineKind.RETAINER_FEE, month, contract.retainer_amount.amount,
                                    f"Retainer {month:%B %Y} ({contract.number}), covering "
                                    f"{contract.retainer_hours:.2f} h")
        elif contract.fixed_fee_schedule == FixedFeeSchedule.MILESTONES:
            for milestone in fees.milestones[contract.id]:
                if (contract.id, LineKind.MILESTONE, milestone.id) not in taken:
                    builder.add_fee(contract, LineKind.MILESTONE, milestone.completed_on, milestone.amount.amount,
                                    f"Milestone: {milestone.name} ({contract.number})", milestone=milestone)
        elif contract.fixed_fee_amount is not None and contract.end_date is not None:
            schedule = _installments(contract)
            for number, (start, end, amount) in enumerate(schedule, start=1):
                if builder.start <= end <= builder.end and (contract.id, LineKind.FIXED_FEE, start) not in taken:
                    builder.add_fee(contract, LineKind.FIXED_FEE, start, amount,
                                    f"Fixed fee ({contract.number}), installment {number} of {len(schedule)}: "
                                    f"{start:%d %b} to {end:%d %b %Y}")


def _issued_originals():
    """Allocations that billed an entry and no longer hold it, but still account for some of its minutes.

    On an issued invoice, a credit note released part of the entry. On a void invoice, the void released
    an entry a credit note had partly written off: the written-off minutes stay consumed.
    """
    return Allocation.objects.filter(
        Q(line__invoice__status__in=ISSUED_STATUSES) | Q(line__invoice__status=InvoiceStatus.VOID, written_off=True),
        is_live=False, reverses__isnull=True)


def _already_billed(entry_ids: list[int]) -> dict[int, int]:
    """Minutes of each entry that issued invoices still account for, after credit notes that released some.

    An entry comes back to a billing run only when a credit note released part of it (or a void released
    it). What its earlier allocations still hold stays consumed: minutes billed at the rate and not
    credited, minutes written off (credited, but never to be billed again), and minutes the retainer fee
    covered. Only the released minutes are left to bill.
    """
    originals = _issued_originals().filter(time_entry_id__in=entry_ids)
    # A void annuls what its invoice billed; only what a credit note wrote off before the void stays consumed.
    rows = originals.filter(line__invoice__status__in=ISSUED_STATUSES).values("time_entry_id").annotate(
        billed=Sum("minutes"), covered=Sum("covered_minutes"), credited=Sum("credited_minutes"))
    # Reversals are negative; a written-off reversal's minutes stay consumed.
    written_off = dict(Allocation.objects.filter(reverses__in=originals, written_off=True)
                       .values("time_entry_id").annotate(minutes=Sum("minutes"))
                       .values_list("time_entry_id", "minutes"))
    consumed = {entry_id: -minutes for entry_id, minutes in written_off.items()}
    for row in rows:
        consumed[row["time_entry_id"]] = (consumed.get(row["time_entry_id"], 0) + (row["billed"] or 0)
                                          + (row["covered"] or 0) - (row["credited"] or 0))
    return consumed


def _bill_client(builder: _Builder, entries: list[_Entry], fee_contracts: list[Contract], fees: _Fees) -> None:
    # Read under the lock the run holds on these entries, so a credit note cannot release more meanwhile.
    rebilled = [entry.id for entry in entries if entry.billed_before]
    billed_before = _already_billed(rebilled) if rebilled else {}
    for entry in entries:
        already = billed_before.get(entry.id, 0)
        if already >= entry.billable_minutes and already:
            continue
        builder.add_entry(entry, already)
    _add_fees(builder, fee_contracts, fees)


class _Writer:
    """Saves finished clients' drafts in batches: invoices with their totals, lines, allocations, fees, events."""

    ALLOCATION_FIELDS = ("time_entry", "line", "minutes", "amount", "covered_minutes", "over_cap_minutes", "is_live",
                         "credited_minutes", "reverses", "written_off")

    def __init__(self, run: BillingRun, user):
        self.run, self.user = run, user
        self.pending: list[_Draft] = []
        self.waiting = 0
        self.invoices: list[Invoice] = []
        self.lines = self.entries = 0

    def add(self, drafts) -> None:
        for draft in drafts:
            if draft.lines:
                self.pending.append(draft)
                self.waiting += sum(len(line.allocations) for line in draft.lines.values())
        if self.waiting >= WRITE_AT:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        run, invoices, lines = self.run, [], []
        for draft in self.pending:
            draft_lines = sorted(draft.lines.values(), key=lambda line: line.sort_key)
            subtotal = sum((line.amount for line in draft_lines), ZERO)
            tax = round_money(subtotal * draft.client.tax_rate / 100)
            invoice = Invoice(
                client=draft.client, contract=draft.contract, project_id=draft.project_id, currency=draft.currency,
                billing_run=run, period_start=run.period_start, period_end=run.period_end,
                tax_rate=draft.client.tax_rate, payment_terms_days=draft.client.payment_terms_days,
                subtotal=subtotal, tax=tax, total=subtotal + tax,
            )
            invoice._draft_lines = draft_lines
            invoices.append(invoice)
        Invoice.objects.bulk_create(invoices)
        for invoice in invoices:
            for position, draft_line in enumerate(invoice._draft_lines, start=1):
                line = InvoiceLine(invoice=invoice, position=position, kind=draft_line.kind,
                                   description=draft_line.description, quantity=draft_line.quantity,
                                   unit_rate=draft_line.unit_rate, amount=draft_line.amount,
                                   minutes=draft_line.minutes, project_id=draft_line.project_id,
                                   contract_id=draft_line.contract_id)
                line._draft = draft_line
                lines.append(line)
        InvoiceLine.objects.bulk_create(lines)
        allocations, charges = [], []
        for line in lines:
            allocations += [(entry_id, line.id, minutes, amount, covered, over_cap, True, 0, None, False)
                            for entry_id, minutes, amount, covered, over_cap in line._draft.allocations]
            if line._draft.charge is not None:
                line._draft.charge.line = line
                charges.append(line._draft.charge)
        self._insert_allocations(allocations)
        ContractCharge.objects.bulk_create(charges)
        InvoiceEvent.objects.bulk_create([
            InvoiceEvent(invoice=invoice, actor=self.user, action="created", status_after=InvoiceStatus.DRAFT,
                         details={"billing_run": run.id, "lines": len(invoice._draft_lines),
                                  "total": str(invoice.total)})
            for invoice in invoices
        ])
        for invoice in invoices:
            del invoice._draft_lines
        self.invoices += invoices
        self.lines += len(lines)
        self.entries += len(allocations)
        self.pending, self.waiting = [], 0

    def _insert_allocations(self, rows: list[tuple]) -> None:
        """An allocation per entry is the bulk of what a run writes: plain rows, never model instances.

        PostgreSQL takes them as one array per column (a single statement, about 3x faster than rows of
        parameters); other databases get multi-row INSERTs in the batches bulk_create would make.
        """
        if not rows:
            return
        fields = [Allocation._meta.get_field(name) for name in self.ALLOCATION_FIELDS]
        table = connection.ops.quote_name(Allocation._meta.db_table)
        columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
                cursor.execute(f"INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays})",
                               [list(column) for column in zip(*rows, strict=True)])
                return
            size = min(1000, connection.ops.bulk_batch_size(fields, rows))
            row_sql = f"({', '.join(['%s'] * len(fields))})"
            for first in range(0, len(rows), size):
                batch = rows[first:first + size]
                cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {', '.join([row_sql] * len(batch))}",
                               [value for row in batch for value in row])


def _candidates(period_start: dt.date, period_end: dt.date, client: Client | None):
    """Approved entries of the period with time to bill (or over-cap time to show), locked, client by client."""
    entries = TimeEntry.objects.filter(status=EntryStatus.APPROVED, work_date__range=(period_start, period_end)) \
        .filter(Q(billable_minutes__gt=0) | Q(over_cap_minutes__gt=0))
    if client is not None:
        entries = entries.filter(project__client=client)
    # Locking the candidates makes a concurrent run wait, then skip what this one billed.
    return (entries.select_for_update(of=("self",))
            .annotate(billed_before=Exists(_issued_originals().filter(time_entry=OuterRef("pk"))))
            .order_by("project__client_id", "id").values_list(*ENTRY_FIELDS).iterator(chunk_size=ENTRY_CHUNK))


def _by_client(rows) -> Iterator[tuple[int, list[_Entry]]]:
    """(client id, its entries) from rows ordered by client."""
    client_id, entries = None, []
    for row in rows:
        entry = _Entry._make(row)
        if entry.client_id != client_id:
            if entries:
                yield client_id, entries
            client_id, entries = entry.client_id, []
        entries.append(entry)
    if entries:
        yield client_id, entries


def billing_run_create(*, period_start: dt.date, period_end: dt.date, client: Client | None = None,
                       user=None) -> BillingRunResult:
    """Draft invoices for every approved, billable, not yet invoiced entry of the period, and due fees."""
    if period_end < period_start:
        raise ValidationError({"period_end": "The period cannot end before it starts."})
    try:
        with transaction.atomic():
            run = BillingRun.objects.create(period_start=period_start, period_end=period_end, client=client,
                                            started_by=user)
            firm = _firm(client)
            fees = _fees(firm, client, period_start, period_end)
            writer = _Writer(run, user)
            for client_id, entries in _by_client(_candidates(period_start, period_end, client)):
                builder = _Builder(period_start, period_end, firm)
                _bill_client(builder, entries, fees.contracts.pop(client_id, []), fees)
                writer.add(builder.drafts.values())
            # Clients whose only charges this period are fees.
            for fee_contracts in fees.contracts.values():
                builder = _Builder(period_start, period_end, firm)
                _add_fees(builder, fee_contracts, fees)
                writer.add(builder.drafts.values())
            writer.flush()
            if writer.entries:
                TimeEntry.objects.filter(id__in=Allocation.objects.filter(line__invoice__billing_run=run)
                                         .values("time_entry_id")).update(status=EntryStatus.INVOICED)
            invoices = writer.invoices
            run.invoices_created, run.entries_billed = len(invoices), writer.entries
            run.finished_at = timezone.now()
            run.summary = f"{len(invoices)} draft invoices, {run.entries_billed} entries, {writer.lines} lines"
            run.save(update_fields=["invoices_created", "entries_billed", "finished_at", "summary"])
    except IntegrityError as error:
        raise BillingConflict(
            "Another billing run billed some of the same time or fees at the same moment; nothing was saved. "
            "Run it again to bill what is left."
        ) from error
    return BillingRunResult(run=run, invoices=invoices)


def _entries_on(invoices) -> list[int]:
    return list(Allocation.objects.filter(line__invoice__in=invoices, is_live=True)
                .values_list("time_entry_id", flat=True))


def _written_off_on(invoice: Invoice) -> list[int]:
    """Entries finance wrote off on this draft while resolving the client's disputes."""
    return sorted(Allocation.objects.filter(line__invoice=invoice, written_off=True)
                  .values_list("time_entry_id", flat=True))


def invoice_draft_delete(*, invoice: Invoice, user=None, keeping_write_offs: bool = False) -> int:
    """Delete a draft and release its entries and fees for the next run; returns the entries released.

    A draft on which disputes wrote time off is not deleted: the write-offs live on its lines, so the next
    run would bill that time again. Regenerating it keeps them (`keeping_write_offs`).
    """
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.status != InvoiceStatus.DRAFT:
            raise ValidationError("Only a draft can be deleted; void an issued invoice instead.")
        written_off = _written_off_on(invoice)
        if written_off and not keeping_write_offs:
            raise ValidationError(
                f"This draft holds time written off while resolving disputes (entries "
                f"{', '.join(map(str, written_off))}): deleting it would bill that time again. Regenerate the "
                "draft instead; the write-offs carry over to the new draft.")
        entry_ids = _entries_on([invoice])
        TimeEntry.objects.filter(id__in=entry_ids, status=EntryStatus.INVOICED).update(status=EntryStatus.APPROVED)
        invoice.delete()
    return len(entry_ids)


def invoice_draft_regenerate(*, invoice: Invoice, user=None) -> BillingRunResult:
    """Release a draft and bill its client's period again (picks up new rates, entries and preferences).

    Time written off on the draft while resolving disputes stays written off on the new draft.
    """
    from billing.review import write_off_entries

    with transaction.atomic():
        client, start, end = invoice.client, invoice.period_start, invoice.period_end
        written_off = _written_off_on(invoice)
        invoice_draft_delete(invoice=invoice, user=user, keeping_write_offs=True)
        result = billing_run_create(period_start=start, period_end=end, client=client, user=user)
        if written_off:
            write_off_entries(invoices=result.invoices, entry_ids=written_off)
            for fresh in result.invoices:
                fresh.refresh_from_db()
        return result
