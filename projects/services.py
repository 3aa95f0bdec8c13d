"""Team members and their logins: a member signs in with their email address, so the two move together."""

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from djmoney.money import Money

from projects.access import STAFF, grant_access_roles
from projects.models import Role, TeamMember

# What a member's record holds besides the login; the only names member_update accepts.
MEMBER_DETAILS = frozenset({"email", "name", "role", "cost_rate", "weekly_capacity_hours", "time_zone",
                            "is_active"})


@transaction.atomic
def member_create(
    *,
    email: str,
    name: str,
    role: Role,
    cost_rate: Money | None = None,
    weekly_capacity_hours: Decimal | None = None,
    time_zone: str | None = None,
    is_active: bool = True,
) -> TeamMember:
    """Add a member with a login in the staff group; they set a password through the reset flow."""
    # No password given: the login's password is unusable until they set one.
    user = get_user_model().objects.create_user(username=email, email=email)
    grant_access_roles(user, [STAFF])
    member = TeamMember(user=user, email=email, name=name, role=role, cost_rate=cost_rate, is_active=is_active)
    # Left out, these keep the model's defaults (40 hours, UTC).
    if weekly_capacity_hours is not None:
        member.weekly_capacity_hours = weekly_capacity_hours
    if time_zone is not None:
        member.time_zone = time_zone
    member.full_clean(exclude=["user"])
    member.save()
    return member


@transaction.atomic
def member_update(*, member: TeamMember, changes: Mapping[str, Any]) -> TeamMember:
    """Change a member's details; a new email address becomes their sign-in name too."""
    unknown = set(changes) - MEMBER_DETAILS
    if unknown:
        raise ValueError(f"Not a member detail: {', '.join(sorted(unknown))}")
    for name, value in changes.items():
        setattr(member, name, value)
    member.full_clean(exclude=["user"])
    member.save()
    user = member.user
    if user.email != member.email or user.username != member.email:
        user.username = user.email = member.email
        user.save(update_fields=["username", "email"])
    return member


@transaction.atomic
def member_delete(*, member: TeamMember) -> None:
    """Remove a member who never logged time, and the login made for them (a superuser's stays).

    A member with time entries is protected by the database (ProtectedError): deactivate them instead.
    """
    user = member.user
    member.delete()
    if not user.is_superuser:
        user.delete()
