"""Turning a provider's ids (users, projects, boards, tasks) into ours, through ExternalRef rows.

For a batch: one query reads the refs it names; ids never seen before are described by the provider
(`describe`, called only for those, so it costs no API calls once everything is known), stored, and
matched to a local object by email, code or name when exactly one fits. An id nothing matches keeps an
empty ref that the operator maps in the admin; the record that needs it waits in the quarantine.
"""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from clients.models import Client
from integrations.models import ExternalRef, MatchedBy, Provider, RefKind
from projects.models import Project, TaskType, TeamMember

KIND_MODELS = {RefKind.MEMBER: TeamMember, RefKind.PROJECT: Project, RefKind.CLIENT: Client,
               RefKind.TASK_TYPE: TaskType}
# Per kind: (what the provider told us, our field) in the order tried; the first unambiguous match wins.
MATCH_ORDER = {
    RefKind.MEMBER: [("email", "email")],
    RefKind.PROJECT: [("code", "code"), ("name", "code"), ("name", "name")],
    RefKind.CLIENT: [("code", "code"), ("name", "code"), ("name", "name")],
    RefKind.TASK_TYPE: [("code", "code"), ("name", "code"), ("name", "name")],
}
MATCHED_BY = {"email": MatchedBy.EMAIL, "code": MatchedBy.CODE, "name": MatchedBy.NAME}
OUR_NAMES = {RefKind.MEMBER: "team member", RefKind.PROJECT: "project", RefKind.CLIENT: "client",
             RefKind.TASK_TYPE: "task type"}


@dataclass
class Described:
    """What a provider says about one of its objects."""

    label: str
    email: str = ""
    code: str = ""
    name: str = ""

    def details(self) -> dict:
        return {key: value for key, value in (("email", self.email), ("code", self.code), ("name", self.name))
                if value}


def _key(value: str) -> str:
    return " ".join(str(value).split()).casefold()


def _match(kind: str, refs: list[ExternalRef]) -> None:
    """Set local_id and matched_by on the refs one local object fits unambiguously (one query)."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for ref in refs:
        for detail, field in MATCH_ORDER[kind]:
            if ref.details.get(detail):
                wanted[field].add(str(ref.details[detail]))
    if not wanted:
        return
    model = KIND_MODELS[kind]
    condition = Q(pk__in=[])
    annotations = {}
    for field, values in wanted.items():
        annotations[f"{field}_key"] = Lower(field)
        condition |= Q(**{f"{field}__in": values}) | Q(**{f"{field}_key__in": {v.lower() for v in values}})
    candidates = list(model.objects.annotate(**annotations).filter(condition))
    index: dict[tuple[str, str], list] = defaultdict(list)
    for obj in candidates:
        for field in wanted:
            index[(field, _key(getattr(obj, field)))].append(obj)
    for ref in refs:
        for detail, field in MATCH_ORDER[kind]:
            value = ref.details.get(detail)
            found = index.get((field, _key(value)), []) if value else []
            if len(found) > 1:
                # Prefer the one live project over archived namesakes.
                found = [obj for obj in found if not getattr(obj, "is_archived", False)]
            if len(found) == 1:
                # Recorded by our side of the match: "code" means it matched the project's code.
                ref.local_id, ref.matched_by = found[0].pk, MATCHED_BY[field]
                break


def resolve_refs(*, provider: str, kind: str, external_ids: set[str],
                 describe: Callable[[set[str]], dict[str, Described]] | None = None) -> dict[str, ExternalRef]:
    """The ref of every id (stored, described and matched where new); `local_id` is None while unmapped."""
    external_ids = {str(i) for i in external_ids if i not in (None, "")}
    if not external_ids:
        return {}
    refs = {ref.external_id: ref for ref in
            ExternalRef.objects.filter(provider=provider, kind=kind, external_id__in=external_ids)}
    missing = external_ids - refs.keys()
    described = describe(missing) if (missing and describe) else {}
    new = [ExternalRef(provider=provider, kind=kind, external_id=external_id,
                       label=(described[external_id].label if external_id in described else "")[:255],
                       details=described[external_id].details() if external_id in described else {})
           for external_id in sorted(missing)]
    unmapped = [ref for ref in refs.values() if ref.local_id is None]
    _match(kind, unmapped + new)
    if new:
        # Another worker may have stored the same id meanwhile: theirs is as good as ours.
        ExternalRef.objects.bulk_create(new, ignore_conflicts=True)
    now_matched = [ref for ref in unmapped if ref.local_id is not None]
    if now_matched:
        for ref in now_matched:
            ref.updated_at = timezone.now()
        ExternalRef.objects.bulk_update(now_matched, ["local_id", "matched_by", "updated_at"])
    refs.update({ref.external_id: ref for ref in new})
    return refs


def unmapped_reason(provider: str, kind: str, external_id: str, ref: ExternalRef | None, what: str) -> str:
    """Why a record waits: which outside object is not mapped, and how to fix it."""
    provider_label = Provider(provider).label
    shown = f"{what} {external_id}"
    if ref is not None and ref.label:
        shown += f" ({ref.label})"
    hint = {RefKind.MEMBER: "no team member has its email",
            RefKind.PROJECT: "no project has its name or code",
            RefKind.TASK_TYPE: "no task type has its name or code",
            RefKind.CLIENT: "no client has its name or code"}[kind]
    return (f"{provider_label} {shown} is not mapped to a {OUR_NAMES[kind]} ({hint}): map it under "
            f"Integrations › External references; the entry is taken in at the next sync.")
