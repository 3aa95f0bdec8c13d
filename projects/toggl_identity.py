"""One Toggl entry, two ways in: the connector (which knows Toggl's id) and the detailed CSV export (which
carries no id, so a row's external id is a hash of its content, prefixed `row-`).

Without this, a firm that imports last month's export and then turns the connector on, or imports an
export of weeks the connector already synced, or edits a duration in Toggl and imports the export again,
would get the same hour twice. In both ways in, Toggl gives the person and the start to the second, and
one person does not start two entries in the same second: that pair identifies the entry. Toggl's own id
wins over a hash, and an existing entry keeps its row, so an edit updates it (or, once it is invoiced,
is flagged as a conflict by the pipeline) instead of adding a second entry.
"""

from collections import Counter

from projects.models import EntrySource, TimeEntry
from projects.time_capture import TimeEntryInput

EXPORT_ID_PREFIX = "row-"


def _is_export_id(external_id: str) -> bool:
    return external_id.startswith(EXPORT_ID_PREFIX)


def match_toggl_entries(inputs: list[TimeEntryInput]) -> int:
    """Point each input at the Toggl entry we already hold for the same person and start; returns how many.

    An incoming Toggl id renames a stored export row to it; an incoming export row takes the stored
    entry's id. Three queries at most, whatever the batch size. Inputs whose person and start appear twice
    in the batch are left as they are: there is no telling which is which.
    """
    keys = Counter((i.member_id, i.started_at) for i in inputs if i.member_id and i.started_at and i.external_id)
    incoming = {(i.member_id, i.started_at): i for i in inputs
                if i.member_id and i.started_at and i.external_id and keys[(i.member_id, i.started_at)] == 1}
    if not incoming:
        return 0
    stored = Counter()
    candidates = []
    for entry_id, member_id, started_at, external_id in TimeEntry.objects.filter(
            source=EntrySource.TOGGL, member_id__in={member for member, _ in incoming},
            started_at__in={start for _, start in incoming}).values_list("id", "member_id", "started_at",
                                                                           "external_id"):
        if (member_id, started_at) in incoming:
            stored[(member_id, started_at)] += 1
            candidates.append((entry_id, member_id, started_at, external_id))

    renames: dict[int, str] = {}
    matched = 0
    for entry_id, member_id, started_at, external_id in candidates:
        item = incoming[(member_id, started_at)]
        if stored[(member_id, started_at)] > 1 or item.external_id == external_id:
            continue
        if _is_export_id(external_id) and not _is_export_id(item.external_id):
            renames[entry_id] = item.external_id
        elif _is_export_id(item.external_id):
            item.external_id = external_id
        else:
            continue  # two different Toggl ids: two real entries that happen to start together
        matched += 1
    if renames:
        # A Toggl id already stored on another row means both are here already; leave that pair alone.
        taken = set(TimeEntry.objects.filter(source=EntrySource.TOGGL, external_id__in=renames.values())
                    .values_list("external_id", flat=True))
        rows = [TimeEntry(id=entry_id, external_id=toggl_id) for entry_id, toggl_id in renames.items()
                if toggl_id not in taken]
        TimeEntry.objects.bulk_update(rows, ["external_id"])
        matched -= len(renames) - len(rows)
    return matched
