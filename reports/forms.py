"""The filter bar every report page shares: date range, client, project, member, role, grouping."""

import datetime as dt

from django import forms
from django.utils import timezone

from clients.models import Client
from projects.models import Project, Role, TeamMember
from reports.scope import MAX_RANGE_DAYS, ReportScope, default_range


class ProjectChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Project) -> str:
        return f"{obj.code} · {obj.name}"


class ReportFilterForm(forms.Form):
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    client = forms.ModelChoiceField(
        Client.objects.order_by("name"), required=False, empty_label="All clients"
    )
    project = ProjectChoiceField(Project.objects.order_by("code"), required=False, empty_label="All projects")
    member = forms.ModelChoiceField(
        TeamMember.objects.order_by("name"), required=False, empty_label="All members"
    )
    role = forms.ModelChoiceField(Role.objects.order_by("name"), required=False, empty_label="All roles")
    group_by = forms.ChoiceField(required=False)

    def __init__(self, data=None, *, groupings: tuple[str, ...] = (), today: dt.date | None = None, **kwargs):
        super().__init__(data, **kwargs)
        self.today = today or timezone.localdate()
        self.groupings = groupings
        if groupings:
            self.fields["group_by"].choices = [
                (name, name.replace("_", " ").capitalize()) for name in groupings
            ]
        else:
            del self.fields["group_by"]

    def clean(self):
        cleaned = super().clean()
        default_start, default_end = default_range(self.today)
        start = cleaned.get("start") or default_start
        end = cleaned.get("end") or default_end
        if "start" in self.errors or "end" in self.errors:
            return cleaned
        if end < start:
            self.add_error("end", "The range cannot end before it starts.")
        elif (end - start).days > MAX_RANGE_DAYS:
            self.add_error("start", f"Choose a range of at most {MAX_RANGE_DAYS} days.")
        cleaned["start"], cleaned["end"] = start, end
        if self.groupings:
            cleaned["group_by"] = cleaned.get("group_by") or self.groupings[0]
        return cleaned

    def scope(self) -> ReportScope:
        data = self.cleaned_data
        return ReportScope(
            start=data["start"],
            end=data["end"],
            client_id=data["client"].pk if data.get("client") else None,
            project_id=data["project"].pk if data.get("project") else None,
            member_id=data["member"].pk if data.get("member") else None,
            role_id=data["role"].pk if data.get("role") else None,
        )
