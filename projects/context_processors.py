from django.conf import settings


def portal_navigation(request):
    """What the portal's menu offers this user, read once per page from their permissions."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"firm_name": settings.FIRM_NAME}
    member = getattr(user, "member", None)
    return {
        "firm_name": settings.FIRM_NAME,
        "nav": {
            "member": member,
            "log_time": member is not None and user.has_perm("projects.log_time"),
            "projects": user.has_perm("projects.view_project_budgets")
            or (member is not None and member.managed_projects.exists()),
            "import_time": user.has_perm("projects.import_time"),
            "reports": user.has_perm("projects.view_reports"),
            "admin": user.is_staff,
        }
    }
