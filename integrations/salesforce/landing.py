"""Landing Salesforce records in our tables, a page at a time: accounts, contracts, rate cards.

Each function takes a page of parsed records (mapping.py) and costs a fixed handful of queries whatever
the page size: refs and local objects are read in bulk, checked in memory (the model's own validation,
and the database's check constraints by construction), and written with bulk creates and updates. What
cannot land gets its reason in the Outcome, for the quarantine.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from functools import reduce
from operator import or_

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from djmoney.money import Money

from billing.models import Rate
from clients.models import Client, Contract
from integrations.models import ExternalRef, MatchedBy, Provider, RefKind
from integrations.refs import Described, resolve_refs
from integrations.salesforce.mapping import CONTRACT_TERMS, Parsed, SalesforceConfig
from projects.models import Role, TaskType, TeamMember

# Quarantine kinds, and the ExternalRef kinds of contracts and rate lines (accounts use RefKind.CLIENT).
ACCOUNT, CONTRACT, RATE_CARD = "account", "contract", "rate_card"
CONTRACT_REF, RATE_REF = RefKind.CONTRACT, RefKind.RATE
# Contract terms that rating and approval routing read: changing one re-rates the open entries.
RATING_TERMS = ("billing_type", "currency", "start_date", "end_date", "rounding_increment", "rounding_mode",
                "cap_hours", "cap_amount", "cap_period", "monthly_spend_limit", "retainer_amount",
                "retainer_hours")
MONEY_TERMS = {name for name, kind in CONTRACT_TERMS.items() if kind == "money"}


@dataclass
class Outcome:
    """What landing one page did."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    reasons: dict[str, str] = field(default_factory=dict)
    landed: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Contract id -> the first day to re-rate from (None: all of its open entries).
    reprocess: dict[int, date | None] = field(default_factory=dict)

    def rerate(self, contract_id: int, from_date: date | None) -> None:
        if contract_id not in self.reprocess:
            self.reprocess[contract_id] = from_date
        else:
            known = self.reprocess[contract_id]
            # None (every open entry) covers any day.
            self.reprocess[contract_id] = None if None in (known, from_date) else min(known, from_date)

    def count(self, created: bool, changed: bool) -> None:
        if created:
            self.created += 1
        elif changed:
            self.updated += 1
        else:
            self.unchanged += 1


def _messages(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return "; ".join(f"{name}: {' '.join(messages)}" for name, messages in error.message_dict.items())
    return " ".join(error.messages)


def _split(parsed: list[Parsed], outcome: Outcome) -> list[Parsed]:
    """The live, well-formed records; the malformed get their reasons, the deleted are set aside."""
    good = []
    for record in parsed:
        if record.deleted:
            outcome.gone.append(record.id)
        elif record.problems:
            outcome.reasons[record.id] = record.reason
        else:
            good.append(record)
    return good


# --- accounts -------------------------------------------------------------------------------------------

def _unique_codes(wanted: dict[str, str]) -> dict[str, str]:
    """A free client code for each record (record id -> wanted code), suffixed -2, -3... when taken."""
    if not wanted:
        return {}
    condition = reduce(or_, [Q(code=code) | Q(code__startswith=f"{code}-") for code in set(wanted.values())])
    taken = set(Client.objects.filter(condition).values_list("code", flat=True))
    codes = {}
    for record_id, code in wanted.items():
        candidate, number = code, 1
        while candidate in taken:
            number += 1
            candidate = f"{code[:32 - len(str(number)) - 1]}-{number}"
        taken.add(candidate)
        codes[record_id] = candidate
    return codes


def land_accounts(parsed: list[Parsed], config: SalesforceConfig) -> Outcome:
    outcome = Outcome()
    good = _split(parsed, outcome)
    by_id = {record.id: record for record in good}
    code_field = config.api("account", "code")
    # New accounts are matched to an existing client by number (our code) or name, when exactly one fits.
    def describe(ids: set[str]) -> dict[str, Described]:
        return {i: Described(label=by_id[i].values["name"], name=by_id[i].values["name"],
                             code=str(by_id[i].payload.get(code_field) or "") if code_field else "")
                for i in ids}

    refs = resolve_refs(provider=Provider.SALESFORCE, kind=RefKind.CLIENT, external_ids=set(by_id),
                        describe=describe)
    clients = Client.objects.in_bulk([ref.local_id for ref in refs.values() if ref.local_id])
    codes = _unique_codes({record.id: record.values["code"] for record in good
                           if refs[record.id].local_id not in clients})
    now = timezone.now()
    created, changed, landed = [], [], {}
    for record in good:
        # The code is ours once the client exists; an empty optional term keeps our value.
        values = {name: value for name, value in record.values.items()
                  if name != "code" and value is not None}
        client = clients.get(refs[record.id].local_id)
        is_new = client is None
        client = client or Client(code=codes[record.id])
        changes = [name for name, value in values.items() if getattr(client, name) != value]
        for name in changes:
            setattr(client, name, values[name])
        try:
            # Codes are made unique above; the check constraints hold by construction (see mapping.py), and
            # validating either here would cost queries per record.
            client.full_clean(validate_unique=False, validate_constraints=False)
        except ValidationError as error:
            outcome.reasons[record.id] = _messages(error)
            continue
        if is_new:
            created.append(client)
        elif changes:
            client.updated_at = now
            changed.append(client)
        landed[record.id] = client
        outcome.landed.append(record.id)
        outcome.count(is_new, bool(changes))
    Client.objects.bulk_create(created)
    Client.objects.bulk_update(changed, ["name", "currency", "payment_terms_days", "updated_at"])
    # Refs stored by resolve_refs a moment ago: read back with their keys to point them at the clients.
    stored = {ref.external_id: ref for ref in ExternalRef.objects.filter(
        provider=Provider.SALESFORCE, kind=RefKind.CLIENT, external_id__in=list(landed))}
    _link(Provider.SALESFORCE, RefKind.CLIENT, stored,
          {record_id: (client.id, client.name) for record_id, client in landed.items()})
    deleted = ExternalRef.objects.filter(provider=Provider.SALESFORCE, kind=RefKind.CLIENT,
                                         external_id__in=outcome.gone, local_id__isnull=False)
    outcome.notes += [f"Account {ref.label or ref.external_id} was deleted in Salesforce; its client is kept."
                      for ref in deleted]
    return outcome


# --- contracts ------------------------------------------------------------------------------------------

def _terms(contract: Contract) -> list:
    return [getattr(contract, name) for name in RATING_TERMS]


def _contract_values(record: Parsed, currency: str) -> dict:
    values = {name: value for name, value in record.values.items() if name not in ("account", "currency")}
    values["currency"] = currency
    for name in MONEY_TERMS & values.keys():
        if values[name] is not None:
            values[name] = Money(values[name], currency)
    # An empty choice in Salesforce leaves ours as it is (a new contract takes our default).
    for name in ("status", "billing_type", "cap_period", "rounding_mode"):
        if name in values and values[name] is None:
            del values[name]
    return values


def land_contracts(parsed: list[Parsed], config: SalesforceConfig) -> Outcome:
    outcome = Outcome()
    good = _split(parsed, outcome)
    ids, numbers = [record.id for record in good], [record.values["number"] for record in good]
    accounts = dict(ExternalRef.objects.filter(
        provider=Provider.SALESFORCE, kind=RefKind.CLIENT, local_id__isnull=False,
        external_id__in={record.values["account"] for record in good}).values_list("external_id", "local_id"))
    refs = {ref.external_id: ref for ref in ExternalRef.objects.filter(
        provider=Provider.SALESFORCE, kind=CONTRACT_REF, external_id__in=ids)}
    contracts = {contract.id: contract for contract in Contract.objects.filter(
        Q(id__in=[ref.local_id for ref in refs.values() if ref.local_id]) | Q(number__in=numbers))}
    by_number = {contract.number: contract for contract in contracts.values()}
    # Contracts of these numbers already linked to other Salesforce records.
    claimed = set(ExternalRef.objects.filter(provider=Provider.SALESFORCE, kind=CONTRACT_REF,
                                             local_id__in=[c.id for c in by_number.values()])
                  .exclude(external_id__in=ids).values_list("local_id", flat=True))
    clients = Client.objects.in_bulk(set(accounts.values()))
    created, changed, landed, seen = [], [], {}, set()
    for record in good:
        number = record.values["number"]
        client = clients.get(accounts.get(record.values["account"]))
        ref = refs.get(record.id)
        contract = contracts.get(ref.local_id) if ref is not None else None
        if contract is None and number in by_number:
            contract = by_number[number]
        problem = None
        if client is None:
            problem = (f"Its account {record.values['account']} is not synced as a client (left out by "
                       "SALESFORCE_ACCOUNT_FILTER, or not read yet): the contract lands once its account "
                       "does.")
        elif number in seen:
            problem = f"Contract number {number} comes twice in one page."
        elif contract is not None and contract.id in claimed:
            problem = f"Contract number {number} is already linked to another Salesforce contract."
        elif contract is not None and contract.client_id != client.id:
            problem = (f"Contract {number} belongs to client #{contract.client_id} in Billable, not to this "
                       "account's client; contracts keep their client (their projects and invoices hang off "
                       "it).")
        if problem:
            outcome.reasons[record.id] = problem
            continue
        seen.add(number)
        is_new = contract is None
        contract = contract or Contract(client=client)
        before = _terms(contract)
        values = _contract_values(record, record.values.get("currency") or
                                  (client.currency if is_new else contract.currency))
        changes = [name for name, value in values.items() if getattr(contract, name) != value]
        for name in changes:
            setattr(contract, name, values[name])
        try:
            # Numbers are checked above, the client is known to exist, and the check constraints hold by
            # construction (mapping.py, Contract.clean): validating them again would cost queries per record.
            contract.full_clean(exclude=["client"], validate_unique=False, validate_constraints=False)
        except ValidationError as error:
            outcome.reasons[record.id] = _messages(error)
            continue
        if is_new:
            created.append(contract)
        elif changes:
            contract.updated_at = timezone.now()
            changed.append(contract)
            if before != _terms(contract):
                outcome.rerate(contract.id, None)
        landed[record.id] = contract
        outcome.landed.append(record.id)
        outcome.count(is_new, bool(changes))
    Contract.objects.bulk_create(created)
    # django-money: bulk_update writes a currency only when its column is named.
    Contract.objects.bulk_update(changed, ["number", "start_date", "status", "updated_at", *CONTRACT_TERMS,
                                           *(f"{name}_currency" for name in sorted(MONEY_TERMS))])
    _link(Provider.SALESFORCE, CONTRACT_REF, refs, {record_id: (contract.id, f"Contract {contract.number}")
                                                    for record_id, contract in landed.items()})
    deleted = ExternalRef.objects.filter(provider=Provider.SALESFORCE, kind=CONTRACT_REF,
                                         external_id__in=outcome.gone, local_id__isnull=False)
    outcome.notes += [f"Contract {ref.label or ref.external_id} was deleted in Salesforce; it is kept in "
                      "Billable." for ref in deleted]
    return outcome


def _link(provider: str, kind: str, refs: dict[str, ExternalRef], targets: dict[str, tuple[int, str]],
          details: dict[str, dict] | None = None) -> None:
    """Store refs (external id -> (local id, label)), or point existing ones at their local objects."""
    new, moved = [], []
    for external_id, (local_id, label) in targets.items():
        ref = refs.get(external_id)
        extra = (details or {}).get(external_id)
        if ref is None:
            # Linked by its Salesforce id (and made by us where nothing matched): "by code".
            new.append(ExternalRef(provider=provider, kind=kind, external_id=external_id, local_id=local_id,
                                   label=label[:255], matched_by=MatchedBy.CODE, details=extra or {}))
        elif (ref.local_id, ref.label) != (local_id, label[:255]) or extra not in (None, ref.details):
            if ref.local_id is None:
                ref.matched_by = MatchedBy.CODE
            ref.local_id, ref.label = local_id, label[:255]
            if extra is not None:
                ref.details = extra
            moved.append(ref)
    ExternalRef.objects.bulk_create(new)
    ExternalRef.objects.bulk_update(moved, ["local_id", "label", "details", "matched_by"])


# --- rate cards -----------------------------------------------------------------------------------------

class Directory:
    """Roles, task types and members named by rate lines, read once per page (three queries)."""

    def __init__(self, lines: list[Parsed]):
        wanted = {name: {str(line.values[name]).casefold() for line in lines if line.values.get(name)}
                  for name in ("role", "task_type", "member")}
        self.roles = self._index(Role.objects.annotate(code_key=Lower("code"), name_key=Lower("name"))
                                 .filter(Q(code_key__in=wanted["role"]) | Q(name_key__in=wanted["role"])))
        self.task_types = self._index(
            TaskType.objects.annotate(code_key=Lower("code"), name_key=Lower("name"))
            .filter(Q(code_key__in=wanted["task_type"]) | Q(name_key__in=wanted["task_type"])))
        self.members = {member.email.casefold(): member.id for member in TeamMember.objects.annotate(
            email_key=Lower("email")).filter(email_key__in=wanted["member"])}

    @staticmethod
    def _index(rows) -> dict[str, set[int]]:
        index: dict[str, set[int]] = defaultdict(set)
        for row in rows:
            index[row.code.casefold()].add(row.id)
            index[row.name.casefold()].add(row.id)
        return index

    def find(self, line: Parsed, problems: list[str]) -> dict:
        """The role, task type and member ids of a line (None where it names none)."""
        found = {"role_id": None, "task_type_id": None, "member_id": None}
        for name, index, what in (("role", self.roles, "role"), ("task_type", self.task_types, "task type")):
            value = line.values.get(name)
            if not value:
                continue
            ids = index.get(str(value).casefold(), set())
            if len(ids) != 1:
                problems.append(f"line {line.id}: {what} {value!r} matches "
                                f"{'no' if not ids else 'more than one'} {what} by code or name")
            else:
                found[f"{name}_id"] = next(iter(ids))
        if line.values.get("member"):
            found["member_id"] = self.members.get(str(line.values["member"]).casefold())
            if found["member_id"] is None:
                problems.append(f"line {line.id}: no team member has the email {line.values['member']!r}")
        return found


RATE_FIELDS = ("contract_id", "role_id", "task_type_id", "member_id", "hourly_rate", "effective_from",
               "effective_to")


def _meets(rate: Rate, other: Rate) -> bool:
    """Same level and scope, and periods that meet (Rate.overlapping, in memory)."""
    same = all(getattr(rate, name) == getattr(other, name)
               for name in ("contract_id", "project_id", "member_id", "role_id", "task_type_id"))
    return same and (other.effective_to is None or other.effective_to >= rate.effective_from) and (
        rate.effective_to is None or other.effective_from <= rate.effective_to)


def land_rate_cards(parsed: list[Parsed], config: SalesforceConfig) -> Outcome:
    outcome = Outcome()
    good = _split(parsed, outcome)
    contract_ids = dict(ExternalRef.objects.filter(
        provider=Provider.SALESFORCE, kind=CONTRACT_REF, local_id__isnull=False,
        external_id__in={card.values["contract"] for card in good}).values_list("external_id", "local_id"))
    contracts = Contract.objects.in_bulk(set(contract_ids.values()))
    line_ids = [line.id for card in good for line in card.lines]
    refs = list(ExternalRef.objects.filter(provider=Provider.SALESFORCE, kind=RATE_REF).filter(
        Q(details__card__in=[card.id for card in good] + outcome.gone) | Q(external_id__in=line_ids)))
    rates = Rate.objects.in_bulk([ref.local_id for ref in refs if ref.local_id])
    # Every rate of the contracts as it will stand, card after card, to check overlaps against.
    pool: dict[int, dict[str, Rate]] = defaultdict(dict)
    for rate in Rate.objects.filter(contract_id__in=list(contracts)):
        pool[rate.contract_id][f"rate {rate.id}"] = rate
    directory = Directory([line for card in parsed if not card.deleted for line in card.lines])
    for card in parsed:
        if card.id in outcome.reasons:
            # Malformed: report the names that match nothing as well, so one fix is enough.
            unknown: list[str] = []
            for line in card.lines:
                directory.find(line, unknown)
            if unknown:
                outcome.reasons[card.id] += "; " + "; ".join(unknown)
    line_card = {line.id: card.id for card in good for line in card.lines}
    refs_of: dict[str, dict[str, ExternalRef]] = defaultdict(dict)
    for ref in refs:
        refs_of[line_card.get(ref.external_id) or ref.details.get("card")][ref.external_id] = ref
    drop: list[ExternalRef] = []
    created: list[tuple[str, Rate, str]] = []
    changed: list[Rate] = []
    for card in good:
        contract = contracts.get(contract_ids.get(card.values["contract"]))
        if contract is None:
            outcome.reasons[card.id] = (f"Its contract {card.values['contract']} is not synced yet (or waits "
                                        "in the quarantine): the rate card lands once the contract does.")
            continue
        problems: list[str] = []
        starts, ends = card.values["effective_from"], card.values["effective_to"]
        if ends and ends < starts:
            problems.append(f"it ends ({ends}) before it starts ({starts})")
        wanted: dict[str, Rate] = {}
        for line in card.lines:
            scope = directory.find(line, problems)
            if scope["member_id"] and scope["role_id"]:
                problems.append(f"line {line.id}: a rate is for a member or a role, not both")
            wanted[line.id] = Rate(contract=contract, effective_from=starts, effective_to=ends,
                                   hourly_rate=Money(line.values["hourly_rate"], contract.currency), **scope)
        current = refs_of.get(card.id, {})
        own = {f"rate {ref.local_id}" for ref in current.values()}
        if not problems:
            standing = [rate for key, rate in pool[contract.id].items() if key not in own]
            candidates = list(wanted.items())
            for number, (line_id, rate) in enumerate(candidates):
                clash = next((other for other in standing + [r for _, r in candidates[number + 1:]]
                              if _meets(rate, other)), None)
                if clash is not None:
                    problems.append(f"line {line_id}: overlaps the rate {clash.hourly_rate} from "
                                    f"{clash.effective_from} for the same {rate.level.label}")
                try:
                    rate.clean_fields(exclude=["contract", "project", "member", "role", "task_type"])
                except ValidationError as error:
                    problems.append(f"line {line_id}: {_messages(error)}")
        if problems:
            outcome.reasons[card.id] = "; ".join(problems)
            continue
        for key in own:
            pool[contract.id].pop(key, None)
        pool[contract.id].update({f"line {line_id}": rate for line_id, rate in wanted.items()})
        touched, first_day = False, starts
        for line_id, ref in current.items():
            if line_id not in wanted:
                drop.append(ref)
                touched = True
                if ref.local_id in rates:
                    first_day = min(first_day, rates[ref.local_id].effective_from)
        for line_id, rate in wanted.items():
            stored = rates.get(current[line_id].local_id) if line_id in current else None
            label = f"{contract.number} · {rate.hourly_rate}/h from {starts} (line {line_id})"
            if stored is None:
                created.append((line_id, rate, label))
                touched = True
            elif any(getattr(stored, name) != getattr(rate, name) for name in RATE_FIELDS):
                first_day = min(first_day, stored.effective_from)
                if stored.contract_id != contract.id:
                    # The card moved to another contract: the one it left is re-rated too.
                    outcome.rerate(stored.contract_id, stored.effective_from)
                for name in RATE_FIELDS:
                    setattr(stored, name, getattr(rate, name))
                changed.append(stored)
                touched = True
        if touched:
            outcome.rerate(contract.id, first_day)
        outcome.landed.append(card.id)
        outcome.count(not current, touched)
    for card_id in outcome.gone:
        gone = list(refs_of.get(card_id, {}).values())
        drop += gone
        for ref in gone:
            rate = rates.get(ref.local_id)
            if rate is not None:
                outcome.rerate(rate.contract_id, rate.effective_from)
                outcome.deleted += 1
    Rate.objects.filter(id__in=[ref.local_id for ref in drop if ref.local_id]).delete()
    ExternalRef.objects.filter(id__in=[ref.id for ref in drop]).delete()
    # django-money: bulk_update writes the currency only when its column is named.
    Rate.objects.bulk_update(changed, [*RATE_FIELDS, "hourly_rate_currency"])
    Rate.objects.bulk_create([rate for _, rate, _ in created])
    stored_refs = {ref.external_id: ref for ref in refs}
    _link(Provider.SALESFORCE, RATE_REF, stored_refs,
          {line_id: (rate.id, label) for line_id, rate, label in created},
          details={line_id: {"card": line_card[line_id]} for line_id, _, _ in created})
    return outcome
