"""Salesforce records read as our terms: accounts → clients, contracts → contracts, rate cards → rates.

Every org names its objects and custom fields its own way, so the names are settings; the defaults are the
standard objects and the custom names in docs/INTEGRATIONS.md §3:

    SALESFORCE_ACCOUNT_OBJECT=Account   SALESFORCE_CONTRACT_OBJECT=Contract
    SALESFORCE_RATE_OBJECT=Rate_Card__c (empty: rates are kept in Billable only)
    SALESFORCE_RATE_LINE_OBJECT=Rate_Card_Line__c   SALESFORCE_RATE_LINES_RELATIONSHIP=Rate_Card_Lines__r
    SALESFORCE_ACCOUNT_FIELDS / _CONTRACT_FIELDS / _RATE_FIELDS / _RATE_LINE_FIELDS:
        "our_name=Api_Name__c,..." overriding FIELD_DEFAULTS below; "our_name=" leaves an optional
        term out (it is then kept as it is in Billable and never read).
    SALESFORCE_ACCOUNT_FILTER: a SOQL condition choosing the accounts that are clients, e.g.
        "Type = 'Customer'" (default: every account).

Parsing never raises: a record comes out with the values read and the problems found, so a malformed
record is quarantined with its reason while the rest of its page lands.
"""

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.utils.text import slugify

from clients.models import BillingType, CapPeriod, ContractStatus, RoundingMode
from integrations.connections import Connection
from integrations.http import PermanentError
from integrations.models import Provider
from integrations.salesforce.client import option, parse_datetime, soql_datetime, soql_string

OBJECT_DEFAULTS = {"account_object": "Account", "contract_object": "Contract", "rate_object": "Rate_Card__c",
                   "rate_line_object": "Rate_Card_Line__c", "rate_lines_relationship": "Rate_Card_Lines__r"}
FIELD_DEFAULTS: dict[str, dict[str, str]] = {
    "account": {
        "name": "Name", "code": "AccountNumber", "currency": "CurrencyIsoCode", "payment_terms": "",
        # Written by the account push (push.py), never read.
        "last_invoice_number": "Last_Invoice_Number__c", "last_invoice_date": "Last_Invoice_Date__c",
        "billed_ytd": "Billed_YTD__c", "outstanding": "Outstanding_Balance__c",
    },
    "contract": {
        "number": "ContractNumber", "account": "AccountId", "start_date": "StartDate", "end_date": "EndDate",
        "status": "StatusCode", "currency": "CurrencyIsoCode", "billing_type": "Billing_Type__c",
        "cap_amount": "Billing_Cap__c", "cap_hours": "", "cap_period": "", "rounding_increment": "",
        "rounding_mode": "", "monthly_spend_limit": "", "retainer_amount": "", "retainer_hours": "",
        "fixed_fee_amount": "",
    },
    "rate": {"contract": "Contract__c", "effective_from": "Effective_From__c",
             "effective_to": "Effective_To__c"},
    "rate_line": {"card": "Rate_Card__c", "role": "Role__c", "task_type": "Task_Type__c",
                  "member": "Member_Email__c", "hourly_rate": "Hourly_Rate__c"},
}
REQUIRED = {"account": {"name"}, "contract": {"number", "account", "start_date"},
            "rate": {"contract", "effective_from"}, "rate_line": {"card", "hourly_rate"}}
ACCOUNT_PUSH_FIELDS = ("last_invoice_number", "last_invoice_date", "billed_ytd", "outstanding")
# How each contract term is read.
CONTRACT_TERMS = {
    "end_date": "date", "status": "status", "currency": "currency", "billing_type": "billing_type",
    "cap_amount": "money", "cap_hours": "decimal", "cap_period": "cap_period",
    "rounding_increment": "minutes", "rounding_mode": "rounding_mode", "monthly_spend_limit": "money",
    "retainer_amount": "money",
    "retainer_hours": "decimal", "fixed_fee_amount": "money",
}
# Salesforce's values (StatusCode, or Status labels) and common spellings of ours, as our choices.
CHOICES = {
    "status": {"draft": ContractStatus.DRAFT, "inapproval": ContractStatus.DRAFT,
               "in_approval_process": ContractStatus.DRAFT, "activated": ContractStatus.ACTIVE,
               "active": ContractStatus.ACTIVE, "terminated": ContractStatus.ENDED,
               "expired": ContractStatus.ENDED, "ended": ContractStatus.ENDED},
    "billing_type": {**{value: value for value in BillingType.values},
                     "t_m": BillingType.TIME_AND_MATERIALS, "time_materials": BillingType.TIME_AND_MATERIALS,
                     "tm": BillingType.TIME_AND_MATERIALS, "fixed": BillingType.FIXED_FEE,
                     "fixed_price": BillingType.FIXED_FEE, "nonbillable": BillingType.NON_BILLABLE},
    "cap_period": {**{value: value for value in CapPeriod.values}, "monthly": CapPeriod.MONTH,
                   "calendar_month": CapPeriod.MONTH, "whole_contract": CapPeriod.CONTRACT},
    "rounding_mode": {value: value for value in RoundingMode.values},
}
_DAYS = re.compile(r"(\d+)")


def _key(value: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(value).casefold()).strip("_")


def _field_overrides(raw, setting: str) -> dict[str, str]:
    if not raw:
        return {}
    if isinstance(raw, dict):
        return {str(k).strip(): str(v or "").strip() for k, v in raw.items()}
    items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
    pairs = {}
    for item in items:
        if not str(item).strip():
            continue
        name, equals, api_name = str(item).partition("=")
        if not equals:
            raise PermanentError(f"salesforce: {setting} has {item!r}; write our_name=Api_Name__c pairs",
                                 provider=Provider.SALESFORCE)
        pairs[name.strip()] = api_name.strip()
    return pairs


@dataclass(frozen=True)
class SalesforceConfig:
    objects: dict[str, str]
    fields: dict[str, dict[str, str]]
    account_filter: str = ""

    @classmethod
    def from_connection(cls, connection: Connection) -> "SalesforceConfig":
        objects = {name: str(option(connection, name, default) or "")
                   for name, default in OBJECT_DEFAULTS.items()}
        # Only the rate object may be left empty: rates are then kept in Billable alone.
        if objects["rate_object"]:
            needed = [name for name, value in objects.items() if not value]
        else:
            needed = [name for name in ("account_object", "contract_object") if not objects[name]]
        if needed:
            names = ", ".join(f"SALESFORCE_{name.upper()}" for name in needed)
            raise PermanentError(f"salesforce: set {names}", provider=Provider.SALESFORCE)
        fields = {}
        for kind, defaults in FIELD_DEFAULTS.items():
            setting = f"SALESFORCE_{kind.upper()}_FIELDS"
            overrides = _field_overrides(option(connection, f"{kind}_fields"), setting)
            unknown = set(overrides) - defaults.keys()
            if unknown:
                raise PermanentError(f"salesforce: {setting} names {', '.join(sorted(unknown))}; the names "
                                     f"are {', '.join(defaults)}", provider=Provider.SALESFORCE)
            merged = {**defaults, **overrides}
            missing = [name for name in REQUIRED[kind] if not merged[name]]
            if missing:
                raise PermanentError(f"salesforce: {setting} cannot leave out {', '.join(missing)}",
                                     provider=Provider.SALESFORCE)
            fields[kind] = merged
        return cls(objects=objects, fields=fields,
                   account_filter=str(option(connection, "account_filter", "") or "").strip())

    def api(self, kind: str, name: str) -> str:
        """The org's API name of one of our fields ("" when it is left out)."""
        return self.fields[kind].get(name, "")

    def names(self, kind: str, ours) -> list[str]:
        return [self.api(kind, name) for name in ours if self.api(kind, name)]

    @property
    def reads_rates(self) -> bool:
        return bool(self.objects["rate_object"])


def _select(names: list[str]) -> str:
    return ", ".join(dict.fromkeys(["Id", "SystemModstamp", "IsDeleted", *names]))


def _changed_since(since: datetime | None, extra: str = "") -> str:
    conditions = [f"SystemModstamp > {soql_datetime(since)}"] if since else []
    if extra:
        conditions.append(f"({extra})")
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


ORDER = " ORDER BY SystemModstamp, Id"


def account_soql(config: SalesforceConfig, since: datetime | None) -> str:
    names = config.names("account", ("name", "code", "currency", "payment_terms"))
    return (f"SELECT {_select(names)} FROM {config.objects['account_object']}"
            f"{_changed_since(since, config.account_filter)}{ORDER}")


def contract_soql(config: SalesforceConfig, since: datetime | None) -> str:
    names = config.names("contract", ("number", "account", "start_date", *CONTRACT_TERMS))
    return f"SELECT {_select(names)} FROM {config.objects['contract_object']}{_changed_since(since)}{ORDER}"


def _card_select(config: SalesforceConfig) -> str:
    lines = config.names("rate_line", ("role", "task_type", "member", "hourly_rate"))
    subquery = (f"(SELECT {', '.join(['Id', *lines])} FROM {config.objects['rate_lines_relationship']} "
                "WHERE IsDeleted = false)")
    card = config.names("rate", ("contract", "effective_from", "effective_to"))
    return f"SELECT {_select(card)}, {subquery}"


def rate_card_soql(config: SalesforceConfig, since: datetime | None) -> str:
    return f"{_card_select(config)} FROM {config.objects['rate_object']}{_changed_since(since)}{ORDER}"


def rate_cards_by_id_soql(config: SalesforceConfig, ids: list[str]) -> str:
    return (f"{_card_select(config)} FROM {config.objects['rate_object']} "
            f"WHERE Id IN ({', '.join(soql_string(i) for i in ids)}){ORDER}")


def changed_lines_soql(config: SalesforceConfig, since: datetime) -> str:
    """Lines changed (or deleted) since: a change to a line need not touch its card's stamp."""
    card = config.api("rate_line", "card")
    return (f"SELECT Id, SystemModstamp, {card} FROM {config.objects['rate_line_object']}"
            f"{_changed_since(since)}{ORDER}")


# --- reading values -------------------------------------------------------------------------------------

@dataclass
class Parsed:
    """One Salesforce record as our values, with what is wrong with it (never raised)."""

    kind: str
    id: str
    stamp: datetime | None
    deleted: bool
    payload: dict
    values: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    lines: list["Parsed"] = field(default_factory=list)

    @property
    def reason(self) -> str:
        return "; ".join(self.problems)


class Reader:
    """Reads one record's configured fields, collecting problems instead of raising."""

    def __init__(self, record: dict, config: SalesforceConfig, kind: str, parsed: Parsed):
        self.record, self.config, self.kind, self.parsed = record, config, kind, parsed

    def raw(self, name: str):
        return self.record.get(self.config.api(self.kind, name))

    def configured(self, name: str) -> bool:
        return bool(self.config.api(self.kind, name))

    def problem(self, name: str, message: str) -> None:
        self.parsed.problems.append(f"{self.config.api(self.kind, name) or name} {message}")

    def text(self, name: str, *, required: bool = False, limit: int = 255) -> str | None:
        value = self.raw(name)
        text = " ".join(str(value).split()) if value not in (None, "") else ""
        if not text:
            if required:
                self.problem(name, "is empty")
            return None
        if len(text) > limit:
            self.problem(name, f"is longer than {limit} characters")
            return None
        return text

    def date(self, name: str, *, required: bool = False) -> date | None:
        value = self.raw(name)
        if value in (None, ""):
            if required:
                self.problem(name, "is empty")
            return None
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            self.problem(name, f"{value!r} is not a date (YYYY-MM-DD)")
            return None

    def decimal(self, name: str, *, required: bool = False) -> Decimal | None:
        value = self.raw(name)
        if value in (None, ""):
            if required:
                self.problem(name, "is empty")
            return None
        if isinstance(value, bool):
            self.problem(name, f"{value!r} is not a number")
            return None
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            self.problem(name, f"{value!r} is not a number")
            return None
        if not number.is_finite() or number < 0:
            self.problem(name, f"{value!r} must be a number of zero or more")
            return None
        return number

    def whole(self, name: str) -> int | None:
        number = self.decimal(name)
        if number is None:
            return None
        if number != number.to_integral_value() or number > 32767:
            self.problem(name, f"{number} is not a whole number of minutes")
            return None
        return int(number)

    def currency(self, name: str, default: str | None = None) -> str | None:
        value = self.text(name) if self.configured(name) else None
        if value is None:
            return default
        code = value.upper()
        if code not in settings.CURRENCIES:
            self.problem(name, f"{value!r} is not one of our currencies ({', '.join(settings.CURRENCIES)})")
            return None
        return code

    def choice(self, name: str, kind: str):
        value = self.text(name)
        if value is None:
            return None
        found = CHOICES[kind].get(_key(value))
        if found is None:
            self.problem(name, f"{value!r} is not a known {kind.replace('_', ' ')}")
        return found

    def days(self, name: str) -> int | None:
        value = self.raw(name)
        if value in (None, ""):
            return None
        found = _DAYS.search(str(value))
        if not found or int(found[1]) > 365:
            self.problem(name, f"{value!r} is not a number of days (e.g. 30 or 'Net 30')")
            return None
        return int(found[1])


def _parsed(kind: str, record: dict) -> Parsed:
    stamp = None
    try:
        stamp = parse_datetime(record["SystemModstamp"]) if record.get("SystemModstamp") else None
    except (TypeError, ValueError):
        pass
    return Parsed(kind=kind, id=str(record.get("Id") or ""), stamp=stamp,
                  deleted=bool(record.get("IsDeleted")), payload=record)


def client_code(code: str | None, name: str | None, record_id: str) -> str:
    """Our client code: the account's number, else its name with a piece of its id (codes are unique)."""
    if code and slugify(code):
        return slugify(code)[:32]
    return f"{slugify(name or 'account')[:24].strip('-')}-{record_id[-7:-3].lower()}"


def parse_account(record: dict, config: SalesforceConfig) -> Parsed:
    parsed = _parsed("account", record)
    read = Reader(record, config, "account", parsed)
    name = read.text("name", required=True, limit=200)
    code = read.text("code", limit=64) if read.configured("code") else None
    parsed.values = {"name": name, "code": client_code(code, name, parsed.id),
                     "currency": read.currency("currency", settings.DEFAULT_CURRENCY)}
    if read.configured("payment_terms"):
        parsed.values["payment_terms_days"] = read.days("payment_terms")
    return parsed


def parse_contract(record: dict, config: SalesforceConfig) -> Parsed:
    parsed = _parsed("contract", record)
    read = Reader(record, config, "contract", parsed)
    parsed.values = {"number": read.text("number", required=True, limit=40),
                     "account": read.text("account", required=True),
                     "start_date": read.date("start_date", required=True)}
    for name, kind in CONTRACT_TERMS.items():
        if not read.configured(name):
            continue
        if kind == "date":
            parsed.values[name] = read.date(name)
        elif kind == "currency":
            parsed.values[name] = read.currency(name)
        elif kind in ("decimal", "money"):
            parsed.values[name] = read.decimal(name)
            if name.startswith("cap_") and parsed.values[name] == 0:
                # A cap of zero in Salesforce means no cap (ours must be positive when set).
                parsed.values[name] = None
        elif kind == "minutes":
            parsed.values[name] = read.whole(name) or 0
        else:
            parsed.values[name] = read.choice(name, kind)
    return parsed


def parse_rate_card(record: dict, config: SalesforceConfig, lines: list[dict]) -> Parsed:
    parsed = _parsed("rate_card", record)
    read = Reader(record, config, "rate", parsed)
    parsed.values = {"contract": read.text("contract", required=True),
                     "effective_from": read.date("effective_from", required=True),
                     "effective_to": read.date("effective_to") if read.configured("effective_to") else None}
    for line in lines:
        item = _parsed("rate_line", line)
        line_read = Reader(line, config, "rate_line", item)
        item.values = {"hourly_rate": line_read.decimal("hourly_rate", required=True)}
        for name in ("role", "task_type", "member"):
            item.values[name] = line_read.text(name) if line_read.configured(name) else None
        if item.values["role"] and item.values["member"]:
            item.problems.append("names both a role and a member; a rate is for one or the other")
        parsed.lines.append(item)
        parsed.problems.extend(f"line {item.id}: {problem}" for problem in item.problems)
    return parsed
