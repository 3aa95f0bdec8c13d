"""Single entries and "My time": a member's own entries, with edit and delete while nothing downstream used them."""

import datetime as dt

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Sum
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.dateformat import format as format_date

from billing.pipeline import ingest
from projects.forms import MyTimeFilterForm, TimeEntryForm, format_duration
from projects.models import EntrySource, EntryStatus, TimeEntry
from projects.time_capture import time_entry_delete
from projects.views.access import member_required
from projects.views.week_grid import member_today

ENTRIES_PER_PAGE = 50


def _save_entry(request, member, form: TimeEntryForm, source: str) -> bool:
    """Send the form's entry through the pipeline; the pipeline's objections land on the form's fields."""
    result = ingest([form.to_input(member_id=member.id)], source, acting_user=request.user,
                    allowed_member_ids={member.id}, all_or_nothing=True)
    for rejected in result.rejected:
        form.add_ingest_errors(rejected.errors)
    return not result.rejected


@member_required
def entry_new(request, member):
    if request.method == "POST":
        form = TimeEntryForm(request.POST)
        if form.is_valid() and _save_entry(request, member, form, EntrySource.PORTAL):
            data = form.cleaned_data
            messages.success(request, f"Logged {format_duration(data['duration'])} on {data['project'].code} "
                                      f"for {format_date(data['work_date'], 'D j M Y')}.")
            if "add_another" in request.POST:
                return redirect(f"{reverse('portal:entry-new')}?date={data['work_date'].isoformat()}")
            return redirect("portal:my-time")
    else:
        form = TimeEntryForm(initial={"work_date": _initial_date(request, member), "billable": True})
    return render(request, "portal/entry_form.html", {"form": form, "entry": None})


def _initial_date(request, member) -> dt.date:
    try:
        return dt.date.fromisoformat(request.GET["date"])
    except (KeyError, ValueError):
        return member_today(member)


def _own_entry(member, pk) -> TimeEntry:
    # Someone else's entry is not found at all, rather than forbidden: its existence is not shown.
    return get_object_or_404(TimeEntry.objects.select_related("project", "task_type", "approval"),
                             pk=pk, member=member)


def _rejection_reason(entry: TimeEntry) -> str:
    approval = getattr(entry, "approval", None)
    return approval.note if approval is not None and entry.status == EntryStatus.REJECTED else ""


def _not_editable(request, entry: TimeEntry, action: str):
    messages.error(request, f"This entry is {entry.get_status_display().lower()} and can no longer be {action}.")
    return redirect("portal:my-time")


@member_required
def entry_edit(request, member, pk: int):
    entry = _own_entry(member, pk)
    if not entry.is_editable:
        return _not_editable(request, entry, "changed")
    if request.method == "POST":
        form = TimeEntryForm(request.POST, entry=entry)
        # Its own source and external id, so the pipeline updates this entry rather than adding one.
        if form.is_valid() and _save_entry(request, member, form, entry.source):
            messages.success(request, "Entry saved.")
            return redirect("portal:my-time")
    else:
        form = TimeEntryForm(entry=entry)
    entry.rejection_reason = _rejection_reason(entry)
    return render(request, "portal/entry_form.html", {"form": form, "entry": entry})


@member_required
def entry_delete(request, member, pk: int):
    entry = _own_entry(member, pk)
    if not entry.is_editable:
        return _not_editable(request, entry, "deleted")
    if request.method == "POST":
        try:
            time_entry_delete(entry=entry)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, f"Deleted {format_duration(entry.minutes)} on {entry.project.code} "
                                      f"of {format_date(entry.work_date, 'D j M Y')}.")
        return redirect("portal:my-time")
    entry.duration = format_duration(entry.minutes)
    return render(request, "portal/entry_confirm_delete.html", {"entry": entry})


@member_required
def my_time(request, member):
    filters = MyTimeFilterForm(request.GET, member=member)
    entries = filters.apply(
        TimeEntry.objects.filter(member=member).select_related("project__client", "task_type", "approval")
    )
    page = Paginator(entries, ENTRIES_PER_PAGE).get_page(request.GET.get("page"))
    total_minutes = entries.aggregate(total=Sum("minutes"))["total"] or 0
    for entry in page:
        entry.duration = format_duration(entry.minutes)
        entry.rejection_reason = _rejection_reason(entry)
    # Page links keep the filters.
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "portal/my_time.html", {
        "filters": filters, "page": page, "filter_query": query.urlencode(),
        "total_duration": format_duration(total_minutes) or "0:00",
    })
