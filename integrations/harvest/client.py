"""Harvest API v2, as the invoice push uses it (docs/INTEGRATIONS.md §6).

- Every call carries `Authorization: Bearer <token>`, `Harvest-Account-Id` and a `User-Agent` naming us
  with an address to write to (Harvest refuses a request without one).
- Lists are followed through `links.next` only: some lists page by number, others by cursor, and on a
  cursor list `page`/`next_page` are null mid-stream.
- 429 comes with Retry-After (100 requests per 15 s); 422 carries `{"message": ...}`, which we pass on.
"""

from collections.abc import Iterator

from django.conf import settings

from integrations.connections import Connection
from integrations.http import (
    ApiSession,
    IntegrationError,
    PermanentError,
    Response,
    body_excerpt,
    default_classify,
)
from integrations.models import Provider

DEFAULT_BASE_URL = "https://api.harvestapp.com"
PER_PAGE = 2000
# A guard against a server that keeps pointing at the same page.
MAX_PAGES = 10_000


def option(connection: Connection, name: str, default=None):
    """A connection option (connections.OPTION_SETTINGS), else the HARVEST_<NAME> setting, else `default`."""
    value = connection.option(name)
    return value if value not in (None, "") else getattr(settings, f"HARVEST_{name.upper()}", default)


def _message(response: Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return body_excerpt(response)
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error_description") or body.get("error") or body)
    return body_excerpt(response)


def classify(response: Response) -> IntegrationError | None:
    status = response.status_code
    where = f"{response.request.method} {response.request.path_url}"
    if status in (401, 403):
        return PermanentError(f"harvest: the token was refused ({status}: {_message(response)}); check "
                              "HARVEST_API_TOKEN and HARVEST_ACCOUNT_ID", provider=Provider.HARVEST,
                              status=status)
    if status in (400, 404, 422):
        return PermanentError(f"harvest: {status} on {where}: {_message(response)}",
                              provider=Provider.HARVEST, status=status)
    return default_classify(response, Provider.HARVEST)


def already_taken(error: IntegrationError) -> bool:
    """Harvest's answer to a second client with one name, or a second invoice with one number."""
    return error.status == 422 and "already been taken" in str(error)


class HarvestClient:
    def __init__(self, connection: Connection):
        account_id = option(connection, "account_id")
        if not account_id:
            raise PermanentError("harvest: HARVEST_ACCOUNT_ID is not set", provider=Provider.HARVEST)
        self.session = ApiSession(
            provider=Provider.HARVEST, base_url=connection.base_url or DEFAULT_BASE_URL, classify=classify,
            headers={"Authorization": f"Bearer {connection.token}", "Harvest-Account-Id": str(account_id),
                     # Harvest asks every application to name itself and a way to reach its owner.
                     "User-Agent": f"Billable ({settings.DEFAULT_FROM_EMAIL})",
                     "Content-Type": "application/json"})

    def pages(self, path: str, key: str, params: dict | None = None) -> Iterator[list[dict]]:
        """The list at `path`, a page at a time, following `links.next` to the end."""
        url: str | None = path
        params = {"per_page": PER_PAGE, **(params or {})}
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            body = self.session.get_json(url, params=params)
            yield list(body.get(key) or [])
            url = (body.get("links") or {}).get("next")
            if not url:
                return
            if url in seen:
                raise PermanentError(f"harvest: {path} points at the same page again",
                                     provider=Provider.HARVEST)
            seen.add(url)
            # The next link carries every parameter (and the cursor) itself.
            params = None
        raise PermanentError(f"harvest: more than {MAX_PAGES} pages of {path}", provider=Provider.HARVEST)

    def clients(self) -> list[dict]:
        return [client for page in self.pages("/v2/clients", "clients") for client in page]

    def create_client(self, *, name: str, currency: str) -> dict:
        return self.session.post_json("/v2/clients", json={"name": name, "currency": currency})

    def invoices_issued(self, *, client_id: int, issue_date: str) -> Iterator[dict]:
        """The client's invoices issued that day (the filter keeps a lookup by number small)."""
        for page in self.pages("/v2/invoices", "invoices",
                               {"client_id": client_id, "from": issue_date, "to": issue_date}):
            yield from page

    def create_invoice(self, body: dict) -> dict:
        return self.session.post_json("/v2/invoices", json=body)

    def mark_sent(self, invoice_id: int | str) -> dict:
        """Draft → open without emailing anyone; repeating it changes nothing, so it may be retried."""
        return self.session.post_json(f"/v2/invoices/{invoice_id}/messages", json={"event_type": "send"},
                                      idempotent=True)
