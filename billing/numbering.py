"""Gapless invoice numbers per prefix and year, taken under a row lock (INV-2026-0001)."""

from django.conf import settings
from django.db import IntegrityError, transaction

from billing.models import InvoiceKind, InvoiceSequence


def prefix_for(kind: str) -> str:
    if kind == InvoiceKind.CREDIT:
        return settings.CREDIT_NOTE_NUMBER_PREFIX
    return settings.INVOICE_NUMBER_PREFIX


def take_number(*, kind: str, year: int) -> str:
    """The next number; must run inside the transaction that issues the invoice, so a rollback frees it."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("Invoice numbers are taken inside the issuing transaction.")
    prefix = prefix_for(kind)
    try:
        with transaction.atomic():
            InvoiceSequence.objects.get_or_create(prefix=prefix, year=year)
    except IntegrityError:
        pass  # another finalization created the row first; the lock below waits for it
    sequence = InvoiceSequence.objects.select_for_update().get(prefix=prefix, year=year)
    sequence.last_number += 1
    sequence.save(update_fields=["last_number"])
    return f"{prefix}{year}-{sequence.last_number:04d}"
