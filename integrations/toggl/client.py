"""Toggl Track's HTTP API, as our connector uses it (docs/INTEGRATIONS.md §1).

- API v9 (`/api/v9`): Basic auth with the token and the password "api_token"; bare JSON arrays.
- Reports API v3 (`/reports/api/v3/workspace/{id}/search/time_entries`): the whole workspace's entries
  for a date window, paged by the X-Next-ID / X-Next-Row-Number / X-Next-Timestamp headers.
- Throttling: 429 (per second, with Retry-After) and 402 with X-Toggl-Quota-Resets-In when the hourly
  quota is spent; 402 without quota headers means the plan lacks the feature, which waiting won't fix.
"""

from collections.abc import Iterator
from datetime import date

from integrations.connections import Connection
from integrations.http import (
    ApiSession,
    IntegrationError,
    PermanentError,
    Response,
    RetryableError,
    body_excerpt,
    decode_json,
    default_classify,
    seconds_from_header,
)
from integrations.models import Provider

PAGE_SIZE = 50
# A guard against a server that keeps pointing at the same page.
MAX_PAGES = 10_000


def classify(response: Response) -> IntegrationError | None:
    status = response.status_code
    if status == 402:
        resets_in = seconds_from_header(response.headers.get("X-Toggl-Quota-Resets-In"))
        if resets_in is not None:
            return RetryableError(f"toggl: hourly API quota used up (402), resets in {resets_in:.0f}s",
                                  provider=Provider.TOGGL, status=status, retry_after=resets_in)
        return PermanentError(f"toggl: 402 Payment Required: {body_excerpt(response)} (the workspace's plan "
                              "does not include this)", provider=Provider.TOGGL, status=status)
    if status == 403:
        return PermanentError(f"toggl: the API token was refused (403 {body_excerpt(response)}); check "
                              "TOGGL_API_TOKEN and that its user is an admin of TOGGL_WORKSPACE_ID",
                              provider=Provider.TOGGL, status=status)
    return default_classify(response, Provider.TOGGL)


class TogglClient:
    def __init__(self, connection: Connection):
        workspace_id = connection.option("workspace_id")
        if not workspace_id:
            raise PermanentError("toggl: TOGGL_WORKSPACE_ID is not set", provider=Provider.TOGGL)
        self.workspace_id = str(workspace_id)
        self.session = ApiSession(provider=Provider.TOGGL, base_url=connection.base_url,
                                  auth=(connection.token, "api_token"),
                                  headers={"Content-Type": "application/json"}, classify=classify)

    def me(self) -> dict:
        return self.session.get_json("/api/v9/me")

    def workspace_users(self) -> list[dict]:
        return self.session.get_json(f"/api/v9/workspaces/{self.workspace_id}/users") or []

    def workspace_projects(self) -> list[dict]:
        return self.session.get_json(f"/api/v9/workspaces/{self.workspace_id}/projects") or []

    def project_tasks(self, project_id: str) -> list[dict]:
        return self.session.get_json(f"/api/v9/workspaces/{self.workspace_id}/projects/{project_id}/tasks") or []

    def search_time_entries(self, *, start: date, end: date, page_size: int = PAGE_SIZE) -> Iterator[list[dict]]:
        """Report rows of every user's entries starting in [start, end], one page at a time."""
        path = f"/reports/api/v3/workspace/{self.workspace_id}/search/time_entries"
        body: dict = {"start_date": start.isoformat(), "end_date": end.isoformat(), "grouped": False,
                      "order_by": "date", "order_dir": "asc", "page_size": page_size}
        seen_positions = set()
        for _ in range(MAX_PAGES):
            # A search changes nothing, so repeating it after a failure is safe.
            response = self.session.request("POST", path, json=body, idempotent=True)
            rows = decode_json(response, Provider.TOGGL)
            if not isinstance(rows, list):
                raise PermanentError(f"toggl: the report search answered {type(rows).__name__}, not a list",
                                     provider=Provider.TOGGL)
            yield rows
            next_id = response.headers.get("X-Next-ID")
            next_row = response.headers.get("X-Next-Row-Number")
            if not next_id or not next_row:
                return
            if (next_id, next_row) in seen_positions:
                raise PermanentError(f"toggl: the report search points at row {next_row} again",
                                     provider=Provider.TOGGL)
            seen_positions.add((next_id, next_row))
            body = {**body, "first_id": int(next_id), "first_row_number": int(next_row)}
            if response.headers.get("X-Next-Timestamp"):
                body["first_timestamp"] = int(response.headers["X-Next-Timestamp"])
        raise PermanentError(f"toggl: more than {MAX_PAGES} report pages", provider=Provider.TOGGL)
