"""Scheduled and queued work of the connectors: small functions taking ids (see config/schedules.py)."""

from integrations.events import process_event
from integrations.models import InboundRecord, Provider, RecordStatus
from integrations.providers import streams_of
from integrations.runs import NotConfigured, StreamBusy, retry_quarantined, run_stream


def _outcome(run) -> str:
    return f"{run.get_status_display()}: {run.counts_text()}" + (f"; {run.errors}" if run.errors else "")


def sync_provider(provider: str, stream: str | None = None, trigger: str = "schedule") -> str:
    """One run of a provider's stream; not configured or already running is a quiet skip."""
    try:
        return _outcome(run_stream(provider=provider, stream=stream, trigger=trigger))
    except (NotConfigured, StreamBusy) as skipped:
        return f"skipped: {skipped}"


def sync_toggl() -> str:
    return sync_provider(Provider.TOGGL)


def sync_monday() -> str:
    return sync_provider(Provider.MONDAY)


def sync_salesforce() -> str:
    return sync_provider(Provider.SALESFORCE, "terms")


def push_salesforce_accounts() -> str:
    return sync_provider(Provider.SALESFORCE, "account_updates")


def push_kantata_budgets() -> str:
    return sync_provider(Provider.KANTATA, "budgets")


def push_hubspot_messages() -> str:
    return sync_provider(Provider.HUBSPOT, "messages")


def push_harvest_invoices() -> str:
    return sync_provider(Provider.HARVEST, "invoices")


def retry_quarantined_records(provider: str, record_ids: list[int] | None = None) -> str:
    """Take quarantined records (these, or all of the provider's) through the pipeline again, now.

    Each stream retries the kinds of record it reads, under its own lease, in a run of its own.
    """
    records = InboundRecord.objects.filter(provider=provider, status=RecordStatus.QUARANTINED)
    if record_ids is not None:
        records = records.filter(id__in=record_ids)
    kinds = set(records.values_list("kind", flat=True).distinct())
    outcomes = []
    for spec in streams_of(provider):
        if spec.retry is None or not kinds or (spec.record_kinds and not kinds & set(spec.record_kinds)):
            continue
        try:
            run = run_stream(provider=provider, stream=spec.name, trigger="retry",
                             work=lambda ctx, spec=spec: retry_quarantined(ctx, spec, record_ids=record_ids))
        except (NotConfigured, StreamBusy) as skipped:
            outcomes.append(f"{spec.name} skipped: {skipped}")
        else:
            outcomes.append(f"{spec.name}: {_outcome(run)}")
    return "; ".join(outcomes) or "nothing quarantined to retry"


def process_webhook_event(event_id: int) -> str:
    return process_event(event_id)
