"""Rating: billability, rate resolution, rounding, caps and retainers, amount and cost (PRODUCT.md).

Set-based: a batch loads its entries, the entries whose cap or retainer use it may shift, the prior use
before them and every candidate rate in a fixed number of queries, computes in Python, and writes back
with one bulk update. Order: billability, then rounding, then the cap or retainer split, then amount.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import Q, Sum
from django.utils import timezone
from djmoney.money import Money

from billing.models import Rate, RateLevel
from billing.money import ZERO, amount_for, minutes_affordable
from clients.models import BillingType, CapPeriod, Contract, RoundingMode
from projects.models import EntryStatus, TimeEntry

RATED_FIELDS = ["billable_minutes", "over_cap_minutes", "covered_minutes", "rate", "rate_currency", "amount",
                "amount_currency", "cost_amount", "cost_amount_currency", "rate_rule", "billability_reason",
                "rated_at"]

# Entries whose rated values are history: they still count toward caps, but are never re-rated.
FROZEN_STATUSES = (EntryStatus.INVOICED,)
# Entries that will never be billed do not use up a cap or a retainer.
IGNORED_FOR_USE = (EntryStatus.REJECTED,)


class Billability:
    BILLABLE = "billable"
    ENTRY = "entry_non_billable"
    TASK_TYPE = "task_type_non_billable"
    PROJECT = "project_non_billable"
    FIXED_FEE = "contract_fixed_fee"
    NON_BILLABLE_CONTRACT = "contract_non_billable"
    NO_RATE = "no_rate"
    CAP_EXCEEDED = "cap_exceeded"


def round_minutes(minutes: int, increment: int, mode: str) -> int:
    """Round billable minutes to the contract's increment; raw minutes never change."""
    if increment <= 0 or minutes == 0:
        return minutes
    whole, rest = divmod(minutes, increment)
    if rest == 0:
        return minutes
    if mode == RoundingMode.UP:
        whole += 1
    elif mode == RoundingMode.NEAREST and 2 * rest >= increment:
        whole += 1
    return whole * increment


def billability_of(entry: TimeEntry) -> str:
    """The first rule that makes the entry non-billable, in PRODUCT.md's order, else 'billable'."""
    contract = entry.project.contract
    if not entry.billable:
        return Billability.ENTRY
    if not entry.task_type.billable:
        return Billability.TASK_TYPE
    if not entry.project.billable:
        return Billability.PROJECT
    if contract.billing_type == BillingType.FIXED_FEE:
        return Billability.FIXED_FEE
    if contract.billing_type == BillingType.NON_BILLABLE:
        return Billability.NON_BILLABLE_CONTRACT
    return Billability.BILLABLE


class RateCard:
    """Every candidate rate of the batch's contracts, indexed by contract."""

    def __init__(self, rates: Iterable[Rate]):
        self.by_contract: dict[int, list[Rate]] = defaultdict(list)
        for rate in rates:
            self.by_contract[rate.contract_id].append(rate)

    @classmethod
    def load(cls, entries: list[TimeEntry]) -> "RateCard":
        contract_ids = {e.project.contract_id for e in entries}
        if not contract_ids:
            return cls([])
        first, last = min(e.work_date for e in entries), max(e.work_date for e in entries)
        rates = (
            Rate.objects.filter(contract_id__in=contract_ids, effective_from__lte=last)
            .filter(Q(effective_to__isnull=True) | Q(effective_to__gte=first))
            .select_related("contract", "project", "member", "role", "task_type")
            .order_by("id")
        )
        return cls(rates)

    def resolve(self, entry: TimeEntry) -> Rate | None:
        """The first precedence level with a candidate wins; within it, a project-scoped rate wins."""
        member = entry.member
        best: tuple[int, int, int] | None = None
        winner = None
        for rate in self.by_contract.get(entry.project.contract_id, ()):
            if rate.effective_from > entry.work_date or (rate.effective_to and rate.effective_to < entry.work_date):
                continue
            if rate.member_id not in (None, member.id) or rate.role_id not in (None, member.role_id):
                continue
            if rate.task_type_id not in (None, entry.task_type_id):
                continue
            if rate.project_id not in (None, entry.project_id):
                continue
            key = (int(rate.level), 0 if rate.project_id else 1, rate.id)
            if best is None or key < best:
                best, winner = key, rate
        return winner


def describe_rate(rate: Rate) -> str:
    """The winning rate in words: 'Contract C-104 · role Senior Consultant · from 2026-01-01 · 180.00 USD/h'."""
    parts = [f"Contract {rate.contract.number}"]
    if rate.project_id:
        parts.append(f"project {rate.project.code}")
    level = rate.level
    if level == RateLevel.DEFAULT:
        parts.append("contract default")
    else:
        if rate.member_id:
            parts.append(f"member {rate.member.name}")
        if rate.role_id:
            parts.append(f"role {rate.role.name}")
        if rate.task_type_id:
            parts.append(f"task {rate.task_type.name}")
    period = f"from {rate.effective_from:%Y-%m-%d}"
    if rate.effective_to:
        period += f" to {rate.effective_to:%Y-%m-%d}"
    parts.append(period)
    parts.append(f"{rate.hourly_rate.amount:.2f} {rate.hourly_rate.currency}/h")
    return " · ".join(parts)


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _is_sequenced(contract: Contract) -> bool:
    """Contracts whose entries must be rated in (work date, id) order: caps and retainers."""
    if contract.billing_type == BillingType.RETAINER:
        return contract.retainer_hours is not None
    if contract.billing_type == BillingType.TIME_AND_MATERIALS:
        return contract.cap_hours is not None or contract.cap_amount is not None
    return False


def _uses_months(contract: Contract) -> bool:
    return contract.billing_type == BillingType.RETAINER or contract.cap_period == CapPeriod.MONTH


@dataclass
class _Use:
    """What a contract's period has used so far: billable minutes and amount, or covered minutes."""

    minutes: int = 0
    amount: Decimal = ZERO


class _Scope:
    """For each sequenced contract, the earliest date the batch touches and the use before it."""

    def __init__(self, entries: list[TimeEntry]):
        self.contracts: dict[int, Contract] = {}
        self.first_day: dict[int, date] = {}
        for entry in entries:
            contract = entry.project.contract
            if _is_sequenced(contract):
                self.contracts[contract.id] = contract
                known = self.first_day.get(contract.id)
                if known is None or entry.work_date < known:
                    self.first_day[contract.id] = entry.work_date

    def later_entries(self) -> list[TimeEntry]:
        """Every entry on or after the first touched day of each sequenced contract."""
        if not self.contracts:
            return []
        condition = Q()
        for contract_id, day in self.first_day.items():
            condition |= Q(project__contract_id=contract_id, work_date__gte=day)
        return list(_entries_for_rating().filter(condition).exclude(status__in=IGNORED_FOR_USE))

    def prior_use(self) -> dict[int, _Use]:
        """Use of each contract's current period before its first touched day (stored values)."""
        if not self.contracts:
            return {}
        condition = Q()
        for contract_id, day in self.first_day.items():
            contract = self.contracts[contract_id]
            start = _month_start(day) if _uses_months(contract) else date.min
            condition |= Q(project__contract_id=contract_id, work_date__gte=start, work_date__lt=day)
        rows = (
            TimeEntry.objects.filter(condition).exclude(status__in=IGNORED_FOR_USE)
            .values("project__contract_id")
            .annotate(minutes=Sum("billable_minutes"), covered=Sum("covered_minutes"), amount=Sum("amount"))
        )
        use = {}
        for row in rows:
            contract = self.contracts[row["project__contract_id"]]
            if contract.billing_type == BillingType.RETAINER:
                use[contract.id] = _Use(minutes=row["covered"] or 0)
            else:
                use[contract.id] = _Use(minutes=row["minutes"] or 0, amount=row["amount"] or ZERO)
        return use


def _entries_for_rating():
    return TimeEntry.objects.select_related(
        "project__contract", "project__client", "member__role", "task_type"
    )


class _Rated:
    """The outcome for one entry before caps: billable minutes after rounding, and the rate."""

    __slots__ = ("entry", "reason", "minutes", "rate", "rate_rule")

    def __init__(self, entry, reason, minutes, rate, rate_rule):
        self.entry, self.reason, self.minutes, self.rate, self.rate_rule = entry, reason, minutes, rate, rate_rule


def _rate_one(entry: TimeEntry, card: RateCard) -> _Rated:
    reason = billability_of(entry)
    if reason != Billability.BILLABLE:
        return _Rated(entry, reason, 0, None, "")
    rate = card.resolve(entry)
    if rate is None:
        return _Rated(entry, Billability.NO_RATE, 0, None, "No rate on the contract matches this entry")
    contract = entry.project.contract
    minutes = round_minutes(entry.minutes, contract.rounding_increment, contract.rounding_mode)
    return _Rated(entry, reason, minutes, rate.hourly_rate.amount, describe_rate(rate))


def _apply(entry: TimeEntry, rated: _Rated, *, billable: int, over_cap: int, covered: int, now) -> None:
    contract = entry.project.contract
    currency = contract.currency
    entry.billability_reason = Billability.CAP_EXCEEDED if over_cap else rated.reason
    entry.billable_minutes = billable
    entry.over_cap_minutes = over_cap
    entry.covered_minutes = covered
    entry.rate = Money(rated.rate, currency) if rated.rate is not None else None
    entry.amount = Money(amount_for(billable, rated.rate) if rated.rate is not None else ZERO, currency)
    entry.rate_rule = rated.rate_rule
    cost_rate = entry.member.effective_cost_rate
    entry.cost_amount = Money(amount_for(entry.minutes, cost_rate.amount), cost_rate.currency)
    entry.rated_at = now


def _split_for_caps(contract: Contract, rated: _Rated, use: _Use) -> int:
    """How many of the entry's billable minutes stay under the contract's caps; updates `use`."""
    keep = rated.minutes
    if contract.cap_hours is not None:
        cap_minutes = int(contract.cap_hours * 60)
        keep = min(keep, max(cap_minutes - use.minutes, 0))
    if contract.cap_amount is not None and rated.rate:
        keep = min(keep, minutes_affordable(contract.cap_amount.amount - use.amount, rated.rate))
    use.minutes += keep
    use.amount += amount_for(keep, rated.rate) if rated.rate else ZERO
    return keep


def _period_key(contract: Contract, day: date):
    return _month_start(day) if _uses_months(contract) else None


def rate_entries(entries: Iterable[TimeEntry]) -> list[TimeEntry]:
    """Rate these entries (and the later ones of their capped or retainer contracts); returns what changed."""
    ids = {e.id for e in entries}
    if not ids:
        return []
    batch = {e.id: e for e in _entries_for_rating().filter(id__in=ids)}
    scope = _Scope(list(batch.values()))
    for entry in scope.later_entries():
        batch.setdefault(entry.id, entry)
    prior = scope.prior_use()
    card = RateCard.load(list(batch.values()))
    now = timezone.now()

    changed = []
    sequenced: dict[int, list[TimeEntry]] = defaultdict(list)
    for entry in batch.values():
        if entry.project.contract_id in scope.contracts:
            sequenced[entry.project.contract_id].append(entry)
        elif entry.status not in FROZEN_STATUSES:
            rated = _rate_one(entry, card)
            _apply(entry, rated, billable=rated.minutes, over_cap=0, covered=0, now=now)
            changed.append(entry)

    for contract_id, contract_entries in sequenced.items():
        contract = scope.contracts[contract_id]
        first_period = _period_key(contract, scope.first_day[contract_id])
        use_by_period = {first_period: prior.get(contract_id, _Use())}
        for entry in sorted(contract_entries, key=lambda e: (e.work_date, e.id)):
            use = use_by_period.setdefault(_period_key(contract, entry.work_date), _Use())
            if entry.status in FROZEN_STATUSES:
                # Invoiced entries keep their rated values and the use they made.
                if contract.billing_type == BillingType.RETAINER:
                    use.minutes += entry.covered_minutes
                else:
                    use.minutes += entry.billable_minutes
                    use.amount += entry.amount.amount if entry.amount is not None else ZERO
                continue
            rated = _rate_one(entry, card)
            if entry.status in IGNORED_FOR_USE:
                # A rejected entry is never billed, so it takes nothing from the cap or the retainer.
                _apply(entry, rated, billable=rated.minutes, over_cap=0, covered=0, now=now)
            elif contract.billing_type == BillingType.RETAINER:
                covered = min(rated.minutes, max(int(contract.retainer_hours * 60) - use.minutes, 0))
                use.minutes += covered
                _apply(entry, rated, billable=rated.minutes, over_cap=0, covered=covered, now=now)
            else:
                keep = _split_for_caps(contract, rated, use)
                _apply(entry, rated, billable=keep, over_cap=rated.minutes - keep, now=now, covered=0)
            changed.append(entry)

    TimeEntry.objects.bulk_update(changed, RATED_FIELDS, batch_size=1000)
    return changed
