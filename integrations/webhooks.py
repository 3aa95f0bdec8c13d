"""What every webhook endpoint shares: a bounded body, JSON parsing, plain JSON answers.

The provider-specific views live in integrations/<provider>/webhooks.py and are mounted by
integrations/urls.py under /api/v1/webhooks/.
"""

import json

from django.conf import settings
from django.http import HttpRequest, JsonResponse


class WebhookRefused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> JsonResponse:
        return JsonResponse({"detail": self.message}, status=self.status)


def read_body(request: HttpRequest) -> bytes:
    """The raw body (signatures are over the exact bytes), refused past the size limit."""
    limit = settings.INTEGRATIONS_WEBHOOK_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise WebhookRefused(400, "Content-Length is not a number.") from None
    if declared > limit:
        raise WebhookRefused(413, f"The body is larger than {limit} bytes.")
    # Read one byte past the limit, so a body sent without an honest length is caught too.
    body = request.read(limit + 1)
    if len(body) > limit:
        raise WebhookRefused(413, f"The body is larger than {limit} bytes.")
    return body


def parse_json(body: bytes):
    try:
        return json.loads(body or b"")
    except (ValueError, UnicodeDecodeError):
        raise WebhookRefused(400, "The body is not JSON.") from None
