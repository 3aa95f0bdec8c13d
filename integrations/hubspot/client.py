"""HubSpot's CRM and transactional email APIs, as the message push uses them (docs/INTEGRATIONS.md §5).

- `Authorization: Bearer <private app token>`; ids and property values are strings.
- Contacts are found by email with the search API (`IN`, up to 100 values) and created when missing; a
  second contact with one email is refused with 409 naming the existing id, which makes creating safe
  to repeat.
- Emails logged on the timeline (`/crm/v3/objects/emails`) send nothing; the transactional single-send
  sends, and its `sendId` makes repeating it harmless.
- 429 names its `policyName`: the ten-second window passes quickly (Retry-After or the interval header);
  the daily one does not, so that wait ends the run (the next scheduled run carries on).
"""

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from django.conf import settings

from integrations.connections import Connection
from integrations.http import (
    ApiSession,
    IntegrationError,
    PermanentError,
    Response,
    RetryableError,
    body_excerpt,
    default_classify,
    seconds_from_header,
)
from integrations.models import Provider

DEFAULT_BASE_URL = "https://api.hubapi.com"
EMAIL_TO_CONTACT = 198
SEARCH_LIMIT = 100
# HubSpot's IN filter takes at most this many values.
IN_VALUES = 100
MAX_PAGES = 1_000
_EXISTING_ID = re.compile(r"Existing ID: (\d+)")


def option(connection: Connection, name: str, default=None):
    """A connection option (connections.OPTION_SETTINGS), else the HUBSPOT_<NAME> setting, else `default`."""
    value = connection.option(name)
    return value if value not in (None, "") else getattr(settings, f"HUBSPOT_{name.upper()}", default)


def _body(response: Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _seconds_to_midnight_utc() -> float:
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    return (midnight - now).total_seconds()


def classify(response: Response) -> IntegrationError | None:
    status = response.status_code
    body = _body(response)
    message = body.get("message") or body_excerpt(response)
    if status == 429:
        policy = body.get("policyName") or ""
        if policy == "DAILY" or response.headers.get("X-HubSpot-RateLimit-Daily-Remaining") == "0":
            wait = _seconds_to_midnight_utc()
        else:
            wait = seconds_from_header(response.headers.get("Retry-After"))
            if wait is None:
                interval = response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
                wait = int(interval) / 1000 if interval and interval.isdigit() else None
        return RetryableError(f"hubspot: rate limited (429 {policy or 'RATE_LIMIT'}): {message}",
                              provider=Provider.HUBSPOT, status=status, retry_after=wait)
    if status in (401, 403):
        return PermanentError(f"hubspot: the token was refused ({status} {body.get('category', '')}: "
                              f"{message}); check HUBSPOT_API_TOKEN and its scopes",
                              provider=Provider.HUBSPOT, status=status)
    if status in (400, 404, 409, 422):
        where = f"{response.request.method} {response.request.path_url}"
        return PermanentError(f"hubspot: {status} {body.get('category', '')} on {where}: {message}",
                              provider=Provider.HUBSPOT, status=status)
    return default_classify(response, Provider.HUBSPOT)


def existing_contact_id(error: IntegrationError) -> str | None:
    """The id HubSpot names when refusing a second contact with one email."""
    if error.status != 409:
        return None
    found = _EXISTING_ID.search(str(error))
    return found[1] if found else None


class HubSpotClient:
    def __init__(self, connection: Connection):
        self.session = ApiSession(provider=Provider.HUBSPOT, base_url=connection.base_url or DEFAULT_BASE_URL,
                                  classify=classify,
                                  headers={"Authorization": f"Bearer {connection.token}",
                                           "Content-Type": "application/json"})

    def search(self, object_type: str, filters: list[dict], properties: list[str]) -> Iterator[dict]:
        """Every record matching the filters (ANDed), page by page; a search changes nothing: retried."""
        body: dict = {"filterGroups": [{"filters": filters}], "properties": properties, "limit": SEARCH_LIMIT}
        for _ in range(MAX_PAGES):
            answer = self.session.post_json(f"/crm/v3/objects/{object_type}/search", json=body,
                                            idempotent=True)
            yield from answer.get("results") or []
            after = ((answer.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return
            body = {**body, "after": after}
        raise PermanentError(f"hubspot: more than {MAX_PAGES} pages of {object_type}",
                             provider=Provider.HUBSPOT)

    def contacts_by_email(self, emails: list[str]) -> dict[str, str]:
        """{lower-cased email: contact id} for the emails HubSpot knows."""
        found: dict[str, str] = {}
        for start in range(0, len(emails), IN_VALUES):
            chunk = emails[start:start + IN_VALUES]
            filters = [{"propertyName": "email", "operator": "IN", "values": chunk}]
            for contact in self.search("contacts", filters, ["email"]):
                email = str(contact.get("properties", {}).get("email") or "").lower()
                if email:
                    found.setdefault(email, str(contact["id"]))
        return found

    def create_contact(self, properties: dict) -> str:
        """The new contact's id, or the existing one's when HubSpot already has that email."""
        try:
            # A lost answer is safe to repeat: the repeat is refused with the id of the contact made.
            return str(self.session.post_json("/crm/v3/objects/contacts", json={"properties": properties},
                                              idempotent=True)["id"])
        except PermanentError as error:
            existing = existing_contact_id(error)
            if existing is None:
                raise
            return existing

    def emails_at(self, timestamp_ms: int) -> list[dict]:
        """Logged emails with this exact timestamp (our natural key narrows to these)."""
        filters = [{"propertyName": "hs_timestamp", "operator": "EQ", "value": str(timestamp_ms)}]
        return list(self.search("emails", filters, ["hs_timestamp", "hs_email_headers"]))

    def log_email(self, *, properties: dict, contact_ids: list[str]) -> dict:
        to_contact = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": EMAIL_TO_CONTACT}]
        return self.session.post_json("/crm/v3/objects/emails", json={
            "properties": properties,
            "associations": [{"to": {"id": contact_id}, "types": to_contact} for contact_id in contact_ids]})

    def send(self, *, email_id: str, to: str, send_id: str, custom_properties: dict) -> dict:
        # The sendId makes HubSpot send at most one email for it, so a lost answer may be asked again.
        return self.session.post_json("/marketing/v3/transactional/single-email/send", idempotent=True, json={
            "emailId": int(email_id) if str(email_id).isdigit() else email_id,
            "message": {"to": to, "sendId": send_id}, "customProperties": custom_properties})

    def send_status(self, status_id: str) -> dict:
        return self.session.get_json(f"/marketing/v3/email/send-statuses/{status_id}")
