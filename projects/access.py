"""Who may do what: the five access roles are Django groups with permissions.

The groups and their permissions are created by a migration (billing 0002); this module names them
and answers the object-level questions permissions alone cannot (whose entry, whose project).
"""

from django.contrib.auth.models import Group

STAFF = "staff"
PROJECT_MANAGER = "project_manager"
APPROVER = "approver"
FINANCE = "finance"
MANAGEMENT = "management"
ACCESS_ROLES = (STAFF, PROJECT_MANAGER, APPROVER, FINANCE, MANAGEMENT)

# Roles that work in the Django admin (the approval queue, contracts, invoices) need is_staff.
ADMIN_ROLES = {PROJECT_MANAGER, APPROVER, FINANCE, MANAGEMENT}


def grant_access_roles(user, roles) -> None:
    """Put the user in exactly these access groups and open the admin to those who work there."""
    roles = set(roles)
    unknown = roles - set(ACCESS_ROLES)
    if unknown:
        raise ValueError(f"Unknown access roles: {', '.join(sorted(unknown))}")
    user.groups.set(Group.objects.filter(name__in=roles))
    should_be_staff = user.is_superuser or bool(roles & ADMIN_ROLES)
    if user.is_staff != should_be_staff:
        user.is_staff = should_be_staff
        user.save(update_fields=["is_staff"])


def sees_all_time(user) -> bool:
    return user.has_perm("projects.view_all_time")


def managed_project_ids(user) -> set[int]:
    member = getattr(user, "member", None)
    if member is None:
        return set()
    return set(member.managed_projects.values_list("id", flat=True))


def can_decide_entry(user, entry) -> bool:
    """Approvers decide any entry, project managers only their projects', nobody their own."""
    if not user.has_perm("approvals.decide_approvals"):
        return False
    member = getattr(user, "member", None)
    if member is not None and entry.member_id == member.id:
        return False
    if sees_all_time(user):
        return True
    return member is not None and entry.project.manager_id == member.id
