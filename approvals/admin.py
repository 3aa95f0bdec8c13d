"""Admin for the approval policy, the approval queue (approvers' main screen) and the approval audit trail.

The queue is the ApprovalRequest changelist: pending requests, oldest first, with their reasons. Every
decision (the bulk actions and the buttons on a request's page) goes through
`approval_requests_decide`, which checks who may decide what, refuses one's own time, records who, when
and why, and emails the member a rejection. The admin never edits a request's fields.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import OuterRef, Q, Subquery
from django.db.models.lookups import IsNull
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from approvals.models import ApprovalEvent, ApprovalPolicy, ApprovalReason, ApprovalRequest, ApprovalStatus
from approvals.services import DecisionResult, approval_requests_decide
from projects.access import sees_all_time
from projects.models import Project, TimeEntry


def confirmation_page(model_admin: admin.ModelAdmin, request, *, title: str, intro: str, items: list[str],
                      submit_label: str, hidden: list[tuple[str, object]], text_field: str = "",
                      text_label: str = "", text_help: str = "", text_error: str = "", form_action: str = "",
                      cancel_url: str = "") -> TemplateResponse:
    """The page an action shows before it acts: what it acts on, and the text it needs (a reason...)."""
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "title": title, "intro": intro, "items": items, "submit_label": submit_label, "hidden": hidden,
        "text_field": text_field, "text_label": text_label, "text_help": text_help, "text_error": text_error,
        "text_value": request.POST.get(text_field, "") if text_field else "",
        "form_action": form_action, "cancel_url": cancel_url,
    }
    return TemplateResponse(request, "admin/billable/confirm_action.html", context)


def action_hidden_fields(action: str, objects) -> list[tuple[str, object]]:
    """What a confirmation page posts back to the changelist so the same action runs on the same rows."""
    return [("action", action), ("post", "yes"),
            *[(helpers.ACTION_CHECKBOX_NAME, obj.pk) for obj in objects]]


def error_text(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    return str(error) or "This action is not allowed."


def money_text(money) -> str:
    return f"{money.amount:,.2f} {money.currency}" if money is not None else "—"


class PlainActionCheckbox:
    """A changelist's row checkboxes written out directly, the same HTML as Django's.

    Django renders each one through the form widget templates; on a 100-row page that is a large
    share of the page's time.
    """

    def action_checkbox(self, obj) -> str:
        label = format_html(gettext("Select this object for an action - {}"), str(obj))
        return format_html('<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
                           helpers.ACTION_CHECKBOX_NAME, str(obj.pk), label)


class ApprovalPolicyForm(forms.ModelForm):
    class Meta:
        model = ApprovalPolicy
        fields = ["name", "is_active", "auto_approve_max_amount", "auto_approve_max_minutes", "budget_review_percent"]

    def clean_is_active(self) -> bool:
        is_active = self.cleaned_data["is_active"]
        if is_active:
            current = ApprovalPolicy.objects.filter(is_active=True).exclude(pk=self.instance.pk).first()
            if current is not None:
                raise ValidationError(f"“{current.name}” is the policy in force; deactivate it first.")
        return is_active


@admin.register(ApprovalPolicy)
class ApprovalPolicyAdmin(admin.ModelAdmin):
    form = ApprovalPolicyForm
    list_display = ["name", "is_active", "auto_approve_max_amount", "auto_approve_max_minutes",
                    "budget_review_percent", "updated_at"]
    list_filter = ["is_active"]
    search_fields = ["name"]
    readonly_fields = ["updated_at"]

    def has_delete_permission(self, request, obj=None) -> bool:
        # Approval needs a policy in force: only retired ones may go.
        return super().has_delete_permission(request, obj) and (obj is None or not obj.is_active)


class QueueStatusFilter(admin.SimpleListFilter):
    """The queue opens on what waits for a decision; "All" shows the decided ones too."""

    title = "status"
    parameter_name = "status"
    ALL = "all"

    def lookups(self, request, model_admin):
        return [*ApprovalStatus.choices, (self.ALL, "All")]

    def queryset(self, request, queryset):
        status = self.value() or ApprovalStatus.PENDING
        return queryset if status == self.ALL else queryset.filter(status=status)

    def choices(self, changelist):
        current = self.value() or ApprovalStatus.PENDING
        for value, label in self.lookup_choices:
            yield {"selected": current == value, "display": label,
                   "query_string": changelist.get_query_string({self.parameter_name: value})}


class ReasonFilter(admin.SimpleListFilter):
    title = "reason"
    parameter_name = "reason"

    def lookups(self, request, model_admin):
        return ApprovalReason.choices

    def queryset(self, request, queryset):
        reason = self.value()
        if reason is None:
            return queryset
        # `reasons` is a JSON list of codes. Matching the quoted code in its text works on SQLite and
        # PostgreSQL alike (JSON containment does not exist on SQLite), and no code is part of another.
        return queryset.filter(reasons__icontains=f'"{reason}"')


def _with_time_in(queue, path: str) -> Q:
    """Clients, projects or members (at `path` from a request) with at least one request in `queue`.

    Found by probing for the first request of each one's time: an index lookup per row of a small
    table, where a DISTINCT over the requests would read the whole queue and its entries. "(first
    request) IS NOT NULL" rather than EXISTS: the database plans the LIMIT 1 as a probe, where it may
    turn an EXISTS into a join over every entry of the member or project.
    """
    # No ordering: any request will do, and sorting would read them all.
    first_request = queue.filter(**{path: OuterRef("pk")}).order_by().values("pk")[:1]
    return Q(IsNull(Subquery(first_request), False))


class InQueueFilter(admin.RelatedFieldListFilter):
    """A filter that offers only the clients, projects or members with time in the viewer's queue.

    Like Django's RelatedOnlyFieldListFilter, without its DISTINCT over every request on each page view;
    and each choice loads only the fields its label (the model's __str__) reads, not whole rows.
    """

    label_fields: tuple[str, ...] = ()

    def field_choices(self, field, request, model_admin):
        choices = (field.related_model._default_manager.filter(self.in_queue(model_admin.get_queryset(request)))
                   .only(*self.label_fields)
                   .order_by(*(self.field_admin_ordering(field, request, model_admin)
                               or field.related_model._meta.ordering)))
        return [(choice.pk, str(choice)) for choice in choices]

    def in_queue(self, queue) -> Q:
        return _with_time_in(queue, self.field_path)

    # The link of each choice: Django builds the same query string afresh for each of hundreds of projects
    # and members; here it is built once, with a marker where the choice's id goes.
    CHOICE_MARKER = "choiceidmarker"

    def choices(self, changelist):
        template = changelist.get_query_string({self.lookup_kwarg: self.CHOICE_MARKER}, [self.lookup_kwarg_isnull])
        if changelist.add_facets or self.include_empty_choice or template.count(self.CHOICE_MARKER) != 1:
            yield from super().choices(changelist)  # counts per choice, or a query the marker cannot stand in
            return
        yield {"selected": self.lookup_val is None and not self.lookup_val_isnull,
               "query_string": changelist.get_query_string(remove=[self.lookup_kwarg, self.lookup_kwarg_isnull]),
               "display": gettext("All")}
        for pk, label in self.lookup_choices:
            yield {"selected": self.lookup_val is not None and str(pk) in self.lookup_val,
                   "query_string": template.replace(self.CHOICE_MARKER, str(pk)), "display": label}


class MemberInQueueFilter(InQueueFilter):
    label_fields = ("name",)


class ProjectInQueueFilter(InQueueFilter):
    label_fields = ("code", "name")


class ClientInQueueFilter(InQueueFilter):
    """Clients with time in the queue: the clients of the projects with time in it. (Probing the entries
    per client directly would search them by project one client at a time.)"""

    label_fields = ("name", "code")

    def in_queue(self, queue) -> Q:
        projects = Project.objects.filter(_with_time_in(queue, "time_entry__project")).values("client_id")
        return Q(pk__in=projects)


class ListColumnsChangeList(ChangeList):
    """A changelist that joins only the tables its columns show (the admin's list_select_related).

    An admin's queryset may join more for an object's own page (the approval queue's also joins the task
    type, the decider and the policy). PostgreSQL takes far longer to choose a join order for eight
    tables than for five: tens of milliseconds on each page view, against one or two to read the page.
    """

    def get_queryset(self, request, exclude_parameters=None):
        queryset = super().get_queryset(request, exclude_parameters)
        return queryset.select_related(None).select_related(*self.list_select_related)


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(PlainActionCheckbox, admin.ModelAdmin):
    """The approval queue."""

    list_display = ["member", "client", "project", "work_date", "hours", "amount", "reason_list", "age", "status"]
    list_display_links = ["member", "work_date"]
    # Only what the columns show: each table more in the join costs the database more planning than
    # reading the page itself (see ListColumnsChangeList).
    list_select_related = ["time_entry__member", "time_entry__project__client"]
    list_filter = [QueueStatusFilter, ReasonFilter,
                   ("time_entry__project__client", ClientInQueueFilter), ("time_entry__project", ProjectInQueueFilter),
                   ("time_entry__member", MemberInQueueFilter)]
    search_fields = ["time_entry__member__name", "time_entry__project__code", "time_entry__project__name",
                     "time_entry__project__client__name", "time_entry__description"]
    # Oldest first: whoever has waited longest is decided first.
    ordering = ["requested_at", "id"]
    # The queue grows with every held entry: skip the second COUNT(*) over all requests.
    show_full_result_count = False
    actions = ["approve_selected", "reject_selected"]
    fields = ["member", "client", "project", "task_type", "work_date", "hours", "amount", "description",
              "reason_list", "status", "requested_at", "policy", "decided_by", "decided_at", "note",
              "decision_history"]
    readonly_fields = fields

    def get_changelist(self, request, **kwargs):
        return ListColumnsChangeList

    def get_queryset(self, request):
        # A request's page and the actions show all of these; the list joins fewer (ListColumnsChangeList).
        queryset = super().get_queryset(request).select_related(
            "time_entry__member", "time_entry__project__client", "time_entry__task_type", "decided_by", "policy")
        if sees_all_time(request.user):
            # No "entry in (every entry)" subquery on the queue's every query for those who see everything.
            return queryset
        # Whoever may see an entry may see its approval request, and nobody else.
        return queryset.filter(time_entry__in=TimeEntry.objects.visible_to(request.user).values("id"))

    # --- Nobody edits a request: decisions only through the service --------------------------------------

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_decide_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("approvals.decide_approvals")

    # --- Columns: everything comes from the rows' joined entry, member, project and client --------------

    @admin.display(description="Member", ordering="time_entry__member__name")
    def member(self, approval: ApprovalRequest):
        return approval.time_entry.member

    @admin.display(description="Client", ordering="time_entry__project__client__name")
    def client(self, approval: ApprovalRequest):
        return approval.time_entry.project.client

    @admin.display(description="Project", ordering="time_entry__project__code")
    def project(self, approval: ApprovalRequest):
        return approval.time_entry.project

    @admin.display(description="Task type", ordering="time_entry__task_type__name")
    def task_type(self, approval: ApprovalRequest):
        return approval.time_entry.task_type

    @admin.display(description="Work date", ordering="time_entry__work_date")
    def work_date(self, approval: ApprovalRequest):
        return approval.time_entry.work_date

    @admin.display(description="Hours", ordering="time_entry__minutes")
    def hours(self, approval: ApprovalRequest):
        return approval.time_entry.hours

    @admin.display(description="Amount", ordering="time_entry__amount")
    def amount(self, approval: ApprovalRequest) -> str:
        return money_text(approval.time_entry.amount)

    @admin.display(description="Description")
    def description(self, approval: ApprovalRequest) -> str:
        return approval.time_entry.description or "—"

    @admin.display(description="Reasons")
    def reason_list(self, approval: ApprovalRequest) -> str:
        if approval.reason_messages:
            return " ".join(approval.reason_messages)
        labels = dict(ApprovalReason.choices)
        return "; ".join(labels.get(code, code) for code in approval.reasons) or "—"

    @admin.display(description="Age", ordering="requested_at")
    def age(self, approval: ApprovalRequest) -> str:
        return timesince(approval.requested_at, depth=1)

    @admin.display(description="Decisions")
    def decision_history(self, approval: ApprovalRequest):
        events = approval.events.select_related("actor")
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((f"{event.created_at:%Y-%m-%d %H:%M}", event.get_action_display(),
              event.get_status_before_display(), event.actor or "the approval policy", event.note or "—")
             for event in events),
        )
        if not rows:
            return "No decision yet."
        return format_html("<table><thead><tr><th>When</th><th>Decision</th><th>Was</th><th>By</th>"
                           "<th>Note</th></tr></thead><tbody>{}</tbody></table>", rows)

    # --- Decisions ----------------------------------------------------------------------------------------

    def _report(self, request, result: DecisionResult, approve: bool) -> None:
        if result.decided:
            count = len(result.decided)
            entries = f"{count} entr{'y' if count == 1 else 'ies'}"
            if approve:
                self.message_user(request, f"Approved {entries}.", messages.SUCCESS)
            else:
                self.message_user(request, f"Rejected {entries}; each member is emailed the reason.",
                                  messages.SUCCESS)
        for _, refusal in result.refused:
            self.message_user(request, f"Not decided: {refusal}", messages.WARNING)
        if not result.decided and not result.refused:
            self.message_user(request, "Nothing was decided: none of the selected entries is in your queue.",
                              messages.WARNING)

    def _decide(self, request, ids: list[int], approve: bool, note: str = "") -> DecisionResult | None:
        """Run the service and report; None when it refused the whole request (shown as an error)."""
        try:
            result = approval_requests_decide(request_ids=ids, user=request.user, approve=approve, note=note)
        except (PermissionDenied, ValidationError) as error:
            self.message_user(request, error_text(error), messages.ERROR)
            return None
        self._report(request, result, approve)
        return result

    def _chosen(self, request, queryset) -> list[ApprovalRequest]:
        """The selected requests this user may see, whatever their status is by now.

        The queue's default status filter would silently drop a request someone else decided while the
        page was open; taking the selection as is lets the service say why it is not decided again.
        """
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if request.POST.get("select_across") in ("1", "True", "true") or not selected:
            return list(queryset)
        return list(self.get_queryset(request).filter(pk__in=selected))

    @staticmethod
    def _item(approval: ApprovalRequest) -> str:
        entry = approval.time_entry
        return (f"{entry.member} · {entry.project.code} · {entry.work_date} · {entry.hours} h · "
                f"{money_text(entry.amount)}")

    @admin.action(description="Approve selected time", permissions=["decide"])
    def approve_selected(self, request, queryset) -> None:
        self._decide(request, [approval.pk for approval in self._chosen(request, queryset)], approve=True)

    @admin.action(description="Reject selected time…", permissions=["decide"])
    def reject_selected(self, request, queryset):
        chosen = self._chosen(request, queryset)
        reason = request.POST.get("reason", "").strip()
        if request.POST.get("post") and reason:
            self._decide(request, [approval.pk for approval in chosen], approve=False, note=reason)
            return None
        # First the page asking why; again, with the error, when it came back without a reason.
        return confirmation_page(
            self, request, title="Reject time entries",
            intro="These entries will be rejected and not billed. Each member is emailed the reason.",
            items=[self._item(approval) for approval in chosen], submit_label="Reject",
            hidden=action_hidden_fields("reject_selected", chosen), text_field="reason",
            text_label="Reason", text_help="The member sees this reason.",
            text_error="Say why the time is rejected." if request.POST.get("post") else "",
        )

    # --- Single decisions from a request's page ----------------------------------------------------------

    def get_urls(self):
        own = [
            path("<path:object_id>/approve/", self.admin_site.admin_view(require_POST(self.approve_view)),
                 name="approvals_approvalrequest_approve"),
            path("<path:object_id>/reject/", self.admin_site.admin_view(require_POST(self.reject_view)),
                 name="approvals_approvalrequest_reject"),
        ]
        # Before the defaults: their "<path:object_id>/" catch-all would swallow these.
        return own + super().get_urls()

    def _decidable(self, request, object_id: str) -> ApprovalRequest | None:
        if not self.has_decide_permission(request):
            raise PermissionDenied
        return self.get_object(request, unquote(object_id))

    def _change_url(self, approval_id) -> str:
        return reverse("admin:approvals_approvalrequest_change", args=[approval_id])

    def _after_decision(self, request, approval_id, result: DecisionResult | None) -> HttpResponseRedirect:
        # Decided: back to the queue for the next one; refused: stay on the request to see why.
        if result is not None and result.decided:
            return HttpResponseRedirect(reverse("admin:approvals_approvalrequest_changelist"))
        return HttpResponseRedirect(self._change_url(approval_id))

    def approve_view(self, request, object_id: str):
        approval = self._decidable(request, object_id)
        if approval is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)
        result = self._decide(request, [approval.pk], approve=True, note=request.POST.get("note", ""))
        return self._after_decision(request, approval.pk, result)

    def reject_view(self, request, object_id: str):
        approval = self._decidable(request, object_id)
        if approval is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)
        # The request's page sends its note; the confirmation page below sends the reason.
        reason = (request.POST.get("reason") or request.POST.get("note") or "").strip()
        if not reason:
            return confirmation_page(
                self, request, title="Reject a time entry",
                intro="This entry will be rejected and not billed. The member is emailed the reason.",
                items=[self._item(approval)], submit_label="Reject", hidden=[("post", "yes")],
                text_field="reason", text_label="Reason", text_help="The member sees this reason.",
                text_error="Say why the time is rejected." if request.POST.get("post") else "",
                form_action=reverse("admin:approvals_approvalrequest_reject", args=[approval.pk]),
                cancel_url=self._change_url(approval.pk),
            )
        result = self._decide(request, [approval.pk], approve=False, note=reason)
        return self._after_decision(request, approval.pk, result)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "can_decide": self.has_decide_permission(request)}
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(ApprovalEvent)
class ApprovalEventAdmin(admin.ModelAdmin):
    """The audit trail: written by the approval services only, never edited."""

    list_display = ["created_at", "request", "action", "status_before", "actor", "note"]
    list_select_related = ["request", "actor"]
    list_filter = ["action", "status_before"]
    search_fields = ["note", "actor__username", "request__time_entry__member__name"]
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        visible = TimeEntry.objects.visible_to(request.user).values("id")
        return super().get_queryset(request).filter(request__time_entry__in=visible)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
