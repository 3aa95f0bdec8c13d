"""Webhook events: stored once per provider and event id, processed after the request commits.

The view answers the provider at once; the event is processed by a worker (django-q2, in-process in
tests), and each sync finishes any event a crash left unprocessed. A replayed or re-delivered event id
finds its row already there and changes nothing.
"""

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations.models import WebhookEvent
from integrations.providers import load, stream_of

logger = logging.getLogger(__name__)

# An event younger than this may still be in a worker's hands.
PENDING_AFTER = timedelta(minutes=1)


def record_event(*, provider: str, event_id: str, payload) -> WebhookEvent | None:
    """Store a new event and queue its processing; None when this event id was seen before."""
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.create(provider=provider, event_id=str(event_id)[:128], payload=payload)
    except IntegrityError:
        return None
    transaction.on_commit(lambda: queue_event(event.id))
    return event


def queue_event(event_id: int) -> None:
    from django_q.tasks import async_task

    async_task("integrations.tasks.process_webhook_event", event_id, task_name=f"webhook event {event_id}")


def process_event(event_id: int) -> str:
    """Apply one stored event, once: its changes and its "processed" mark commit together.

    The row is locked while it is applied, so a second worker skips it; a worker that dies mid-way
    leaves it unprocessed for the next sync.
    """
    try:
        with transaction.atomic():
            event = (WebhookEvent.objects.select_for_update(skip_locked=True)
                     .filter(id=event_id, processed_at__isnull=True).first())
            if event is None:
                return "already processed"
            outcome = load(stream_of(event.provider).webhook)(event)
            event.processed_at, event.error = timezone.now(), ""
            event.save(update_fields=["processed_at", "error"])
    except Exception as error:
        logger.exception("webhook event %s failed", event_id)
        # Nothing of it was applied; the next sync tries again, and the operator sees why.
        WebhookEvent.objects.filter(id=event_id).update(error=f"{error.__class__.__name__}: {error}"[:2000])
        return f"failed: {error}"
    return outcome or "processed"


def process_pending(*, provider: str) -> int:
    """Events stored but never processed (the worker died): each sync finishes them first."""
    ids = list(WebhookEvent.objects.filter(provider=provider, processed_at__isnull=True,
                                           received_at__lt=timezone.now() - PENDING_AFTER)
               .order_by("received_at", "id").values_list("id", flat=True)[:1000])
    for event_id in ids:
        process_event(event_id)
    return len(ids)
