"""A fake monday.com: the GraphQL endpoint our connector uses, and webhook bodies (docs/INTEGRATIONS.md §2).

One `POST /v2`; `Authorization: <token>` (a `Bearer ` prefix accepted) else 401; ids are strings;
`items_page` / `next_items_page` cursor paging (cursor null on the last page, valid 60 minutes);
the `__last_updated__` rule; time-tracking history sessions; application errors as HTTP 200 with an
`errors` array (complexity budget with `retry_in_seconds`); 429 with Retry-After; the webhook challenge.

It answers by recognising the root fields of our queries (boards, items_page, next_items_page, items,
users, complexity) and always returns every field of our selection; it is not a GraphQL engine.
"""

import itertools
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, date, datetime

from integrations.fakes.base import Answer, FakeService, RecordedRequest

TOKEN = "fake-monday-token"
ACCOUNT_ID = 9876
CURSOR_LIFETIME = 3600


def _ts(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _error(message: str, code: str, *, status_code: int = 200, **extensions) -> dict:
    return {"message": message, "locations": [{"line": 1, "column": 1}], "path": [],
            "extensions": {"code": code, "status_code": status_code, "error_data": {}, **extensions}}


class FakeMonday(FakeService):
    name = "monday"

    def __init__(self, *, token: str = TOKEN):
        super().__init__()
        self.token = token
        self.users: dict[str, dict] = {}
        self.boards: dict[str, dict] = {}
        self.items: dict[str, dict] = {}
        self._cursors: dict[str, dict] = {}
        self._ids = itertools.count(5_000_001)
        self._state = threading.Lock()
        self._graphql_faults: list[dict] = []

    # --- test data -------------------------------------------------------------------------------------
    def _id(self) -> str:
        return str(next(self._ids))

    def add_user(self, email: str, name: str = "") -> str:
        user_id = self._id()
        self.users[user_id] = {"id": user_id, "email": email, "name": name or email.split("@")[0]}
        return user_id

    def add_board(self, name: str) -> str:
        board_id = self._id()
        self.boards[board_id] = {"id": board_id, "name": name, "state": "active"}
        return board_id

    def add_item(self, board_id: str, name: str, *, people: list[str] = ()) -> str:
        item_id = self._id()
        self.items[item_id] = {"id": item_id, "name": name, "board_id": board_id, "state": "active",
                               "group": {"id": "topics", "title": "Group Title"}, "people": list(people),
                               "sessions": [], "updated_at": self._now()}
        return item_id

    def add_session(self, item_id: str, *, user_id: str, started_at: datetime | None,
                    ended_at: datetime | None = None, manual: bool = False) -> str:
        """A timer session; without `ended_at` it is still running."""
        with self._state:
            session_id = self._id()
            self.items[item_id]["sessions"].append({
                "id": session_id, "status": "stopped" if ended_at else "active",
                "started_at": _ts(started_at), "ended_at": _ts(ended_at), "started_user_id": user_id,
                "ended_user_id": user_id if ended_at else None, "created_at": _ts(started_at or self._now()),
                "updated_at": _ts(self._now()), "manually_entered_start_date": manual,
                "manually_entered_start_time": manual, "manually_entered_end_date": manual,
                "manually_entered_end_time": manual})
            self._touch(item_id)
            return session_id

    def edit_session(self, item_id: str, session_id: str, *, started_at: datetime | None = None,
                     ended_at: datetime | None = None) -> None:
        with self._state:
            for session in self.items[item_id]["sessions"]:
                if session["id"] == session_id:
                    if started_at:
                        session["started_at"] = _ts(started_at)
                    if ended_at:
                        session["ended_at"], session["status"] = _ts(ended_at), "stopped"
                        session["ended_user_id"] = session["started_user_id"]
                    session["updated_at"] = _ts(self._now())
            self._touch(item_id)

    def delete_session(self, item_id: str, session_id: str) -> None:
        with self._state:
            item = self.items[item_id]
            item["sessions"] = [s for s in item["sessions"] if s["id"] != session_id]
            self._touch(item_id)

    def delete_item(self, item_id: str, *, state: str = "deleted") -> None:
        """Deleted (or archived) items leave items_page; `items(ids:)` still reports their state."""
        with self._state:
            self.items[item_id]["state"] = state
            self._touch(item_id)

    def set_updated_at(self, item_id: str, moment: datetime) -> None:
        self.items[item_id]["updated_at"] = moment

    def expire_token(self) -> None:
        self.token = "expired-" + secrets.token_hex(4)

    def exhaust_complexity(self, count: int = 1, *, retry_in_seconds: int = 1) -> None:
        """The next `count` queries fail inside an HTTP 200, as monday reports a spent budget."""
        self._graphql_faults.extend(
            [_error(f"Complexity budget exhausted, reset in {retry_in_seconds} seconds",
                    "COMPLEXITY_BUDGET_EXHAUSTED", status_code=429, retry_in_seconds=retry_in_seconds)] * count)

    def graphql_error(self, count: int = 1, *, code: str = "InvalidBoardIdException",
                      message: str = "Board not found") -> None:
        self._graphql_faults.extend([_error(message, code, status_code=400)] * count)

    def _touch(self, item_id: str) -> None:
        self.items[item_id]["updated_at"] = self._now()

    @staticmethod
    def _now() -> datetime:
        return datetime.now(UTC).replace(microsecond=0)

    # --- webhook bodies --------------------------------------------------------------------------------
    @staticmethod
    def challenge() -> dict:
        return {"challenge": secrets.token_urlsafe(24)}

    def event(self, item_id: str, event_type: str = "change_column_value", **extra) -> dict:
        item = self.items[item_id]
        return {"event": {"type": event_type, "triggerTime": _ts(self._now()), "subscriptionId": 77,
                          "userId": int(item["people"][0]) if item["people"] else 1,
                          "originalTriggerUuid": None, "boardId": int(item["board_id"]), "groupId": "topics",
                          "pulseId": int(item_id), "pulseName": item["name"], "columnId": "time_tracking",
                          "columnType": "duration", "columnTitle": "Time Tracking", "value": None,
                          "previousValue": None, "changedAt": time.time(),
                          "triggerUuid": secrets.token_hex(16), **extra}}

    @staticmethod
    def deliver(url: str, body: dict) -> tuple[int, bytes]:
        request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback demo
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    # --- shapes ----------------------------------------------------------------------------------------
    def _item(self, item: dict) -> dict:
        sessions = item["sessions"]
        running = [s for s in sessions if s["status"] == "active"]
        done = 0
        for s in sessions:
            if s["started_at"] and s["ended_at"]:
                done += int((datetime.fromisoformat(s["ended_at"]) - datetime.fromisoformat(s["started_at"]))
                            .total_seconds())
        people = [{"id": user_id, "kind": "person"} for user_id in item["people"]]
        names = ", ".join(self.users[u]["name"] for u in item["people"] if u in self.users)
        return {
            "id": item["id"], "name": item["name"], "state": item["state"], "updated_at": _ts(item["updated_at"]),
            "board": {"id": item["board_id"]}, "group": item["group"],
            "column_values": [
                {"id": "person", "type": "people", "text": names,
                 "value": json.dumps({"personsAndTeams": [{"id": int(p["id"]), "kind": "person"} for p in people]}),
                 "persons_and_teams": people},
                {"id": "time_tracking", "type": "time_tracking",
                 "text": f"{done // 3600:02d}:{done % 3600 // 60:02d}:{done % 60:02d}",
                 "value": json.dumps({"running": bool(running), "duration": done}), "duration": done,
                 "running": bool(running), "started_at": running[0]["started_at"] if running else None,
                 "updated_at": _ts(item["updated_at"]), "history": sessions},
            ],
        }

    # --- the API ---------------------------------------------------------------------------------------
    def random_fault(self) -> Answer:
        answer = super().random_fault()
        if answer.status == 429 and self._random.random() < 0.5:
            return Answer.json({"errors": [_error("Complexity budget exhausted", "COMPLEXITY_BUDGET_EXHAUSTED",
                                                  status_code=429, retry_in_seconds=1)], "account_id": ACCOUNT_ID})
        return answer

    def handle(self, request: RecordedRequest) -> Answer:
        if request.method != "POST" or request.path.rstrip("/") != "/v2":
            return Answer.json({"error_message": "Not found", "status_code": 404}, status=404)
        token = request.header("Authorization").removeprefix("Bearer ").strip()
        if token != self.token:
            return Answer.json({"errors": [_error("Not Authenticated", "UNAUTHENTICATED", status_code=401)],
                                "account_id": None}, status=401)
        try:
            body = request.json or {}
            query, variables = body["query"], body.get("variables") or {}
        except (ValueError, KeyError, TypeError):
            return Answer.json({"error_message": "No query string was present", "status_code": 400}, status=400)
        with self._state:
            if self._graphql_faults:
                return Answer.json({"errors": [self._graphql_faults.pop(0)], "account_id": ACCOUNT_ID})
            try:
                data = self._resolve(query, variables)
            except LookupError as error:
                return Answer.json({"errors": [_error(str(error), error.args[1] if len(error.args) > 1 else
                                                      "InvalidArgumentException", status_code=400)],
                                    "data": None, "account_id": ACCOUNT_ID})
        return Answer.json({"data": data, "account_id": ACCOUNT_ID,
                            "extensions": {"request_id": secrets.token_hex(8)}})

    def _resolve(self, query: str, variables: dict) -> dict:
        data: dict = {}
        if re.search(r"\bcomplexity\s*{", query):
            data["complexity"] = {"before": 10_000_000, "after": 9_990_000, "query": 10_000, "reset_in_x_seconds": 42}
        if re.search(r"\bnext_items_page\s*\(", query):
            data["next_items_page"] = self._next_page(str(variables.get("cursor") or ""),
                                                      int(variables.get("limit") or 25))
        elif re.search(r"\bitems_page\s*\(", query):
            data["boards"] = [self._first_page(board_id, variables) for board_id in self._ids_of(variables, "board_ids")]
        elif re.search(r"\bboards\s*\(", query):
            data["boards"] = [dict(self.boards[b]) for b in self._ids_of(variables, "board_ids") if b in self.boards]
        if re.search(r"\bitems\s*\(\s*ids", query):
            # Deleted and archived items still answer here, with their state.
            data["items"] = [self._item(self.items[i]) for i in self._ids_of(variables, "item_ids")
                             if i in self.items]
        if re.search(r"\busers\s*\(", query):
            wanted = self._ids_of(variables, "user_ids")
            data["users"] = [self.users[u] for u in wanted if u in self.users]
        if not data:
            raise LookupError("Parse error on query: no field our fake knows", "GraphQLParseError")
        return data

    @staticmethod
    def _ids_of(variables: dict, name: str) -> list[str]:
        return [str(value) for value in variables.get(name) or []]

    def _first_page(self, board_id: str, variables: dict) -> dict:
        if board_id not in self.boards:
            raise LookupError(f"Board {board_id} does not exist", "InvalidBoardIdException")
        limit = int(variables.get("limit") or 25)
        if limit > 500:
            raise LookupError("limit must be at most 500", "InvalidArgumentException")
        since = None
        for rule in ((variables.get("query_params") or {}).get("rules") or []):
            if rule.get("column_id") == "__last_updated__":
                since = date.fromisoformat(rule["compare_value"][1])
        ids = [i for i, item in self.items.items() if item["board_id"] == board_id and item["state"] == "active"
               and (since is None or item["updated_at"].date() >= since)]
        return {"id": board_id, "name": self.boards[board_id]["name"], "items_page": self._page(ids, 0, limit)}

    def _next_page(self, cursor: str, limit: int) -> dict:
        state = self._cursors.get(cursor)
        if state is None or state["expires"] < time.time():
            raise LookupError("CursorException: cursor is invalid or expired", "CursorException")
        return self._page(state["ids"], state["offset"], limit)

    def _page(self, ids: list[str], offset: int, limit: int) -> dict:
        chunk = ids[offset:offset + limit]
        cursor = None
        if offset + limit < len(ids):
            cursor = secrets.token_urlsafe(12)
            self._cursors[cursor] = {"ids": ids, "offset": offset + limit, "expires": time.time() + CURSOR_LIFETIME}
        return {"cursor": cursor, "items": [self._item(self.items[i]) for i in chunk]}
