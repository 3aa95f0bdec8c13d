"""A fake Kantata OX (Mavenlink) API v1: workspaces, as our budget push uses them (docs/INTEGRATIONS.md §4).

Faithful where the push depends on it: `Authorization: Bearer <token>` (401 with an `oauth` error
otherwise); paths with or without `.json`; the side-loaded envelope (`count`, `meta` with `page_count`,
`results` of `{key, id}`, and an id-keyed `workspaces` map); string ids; `page`/`per_page` (at most 200);
`search`, `only`, `include_archived` (archived workspaces are hidden without it) and `updated_after`;
`{"workspace": {...}}` request wrappers; `price` written in whole currency units and read back as a
formatted string beside `price_in_cents`; custom field values, currencies as "[cents, CODE]"; typed errors
`{"errors": [{"type", "message", "field"?}]}`; 429 without any header.
"""

import itertools
import re
import secrets
import threading
from datetime import UTC, date, datetime

from integrations.fakes.base import Answer, FakeService, LostAnswers, RecordedRequest

TOKEN = "fake-kantata-token"
MAX_PER_PAGE = 200
CURRENCY_VALUE = re.compile(r"^\[(-?\d+), ([A-Z]{3})\]$")


def _error(message: str, kind: str = "validation", status: int = 422, **extra) -> Answer:
    return Answer.json({"errors": [{"type": kind, "message": message, **extra}]}, status=status)


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _formatted(cents: int | None, currency: str) -> str | None:
    if cents is None:
        return None
    symbol = {"USD": "$", "EUR": "€", "GBP": "£"}.get(currency, f"{currency} ")
    return f"{symbol}{cents // 100:,}" + (f".{cents % 100:02d}" if cents % 100 else "")


class FakeKantata(LostAnswers, FakeService):
    name = "kantata"

    def __init__(self, *, token: str = TOKEN):
        super().__init__()
        self._setup_lost_answers()
        self.token = token
        self.workspaces: dict[str, dict] = {}
        self.custom_fields: dict[str, dict] = {}
        self._ids = itertools.count(40_001)
        self._state = threading.Lock()

    # --- test data -------------------------------------------------------------------------------------
    def add_workspace(self, title: str, *, archived: bool = False, **fields) -> str:
        with self._state:
            return self._create({"title": title, "archived": archived, **fields})["id"]

    def add_custom_field(self, name: str, value_type: str) -> str:
        """A workspace custom field: value_type is currency, number, date or string."""
        field_id = str(next(self._ids))
        self.custom_fields[field_id] = {"id": field_id, "name": name, "value_type": value_type,
                                        "subject_type": "Workspace"}
        return field_id

    def delete_workspace(self, workspace_id: str) -> None:
        """Deleted in Kantata: its routes answer 404 and lists leave it out."""
        with self._state:
            del self.workspaces[workspace_id]

    def titled(self, title: str) -> list[dict]:
        return [w for w in self.workspaces.values() if w["title"] == title]

    def expire_token(self) -> None:
        self.token = "revoked-" + secrets.token_hex(4)

    def stop_failing(self) -> None:
        super().stop_failing()
        self.stop_losing()

    @staticmethod
    def _now() -> datetime:
        return datetime.now(UTC).replace(microsecond=0)

    # --- shapes ----------------------------------------------------------------------------------------
    def _shape(self, workspace: dict) -> dict:
        currency = workspace["currency"]
        price_cents = workspace["price_in_cents"]
        used = workspace["budget_used_in_cents"]
        return {
            **{key: value for key, value in workspace.items() if key not in ("custom_field_values",)},
            "price": _formatted(price_cents, currency), "budget_used": _formatted(used, currency),
            "budget_remaining": _formatted(price_cents - used, currency) if price_cents is not None else None,
            "percent_of_budget_used": round(used * 100 / price_cents) if price_cents else 0,
            "over_budget": bool(price_cents is not None and used > price_cents),
            "currency_base_unit": 100,
            "custom_field_values": [{"custom_field_id": field_id, "value": value}
                                    for field_id, value in sorted(workspace["custom_field_values"].items())],
        }

    def _envelope(self, rows: list[dict], *, page: int = 1, per_page: int = 20,
                  total: int | None = None) -> dict:
        total = len(rows) if total is None else total
        return {"count": total,
                "meta": {"count": total, "page_count": max(1, -(-total // per_page)), "page_number": page,
                         "page_size": per_page},
                "results": [{"key": "workspaces", "id": row["id"]} for row in rows],
                "workspaces": {row["id"]: self._shape(row) for row in rows}}

    # --- the API ---------------------------------------------------------------------------------------
    def random_fault(self) -> Answer:
        answer = super().random_fault()
        if answer.status == 429:
            # Kantata documents no rate-limit headers: just the status.
            return Answer.json({"errors": [{"type": "system", "message": "Too many requests"}]}, status=429)
        return Answer.json({"errors": [{"type": "system", "message": "Something went wrong"}]},
                           status=answer.status)

    def handle(self, request: RecordedRequest) -> Answer:
        if request.header("Authorization") != f"Bearer {self.token}":
            return _error("Invalid OAuth 2 Request", kind="oauth", status=401)
        path = re.sub(r"\.json$", "", request.path.rstrip("/"))
        with self._state:
            if path == "/api/v1/workspaces" and request.method == "GET":
                answer = self._list(request)
            elif path == "/api/v1/workspaces" and request.method == "POST":
                answer = self._post(request)
            elif match := re.fullmatch(r"/api/v1/workspaces/(\d+)", path):
                answer = self._one(match[1], request)
            else:
                answer = _error("No route matches that path", kind="system", status=404)
        answer.headers.setdefault("x-request-id", secrets.token_hex(8))
        return self.deliver_or_lose(request, answer)

    def _list(self, request: RecordedRequest) -> Answer:
        query = {name: values[0] for name, values in request.query.items()}
        rows = sorted(self.workspaces.values(), key=lambda w: int(w["id"]))
        if query.get("include_archived") != "true":
            rows = [w for w in rows if not w["archived"]]
        if "only" in query:
            wanted = set(query["only"].split(","))
            rows = [w for w in rows if w["id"] in wanted]
        if "search" in query:
            term = query["search"].casefold()
            rows = [w for w in rows if term in w["title"].casefold()]
        if "updated_after" in query:
            rows = [w for w in rows if w["updated_at"] > query["updated_after"]]
        try:
            page = max(1, int(query.get("page", 1)))
            per_page = max(1, min(MAX_PER_PAGE, int(query.get("per_page", 20))))
        except ValueError:
            return _error("page and per_page must be numbers", status=400)
        chunk = rows[(page - 1) * per_page: page * per_page]
        return Answer.json(self._envelope(chunk, page=page, per_page=per_page, total=len(rows)))

    def _wrapped(self, request: RecordedRequest) -> dict | Answer:
        try:
            body = request.json
        except ValueError:
            return _error("The request body is not valid JSON", kind="system", status=400)
        if not isinstance(body, dict) or not isinstance(body.get("workspace"), dict):
            return _error("Expected a 'workspace' object", status=400)
        return body["workspace"]

    def _post(self, request: RecordedRequest) -> Answer:
        fields = self._wrapped(request)
        if isinstance(fields, Answer):
            return fields
        if not str(fields.get("title") or "").strip():
            return _error("Title can't be blank", field="title")
        if fields.get("creator_role") not in ("maven", "buyer"):
            return _error("Creator role must be either 'maven' or 'buyer'", field="creator_role")
        problem = self._check(fields)
        if problem:
            return problem
        workspace = self._create(fields)
        return Answer.json(self._envelope([workspace]))

    def _one(self, workspace_id: str, request: RecordedRequest) -> Answer:
        workspace = self.workspaces.get(workspace_id)
        if workspace is None or (workspace["archived"] and request.query.get("include_archived") != ["true"]
                                 and request.method == "GET"):
            return _error("Not found", kind="system", status=404)
        if request.method == "GET":
            return Answer.json(self._envelope([workspace]))
        if request.method != "PUT":
            return _error("Method not allowed", kind="system", status=405)
        fields = self._wrapped(request)
        if isinstance(fields, Answer):
            return fields
        problem = self._check(fields)
        if problem:
            return problem
        self._apply(workspace, fields)
        return Answer.json(self._envelope([workspace]))

    def _check(self, fields: dict) -> Answer | None:
        if "price" in fields and fields["price"] is not None and not isinstance(fields["price"], int):
            return _error("Price must be a whole number of currency units", field="price")
        for name in ("start_date", "due_date"):
            if fields.get(name):
                try:
                    date.fromisoformat(fields[name])
                except (TypeError, ValueError):
                    return _error(f"{name.replace('_', ' ').capitalize()} is not a date", field=name)
        for value in fields.get("custom_fields") or []:
            field = self.custom_fields.get(str(value.get("custom_field_id")))
            if field is None:
                return _error(f"Custom field {value.get('custom_field_id')} does not exist",
                              field="custom_fields")
            raw = value.get("value")
            if raw is not None and field["value_type"] == "currency" and not CURRENCY_VALUE.match(str(raw)):
                return _error(f"{field['name']} must look like [998, USD] (cents)", field="custom_fields")
        return None

    def _create(self, fields: dict) -> dict:
        workspace_id = str(next(self._ids))
        now = _ts(self._now())
        workspace = {"id": workspace_id, "title": "", "description": "", "archived": False, "budgeted": False,
                     "price_in_cents": None, "budget_used_in_cents": 0, "currency": "USD", "start_date": None,
                     "due_date": None, "rate_card_id": None, "target_margin": None, "percentage_complete": 0,
                     "status": {"key": 310, "message": "Active", "color": "green"}, "created_at": now,
                     "updated_at": now, "custom_field_values": {}}
        self.workspaces[workspace_id] = workspace
        self._apply(workspace, fields)
        return workspace

    def _apply(self, workspace: dict, fields: dict) -> None:
        for name in ("title", "description", "archived", "budgeted", "currency", "start_date", "due_date",
                     "target_margin"):
            if name in fields:
                workspace[name] = fields[name]
        if "price" in fields:
            workspace["price_in_cents"] = None if fields["price"] is None else fields["price"] * 100
        for value in fields.get("custom_fields") or []:
            workspace["custom_field_values"][str(value["custom_field_id"])] = value.get("value")
        workspace["updated_at"] = _ts(self._now())
