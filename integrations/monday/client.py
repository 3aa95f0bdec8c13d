"""monday.com's GraphQL API, as our connector uses it (docs/INTEGRATIONS.md §2).

Every call is `POST /v2` with `Authorization: <token>` and `API-Version`. Application errors come back as
HTTP 200 with an `errors` array: limits (complexity budget, rate, concurrency) are retryable, with
`retry_in_seconds` saying when; anything else (a bad board id, a bad query) is permanent. Transport
errors use real statuses (429 with Retry-After, 5xx) and go through the shared rules.
"""

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from integrations.connections import Connection
from integrations.http import (
    ApiSession,
    IntegrationError,
    PermanentError,
    Response,
    RetryableError,
    decode_json,
    default_classify,
)
from integrations.models import Provider

PAGE_LIMIT = 500
MAX_PAGES = 10_000
RETRYABLE_CODES = {"ComplexityException", "COMPLEXITY_BUDGET_EXHAUSTED", "RATE_LIMIT_EXCEEDED",
                   "Rate Limit Exceeded", "maxConcurrencyExceeded", "IP_RATE_LIMIT_EXCEEDED",
                   "DAILY_LIMIT_EXCEEDED", "INTERNAL_SERVER_ERROR"}
_RESET_IN = re.compile(r"reset in (\d+) seconds?", re.IGNORECASE)

ITEM_FIELDS = """
  id name state updated_at board { id } group { id title }
  column_values {
    id type text value
    ... on TimeTrackingValue { duration running started_at updated_at
      history { id status started_at ended_at started_user_id ended_user_id created_at updated_at
                manually_entered_start_date manually_entered_start_time
                manually_entered_end_date manually_entered_end_time } }
    ... on PeopleValue { persons_and_teams { id kind } }
  }
"""
FIRST_PAGE = ("query ($board_ids: [ID!], $limit: Int!, $query_params: ItemsQuery) { boards(ids: $board_ids) "
              "{ id name items_page(limit: $limit, query_params: $query_params) { cursor items { "
              + ITEM_FIELDS + " } } } }")
NEXT_PAGE = ("query ($cursor: String!, $limit: Int!) { next_items_page(cursor: $cursor, limit: $limit) "
             "{ cursor items { " + ITEM_FIELDS + " } } }")
ITEMS = "query ($item_ids: [ID!]) { items(ids: $item_ids) { " + ITEM_FIELDS + " } }"
BOARDS = "query ($board_ids: [ID!]) { boards(ids: $board_ids) { id name } }"
USERS = "query ($user_ids: [ID!]) { users(ids: $user_ids) { id name email } }"


def _seconds_to_midnight_utc() -> float:
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    return (midnight - now).total_seconds()


def graphql_error(errors: list, body: dict) -> IntegrationError:
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    extensions = first.get("extensions") or {}
    code = extensions.get("code") or body.get("error_code") or ""
    message = first.get("message") or body.get("error_message") or str(errors)[:300]
    retry_in = extensions.get("retry_in_seconds") or (extensions.get("error_data") or {}).get("retry_in_seconds")
    if retry_in is None and (found := _RESET_IN.search(message)):
        retry_in = float(found[1])
    if code == "DAILY_LIMIT_EXCEEDED" and retry_in is None:
        retry_in = _seconds_to_midnight_utc()
    text = f"monday: {code or 'error'}: {message}"
    if code in RETRYABLE_CODES:
        return RetryableError(text, provider=Provider.MONDAY, status=extensions.get("status_code"),
                              retry_after=float(retry_in) if retry_in is not None else None)
    return PermanentError(text, provider=Provider.MONDAY, status=extensions.get("status_code"))


def classify(response: Response) -> IntegrationError | None:
    error = default_classify(response, Provider.MONDAY)
    if error is not None:
        return error
    body = decode_json(response, Provider.MONDAY)
    if not isinstance(body, dict):
        return PermanentError("monday: the answer is not a JSON object", provider=Provider.MONDAY)
    # Current API versions put errors in `errors`; older ones in flat error_code / error_message.
    errors = body.get("errors") or ([body] if body.get("error_code") or body.get("error_message") else [])
    return graphql_error(errors, body) if errors else None


class MondayClient:
    def __init__(self, connection: Connection):
        self.session = ApiSession(provider=Provider.MONDAY, base_url=connection.base_url, classify=classify,
                                  headers={"Authorization": connection.token, "Content-Type": "application/json",
                                           "API-Version": connection.option("api_version") or "2025-10"})

    def query(self, query: str, variables: dict) -> dict:
        # Queries read only, so repeating one after a failure is safe; mutations must not use this.
        body = self.session.post_json("/v2", json={"query": query, "variables": variables}, idempotent=True)
        return body.get("data") or {}

    def boards(self, board_ids: list[str]) -> list[dict]:
        return self.query(BOARDS, {"board_ids": board_ids}).get("boards") or []

    def users(self, user_ids: list[str]) -> list[dict]:
        return self.query(USERS, {"user_ids": user_ids}).get("users") or []

    def items(self, item_ids: list[str]) -> list[dict]:
        return self.query(ITEMS, {"item_ids": item_ids}).get("items") or []

    def board_items(self, board_id: str, *, updated_since: date | None = None,
                    limit: int = PAGE_LIMIT) -> Iterator[list[dict]]:
        """The board's active items, a page at a time; only those updated since a day when given."""
        query_params = None
        if updated_since is not None:
            query_params = {"rules": [{"column_id": "__last_updated__", "compare_attribute": "UPDATED_AT",
                                       "operator": "greater_than_or_equals",
                                       "compare_value": ["EXACT", updated_since.isoformat()]}]}
        data = self.query(FIRST_PAGE, {"board_ids": [board_id], "limit": limit, "query_params": query_params})
        boards = data.get("boards") or []
        if not boards:
            raise PermanentError(f"monday: board {board_id} was not found (or the token cannot see it)",
                                 provider=Provider.MONDAY)
        page = boards[0].get("items_page") or {}
        for _ in range(MAX_PAGES):
            yield page.get("items") or []
            cursor = page.get("cursor")
            if not cursor:
                return
            # The cursor carries the filter: only the cursor and the limit are sent again.
            page = self.query(NEXT_PAGE, {"cursor": cursor, "limit": limit}).get("next_items_page") or {}
        raise PermanentError(f"monday: more than {MAX_PAGES} pages on board {board_id}", provider=Provider.MONDAY)
