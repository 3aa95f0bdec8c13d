"""Finance forms: time imports, billing runs, the invoice list filters and the invoice actions; the client's
review forms. They parse and check what people typed; the rules live in the billing services."""

import re

from django import forms
from django.utils import timezone

from billing.csv_import import ImportFormat
from billing.models import Allocation, InvoiceKind, InvoiceStatus
from clients.models import Client

MAX_UPLOAD_MB = 10

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class ImportTimeForm(forms.Form):
    file = forms.FileField(label="CSV file", help_text=f"Up to {MAX_UPLOAD_MB} MB.")
    format = forms.ChoiceField(label="Exported by", choices=ImportFormat.choices)
    dry_run = forms.BooleanField(label="Dry run: check the file and report, save nothing", required=False)

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_MB * 1024 * 1024:
            raise forms.ValidationError(
                f"The file is {upload.size / (1024 * 1024):.1f} MB; the limit is {MAX_UPLOAD_MB} MB. "
                "Export a shorter period, or use the import_time management command."
            )
        return upload


def _clients():
    return Client.objects.order_by("name")


class BillingRunForm(forms.Form):
    period_start = forms.DateField(label="Period start", widget=DATE_INPUT)
    period_end = forms.DateField(label="Period end", widget=DATE_INPUT)
    client = forms.ModelChoiceField(label="Client", queryset=_clients(), required=False,
                                    empty_label="All clients")


class InvoiceFilterForm(forms.Form):
    """The invoice list's filters; a filter with a bad value is reported and left out, the others apply."""

    status = forms.ChoiceField(label="Status", required=False, choices=[("", "Any status"), *InvoiceStatus.choices])
    kind = forms.ChoiceField(label="Kind", required=False, choices=[("", "Invoices and credit notes"),
                                                                    *InvoiceKind.choices])
    client = forms.ModelChoiceField(label="Client", queryset=_clients(), required=False, empty_label="Any client")
    period_from = forms.DateField(label="Period ends from", required=False, widget=DATE_INPUT)
    period_to = forms.DateField(label="Period ends by", required=False, widget=DATE_INPUT)
    # Set by the link a billing run leads to; not offered as a visible filter.
    run = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def clean(self):
        data = super().clean()
        start, end = data.get("period_from"), data.get("period_to")
        if start and end and end < start:
            self.add_error("period_to", "Must not be before “Period ends from”.")
        return data

    def apply(self, invoices):
        if not self.is_bound:
            return invoices
        self.is_valid()  # fills cleaned_data with the fields that passed
        data = self.cleaned_data
        if data.get("status"):
            invoices = invoices.filter(status=data["status"])
        if data.get("kind"):
            invoices = invoices.filter(kind=data["kind"])
        if data.get("client"):
            invoices = invoices.filter(client=data["client"])
        if data.get("period_from"):
            invoices = invoices.filter(period_end__gte=data["period_from"])
        if data.get("period_to"):
            invoices = invoices.filter(period_end__lte=data["period_to"])
        if data.get("run"):
            invoices = invoices.filter(billing_run_id=data["run"])
        return invoices


class MarkPaidForm(forms.Form):
    paid_on = forms.DateField(label="Paid on", widget=DATE_INPUT)

    def clean_paid_on(self):
        paid_on = self.cleaned_data["paid_on"]
        if paid_on > timezone.localdate():
            raise forms.ValidationError("A payment date cannot be in the future.")
        return paid_on


class VoidForm(forms.Form):
    reason = forms.CharField(label="Why is this invoice void?", widget=forms.Textarea(attrs={"rows": 3}),
                             max_length=2000)


class Outcome:
    RELEASE = "release"
    WRITE_OFF = "write_off"
    DISMISS = "dismiss"
    CHOICES = [
        (RELEASE, "Take the chosen entries off the line and release them for a later invoice"),
        (WRITE_OFF, "Take the chosen entries off the line and write them off (never billed)"),
        (DISMISS, "Dismiss the dispute: the line stays as it is"),
    ]


class DisputeResolveForm(forms.Form):
    """Finance's answer to one dispute; the entries offered are those billed on the disputed line."""

    resolution = forms.CharField(label="Resolution (the client may read it)",
                                 widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)
    outcome = forms.ChoiceField(label="Outcome", choices=Outcome.CHOICES, widget=forms.RadioSelect,
                                initial=Outcome.RELEASE)
    entries = forms.TypedMultipleChoiceField(label="Entries to take off the line", coerce=int, required=False,
                                             widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, allocations: list[Allocation], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["entries"].choices = [(a.time_entry_id, _entry_label(a)) for a in allocations]


def _entry_label(allocation: Allocation) -> str:
    entry = allocation.time_entry
    text = (f"{entry.work_date:%d %b %Y} · {entry.member.name} · {entry.task_type.name} · "
            f"{allocation.minutes // 60}:{allocation.minutes % 60:02d} h")
    return f"{text} · {entry.description}" if entry.description else text


_WHOLE_MINUTES = re.compile(r"^\d+$")


class CreditNoteForm(forms.Form):
    """One minutes field per billed entry that still has minutes to credit: blank, "all", or whole minutes."""

    release = forms.TypedChoiceField(
        label="Credited time", widget=forms.RadioSelect, coerce=lambda value: value == "release",
        choices=[("release", "Release it: the minutes may be billed again on a later invoice"),
                 ("write_off", "Write it off: never billed again")], initial="release")
    reason = forms.CharField(label="Reason (kept in the invoice history)", required=False, max_length=2000,
                             widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, allocations: list[Allocation], **kwargs):
        super().__init__(*args, **kwargs)
        self.rows = []
        for allocation in allocations:
            left = allocation.minutes - allocation.credited_minutes
            name = f"minutes_{allocation.time_entry_id}"
            if left > 0:
                self.fields[name] = forms.CharField(
                    label=f"Minutes of entry {allocation.time_entry_id} to credit", required=False, max_length=10,
                    widget=forms.TextInput(attrs={"placeholder": f"all = {left}", "inputmode": "numeric",
                                                  "size": 6}))
            self.rows.append({"allocation": allocation, "left": left, "field": self[name] if left > 0 else None})

    def clean(self):
        data = super().clean()
        self.parts = []
        for row in self.rows:
            if row["field"] is None:
                continue
            name, left = row["field"].name, row["left"]
            value = (data.get(name) or "").strip().lower()
            if not value:
                continue
            if value == "all":
                self.parts.append((row["allocation"].time_entry_id, None))
            elif _WHOLE_MINUTES.match(value) and int(value) > 0:
                # How many may be credited is the service's rule (it reports too many by entry).
                self.parts.append((row["allocation"].time_entry_id, int(value)))
            else:
                self.add_error(name, f"Enter whole minutes (up to {left}) or “all”.")
        if not self.parts and not self.errors:
            raise forms.ValidationError("Enter the minutes to credit for at least one entry.")
        return data


class ReviewAcceptForm(forms.Form):
    name = forms.CharField(label="Your name (optional)", required=False, max_length=200)


class ReviewDisputeForm(forms.Form):
    line = forms.IntegerField(widget=forms.HiddenInput)
    comment = forms.CharField(label="What is wrong with this line?", max_length=5000,
                              widget=forms.Textarea(attrs={"rows": 3}),
                              error_messages={"required": "Tell us what is wrong with this line."})
    name = forms.CharField(label="Your name (optional)", required=False, max_length=200)
