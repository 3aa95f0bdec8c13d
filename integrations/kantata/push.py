"""Kantata out: each budgeted project's budget figures on its Kantata workspace.

Pulled from what the pipeline keeps current (projects.ProjectBudget): each run reads the budgeted
projects in id order, works out what their workspaces should show, and sends only what differs from
what it sent last (a fingerprint on the project's ExternalRef), so a quiet day costs no API calls.

- The workspace is the one in the stored ref; else the one titled like the project (exactly one, archived
  included); else a new one. Kantata has no idempotency key, so the title lookup runs before every create:
  a create whose answer was lost is found and linked, never made twice.
- `budgeted`, `price` (whole currency units: Kantata's write format), `currency` and the project dates are
  set; with KANTATA_FIGURE_FIELDS, our figures (used, remaining, burn, forecast run-out...) also go to
  workspace custom fields, currencies written as "[cents, CODE]".
"""

import hashlib
import json
from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Q
from django.utils import timezone

from integrations.http import PermanentError
from integrations.kantata.client import KantataClient, option
from integrations.models import ExternalRef, MatchedBy, Provider, RefKind
from integrations.outbound import about_the_record, create_once
from integrations.providers import stream_of
from integrations.runs import SyncContext
from projects.models import Project, ProjectBudget, ProjectStatus

# This stream's entry in the registry (integrations/providers.py).
STREAM = stream_of(Provider.KANTATA, "budgets")
BATCH = 100
# Our figures that can go to workspace custom fields, and the custom field type each needs.
FIGURES = {
    "amount_used": "currency", "remaining_amount": "currency", "revenue": "currency", "cost": "currency",
    "burn_weekly_amount": "currency", "hours_used": "number", "remaining_hours": "number",
    "burn_weekly_hours": "number", "percent_used": "number", "margin_percent": "number",
    "forecast_run_out": "date",
}


def figure_fields(raw) -> dict[str, str]:
    """KANTATA_FIGURE_FIELDS ("amount_used=123,forecast_run_out=456", or a dict) as {figure: field id}."""
    if not raw:
        return {}
    items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
    pairs = raw.items() if isinstance(raw, dict) else (item.split("=", 1) for item in items if item.strip())
    mapping = {}
    for figure, field_id in pairs:
        figure, field_id = str(figure).strip(), str(field_id).strip()
        if figure not in FIGURES or not field_id:
            raise PermanentError(f"kantata: KANTATA_FIGURE_FIELDS names {figure!r} = {field_id!r}; figures "
                                 f"are {', '.join(FIGURES)}, each with a custom field id",
                                 provider=Provider.KANTATA)
        mapping[figure] = field_id
    return mapping


def _cents(amount: Decimal) -> int:
    return int((amount * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def _custom_value(value, value_type: str, currency: str):
    if value is None:
        return None
    if value_type == "currency":
        return f"[{_cents(Decimal(value))}, {currency}]"
    if value_type == "date":
        return value.isoformat()
    return float(value)


def workspace_fields(project: Project, budget: ProjectBudget | None, figures: dict[str, str]) -> dict:
    """What the project's workspace should show."""
    currency = project.contract.currency
    fields: dict = {
        "budgeted": True, "currency": currency, "start_date": project.start_date.isoformat(),
        "due_date": project.end_date.isoformat() if project.end_date else None,
        # Kantata takes the budget in whole currency units.
        "price": (int(project.budget_amount.amount.quantize(Decimal("1"), rounding=ROUND_HALF_UP))
                  if project.budget_amount is not None else None),
    }
    if figures:
        fields["custom_fields"] = [
            {"custom_field_id": field_id,
             "value": _custom_value(getattr(budget, figure, None), FIGURES[figure], currency)}
            for figure, field_id in sorted(figures.items())]
    return fields


def fingerprint(fields: dict) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:32]


def budgeted_projects():
    return (Project.objects.filter(Q(budget_amount__isnull=False) | Q(budget_hours__isnull=False))
            .exclude(status=ProjectStatus.ARCHIVED).select_related("contract", "budget").order_by("id"))


def _budget_of(project: Project) -> ProjectBudget | None:
    try:
        return project.budget
    except ObjectDoesNotExist:
        return None


def find_or_create_workspace(client: KantataClient, project: Project, fields: dict) -> tuple[dict, bool]:
    def lookup():
        found = client.titled(project.name)
        if len(found) > 1:
            raise PermanentError(f"kantata: {len(found)} workspaces are titled {project.name!r}: map the "
                                 "right one under Integrations › External references",
                                 provider=Provider.KANTATA, status=409)
        return found[0] if found else None

    return create_once(client.session, lookup=lookup, create=lambda: client.create_workspace({
        "title": project.name, "creator_role": "maven", "description": f"Billable project {project.code}",
        **fields}))


def _link(project: Project, workspace: dict, created: bool) -> ExternalRef:
    ref, _ = ExternalRef.objects.update_or_create(
        provider=Provider.KANTATA, kind=RefKind.PROJECT, external_id=str(workspace["id"]),
        defaults={"local_id": project.id, "label": str(workspace.get("title", ""))[:255],
                  "details": {"name": workspace.get("title", "")},
                  "matched_by": MatchedBy.MANUAL if created else MatchedBy.NAME})
    return ref


def push_project(client: KantataClient, project: Project, ref: ExternalRef | None,
                 fields: dict) -> tuple[str, ExternalRef]:
    """Send the fields to the project's workspace; ("created" | "updated", its ref)."""
    if ref is not None:
        try:
            client.update_workspace(ref.external_id, fields)
            return "updated", ref
        except PermanentError as error:
            if error.status != 404:
                raise
            # Deleted in Kantata: forget it and find (or make) the project's workspace again.
            ref.delete()
    workspace, created = find_or_create_workspace(client, project, fields)
    ref = _link(project, workspace, created)
    if not created:
        client.update_workspace(ref.external_id, fields)
    return ("created" if created else "updated"), ref


def push_budgets(ctx: SyncContext) -> None:
    client = KantataClient(ctx.connection)
    ctx.track(client.session)
    figures = figure_fields(option(ctx.connection, "figure_fields"))
    last_id = 0
    while batch := list(budgeted_projects().filter(id__gt=last_id)[:BATCH]):
        last_id = batch[-1].id
        refs = {ref.local_id: ref for ref in ExternalRef.objects.filter(
            provider=Provider.KANTATA, kind=RefKind.PROJECT, local_id__in=[p.id for p in batch])}
        for project in batch:
            fields = workspace_fields(project, _budget_of(project), figures)
            stamp = fingerprint(fields)
            ref = refs.get(project.id)
            if ref is not None and ref.details.get("pushed") == stamp:
                ctx.add(unchanged=1)
                continue
            try:
                outcome, ref = push_project(client, project, ref, fields)
            except PermanentError as error:
                if not about_the_record(error):
                    raise
                ctx.note(f"Project {project.code}: the budget was not sent to Kantata: {error}")
                continue
            ref.details = {**ref.details, "pushed": stamp, "pushed_at": timezone.now().isoformat()}
            ref.save(update_fields=["details", "updated_at"])
            ctx.add(**{outcome: 1})
        ctx.checkpoint()
        ctx.say(f"projects up to #{last_id}: {ctx.run.created} workspaces created, {ctx.run.updated} "
                f"updated, {ctx.run.unchanged} unchanged")
