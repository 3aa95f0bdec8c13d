"""Toggl Track in: the whole workspace's time entries, by polling the Reports API and by webhook.

Why the Reports API: `/me/time_entries?since=` would give edits and deletions incrementally, but only the
token owner's own entries; a firm needs everyone's, which only Reports v3 search gives (docs/INTEGRATIONS.md
§1). Reports has no "modified since" and never lists deleted entries, so each run re-reads the window
still open to edits and diffs it:

- the cursor is the last day fully read (`synced_through`); a run reads from `TOGGL_REPULL_DAYS` before
  it (the first run from `TOGGL_BACKFILL_DAYS` ago) to today, in slices of `SLICE_DAYS`;
- each page is one batch through the pipeline (upsert by Toggl's id: an edit updates the same entry,
  a re-read changes nothing), committed on its own;
- once a slice is read to its end, our Toggl entries that started in it and are no longer listed were
  deleted in Toggl: removed if not invoiced, flagged as a conflict if invoiced; quarantined ones are
  discarded (else they would wait, and land once mapped); the cursor moves to the slice's end in the same
  transaction;
- a slice is asked for with a day's margin on each side, since Toggl dates entries in each user's time
  zone and we compare start times in UTC;
- running entries (no stop, negative duration) are skipped until they stop.

Webhooks (`time_entry` created/updated/deleted) apply the same steps to one entry at once; the next poll
corrects anything a webhook delivered out of order. One blind spot of the diff: an entry whose start is
moved in Toggl to a day before the window looks deleted; its `updated` webhook brings it back.
"""

from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from integrations.connections import connection_for
from integrations.events import process_pending
from integrations.inbound import TIME_ENTRY, land_entries, remove_entries, stored_external_ids
from integrations.models import InboundRecord, Provider, RecordStatus, WebhookEvent
from integrations.providers import stream_of
from integrations.runs import SyncContext, retry_quarantined
from integrations.toggl.client import PAGE_SIZE, TogglClient
from integrations.toggl.mapping import TogglDirectory, entries_from_report_row, parse_entry, to_inbound
from projects.models import EntrySource
from projects.toggl_identity import match_toggl_entries

SLICE_DAYS = 31
MARGIN = timedelta(days=1)


def _slices(start: date, end: date):
    while start <= end:
        last = min(end, start + timedelta(days=SLICE_DAYS - 1))
        yield start, last
        start = last + timedelta(days=1)


def _directory(ctx: SyncContext) -> TogglDirectory:
    if "directory" not in ctx.state:
        client = TogglClient(ctx.connection)
        ctx.track(client.session)
        ctx.state["client"], ctx.state["directory"] = client, TogglDirectory(client)
    return ctx.state["directory"]


def _quarantined_started(lower: datetime, upper: datetime) -> set[str]:
    """Quarantined entries that started in [lower, upper): the window's read must list them too."""
    records = InboundRecord.objects.filter(provider=Provider.TOGGL, kind=TIME_ENTRY,
                                           status=RecordStatus.QUARANTINED).values_list("external_id", "payload")
    return {external_id for external_id, payload in records.iterator()
            if (start := parse_entry(payload).start) is not None and lower <= start < upper}


def _land(ctx: SyncContext, entries, directory: TogglDirectory | None):
    with transaction.atomic():
        inbound = to_inbound(entries, directory)
        # An entry imported earlier from a Toggl CSV export takes its Toggl id here instead of landing twice.
        for item in inbound:
            item.input.external_id = item.external_id
        match_toggl_entries([item.input for item in inbound])
        landed = land_entries(provider=Provider.TOGGL, source=EntrySource.TOGGL, entries=inbound)
    ctx.absorb(landed)
    for note in directory.notes if directory else []:
        ctx.note(note)
    if directory:
        directory.notes.clear()
    ctx.checkpoint()
    return landed


def sync_time_entries(ctx: SyncContext, *, page_size: int = PAGE_SIZE) -> None:
    directory = _directory(ctx)
    client: TogglClient = ctx.state["client"]
    retry_quarantined(ctx, stream_of(Provider.TOGGL))
    if process_pending(provider=Provider.TOGGL):
        ctx.say("finished webhook events left unprocessed")

    today = timezone.localdate()
    synced_through = ctx.position.get("synced_through")
    if synced_through:
        start = min(date.fromisoformat(synced_through), today) - timedelta(days=settings.TOGGL_REPULL_DAYS)
    else:
        start = today - timedelta(days=settings.TOGGL_BACKFILL_DAYS)
    for first, last in _slices(start, today):
        seen: set[str] = set()
        for number, rows in enumerate(client.search_time_entries(start=first - MARGIN, end=last + MARGIN,
                                                                 page_size=page_size), start=1):
            entries = [parse_entry(item) for row in rows for item in entries_from_report_row(row)]
            seen |= {entry.key for entry in entries}
            stopped = [entry for entry in entries if not entry.running]
            ctx.add(skipped=len(entries) - len(stopped))
            landed = _land(ctx, stopped, directory)
            ctx.say(f"{first}..{last} page {number}: {len(entries)} entries: {landed.created} created, "
                    f"{landed.updated} updated, {landed.unchanged} unchanged, {landed.quarantined} quarantined, "
                    f"{len(entries) - len(stopped)} running")
        lower = datetime.combine(first, time.min, tzinfo=UTC)
        upper = datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)
        gone = stored_external_ids(source=EntrySource.TOGGL,
                                   condition=Q(started_at__gte=lower, started_at__lt=upper)) - seen
        gone_quarantined = _quarantined_started(lower, upper) - seen
        with transaction.atomic():
            removed = remove_entries(provider=Provider.TOGGL, source=EntrySource.TOGGL,
                                     external_ids=gone | gone_quarantined)
            ctx.save_position({"synced_through": last.isoformat()})
        ctx.absorb(removed=removed)
        if gone_quarantined:
            ctx.quarantined_ids -= gone_quarantined
            ctx.run.quarantined = len(ctx.quarantined_ids)
            ctx.say(f"{first}..{last}: {len(gone_quarantined)} quarantined entries deleted in Toggl: discarded")
        ctx.checkpoint()
        if gone:
            ctx.say(f"{first}..{last}: {removed.deleted} deleted in Toggl, {removed.conflicts} already invoiced "
                    "(flagged as conflicts)")


def retry_records(ctx: SyncContext, records: list[InboundRecord]) -> None:
    """Quarantined Toggl entries, mapped again from their stored payload."""
    entries = [parse_entry(record.payload) for record in records]
    _land(ctx, entries, _directory(ctx))


def apply_webhook_event(event: WebhookEvent) -> str:
    """One `time_entry` event: land the entry it carries, or remove it when deleted."""
    body = event.payload if isinstance(event.payload, dict) else {}
    metadata = body.get("metadata") or {}
    payload = body.get("payload")
    if metadata.get("model") not in (None, "time_entry") or not isinstance(payload, dict):
        return f"ignored ({metadata.get('model') or 'no'} model)"
    action = metadata.get("action")
    entry = parse_entry(payload)
    if action == "deleted" or entry.deleted:
        if not entry.id:
            raise ValueError("A deleted event without the entry's id.")
        removed = remove_entries(provider=Provider.TOGGL, source=EntrySource.TOGGL, external_ids=[entry.id])
        return f"entry {entry.id} deleted at the source: {removed.deleted} deleted, {removed.conflicts} conflicts"
    if entry.running:
        return f"entry {entry.id} is still running: taken in once it stops"
    conn = connection_for(Provider.TOGGL)
    directory = None
    if conn.enabled and conn.option("workspace_id"):
        client = TogglClient(conn)
        directory = TogglDirectory(client)
    try:
        landed = land_entries(provider=Provider.TOGGL, source=EntrySource.TOGGL,
                              entries=to_inbound([entry], directory))
    finally:
        if directory:
            directory.client.session.close()
    if landed.quarantined:
        return f"entry {entry.key} quarantined: {next(iter(landed.reasons.values()))}"
    return f"entry {entry.key} {action}: {landed.created} created, {landed.updated} updated"
