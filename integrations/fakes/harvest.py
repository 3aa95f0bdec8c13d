"""A fake Harvest API v2: clients and invoices, as our invoice push uses them (docs/INTEGRATIONS.md §6).

Faithful where the push depends on it: every request needs `Authorization: Bearer <token>`,
`Harvest-Account-Id` and a `User-Agent` (400 without one); ids are integers; decimals are JSON numbers;
lists come in the `{"<plural>": [...], per_page, total_pages, next_page, page, links}` envelope, clients
paged by page number and invoices by cursor (`page`/`next_page` null mid-stream, only `links.next` to
follow); `from`/`to` filter invoices on their issue date; a client name and an invoice number can be used
once (422 "has already been taken"); a new invoice is a draft until a message with `event_type: "send"`
marks it sent; 429 with Retry-After; 401 `invalid_token` for a bad or expired token.

With `LostAnswers` (fakes/base.py), a write can also be done and its answer lost: the failure an outbound
push must survive.
"""

import base64
import itertools
import secrets
import threading
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import urlencode

from integrations.fakes.base import Answer, FakeService, LostAnswers, RecordedRequest

TOKEN = "fake-harvest-token"
ACCOUNT_ID = "424242"
MAX_PER_PAGE = 2000
CENT = Decimal("0.01")


def _money(value) -> float:
    return float(Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP))


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeHarvest(LostAnswers, FakeService):
    name = "harvest"

    def __init__(self, *, token: str = TOKEN, account_id: str = ACCOUNT_ID):
        super().__init__()
        self._setup_lost_answers()
        self.token = token
        self.account_id = account_id
        self.clients: dict[int, dict] = {}
        self.invoices: dict[int, dict] = {}
        self.messages: list[dict] = []
        self._client_ids = itertools.count(5_000_001)
        self._invoice_ids = itertools.count(13_000_001)
        self._line_ids = itertools.count(70_000_001)
        self._cursors: dict[str, list[int]] = {}
        self._state = threading.Lock()

    # --- test data -------------------------------------------------------------------------------------
    def add_client(self, name: str, *, currency: str = "USD") -> int:
        with self._state:
            return self._create_client({"name": name, "currency": currency})["id"]

    def expire_token(self) -> None:
        self.token = "expired-" + secrets.token_hex(4)

    def stop_failing(self) -> None:
        super().stop_failing()
        self.stop_losing()

    def delete_invoice(self, invoice_id: int) -> None:
        """Deleted in Harvest (which keeps no trace of it): 404 and gone from every list."""
        with self._state:
            del self.invoices[invoice_id]

    def invoices_numbered(self, number: str) -> list[dict]:
        return [invoice for invoice in self.invoices.values() if invoice["number"] == number]

    @staticmethod
    def _now() -> datetime:
        return datetime.now(UTC).replace(microsecond=0)

    # --- the API ---------------------------------------------------------------------------------------
    def handle(self, request: RecordedRequest) -> Answer:
        if not request.header("User-Agent"):
            return Answer.json({"message": "A User-Agent header naming your application is required"},
                               status=400)
        if request.header("Authorization") != f"Bearer {self.token}":
            return Answer.json({"error": "invalid_token", "error_description": "The access token provided is "
                                "expired, revoked, malformed or invalid for other reasons."}, status=401)
        if request.header("Harvest-Account-Id") != self.account_id:
            return Answer.json({"error": "invalid_token", "error_description": "The Harvest-Account-Id "
                                "header does not name an account this token can use."}, status=401)
        with self._state:
            answer = self._route(request)
        return self.deliver_or_lose(request, answer)

    def _route(self, request: RecordedRequest) -> Answer:
        path, method = request.path.rstrip("/"), request.method
        if path == "/v2/clients" and method == "GET":
            return self._list_clients(request)
        if path == "/v2/clients" and method == "POST":
            return self._post_client(request)
        if path == "/v2/invoices" and method == "GET":
            return self._list_invoices(request)
        if path == "/v2/invoices" and method == "POST":
            return self._post_invoice(request)
        parts = path.split("/")
        if len(parts) >= 4 and parts[1:3] == ["v2", "invoices"] and parts[3].isdigit():
            invoice = self.invoices.get(int(parts[3]))
            if invoice is None:
                return Answer.json({"status": 404, "error": "Not Found"}, status=404)
            if len(parts) == 4 and method == "GET":
                return Answer.json(invoice)
            if parts[4:] == ["messages"] and method == "POST":
                return self._post_message(invoice, request)
        return Answer.json({"status": 404, "error": "Not Found"}, status=404)

    def _body(self, request: RecordedRequest) -> dict | None:
        try:
            body = request.json
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def _per_page(self, request: RecordedRequest) -> int:
        try:
            return max(1, min(MAX_PER_PAGE, int(request.query.get("per_page", [MAX_PER_PAGE])[0])))
        except ValueError:
            return MAX_PER_PAGE

    def _base(self, request: RecordedRequest, path: str) -> str:
        return f"http://{request.header('Host')}{path}"

    # Clients: page-number paging.
    def _list_clients(self, request: RecordedRequest) -> Answer:
        rows = sorted(self.clients.values(), key=lambda c: c["id"])
        if request.query.get("is_active"):
            active = request.query["is_active"][0] == "true"
            rows = [c for c in rows if c["is_active"] == active]
        per_page = self._per_page(request)
        page = int(request.query.get("page", ["1"])[0])
        total_pages = max(1, -(-len(rows) // per_page))
        chunk = rows[(page - 1) * per_page: page * per_page]
        base = self._base(request, "/v2/clients")

        def link(number):
            return f"{base}?{urlencode({'page': number, 'per_page': per_page})}"

        return Answer.json({
            "clients": chunk, "per_page": per_page, "total_pages": total_pages, "total_entries": len(rows),
            "next_page": page + 1 if page < total_pages else None,
            "previous_page": page - 1 if page > 1 else None, "page": page,
            "links": {"first": link(1), "next": link(page + 1) if page < total_pages else None,
                      "previous": link(page - 1) if page > 1 else None, "last": link(total_pages)},
        })

    def _create_client(self, body: dict) -> dict:
        now = _ts(self._now())
        client = {"id": next(self._client_ids), "name": body["name"],
                  "is_active": body.get("is_active", True), "address": body.get("address"),
                  "statement_key": secrets.token_hex(16), "currency": body.get("currency") or "USD",
                  "created_at": now, "updated_at": now}
        self.clients[client["id"]] = client
        return client

    def _post_client(self, request: RecordedRequest) -> Answer:
        body = self._body(request)
        if body is None:
            return Answer.json({"message": "The request body is not valid JSON"}, status=400)
        if not str(body.get("name") or "").strip():
            return Answer.json({"message": "Name can't be blank"}, status=422)
        if any(c["name"].casefold() == str(body["name"]).casefold() for c in self.clients.values()):
            return Answer.json({"message": "Name has already been taken"}, status=422)
        return Answer.json(self._create_client(body), status=201)

    # Invoices: cursor paging, as Harvest now does on its big lists.
    def _list_invoices(self, request: RecordedRequest) -> Answer:
        cursor = request.query.get("cursor", [None])[0]
        per_page = self._per_page(request)
        if cursor is not None:
            ids = self._cursors.get(cursor)
            if ids is None:
                return Answer.json({"message": "The cursor is invalid or has expired"}, status=422)
        else:
            rows = sorted(self.invoices.values(), key=lambda i: (i["issue_date"] or "", i["id"]),
                          reverse=True)
            query = {name: values[0] for name, values in request.query.items()}
            try:
                if "client_id" in query:
                    rows = [i for i in rows if i["client"]["id"] == int(query["client_id"])]
                if "from" in query:
                    rows = [i for i in rows if i["issue_date"] and i["issue_date"] >= date.fromisoformat(
                        query["from"]).isoformat()]
                if "to" in query:
                    rows = [i for i in rows if i["issue_date"] and i["issue_date"] <= date.fromisoformat(
                        query["to"]).isoformat()]
            except ValueError:
                return Answer.json({"message": "A filter value is not valid"}, status=422)
            if "state" in query:
                rows = [i for i in rows if i["state"] == query["state"]]
            ids = [i["id"] for i in rows]
        chunk, rest = ids[:per_page], ids[per_page:]
        following = None
        if rest:
            token = base64.urlsafe_b64encode(secrets.token_bytes(12)).decode().rstrip("=")
            self._cursors[token] = rest
            query = urlencode({"cursor": token, "per_page": per_page, "ref": "next_cursor"})
            following = f"{self._base(request, '/v2/invoices')}?{query}"
        return Answer.json({
            "invoices": [self.invoices[i] for i in chunk], "per_page": per_page, "total_pages": None,
            "total_entries": None, "next_page": None, "previous_page": None, "page": None,
            "links": {"first": None, "next": following, "previous": None, "last": None},
        })

    def _post_invoice(self, request: RecordedRequest) -> Answer:
        body = self._body(request)
        if body is None:
            return Answer.json({"message": "The request body is not valid JSON"}, status=400)
        client = self.clients.get(body.get("client_id")) if isinstance(body.get("client_id"), int) else None
        if client is None:
            return Answer.json({"message": "Client can't be blank"}, status=422)
        number = str(body.get("number") or "").strip() or str(len(self.invoices) + 1)
        if self.invoices_numbered(number):
            return Answer.json({"message": "Number has already been taken"}, status=422)
        lines, subtotal, taxed_subtotal = [], Decimal("0"), Decimal("0")
        for item in body.get("line_items") or []:
            if not isinstance(item, dict) or not item.get("kind"):
                return Answer.json({"message": "Line items kind can't be blank"}, status=422)
            try:
                quantity = Decimal(str(item.get("quantity", 1)))
                unit_price = Decimal(str(item.get("unit_price", 0)))
            except ArithmeticError:
                return Answer.json({"message": "Line items quantity and unit price must be numbers"},
                                   status=422)
            amount = (quantity * unit_price).quantize(CENT, rounding=ROUND_HALF_UP)
            subtotal += amount
            if item.get("taxed"):
                taxed_subtotal += amount
            lines.append({"id": next(self._line_ids), "project": None, "kind": item["kind"],
                          "description": item.get("description") or "", "quantity": float(quantity),
                          "unit_price": float(unit_price), "amount": float(amount),
                          "taxed": bool(item.get("taxed")), "taxed2": bool(item.get("taxed2"))})
        tax = Decimal(str(body.get("tax") or 0))
        tax_amount = (taxed_subtotal * tax / 100).quantize(CENT, rounding=ROUND_HALF_UP)
        now = _ts(self._now())
        invoice = {
            "id": next(self._invoice_ids), "client_key": secrets.token_hex(20),
            "client": {"id": client["id"], "name": client["name"]}, "number": number,
            "purchase_order": body.get("purchase_order") or "", "amount": _money(subtotal + tax_amount),
            "due_amount": _money(subtotal + tax_amount), "tax": float(tax) if tax else None,
            "tax_amount": _money(tax_amount), "tax2": None, "tax2_amount": 0.0, "discount": None,
            "discount_amount": 0.0, "subject": body.get("subject") or "", "notes": body.get("notes") or "",
            "currency": body.get("currency") or client["currency"], "state": "draft",
            "period_start": body.get("period_start"), "period_end": body.get("period_end"),
            "issue_date": body.get("issue_date") or self._now().date().isoformat(),
            "due_date": body.get("due_date"),
            "payment_term": body.get("payment_term") or "custom", "sent_at": None, "paid_at": None,
            "paid_date": None, "closed_at": None, "created_at": now, "updated_at": now, "line_items": lines,
        }
        self.invoices[invoice["id"]] = invoice
        return Answer.json(invoice, status=201)

    def _post_message(self, invoice: dict, request: RecordedRequest) -> Answer:
        body = self._body(request) or {}
        event_type = body.get("event_type")
        if event_type not in (None, "send", "close", "re-open", "draft"):
            return Answer.json({"message": "Event type is not included in the list"}, status=422)
        if event_type is None and not body.get("recipients"):
            return Answer.json({"message": "Recipients can't be blank"}, status=422)
        now = _ts(self._now())
        if event_type in (None, "send") and invoice["state"] == "draft":
            invoice["state"], invoice["sent_at"] = "open", now
        elif event_type == "close":
            invoice["state"], invoice["closed_at"] = "closed", now
        elif event_type == "re-open":
            invoice["state"] = "open"
        elif event_type == "draft":
            invoice["state"] = "draft"
        invoice["updated_at"] = now
        message = {"id": len(self.messages) + 1, "invoice_id": invoice["id"], "event_type": event_type,
                   "recipients": body.get("recipients") or [], "subject": body.get("subject"),
                   "body": body.get("body"), "send_me_a_copy": bool(body.get("send_me_a_copy")),
                   "sent_by": "Billable", "created_at": now, "updated_at": now}
        self.messages.append(message)
        return Answer.json(message, status=201)

