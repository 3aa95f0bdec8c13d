"""The operator's console for connectors: status page, runs, cursors, mappings, quarantine, webhook events.

Runs, cursors, quarantined records and webhook events are written by the connectors; here they are read,
and acted on through actions that queue the same tasks the schedules run ("sync now", "retry"). External
references are the one thing typed in: mapping an outside user, board or project to ours.
"""

from collections import defaultdict

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Case, CharField, Count, F, OuterRef, Subquery, Value, When
from django.db.models.functions import Cast, Concat
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from billing.models import ClientMessage, Invoice, Rate
from clients.models import Client, Contract
from integrations.connections import connection_for, missing_settings, setup_hint
from integrations.models import (
    ExternalRef,
    InboundRecord,
    MatchedBy,
    RecordStatus,
    RefKind,
    RunStatus,
    SyncCursor,
    SyncRun,
    WebhookEvent,
)
from integrations.providers import providers_with_streams, streams_of
from projects.models import Project, TaskType, TeamMember


def queue_sync(provider: str, stream: str, trigger: str = "admin") -> None:
    from django_q.tasks import async_task

    async_task("integrations.tasks.sync_provider", provider, stream, trigger,
               task_name=f"sync {provider} {stream}")


def queue_retry(provider: str, record_ids: list[int]) -> None:
    from django_q.tasks import async_task

    async_task("integrations.tasks.retry_quarantined_records", provider, record_ids,
               task_name=f"retry {provider} quarantine")


def _sync_streams(model_admin, request, pairs) -> None:
    pairs = sorted(set(pairs))
    for provider, stream in pairs:
        if not connection_for(provider).enabled:
            model_admin.message_user(request, f"{provider} is not configured: set {setup_hint(provider)}.",
                                     messages.ERROR)
            continue
        queue_sync(provider, stream)
        model_admin.message_user(request, f"Sync of {provider} {stream} queued.", messages.SUCCESS)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the connectors write: looked at, never typed in."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "provider", "stream", "trigger", "status", "finished_at", "created", "updated",
                    "unchanged", "deleted", "conflicts", "quarantined", "skipped", "retries", "errors_excerpt")
    list_filter = ("provider", "status", "trigger")
    date_hierarchy = "started_at"
    actions = ["sync_now"]
    change_list_template = "admin/integrations/syncrun/change_list.html"

    @admin.display(description="errors")
    def errors_excerpt(self, run):
        return run.errors[:120] + ("…" if len(run.errors) > 120 else "")

    @admin.action(description="Sync now (the selected runs' streams)", permissions=["sync"])
    def sync_now(self, request, queryset):
        _sync_streams(self, request, queryset.values_list("provider", "stream"))

    def has_sync_permission(self, request):
        return request.user.has_perm("integrations.change_synccursor")

    def get_urls(self):
        return [
            path("status/", self.admin_site.admin_view(self.status_view), name="integrations_status"),
            path("status/sync/<str:provider>/<str:stream>/", self.admin_site.admin_view(self.sync_view),
                 name="integrations_sync_now"),
            *super().get_urls(),
        ]

    def status_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "title": "Integrations status",
                   "connections": connection_statuses(), "can_sync": self.has_sync_permission(request)}
        return TemplateResponse(request, "admin/integrations/status.html", context)

    def sync_view(self, request, provider: str, stream: str):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_sync_permission(request):
            raise PermissionDenied
        if stream not in {s.name for s in streams_of(provider)}:
            messages.error(request, f"{provider} has no stream {stream}.")
        else:
            _sync_streams(self, request, [(provider, stream)])
        return HttpResponseRedirect(reverse("admin:integrations_status"))


def connection_statuses() -> list[dict]:
    """Per provider: configuration, each stream's last run and cursor, quarantine and mapping backlog.

    A fixed number of queries per stream, whatever the number of runs and records.
    """
    quarantined = dict(InboundRecord.objects.filter(status=RecordStatus.QUARANTINED).values("provider")
                       .annotate(n=Count("id")).values_list("provider", "n"))
    unmapped = dict(ExternalRef.objects.filter(local_id__isnull=True).values("provider")
                    .annotate(n=Count("id")).values_list("provider", "n"))
    pending = dict(WebhookEvent.objects.filter(processed_at__isnull=True).values("provider")
                   .annotate(n=Count("id")).values_list("provider", "n"))
    cursors = {(c.provider, c.stream): c for c in SyncCursor.objects.all()}
    statuses = []
    for provider in providers_with_streams():
        conn = connection_for(provider)
        streams = []
        for stream in streams_of(provider):
            last = SyncRun.objects.filter(provider=provider, stream=stream.name).order_by("-started_at", "-id").first()
            last_good = (SyncRun.objects.filter(provider=provider, stream=stream.name,
                                                status__in=[RunStatus.SUCCEEDED, RunStatus.PARTIAL])
                         .order_by("-started_at").values_list("finished_at", flat=True).first())
            cursor = cursors.get((provider, stream.name))
            streams.append({"name": stream.name, "last": last, "last_good": last_good, "cursor": cursor,
                            "leased": bool(cursor and cursor.leased_until and cursor.leased_until > timezone.now())})
        statuses.append({"provider": provider, "label": conn.label, "enabled": conn.enabled,
                         "base_url": conn.base_url, "missing": missing_settings(provider), "streams": streams,
                         "quarantined": quarantined.get(provider, 0), "unmapped": unmapped.get(provider, 0),
                         "pending_events": pending.get(provider, 0)})
    return statuses


@admin.register(SyncCursor)
class SyncCursorAdmin(admin.ModelAdmin):
    """The operator may rewind a cursor (edit its position) or clear a stuck lease."""

    list_display = ("provider", "stream", "position", "leased_until", "updated_at")
    fields = ("provider", "stream", "position", "leased_until", "updated_at")
    readonly_fields = ("provider", "stream", "updated_at")
    actions = ["sync_now"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Sync now", permissions=["change"])
    def sync_now(self, request, queryset):
        _sync_streams(self, request, queryset.values_list("provider", "stream"))


class ExternalRefForm(forms.ModelForm):
    """Pick the local object in the list of its kind; the id is stored in `local_id`.

    Only members, projects, clients and task types are mapped by hand. The other kinds (contracts, rates,
    invoices, emails) are links the connectors write: saving such a reference keeps its link.
    """

    PICKED_KINDS = (RefKind.MEMBER, RefKind.PROJECT, RefKind.CLIENT, RefKind.TASK_TYPE)

    member = forms.ModelChoiceField(TeamMember.objects.all(), required=False, label="Team member")
    project = forms.ModelChoiceField(Project.objects.select_related("client"), required=False)
    client = forms.ModelChoiceField(Client.objects.all(), required=False)
    task_type = forms.ModelChoiceField(TaskType.objects.all(), required=False, label="Task type")

    class Meta:
        model = ExternalRef
        fields = ("provider", "kind", "external_id", "label")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.local_id:
            self.initial[self.instance.kind] = self.instance.local_id

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        chosen = {name: cleaned.get(name) for name in self.PICKED_KINDS if cleaned.get(name) is not None}
        for name in chosen:
            if name != kind:
                self.add_error(name, f"This reference is a {RefKind(kind).label.lower() if kind else 'other kind'}: "
                                     "leave this empty.")
        return cleaned

    def save(self, commit=True):
        ref = super().save(commit=False)
        if ref.kind in self.PICKED_KINDS:
            local = self.cleaned_data.get(ref.kind)
            ref.local_id = local.pk if local is not None else None
            ref.matched_by = MatchedBy.MANUAL if local is not None else MatchedBy.NONE
        if commit:
            ref.save()
        return ref


class MappedFilter(admin.SimpleListFilter):
    title = "mapped"
    parameter_name = "mapped"

    def lookups(self, request, model_admin):
        return [("no", "Not mapped yet"), ("yes", "Mapped")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(local_id__isnull=True)
        if self.value() == "yes":
            return queryset.filter(local_id__isnull=False)
        return queryset


@admin.register(ExternalRef)
class ExternalRefAdmin(admin.ModelAdmin):
    form = ExternalRefForm
    list_display = ("provider", "kind", "external_id", "label", "local_object", "matched_by", "updated_at")
    list_filter = ("provider", "kind", MappedFilter, "matched_by")
    search_fields = ("external_id", "label")
    fieldsets = [(None, {"fields": ("provider", "kind", "external_id", "label")}),
                 ("Maps to (fill the one of its kind)", {"fields": ("member", "project", "client", "task_type")})]

    def get_queryset(self, request):
        # The local object's name in the same query, whatever its kind (only its kind's subquery runs).
        rate = Concat("contract__number", Value(" · "), Cast("hourly_rate", CharField()), Value(" "),
                      "hourly_rate_currency", Value("/h"), output_field=CharField())
        names = {RefKind.MEMBER: (TeamMember, F("name")), RefKind.PROJECT: (Project, F("code")),
                 RefKind.CLIENT: (Client, F("name")), RefKind.TASK_TYPE: (TaskType, F("name")),
                 RefKind.CONTRACT: (Contract, F("number")), RefKind.RATE: (Rate, rate),
                 RefKind.INVOICE: (Invoice, F("number")), RefKind.EMAIL: (ClientMessage, F("subject")),
                 RefKind.SEND: (ClientMessage, F("subject"))}
        return super().get_queryset(request).annotate(local_name=Case(*[
            When(kind=kind, then=Subquery(model.objects.filter(pk=OuterRef("local_id"))
                                          .annotate(ref_name=name).values("ref_name")[:1]))
            for kind, (model, name) in names.items()], output_field=CharField()))

    @admin.display(description="maps to")
    def local_object(self, ref):
        if ref.local_id is None:
            return format_html('<strong style="color:#ba2121">{}</strong>', "not mapped")
        return getattr(ref, "local_name", None) or f"#{ref.local_id} (missing)"


@admin.register(InboundRecord)
class InboundRecordAdmin(ReadOnlyAdmin):
    list_display = ("last_attempt_at", "provider", "kind", "external_id", "status", "reason_excerpt", "attempts",
                    "first_seen_at")
    list_filter = ("status", "provider", "kind")
    search_fields = ("external_id", "reason")
    actions = ["retry", "discard"]

    @admin.display(description="reason")
    def reason_excerpt(self, record):
        return record.reason[:160] + ("…" if len(record.reason) > 160 else "")

    def has_retry_permission(self, request):
        return request.user.has_perm("integrations.change_inboundrecord")

    @admin.action(description="Retry now (after fixing the mapping)", permissions=["retry"])
    def retry(self, request, queryset):
        by_provider = defaultdict(list)
        for record_id, provider in queryset.filter(status=RecordStatus.QUARANTINED).values_list("id", "provider"):
            by_provider[provider].append(record_id)
        if not by_provider:
            self.message_user(request, "None of the selected records is quarantined.", messages.WARNING)
        for provider, ids in sorted(by_provider.items()):
            queue_retry(provider, ids)
            self.message_user(request, f"Retry of {len(ids)} {provider} records queued.", messages.SUCCESS)

    @admin.action(description="Discard (will not be taken in)", permissions=["retry"])
    def discard(self, request, queryset):
        count = queryset.filter(status=RecordStatus.QUARANTINED).update(status=RecordStatus.DISCARDED,
                                                                        processed_at=timezone.now())
        self.message_user(request, f"{count} records discarded.", messages.SUCCESS)


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "provider", "event_id", "processed_at", "error")
    list_filter = ("provider", ("processed_at", admin.EmptyFieldListFilter))
    search_fields = ("event_id",)
