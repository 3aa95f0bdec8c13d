"""Re-rating when something rating depends on changes outside billing's own screens.

Rates and contract terms queue re-rating where they are edited (admin, API, Salesforce sync). An entry's
rating also reads its project (billable flag, contract), its task type (billable flag), its member (role,
for role rates; own cost rate) and the role (default cost rate). Whoever changes one of those, in the admin,
the API or a script, the entries not yet invoiced are rated again after the change commits, on a worker,
exactly as for a rate change. Invoiced time is never touched (billing.pipeline.reprocess_contracts).

The old row is read once per save of an existing object (admin and API saves, not batch creation), so the
check costs one query for each edit and nothing for new objects.
"""

from django.db.models.signals import post_save, pre_save

from billing.pipeline import queue_reprocessing
from projects.models import EntryStatus, Project, Role, TaskType, TeamMember, TimeEntry

# The fields of each model that rating reads.
RATED_FIELDS = {
    Project: ("billable", "contract_id"),
    TaskType: ("billable",),
    TeamMember: ("role_id", "cost_rate"),
    Role: ("default_cost_rate",),
}


def _open_entries():
    return TimeEntry.objects.exclude(status=EntryStatus.INVOICED)


def _contracts_to_rerate(instance, before) -> set[int]:
    if isinstance(instance, Project):
        if not _open_entries().filter(project=instance).exists():
            return set()
        return {before.contract_id, instance.contract_id}
    if isinstance(instance, TaskType):
        entries = _open_entries().filter(task_type=instance)
    elif isinstance(instance, TeamMember):
        entries = _open_entries().filter(member=instance)
    else:  # a role's default cost: its members who have no cost rate of their own
        entries = _open_entries().filter(member__role=instance, member__cost_rate__isnull=True)
    return set(entries.values_list("project__contract_id", flat=True).distinct())


def remember_rated_fields(sender, instance, raw=False, **kwargs):
    instance._rated_before = None
    if instance.pk is not None and not raw:
        instance._rated_before = sender.objects.filter(pk=instance.pk).first()


def rerate_if_changed(sender, instance, created=False, raw=False, **kwargs):
    before = getattr(instance, "_rated_before", None)
    instance._rated_before = None
    if created or raw or before is None:
        return
    if all(getattr(before, name) == getattr(instance, name) for name in RATED_FIELDS[sender]):
        return
    contract_ids = _contracts_to_rerate(instance, before)
    if contract_ids:
        queue_reprocessing(contract_ids=contract_ids)


def connect() -> None:
    for model in RATED_FIELDS:
        pre_save.connect(remember_rated_fields, sender=model, dispatch_uid=f"rerating-before-{model.__name__}")
        post_save.connect(rerate_if_changed, sender=model, dispatch_uid=f"rerating-after-{model.__name__}")
