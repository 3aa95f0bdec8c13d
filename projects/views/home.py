"""The portal's home: this week's hours, what waits for approval, what came back rejected."""

import datetime as dt

from django.contrib.auth.decorators import login_required
from django.db.models import Q, Sum
from django.shortcuts import render

from projects.forms import format_duration
from projects.models import EntryStatus, Project, ProjectStatus, TimeEntry
from projects.views.week_grid import member_today, week_start

# The dashboard lists the first few; "My time" has them all.
LISTED_ENTRIES = 10
LISTED_PROJECTS = 25


@login_required
def home(request):
    member = getattr(request.user, "member", None)
    context = {"member": member, "can_log_time": member is not None and request.user.has_perm("projects.log_time")}
    if member is not None:
        context.update(_member_summary(member))
    projects = _projects_overview(request.user, member)
    if projects is not None:
        context["projects"] = projects
    return render(request, "portal/home.html", context)


def _member_summary(member) -> dict:
    today = member_today(member)
    start = week_start(today)
    days = [start + dt.timedelta(days=offset) for offset in range(7)]
    entries = TimeEntry.objects.filter(member=member)
    by_day = dict(entries.filter(work_date__range=(days[0], days[-1]))
                  .values_list("work_date").annotate(total=Sum("minutes")))
    week_minutes = sum(by_day.values())
    capacity_minutes = int(member.weekly_capacity_hours * 60)
    pending = list(entries.filter(status=EntryStatus.PENDING).select_related("project", "task_type")
                   .order_by("work_date", "id")[:LISTED_ENTRIES + 1])
    rejected = list(entries.filter(status=EntryStatus.REJECTED).select_related("project", "task_type", "approval")
                    .order_by("-work_date", "-id")[:LISTED_ENTRIES + 1])
    for entry in pending:
        entry.duration = format_duration(entry.minutes)
    for entry in rejected:
        entry.duration = format_duration(entry.minutes)
        approval = getattr(entry, "approval", None)
        entry.rejection_reason = approval.note if approval is not None else ""
    return {
        "today": today,
        "week_start": start,
        "week_days": [{"day": day, "duration": format_duration(by_day.get(day, 0)) or "–"} for day in days],
        "week_duration": format_duration(week_minutes) or "0:00",
        "capacity_hours": member.weekly_capacity_hours,
        "week_percent": round(100 * week_minutes / capacity_minutes) if capacity_minutes else None,
        "pending": pending[:LISTED_ENTRIES],
        "more_pending": len(pending) > LISTED_ENTRIES,
        "rejected": rejected[:LISTED_ENTRIES],
        "more_rejected": len(rejected) > LISTED_ENTRIES,
    }


def _projects_overview(user, member) -> list[Project] | None:
    """Managers see their projects, finance and management every active one; others get no section."""
    if user.has_perm("projects.view_project_budgets"):
        projects = Project.objects.all()
    elif member is not None:
        projects = Project.objects.filter(manager=member)
    else:
        return None
    projects = list(
        projects.filter(~Q(status=ProjectStatus.ARCHIVED)).select_related("client")
        .annotate(logged_minutes=Sum("time_entries__minutes"))[:LISTED_PROJECTS]
    )
    if not projects and not user.has_perm("projects.view_project_budgets"):
        return None
    for project in projects:
        minutes = project.logged_minutes or 0
        project.logged_duration = format_duration(minutes) or "0:00"
        project.budget_percent = (round(100 * minutes / (project.budget_hours * 60))
                                  if project.budget_hours else None)
    return projects
