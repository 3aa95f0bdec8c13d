"""Every email to a client goes through here, so each one is logged with its outcome."""

import logging

from django.conf import settings
from django.core.mail import EmailMessage

from billing.models import ClientMessage, MessageStatus

logger = logging.getLogger(__name__)


def invoice_recipients(client) -> list[str]:
    """The client's invoice addresses and the contacts who opted in to invoices, each once, in order."""
    addresses = list(client.invoice_emails or [])
    for contact in client.contacts.all():
        if contact.receives_invoices and contact.email not in addresses:
            addresses.append(contact.email)
    return addresses


def send_client_message(*, client, kind: str, to: list[str], subject: str, body: str, invoice=None,
                        attachments: list[tuple[str, bytes, str]] = ()) -> ClientMessage:
    """Send one email and record it (to, subject, when, status, invoice) whether it went out or not."""
    message = EmailMessage(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=to)
    for name, content, mimetype in attachments:
        message.attach(name, content, mimetype)
    status, error = MessageStatus.SENT, ""
    try:
        message.send(fail_silently=False)
    except Exception as failure:  # noqa: BLE001 - any transport failure is recorded, not raised
        logger.warning("Email to %s failed: %s", to, failure)
        status, error = MessageStatus.FAILED, str(failure)[:2000]
    return ClientMessage.objects.create(kind=kind, client=client, invoice=invoice, to=to, subject=subject,
                                        body=body, status=status, error=error)
