"""A fake HubSpot: contacts, logged emails and transactional sends, as our message push uses them
(docs/INTEGRATIONS.md §5).

Faithful where the push depends on it: `Authorization: Bearer <token>` (401 INVALID_AUTHENTICATION
otherwise); string ids and string property values; 201 on create; contact search with EQ/IN filters,
`limit` at most 200 and `paging.next.after`; a second contact with one email refused with 409 "Contact
already exists. Existing ID: n"; emails need `hs_timestamp` and associations to existing contacts (type 198);
the transactional single-send answers PENDING and the send status moves PENDING → PROCESSING → COMPLETE
as it is polled, a repeated `sendId` sending nothing new; every answer carries the X-HubSpot-RateLimit-*
headers, and a spent limit is a 429 naming its `policyName`.
"""

import itertools
import json
import secrets
import threading
import uuid
from datetime import UTC, datetime

from integrations.fakes.base import Answer, FakeService, LostAnswers, RecordedRequest

TOKEN = "fake-hubspot-token"
EMAIL_TO_CONTACT = 198
MAX_SEARCH_LIMIT = 200
TEN_SECOND_MAX = 100
DAILY_MAX = 250_000


def _error(message: str, category: str, status: int, **extra) -> Answer:
    return Answer.json({"status": "error", "message": message, "correlationId": str(uuid.uuid4()),
                        "category": category, **extra}, status=status)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _ms(value) -> int | None:
    """A HubSpot datetime value (milliseconds, or ISO) as milliseconds."""
    try:
        return int(value)
    except (TypeError, ValueError):
        pass
    try:
        return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


class FakeHubSpot(LostAnswers, FakeService):
    name = "hubspot"

    def __init__(self, *, token: str = TOKEN):
        super().__init__()
        self._setup_lost_answers()
        self.token = token
        self.contacts: dict[str, dict] = {}
        self.emails: dict[str, dict] = {}
        self.transactional_email_ids: set[str] = set()
        self.sends: dict[str, dict] = {}
        self._ids = itertools.count(60_001)
        self._state = threading.Lock()
        self.daily_remaining = DAILY_MAX

    # --- test data -------------------------------------------------------------------------------------
    def add_contact(self, email: str, firstname: str = "", lastname: str = "") -> str:
        with self._state:
            return self._create_contact({"email": email, "firstname": firstname, "lastname": lastname})["id"]

    def add_transactional_email(self) -> str:
        email_id = str(next(self._ids))
        self.transactional_email_ids.add(email_id)
        return email_id

    def archive(self, object_id: str) -> None:
        """Deleted in HubSpot: kept with `archived` true, out of every search."""
        with self._state:
            for table in (self.contacts, self.emails):
                if object_id in table:
                    table[object_id]["archived"] = True

    def emails_of(self, contact_id: str) -> list[dict]:
        return [e for e in self.emails.values() if contact_id in e["contact_ids"]]

    def limit_next(self, count: int = 1, *, policy: str = "TEN_SECONDLY_ROLLING") -> None:
        """The next `count` requests hit a rate limit (TEN_SECONDLY_ROLLING or DAILY)."""
        limit = {"TEN_SECONDLY_ROLLING": "ten_secondly_rolling", "DAILY": "daily"}[policy]
        headers = {"X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                   "X-HubSpot-RateLimit-Max": str(TEN_SECOND_MAX),
                   "X-HubSpot-RateLimit-Remaining": "0" if policy != "DAILY" else "50",
                   "X-HubSpot-RateLimit-Daily": str(DAILY_MAX),
                   "X-HubSpot-RateLimit-Daily-Remaining": "0" if policy == "DAILY" else "1000"}
        self.fail_next(count, status=429, headers=headers, body={
            "status": "error", "message": f"You have reached your {limit} limit.", "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()), "policyName": policy})

    def expire_token(self) -> None:
        self.token = "expired-" + secrets.token_hex(4)

    def stop_failing(self) -> None:
        super().stop_failing()
        self.stop_losing()

    @staticmethod
    def _now_ms() -> int:
        return int(datetime.now(UTC).timestamp() * 1000)

    # --- the API ---------------------------------------------------------------------------------------
    def random_fault(self) -> Answer:
        answer = super().random_fault()
        if answer.status == 429:
            return Answer.json({"status": "error",
                                "message": "You have reached your ten_secondly_rolling limit.",
                                "errorType": "RATE_LIMIT", "correlationId": str(uuid.uuid4()),
                                "policyName": "TEN_SECONDLY_ROLLING"}, status=429,
                               headers={"X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                                        "X-HubSpot-RateLimit-Remaining": "0"})
        return _error("An internal error occurred.", "INTERNAL_ERROR", answer.status)

    def handle(self, request: RecordedRequest) -> Answer:
        if request.header("Authorization") != f"Bearer {self.token}":
            return _error("Authentication credentials not found. This API supports OAuth 2.0 authentication "
                          "and you can find more details at https://developers.hubspot.com/docs/methods/auth/"
                          "oauth-overview", "INVALID_AUTHENTICATION", 401)
        with self._state:
            self.daily_remaining -= 1
            answer = self._route(request)
        answer.headers.update({"X-HubSpot-RateLimit-Daily": str(DAILY_MAX),
                               "X-HubSpot-RateLimit-Daily-Remaining": str(self.daily_remaining),
                               "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                               "X-HubSpot-RateLimit-Max": str(TEN_SECOND_MAX),
                               "X-HubSpot-RateLimit-Remaining": str(TEN_SECOND_MAX - 1)})
        # Searches are POSTs that change nothing: only real writes lose their answers.
        return self.deliver_or_lose(request, answer, write=request.method == "POST"
                                    and not request.path.rstrip("/").endswith("/search"))

    def _route(self, request: RecordedRequest) -> Answer:
        path, method = request.path.rstrip("/"), request.method
        if method == "POST":
            try:
                body = request.json
            except ValueError:
                return _error("Invalid input JSON on line 1", "VALIDATION_ERROR", 400)
            if not isinstance(body, dict):
                return _error("Invalid input JSON: expected an object", "VALIDATION_ERROR", 400)
            if path == "/crm/v3/objects/contacts/search":
                return self._search(self.contacts, body)
            if path == "/crm/v3/objects/contacts":
                return self._post_contact(body)
            if path == "/crm/v3/objects/emails/search":
                return self._search(self.emails, body)
            if path == "/crm/v3/objects/emails":
                return self._post_email(body)
            if path == "/marketing/v3/transactional/single-email/send":
                return self._send(body)
        if method == "GET" and path.startswith("/marketing/v3/email/send-statuses/"):
            return self._send_status(path.rsplit("/", 1)[1])
        return _error(f"Unable to route {method} {path}", "OBJECT_NOT_FOUND", 404)

    # Search: filterGroups are ORed, filters in a group ANDed.
    def _search(self, table: dict, body: dict) -> Answer:
        try:
            limit = int(body.get("limit") or 10)
            after = int(body.get("after") or 0)
        except (TypeError, ValueError):
            return _error("limit and after must be numbers", "VALIDATION_ERROR", 400)
        if limit > MAX_SEARCH_LIMIT:
            return _error(f"limit must be at most {MAX_SEARCH_LIMIT}", "VALIDATION_ERROR", 400)
        groups = body.get("filterGroups") or [{"filters": []}]
        matches = [row for row in sorted(table.values(), key=lambda r: int(r["id"])) if not row["archived"]
                   and any(self._matches(row, group.get("filters") or []) for group in groups)]
        chunk = matches[after:after + limit]
        wanted = body.get("properties") or []
        answer = {"total": len(matches), "results": [self._shape(row, wanted) for row in chunk]}
        if after + limit < len(matches):
            answer["paging"] = {"next": {"after": str(after + limit)}}
        return Answer.json(answer)

    @staticmethod
    def _matches(row: dict, filters: list[dict]) -> bool:
        for rule in filters:
            name, operator = rule.get("propertyName"), rule.get("operator")
            have = row["properties"].get(name)
            if name == "hs_timestamp":
                have = _ms(have)
                value, values = _ms(rule.get("value")), [_ms(v) for v in rule.get("values") or []]
            elif name == "email":
                have = (have or "").lower()
                value = str(rule.get("value") or "").lower()
                values = [str(v).lower() for v in rule.get("values") or []]
            else:
                value, values = rule.get("value"), rule.get("values") or []
            if operator == "EQ" and have != value:
                return False
            if operator == "IN" and have not in values:
                return False
            if operator not in ("EQ", "IN"):
                return False
        return True

    @staticmethod
    def _shape(row: dict, wanted: list[str] | None = None) -> dict:
        properties = row["properties"]
        if wanted:
            base = {"hs_object_id", "hs_createdate", "hs_lastmodifieddate", "createdate", "lastmodifieddate"}
            properties = {k: v for k, v in properties.items() if k in set(wanted) | base}
        return {"id": row["id"], "properties": properties, "createdAt": row["createdAt"],
                "updatedAt": row["updatedAt"], "archived": row["archived"]}

    def _create_contact(self, properties: dict) -> dict:
        contact_id = str(next(self._ids))
        now = _iso(self._now_ms())
        contact = {"id": contact_id, "createdAt": now, "updatedAt": now, "archived": False,
                   "properties": {**{k: str(v) for k, v in properties.items() if v is not None},
                                  "hs_object_id": contact_id, "createdate": now, "lastmodifieddate": now}}
        self.contacts[contact_id] = contact
        return contact

    def _post_contact(self, body: dict) -> Answer:
        properties = body.get("properties") or {}
        email = str(properties.get("email") or "").lower()
        # An archived contact's email is free again.
        existing = next((c for c in self.contacts.values() if email and not c["archived"]
                         and c["properties"].get("email", "").lower() == email), None)
        if existing is not None:
            return _error(f"Contact already exists. Existing ID: {existing['id']}", "CONFLICT", 409)
        return Answer.json(self._shape(self._create_contact(properties)), status=201)

    def _post_email(self, body: dict) -> Answer:
        properties = {k: str(v) for k, v in (body.get("properties") or {}).items() if v is not None}
        if "hs_timestamp" not in properties or _ms(properties["hs_timestamp"]) is None:
            problem = [{"isValid": False, "message": "hs_timestamp is required", "error": "REQUIRED_FIELD",
                        "name": "hs_timestamp"}]
            return _error(f"Property values were not valid: {json.dumps(problem)}", "VALIDATION_ERROR", 400)
        if "hs_email_headers" in properties:
            try:
                json.loads(properties["hs_email_headers"])
            except ValueError:
                return _error("hs_email_headers must be a JSON string", "VALIDATION_ERROR", 400)
        contact_ids = []
        for association in body.get("associations") or []:
            target = str((association.get("to") or {}).get("id"))
            kinds = [t.get("associationTypeId") for t in association.get("types") or []]
            contact = self.contacts.get(target)
            if contact is None or contact["archived"] or EMAIL_TO_CONTACT not in kinds:
                return _error(f"Association to {target} with types {kinds} is not valid for an email",
                              "VALIDATION_ERROR", 400)
            contact_ids.append(target)
        email_id = str(next(self._ids))
        now = _iso(self._now_ms())
        properties["hs_timestamp"] = _iso(_ms(properties["hs_timestamp"]))
        email = {"id": email_id, "createdAt": now, "updatedAt": now, "archived": False,
                 "contact_ids": contact_ids,
                 "properties": {**properties, "hs_object_id": email_id, "hs_createdate": now,
                                "hs_lastmodifieddate": now}}
        self.emails[email_id] = email
        return Answer.json(self._shape(email), status=201)

    def _send(self, body: dict) -> Answer:
        message = body.get("message") or {}
        if str(body.get("emailId")) not in self.transactional_email_ids:
            return _error(f"Email {body.get('emailId')} is not a transactional email", "VALIDATION_ERROR",
                          400)
        if not message.get("to"):
            return _error("message.to is required", "VALIDATION_ERROR", 400)
        send_id = message.get("sendId")
        if send_id:
            # One email per sendId: asking again answers with the first send's status.
            for status in self.sends.values():
                if status["sendId"] == send_id:
                    return Answer.json(self._status_body(status))
        status_id = str(uuid.uuid4())
        self.sends[status_id] = {"statusId": status_id, "sendId": send_id, "to": message["to"],
                                 "emailId": str(body["emailId"]),
                                 "customProperties": body.get("customProperties") or {},
                                 "status": "PENDING", "requestedAt": _iso(self._now_ms()), "polls": 0}
        return Answer.json(self._status_body(self.sends[status_id]))

    @staticmethod
    def _status_body(send: dict) -> dict:
        body = {"statusId": send["statusId"], "status": send["status"], "requestedAt": send["requestedAt"]}
        if send["status"] == "COMPLETE":
            body["sendResult"] = "INVALID_TO_ADDRESS" if send["to"].endswith(".invalid") else "SENT"
            body["completedAt"] = send["requestedAt"]
        return body

    def _send_status(self, status_id: str) -> Answer:
        send = self.sends.get(status_id)
        if send is None:
            return _error(f"No send status {status_id}", "OBJECT_NOT_FOUND", 404)
        send["polls"] += 1
        send["status"] = {1: "PROCESSING"}.get(send["polls"], "COMPLETE")
        return Answer.json(self._status_body(send))
