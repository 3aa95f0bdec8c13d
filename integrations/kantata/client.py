"""Kantata OX (Mavenlink) API v1, as the budget push uses it (docs/INTEGRATIONS.md §4).

- `Authorization: Bearer <token>`; tokens do not expire, so a 401 means revoked: someone must act.
- Answers are side-loaded: `results` lists `{key, id}` in order and the rows sit in an id-keyed map
  (`workspaces`); ids are strings. Pages by `page`/`per_page` (at most 200) up to `meta.page_count`.
- Writes are wrapped (`{"workspace": {...}}`). A POST has no idempotency key, so creating twice makes two
  workspaces: the push looks a workspace up before creating it (see push.py).
- 429 comes without any header: the shared backoff decides the wait.
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
    decode_json,
    default_classify,
)
from integrations.models import Provider

DEFAULT_BASE_URL = "https://api.mavenlink.com"
PER_PAGE = 200
MAX_PAGES = 10_000


def option(connection: Connection, name: str, default=None):
    """A connection option (connections.OPTION_SETTINGS), else the KANTATA_<NAME> setting, else `default`."""
    value = connection.option(name)
    return value if value not in (None, "") else getattr(settings, f"KANTATA_{name.upper()}", default)


def _messages(response: Response) -> str:
    try:
        errors = response.json().get("errors") or []
    except (ValueError, AttributeError):
        return body_excerpt(response)
    found = [f"{e.get('field') + ': ' if e.get('field') else ''}{e.get('message')}" for e in errors
             if isinstance(e, dict)]
    return "; ".join(found) or body_excerpt(response)


def classify(response: Response) -> IntegrationError | None:
    status = response.status_code
    if status == 401:
        return PermanentError(f"kantata: the token was refused ({_messages(response)}); check "
                              "KANTATA_API_TOKEN", provider=Provider.KANTATA, status=status)
    if status in (400, 403, 404, 422):
        where = f"{response.request.method} {response.request.path_url}"
        return PermanentError(f"kantata: {status} on {where}: {_messages(response)}",
                              provider=Provider.KANTATA, status=status)
    return default_classify(response, Provider.KANTATA)


def rows(body: dict) -> list[dict]:
    """The rows of a side-loaded answer, in the order of `results`."""
    return [body[item["key"]][str(item["id"])] for item in body.get("results") or []
            if str(item.get("id")) in (body.get(item.get("key")) or {})]


class KantataClient:
    def __init__(self, connection: Connection):
        self.session = ApiSession(provider=Provider.KANTATA, base_url=connection.base_url or DEFAULT_BASE_URL,
                                  classify=classify,
                                  headers={"Authorization": f"Bearer {connection.token}",
                                           "Content-Type": "application/json"})

    def workspaces(self, **filters) -> Iterator[dict]:
        """Workspaces matching the filters, archived ones included, every page."""
        page = 1
        for _ in range(MAX_PAGES):
            body = self.session.get_json("/api/v1/workspaces.json", params={
                **filters, "include_archived": "true", "page": page, "per_page": PER_PAGE})
            yield from rows(body)
            if page >= int((body.get("meta") or {}).get("page_count") or 1):
                return
            page += 1
        raise PermanentError(f"kantata: more than {MAX_PAGES} pages of workspaces", provider=Provider.KANTATA)

    def titled(self, title: str) -> list[dict]:
        """Workspaces whose title is exactly this one (Kantata's search matches parts of titles)."""
        key = title.strip().casefold()
        return [w for w in self.workspaces(search=title) if str(w.get("title", "")).strip().casefold() == key]

    def create_workspace(self, fields: dict) -> dict:
        body = self.session.post_json("/api/v1/workspaces.json", json={"workspace": fields})
        return rows(body)[0]

    def update_workspace(self, workspace_id: str, fields: dict) -> dict:
        # A PUT sets the same values however often it is sent, so it is retried like a read.
        response = self.session.request("PUT", f"/api/v1/workspaces/{workspace_id}.json",
                                        json={"workspace": fields})
        return rows(decode_json(response, Provider.KANTATA))[0]
