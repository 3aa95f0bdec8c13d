"""POST /api/v1/webhooks/monday/: monday.com's webhook deliveries.

monday checks a new webhook by POSTing `{"challenge": "..."}` and expects the same JSON back. Webhooks
made with a personal token are not signed, so an event is only a hint: processing it reads the item
back from monday's API, and never trusts the body's values. With MONDAY_WEBHOOK_SECRET set, the URL
registered at monday must end in `?secret=<that value>` and any other call is refused with 401.
"""

import hmac

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from integrations.events import record_event
from integrations.models import Provider
from integrations.webhooks import WebhookRefused, parse_json, read_body


def event_key(event: dict) -> str:
    """monday's id of one delivery; retries of a delivery carry the same trigger uuid."""
    for name in ("triggerUuid", "originalTriggerUuid"):
        if event.get(name):
            return str(event[name])
    return ":".join(str(event.get(name, "")) for name in ("subscriptionId", "pulseId", "type", "triggerTime",
                                                           "changedAt"))


@csrf_exempt
@require_POST
def monday_webhook(request):
    try:
        secret = settings.MONDAY_WEBHOOK_SECRET
        if secret and not hmac.compare_digest(request.GET.get("secret", "").encode(), secret.encode()):
            raise WebhookRefused(401, "Wrong or missing secret.")
        body = parse_json(read_body(request))
        if not isinstance(body, dict):
            raise WebhookRefused(400, "The body is not a JSON object.")
        if "challenge" in body:
            return JsonResponse({"challenge": body["challenge"]})
        event = body.get("event")
        if not isinstance(event, dict) or not event.get("pulseId"):
            raise WebhookRefused(400, "The body has no event with a pulseId.")
    except WebhookRefused as refused:
        return refused.response()
    stored = record_event(provider=Provider.MONDAY, event_id=event_key(event), payload=body)
    return JsonResponse({"status": "accepted" if stored else "duplicate"})
