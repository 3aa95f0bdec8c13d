"""POST /api/v1/webhooks/toggl/: Toggl Track's webhook deliveries.

Every delivery, the validation PING included, must carry `X-Webhook-Signature-256: sha256=<hex>`, the
HMAC-SHA256 of the raw body keyed with TOGGL_WEBHOOK_SECRET; anything else is refused with 401 before
a byte of it is stored. A PING is answered with its `validation_code`, which validates the subscription.
"""

import hashlib
import hmac
import logging

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from integrations.events import record_event
from integrations.models import Provider
from integrations.webhooks import WebhookRefused, parse_json, read_body

logger = logging.getLogger(__name__)


def _check_signature(body: bytes, given: str) -> None:
    secret = settings.TOGGL_WEBHOOK_SECRET
    if not secret:
        logger.warning("Toggl webhook refused: TOGGL_WEBHOOK_SECRET is not set")
        raise WebhookRefused(401, "Webhooks are not accepted: no secret is configured.")
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    # Constant time, so the comparison does not leak how much of a forged signature was right.
    if not given or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise WebhookRefused(401, "Missing or wrong X-Webhook-Signature-256.")


@csrf_exempt
@require_POST
def toggl_webhook(request):
    try:
        body = read_body(request)
        _check_signature(body, request.headers.get("X-Webhook-Signature-256", ""))
        event = parse_json(body)
        if not isinstance(event, dict):
            raise WebhookRefused(400, "The event is not a JSON object.")
        if event.get("validation_code") or event.get("payload") == "ping":
            # The subscription's handshake: echoing the code validates it.
            return JsonResponse({"validation_code": event.get("validation_code", "")})
        event_id = event.get("event_id")
        if event_id in (None, ""):
            raise WebhookRefused(400, "The event has no event_id.")
    except WebhookRefused as refused:
        return refused.response()
    stored = record_event(provider=Provider.TOGGL, event_id=str(event_id), payload=event)
    return JsonResponse({"status": "accepted" if stored else "duplicate"})
