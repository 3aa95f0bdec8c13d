"""REST API reports/...: the figures of the fixed firm, the row shapes of API.md, access and bad filters."""

import pytest
from rest_framework.test import APIClient

from tests.test_reports_data import FIRM_TIME_ZONE, build_firm

pytestmark = pytest.mark.django_db

MARCH = {"start": "2026-03-01", "end": "2026-03-31"}
SPRING = {"start": "2026-03-01", "end": "2026-04-30"}
REPORTS = ["utilization", "profitability", "budgets", "time-to-invoice", "billing-accuracy", "wip"]


@pytest.fixture
def firm(settings, finance):
    settings.TIME_ZONE = FIRM_TIME_ZONE
    return build_firm(finance.user)


def api(member=None) -> APIClient:
    client = APIClient()
    if member is not None:
        client.force_authenticate(member.user)
    return client


@pytest.mark.parametrize("report", REPORTS)
def test_reports_need_the_reports_permission(staff_member, approver, finance, management, report):
    url = f"/api/v1/reports/{report}/"
    assert api().get(url).status_code == 401
    assert api(staff_member).get(url).status_code == 403
    assert api(approver).get(url).status_code == 403
    assert api(finance).get(url).status_code == 200
    body = api(management).get(url).json()
    assert set(body) >= {"count", "next", "previous", "results", "start", "end", "group_by"}


def test_utilization_rows_by_member_role_and_firm(firm, management):
    body = api(management).get("/api/v1/reports/utilization/", {**MARCH, "role": firm.consultant.id}).json()
    assert (body["start"], body["end"], body["group_by"], body["count"]) == (
        "2026-03-01",
        "2026-03-31",
        "member",
        2,
    )
    assert body["results"][0] == {
        "member": firm.alice.id,
        "name": "Alice Adams",
        "members": 1,
        "capacity_hours": "176.00",
        "logged_hours": "25.00",
        "billable_hours": "23.00",
        "billable_utilization": "13.1",
    }
    roles = (
        api(management).get("/api/v1/reports/utilization/", {**MARCH, "group_by": "role"}).json()["results"]
    )
    consultant = next(row for row in roles if row["role"] == firm.consultant.id)
    assert (consultant["capacity_hours"], consultant["billable_utilization"]) == ("308.00", "10.2")
    assert "member" not in consultant
    [firm_row] = (
        api(management)
        .get("/api/v1/reports/utilization/", {**MARCH, "group_by": "firm", "role": firm.consultant.id})
        .json()["results"]
    )
    assert "member" not in firm_row and "role" not in firm_row and firm_row["billable_hours"] == "31.50"


def test_profitability_rows(firm, management):
    body = api(management).get("/api/v1/reports/profitability/", MARCH).json()
    acme_web = body["results"][0]
    assert {
        key: acme_web[key]
        for key in ("project", "name", "currency", "hours", "revenue", "cost", "margin", "margin_percent")
    } == {
        "project": firm.acme_web.id,
        "name": "Acme web",
        "currency": "USD",
        "hours": "33.50",
        "revenue": "2220.00",
        "cost": "2010.00",
        "margin": "210.00",
        "margin_percent": "9.5",
    }
    beta = body["results"][1]
    assert (beta["currency"], beta["cost_currency"], beta["margin"]) == ("EUR", "USD", None)
    clients = api(management).get("/api/v1/reports/profitability/", {**MARCH, "group_by": "client"}).json()
    assert [row["client"] for row in clients["results"]] == [firm.acme.id, firm.beta.id]


def test_time_to_invoice_and_billing_accuracy_rows(firm, management):
    months = api(management).get("/api/v1/reports/time-to-invoice/", SPRING).json()["results"]
    assert months == [
        {
            "month": "2026-03-01",
            "name": "March 2026",
            "entries": 2,
            "mean_days": "22.0",
            "median_days": "22.0",
            "p90_days": "29.2",
        },
        {
            "month": "2026-04-01",
            "name": "April 2026",
            "entries": 4,
            "mean_days": "31.0",
            "median_days": "31.5",
            "p90_days": "32.0",
        },
    ]
    accuracy = (
        api(management).get("/api/v1/reports/billing-accuracy/", {**SPRING, "group_by": "client"}).json()
    )
    assert accuracy["results"][0] == {
        "client": firm.acme.id,
        "name": "Acme",
        "currency": "USD",
        "lines": 2,
        "invoiced": "2280.00",
        "disputed": "840.00",
        "credited": "240.00",
        "accurate": "1200.00",
        "accuracy": "52.6",
    }


def test_budgets_and_wip_rows(firm, management):
    [acme_web] = (
        api(management)
        .get("/api/v1/reports/budgets/", {**MARCH, "project": firm.acme_web.id})
        .json()["results"]
    )
    assert (
        acme_web["project"],
        acme_web["hours_used"],
        acme_web["percent_used"],
        acme_web["hours_in_range"],
    ) == (firm.acme_web.id, "34.50", "34.5", "33.50")
    assert acme_web["budget_amount"] is None and isinstance(acme_web["alerts"], list)
    wip = api(management).get("/api/v1/reports/wip/", {"start": "2026-01-01", "end": "2026-03-31"}).json()
    acme = wip["results"][0]
    assert (acme["client"], acme["currency"]) == (firm.acme.id, "USD")
    assert [bucket["age"] for bucket in acme["buckets"]] == ["0-30", "31-60", "61-90", "90+"]
    assert acme["amount"] == "300.00"


def test_bad_filters_are_400_with_field_errors(firm, management):
    client = api(management)
    assert client.get(
        "/api/v1/reports/utilization/", {"start": "2026-03-31", "end": "2026-03-01"}
    ).json() == {"end": ["The range cannot end before it starts."]}
    response = client.get("/api/v1/reports/utilization/", {"group_by": "planet"})
    assert response.status_code == 400 and "group_by" in response.json()
    response = client.get("/api/v1/reports/profitability/", {"client": 999999})
    assert response.status_code == 400 and "client" in response.json()
    response = client.get("/api/v1/reports/wip/", {"start": "not-a-date"})
    assert response.status_code == 400 and "start" in response.json()
    response = client.get("/api/v1/reports/budgets/", {"start": "2020-01-01", "end": "2026-01-01"})
    assert response.status_code == 400 and "start" in response.json()


def test_rows_are_paginated_like_every_list(firm, management):
    body = api(management).get("/api/v1/reports/utilization/", {**MARCH, "page_size": 1}).json()
    assert body["count"] >= 3 and len(body["results"]) == 1 and body["next"] and "page=2" in body["next"]


def test_the_schema_lists_the_reports():
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    text = out.getvalue()
    for report in REPORTS:
        assert f"/api/v1/reports/{report}/:" in text
    assert "UtilizationReportPage" in text
