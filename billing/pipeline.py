"""The one way in for time: every source calls `ingest`.

1. projects:  validate and upsert entries by (source, external_id)      [one batch]
2. billing:   rate them (billability, rate, rounding, caps)              [set-based]
3. approvals: auto-approve or hold, with reasons                         [set-based]
4. projects:  refresh the budgets of the touched projects, raise alerts  [per project]
"""

from dataclasses import dataclass

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
    return IngestResult.from_record(record)
