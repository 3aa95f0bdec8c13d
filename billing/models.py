"""Rates, billing runs, invoices and their lines, allocations, numbering, client review and messages."""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Abs
from djmoney.models.fields import MoneyField

from clients.models import MONEY, Contract
from projects.models import Project, Role, TaskType, TeamMember, TimeEntry


class RateLevel(models.IntegerChoices):
    """Rate precedence: the lowest level with a candidate wins."""

    MEMBER_TASK = 1, "member and task type"
    MEMBER = 2, "member"
    ROLE_TASK = 3, "role and task type"
    TASK = 4, "task type"
    ROLE = 5, "role"
    DEFAULT = 6, "contract default"


class Rate(models.Model):
    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="rates")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, null=True, blank=True, related_name="rates")
    member = models.ForeignKey(TeamMember, on_delete=models.CASCADE, null=True, blank=True, related_name="rates")
    role = models.ForeignKey(Role, on_delete=models.CASCADE, null=True, blank=True, related_name="rates")
    task_type = models.ForeignKey(TaskType, on_delete=models.CASCADE, null=True, blank=True, related_name="rates")
    # Per hour, in the contract's currency.
    hourly_rate = MoneyField(**MONEY, default_currency=settings.DEFAULT_CURRENCY)
    effective_from = models.DateField()
    effective_to = models.DateField(null=True, blank=True, help_text="Inclusive; empty means open-ended.")

    class Meta:
        ordering = ["contract", "effective_from", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(effective_to__isnull=True) | Q(effective_to__gte=F("effective_from")),
                                   name="rate_effective_to_after_from"),
            models.CheckConstraint(condition=Q(hourly_rate__gte=0), name="rate_not_negative"),
            # A member rate and a role rate are different levels: one row is never both.
            models.CheckConstraint(condition=Q(member__isnull=True) | Q(role__isnull=True),
                                   name="rate_member_or_role"),
        ]

    def __str__(self) -> str:
        return f"{self.contract.number} · {self.hourly_rate}/h from {self.effective_from}"

    def clean(self) -> None:
        errors = {}
        if self.effective_to and self.effective_from and self.effective_to < self.effective_from:
            errors["effective_to"] = "A rate cannot end before it starts."
        if self.member_id and self.role_id:
            errors["role"] = "A rate is for a member or for a role, not both."
        if self.contract_id and self.hourly_rate is not None \
                and str(self.hourly_rate.currency) != self.contract.currency:
            errors["hourly_rate"] = f"Must be in the contract currency {self.contract.currency}."
        if self.project_id and self.contract_id and self.project.contract_id != self.contract_id:
            errors["project"] = "The project is not under this contract."
        if not errors and self.contract_id and self.effective_from:
            overlap = self.overlapping().first()
            if overlap is not None:
                errors["effective_from"] = (
                    f"Overlaps the rate {overlap.hourly_rate} from {overlap.effective_from}"
                    f"{f' to {overlap.effective_to}' if overlap.effective_to else ''} for the same "
                    f"{self.level.label}{' and project' if self.project_id else ''}: two rates at one level "
                    "and scope would make the winner ambiguous."
                )
        if errors:
            raise ValidationError(errors)

    def overlapping(self):
        """Rates of the same contract, level and scope whose periods meet this one's."""
        others = Rate.objects.filter(
            contract_id=self.contract_id, project_id=self.project_id, member_id=self.member_id,
            role_id=self.role_id, task_type_id=self.task_type_id,
        ).exclude(pk=self.pk)
        others = others.filter(Q(effective_to__isnull=True) | Q(effective_to__gte=self.effective_from))
        if self.effective_to:
            others = others.filter(effective_from__lte=self.effective_to)
        return others

    @property
    def level(self) -> RateLevel:
        if self.member_id and self.task_type_id:
            return RateLevel.MEMBER_TASK
        if self.member_id:
            return RateLevel.MEMBER
        if self.role_id and self.task_type_id:
            return RateLevel.ROLE_TASK
        if self.task_type_id:
            return RateLevel.TASK
        if self.role_id:
            return RateLevel.ROLE
        return RateLevel.DEFAULT


class BillingRun(models.Model):
    """One request to turn a period's approved time into draft invoices."""

    period_start = models.DateField()
    period_end = models.DateField()
    client = models.ForeignKey("clients.Client", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    invoices_created = models.PositiveIntegerField(default=0)
    entries_billed = models.PositiveIntegerField(default=0)
    summary = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(period_end__gte=F("period_start")), name="billingrun_period_order"),
        ]

    def __str__(self) -> str:
        return f"Billing run {self.period_start} to {self.period_end}"


class InvoiceKind(models.TextChoices):
    INVOICE = "invoice", "Invoice"
    CREDIT = "credit", "Credit note"


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    FINALIZED = "finalized", "Finalized"
    SENT = "sent", "Sent"
    PAID = "paid", "Paid"
    VOID = "void", "Void"


# Finalized, sent and paid invoices are history: nothing on them changes.
ISSUED_STATUSES = (InvoiceStatus.FINALIZED, InvoiceStatus.SENT, InvoiceStatus.PAID)


class Invoice(models.Model):
    kind = models.CharField(max_length=8, choices=InvoiceKind.choices, default=InvoiceKind.INVOICE)
    status = models.CharField(max_length=10, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT)
    client = models.ForeignKey("clients.Client", on_delete=models.PROTECT, related_name="invoices")
    # Set when the invoice covers one contract (or one project) only.
    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, null=True, blank=True, related_name="invoices")
    project = models.ForeignKey(Project, on_delete=models.PROTECT, null=True, blank=True, related_name="invoices")
    currency = models.CharField(max_length=3)
    billing_run = models.ForeignKey(BillingRun, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="invoices")
    period_start = models.DateField()
    period_end = models.DateField()
    number = models.CharField(max_length=40, null=True, blank=True, unique=True)
    issue_date = models.DateField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    paid_on = models.DateField(null=True, blank=True)
    # Percent, copied from the client when the draft is made.
    tax_rate = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("0.00"))
    # In `currency`; a credit note's amounts are negative.
    subtotal = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    tax = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    total = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    credited_invoice = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True,
                                         related_name="credit_notes")
    payment_terms_days = models.PositiveSmallIntegerField(default=30)
    # Client review of the draft.
    review_sent_at = models.DateTimeField(null=True, blank=True)
    review_expires_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.CharField(max_length=200, blank=True)
    pdf = models.FileField(upload_to="invoices/%Y/", blank=True)
    finalized_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-period_end", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(period_end__gte=F("period_start")), name="invoice_period_order"),
            models.CheckConstraint(
                condition=Q(kind=InvoiceKind.CREDIT, credited_invoice__isnull=False)
                | Q(kind=InvoiceKind.INVOICE, credited_invoice__isnull=True),
                name="invoice_credit_note_links_original",
            ),
            models.CheckConstraint(condition=Q(status=InvoiceStatus.DRAFT) | Q(number__isnull=False),
                                   name="invoice_issued_has_number"),
        ]
        indexes = [
            # Finance's invoice list: by status and period.
            models.Index(fields=["status", "period_end"], name="invoice_status_period"),
        ]
        permissions = [
            ("run_billing", "Can run billing and manage draft invoices"),
            ("finalize_invoice", "Can finalize, send, void and credit invoices"),
        ]

    # What may still change once an invoice is issued: its later states and its stored PDF.
    MUTABLE_WHEN_ISSUED = frozenset({"status", "sent_at", "paid_on", "voided_at", "void_reason", "pdf"})

    def __str__(self) -> str:
        return self.number or f"Draft {self.id} · {self.client.name}"

    def save(self, *args, **kwargs):
        # A last line of defence behind the services: an issued invoice's content never changes.
        if self.pk and self.status in (*ISSUED_STATUSES, InvoiceStatus.VOID):
            fields = kwargs.get("update_fields")
            if fields is None or not set(fields) <= self.MUTABLE_WHEN_ISSUED:
                raise ValidationError(f"Invoice {self.number} is issued and cannot be changed.")
        super().save(*args, **kwargs)

    @property
    def is_issued(self) -> bool:
        return self.status in ISSUED_STATUSES


class LineKind(models.TextChoices):
    TIME = "time", "Time"
    OVER_CAP = "over_cap", "Over cap (not billed)"
    RETAINER_FEE = "retainer_fee", "Retainer fee"
    RETAINER_OVERAGE = "retainer_overage", "Retainer overage"
    FIXED_FEE = "fixed_fee", "Fixed-fee installment"
    MILESTONE = "milestone", "Milestone"
    CREDIT = "credit", "Credit"


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=LineKind.choices)
    description = models.CharField(max_length=300)
    # Hours (2 places) for time lines, 1 for fees; negative on credit notes.
    quantity = models.DecimalField(max_digits=12, decimal_places=2)
    unit_rate = models.DecimalField(max_digits=14, decimal_places=2)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    # Summed billable minutes behind a time line (exact, unlike the rounded quantity).
    minutes = models.IntegerField(default=0)
    # What the line groups by, kept for the client review and the PDF.
    project = models.ForeignKey(Project, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["invoice", "position"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "position"], name="invoiceline_unique_position"),
        ]

    def __str__(self) -> str:
        return self.description

    def save(self, *args, **kwargs):
        if self.invoice_id and self.invoice.status != InvoiceStatus.DRAFT:
            raise ValidationError("The lines of an issued invoice cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self.invoice.status != InvoiceStatus.DRAFT:
            raise ValidationError("The lines of an issued invoice cannot be deleted.")
        return super().delete(*args, **kwargs)


class Allocation(models.Model):
    """Ties a billed entry to the one line that bills it; credit notes reverse allocations.

    A live allocation makes its entry unavailable to billing runs. Releasing (a void, a deleted draft, a
    credit note with release) ends it; a write-off keeps it live so the entry is never billed again.
    """

    time_entry = models.ForeignKey(TimeEntry, on_delete=models.PROTECT, related_name="allocations")
    line = models.ForeignKey(InvoiceLine, on_delete=models.CASCADE, related_name="allocations")
    # Minutes billed on the line at its rate, and their share of its amount (negative on credit notes).
    minutes = models.IntegerField()
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    covered_minutes = models.PositiveIntegerField(default=0)
    over_cap_minutes = models.PositiveIntegerField(default=0)
    is_live = models.BooleanField(default=True)
    # Minutes of this allocation that credit notes have reversed since.
    credited_minutes = models.PositiveIntegerField(default=0)
    reverses = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="reversals")
    written_off = models.BooleanField(default=False)

    class Meta:
        constraints = [
            # The guarantee that no entry is billed twice, also when two billing runs race.
            models.UniqueConstraint(fields=["time_entry"], condition=Q(is_live=True),
                                    name="allocation_one_live_per_entry"),
            models.CheckConstraint(condition=Q(credited_minutes__lte=Abs("minutes")) | Q(reverses__isnull=False),
                                   name="allocation_credit_within_minutes"),
        ]

    def __str__(self) -> str:
        return f"Entry {self.time_entry_id} → line {self.line_id}: {self.minutes} min"


class ContractCharge(models.Model):
    """A fee billed once: a retainer month, a fixed-fee installment, or a milestone.

    Its unique key stops a second billing run charging it again; it goes with its line when a draft is
    deleted or an invoice voided, so the fee can be billed again.
    """

    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="charges")
    kind = models.CharField(max_length=16, choices=LineKind.choices)
    period_start = models.DateField()
    milestone = models.ForeignKey("clients.FeeMilestone", on_delete=models.PROTECT, null=True, blank=True,
                                  related_name="+")
    line = models.OneToOneField(InvoiceLine, on_delete=models.CASCADE, related_name="charge")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contract", "kind", "period_start"], condition=Q(milestone__isnull=True),
                                    name="contractcharge_once_per_period"),
            models.UniqueConstraint(fields=["milestone"], condition=Q(milestone__isnull=False),
                                    name="contractcharge_milestone_once"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.contract.number} for {self.period_start}"


class InvoiceSequence(models.Model):
    """The last number issued per prefix and year; locked while a number is taken, so none is skipped."""

    prefix = models.CharField(max_length=20)
    year = models.PositiveSmallIntegerField()
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["prefix", "year"], name="invoicesequence_unique_prefix_year"),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}{self.year}: {self.last_number}"


class DisputeStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"
    DISMISSED = "dismissed", "Dismissed"


class LineDispute(models.Model):
    """A client's dispute of one line from the review page; an open one blocks finalization."""

    line = models.ForeignKey(InvoiceLine, on_delete=models.CASCADE, related_name="disputes")
    comment = models.TextField()
    raised_by = models.CharField(max_length=200, blank=True)
    raised_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=10, choices=DisputeStatus.choices, default=DisputeStatus.OPEN)
    resolution = models.TextField(blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-raised_at", "-id"]

    def __str__(self) -> str:
        return f"Dispute of line {self.line_id}: {self.get_status_display()}"


class MessageKind(models.TextChoices):
    WEEKLY_SUMMARY = "weekly_summary", "Weekly summary"
    INVOICE_PREVIEW = "invoice_preview", "Invoice preview"
    INVOICE = "invoice", "Invoice"
    CREDIT_NOTE = "credit_note", "Credit note"


class MessageStatus(models.TextChoices):
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class ClientMessage(models.Model):
    """Every message sent to a client contact, for the record and for HubSpot."""

    kind = models.CharField(max_length=16, choices=MessageKind.choices)
    client = models.ForeignKey("clients.Client", on_delete=models.PROTECT, related_name="messages")
    invoice = models.ForeignKey(Invoice, on_delete=models.SET_NULL, null=True, blank=True, related_name="messages")
    to = models.JSONField(default=list)
    subject = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    sent_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=8, choices=MessageStatus.choices, default=MessageStatus.SENT)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-sent_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {', '.join(self.to)}"


class InvoiceEvent(models.Model):
    """The audit trail of an invoice: every transition, who made it, and what changed."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="+")
    action = models.CharField(max_length=40)
    status_before = models.CharField(max_length=10, blank=True)
    status_after = models.CharField(max_length=10, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor or 'Billable'}"
