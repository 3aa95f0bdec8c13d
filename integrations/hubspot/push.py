"""HubSpot out: every message billing sent to a client, logged on the timeline of its contacts, or sent
through HubSpot when the firm uses its transactional email.

Pulled from billing's log of client messages (billing.ClientMessage), in id order, each once:

- Logged (the default): an email engagement associated with each recipient's contact (created in HubSpot
  when missing), with our subject, text, status and a Message-ID of ours inside `hs_email_headers`.
  Before each create the message is looked up by that natural key (emails with its exact timestamp,
  matched on the Message-ID), so a create whose answer was lost is linked, never logged twice. HubSpot's
  search index trails its writes by a few seconds: a message whose create may have happened is looked up
  again only after SEARCH_SETTLE, at a later run.
- Sent (HUBSPOT_TRANSACTIONAL_EMAIL_ID set): one single-send per recipient with that template, the text in
  custom properties; HubSpot's `sendId` (ours, per message and recipient) makes a repeated send harmless.
  Messages older than SEND_WINDOW are only logged: switching sending on must never mail the past. Sent
  messages appear on the contact's timeline by themselves; their delivery status is polled and a
  failed delivery reported. (Django's EMAIL_BACKEND must then not send them too: see the README.)
"""

import json
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Subquery
from django.db.models.functions import Lower
from django.utils import timezone

from billing.models import ClientMessage, MessageStatus
from clients.models import Contact
from integrations.http import PermanentError, RetryableError
from integrations.hubspot.client import HubSpotClient, option
from integrations.models import ExternalRef, MatchedBy, Provider, RefKind
from integrations.outbound import about_the_record
from integrations.providers import stream_of
from integrations.runs import SyncContext

# This stream's entry in the registry (integrations/providers.py).
STREAM = stream_of(Provider.HUBSPOT, "messages")
# ExternalRef kinds: a logged email (HubSpot's email id), a transactional send (its status id).
EMAIL = RefKind.EMAIL
SEND = RefKind.SEND
BATCH = 50
SEARCH_SETTLE = timedelta(seconds=60)
SEND_WINDOW = timedelta(hours=24)
# Send statuses polled per run, and the ones that are final.
POLL_BATCH = 200
FINAL_STATUSES = {"COMPLETE", "CANCELED"}
DELIVERED = {"SENT", "QUEUED"}


def message_key(message: ClientMessage) -> str:
    """Our Message-ID of a client message: its natural key in HubSpot."""
    return f"<billable-message-{message.id}@{settings.DEFAULT_FROM_EMAIL.rpartition('@')[2] or 'billable'}>"


def timestamp_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def pending_messages():
    done = ExternalRef.objects.filter(provider=Provider.HUBSPOT, kind__in=(EMAIL, SEND)).values("local_id")
    return (ClientMessage.objects.exclude(id__in=Subquery(done)).select_related("client", "invoice")
            .order_by("id"))


def email_properties(message: ClientMessage) -> dict:
    headers = {"from": {"email": settings.DEFAULT_FROM_EMAIL, "firstName": settings.FIRM_NAME},
               "to": [{"email": address} for address in message.to], "cc": [], "bcc": [],
               "messageId": message_key(message)}
    return {"hs_timestamp": str(timestamp_ms(message.sent_at)), "hs_email_direction": "EMAIL",
            "hs_email_status": "SENT" if message.status == MessageStatus.SENT else "FAILED",
            "hs_email_subject": message.subject, "hs_email_text": message.body,
            "hs_email_headers": json.dumps(headers)}


class ContactBook:
    """HubSpot contact ids by email: searched a batch at a time, created (once) where missing."""

    def __init__(self, client: HubSpotClient, ctx: SyncContext):
        self.client, self.ctx = client, ctx
        self.ids: dict[str, str | None] = {}

    def load(self, emails: set[str]) -> None:
        wanted = sorted({email.strip().lower() for email in emails if email.strip()} - self.ids.keys())
        if not wanted:
            return
        self.ids.update(self.client.contacts_by_email(wanted))
        missing = [email for email in wanted if email not in self.ids]
        names = dict(Contact.objects.annotate(address=Lower("email")).filter(address__in=missing)
                     .values_list("address", "name"))
        for email in missing:
            first, _, last = names.get(email, "").partition(" ")
            try:
                self.ids[email] = self.client.create_contact({"email": email, "firstname": first,
                                                              "lastname": last})
            except PermanentError as error:
                if not about_the_record(error):
                    raise
                self.ids[email] = None
                self.ctx.note(f"No HubSpot contact for {email}: {error}")

    def of(self, addresses: list[str]) -> list[str]:
        found = [self.ids.get(address.strip().lower()) for address in addresses]
        return list(dict.fromkeys(contact_id for contact_id in found if contact_id))


def _logged(client: HubSpotClient, messages: list[ClientMessage]) -> dict[int, dict]:
    """The emails HubSpot already holds for these messages, by message id (one search per timestamp).

    Our natural key is the Message-ID inside `hs_email_headers`; the exact timestamp narrows the search.
    """
    keys = {message_key(message): message.id for message in messages}
    found: dict[int, dict] = {}
    for stamp in sorted({timestamp_ms(message.sent_at) for message in messages}):
        for email in client.emails_at(stamp):
            try:
                headers = json.loads(email.get("properties", {}).get("hs_email_headers") or "{}")
            except ValueError:
                continue
            if isinstance(headers, dict) and headers.get("messageId") in keys:
                found[keys[headers["messageId"]]] = email
    return found


def _store(message: ClientMessage, kind: str, external_id: str, created: bool, **details) -> None:
    ExternalRef.objects.create(provider=Provider.HUBSPOT, kind=kind, external_id=external_id,
                               local_id=message.id, label=message.subject[:255], details=details,
                               matched_by=MatchedBy.MANUAL if created else MatchedBy.CODE)


class MessagePush:
    def __init__(self, ctx: SyncContext):
        self.ctx = ctx
        self.client = HubSpotClient(ctx.connection)
        ctx.track(self.client.session)
        self.contacts = ContactBook(self.client, ctx)
        self.email_id = option(ctx.connection, "transactional_email_id")
        self.position = ctx.position
        # Messages whose create may have happened (tried, and no answer stored): message id -> when.
        uncertain = dict(self.position.get("uncertain") or {})
        logged = set(ExternalRef.objects.filter(provider=Provider.HUBSPOT, kind__in=(EMAIL, SEND),
                                                local_id__in=[int(i) for i in uncertain])
                     .values_list("local_id", flat=True))
        self.uncertain = {key: value for key, value in uncertain.items() if int(key) not in logged}

    def _settling(self, message: ClientMessage, now: datetime) -> bool:
        tried = self.uncertain.get(str(message.id))
        return tried is not None and now - datetime.fromisoformat(tried) < SEARCH_SETTLE

    def _save_position(self) -> None:
        with transaction.atomic():
            self.ctx.save_position({**self.position, "uncertain": self.uncertain})

    def _sends(self, message: ClientMessage, now: datetime) -> bool:
        return bool(self.email_id) and bool(message.to) and now - message.sent_at <= SEND_WINDOW

    def run(self) -> None:
        last_id = 0
        while batch := list(pending_messages().filter(id__gt=last_id)[:BATCH]):
            last_id = batch[-1].id
            now = timezone.now()
            ready = [message for message in batch if not self._settling(message, now)]
            self.ctx.add(skipped=len(batch) - len(ready))
            for message in ready:
                if self._sends(message, now):
                    self._send(message)
            to_log = [message for message in ready if not self._sends(message, now)]
            if to_log:
                self._log_batch(to_log, now)
            self.ctx.checkpoint()
        if self.uncertain:
            self.ctx.note(f"{len(self.uncertain)} messages wait to be looked up in HubSpot (an answer was "
                          "lost; HubSpot's search needs a moment to show what was created)")
        self._poll_sends()

    def _log_batch(self, messages: list[ClientMessage], now: datetime) -> None:
        self.contacts.load({address for message in messages for address in message.to})
        # Looked up only where an earlier attempt may have logged it: HubSpot's search is slow and rationed.
        existing = _logged(self.client, [m for m in messages if str(m.id) in self.uncertain])
        # Written ahead of the creates: a run killed between a create and storing its ref leaves these to
        # be looked up by the next run, never logged a second time.
        for message in messages:
            self.uncertain.setdefault(str(message.id), now.isoformat())
        self._save_position()
        for message in messages:
            self._log(message, existing.get(message.id))
        self._save_position()

    def _log(self, message: ClientMessage, existing: dict | None) -> None:
        key = str(message.id)
        if existing is None:
            try:
                email = self.client.log_email(properties=email_properties(message),
                                              contact_ids=self.contacts.of(message.to))
            except RetryableError as error:
                # HubSpot may have logged it: looked up (not created again) at a later run.
                self.uncertain[key] = timezone.now().isoformat()
                self.ctx.note(f"Message {message.id} ({message.subject}): no answer from HubSpot ({error}); "
                              "looked up at the next run")
                return
            except PermanentError as error:
                if not about_the_record(error):
                    raise
                # Refused, so not logged: nothing to look up later.
                self.uncertain.pop(key, None)
                self.ctx.note(f"Message {message.id} ({message.subject}) was not logged in HubSpot: {error}")
                return
        # Stored at once: HubSpot holds the email now, and this ref is what keeps it from being logged again.
        _store(message, EMAIL, str((existing or email)["id"]), existing is None)
        self.uncertain.pop(key, None)
        self.ctx.add(**({"unchanged": 1} if existing else {"created": 1}))

    def _send(self, message: ClientMessage) -> None:
        refs = []
        for number, address in enumerate(message.to):
            try:
                status = self.client.send(
                    email_id=self.email_id, to=address, send_id=f"billable-message-{message.id}-{number}",
                    custom_properties={"subject": message.subject, "body": message.body,
                                       "client": message.client.name,
                                       "invoice_number": message.invoice.number if message.invoice else ""})
            except PermanentError as error:
                if not about_the_record(error):
                    raise
                # The other recipients still get theirs; this one is reported for someone to look at.
                self.ctx.note(f"Message {message.id} ({message.subject}) was not sent to {address} through "
                              f"HubSpot: {error}")
                continue
            refs.append(ExternalRef(
                provider=Provider.HUBSPOT, kind=SEND, external_id=str(status["statusId"]),
                local_id=message.id, label=f"{message.subject} → {address}"[:255],
                matched_by=MatchedBy.MANUAL,
                details={"to": address, "send_id": f"billable-message-{message.id}-{number}",
                         "status": status.get("status"), "result": status.get("sendResult")}))
        if not refs:
            return
        # A repeated sendId answers with the first send's status id: a ref already stored is kept.
        ExternalRef.objects.bulk_create(refs, ignore_conflicts=True)
        self.ctx.add(created=1)

    def _poll_sends(self) -> None:
        waiting = list(ExternalRef.objects.filter(provider=Provider.HUBSPOT, kind=SEND)
                       .exclude(details__status__in=list(FINAL_STATUSES)).order_by("id")[:POLL_BATCH])
        for ref in waiting:
            status = self.client.send_status(ref.external_id)
            ref.details = {**ref.details, "status": status.get("status"), "result": status.get("sendResult")}
            if status.get("status") == "COMPLETE" and status.get("sendResult") not in DELIVERED:
                self.ctx.note(f"HubSpot did not deliver {ref.label!r} to {ref.details.get('to')}: "
                              f"{status.get('sendResult')}")
        ExternalRef.objects.bulk_update(waiting, ["details"])


def push_messages(ctx: SyncContext) -> None:
    MessagePush(ctx).run()
