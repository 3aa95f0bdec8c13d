"""The "Projects" page: budget bars, burn, forecast run-out, margin and alerts for managers."""

from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.shortcuts import render

from projects.models import BudgetAlert, Project, ProjectStatus
from projects.views.access import forbidden


def visible_projects(user):
    """Finance and management see every project's budget; a project manager sees their own."""
    projects = Project.objects.exclude(status=ProjectStatus.ARCHIVED)
    if user.has_perm("projects.view_project_budgets"):
        return projects
    member = getattr(user, "member", None)
    if member is None:
        return Project.objects.none()
    return projects.filter(manager=member)


def _bar(used, budget):
    if not budget:
        return None
    return min(100, round(float(used) / float(budget) * 100)), round(float(used) / float(budget) * 100)


@login_required
def projects_budgets(request):
    projects = visible_projects(request.user)
    if not request.user.has_perm("projects.view_project_budgets") and not projects.exists():
        return forbidden(request, "Budgets are shown to project managers, finance and management.")
    client_code = request.GET.get("client", "")
    if client_code:
        projects = projects.filter(client__code=client_code)
    projects = list(
        projects.select_related("client", "contract", "manager", "budget")
        .prefetch_related(Prefetch("budget_alerts", queryset=BudgetAlert.objects.order_by("-created_at")))
        .order_by("client__name", "name")
    )
    rows = []
    for project in projects:
        budget = getattr(project, "budget", None)
        rows.append({
            "project": project,
            "budget": budget,
            "hours_bar": _bar(budget.hours_used, project.budget_hours) if budget else None,
            "amount_bar": _bar(budget.amount_used, project.budget_amount.amount)
            if budget and project.budget_amount is not None else None,
            "alerts": list(project.budget_alerts.all())[:3],
        })
    rows.sort(key=lambda row: -(row["budget"].percent_used or 0) if row["budget"] else 0)
    clients = sorted({(p.client.code, p.client.name) for p in projects}, key=lambda c: c[1])
    return render(request, "portal/projects.html", {"rows": rows, "clients": clients, "client_code": client_code})
