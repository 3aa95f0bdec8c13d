"""The registry of connectors: which streams each provider has and which functions run them.

Functions are named by dotted path and imported on first use, so this module (read by the admin, the
command and the tasks) never imports a provider package it does not need. A new connector adds a line here.
"""

from dataclasses import dataclass
from importlib import import_module

from integrations.models import Provider


@dataclass(frozen=True)
class Stream:
    provider: str
    name: str
    # sync(ctx: SyncContext) -> None, see integrations/runs.py.
    sync: str
    # retry(ctx: SyncContext, records: list[InboundRecord]) -> None; None when nothing is quarantined.
    retry: str | None = None
    # apply(event: WebhookEvent) -> None, for providers that push webhooks.
    webhook: str | None = None
    # The InboundRecord kinds `retry` takes (empty: all of the provider's).
    record_kinds: tuple[str, ...] = ()


STREAMS: tuple[Stream, ...] = (
    Stream(Provider.TOGGL, "time_entries", sync="integrations.toggl.sync.sync_time_entries",
           retry="integrations.toggl.sync.retry_records", webhook="integrations.toggl.sync.apply_webhook_event",
           record_kinds=("time_entry",)),
    Stream(Provider.MONDAY, "items", sync="integrations.monday.sync.sync_items",
           retry="integrations.monday.sync.retry_records", webhook="integrations.monday.sync.apply_webhook_event",
           record_kinds=("time_entry",)),
    # Salesforce's `terms` comes first: `stream_of(provider)` picks it, and the quarantine retry needs it.
    Stream(Provider.SALESFORCE, "terms", sync="integrations.salesforce.sync.sync_terms",
           retry="integrations.salesforce.sync.retry_records"),
    Stream(Provider.SALESFORCE, "account_updates", sync="integrations.salesforce.push.push_account_updates"),
    Stream(Provider.KANTATA, "budgets", sync="integrations.kantata.push.push_budgets"),
    Stream(Provider.HUBSPOT, "messages", sync="integrations.hubspot.push.push_messages"),
    Stream(Provider.HARVEST, "invoices", sync="integrations.harvest.push.push_invoices"),
)


def streams_of(provider: str) -> list[Stream]:
    return [stream for stream in STREAMS if stream.provider == provider]


def stream_of(provider: str, name: str | None = None) -> Stream:
    """The named stream, or the provider's only (first) stream."""
    for stream in streams_of(provider):
        if name is None or stream.name == name:
            return stream
    raise LookupError(f"No stream {name!r} for {provider}." if name else f"{provider} has no connector.")


def providers_with_streams() -> list[str]:
    return list(dict.fromkeys(stream.provider for stream in STREAMS))


def load(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(import_module(module), name)
