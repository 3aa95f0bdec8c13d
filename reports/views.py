"""Management report pages: a dashboard, one page per report, the entries behind a figure, CSV downloads.

Views parse the filter bar, call one selector and hand its rows to a template (and to a chart spec);
`?download=csv` streams the same rows as CSV. Only finance and management (projects.view_reports).
"""

import datetime as dt
from functools import wraps
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from projects.views.access import forbidden
from reports import charts
from reports.csv_export import (
    ACCURACY,
    BUDGETS,
    ENTRY_HEADER,
    PROFITABILITY,
    TIME_TO_INVOICE,
    UTILIZATION,
    WIP,
    entry_rows,
    report_csv,
    stream_csv,
)
from reports.forms import ReportFilterForm
from reports.scope import ReportScope, default_range
from reports.selectors import (
    AGE_BUCKETS,
    BASES,
    billing_accuracy,
    budget_burn,
    budget_health,
    currency_totals,
    dashboard,
    days_distribution,
    entries_behind,
    overall_time_to_invoice,
    profitability,
    time_to_invoice,
    utilization,
    utilization_by_month,
    wip,
    wip_totals,
)
from reports.selectors.wip import age_range

# (url name, label) of the pages in the reports menu.
PAGES = [
    ("dashboard", "Overview"),
    ("utilization", "Utilization"),
    ("profitability", "Profitability"),
    ("budgets", "Budgets"),
    ("time-to-invoice", "Time to invoice"),
    ("billing-accuracy", "Billing accuracy"),
    ("wip", "Unbilled work"),
]
ENTRIES_PER_PAGE = 50


def reports_required(view):
    """Finance and management only; everyone else gets the portal's explanation with a 403."""

    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.has_perm("projects.view_reports"):
            return forbidden(request, "Management reports are shown to finance and management.")
        return view(request, *args, **kwargs)

    return wrapped


def scope_params(scope: ReportScope, **overrides) -> dict:
    params = {
        "start": scope.start.isoformat(),
        "end": scope.end.isoformat(),
        "client": scope.client_id,
        "project": scope.project_id,
        "member": scope.member_id,
        "role": scope.role_id,
    }
    params.update(overrides)
    return {name: value for name, value in params.items() if value not in (None, "")}


def entries_url(scope: ReportScope, basis: str, **overrides) -> str:
    """The drill-down page listing the entries behind a figure."""
    return f"{reverse('reports:entries')}?{urlencode(scope_params(scope, basis=basis, **overrides))}"


def _month_range(scope: ReportScope, month: dt.date) -> dict:
    """A month's dates, clipped to the range (for links from a monthly row)."""
    first, last = next(((a, b) for a, b in scope.months() if a.replace(day=1) == month), (month, month))
    return {"start": first.isoformat(), "end": last.isoformat()}


def _wants_csv(request) -> bool:
    return request.GET.get("download") == "csv"


def _filename(name: str, scope: ReportScope) -> str:
    return f"{name}-{scope.start:%Y%m%d}-{scope.end:%Y%m%d}.csv"


def _page(request, template: str, form: ReportFilterForm, page: str, context: dict | None = None, status=200):
    context = {"form": form, "pages": PAGES, "page": page, **(context or {})}
    if form.is_valid():
        context.update(scope=form.scope(), scope_query=urlencode(scope_params(form.scope())))
        if page != "dashboard":  # the overview has no table of its own to download
            query = request.GET.copy()
            query["download"] = "csv"
            context["csv_query"] = query.urlencode()
    return render(request, template, context, status=status)


def _invalid(request, template: str, form: ReportFilterForm, page: str):
    return _page(request, template, form, page, status=400)


def _grouped_report(request, page: str, groupings, columns, selector):
    """The filter bar of a report grouped several ways, and the answer that ends the request early, if any:
    the page with the form's errors (400), or the report as CSV."""
    form, valid = _form(request, groupings)
    if not valid:
        return form, _invalid(request, f"reports/{page.replace('-', '_')}.html", form, page)
    if _wants_csv(request):
        scope, group_by = form.scope(), form.cleaned_data["group_by"]
        return form, report_csv(_filename(f"{page}-by-{group_by}", scope), columns,
                                selector(scope=scope, group_by=group_by))
    return form, None


@reports_required
def dashboard_page(request):
    form, valid = _form(request)
    if not valid:
        return _invalid(request, "reports/dashboard.html", form, "dashboard")
    scope = form.scope()
    board = dashboard(scope=scope)
    context = {
        "board": board,
        "utilization_chart": charts.utilization_trend(board.utilization_months),
        "tti_chart": charts.time_to_invoice_trend(board.time_to_invoice_months),
        "accuracy_chart": charts.accuracy_trend(board.accuracy_months),
        "has_invoices": bool(board.time_to_invoice.entries or board.accuracy),
        "months": _dashboard_months(board),
        "utilization_link": entries_url(scope, "billable"),
        "tti_link": entries_url(scope, "invoiced"),
        "accuracy_link": entries_url(scope, "issued"),
        "wip_link": entries_url(scope, "unbilled"),
    }
    return _page(request, "reports/dashboard.html", form, "dashboard", context)


def _dashboard_months(board) -> list[dict]:
    """One line per month: utilization, time-to-invoice and accuracy (per currency) side by side."""
    tti = {row.key: row for row in board.time_to_invoice_months}
    accuracy: dict[dt.date, list] = {}
    for row in board.accuracy_months:
        accuracy.setdefault(row.key, []).append(row)
    return [
        {
            "month": month.month,
            "utilization": month,
            "tti": tti.get(month.month),
            "accuracy": accuracy.get(month.month, []),
        }
        for month in board.utilization_months
    ]


def _form(request, groupings=()):
    """The filter bar, bound to the query with the default range filled in (so the inputs show it)."""
    data = request.GET.copy()
    start, end = default_range(timezone.localdate())
    data.setdefault("start", start.isoformat())
    data.setdefault("end", end.isoformat())
    form = ReportFilterForm(data, groupings=groupings)
    return form, form.is_valid()


@reports_required
def utilization_page(request):
    form, answered = _grouped_report(request, "utilization", ("member", "role", "firm"), UTILIZATION, utilization)
    if answered:
        return answered
    scope, group_by = form.scope(), form.cleaned_data["group_by"]
    rows = list(utilization(scope=scope, group_by=group_by))
    link_key = {"member": "member", "role": "role"}.get(group_by)
    table = [
        {
            "row": row,
            "logged_link": entries_url(scope, "logged", **({link_key: row.key} if link_key else {})),
            "billable_link": entries_url(scope, "billable", **({link_key: row.key} if link_key else {})),
        }
        for row in rows
    ]
    chart = (
        charts.utilization_chart(rows, group_by)
        if group_by != "firm"
        else charts.utilization_trend(utilization_by_month(scope=scope))
    )
    return _page(
        request,
        "reports/utilization.html",
        form,
        "utilization",
        {"table": table, "group_by": group_by, "chart": chart, "has_chart": charts.has_data(chart)},
    )


@reports_required
def profitability_page(request):
    form, answered = _grouped_report(request, "profitability", ("project", "client"), PROFITABILITY, profitability)
    if answered:
        return answered
    scope, group_by = form.scope(), form.cleaned_data["group_by"]
    rows = list(profitability(scope=scope, group_by=group_by))
    table = [
        {"row": row, "link": entries_url(scope, "revenue", **{group_by: row.key}) if row.key else None}
        for row in rows
    ]
    chart = charts.margin_chart(rows, group_by)
    return _page(
        request,
        "reports/profitability.html",
        form,
        "profitability",
        {
            "table": table,
            "group_by": group_by,
            "totals": currency_totals(rows),
            "chart": chart,
            "has_chart": charts.has_data(chart),
        },
    )


@reports_required
def budgets_page(request):
    form, valid = _form(request)
    if not valid:
        return _invalid(request, "reports/budgets.html", form, "budgets")
    scope = form.scope()
    rows = budget_health(scope=scope)
    if _wants_csv(request):
        return report_csv(_filename("budgets", scope), BUDGETS, rows)
    chart = charts.burn_chart(rows, budget_burn(scope=scope))
    table = [{"row": row, "link": entries_url(scope, "logged", project=row.project.id)} for row in rows]
    return _page(
        request,
        "reports/budgets.html",
        form,
        "budgets",
        {"table": table, "chart": chart, "has_chart": charts.has_data(chart)},
    )


@reports_required
def time_to_invoice_page(request):
    form, answered = _grouped_report(request, "time-to-invoice", ("month", "client"), TIME_TO_INVOICE, time_to_invoice)
    if answered:
        return answered
    scope, group_by = form.scope(), form.cleaned_data["group_by"]
    rows = list(time_to_invoice(scope=scope, group_by=group_by))
    if group_by == "month":
        table = [
            {"row": row, "link": entries_url(scope, "invoiced", **_month_range(scope, row.key))}
            for row in rows
        ]
    else:
        table = [{"row": row, "link": entries_url(scope, "invoiced", client=row.key)} for row in rows]
    chart = charts.time_to_invoice_chart(days_distribution(scope=scope))
    unbilled = wip_totals(wip(scope=scope))
    return _page(
        request,
        "reports/time_to_invoice.html",
        form,
        "time-to-invoice",
        {
            "table": table,
            "group_by": group_by,
            "overall": overall_time_to_invoice(scope=scope),
            "chart": chart,
            "has_chart": charts.has_data(chart),
            "unbilled": unbilled,
            "age_labels": [b[0] for b in AGE_BUCKETS],
            "wip_link": reverse("reports:wip") + "?" + urlencode(scope_params(scope)),
        },
    )


@reports_required
def billing_accuracy_page(request):
    form, answered = _grouped_report(request, "billing-accuracy", ("month", "client", "currency"), ACCURACY, billing_accuracy)
    if answered:
        return answered
    scope, group_by = form.scope(), form.cleaned_data["group_by"]
    rows = list(billing_accuracy(scope=scope, group_by=group_by))
    if group_by == "month":
        table = [
            {"row": row, "link": entries_url(scope, "issued", **_month_range(scope, row.key))} for row in rows
        ]
        monthly = rows
    else:
        table = [
            {"row": row, "link": entries_url(scope, "issued", **({"client": row.key} if row.key else {}))}
            for row in rows
        ]
        monthly = list(billing_accuracy(scope=scope, group_by="month"))
    chart = charts.accuracy_trend(monthly)
    return _page(
        request,
        "reports/billing_accuracy.html",
        form,
        "billing-accuracy",
        {"table": table, "group_by": group_by, "chart": chart, "has_chart": charts.has_data(chart)},
    )


@reports_required
def wip_page(request):
    form, valid = _form(request)
    if not valid:
        return _invalid(request, "reports/wip.html", form, "wip")
    scope = form.scope()
    if _wants_csv(request):
        return report_csv(_filename("unbilled-work", scope), WIP, wip(scope=scope))
    rows = list(wip(scope=scope))
    labels = [bucket[0] for bucket in AGE_BUCKETS]
    table = [
        {
            "row": row,
            "cells": [
                {"bucket": bucket, "link": entries_url(scope, "unbilled", client=row.key, age=bucket.label)}
                for bucket in row.buckets
            ],
            "link": entries_url(scope, "unbilled", client=row.key),
        }
        for row in rows
    ]
    chart = charts.wip_chart(rows, labels)
    return _page(
        request,
        "reports/wip.html",
        form,
        "wip",
        {
            "table": table,
            "labels": labels,
            "totals": wip_totals(rows),
            "chart": chart,
            "has_chart": charts.has_data(chart),
        },
    )


@reports_required
def entries_page(request):
    form, valid = _form(request)
    basis = request.GET.get("basis") or "logged"
    age = request.GET.get("age", "")
    problems = []
    if basis not in BASES:
        problems.append(f"Unknown basis {basis!r}: choose one of {', '.join(BASES)}.")
    if age and (basis != "unbilled" or age not in [bucket[0] for bucket in AGE_BUCKETS]):
        problems.append(
            f"Age {age!r} applies to unbilled work only, as one of "
            f"{', '.join(bucket[0] for bucket in AGE_BUCKETS)}."
        )
    if not valid or problems:
        return _page(request, "reports/entries.html", form, "entries", {"problems": problems}, status=400)
    scope = form.scope()
    entries = entries_behind(scope=scope, basis=basis, age=age)
    if _wants_csv(request):
        return stream_csv(_filename(f"entries-{basis}", scope), ENTRY_HEADER, entry_rows(entries))
    page = Paginator(entries, ENTRIES_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    age_dates = age_range(age, timezone.localdate()) if age else None
    return _page(
        request,
        "reports/entries.html",
        form,
        "entries",
        {
            "entries": page,
            "basis": basis,
            "age": age,
            "age_dates": age_dates,
            "page_query": query.urlencode(),
            "can_open_admin": request.user.is_staff and request.user.has_perm("projects.view_timeentry"),
        },
    )
