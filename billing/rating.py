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
from projects.bulk import Unwritten, update_fields
from projects.models import EntryStatus, Project, TimeEntry
from projects.time_capture import RecordedEntries

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


@dataclass(frozen=True, slots=True)
class CardRate:
    """One candidate rate as rating needs it: scope, period, hourly amount and the names that describe it.

    Read as plain values: a batch touches hundreds of contracts, and full Rate rows with their five
    related objects cost more to build than the rating itself.
    """

    id: int
    contract_id: int
    project_id: int | None
    member_id: int | None
    role_id: int | None
    task_type_id: int | None
    hourly_rate: Decimal
    currency: str
    effective_from: date
    effective_to: date | None
    contract_number: str
    project_code: str | None
    member_name: str | None
    role_name: str | None
    task_type_name: str | None

    # The same precedence rule as the model's: it reads only the scope's ids.
    level = property(Rate.level.fget)

    FIELDS = ("id", "contract_id", "project_id", "member_id", "role_id", "task_type_id", "hourly_rate",
              "hourly_rate_currency", "effective_from", "effective_to", "contract__number", "project__code",
              "member__name", "role__name", "task_type__name")


class RateCard:
    """Every candidate rate of the batch's contracts, indexed by contract."""

    def __init__(self, rates: Iterable[CardRate]):
        self.by_contract: dict[int, list[CardRate]] = defaultdict(list)
        for rate in rates:
            self.by_contract[rate.contract_id].append(rate)

    @classmethod
    def load(cls, entries: list[TimeEntry]) -> "RateCard":
        contract_ids = {e.project.contract_id for e in entries}
        if not contract_ids:
            return cls([])
        first, last = min(e.work_date for e in entries), max(e.work_date for e in entries)
        rows = (
            Rate.objects.filter(contract_id__in=contract_ids, effective_from__lte=last)
            .filter(Q(effective_to__isnull=True) | Q(effective_to__gte=first))
            .order_by("id").values_list(*CardRate.FIELDS)
        )
        return cls(CardRate(*row) for row in rows)

    def resolve(self, entry: TimeEntry) -> CardRate | None:
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


def describe_rate(rate: CardRate) -> str:
    """The winning rate in words: 'Contract C-104 · role Senior Consultant · from 2026-01-01 · 180.00 USD/h'."""
    parts = [f"Contract {rate.contract_number}"]
    if rate.project_id:
        parts.append(f"project {rate.project_code}")
    level = rate.level
    if level == RateLevel.DEFAULT:
        parts.append("contract default")
    else:
        if rate.member_id:
            parts.append(f"member {rate.member_name}")
        if rate.role_id:
            parts.append(f"role {rate.role_name}")
        if rate.task_type_id:
            parts.append(f"task {rate.task_type_name}")
    period = f"from {rate.effective_from:%Y-%m-%d}"
    if rate.effective_to:
        period += f" to {rate.effective_to:%Y-%m-%d}"
    parts.append(period)
    parts.append(f"{rate.hourly_rate:.2f} {rate.currency}/h")
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
    # Once an entry has crossed a cap, the period is used up: later entries are entirely over cap,
    # even one whose lower rate would still fit in what the crossing entry left of an amount cap.
    exhausted: bool = False


class _Scope:
    """For each sequenced contract, the earliest date the batch touches and the use before it.

    Entries are looked up by the contracts' project ids and work dates, which the (project, work date)
    index answers: a condition on the project's contract would make PostgreSQL scan every entry.
    """

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
        self.contract_of: dict[int, int] = {}
        self.projects: dict[int, list[int]] = defaultdict(list)
        if self.contracts:
            for project_id, contract_id in Project.objects.filter(contract_id__in=self.contracts).values_list(
                    "id", "contract_id"):
                self.contract_of[project_id] = contract_id
                self.projects[contract_id].append(project_id)

    def later_entries(self, *, besides) -> list[TimeEntry]:
        """Every other entry on or after the first touched day of each sequenced contract."""
        if not self.contracts:
            return []
        condition = Q()
        for contract_id, day in self.first_day.items():
            condition |= Q(project_id__in=self.projects[contract_id], work_date__gte=day)
        return list(_entries_for_rating().filter(condition).exclude(status__in=IGNORED_FOR_USE)
                    .exclude(id__in=list(besides)))

    def prior_use(self) -> dict[int, _Use]:
        """Use of each contract's current period before its first touched day (stored values)."""
        if not self.contracts:
            return {}
        condition = Q()
        for contract_id, day in self.first_day.items():
            period = Q(project_id__in=self.projects[contract_id], work_date__lt=day)
            if _uses_months(self.contracts[contract_id]):
                period &= Q(work_date__gte=_month_start(day))
            condition |= period
        rows = (
            TimeEntry.objects.filter(condition).exclude(status__in=IGNORED_FOR_USE)
            .values("project_id")
            .annotate(minutes=Sum("billable_minutes"), covered=Sum("covered_minutes"), amount=Sum("amount"),
                      over_cap=Sum("over_cap_minutes"))
            .order_by()
        )
        use: dict[int, _Use] = {}
        for row in rows:
            contract = self.contracts[self.contract_of[row["project_id"]]]
            total = use.setdefault(contract.id, _Use())
            if contract.billing_type == BillingType.RETAINER:
                total.minutes += row["covered"] or 0
            else:
                total.minutes += row["minutes"] or 0
                total.amount += row["amount"] or ZERO
                total.exhausted = total.exhausted or bool(row["over_cap"])
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
    return _Rated(entry, reason, minutes, rate.hourly_rate, describe_rate(rate))


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
    if use.exhausted:
        return 0
    keep = rated.minutes
    if contract.cap_hours is not None:
        cap_minutes = int(contract.cap_hours * 60)
        keep = min(keep, max(cap_minutes - use.minutes, 0))
    if contract.cap_amount is not None and rated.rate:
        keep = min(keep, minutes_affordable(contract.cap_amount.amount - use.amount, rated.rate))
    use.minutes += keep
    use.amount += amount_for(keep, rated.rate) if rated.rate else ZERO
    use.exhausted = keep < rated.minutes
    return keep


def _period_key(contract: Contract, day: date):
    return _month_start(day) if _uses_months(contract) else None


def _load(entries: Iterable[TimeEntry]) -> dict[int, TimeEntry]:
    """The entries to rate by id: as given when the record step just wrote them, else read afresh."""
    if isinstance(entries, RecordedEntries):
        return {entry.id: entry for entry in entries}
    ids = {e.id for e in entries}
    return {e.id: e for e in _entries_for_rating().filter(id__in=ids)} if ids else {}


def rate_entries(entries: Iterable[TimeEntry], *, write: bool = True) -> list[TimeEntry]:
    """Rate these entries (and the later ones of their capped or retainer contracts); returns what changed.

    With `write=False` the rated values stay in memory, marked unwritten: routing writes them with the
    entries' new statuses in one statement.
    """
    batch = _load(entries)
    if not batch:
        return []
    scope = _Scope(list(batch.values()))
    for entry in scope.later_entries(besides=batch.keys()):
        batch[entry.id] = entry
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
                    use.exhausted = use.exhausted or entry.over_cap_minutes > 0
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

    if not write:
        return Unwritten(changed, RATED_FIELDS)
    update_fields(changed, RATED_FIELDS)
    return changed
