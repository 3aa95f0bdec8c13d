"""The one way in for time: every source calls `ingest`.

1. projects:  validate and upsert entries by (source, external_id)      [one batch]
2. billing:   rate them (billability, rate, rounding, caps)              [set-based]
3. approvals: auto-approve or hold, with reasons                         [set-based]
4. projects:  refresh the budgets of the touched projects, raise alerts  [per project]
"""

from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from approvals.routing import route_entries
from billing.rating import rate_entries
from projects.budgets import refresh_budgets
from projects.models import EntryStatus, TimeEntry
from projects.time_capture import RecordResult, TimeEntryInput, record_time_entries

__all__ = ["IngestResult", "TimeEntryInput", "ingest"]


@dataclass
class IngestResult(RecordResult):
    @classmethod
    def from_record(cls, record: RecordResult) -> "IngestResult":
        return cls(**record.__dict__)

    def summary(self) -> str:
        return (f"{len(self.created)} created, {len(self.updated)} updated, {len(self.unchanged)} unchanged, "
                f"{len(self.conflicts)} conflicts, {len(self.rejected)} rejected")


def ingest(
    inputs: list[TimeEntryInput],
    source: str,
    *,
    acting_user=None,
    allowed_member_ids: set[int] | None = None,
    all_or_nothing: bool = False,
) -> IngestResult:
    """Record a batch of entries from one source, then process what changed."""
    record = record_time_entries(inputs=inputs, source=source, acting_user=acting_user,
                                 allowed_member_ids=allowed_member_ids, all_or_nothing=all_or_nothing)
    result = IngestResult.from_record(record)
    if result.changed:
        process_entries(result.changed)
    # An entry moved to another project: the project it left loses its time from the budget.
    left = result.left_project_ids - {entry.project_id for entry in result.changed}
    if left:
        refresh_budgets(project_ids=left)
    return result


@transaction.atomic
def process_entries(entries) -> None:
    """Steps 2-4 for recorded entries; the sweeper calls this for anything left unprocessed.

    One transaction: a crash leaves the entries recorded, and the sweeper finishes them.
    """
    # Routing writes the rated values with the statuses it decides: every entry is updated once.
    rated = rate_entries(entries, write=False)
    route_entries(rated)
    refresh_budgets(project_ids={entry.project_id for entry in rated}, batch=rated)
    # Refresh the callers' objects: they hold the entries the pipeline just rated.
    by_id = {entry.id: entry for entry in rated}
    for entry in entries:
        fresh = by_id.get(entry.id)
        if fresh is not None and fresh is not entry:
            for name in ("billable_minutes", "over_cap_minutes", "covered_minutes", "rate", "amount",
                         "cost_amount", "rate_rule", "billability_reason", "rated_at", "status"):
                setattr(entry, name, getattr(fresh, name))


SWEEP_BATCH = 1000


def sweep_unprocessed(*, older_than: timedelta = timedelta(minutes=2)) -> int:
    """Finish every entry left recorded (e.g. by a crash between recording and rating)."""
    cutoff = timezone.now() - older_than
    done, last_id = 0, 0
    while True:
        # Walk forward by id so an entry that cannot be finished is not picked up forever.
        ids = list(TimeEntry.objects.filter(status=EntryStatus.RECORDED, updated_at__lte=cutoff, id__gt=last_id)
                   .order_by("id").values_list("id", flat=True)[:SWEEP_BATCH])
        if not ids:
            return done
        process_entries([TimeEntry(id=i) for i in ids])
        done += len(ids)
        last_id = ids[-1]


def reprocess_contracts(*, contract_ids, from_date=None) -> int:
    """Rate and route again every entry of these contracts not yet invoiced, in batches.

    Called when a rate or a contract term changes; a person's approval decision stands.
    """
    entries = TimeEntry.objects.filter(project__contract_id__in=list(contract_ids)).exclude(
        status__in=(EntryStatus.INVOICED,)
    )
    if from_date:
        entries = entries.filter(work_date__gte=from_date)
    ids = list(entries.order_by("work_date", "id").values_list("id", flat=True))
    for start in range(0, len(ids), SWEEP_BATCH):
        process_entries([TimeEntry(id=i) for i in ids[start:start + SWEEP_BATCH]])
    return len(ids)


def queue_reprocessing(*, contract_ids, from_date=None) -> None:
    """Reprocess after the current transaction commits, on a worker (at once in tests and sync mode)."""
    from django_q.tasks import async_task

    contract_ids = sorted(set(contract_ids))
    transaction.on_commit(lambda: async_task(
        "billing.pipeline.reprocess_contracts", contract_ids=contract_ids, from_date=from_date,
        task_name=f"reprocess contracts {contract_ids}"[:100],
    ))
