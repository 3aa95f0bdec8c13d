"""monday.com in: time-tracking sessions of the configured boards, by polling and by webhook.

- Incremental runs ask each board only for items updated since the last run (the `__last_updated__`
  rule, by day, with a day's margin); a full read every MONDAY_FULL_SYNC_HOURS also finds deleted and
  archived items, which `items_page` simply stops listing.
- For every item read, sessions no longer in its history were deleted in monday; after a full read,
  our entries on the boards' projects that no item lists any more went with their item. Either way:
  removed if not invoiced, flagged as a conflict if invoiced.
- Each page is one batch, committed on its own; the cursor (`updated_since`, `last_full_at`) moves only
  after every board was read, so a killed run is simply done again.
- A webhook names an item; processing reads that item back from monday (unsigned webhooks are hints,
  not data) and lands or removes its sessions.
"""

from datetime import datetime, timedelta
from functools import reduce
from operator import or_

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from integrations.connections import connection_for
from integrations.events import process_pending
from integrations.http import PermanentError
from integrations.inbound import (
    LandingResult,
    RemovalResult,
    land_entries,
    remove_entries,
    stored_external_ids,
)
from integrations.models import ExternalRef, InboundRecord, Provider, RefKind, WebhookEvent
from integrations.monday.client import PAGE_LIMIT, MondayClient
from integrations.monday.mapping import (
    MondayDirectory,
    item_prefix,
    session_from_payload,
    sessions_of,
    to_inbound,
)
from integrations.providers import stream_of
from integrations.runs import SyncContext, retry_quarantined
from projects.models import EntrySource

# Items per query when looking up our stored sessions of a page's items (one LIKE per item).
PREFIX_CHUNK = 100


def _stored_sessions_of(item_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(item_ids), PREFIX_CHUNK):
        chunk = item_ids[start:start + PREFIX_CHUNK]
        condition = reduce(or_, [Q(external_id__startswith=item_prefix(item_id)) for item_id in chunk])
        found |= stored_external_ids(source=EntrySource.MONDAY, condition=condition)
    return found


def land_items(items: list[dict], directory: MondayDirectory | None, *,
               board_id: str | None = None) -> tuple[LandingResult, RemovalResult, set[str], int]:
    """Land the stopped sessions of these items, remove the sessions they no longer have.

    Returns (landed, removed, every session key listed, running sessions skipped).
    """
    sessions = [session for item in items for session in sessions_of(item, board_id)]
    stopped = [session for session in sessions if not session.running]
    listed = {session.key for session in sessions}
    gone = _stored_sessions_of([str(item.get("id")) for item in items]) - listed
    with transaction.atomic():
        landed = land_entries(provider=Provider.MONDAY, source=EntrySource.MONDAY,
                              entries=to_inbound(stopped, directory))
        removed = remove_entries(provider=Provider.MONDAY, source=EntrySource.MONDAY, external_ids=gone)
    return landed, removed, listed, len(sessions) - len(stopped)


def _directory(ctx: SyncContext) -> MondayDirectory:
    if "directory" not in ctx.state:
        client = MondayClient(ctx.connection)
        ctx.track(client.session)
        ctx.state["client"], ctx.state["directory"] = client, MondayDirectory(client)
    return ctx.state["directory"]


def _report_notes(ctx: SyncContext, directory: MondayDirectory) -> None:
    for note in directory.notes:
        ctx.note(note)
    directory.notes.clear()


def sync_items(ctx: SyncContext, *, limit: int = PAGE_LIMIT) -> None:
    board_ids = [str(board) for board in ctx.connection.option("board_ids") or []]
    if not board_ids:
        raise PermanentError("monday: MONDAY_BOARD_IDS is empty: name the boards to read",
                             provider=Provider.MONDAY)
    directory = _directory(ctx)
    client: MondayClient = ctx.state["client"]
    retry_quarantined(ctx, stream_of(Provider.MONDAY))
    if process_pending(provider=Provider.MONDAY):
        ctx.say("finished webhook events left unprocessed")

    started = timezone.now()
    position = ctx.position
    last_full = datetime.fromisoformat(position["last_full_at"]) if position.get("last_full_at") else None
    hours = ctx.connection.option("full_sync_hours") or 24
    full = last_full is None or started - last_full >= timedelta(hours=hours) or not position.get("updated_since")
    # The rule compares days, in a time zone monday does not state: a day's margin.
    since = None if full else (datetime.fromisoformat(position["updated_since"]) - timedelta(days=1)).date()
    ctx.say(f"{'full read' if full else f'items updated since {since}'} of boards {', '.join(board_ids)}")

    listed: set[str] = set()
    for board_id in board_ids:
        for number, items in enumerate(client.board_items(board_id, updated_since=since, limit=limit), start=1):
            landed, removed, keys, running = land_items(items, directory, board_id=board_id)
            listed |= keys
            ctx.absorb(landed, removed)
            ctx.add(skipped=running)
            _report_notes(ctx, directory)
            ctx.checkpoint()
            ctx.say(f"board {board_id} page {number}: {len(items)} items, {len(keys)} sessions: "
                    f"{landed.created} created, {landed.updated} updated, {landed.unchanged} unchanged, "
                    f"{landed.quarantined} quarantined, {removed.deleted} deleted, {running} running")

    with transaction.atomic():
        if full:
            # Sessions of items deleted or archived in monday: no item lists them any more.
            projects = ExternalRef.objects.filter(provider=Provider.MONDAY, kind=RefKind.PROJECT,
                                                  external_id__in=board_ids, local_id__isnull=False)
            gone = stored_external_ids(source=EntrySource.MONDAY,
                                       condition=Q(project_id__in=projects.values("local_id"))) - listed
            removed = remove_entries(provider=Provider.MONDAY, source=EntrySource.MONDAY, external_ids=gone)
            ctx.absorb(removed=removed)
            if gone:
                ctx.say(f"{removed.deleted} sessions of deleted or archived items removed, "
                        f"{removed.conflicts} already invoiced (flagged as conflicts)")
        ctx.save_position({"updated_since": started.isoformat(),
                           "last_full_at": started.isoformat() if full else last_full.isoformat()})
    ctx.checkpoint()


def retry_records(ctx: SyncContext, records: list[InboundRecord]) -> None:
    """Quarantined sessions, mapped again from their stored payload."""
    directory = _directory(ctx)
    sessions = [session_from_payload(record.payload if isinstance(record.payload, dict) else {})
                for record in records]
    with transaction.atomic():
        landed = land_entries(provider=Provider.MONDAY, source=EntrySource.MONDAY,
                              entries=to_inbound(sessions, directory))
    ctx.absorb(landed)
    _report_notes(ctx, directory)


def apply_webhook_event(event: WebhookEvent) -> str:
    """Read the item the event names back from monday; land its sessions, or remove them if it is gone."""
    body = event.payload if isinstance(event.payload, dict) else {}
    item_id = str((body.get("event") or {}).get("pulseId") or "")
    if not item_id:
        return "ignored (no item)"
    conn = connection_for(Provider.MONDAY)
    if not conn.enabled:
        return "ignored (monday is not configured)"
    client = MondayClient(conn)
    try:
        items = client.items([item_id])
        item = items[0] if items else None
        if item is None or item.get("state") in ("deleted", "archived"):
            gone = _stored_sessions_of([item_id])
            removed = remove_entries(provider=Provider.MONDAY, source=EntrySource.MONDAY, external_ids=gone)
            return f"item {item_id} is gone: {removed.deleted} deleted, {removed.conflicts} conflicts"
        board_id = str((item.get("board") or {}).get("id") or "")
        if board_id not in {str(b) for b in conn.option("board_ids") or []}:
            return f"ignored (item {item_id} is on board {board_id}, which is not synced)"
        landed, removed, _, running = land_items([item], MondayDirectory(client), board_id=board_id)
    finally:
        client.session.close()
    return (f"item {item_id}: {landed.created} created, {landed.updated} updated, {landed.quarantined} "
            f"quarantined, {removed.deleted} deleted, {running} running")
