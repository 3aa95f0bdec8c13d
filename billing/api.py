"""REST API v1 for rates, invoices (read-only, with their lifecycle actions) and billing runs.

Every write calls one billing service; what a service refuses (ValidationError, InvoiceStateError)
becomes a 400 through the shared exception handler, a BillingConflict a 409.
"""

import json

from django.db import transaction
from django.db.models import Prefetch, Q
from django.http import HttpResponse
from django.utils.http import content_disposition_header
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, permissions, renderers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from billing.credit_notes import CreditRequest, credit_note_create
from billing.invoicing import BillingConflict, billing_run_create, invoice_draft_delete
from billing.lifecycle import invoice_finalize, invoice_mark_paid, invoice_pdf, invoice_send, invoice_void
from billing.models import (
    Allocation,
    BillingRun,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
    Rate,
)
from billing.pipeline import queue_reprocessing
from billing.review import invoice_send_preview
from clients.models import Client
from config.api import (
    CurrencyField,
    IdFilter,
    ModelCheckedSerializer,
    ModelPermissions,
    money_fields,
)

SCOPE_FIELDS = ("project", "member", "role", "task_type")


# Rates


class RateSerializer(ModelCheckedSerializer):
    """The model's own rules (Rate.clean, run by full_clean) refuse overlaps, bad scopes and currencies."""

    hourly_rate_currency = CurrencyField(required=False, help_text="Defaults to the contract's currency.")
    level = serializers.IntegerField(read_only=True, help_text=(
        "Precedence: 1 member and task type, 2 member, 3 role and task type, 4 task type, 5 role, "
        "6 contract default; the lowest level with a candidate wins."))

    class Meta:
        model = Rate
        fields = ["id", "contract", *SCOPE_FIELDS, *money_fields("hourly_rate"), "effective_from", "effective_to",
                  "level"]
        extra_kwargs = {"effective_to": {"help_text": "Inclusive; empty means open-ended."}}

    def money_currency(self, name, attrs):
        # Rates are per hour in the contract's currency.
        contract = attrs["contract"] if "contract" in attrs else self.instance.contract
        return contract.currency


class RateFilter(filters.FilterSet):
    effective_on = filters.DateFilter(method="filter_effective_on", help_text="Rates in effect on this day.")

    class Meta:
        model = Rate
        fields = ["contract", *SCOPE_FIELDS, "effective_on"]

    def filter_effective_on(self, queryset, name, day):
        return queryset.filter(Q(effective_to__isnull=True) | Q(effective_to__gte=day), effective_from__lte=day)


class RateViewSet(viewsets.ModelViewSet):
    """Rates of contracts. Every change re-rates the contract's entries not yet invoiced, from its first day."""

    queryset = Rate.objects.all()
    serializer_class = RateSerializer
    permission_classes = [ModelPermissions]
    filterset_class = RateFilter

    # Entries dated before a rate's first day cannot use it, so re-rating starts there.

    @transaction.atomic
    def perform_create(self, serializer):
        rate = serializer.save()
        queue_reprocessing(contract_ids=[rate.contract_id], from_date=rate.effective_from)

    @transaction.atomic
    def perform_update(self, serializer):
        contract_id, starts = serializer.instance.contract_id, serializer.instance.effective_from
        rate = serializer.save()
        # Moved to another contract or an earlier day: both the old and the new place are re-rated.
        queue_reprocessing(contract_ids=[contract_id, rate.contract_id], from_date=min(starts, rate.effective_from))

    @transaction.atomic
    def perform_destroy(self, instance):
        contract_id, starts = instance.contract_id, instance.effective_from
        instance.delete()
        queue_reprocessing(contract_ids=[contract_id], from_date=starts)


# Permissions of invoices and billing runs: one permission for reading, one per kind of action.


class ActionPermissions(permissions.BasePermission):
    """The view's `read_permission` for everything, plus what `action_permissions` names for an action."""

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return False
        needed = view.action_permissions.get(view.action)
        if not user.has_perm(view.read_permission):
            self.message = READ_REFUSALS[view.read_permission]
            return False
        if needed and not user.has_perm(needed):
            self.message = ACTION_REFUSALS[needed]
            return False
        return True


READ_REFUSALS = {
    "billing.view_invoice": "Your account cannot see invoices.",
    "billing.view_billingrun": "Your account cannot see billing runs.",
}
ACTION_REFUSALS = {
    "billing.run_billing": "Running billing and changing drafts needs the billing.run_billing permission.",
    "billing.finalize_invoice": ("Finalizing, sending, marking paid, voiding and crediting invoices needs the "
                                 "billing.finalize_invoice permission."),
}


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


# Invoices


class InvoiceLineSerializer(serializers.ModelSerializer):
    time_entries = serializers.SerializerMethodField(help_text="Ids of the time entries billed on this line.")

    class Meta:
        model = InvoiceLine
        fields = ["id", "position", "kind", "description", "quantity", "unit_rate", "amount", "minutes", "project",
                  "contract", "time_entries"]
        read_only_fields = fields
        extra_kwargs = {
            "quantity": {"help_text": "Hours (2 places) for time lines, 1 for a fee; negative on a credit note."},
            "minutes": {"help_text": "The billable minutes behind a time line (exact, unlike the quantity)."},
        }

    def get_time_entries(self, line) -> list[int]:
        # From the prefetched allocations (see `invoices_for_api`): no query per line.
        return sorted({allocation.time_entry_id for allocation in line.allocations.all()})


class InvoiceSerializer(serializers.ModelSerializer):
    lines = InvoiceLineSerializer(many=True, read_only=True)

    class Meta:
        model = Invoice
        fields = ["id", "number", "kind", "status", "client", "contract", "project", "currency", "billing_run",
                  "period_start", "period_end", "issue_date", "due_date", "paid_on", "payment_terms_days",
                  "tax_rate", "subtotal", "tax", "total", "credited_invoice", "review_sent_at",
                  "review_expires_at", "accepted_at", "finalized_at", "sent_at", "voided_at", "void_reason",
                  "created_at", "lines"]
        read_only_fields = fields
        extra_kwargs = {
            "number": {"help_text": "Given at finalization (gapless per year); null on a draft."},
            "tax_rate": {"help_text": "Percent, copied from the client when the draft was made."},
            "subtotal": {"help_text": "In `currency`; negative on a credit note."},
            "credited_invoice": {"help_text": "The invoice a credit note corrects."},
        }


def invoices_for_api():
    """Invoices with their lines and each line's entries: three queries for any number of invoices."""
    allocations = Allocation.objects.only("id", "line_id", "time_entry_id")
    lines = InvoiceLine.objects.prefetch_related(Prefetch("allocations", queryset=allocations))
    return Invoice.objects.prefetch_related(Prefetch("lines", queryset=lines))


class InvoiceFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=InvoiceStatus.choices)
    kind = filters.ChoiceFilter(choices=InvoiceKind.choices)
    client = IdFilter()
    contract = IdFilter()
    billing_run = IdFilter()
    period = filters.DateFromToRangeFilter(field_name="period_end",
                                           help_text="period_after / period_before: the period's end, inclusive.")
    period_end = filters.DateFromToRangeFilter(help_text="period_end_after / period_end_before, inclusive.")

    class Meta:
        model = Invoice
        fields = ["status", "kind", "client", "contract", "billing_run", "number"]


class FinalizeSerializer(serializers.Serializer):
    issue_date = serializers.DateField(required=False, help_text="Defaults to today; the due date follows it.")


class MarkPaidSerializer(serializers.Serializer):
    paid_on = serializers.DateField(required=False, allow_null=True, help_text="Defaults to today.")


class VoidSerializer(serializers.Serializer):
    # Left out or blank, the service answers with its own message under `reason`.
    reason = serializers.CharField(required=False, allow_blank=True, default="",
                                   help_text="Required: why the invoice is voided.")


class CreditPartSerializer(serializers.Serializer):
    time_entry = serializers.IntegerField()
    minutes = serializers.IntegerField(required=False, allow_null=True, min_value=1,
                                       help_text="Left out: everything of the entry still billed on the invoice.")


class CreditNoteRequestSerializer(serializers.Serializer):
    allocations = CreditPartSerializer(many=True, max_length=1000)
    release = serializers.BooleanField(
        default=True, help_text="True (the default): the credited minutes can be billed again. False: written off.")
    reason = serializers.CharField(required=False, allow_blank=True, default="")


def _parts_in_input_order(errors: dict, given) -> dict:
    """DRF keys a nested list's errors by item index; the API answers one error object per item, in order."""
    parts = errors.get("allocations")
    if isinstance(parts, dict) and isinstance(given, list) and all(isinstance(key, int) for key in parts):
        errors = {**errors, "allocations": [parts.get(index, {}) for index in range(len(given))]}
    return errors


class PDFRenderer(renderers.BaseRenderer):
    """Lets a caller ask for `Accept: application/pdf`; an error still answers in JSON."""

    media_type = "application/pdf"
    format = "pdf"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, bytes):
            return data
        response = (renderer_context or {}).get("response")
        if response is not None:
            response["Content-Type"] = "application/json"
        return json.dumps(data).encode()


_state_refusal = OpenApiResponse(description="The service refused: `non_field_errors` (or the field) says why.")


@extend_schema_view(
    destroy=extend_schema(description="Delete a draft and release its entries and fees. An issued invoice is "
                                      "never deleted (400): void it instead."),
)
class InvoiceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
                     viewsets.GenericViewSet):
    """Invoices and credit notes, read-only: they change only through the actions (PUT and PATCH are 405)."""

    queryset = Invoice.objects.all()
    serializer_class = InvoiceSerializer
    permission_classes = [ActionPermissions]
    filterset_class = InvoiceFilter
    read_permission = "billing.view_invoice"
    action_permissions = {
        "destroy": "billing.run_billing",
        "send_preview": "billing.run_billing",
        "finalize": "billing.finalize_invoice",
        "send": "billing.finalize_invoice",
        "mark_paid": "billing.finalize_invoice",
        "void": "billing.finalize_invoice",
        "credit_notes": "billing.finalize_invoice",
    }

    def get_queryset(self):
        # Actions lock and reload the invoice in their service; only answers need the lines.
        return invoices_for_api() if self.action in ("list", "retrieve") else Invoice.objects.all()

    def filter_queryset(self, queryset):
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    def _answer(self, invoice: Invoice, code: int = status.HTTP_200_OK) -> Response:
        return Response(InvoiceSerializer(invoices_for_api().get(pk=invoice.pk)).data, status=code)

    def _body(self, serializer_class) -> dict:
        body = serializer_class(data=self.request.data)
        body.is_valid(raise_exception=True)
        return body.validated_data

    def perform_destroy(self, instance):
        invoice_draft_delete(invoice=instance, user=self.request.user)

    @extend_schema(request=None, responses={200: InvoiceSerializer, 400: _state_refusal})
    @action(detail=True, methods=["post"], url_path="send-preview")
    def send_preview(self, request, pk=None):
        """Email the draft's preview with the client's review link (valid for the review window)."""
        return self._answer(invoice_send_preview(invoice=self.get_object(), user=request.user))

    @extend_schema(request=FinalizeSerializer, responses={200: InvoiceSerializer, 400: _state_refusal})
    @action(detail=True, methods=["post"])
    def finalize(self, request, pk=None):
        """Number the draft, set its dates, lock it and render its PDF; refused while a line is disputed."""
        invoice = self.get_object()
        body = self._body(FinalizeSerializer)
        return self._answer(invoice_finalize(invoice=invoice, user=request.user, issue_date=body.get("issue_date")))

    @extend_schema(request=None, responses={200: InvoiceSerializer, 400: _state_refusal})
    @action(detail=True, methods=["post"])
    def send(self, request, pk=None):
        """Email the finalized invoice with its PDF to the client's invoice recipients."""
        return self._answer(invoice_send(invoice=self.get_object(), user=request.user))

    @extend_schema(request=MarkPaidSerializer, responses={200: InvoiceSerializer, 400: _state_refusal})
    @action(detail=True, methods=["post"], url_path="mark-paid")
    def mark_paid(self, request, pk=None):
        invoice = self.get_object()
        body = self._body(MarkPaidSerializer)
        return self._answer(invoice_mark_paid(invoice=invoice, user=request.user, paid_on=body.get("paid_on")))

    @extend_schema(request=VoidSerializer, responses={200: InvoiceSerializer, 400: _state_refusal})
    @action(detail=True, methods=["post"])
    def void(self, request, pk=None):
        """Void an issued, unpaid invoice: its entries and fees are released for rebilling."""
        invoice = self.get_object()
        body = self._body(VoidSerializer)
        return self._answer(invoice_void(invoice=invoice, user=request.user, reason=body["reason"]))

    @extend_schema(request=CreditNoteRequestSerializer, responses={201: InvoiceSerializer, 400: _state_refusal})
    @action(detail=True, methods=["post"], url_path="credit-notes")
    def credit_notes(self, request, pk=None):
        """Issue a credit note reversing the named entries' billing on this invoice (whole or in minutes)."""
        invoice = self.get_object()
        body = CreditNoteRequestSerializer(data=request.data)
        if not body.is_valid():
            given = request.data.get("allocations") if hasattr(request.data, "get") else None
            raise exceptions.ValidationError(_parts_in_input_order(body.errors, given))
        parts = [CreditRequest(time_entry_id=part["time_entry"], minutes=part.get("minutes"))
                 for part in body.validated_data["allocations"]]
        # The service names each refused part and entry in its messages, under `allocations`.
        note = credit_note_create(invoice=invoice, parts=parts, release=body.validated_data["release"],
                                  user=request.user, reason=body.validated_data["reason"])
        return self._answer(note, status.HTTP_201_CREATED)

    @extend_schema(responses={(200, "application/pdf"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"], renderer_classes=[renderers.JSONRenderer, PDFRenderer])
    def pdf(self, request, pk=None):
        """The invoice as PDF: the stored file of an issued invoice, a fresh rendering of a draft."""
        invoice = self.get_object()
        name = f"{invoice.number or f'draft-{invoice.pk}'}.pdf"
        return HttpResponse(invoice_pdf(invoice), content_type="application/pdf",
                            headers={"Content-Disposition": content_disposition_header(False, name)})


# Billing runs


class BillingRunSerializer(serializers.ModelSerializer):
    invoice_ids = serializers.SerializerMethodField(help_text="The run's invoices that still exist.")

    class Meta:
        model = BillingRun
        fields = ["id", "period_start", "period_end", "client", "started_by", "started_at", "finished_at",
                  "invoices_created", "entries_billed", "summary", "invoice_ids"]
        read_only_fields = fields

    def get_invoice_ids(self, run) -> list[int]:
        return sorted(invoice.id for invoice in run.invoices.all())


class BillingRunResultSerializer(BillingRunSerializer):
    invoices = InvoiceSerializer(source="invoices_answered", many=True, read_only=True,
                                 help_text="The draft invoices the run created.")

    class Meta(BillingRunSerializer.Meta):
        fields = [*BillingRunSerializer.Meta.fields, "invoices"]
        read_only_fields = fields


class BillingRunRequestSerializer(serializers.Serializer):
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    client = serializers.PrimaryKeyRelatedField(queryset=Client.objects.all(), required=False, allow_null=True,
                                                help_text="Bill only this client; left out, every client.")


class BillingRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                        viewsets.GenericViewSet):
    """Billing runs: POST one to turn a period's approved time, fees and retainers into draft invoices."""

    queryset = BillingRun.objects.all()
    serializer_class = BillingRunSerializer
    permission_classes = [ActionPermissions]
    filterset_fields = ["client"]
    read_permission = "billing.view_billingrun"
    action_permissions = {"create": "billing.run_billing"}

    def get_queryset(self):
        # The runs' invoice ids in one query for the whole page.
        invoice_ids = Invoice.objects.only("id", "billing_run")
        return BillingRun.objects.prefetch_related(Prefetch("invoices", queryset=invoice_ids))

    @extend_schema(request=BillingRunRequestSerializer, responses={201: BillingRunResultSerializer})
    def create(self, request, *args, **kwargs):
        body = BillingRunRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            result = billing_run_create(period_start=body.validated_data["period_start"],
                                        period_end=body.validated_data["period_end"],
                                        client=body.validated_data.get("client"), user=request.user)
        except BillingConflict as error:
            raise Conflict(str(error)) from None
        run = self.get_queryset().get(pk=result.run.pk)
        run.invoices_answered = list(invoices_for_api().filter(pk__in=[invoice.pk for invoice in result.invoices]))
        data = BillingRunResultSerializer(run, context=self.get_serializer_context()).data
        return Response(data, status=status.HTTP_201_CREATED)
