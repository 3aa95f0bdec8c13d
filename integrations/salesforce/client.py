"""Salesforce's REST API, as our connector uses it (docs/INTEGRATIONS.md §3).

- Login: OAuth 2.0 client credentials, `POST {My Domain}/services/oauth2/token`, the connected app's
  key and secret in a Basic Authorization header (Salesforce takes them there or in the form). The answer
  names the `instance_url` every data call goes to, with `Authorization: Bearer <access_token>`. There is no
  refresh token: a 401 INVALID_SESSION_ID means log in again, once, and repeat the call.
- Reads are SOQL through `/queryAll` (deleted rows too, so deletions are seen), a page at a time, following
  `nextRecordsUrl` until `done`; child subqueries page the same way.
- Writes: `PATCH /composite/sobjects`, up to 200 records a call, each succeeding or failing on its own.
- Errors are JSON arrays of `{message, errorCode}`. The daily request limit is a 403
  REQUEST_LIMIT_EXCEEDED, retried with backoff (and, when the day is truly spent, left for a later run);
  every answer reports the day's usage in `Sforce-Limit-Info`, which the run log mentions when high.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from django.conf import settings

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
)
from integrations.models import Provider

DEFAULT_API_VERSION = "59.0"
# Records per query page (Salesforce allows 200 to 2000).
BATCH_SIZE = 2000
# Records per composite update (Salesforce's maximum).
UPDATE_BATCH = 200
MAX_PAGES = 100_000
# Share of the daily API allocation past which the run log warns.
USAGE_WARNING = 0.9
_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


class SessionExpired(PermanentError):
    """401 INVALID_SESSION_ID: the access token is no longer valid; logging in again fixes it."""


def option(connection: Connection, name: str, default=None):
    """A connection option (connections.OPTION_SETTINGS), else the SALESFORCE_<NAME> setting, else `default`."""
    value = connection.option(name)
    return value if value not in (None, "") else getattr(settings, f"SALESFORCE_{name.upper()}", default)


def _errors(response: Response) -> list[dict]:
    try:
        body = response.json()
    except ValueError:
        return []
    if isinstance(body, dict):
        body = [body]
    return [item for item in body if isinstance(item, dict)] if isinstance(body, list) else []


def _describe(response: Response) -> tuple[str, str]:
    """(errorCode, message) of an error answer."""
    found = _errors(response)
    if found:
        first = found[0]
        code = str(first.get("errorCode") or first.get("error") or "")
        message = str(first.get("message") or first.get("error_description") or "")
        return code, " ".join(message.split())
    return "", body_excerpt(response)


def classify(response: Response) -> IntegrationError | None:
    status = response.status_code
    if 200 <= status < 300:
        return None
    code, message = _describe(response)
    where = f"{response.request.method} {response.request.path_url.split('?')[0]}"
    text = f"salesforce: {status} {code} on {where}: {message}"
    if code == "REQUEST_LIMIT_EXCEEDED":
        return RetryableError(f"{text} (the org's daily API requests are used up)",
                              provider=Provider.SALESFORCE, status=status)
    if status == 401 and code == "INVALID_SESSION_ID":
        return SessionExpired(text, provider=Provider.SALESFORCE, status=status)
    if status in (400, 401, 403, 404):
        return PermanentError(text, provider=Provider.SALESFORCE, status=status)
    return default_classify(response, Provider.SALESFORCE)


def classify_login(response: Response) -> IntegrationError | None:
    status = response.status_code
    if status in (400, 401):
        code, message = _describe(response)
        return PermanentError(f"salesforce: the login was refused ({code}: {message}); check "
                              "SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET and that SALESFORCE_BASE_URL "
                              "is the org's My Domain", provider=Provider.SALESFORCE, status=status)
    return classify(response)


def parse_datetime(value: str) -> datetime:
    """A Salesforce datetime ("2024-05-20T20:49:32.000+0000")."""
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")


def soql_datetime(moment: datetime) -> str:
    """A SOQL datetime literal (unquoted, UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def soql_string(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class Page:
    records: list[dict]
    # The org's clock when it answered (the Date header), for the next run's starting point.
    server_time: datetime | None


class SalesforceClient:
    def __init__(self, connection: Connection, *, track=lambda session: session,
                 batch_size: int = BATCH_SIZE):
        self.login_url = connection.base_url
        self.client_id = option(connection, "client_id")
        # The client secret is the connection's token (what enables the provider).
        self.client_secret = option(connection, "client_secret") or connection.token
        if not self.login_url or not self.client_id or not self.client_secret:
            raise PermanentError("salesforce: set SALESFORCE_BASE_URL (the My Domain URL), "
                                 "SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET",
                                 provider=Provider.SALESFORCE)
        self.version = str(option(connection, "api_version", DEFAULT_API_VERSION))
        self.batch_size = batch_size
        self._track = track
        self.logins = 0
        self.usage: tuple[int, int] | None = None
        # The client id and secret go in a Basic Authorization header (client_secret_basic), never in a URL
        # that error messages and logs would repeat.
        self.login_session = track(ApiSession(provider=Provider.SALESFORCE, base_url=self.login_url,
                                              auth=(str(self.client_id), str(self.client_secret)),
                                              classify=classify_login))
        self.session: ApiSession | None = None

    @property
    def data_path(self) -> str:
        return f"/services/data/v{self.version}"

    def login(self) -> None:
        # A token request changes nothing on the org: repeating it after a failure is safe.
        token = decode_json(self.login_session.request("POST", "/services/oauth2/token", idempotent=True,
                                                       params={"grant_type": "client_credentials"}),
                            Provider.SALESFORCE)
        if not token.get("access_token") or not token.get("instance_url"):
            raise PermanentError("salesforce: the login answered without an access token or instance URL",
                                 provider=Provider.SALESFORCE)
        self.logins += 1
        if self.session is not None:
            # Counted retries stay with the run: the old session is kept in its list, only closed.
            self.session.close()
        self.session = self._track(ApiSession(
            provider=Provider.SALESFORCE, base_url=token["instance_url"], classify=classify,
            headers={"Authorization": f"Bearer {token['access_token']}",
                     "Sforce-Query-Options": f"batchSize={self.batch_size}",
                     "Content-Type": "application/json"}))

    def call(self, method: str, path: str, *, params: dict | None = None, json=None,
             idempotent: bool | None = None) -> Response:
        """One data call; an expired session is renewed once and the call repeated."""
        if self.session is None:
            self.login()
        try:
            response = self.session.request(method, path, params=params, json=json, idempotent=idempotent)
        except SessionExpired:
            self.login()
            response = self.session.request(method, path, params=params, json=json, idempotent=idempotent)
        self._note_usage(response)
        return response

    def _note_usage(self, response: Response) -> None:
        found = _USAGE.search(response.headers.get("Sforce-Limit-Info", ""))
        if found:
            self.usage = (int(found[1]), int(found[2]))

    @property
    def usage_warning(self) -> str | None:
        if self.usage and self.usage[1] and self.usage[0] / self.usage[1] >= USAGE_WARNING:
            return (f"Salesforce API usage is at {self.usage[0]} of {self.usage[1]} daily requests: other "
                    "integrations of the org may be refused soon")
        return None

    def query(self, soql: str) -> Iterator[Page]:
        """The rows of a query (deleted ones included), a page at a time."""
        response = self.call("GET", f"{self.data_path}/queryAll", params={"q": soql})
        for _ in range(MAX_PAGES):
            body = decode_json(response, Provider.SALESFORCE)
            yield Page(records=list(body.get("records") or []), server_time=_server_time(response))
            if body.get("done", True) or not body.get("nextRecordsUrl"):
                return
            response = self.call("GET", body["nextRecordsUrl"])
        raise PermanentError(f"salesforce: more than {MAX_PAGES} pages for one query",
                             provider=Provider.SALESFORCE)

    def children(self, block: dict | None) -> list[dict]:
        """The rows of a child subquery, following its own nextRecordsUrl when it has more."""
        if not block:
            return []
        rows = list(block.get("records") or [])
        while not block.get("done", True) and block.get("nextRecordsUrl"):
            block = decode_json(self.call("GET", block["nextRecordsUrl"]), Provider.SALESFORCE)
            rows.extend(block.get("records") or [])
        return rows

    def update(self, object_name: str, records: list[dict]) -> list[dict]:
        """Update records ({"Id": ..., field: value}), each on its own; the per-record results in order."""
        results = []
        for start in range(0, len(records), UPDATE_BATCH):
            chunk = records[start:start + UPDATE_BATCH]
            body = {"allOrNone": False, "records": [
                {"attributes": {"type": object_name}, "id": record["Id"],
                 **{name: value for name, value in record.items() if name != "Id"}} for record in chunk]}
            # Setting the same values twice changes nothing: the call may be repeated after a failure.
            results.extend(decode_json(self.call("PATCH", f"{self.data_path}/composite/sobjects", json=body,
                                                 idempotent=True), Provider.SALESFORCE))
        return results


def _server_time(response: Response) -> datetime | None:
    try:
        return parsedate_to_datetime(response.headers["Date"])
    except (KeyError, TypeError, ValueError):
        return None
