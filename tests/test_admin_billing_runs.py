"""Running billing from the admin, and re-rating after contract and rate changes made there."""

import datetime as dt
from decimal import Decimal

import pytest
from django import forms
from django.urls import reverse
from djmoney.money import Money

from billing.models import BillingRun, Invoice, Rate
from projects.models import TimeEntry
from tests.billing_helpers import approved_time
from tests.factories import PASSWORD, ProjectFactory, RateFactory, TaskTypeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_finance(client, finance):
    assert client.login(username=finance.user.username, password=PASSWORD)
    return client


@pytest.fixture
def logged(staff_member):
    project = ProjectFactory(code="acme-web")
    rate = RateFactory(contract=project.contract, hourly_rate=Money("100.00", "USD"))
    entries = approved_time(staff_member, project, TaskTypeFactory(code="dev"), [(dt.date(2026, 3, 2), 60)])
    return project, rate, entries[0]


def test_finance_runs_billing_from_the_admin(admin_client_finance, logged):
    url = reverse("admin:billing_billingrun_add")
    assert admin_client_finance.get(url).status_code == 200
    response = admin_client_finance.post(url, {"period_start": "2026-03-01", "period_end": "2026-03-31"})
    run = BillingRun.objects.get()
    assert response.status_code == 302 and f"billing_run__id__exact={run.pk}" in response["Location"]
    assert Invoice.objects.get().subtotal == Decimal("100.00")


def test_a_bad_period_is_a_form_error(admin_client_finance, logged):
    response = admin_client_finance.post(reverse("admin:billing_billingrun_add"),
                                         {"period_start": "2026-03-31", "period_end": "2026-03-01"})
    assert response.status_code == 200 and "cannot end before it starts" in response.content.decode()
    assert not BillingRun.objects.exists()


def test_staff_cannot_run_billing(client, staff_member, logged):
    client.login(username=staff_member.user.username, password=PASSWORD)
    client.post(reverse("admin:billing_billingrun_add"), {"period_start": "2026-03-01", "period_end": "2026-03-31"})
    assert not BillingRun.objects.exists()


def test_a_rate_changed_in_the_admin_rerates_open_entries(admin_client_finance, logged,
                                                          django_capture_on_commit_callbacks):
    project, rate, entry = logged
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_finance.post(reverse("admin:billing_rate_change", args=[rate.pk]), {
            "contract": project.contract.pk, "hourly_rate_0": "150.00", "hourly_rate_1": "USD",
            "effective_from": "2026-01-01", "effective_to": ""})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Rate.objects.get().hourly_rate == Money("150.00", "USD")
    assert TimeEntry.objects.get(pk=entry.pk).amount == Money("150.00", "USD")


def _form_data(response) -> dict:
    """What the browser would post back from an admin change page, untouched."""
    data = {}
    page_forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        page_forms.extend(formset.forms)
        for name, value in formset.management_form.initial.items():
            data[f"{formset.prefix}-{name}"] = value
    for form in page_forms:
        for name, field in form.fields.items():
            value = form.initial.get(name, field.initial)
            widget_value = field.widget.format_value(value) if hasattr(field.widget, "format_value") else value
            if isinstance(field.widget, forms.MultiWidget):
                for index, part in enumerate(field.widget.decompress(value)):
                    data[f"{form.add_prefix(name)}_{index}"] = "" if part is None else str(part)
            elif isinstance(value, bool):
                if value:
                    data[form.add_prefix(name)] = "on"
            elif value is not None:
                data[form.add_prefix(name)] = widget_value if widget_value is not None else ""
    return data


def test_new_contract_terms_in_the_admin_rerate_open_entries(admin_client_finance, logged,
                                                             django_capture_on_commit_callbacks):
    project, _, entry = logged
    TimeEntry.objects.filter(pk=entry.pk).update(minutes=50, billable_minutes=50)
    url = reverse("admin:clients_contract_change", args=[project.contract.pk])
    data = _form_data(admin_client_finance.get(url))
    data.update({"rounding_increment": "30", "rounding_mode": "up"})
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_finance.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    # The entry was logged as 50 minutes; the new 30-minute rounding bills an hour.
    assert TimeEntry.objects.get(pk=entry.pk).billable_minutes == 60
    data["rounding_increment"] = "0"
    with django_capture_on_commit_callbacks(execute=True):
        admin_client_finance.post(url, data)
    entry = TimeEntry.objects.get(pk=entry.pk)
    assert (entry.billable_minutes, entry.amount) == (50, Money("83.33", "USD"))
