"""The approval policy, and the requests that hold entries for an approver's decision."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from projects.models import TimeEntry


class ApprovalPolicy(models.Model):
    """The firm-wide defaults; a contract may override each threshold."""

    name = models.CharField(max_length=80, default="Firm default")
    is_active = models.BooleanField(default=True)
    # In the entry's contract currency (one number serves every currency unless a contract overrides it).
    auto_approve_max_amount = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("1000.00"))
    auto_approve_max_minutes = models.PositiveIntegerField(default=600)
    budget_review_percent = models.PositiveSmallIntegerField(default=90)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "approval policies"
        constraints = [
            # One policy is in force at a time.
            models.UniqueConstraint(fields=["is_active"], condition=Q(is_active=True),
                                    name="approvalpolicy_single_active"),
        ]

    def __str__(self) -> str:
        return self.name


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    AUTO_APPROVED = "auto_approved", "Approved automatically"
    REJECTED = "rejected", "Rejected"


class ApprovalReason(models.TextChoices):
    AMOUNT_OVER_LIMIT = "amount_over_limit", "Amount over the auto-approval limit"
    HOURS_OVER_LIMIT = "hours_over_limit", "Longer than the auto-approval limit"
    BUDGET_THRESHOLD = "budget_threshold", "Project budget nearly used"
    CLIENT_SPEND_LIMIT = "client_spend_limit", "Client's monthly spending limit exceeded"
    CAP_EXCEEDED = "cap_exceeded", "Contract cap exceeded"
    NO_RATE = "no_rate", "No rate applies"


class ApprovalRequest(models.Model):
    """The routing decision for one entry: held with reasons, or approved (by a person or the policy)."""

    time_entry = models.OneToOneField(TimeEntry, on_delete=models.CASCADE, related_name="approval")
    status = models.CharField(max_length=16, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING)
    reasons = models.JSONField(default=list, blank=True)
    reason_messages = models.JSONField(default=list, blank=True)
    policy = models.ForeignKey(ApprovalPolicy, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    requested_at = models.DateTimeField()
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["requested_at", "id"]
        indexes = [
            # The approval queue: pending requests, oldest first.
            models.Index(fields=["status", "requested_at"], name="approval_queue"),
        ]
        permissions = [
            ("decide_approvals", "Can approve or reject held time"),
        ]

    def __str__(self) -> str:
        return f"Approval of entry {self.time_entry_id}: {self.get_status_display()}"


class ApprovalEvent(models.Model):
    """The audit trail of approval decisions: who did what, when, from which status to which."""

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="+")
    action = models.CharField(max_length=16, choices=ApprovalStatus.choices)
    status_before = models.CharField(max_length=16, choices=ApprovalStatus.choices)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} by {self.actor or 'policy'} at {self.created_at:%Y-%m-%d %H:%M}"
