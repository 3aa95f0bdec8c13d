"""Landing a connector's time entries: through the pipeline, into the quarantine, or out (deleted at the source).

Every connector calls these with a batch; each costs a fixed handful of queries whatever the batch size.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Case, Q, TextField, Value, When
from django.db.models.functions import Concat
from django.utils import timezone

from billing.models import Allocation
from billing.pipeline import IngestResult, ingest
from integrations.models import InboundRecord, RecordStatus
from projects.models import TimeEntry
from projects.time_capture import TimeEntryInput, time_entries_delete

TIME_ENTRY = "time_entry"
# Marks an invoiced entry whose source record is gone, so later runs do not flag it again.
DELETED_AT_SOURCE = "Deleted at the source"


@dataclass
class InboundEntry:
    """One outside record as a time entry: its key, its raw payload (kept if quarantined) and our input."""

    external_id: str
    payload: dict
    input: TimeEntryInput


@dataclass
class LandingResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    conflicts: int = 0
    quarantined: int = 0
    # The reason of each quarantined record, by external id.
    reasons: dict[str, str] = field(default_factory=dict)
    # The external ids stored (created, updated or unchanged).
    landed_ids: list[str] = field(default_factory=list)
    ingest: IngestResult | None = None


def _last_per_key(entries: list[InboundEntry]) -> list[InboundEntry]:
    """One record per external id (the last one read), so a repeated row never rejects itself."""
    latest = {entry.external_id: entry for entry in entries}
    return list(latest.values())


def land_entries(*, provider: str, source: str, entries: list[InboundEntry]) -> LandingResult:
    """Ingest the batch; quarantine what the pipeline refuses, with its reason; release what now lands."""
    entries = _last_per_key(entries)
    result = LandingResult()
    if not entries:
        return result
    for entry in entries:
        entry.input.external_id = entry.external_id
    ingested = ingest([entry.input for entry in entries], source)
    result.ingest = ingested
    result.created, result.updated = len(ingested.created), len(ingested.updated)
    result.unchanged, result.conflicts = len(ingested.unchanged), len(ingested.conflicts)
    rejected = {item.index: item.summary() for item in ingested.rejected}
    quarantine = {entries[index].external_id: (entries[index].payload, reason) for index, reason in rejected.items()}
    landed = [entries[index].external_id for index in ingested.by_index if index not in rejected]
    quarantine_records(provider=provider, kind=TIME_ENTRY, records=quarantine)
    release_records(provider=provider, kind=TIME_ENTRY, external_ids=landed, status=RecordStatus.PROCESSED)
    result.quarantined = len(quarantine)
    result.reasons = {external_id: reason for external_id, (_, reason) in quarantine.items()}
    result.landed_ids = landed
    return result


def quarantine_records(*, provider: str, kind: str, records: dict[str, tuple[dict, str]]) -> None:
    """Store or refresh quarantined records: external id -> (raw payload, reason)."""
    if not records:
        return
    now = timezone.now()
    existing = {record.external_id: record for record in
                InboundRecord.objects.filter(provider=provider, kind=kind, external_id__in=list(records))}
    for external_id, record in existing.items():
        record.payload, record.reason = records[external_id]
        record.status, record.processed_at = RecordStatus.QUARANTINED, None
        record.attempts += 1
        record.last_attempt_at = now
    InboundRecord.objects.bulk_update(list(existing.values()),
                                      ["payload", "reason", "status", "processed_at", "attempts", "last_attempt_at"])
    InboundRecord.objects.bulk_create(
        [InboundRecord(provider=provider, kind=kind, external_id=external_id, payload=payload, reason=reason,
                       last_attempt_at=now)
         for external_id, (payload, reason) in records.items() if external_id not in existing],
        # Two workers quarantining the same record: one row is enough.
        ignore_conflicts=True,
    )


def release_records(*, provider: str, kind: str, external_ids: Iterable[str], status: str) -> int:
    """Mark quarantined records processed (they landed) or discarded (gone at the source)."""
    external_ids = list(external_ids)
    if not external_ids:
        return 0
    return InboundRecord.objects.filter(
        provider=provider, kind=kind, external_id__in=external_ids, status=RecordStatus.QUARANTINED,
    ).update(status=status, processed_at=timezone.now())


@dataclass
class RemovalResult:
    deleted: int = 0
    conflicts: int = 0


@transaction.atomic
def remove_entries(*, provider: str, source: str, external_ids: Iterable[str]) -> RemovalResult:
    """Entries deleted at their source: delete ours while nothing has billed them, else flag a conflict.

    Deletion goes through projects.time_capture.time_entries_delete (editable entries only, budgets
    refreshed). An entry that is invoiced, or ever sat on an invoice (its allocations are the invoice's
    history), is kept as it is: the invoice stays as issued and finance sees the conflict.
    """
    external_ids = list(dict.fromkeys(str(i) for i in external_ids))
    result = RemovalResult()
    if not external_ids:
        return result
    entries = list(TimeEntry.objects.select_for_update().filter(source=source, external_id__in=external_ids))
    billed = set(Allocation.objects.filter(time_entry__in=[e.id for e in entries])
                 .values_list("time_entry_id", flat=True))
    deletable = [entry for entry in entries if entry.is_editable and entry.id not in billed]
    kept = [entry.id for entry in entries if not (entry.is_editable and entry.id not in billed)]
    if deletable:
        # Locked above in this transaction, so none can be invoiced in between: the batch cannot be refused.
        time_entries_delete(entries=deletable)
    if kept:
        now = timezone.now()
        note = f"{DELETED_AT_SOURCE} ({now:%Y-%m-%d %H:%M}) after it was invoiced: kept as invoiced."
        # Appended to what finance already has to look at (an edit after invoicing, say).
        result.conflicts = (
            TimeEntry.objects.filter(id__in=kept).exclude(conflict__contains=DELETED_AT_SOURCE)
            .update(conflict=Case(When(conflict="", then=Value(note)),
                                  default=Concat("conflict", Value(f"\n{note}"), output_field=TextField()),
                                  output_field=TextField()), updated_at=now)
        )
    result.deleted = len(deletable)
    release_records(provider=provider, kind=TIME_ENTRY, external_ids=external_ids, status=RecordStatus.DISCARDED)
    return result


def stored_external_ids(*, source: str, condition: Q) -> set[str]:
    """The external ids of our entries from a source that match `condition` (for diffing a window)."""
    return set(TimeEntry.objects.filter(condition, source=source).values_list("external_id", flat=True))
