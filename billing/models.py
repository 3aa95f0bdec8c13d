"""Rates, and (later) invoices and everything billing records."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from djmoney.models.fields import MoneyField

from clients.models import MONEY, Contract
from projects.models import Project, Role, TaskType, TeamMember


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
