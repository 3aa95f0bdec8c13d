"""Step 3 of the pipeline: approve rated entries automatically or hold them, with every reason.

Set-based: the policy, the entries' existing requests, the budgets' prior use and the clients' monthly
spend are each one query for the whole batch.
"""

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from approvals.models import ApprovalPolicy, ApprovalReason, ApprovalRequest, ApprovalStatus
from projects.budgets import USING_STATUSES, OtherEntriesTotals
from projects.bulk import Unwritten, create_all, update_fields
from projects.models import EntryStatus, TimeEntry

# Entries that use a budget or a client's spend: processed and still going to be billed.
COUNTED_STATUSES = USING_STATUSES
# A person's decision stands until the entry's facts change (which resets it to recorded).
HUMAN_DECISIONS = (ApprovalStatus.APPROVED, ApprovalStatus.REJECTED)


def _money(value: Decimal, currency: str) -> str:
    return f"{value:,.2f} {currency}"


def _duration(minutes: int) -> str:
    return f"{minutes // 60}:{minutes % 60:02d} h"


@dataclass
class Thresholds:
    max_amount: Decimal
    max_minutes: int
    budget_percent: int
    spend_limit: Decimal | None


def thresholds_for(contract, policy: ApprovalPolicy | None) -> Thresholds:
    """The contract's overrides where it has them, the firm's policy for the rest."""
    return Thresholds(
        max_amount=contract.auto_approve_max_amount.amount if contract.auto_approve_max_amount is not None
        else (policy.auto_approve_max_amount if policy else Decimal("1000.00")),
        max_minutes=contract.auto_approve_max_minutes if contract.auto_approve_max_minutes is not None
        else (policy.auto_approve_max_minutes if policy else 600),
        budget_percent=contract.budget_review_percent if contract.budget_review_percent is not None
        else (policy.budget_review_percent if policy else 90),
        spend_limit=contract.monthly_spend_limit.amount if contract.monthly_spend_limit is not None else None,
    )


class _Use:
    """Running totals while the batch is walked in (work date, id) order."""

    def __init__(self, entries: list[TimeEntry]):
        ids = [e.id for e in entries]
        # The budget refresh after routing reuses these sums (see OtherEntriesTotals).
        self.others = OtherEntriesTotals({e.project_id for e in entries}, ids)
        self.budget = {project_id: list(self.others.used(project_id)) for project_id in self.others.by_project}
        months = {e.work_date.replace(day=1) for e in entries}
        client_ids = {e.project.client_id for e in entries}
        self.spend: dict[tuple, Decimal] = defaultdict(Decimal)
        if months:
            spend_rows = (
                TimeEntry.objects.filter(project__client_id__in=client_ids, status__in=COUNTED_STATUSES,
                                         work_date__gte=min(months))
                .exclude(id__in=ids)
                .filter(billable_minutes__gt=0)
                .annotate(month=TruncMonth("work_date"))
                .values("project__client_id", "month", "amount_currency")
                .annotate(total=Sum("amount"))
            )
            for row in spend_rows:
                month = row["month"]
                month = month.date() if hasattr(month, "date") else month
                self.spend[(row["project__client_id"], month, row["amount_currency"])] += row["total"] or 0

    def add_to_budget(self, entry: TimeEntry) -> tuple[int, Decimal]:
        used = self.budget.setdefault(entry.project_id, [0, Decimal("0")])
        used[0] += entry.minutes
        used[1] += entry.amount.amount if entry.amount is not None else Decimal("0")
        return used[0], used[1]

    def add_to_spend(self, entry: TimeEntry) -> Decimal:
        key = (entry.project.client_id, entry.work_date.replace(day=1), entry.project.contract.currency)
        self.spend[key] += entry.amount.amount if entry.amount is not None else Decimal("0")
        return self.spend[key]


def budget_percent_used(project, minutes: int, amount: Decimal) -> Decimal | None:
    """The larger of hours and amount use, in percent; None when the project has no budget."""
    percents = []
    if project.budget_hours:
        percents.append(Decimal(minutes) / 60 / project.budget_hours * 100)
    if project.budget_amount is not None and project.budget_amount.amount > 0:
        percents.append(amount / project.budget_amount.amount * 100)
    return max(percents) if percents else None


def reasons_for(entry: TimeEntry, limits: Thresholds, use: _Use) -> list[tuple[str, str]]:
    """Every rule the entry trips, as (code, readable message)."""
    contract = entry.project.contract
    currency = contract.currency
    amount = entry.amount.amount if entry.amount is not None else Decimal("0")
    reasons = []
    if amount > limits.max_amount:
        reasons.append((ApprovalReason.AMOUNT_OVER_LIMIT,
                        f"Amount {_money(amount, currency)} is over the auto-approval limit of "
                        f"{_money(limits.max_amount, currency)}."))
    if entry.minutes > limits.max_minutes:
        reasons.append((ApprovalReason.HOURS_OVER_LIMIT,
                        f"{_duration(entry.minutes)} is longer than the auto-approval limit of "
                        f"{_duration(limits.max_minutes)}."))
    minutes_used, amount_used = use.add_to_budget(entry)
    percent = budget_percent_used(entry.project, minutes_used, amount_used)
    if percent is not None and percent >= limits.budget_percent:
        reasons.append((ApprovalReason.BUDGET_THRESHOLD,
                        f"With this entry the budget of {entry.project.code} is {percent:.1f}% used "
                        f"(review from {limits.budget_percent}%)."))
    if entry.billable_minutes > 0 and amount > 0:
        spent = use.add_to_spend(entry)
        if limits.spend_limit is not None and spent > limits.spend_limit:
            reasons.append((ApprovalReason.CLIENT_SPEND_LIMIT,
                            f"{entry.project.client.name}'s billable time in {entry.work_date:%B %Y} reaches "
                            f"{_money(spent, currency)}, over the monthly limit of "
                            f"{_money(limits.spend_limit, currency)}."))
    if entry.over_cap_minutes > 0:
        reasons.append((ApprovalReason.CAP_EXCEEDED,
                        f"{_duration(entry.over_cap_minutes)} of this entry is over the cap of contract "
                        f"{contract.number}."))
    if entry.billability_reason == "no_rate":
        reasons.append((ApprovalReason.NO_RATE, f"No rate on contract {contract.number} matches this entry."))
    return reasons


def route_entries(entries: list[TimeEntry]) -> dict[str, int]:
    """Approve or hold each rated entry; a person's decision stands unless the entry's facts changed.

    Rated values left unwritten (`Unwritten`) are written with the statuses: one update of each entry.
    """
    if not entries:
        return {"approved": 0, "held": 0, "kept": 0}
    policy = ApprovalPolicy.objects.filter(is_active=True).first()
    requests = {r.time_entry_id: r for r in ApprovalRequest.objects.filter(time_entry_id__in=[e.id for e in entries])}
    use = _Use(entries)
    now = timezone.now()
    counts = {"approved": 0, "held": 0, "kept": 0}
    to_create, to_update, entries_to_update = [], [], []

    for entry in sorted(entries, key=lambda e: (e.work_date, e.id)):
        request = requests.get(entry.id)
        if entry.status == EntryStatus.INVOICED:
            continue
        if request is not None and request.status in HUMAN_DECISIONS and entry.status != EntryStatus.RECORDED:
            # Keep the decision; the entry still uses its budget and spend for the entries after it.
            if entry.status != EntryStatus.REJECTED:
                use.add_to_budget(entry)
                if entry.billable_minutes > 0:
                    use.add_to_spend(entry)
            counts["kept"] += 1
            continue
        reasons = reasons_for(entry, thresholds_for(entry.project.contract, policy), use)
        if request is None:
            request = ApprovalRequest(time_entry=entry, requested_at=now)
            to_create.append(request)
        else:
            to_update.append(request)
        request.reasons = [code for code, _ in reasons]
        request.reason_messages = [message for _, message in reasons]
        request.policy = policy
        request.decided_by = None
        if reasons:
            request.status, request.decided_at, request.note = ApprovalStatus.PENDING, None, ""
            request.requested_at = now
            entry.status = EntryStatus.PENDING
            counts["held"] += 1
        else:
            request.status, request.decided_at = ApprovalStatus.AUTO_APPROVED, now
            request.note = f"Approved automatically under the policy “{policy.name if policy else 'default'}”."
            entry.status = EntryStatus.APPROVED
            counts["approved"] += 1
        entries_to_update.append(entry)

    create_all(to_create)
    update_fields(to_update, ["status", "reasons", "reason_messages", "policy", "decided_by", "decided_at", "note",
                              "requested_at"])
    if isinstance(entries, Unwritten):
        update_fields(entries, [*entries.fields, "status"])
        # Every entry is now written as it is in memory: the budget refresh may add them to these sums.
        entries.other_totals = use.others
        return counts
    # Two statuses at most: one plain UPDATE each is far cheaper than a CASE per row.
    by_status = defaultdict(list)
    for entry in entries_to_update:
        by_status[entry.status].append(entry.id)
    for status, ids in by_status.items():
        TimeEntry.objects.filter(id__in=ids).update(status=status)
    return counts
