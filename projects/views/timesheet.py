"""The weekly timesheet page: show a week, add or copy rows, save the whole week at once."""

import datetime as dt

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse

from projects.views.access import member_required
from projects.views.week_grid import WeekGrid, member_today, week_start


def _week_url(start: dt.date) -> str:
    return f"{reverse('portal:timesheet')}?week={start.isoformat()}"


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def _chosen_week(request, value: str | None, member) -> dt.date:
    """The Monday of the week asked for (any day of it will do); this week when none or a bad one is given."""
    if value:
        try:
            return week_start(dt.date.fromisoformat(value.strip()))
        except ValueError:
            messages.error(request, f"{value!r} is not a date (use YYYY-MM-DD); showing this week instead.")
    return week_start(member_today(member))


@member_required
def timesheet(request, member):
    if request.method != "POST":
        grid = WeekGrid.load(member=member, start=_chosen_week(request, request.GET.get("week"), member))
        return _render(request, grid, member)

    grid = WeekGrid.load(member=member, start=_chosen_week(request, request.POST.get("week"), member))
    grid.apply_posted(request.POST)
    for notice in grid.notices:
        messages.warning(request, notice)
    action = request.POST.get("action", "save")
    if action == "add_row":
        problem = grid.add_row(project_id=request.POST.get("add_project"),
                               task_type_id=request.POST.get("add_task_type"))
        if problem:
            messages.error(request, problem)
        return _render(request, grid, member)
    if action == "copy_rows":
        added, skipped = grid.copy_last_week_rows()
        if added:
            messages.info(request, f"Copied {_rows(added)} from last week: "
                                   "enter the hours, then save the week.")
        elif not skipped:
            messages.info(request, "Last week has no rows that are not already here.")
        if skipped:
            messages.warning(request, f"Not copied: {_rows(skipped)} of last week for projects that are "
                                      "not open for time this week.")
        return _render(request, grid, member)

    outcome = grid.save(acting_user=request.user)
    if not outcome.saved:
        messages.error(request, "Nothing was saved: correct the cells marked below, then save the week again.")
        return _render(request, grid, member)
    if outcome.changed:
        messages.success(request, f"Week saved: {outcome.summary()}.")
    else:
        messages.info(request, "Nothing to save: the week is unchanged.")
    return redirect(_week_url(grid.start))


def _render(request, grid: WeekGrid, member):
    today = member_today(member)
    return render(request, "portal/timesheet.html", {
        "grid": grid,
        "rows": grid.sorted_rows(),
        "today": today,
        "this_week": week_start(today),
        "previous_url": _week_url(grid.previous_week),
        "next_url": _week_url(grid.next_week),
        "this_week_url": _week_url(week_start(today)),
    })
