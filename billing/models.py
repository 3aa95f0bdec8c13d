"""Rates, and (later) invoices and everything billing records."""

from django.conf import settings
from django.core.exceptions import ValidationError
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
