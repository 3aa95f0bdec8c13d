"""The client's review page: no login, the signed link is the key. Accept the draft, or dispute a line.

A refused link gets a plain page saying why: 403 when the link was altered or forged, 410 when it was
genuine but the review is over (expired, or the draft was finalized or deleted).
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.shortcuts import redirect, render

from billing.forms import ReviewAcceptForm, ReviewDisputeForm
from billing.models import Allocation, Invoice, InvoiceLine, LineDispute
from billing.money import hours
from billing.review import ReviewLinkError, invoice_for_review, review_accept, review_dispute


def _refused(request, reason: str, *, status: int):
    return render(request, "billing/review_refused.html", {"reason": reason}, status=status)


def _lines(invoice: Invoice) -> list[InvoiceLine]:
    """The lines with the time behind them (written-off entries left out) and their disputes, in 4 queries."""
    billed = Allocation.objects.filter(minutes__gt=0) \
        .select_related("time_entry__member", "time_entry__task_type") \
        .order_by("time_entry__work_date", "time_entry_id")
    lines = list(InvoiceLine.objects.filter(invoice=invoice).order_by("position").prefetch_related(
        Prefetch("allocations", queryset=billed),
        Prefetch("disputes", queryset=LineDispute.objects.order_by("raised_at", "id"))))
    for line in lines:
        for allocation in line.allocations.all():
            allocation.hours = hours(allocation.minutes)
    return lines


def client_review(request, token: str):
    try:
        invoice = invoice_for_review(token)
    except ReviewLinkError as error:
        return _refused(request, str(error), status=error.status)

    accept_form, dispute_form = ReviewAcceptForm(), None
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "accept":
            accept_form = ReviewAcceptForm(request.POST)
            if accept_form.is_valid():
                return _accept(request, invoice, accept_form.cleaned_data["name"])
        elif action == "dispute":
            dispute_form = ReviewDisputeForm(request.POST)
            if dispute_form.is_valid():
                data = dispute_form.cleaned_data
                return _dispute(request, invoice, data["line"], data["comment"], data["name"])
        else:
            messages.error(request, "Choose to accept the invoice or to dispute a line.")
            return redirect(request.path)

    lines = _lines(invoice)
    disputed_line = dispute_form.cleaned_data.get("line") if dispute_form is not None else None
    if dispute_form is not None and disputed_line not in {line.pk for line in lines}:
        messages.error(request, "That line is not on this invoice.")
        return redirect(request.path)
    for line in lines:
        # The form that was just refused stays under its line with its errors; the others start empty.
        if line.pk == disputed_line:
            dispute_form.auto_id = f"line{line.pk}_%s"
            line.dispute_form = dispute_form
        else:
            line.dispute_form = ReviewDisputeForm(initial={"line": line.pk}, auto_id=f"line{line.pk}_%s")
    return render(request, "billing/client_review.html", {
        "invoice": invoice, "lines": lines, "accept_form": accept_form,
    })


def _accept(request, invoice: Invoice, name: str):
    try:
        review_accept(invoice=invoice, name=name)
    except ReviewLinkError as error:
        return _refused(request, str(error), status=410)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Thank you: you accepted this invoice. We will issue it shortly.")
    return redirect(request.path)


def _dispute(request, invoice: Invoice, line_id: int, comment: str, name: str):
    try:
        review_dispute(invoice=invoice, line_id=line_id, comment=comment, name=name)
    except ReviewLinkError as error:
        return _refused(request, str(error), status=410)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Thank you: we have your comment on this line and will answer it before "
                                  "the invoice is issued.")
    return redirect(f"{request.path}#line-{line_id}")
