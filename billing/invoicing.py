"""Billing runs: approved billable time, fees and retainers become draft invoices (PRODUCT.md, Invoices).

A run locks the candidate entries, groups them into invoices by the client's consolidation and into
lines by its grouping and rate, ties every entry to one line with an allocation, and records fees as
charges that can be taken once. Deleting a draft releases everything it held.
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
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
from projects.models import EntryStatus, TimeEntry


class BillingConflict(Exception):
    """Another billing run took the same fee or entries at the same moment; nothing was saved."""


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
    allocations: list[Allocation] = field(default_factory=list)
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


def _grouping(entry: TimeEntry, grouping: str) -> tuple[tuple, str]:
    """The line key and description of an entry under the client's grouping."""
    if grouping == LineGrouping.MEMBER:
        return ("member", entry.member_id), entry.member.name
    if grouping == LineGrouping.PROJECT:
        return ("project", entry.project_id), entry.project.name
    if grouping == LineGrouping.DAY:
        return ("day", entry.work_date), f"{entry.work_date:%a %d %b %Y}"
    if grouping == LineGrouping.DETAILED:
        text = f"{entry.work_date:%Y-%m-%d} · {entry.member.name} · {entry.task_type.name}"
        if entry.description:
            text += f" · {entry.description}"
        return ("entry", entry.id), text[:300]
    return ("task_type", entry.task_type_id), entry.task_type.name


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
    def __init__(self, start: dt.date, end: dt.date):
        self.start, self.end = start, end
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

    def add_entry(self, entry: TimeEntry, already_billed: int) -> None:
        contract, client = entry.project.contract, entry.project.client
        draft = self.draft(client, contract, entry.project_id)
        rate = entry.rate.amount if entry.rate is not None else ZERO
        billable = entry.billable_minutes - already_billed
        covered = entry.covered_minutes if not already_billed else 0
        over_cap = entry.over_cap_minutes if not already_billed else 0
        billed_at_rate = billable - covered
        group_key, description = _grouping(entry, client.line_grouping)

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
        line.allocations.append(Allocation(time_entry=entry, minutes=minutes, amount=amount,
                                           covered_minutes=covered, over_cap_minutes=over_cap))

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


def _add_fees(builder: _Builder, client_filter: Q, taken: set) -> None:
    contracts = Contract.objects.filter(client_filter, status=ContractStatus.ACTIVE, start_date__lte=builder.end) \
        .filter(Q(end_date__isnull=True) | Q(end_date__gte=builder.start)) \
        .filter(billing_type__in=(BillingType.RETAINER, BillingType.FIXED_FEE)).select_related("client")
    milestones = defaultdict(list)
    for milestone in FeeMilestone.objects.filter(contract__in=contracts, completed_on__isnull=False,
                                                 completed_on__lte=builder.end):
        milestones[milestone.contract_id].append(milestone)
    for contract in contracts:
        if contract.billing_type == BillingType.RETAINER and contract.retainer_amount is not None:
            first = max(builder.start, contract.start_date)
            last = min(builder.end, contract.end_date or builder.end)
            for month in months_between(first, last):
                if (contract.id, LineKind.RETAINER_FEE, month) not in taken:
                    builder.add_fee(contract, LineKind.RETAINER_FEE, month, contract.retainer_amount.amount,
                                    f"Retainer {month:%B %Y} ({contract.number}), covering "
                                    f"{contract.retainer_hours:.2f} h")
        elif contract.fixed_fee_schedule == FixedFeeSchedule.MILESTONES:
            for milestone in milestones[contract.id]:
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


def _taken_charges(client: Client | None) -> set:
    """Fees already on an invoice: (contract, kind, period start), or (contract, kind, milestone)."""
    charges = ContractCharge.objects.all() if client is None else ContractCharge.objects.filter(contract__client=client)
    return {(contract_id, kind, milestone_id or period_start) for contract_id, kind, period_start, milestone_id
            in charges.values_list("contract_id", "kind", "period_start", "milestone_id")}


def _already_billed(entry_ids: list[int]) -> dict[int, int]:
    """Minutes of each entry still billed on issued invoices after earlier credits that released it."""
    rows = (Allocation.objects.filter(time_entry_id__in=entry_ids, is_live=False, reverses__isnull=True,
                                      line__invoice__status__in=ISSUED_STATUSES)
            .values("time_entry_id").annotate(billed=Sum("minutes"), credited=Sum("credited_minutes")))
    return {row["time_entry_id"]: (row["billed"] or 0) - (row["credited"] or 0) for row in rows}


def _save(builder: _Builder, run: BillingRun, user) -> list[Invoice]:
    invoices, lines, allocations, charges = [], [], [], []
    for draft in builder.drafts.values():
        if not draft.lines:
            continue
        invoice = Invoice(
            client=draft.client, contract=draft.contract, project_id=draft.project_id, currency=draft.currency,
            billing_run=run, period_start=run.period_start, period_end=run.period_end,
            tax_rate=draft.client.tax_rate, payment_terms_days=draft.client.payment_terms_days,
        )
        invoice._lines = sorted(draft.lines.values(), key=lambda line: line.sort_key)
        invoices.append(invoice)
    Invoice.objects.bulk_create(invoices)
    for invoice in invoices:
        for position, draft_line in enumerate(invoice._lines, start=1):
            line = InvoiceLine(invoice=invoice, position=position, kind=draft_line.kind,
                               description=draft_line.description, quantity=draft_line.quantity,
                               unit_rate=draft_line.unit_rate, amount=draft_line.amount, minutes=draft_line.minutes,
                               project_id=draft_line.project_id, contract_id=draft_line.contract_id)
            line._draft = draft_line
            lines.append(line)
    InvoiceLine.objects.bulk_create(lines)
    for invoice in invoices:
        invoice.subtotal = sum((line.amount for line in invoice._lines), ZERO)
        invoice.tax = round_money(invoice.subtotal * invoice.tax_rate / 100)
        invoice.total = invoice.subtotal + invoice.tax
    for line in lines:
        for allocation in line._draft.allocations:
            allocation.line = line
            allocations.append(allocation)
        if line._draft.charge is not None:
            line._draft.charge.line = line
            charges.append(line._draft.charge)
    Invoice.objects.bulk_update(invoices, ["subtotal", "tax", "total"])
    Allocation.objects.bulk_create(allocations, batch_size=1000)
    ContractCharge.objects.bulk_create(charges)
    TimeEntry.objects.filter(id__in=[allocation.time_entry_id for allocation in allocations]) \
        .update(status=EntryStatus.INVOICED)
    InvoiceEvent.objects.bulk_create([
        InvoiceEvent(invoice=invoice, actor=user, action="created", status_after=InvoiceStatus.DRAFT,
                     details={"billing_run": run.id, "lines": len(invoice._lines), "total": str(invoice.total)})
        for invoice in invoices
    ])
    run.entries_billed = len(allocations)
    return invoices


def billing_run_create(*, period_start: dt.date, period_end: dt.date, client: Client | None = None,
                       user=None) -> BillingRunResult:
    """Draft invoices for every approved, billable, not yet invoiced entry of the period, and due fees."""
    if period_end < period_start:
        raise ValidationError({"period_end": "The period cannot end before it starts."})
    client_filter = Q(client=client) if client is not None else Q()
    try:
        with transaction.atomic():
            run = BillingRun.objects.create(period_start=period_start, period_end=period_end, client=client,
                                            started_by=user)
            entry_filter = Q(project__client=client) if client is not None else Q()
            # Locking the candidates makes a concurrent run wait, then skip what this one billed.
            entries = list(
                TimeEntry.objects.select_for_update(of=("self",))
                .filter(entry_filter, status=EntryStatus.APPROVED, work_date__range=(period_start, period_end))
                .filter(Q(billable_minutes__gt=0) | Q(over_cap_minutes__gt=0))
                .select_related("project__contract", "project__client", "member", "task_type")
                .order_by("id")
            )
            builder = _Builder(period_start, period_end)
            billed_before = _already_billed([entry.id for entry in entries])
            for entry in entries:
                already = billed_before.get(entry.id, 0)
                if already >= entry.billable_minutes and already:
                    continue
                builder.add_entry(entry, already)
            _add_fees(builder, client_filter, _taken_charges(client))
            invoices = _save(builder, run, user)
            run.invoices_created = len(invoices)
            run.finished_at = timezone.now()
            run.summary = (f"{len(invoices)} draft invoices, {run.entries_billed} entries, "
                           f"{sum(1 for i in invoices for _ in i._lines)} lines")
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


def invoice_draft_delete(*, invoice: Invoice, user=None) -> int:
    """Delete a draft and release its entries and fees for the next run; returns the entries released."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.status != InvoiceStatus.DRAFT:
            raise ValidationError("Only a draft can be deleted; void an issued invoice instead.")
        entry_ids = _entries_on([invoice])
        TimeEntry.objects.filter(id__in=entry_ids, status=EntryStatus.INVOICED).update(status=EntryStatus.APPROVED)
        invoice.delete()
    return len(entry_ids)


def invoice_draft_regenerate(*, invoice: Invoice, user=None) -> BillingRunResult:
    """Release a draft and bill its client's period again (picks up new rates, entries and preferences)."""
    with transaction.atomic():
        client, start, end = invoice.client, invoice.period_start, invoice.period_end
        invoice_draft_delete(invoice=invoice, user=user)
        return billing_run_create(period_start=start, period_end=end, client=client, user=user)
