"""Clients, their contacts, and the contracts that carry the commercial terms."""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from djmoney.models.fields import MoneyField

# Every money amount here is in the contract's currency, two decimal places.
MONEY = {"max_digits": 14, "decimal_places": 2}


class BillingPeriod(models.TextChoices):
    WEEKLY = "weekly", "Weekly"
    SEMIMONTHLY = "semimonthly", "Twice a month"
    MONTHLY = "monthly", "Monthly"


class Consolidation(models.TextChoices):
    CLIENT = "client", "One invoice per client and currency"
    CONTRACT = "contract", "One invoice per contract"
    PROJECT = "project", "One invoice per project"


class LineGrouping(models.TextChoices):
    TASK_TYPE = "task_type", "By task type"
    MEMBER = "member", "By team member"
    PROJECT = "project", "By project"
    DAY = "day", "By day"
    DETAILED = "detailed", "One line per entry"


class Client(models.Model):
    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3, choices=settings.CURRENCY_CHOICES, default=settings.DEFAULT_CURRENCY)
    billing_period = models.CharField(max_length=16, choices=BillingPeriod.choices, default=BillingPeriod.MONTHLY)
    consolidation = models.CharField(max_length=16, choices=Consolidation.choices, default=Consolidation.CLIENT)
    line_grouping = models.CharField(max_length=16, choices=LineGrouping.choices, default=LineGrouping.TASK_TYPE)
    payment_terms_days = models.PositiveSmallIntegerField(default=30)
    # Percent, e.g. 20.00 for 20 % VAT.
    tax_rate = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("0.00"),
                                   validators=[MinValueValidator(Decimal("0"))])
    invoice_emails = models.JSONField(default=list, blank=True,
                                      help_text="Addresses that receive invoice previews and invoices.")
    include_time_detail = models.BooleanField(default=False,
                                              help_text="Attach the time entries behind each line to the invoice PDF.")
    address = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(tax_rate__gte=0) & Q(tax_rate__lte=100), name="client_tax_rate_percent"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    def clean(self) -> None:
        from django.core.validators import validate_email

        if not isinstance(self.invoice_emails, list):
            raise ValidationError({"invoice_emails": "Give a list of email addresses."})
        for address in self.invoice_emails:
            try:
                validate_email(address)
            except ValidationError:
                raise ValidationError({"invoice_emails": f"{address!r} is not a valid email address."}) from None


class Contact(models.Model):
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="contacts")
    name = models.CharField(max_length=200)
    email = models.EmailField()
    receives_weekly_summary = models.BooleanField(default=False)
    receives_invoices = models.BooleanField(default=False)

    class Meta:
        ordering = ["client", "name"]
        constraints = [
            models.UniqueConstraint(fields=["client", "email"], name="contact_unique_email_per_client"),
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


class BillingType(models.TextChoices):
    TIME_AND_MATERIALS = "time_and_materials", "Time and materials"
    FIXED_FEE = "fixed_fee", "Fixed fee"
    RETAINER = "retainer", "Retainer"
    NON_BILLABLE = "non_billable", "Non-billable"


class RoundingMode(models.TextChoices):
    UP = "up", "Up"
    NEAREST = "nearest", "Nearest (a half rounds up)"
    DOWN = "down", "Down"


class CapPeriod(models.TextChoices):
    CONTRACT = "contract", "Whole contract"
    MONTH = "month", "Calendar month"


class FixedFeeSchedule(models.TextChoices):
    INSTALLMENTS = "installments", "Equal installments per billing period"
    MILESTONES = "milestones", "Milestones"


class ContractStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    ENDED = "ended", "Ended"


class Contract(models.Model):
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="contracts")
    number = models.CharField(max_length=40, unique=True)
    billing_type = models.CharField(max_length=24, choices=BillingType.choices,
                                    default=BillingType.TIME_AND_MATERIALS)
    currency = models.CharField(max_length=3, choices=settings.CURRENCY_CHOICES, default=settings.DEFAULT_CURRENCY)
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=ContractStatus.choices, default=ContractStatus.ACTIVE)

    # Rounding of billable minutes per entry; 0 means none.
    rounding_increment = models.PositiveSmallIntegerField(default=0)
    rounding_mode = models.CharField(max_length=8, choices=RoundingMode.choices, default=RoundingMode.UP)

    # Not-to-exceed caps (time and materials).
    cap_hours = models.DecimalField(max_digits=9, decimal_places=2, null=True, blank=True)
    cap_amount = MoneyField(null=True, blank=True, default_currency=None, **MONEY)
    cap_period = models.CharField(max_length=12, choices=CapPeriod.choices, default=CapPeriod.CONTRACT)

    # Approval overrides; empty means the global policy applies.
    monthly_spend_limit = MoneyField(null=True, blank=True, default_currency=None, **MONEY)
    auto_approve_max_amount = MoneyField(null=True, blank=True, default_currency=None, **MONEY)
    auto_approve_max_minutes = models.PositiveIntegerField(null=True, blank=True)
    budget_review_percent = models.PositiveSmallIntegerField(null=True, blank=True)

    # Fixed fee.
    fixed_fee_amount = MoneyField(null=True, blank=True, default_currency=None, **MONEY)
    fixed_fee_schedule = models.CharField(max_length=16, choices=FixedFeeSchedule.choices,
                                          default=FixedFeeSchedule.INSTALLMENTS)

    # Retainer: a monthly fee covering a number of hours; the rest is overage at rates.
    retainer_amount = MoneyField(null=True, blank=True, default_currency=None, **MONEY)
    retainer_hours = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)

    # Client review: drafts with no dispute may be finalized when the window ends.
    review_window_days = models.PositiveSmallIntegerField(default=3)
    auto_finalize = models.BooleanField(default=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    MONEY_TERMS = ("cap_amount", "monthly_spend_limit", "auto_approve_max_amount",
                   "fixed_fee_amount", "retainer_amount")

    class Meta:
        ordering = ["client", "number"]
        constraints = [
            models.CheckConstraint(condition=Q(end_date__isnull=True) | Q(end_date__gte=models.F("start_date")),
                                   name="contract_end_after_start"),
            models.CheckConstraint(condition=Q(cap_hours__isnull=True) | Q(cap_hours__gt=0),
                                   name="contract_cap_hours_positive"),
            models.CheckConstraint(condition=Q(cap_amount__isnull=True) | Q(cap_amount__gt=0),
                                   name="contract_cap_amount_positive"),
            models.CheckConstraint(condition=Q(retainer_hours__isnull=True) | Q(retainer_hours__gte=0),
                                   name="contract_retainer_hours_not_negative"),
            models.CheckConstraint(condition=Q(budget_review_percent__isnull=True)
                                   | Q(budget_review_percent__lte=1000), name="contract_review_percent_sane"),
        ]

    def __str__(self) -> str:
        return f"{self.number} · {self.client.name}"

    @property
    def bills_time(self) -> bool:
        return self.billing_type in (BillingType.TIME_AND_MATERIALS, BillingType.RETAINER)

    def covers(self, day) -> bool:
        return self.start_date <= day and (self.end_date is None or day <= self.end_date)

    def clean(self) -> None:
        errors = {}
        if self.end_date and self.start_date and self.end_date < self.start_date:
            errors["end_date"] = "The contract cannot end before it starts."
        for name in self.MONEY_TERMS:
            money = getattr(self, name)
            if money is not None and str(money.currency) != self.currency:
                errors[name] = f"Must be in the contract currency {self.currency}, not {money.currency}."
        if self.billing_type == BillingType.FIXED_FEE and self.fixed_fee_amount is None \
                and self.fixed_fee_schedule == FixedFeeSchedule.INSTALLMENTS:
            errors["fixed_fee_amount"] = "A fixed-fee contract billed in installments needs its fee."
        if self.billing_type == BillingType.RETAINER:
            if self.retainer_amount is None:
                errors["retainer_amount"] = "A retainer needs its monthly fee."
            if self.retainer_hours is None:
                errors["retainer_hours"] = "A retainer needs the hours it covers each month."
        if self.billing_type == BillingType.FIXED_FEE and self.fixed_fee_schedule == FixedFeeSchedule.INSTALLMENTS \
                and self.end_date is None:
            errors["end_date"] = "Installments are spread between the start and end dates: set an end date."
        if errors:
            raise ValidationError(errors)


class FeeMilestone(models.Model):
    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="milestones")
    name = models.CharField(max_length=200)
    amount = MoneyField(**MONEY, default_currency=settings.DEFAULT_CURRENCY)
    due_date = models.DateField(null=True, blank=True)
    completed_on = models.DateField(null=True, blank=True,
                                    help_text="A milestone is billed by the first billing run after it is complete.")

    class Meta:
        ordering = ["contract", "due_date", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="milestone_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.contract.number} · {self.name}"
