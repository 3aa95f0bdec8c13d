"""The finance upload page for time exports (Toggl, Harvest, native CSV)."""

from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import render

from billing.csv_import import import_time_csv
from billing.forms import ImportTimeForm

# A page listing tens of thousands of rejected rows helps nobody; the command lists them all.
MAX_REJECTED_SHOWN = 500


@login_required
@permission_required("projects.import_time", raise_exception=True)
def import_time(request):
    """Upload a time export; the answer is the import report (or, for a dry run, what it would be)."""
    form = ImportTimeForm(request.POST, request.FILES) if request.method == "POST" else ImportTimeForm()
    report = None
    if form.is_bound and form.is_valid():
        report = import_time_csv(file=form.cleaned_data["file"], format=form.cleaned_data["format"],
                                 dry_run=form.cleaned_data["dry_run"], acting_user=request.user)
        if report.file_error:
            form.add_error("file", report.file_error)
            report = None
    context = {"form": form, "report": report}
    if report is not None:
        context["rejected_shown"] = report.rejected[:MAX_REJECTED_SHOWN]
        context["rejected_hidden"] = max(0, len(report.rejected) - MAX_REJECTED_SHOWN)
    return render(request, "billing/import_time.html", context)
