"""A fake Salesforce org: the OAuth client-credentials login, SOQL queries and record updates our connector
uses (docs/INTEGRATIONS.md §3).

Faithful where the connector depends on it:
- `POST /services/oauth2/token` with `grant_type=client_credentials` and the client id and secret, in the
  form (or query string) or as a Basic Authorization header → `{access_token, instance_url, ...}`,
  `instance_url` pointing back at this fake; refused credentials → 400 `{"error": "invalid_client", ...}`.
- `Authorization: Bearer <access token>` on data calls; an expired session → 401 `INVALID_SESSION_ID`
  (there is no refresh token: log in again).
- `/services/data/vNN.0/query` and `/queryAll` (deleted rows too, `IsDeleted` true): a small SOQL reader
  (SELECT fields and child subqueries, FROM, WHERE with AND-ed comparisons and IN, ORDER BY, LIMIT),
  `attributes` on every record, `+0000` datetimes, 18-character ids, unknown fields refused with 400
  `INVALID_FIELD`; pages of `Sforce-Query-Options: batchSize` (and never more than `batch_size`) followed
  through `nextRecordsUrl` until `done`.
- `PATCH /sobjects/{type}/{id}` → 204, `PATCH /composite/sobjects` (≤200 records, `allOrNone`) → per-record
  `{id, success, errors: [{statusCode, message, fields}]}`.
- Errors are JSON arrays `[{"message", "errorCode", "fields"?}]`; the request limit is a 403
  `REQUEST_LIMIT_EXCEEDED`; every answer carries `Sforce-Limit-Info: api-usage=n/max` and a `Date`.

Time is the fake's own clock: each write stamps `SystemModstamp` one second later, and `advance()` moves it
on, so tests can say exactly which records changed after a sync.
"""

import base64
import itertools
import re
import secrets
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from email.utils import format_datetime
from urllib.parse import parse_qs

from integrations.fakes.base import Answer, FakeService, RecordedRequest

CLIENT_ID = "fake-salesforce-consumer-key"
CLIENT_SECRET = "fake-salesforce-consumer-secret"
DAILY_API_REQUESTS = 5000
SYSTEM_FIELDS = {"Id", "IsDeleted", "SystemModstamp", "CreatedDate", "LastModifiedDate", "Name"}
SCHEMA = {
    "Account": {"AccountNumber", "Type", "Industry", "Phone", "Website", "OwnerId", "BillingStreet",
                "BillingCity", "BillingState", "BillingPostalCode", "BillingCountry", "CurrencyIsoCode",
                "Payment_Terms__c", "Last_Invoice_Number__c", "Last_Invoice_Date__c", "Billed_YTD__c",
                "Outstanding_Balance__c"},
    "Contract": {"AccountId", "ContractNumber", "Status", "StatusCode", "StartDate", "EndDate",
                 "ContractTerm", "SpecialTerms", "Description", "ActivatedDate", "CurrencyIsoCode",
                 "Billing_Type__c", "Billing_Cap__c", "Billing_Cap_Hours__c", "Cap_Period__c",
                 "Rounding_Increment__c", "Rounding_Mode__c", "Monthly_Spend_Limit__c", "Payment_Terms__c"},
    "Rate_Card__c": {"Contract__c", "Account__c", "Effective_From__c", "Effective_To__c", "CurrencyIsoCode"},
    "Rate_Card_Line__c": {"Rate_Card__c", "Role__c", "Task_Type__c", "Member_Email__c", "Hourly_Rate__c"},
}
# Child relationships: (parent object, relationship name) -> (child object, the child's lookup field).
CHILDREN = {("Rate_Card__c", "Rate_Card_Lines__r"): ("Rate_Card_Line__c", "Rate_Card__c")}
KEY_PREFIXES = {"Account": "001", "Contract": "800", "Rate_Card__c": "a0A", "Rate_Card_Line__c": "a0B"}
READ_ONLY = {"Id", "IsDeleted", "SystemModstamp", "CreatedDate", "LastModifiedDate", "ContractNumber",
             "StatusCode", "EndDate"}
STATUS_CODES = {"Draft": "Draft", "In Approval Process": "InApproval", "Activated": "Activated",
                "Terminated": "Terminated", "Expired": "Expired"}


class SoqlError(Exception):
    def __init__(self, message: str, code: str = "MALFORMED_QUERY"):
        super().__init__(message)
        self.code = code


def errors(message: str, code: str, status: int, fields: list[str] | None = None) -> Answer:
    item = {"message": message, "errorCode": code}
    if fields is not None:
        item["fields"] = fields
    return Answer.json([item], status=status)


def render(value):
    """A stored value as Salesforce's JSON writes it."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


# --- a small SOQL reader ----------------------------------------------------------------------------------

_SELECT = re.compile(r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\w+)(?:\s+WHERE\s+(?P<where>.+?))?"
                     r"(?:\s+ORDER\s+BY\s+(?P<order>.+?))?(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$", re.I | re.S)
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_COMPARE = re.compile(r"^(\w+)\s*(=|!=|<>|<=|>=|<|>)\s*(.+)$", re.S)
_IN = re.compile(r"^(\w+)\s+(NOT\s+)?IN\s*\((.*)\)$", re.I | re.S)


def _split_top(text: str, separator: str) -> list[str]:
    """Split on a keyword or comma outside parentheses and quotes."""
    parts, depth, quoted, start, i = [], 0, False, 0, 0
    pattern = re.compile(separator, re.I)
    while i < len(text):
        char = text[i]
        if char == "'" and (i == 0 or text[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0:
            match = pattern.match(text, i)
            if match:
                parts.append(text[start:i])
                start = i = match.end()
                continue
        i += 1
    parts.append(text[start:])
    return [part.strip() for part in parts]


def _literal(text: str):
    text = text.strip()
    if text.startswith("'") and text.endswith("'") and len(text) >= 2:
        return text[1:-1].replace("\\'", "'").replace("\\\\", "\\")
    lowered = text.lower()
    if lowered in ("null", "true", "false"):
        return {"null": None, "true": True, "false": False}[lowered]
    if _DATETIME.match(text):
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    if _DATE.match(text):
        return date.fromisoformat(text)
    try:
        return Decimal(text)
    except InvalidOperation:
        raise SoqlError(f"unexpected token: '{text}'") from None


def _comparable(have, want):
    if isinstance(want, datetime) and isinstance(have, str):
        return datetime.fromisoformat(have.replace("Z", "+00:00"))
    if isinstance(want, date) and not isinstance(want, datetime) and isinstance(have, str):
        return date.fromisoformat(have)
    if isinstance(want, Decimal) and isinstance(have, int | float):
        return Decimal(str(have))
    return have


def _enclosed(term: str) -> bool:
    """Whether the whole term sits inside one pair of parentheses."""
    if not (term.startswith("(") and term.endswith(")")):
        return False
    depth = 0
    for position, char in enumerate(term):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and position < len(term) - 1:
            return False
    return True


def _condition(text: str, check_field):
    """A predicate for a WHERE clause made of AND-ed comparisons (OR is more than this fake reads)."""
    if _split_top(text, r"\s+OR\s+")[1:]:
        raise SoqlError("this fake reads only AND-ed conditions")
    terms = []
    for term in _split_top(text, r"\s+AND\s+"):
        if _enclosed(term):
            terms.append(_condition(term[1:-1], check_field))
            continue
        if match := _IN.match(term):
            field, negated = match[1], bool(match[2])
            check_field(field)
            values = [_literal(v) for v in _split_top(match[3], ",") if v]
            terms.append(lambda row, f=field, vs=values, n=negated: (row.get(f) in vs) != n)
            continue
        match = _COMPARE.match(term)
        if not match:
            raise SoqlError(f"unexpected token: '{term[:40]}'")
        field, operator, value = match[1], match[2], _literal(match[3])
        check_field(field)
        terms.append(lambda row, f=field, o=operator, v=value: _compare(_comparable(row.get(f), v), o, v))
    return lambda row: all(term(row) for term in terms)


def _compare(have, operator: str, want) -> bool:
    if operator == "=":
        return have == want
    if operator in ("!=", "<>"):
        return have != want
    if have is None or want is None:
        return False
    try:
        return {"<": have < want, ">": have > want, "<=": have <= want, ">=": have >= want}[operator]
    except TypeError:
        return False


class FakeSalesforce(FakeService):
    name = "salesforce"

    def __init__(self, *, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET,
                 batch_size: int = 2000):
        super().__init__()
        self.client_id, self.client_secret = client_id, client_secret
        self.batch_size = batch_size
        self.schema = {name: set(fields) | SYSTEM_FIELDS for name, fields in SCHEMA.items()}
        self.records: dict[str, dict[str, dict]] = {name: {} for name in SCHEMA}
        self.raw: dict[str, dict] = {}
        self.tokens: set[str] = set()
        self.logins = 0
        self.api_usage = 0
        self._expire_after: int | None = None
        self.clock = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        self._serial = itertools.count(1)
        self._contract_numbers = itertools.count(100)
        self._locators: dict[str, list[dict]] = {}
        self._state = threading.RLock()

    # --- test data -------------------------------------------------------------------------------------
    def advance(self, **delta) -> None:
        """Move the org's clock on (timedelta arguments)."""
        self.clock += timedelta(**delta)

    def _tick(self) -> datetime:
        self.clock += timedelta(seconds=1)
        return self.clock

    def add_field(self, object_name: str, field: str) -> None:
        self.schema[object_name].add(field)

    def create(self, object_name: str, **fields) -> str:
        with self._state:
            serial = next(self._serial)
            record_id = f"{KEY_PREFIXES[object_name]}{serial:012d}AAA"[:15] + "QAA"
            stamp = self._tick()
            record = {"Id": record_id, "IsDeleted": False, "CreatedDate": stamp, "LastModifiedDate": stamp,
                      "SystemModstamp": stamp}
            if object_name == "Contract":
                record["ContractNumber"] = f"{next(self._contract_numbers):08d}"
                fields.setdefault("Status", "Activated")
            record.update(fields)
            self._derive(object_name, record)
            self.records[object_name][record_id] = record
            return record_id

    def add_account(self, name: str, **fields) -> str:
        return self.create("Account", Name=name, **fields)

    def add_contract(self, account_id: str, *, start: date, **fields) -> str:
        return self.create("Contract", AccountId=account_id, StartDate=start, **fields)

    def add_rate_card(self, contract_id: str, *, effective_from: date, lines: list[dict],
                      **fields) -> tuple[str, list[str]]:
        card = self.create("Rate_Card__c", Name=f"Rates from {effective_from}", Contract__c=contract_id,
                           Effective_From__c=effective_from, **fields)
        return card, [self.create("Rate_Card_Line__c", Rate_Card__c=card, **line) for line in lines]

    def update(self, object_name: str, record_id: str, **fields) -> None:
        with self._state:
            record = self.records[object_name][record_id]
            record.update(fields)
            self._derive(object_name, record)
            record["SystemModstamp"] = record["LastModifiedDate"] = self._tick()

    def delete(self, object_name: str, record_id: str) -> None:
        """To the recycle bin: gone from `query`, listed by `queryAll` with IsDeleted true."""
        self.update(object_name, record_id, IsDeleted=True)

    def corrupt(self, record_id: str, **raw) -> None:
        """Serve these raw JSON values in the record (a malformed record), stamped as a change."""
        with self._state:
            self.raw[record_id] = raw
            for table in self.records.values():
                if record_id in table:
                    table[record_id]["SystemModstamp"] = self._tick()

    def get(self, object_name: str, record_id: str) -> dict:
        return self.records[object_name][record_id]

    def expire_token(self, *, after: int = 0) -> None:
        """Every issued session stops working (401 INVALID_SESSION_ID), at once or after `after` more data
        calls (mid-way through paging, say); logging in again works."""
        if after:
            self._expire_after = after
        else:
            self.tokens.clear()

    def exhaust_limit(self, count: int = 1) -> None:
        self.fail_next(count, status=403, body=[{"message": "TotalRequests Limit exceeded.",
                                                 "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
                       headers={"Sforce-Limit-Info": f"api-usage={DAILY_API_REQUESTS}/{DAILY_API_REQUESTS}"})

    @staticmethod
    def _derive(object_name: str, record: dict) -> None:
        """Contract fields Salesforce computes: the status code, and the end date from the term in months."""
        if object_name != "Contract":
            return
        record["StatusCode"] = STATUS_CODES.get(record.get("Status"), record.get("Status"))
        term, start = record.get("ContractTerm"), record.get("StartDate")
        if term and isinstance(start, date):
            month = start.month - 1 + int(term)
            year, month = start.year + month // 12, month % 12 + 1
            last_day = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
            record["EndDate"] = date(year, month, min(start.day, last_day)) - timedelta(days=1)

    # --- the API ---------------------------------------------------------------------------------------
    def random_fault(self) -> Answer:
        answer = super().random_fault()
        if answer.status == 429:
            return errors("TotalRequests Limit exceeded.", "REQUEST_LIMIT_EXCEEDED", 403)
        return errors("The server is temporarily unable to service your request.", "SERVER_UNAVAILABLE",
                      answer.status)

    def handle(self, request: RecordedRequest) -> Answer:
        with self._state:
            if request.path == "/services/oauth2/token":
                answer = self._token(request)
            else:
                answer = self._data(request)
            answer.headers.setdefault("Sforce-Limit-Info", f"api-usage={self.api_usage}/{DAILY_API_REQUESTS}")
            answer.headers.setdefault("Date", format_datetime(self.clock, usegmt=True))
        return answer

    def _token(self, request: RecordedRequest) -> Answer:
        if request.method != "POST":
            return Answer.json({"error": "invalid_request", "error_description": "must use HTTP POST"},
                               status=400)
        form = dict(request.query)
        if "form-urlencoded" in request.header("Content-Type") and request.body:
            form.update(parse_qs(request.body.decode()))
        values = {name: items[0] for name, items in form.items()}
        if basic := request.basic_auth():
            values["client_id"], values["client_secret"] = basic
        if values.get("grant_type") != "client_credentials":
            return Answer.json({"error": "unsupported_grant_type",
                                "error_description": "grant type not supported"}, status=400)
        if (values.get("client_id"), values.get("client_secret")) != (self.client_id, self.client_secret):
            return Answer.json({"error": "invalid_client", "error_description": "invalid client credentials"},
                               status=400)
        token = "00D000000000001!" + secrets.token_urlsafe(24)
        self.tokens.add(token)
        self.logins += 1
        host = f"http://{request.header('Host')}"
        return Answer.json({"access_token": token, "instance_url": host,
                            "id": f"{host}/id/00D000000000001/005000", "token_type": "Bearer",
                            "issued_at": str(int(self.clock.timestamp() * 1000)),
                            "signature": base64.b64encode(secrets.token_bytes(32)).decode()})

    def _data(self, request: RecordedRequest) -> Answer:
        if self._expire_after is not None:
            self._expire_after -= 1
            if self._expire_after < 0:
                self.tokens.clear()
                self._expire_after = None
        if request.header("Authorization").removeprefix("Bearer ") not in self.tokens:
            return errors("Session expired or invalid", "INVALID_SESSION_ID", 401)
        self.api_usage += 1
        match = re.fullmatch(r"/services/data/v(\d+\.\d)(/.*)", request.path.rstrip("/"))
        if not match:
            return errors("The requested resource does not exist", "NOT_FOUND", 404)
        version, path = match[1], match[2]
        if request.method == "GET" and path in ("/query", "/queryAll"):
            return self._query(request, version, include_deleted=path == "/queryAll")
        if request.method == "GET" and (found := re.fullmatch(r"/query(?:All)?/(\w+)-(\d+)", path)):
            return self._more(found[1], version)
        if request.method == "GET" and path == "/limits":
            return Answer.json({"DailyApiRequests": {"Max": DAILY_API_REQUESTS,
                                                     "Remaining": DAILY_API_REQUESTS - self.api_usage}})
        if request.method == "PATCH" and path == "/composite/sobjects":
            return self._composite(request)
        if request.method == "PATCH" and (found := re.fullmatch(r"/sobjects/(\w+)/(\w+)", path)):
            return self._patch_one(request, found[1], found[2])
        return errors("The requested resource does not exist", "NOT_FOUND", 404)

    # Queries.
    def _page_size(self, request: RecordedRequest) -> int:
        asked = re.search(r"batchSize=(\d+)", request.header("Sforce-Query-Options"))
        size = max(200, min(2000, int(asked[1]))) if asked else 2000
        return min(size, self.batch_size)

    def _query(self, request: RecordedRequest, version: str, *, include_deleted: bool) -> Answer:
        soql = (request.query.get("q") or [""])[0]
        try:
            rows = self._select(soql, include_deleted=include_deleted)
        except SoqlError as error:
            return errors(f"\n{soql[:80]}\n^\nERROR at Row:1:Column:1\n{error}", error.code, 400)
        return self._page(rows, self._page_size(request), version)

    def _page(self, rows: list[dict], size: int, version: str, offset: int = 0) -> Answer:
        chunk, rest = rows[:size], rows[size:]
        body = {"totalSize": offset + len(rows), "done": not rest, "records": chunk}
        if rest:
            locator = "01g" + secrets.token_hex(8)
            self._locators[locator] = {"rows": rest, "size": size, "offset": offset + size}
            body["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{offset + size}"
        return Answer.json(body)

    def _more(self, locator: str, version: str) -> Answer:
        state = self._locators.pop(locator, None)
        if state is None:
            return errors("invalid query locator", "INVALID_QUERY_LOCATOR", 400)
        return self._page(state["rows"], state["size"], version, state["offset"])

    def _select(self, soql: str, *, include_deleted: bool,
                parent: tuple[str, str] | None = None) -> list[dict]:
        subqueries: list[str] = []

        def hide(match_text: str) -> str:
            subqueries.append(match_text)
            return f"__SUB{len(subqueries) - 1}__"

        outer = self._hide_subqueries(soql, hide)
        match = _SELECT.match(outer)
        if not match:
            raise SoqlError("unexpected token: the query is not SELECT ... FROM ...")
        object_name = match["object"]
        if parent is not None:
            child = CHILDREN.get((parent[0], object_name))
            if child is None:
                raise SoqlError(f"Didn't understand relationship '{object_name}' in FROM part of query call.",
                                "INVALID_TYPE")
            object_name = child[0]
        if object_name not in self.schema:
            raise SoqlError(f"sObject type '{object_name}' is not supported.", "INVALID_TYPE")

        def check(field: str) -> None:
            if field not in self.schema[object_name]:
                raise SoqlError(f"No such column '{field}' on entity '{object_name}'. If you are attempting "
                                "to use a custom field, be sure to append the '__c' after the custom field "
                                "name.", "INVALID_FIELD")

        fields, children = [], []
        for item in _split_top(match["fields"], ","):
            if sub := re.fullmatch(r"__SUB(\d+)__", item):
                children.append(subqueries[int(sub[1])])
            else:
                check(item)
                fields.append(item)
        condition = _condition(match["where"], check) if match["where"] else (lambda row: True)
        rows = [row for row in self.records[object_name].values()
                if (include_deleted or not row["IsDeleted"]) and condition(row)]
        if parent is not None:
            rows = [row for row in rows if row.get(CHILDREN[(parent[0], match["object"])][1]) == parent[1]]
        for term in reversed(_split_top(match["order"], ",") if match["order"] else []):
            field, _, direction = term.partition(" ")
            check(field)
            rows.sort(key=lambda row, f=field: (row.get(f) is not None, row.get(f) or 0),
                      reverse=direction.strip().upper() == "DESC")
        if match["limit"]:
            rows = rows[:int(match["limit"])]
        return [self._shape(object_name, row, fields, children, include_deleted) for row in rows]

    @staticmethod
    def _hide_subqueries(soql: str, hide) -> str:
        out, i = [], 0
        while i < len(soql):
            if soql[i] == "(" and re.match(r"\(\s*SELECT\s", soql[i:], re.I):
                depth, j = 0, i
                while j < len(soql):
                    depth += {"(": 1, ")": -1}.get(soql[j], 0)
                    if depth == 0:
                        break
                    j += 1
                out.append(hide(soql[i + 1:j]))
                i = j + 1
                continue
            out.append(soql[i])
            i += 1
        return "".join(out)

    def _shape(self, object_name: str, row: dict, fields: list[str], children: list[str],
               include_deleted: bool) -> dict:
        shaped = {"attributes": {"type": object_name,
                                 "url": f"/services/data/v59.0/sobjects/{object_name}/{row['Id']}"}}
        raw = self.raw.get(row["Id"], {})
        for field in fields:
            shaped[field] = raw[field] if field in raw else render(row.get(field))
        for child in children:
            relationship = re.search(r"\bFROM\s+(\w+)", child, re.I)[1]
            rows = self._select(child, include_deleted=include_deleted, parent=(object_name, row["Id"]))
            shaped[relationship] = {"totalSize": len(rows), "done": True, "records": rows} if rows else None
        return shaped

    # Writes.
    def _writable(self, object_name: str, fields: dict) -> Answer | None:
        for field in fields:
            if field not in self.schema.get(object_name, ()):
                return errors(f"No such column '{field}' on sobject of type {object_name}", "INVALID_FIELD",
                              400)
            if field in READ_ONLY:
                return errors(f"Unable to create/update fields: {field}. Please check the security settings "
                              "of this field and verify that it is read/write for your profile or permission "
                              "set.",
                              "INVALID_FIELD_FOR_INSERT_UPDATE", 400, [field])
        return None

    def _patch_one(self, request: RecordedRequest, object_name: str, record_id: str) -> Answer:
        try:
            fields = request.json
        except ValueError:
            return errors("The request body is not valid JSON", "JSON_PARSER_ERROR", 400)
        problem = self._writable(object_name, fields or {})
        if problem:
            return problem
        record = self.records.get(object_name, {}).get(record_id)
        if record is None or record["IsDeleted"]:
            return errors("The requested resource does not exist", "NOT_FOUND", 404)
        self.update(object_name, record_id, **fields)
        return Answer(status=204)

    def _composite(self, request: RecordedRequest) -> Answer:
        try:
            body = request.json
        except ValueError:
            return errors("The request body is not valid JSON", "JSON_PARSER_ERROR", 400)
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list) or not records:
            return errors("records is required", "INVALID_INPUT", 400)
        if len(records) > 200:
            return errors("Too many records: at most 200 in one request", "EXCEEDED_ID_LIMIT", 400)
        for record in records:
            fields = {k: v for k, v in record.items() if k not in ("attributes", "id", "Id")}
            problem = self._writable((record.get("attributes") or {}).get("type", ""), fields)
            if problem:
                return problem
        results = []
        for record in records:
            object_name = record["attributes"]["type"]
            record_id = record.get("id") or record.get("Id")
            stored = self.records[object_name].get(record_id)
            if stored is None or stored["IsDeleted"]:
                results.append({"id": record_id, "success": False, "errors": [{
                    "statusCode": "ENTITY_IS_DELETED" if stored else "INVALID_CROSS_REFERENCE_KEY",
                    "message": "entity is deleted" if stored else "invalid cross reference id",
                    "fields": []}]})
                continue
            self.update(object_name, record_id,
                        **{k: v for k, v in record.items() if k not in ("attributes", "id", "Id")})
            results.append({"id": record_id, "success": True, "errors": []})
        return Answer.json(results)
