"""Roles, team members, task types, projects, and the time entries logged against them."""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from djmoney.models.fields import MoneyField

from clients.models import MONEY, Client, Contract


class Role(models.Model):
    """A job role (Senior Consultant, Designer...): rates and reports group by it."""

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=120)
    default_cost_rate = MoneyField(**MONEY, default_currency=settings.DEFAULT_CURRENCY, default=Decimal("0"))

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TeamMember(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="member")
    email = models.EmailField(unique=True)
    name = models.CharField(max_length=200)
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="members")
    # Hourly cost to the firm; empty means the role's default cost rate.
    cost_rate = MoneyField(**MONEY, null=True, blank=True, default_currency=None)
    weekly_capacity_hours = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("40.00"))
    time_zone = models.CharField(max_length=64, default="UTC")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(weekly_capacity_hours__gte=0) & Q(weekly_capacity_hours__lte=168),
                                   name="member_capacity_within_week"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def effective_cost_rate(self):
        return self.cost_rate if self.cost_rate is not None else self.role.default_cost_rate


class TaskType(models.Model):
    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=120)
    billable = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False,
                                     help_text="Used for imported time whose task is empty or unknown.")

    class Meta:
        ordering = ["name"]
        constraints = [
            # Imports fall back to exactly one default task type.
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True),
                                    name="tasktype_single_default"),
        ]

    def __str__(self) -> str:
        return self.name


class ProjectStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    ON_HOLD = "on_hold", "On hold"
    COMPLETED = "completed", "Completed"
    ARCHIVED = "archived", "Archived"


def default_alert_thresholds() -> list[int]:
    return [50, 75, 90, 100]


class Project(models.Model):
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="projects")
    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="projects")
    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    manager = models.ForeignKey(TeamMember, on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="managed_projects")
    billable = models.BooleanField(default=True)
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True)
    budget_hours = models.DecimalField(max_digits=9, decimal_places=2, null=True, blank=True)
    # In the contract's currency.
    budget_amount = MoneyField(**MONEY, null=True, blank=True, default_currency=None)
    alert_thresholds = models.JSONField(default=default_alert_thresholds, blank=True,
                                        help_text="Budget percentages that raise an alert, e.g. [50, 75, 90, 100].")
    status = models.CharField(max_length=12, choices=ProjectStatus.choices, default=ProjectStatus.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["client__name", "name"]
        constraints = [
            models.CheckConstraint(condition=Q(end_date__isnull=True) | Q(end_date__gte=F("start_date")),
                                   name="project_end_after_start"),
            models.CheckConstraint(condition=Q(budget_hours__isnull=True) | Q(budget_hours__gte=0),
                                   name="project_budget_hours_not_negative"),
            models.CheckConstraint(condition=Q(budget_amount__isnull=True) | Q(budget_amount__gte=0),
                                   name="project_budget_amount_not_negative"),
        ]
        permissions = [
            ("view_project_budgets", "Can see budgets and alerts of projects"),
        ]

    def __str__(self) -> str:
        return f"{self.code} · {self.name}"

    @property
    def is_archived(self) -> bool:
        return self.status == ProjectStatus.ARCHIVED

    def covers(self, day) -> bool:
        return self.start_date <= day and (self.end_date is None or day <= self.end_date)

    def clean(self) -> None:
        errors = {}
        if self.contract_id and self.client_id and self.contract.client_id != self.client_id:
            errors["contract"] = "The contract belongs to another client."
        if self.end_date and self.start_date and self.end_date < self.start_date:
            errors["end_date"] = "The project cannot end before it starts."
        if self.budget_amount is not None and self.contract_id \
                and str(self.budget_amount.currency) != self.contract.currency:
            errors["budget_amount"] = f"Must be in the contract currency {self.contract.currency}."
        thresholds = self.alert_thresholds
        if not isinstance(thresholds, list) or not all(isinstance(t, int) and 0 < t <= 1000 for t in thresholds):
            errors["alert_thresholds"] = "Give a list of whole percentages between 1 and 1000."
        if errors:
            raise ValidationError(errors)


class EntrySource(models.TextChoices):
    PORTAL = "portal", "Staff portal"
    API = "api", "REST API"
    CSV = "csv", "CSV import"
    TOGGL = "toggl", "Toggl Track"
    MONDAY = "monday", "Monday.com"
    HARVEST = "harvest", "Harvest import"


class EntryStatus(models.TextChoices):
    RECORDED = "recorded", "Recorded"  # validated and stored, not yet rated and routed
    PENDING = "pending", "Awaiting approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    INVOICED = "invoiced", "Invoiced"


# Once an entry reaches these, its facts are history: a change at the source is a conflict.
LOCKED_STATUSES = (EntryStatus.INVOICED,)
# The member may still edit or delete the entry: until it is invoiced. An approved entry that is changed
# goes back through rating and approval, so a correction never bypasses the approver.
EDITABLE_STATUSES = (EntryStatus.RECORDED, EntryStatus.PENDING, EntryStatus.REJECTED, EntryStatus.APPROVED)


class TimeEntryQuerySet(models.QuerySet):
    def visible_to(self, user) -> "TimeEntryQuerySet":
        """The entries this user may see: their own, their projects', or all for finance and management."""
        if user.has_perm("projects.view_all_time"):
            return self
        member = getattr(user, "member", None)
        if member is None:
            return self.none()
        return self.filter(Q(member=member) | Q(project__manager=member))

    def for_member(self, member) -> "TimeEntryQuerySet":
        return self.filter(member=member)


class TimeEntry(models.Model):
    # Raw facts, as logged.
    # No index of their own: the (member, work_date) and (project, work_date) indexes lead with them.
    member = models.ForeignKey(TeamMember, on_delete=models.PROTECT, related_name="time_entries", db_index=False)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="time_entries", db_index=False)
    task_type = models.ForeignKey(TaskType, on_delete=models.PROTECT, related_name="time_entries")
    work_date = models.DateField()
    minutes = models.PositiveIntegerField(help_text="Raw minutes as logged; never changed by rules.")
    description = models.TextField(blank=True)
    billable = models.BooleanField(default=True, help_text="The member's or the source tool's billable flag.")
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    # Provenance: a re-delivered entry updates this row instead of making a new one.
    source = models.CharField(max_length=16, choices=EntrySource.choices)
    external_id = models.CharField(max_length=128)

    status = models.CharField(max_length=12, choices=EntryStatus.choices, default=EntryStatus.RECORDED)

    # Rated fields, filled by billing's rating step (amounts in the contract currency).
    billable_minutes = models.PositiveIntegerField(default=0)
    over_cap_minutes = models.PositiveIntegerField(default=0)
    # Of the billable minutes, those a retainer's monthly fee covers (billed by the fee, not per hour).
    covered_minutes = models.PositiveIntegerField(default=0)
    rate = MoneyField(**MONEY, null=True, blank=True, default_currency=None)
    amount = MoneyField(**MONEY, null=True, blank=True, default_currency=None)
    cost_amount = MoneyField(**MONEY, null=True, blank=True, default_currency=None)
    rate_rule = models.CharField(max_length=255, blank=True)
    billability_reason = models.CharField(max_length=40, blank=True)
    rated_at = models.DateTimeField(null=True, blank=True)

    # Set when the source changed an entry that is already invoiced: finance decides.
    conflict = models.TextField(blank=True)

    # Indexed only where set (see Meta): connectors and the API record entries with no user.
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+", db_index=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TimeEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-work_date", "-id"]
        verbose_name_plural = "time entries"
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="timeentry_unique_source_external_id"),
            models.CheckConstraint(condition=Q(minutes__gt=0) & Q(minutes__lte=24 * 60),
                                   name="timeentry_minutes_within_a_day"),
            models.CheckConstraint(condition=Q(billable_minutes__gte=0), name="timeentry_billable_minutes_not_negative"),
            models.CheckConstraint(condition=Q(covered_minutes__lte=F("billable_minutes")),
                                   name="timeentry_covered_within_billable"),
            models.CheckConstraint(condition=Q(amount__isnull=True) | Q(amount__gte=0),
                                   name="timeentry_amount_not_negative"),
            models.CheckConstraint(condition=Q(cost_amount__isnull=True) | Q(cost_amount__gte=0),
                                   name="timeentry_cost_not_negative"),
            models.CheckConstraint(condition=Q(stopped_at__isnull=True) | Q(started_at__isnull=True)
                                   | Q(stopped_at__gte=F("started_at")), name="timeentry_stop_after_start"),
        ]
        indexes = [
            # "My time" and the per-day total check in validation.
            models.Index(fields=["member", "work_date"], name="timeentry_member_day"),
            # Budgets, rating in (work date, id) order, and billing runs by period.
            models.Index(fields=["project", "work_date"], name="timeentry_project_day"),
            # The sweeper and the approval queue look entries up by status.
            models.Index(fields=["status", "work_date"], name="timeentry_status_day"),
            # Lists in the default order (newest first) read the index instead of sorting every entry.
            models.Index(fields=["-work_date", "-id"], name="timeentry_newest_first"),
            # Deleting a user sets its entries' creator to NULL: only entries someone created are looked up.
            models.Index(fields=["created_by"], condition=Q(created_by__isnull=False), name="timeentry_created_by"),
        ]
        permissions = [
            ("log_time", "Can log own time"),
            ("view_all_time", "Can see every member's time"),
            ("import_time", "Can import time from files"),
            ("view_reports", "Can see management reports"),
        ]

    def __str__(self) -> str:
        return f"{self.member} · {self.project.code} · {self.work_date} · {self.minutes} min"

    @property
    def hours(self) -> Decimal:
        return (Decimal(self.minutes) / 60).quantize(Decimal("0.01"))

    @property
    def is_editable(self) -> bool:
        """A member may change the entry only while nothing downstream has used it."""
        return self.status in EDITABLE_STATUSES and not self.conflict


class ProjectBudget(models.Model):
    """A project's budget figures, refreshed by the pipeline for every project a batch touches.

    Amounts are in the contract's currency; cost is in the currency of the members' cost rates and
    counts toward margin only when that is the contract's currency too.
    """

    project = models.OneToOneField(Project, on_delete=models.CASCADE, primary_key=True, related_name="budget")
    currency = models.CharField(max_length=3)
    minutes_used = models.PositiveIntegerField(default=0)
    amount_used = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    revenue = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    cost = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    cost_currency = models.CharField(max_length=3, blank=True)
    percent_used = models.DecimalField(max_digits=7, decimal_places=1, null=True, blank=True)
    # Average per week over the last four full weeks.
    burn_weekly_minutes = models.PositiveIntegerField(default=0)
    burn_weekly_amount = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    forecast_run_out = models.DateField(null=True, blank=True)
    refreshed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"Budget of {self.project.code}"

    @property
    def hours_used(self) -> Decimal:
        return (Decimal(self.minutes_used) / 60).quantize(Decimal("0.01"))

    @property
    def burn_weekly_hours(self) -> Decimal:
        return (Decimal(self.burn_weekly_minutes) / 60).quantize(Decimal("0.01"))

    @property
    def remaining_hours(self) -> Decimal | None:
        budget = self.project.budget_hours
        return None if budget is None else (budget - self.hours_used).quantize(Decimal("0.01"))

    @property
    def remaining_amount(self) -> Decimal | None:
        budget = self.project.budget_amount
        return None if budget is None else (budget.amount - self.amount_used).quantize(Decimal("0.01"))

    @property
    def margin(self) -> Decimal | None:
        if self.cost_currency and self.cost_currency != self.currency:
            return None
        return self.revenue - self.cost

    @property
    def margin_percent(self) -> Decimal | None:
        margin = self.margin
        if margin is None or not self.revenue:
            return None
        return (margin / self.revenue * 100).quantize(Decimal("0.1"))


class AlertKind(models.TextChoices):
    THRESHOLD = "threshold", "Budget threshold crossed"
    RUN_OUT_BEFORE_END = "run_out_before_end", "Budget runs out before the project ends"
    PAST_END_DATE = "past_end_date", "End date passed while the project is active"


class BudgetAlert(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="budget_alerts")
    kind = models.CharField(max_length=24, choices=AlertKind.choices)
    # The percentage crossed, for threshold alerts; 0 for timeline alerts.
    threshold = models.PositiveSmallIntegerField(default=0)
    percent_used = models.DecimalField(max_digits=7, decimal_places=1, null=True, blank=True)
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    emailed_to = models.EmailField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Once per threshold crossing: a second refresh above 90 % does not alert again.
            models.UniqueConstraint(fields=["project", "kind", "threshold"], name="budgetalert_once_per_crossing"),
        ]

    def __str__(self) -> str:
        return f"{self.project.code}: {self.message}"
