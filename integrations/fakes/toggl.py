"""A fake Toggl Track: API v9, Reports API v3 search, and signed webhook events (docs/INTEGRATIONS.md §1).

Faithful where our connector depends on it: Basic auth with the token and the literal password
"api_token" (403 otherwise), bare JSON arrays, negative `duration` while an entry runs, `server_deleted_at`
on `since` queries, the Reports paging headers (X-Next-ID, X-Next-Row-Number, X-Next-Timestamp), the
hourly quota headers and 402 when the quota is spent, 429 with Retry-After.
"""

import hashlib
import hmac
import itertools
import json
import re
import secrets
import threading
import urllib.error
import urllib.request
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from integrations.fakes.base import Answer, FakeService, RecordedRequest

TOKEN = "fake-toggl-token"
WORKSPACE_ID = 4242
HOURLY_QUOTA = 240


def _ts(moment: datetime | None, tz: str = "UTC") -> str | None:
    if moment is None:
        return None
    return moment.astimezone(ZoneInfo(tz)).isoformat(timespec="seconds")


def sign(body: bytes, secret: str) -> str:
    """The X-Webhook-Signature-256 value for a body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class FakeToggl(FakeService):
    name = "toggl"

    def __init__(self, *, token: str = TOKEN, workspace_id: int = WORKSPACE_ID, webhook_secret: str = ""):
        super().__init__()
        self.token = token
        self.workspace_id = workspace_id
        self.webhook_secret = webhook_secret or secrets.token_hex(16)
        self.users: dict[int, dict] = {}
        self.projects: dict[int, dict] = {}
        self.tasks: dict[int, dict] = {}
        self.entries: dict[int, dict] = {}
        self.owner_id: int | None = None
        self.quota_remaining = HOURLY_QUOTA
        self._ids = itertools.count(1001)
        self._state = threading.Lock()

    # --- test data -------------------------------------------------------------------------------------
    def add_user(self, email: str, fullname: str = "", *, timezone: str = "UTC") -> int:
        user_id = next(self._ids)
        self.users[user_id] = {"id": user_id, "email": email, "fullname": fullname or email.split("@")[0],
                               "timezone": timezone}
        if self.owner_id is None:
            self.owner_id = user_id
        return user_id

    def add_project(self, name: str, *, client_id: int | None = None) -> int:
        project_id = next(self._ids)
        self.projects[project_id] = {"id": project_id, "workspace_id": self.workspace_id, "name": name,
                                     "client_id": client_id, "active": True, "billable": True}
        return project_id

    def add_task(self, project_id: int, name: str) -> int:
        task_id = next(self._ids)
        self.tasks[task_id] = {"id": task_id, "name": name, "project_id": project_id,
                               "workspace_id": self.workspace_id, "active": True}
        return task_id

    def add_entry(self, *, user_id: int, project_id: int | None, start: datetime, seconds: int | None,
                  description: str = "", billable: bool = True, task_id: int | None = None) -> dict:
        """An entry; `seconds=None` leaves it running (stop null, duration -1 as the v9 API writes it)."""
        with self._state:
            entry_id = next(self._ids)
            entry = {"id": entry_id, "workspace_id": self.workspace_id, "user_id": user_id,
                     "project_id": project_id, "task_id": task_id, "description": description,
                     "billable": billable, "start": start.astimezone(UTC), "tags": [], "tag_ids": [],
                     "duronly": False, "server_deleted_at": None}
            self._set_duration(entry, seconds)
            entry["at"] = self._now()
            self.entries[entry_id] = entry
            return entry

    def edit_entry(self, entry_id: int, **changes) -> dict:
        with self._state:
            entry = self.entries[entry_id]
            seconds = changes.pop("seconds", "unchanged")
            entry.update(changes)
            if seconds != "unchanged":
                self._set_duration(entry, seconds)
            entry["at"] = self._now()
            return entry

    def stop_entry(self, entry_id: int, seconds: int) -> dict:
        return self.edit_entry(entry_id, seconds=seconds)

    def delete_entry(self, entry_id: int) -> dict:
        with self._state:
            entry = self.entries[entry_id]
            entry["server_deleted_at"] = entry["at"] = self._now()
            return entry

    def corrupt_entry(self, entry_id: int, **raw) -> None:
        """Serve these raw values in the entry's report rows and v9 objects (a malformed record)."""
        self.entries[entry_id]["raw"] = raw

    def expire_token(self) -> None:
        self.token = "expired-" + secrets.token_hex(4)

    def exhaust_quota(self, *, resets_in: int = 1, count: int = 1) -> None:
        """The hourly quota is spent for the next `count` requests: 402 with the quota headers."""
        self.fail_next(count, status=402, body="You have hit your hourly limit for API calls.",
                       headers={"X-Toggl-Quota-Remaining": "0", "X-Toggl-Quota-Resets-In": str(resets_in)})

    @staticmethod
    def _now() -> datetime:
        return datetime.now(UTC).replace(microsecond=0)

    @staticmethod
    def _set_duration(entry: dict, seconds: int | None) -> None:
        if seconds is None:
            entry["stop"], entry["duration"] = None, -1
        else:
            entry["stop"], entry["duration"] = entry["start"] + timedelta(seconds=seconds), seconds

    # --- shapes ----------------------------------------------------------------------------------------
    def v9(self, entry: dict) -> dict:
        """An entry as API v9 (and webhook payloads) give it, with the legacy aliases."""
        return {**{key: value for key, value in entry.items() if key not in ("start", "stop", "at",
                                                                           "server_deleted_at", "raw")},
                "start": _ts(entry["start"]), "stop": _ts(entry["stop"]), "at": _ts(entry["at"]),
                "server_deleted_at": _ts(entry["server_deleted_at"]),
                "wid": entry["workspace_id"], "pid": entry["project_id"], "tid": entry["task_id"],
                "uid": entry["user_id"], "permissions": None, **entry.get("raw", {})}

    def _report_row(self, entry: dict, row_number: int) -> dict:
        user = self.users.get(entry["user_id"], {})
        tz = user.get("timezone", "UTC")
        seconds = entry["duration"]
        return {
            "user_id": entry["user_id"], "username": user.get("fullname", ""), "project_id": entry["project_id"],
            "task_id": entry["task_id"], "description": entry["description"], "billable": entry["billable"],
            "tag_ids": entry["tag_ids"], "hourly_rate_in_cents": None, "billable_amount_in_cents": None,
            "currency": "USD", "row_number": row_number,
            # Report times carry the user's UTC offset.
            "time_entries": [{"id": entry["id"], "seconds": seconds, "start": _ts(entry["start"], tz),
                              "stop": _ts(entry["stop"], tz), "at": _ts(entry["at"], tz), "at_tz": _ts(entry["at"], tz),
                              **entry.get("raw", {})}],
        }

    def event(self, action: str, entry_id: int | None = None, *, event_id: int | None = None,
              payload=None) -> dict:
        """A webhook event body for an entry (created/updated/deleted)."""
        if payload is None:
            payload = self.v9(self.entries[entry_id])
        return {"event_id": event_id or next(self._ids), "created_at": _ts(self._now()), "creator_id": self.owner_id,
                "metadata": {"action": action, "model": "time_entry", "path": f"/time_entries/{entry_id}",
                             "request_type": {"created": "POST", "updated": "PUT", "deleted": "DELETE"}.get(action),
                             "event_user_id": self.owner_id, "workspace_id": self.workspace_id},
                "payload": payload, "subscription_id": 7, "timestamp": _ts(self._now()), "url_callback": ""}

    def ping_event(self, validation_code: str = "") -> dict:
        return {"event_id": next(self._ids), "created_at": _ts(self._now()), "creator_id": self.owner_id,
                "metadata": {"event_user_id": self.owner_id, "workspace_id": self.workspace_id},
                "payload": "ping", "subscription_id": 7, "timestamp": _ts(self._now()),
                "validation_code": validation_code or secrets.token_hex(8), "url_callback": ""}

    def signed(self, event: dict, secret: str | None = None) -> tuple[bytes, str]:
        body = json.dumps(event).encode()
        return body, sign(body, secret or self.webhook_secret)

    def deliver(self, url: str, event: dict) -> tuple[int, bytes]:
        """POST a signed event to a callback URL, as Toggl does (for demos against a running server)."""
        body, signature = self.signed(event)
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", "X-Webhook-Signature-256": signature})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback demo
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    # --- the API ---------------------------------------------------------------------------------------
    def random_fault(self) -> Answer:
        answer = super().random_fault()
        if answer.status == 429 and self._random.random() < 0.5:
            return Answer.text("You have hit your hourly limit for API calls.", status=402,
                               headers={"X-Toggl-Quota-Remaining": "0", "X-Toggl-Quota-Resets-In": "1"})
        return answer

    def handle(self, request: RecordedRequest) -> Answer:
        if request.basic_auth() != (self.token, "api_token"):
            return Answer.text("Incorrect username and/or password", status=403)
        with self._state:
            self.quota_remaining = max(0, self.quota_remaining - 1)
            answer = self._route(request)
        answer.headers.setdefault("X-Toggl-Quota-Remaining", str(self.quota_remaining))
        answer.headers.setdefault("X-Toggl-Quota-Resets-In", "3600")
        return answer

    def _route(self, request: RecordedRequest) -> Answer:
        path, method, ws = request.path.rstrip("/"), request.method, self.workspace_id
        if method == "GET" and path == "/api/v9/me":
            user = self.users.get(self.owner_id, {})
            return Answer.json({**user, "default_workspace_id": ws})
        if method == "GET" and path == "/api/v9/me/time_entries":
            return self._my_entries(request)
        if method == "GET" and path == "/api/v9/me/time_entries/current":
            running = [e for e in self.entries.values() if e["user_id"] == self.owner_id and e["stop"] is None
                       and not e["server_deleted_at"]]
            return Answer.json(self.v9(running[0]) if running else None)
        if method == "GET" and path == f"/api/v9/workspaces/{ws}/users":
            return Answer.json(list(self.users.values()))
        if method == "GET" and path == f"/api/v9/workspaces/{ws}/projects":
            return Answer.json(list(self.projects.values()))
        match = re.fullmatch(rf"/api/v9/workspaces/{ws}/projects/(\d+)/tasks", path)
        if method == "GET" and match:
            return Answer.json([t for t in self.tasks.values() if t["project_id"] == int(match[1])])
        if method == "POST" and path == f"/reports/api/v3/workspace/{ws}/search/time_entries":
            return self._search(request)
        if re.fullmatch(r"/(api/v9|reports/api/v3)/workspaces?/\d+/.*", path):
            return Answer.text("Incorrect workspace", status=403)
        return Answer.text("Not found", status=404)

    def _my_entries(self, request: RecordedRequest) -> Answer:
        mine = [e for e in self.entries.values() if e["user_id"] == self.owner_id]
        since = request.query.get("since", [None])[0]
        if since is not None:
            try:
                moment = datetime.fromtimestamp(int(since), UTC)
            except ValueError:
                return Answer.json("Invalid since", status=400)
            # `since` includes deleted entries, which carry server_deleted_at.
            mine = [e for e in mine if e["at"] >= moment]
        else:
            mine = [e for e in mine if not e["server_deleted_at"]]
        return Answer.json([self.v9(e) for e in sorted(mine, key=lambda e: e["start"], reverse=True)])

    def _search(self, request: RecordedRequest) -> Answer:
        try:
            body = request.json or {}
            start = date.fromisoformat(body["start_date"])
            end = date.fromisoformat(body["end_date"])
        except (KeyError, ValueError, TypeError):
            return Answer.json("Invalid start_date or end_date", status=400)
        if end < start:
            return Answer.json("end_date must not be earlier than start_date", status=400)
        page_size = int(body.get("page_size") or 50)

        def local_day(entry):
            tz = self.users.get(entry["user_id"], {}).get("timezone", "UTC")
            return entry["start"].astimezone(ZoneInfo(tz)).date()

        # Reports never include deleted entries.
        matching = sorted((e for e in self.entries.values()
                           if not e["server_deleted_at"] and start <= local_day(e) <= end),
                          key=lambda e: (e["start"], e["id"]))
        first_row = int(body.get("first_row_number") or 1)
        page = matching[first_row - 1:first_row - 1 + page_size]
        rows = [self._report_row(entry, first_row + offset) for offset, entry in enumerate(page)]
        headers = {}
        following = first_row - 1 + page_size
        if following < len(matching):
            nxt = matching[following]
            headers = {"X-Next-ID": str(nxt["id"]), "X-Next-Row-Number": str(following + 1),
                       "X-Next-Timestamp": str(int(nxt["start"].timestamp()))}
        return Answer.json(rows, headers=headers)
