"""Scheduled and queued work of billing: small functions that take ids and call services."""

from billing.pipeline import sweep_unprocessed


def sweep_unprocessed_entries() -> str:
    """Finish entries a crash left recorded but not rated (scheduled every few minutes)."""
    return f"{sweep_unprocessed()} entries processed"
