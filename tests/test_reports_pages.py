"""The management report pages: access, figures, charts, drill-down links, CSV downloads, bad filters."""

import csv
import io
import json
import re
from html import unescape

import pytest
from django.urls import reverse

from reports.scope import default_range
from tests.factories import PASSWORD, TeamMemberFactory
from tests.test_reports_data import FIRM_TIME_ZONE, build_firm

pytestmark = pytest.mark.django_db

MARCH = {"start": "2026-03-01", "end": "2026-03-31"}
SPRING = {"start": "2026-03-01", "end": "2026-04-30"}
PAGES = [
    "dashboard",
    "utilization",
    "profitability",
    "budgets",
    "time-to-invoice",
    "billing-accuracy",
    "wip",
    "entries",
]


def login(client, member):
    assert client.login(username=member.user.username, password=PASSWORD)
    return client


@pytest.fixture
def firm(settings, finance):
    settings.TIME_ZONE = FIRM_TIME_ZONE
    return build_firm(finance.user)


@pytest.fixture
def manager_client(client, management):
    return login(client, management)


def chart_specs(html: str) -> dict[str, dict]:
    """The Chart.js specs a page carries, by canvas id, checking each canvas has its spec."""
    specs = {}
    for canvas, source in re.findall(r'<canvas id="([^"]+)" data-chart="([^"]+)"', html):
        found = re.search(
            rf'<script id="{re.escape(source)}" type="application/json">(.*?)</script>', html, re.S
        )
        assert found, f"no spec for {canvas}"
        specs[canvas] = json.loads(found.group(1))
    return specs


def links(html: str, path: str) -> list[str]:
    return [unescape(href) for href in re.findall(rf'href="({re.escape(path)}[^"]*)"', html)]


@pytest.mark.parametrize("page", PAGES)
def test_only_finance_and_management_see_reports(
    client, staff_member, project_manager, finance, management, page
):
    url = reverse(f"reports:{page}")
    assert client.get(url).status_code == 302  # to the login page
    for member in (staff_member, project_manager):
        response = login(client, member).get(url)
        assert response.status_code == 403 and b"finance and management" in response.content
    for member in (finance, management):
        assert login(client, member).get(url).status_code == 200


def test_the_menu_links_reports_for_those_who_may_see_them(client, staff_member, management):
    assert b'href="/reports/"' not in login(client, staff_member).get(reverse("portal:home")).content
    assert b'href="/reports/"' in login(client, management).get(reverse("portal:home")).content


def test_the_dashboard_shows_the_three_key_metrics_and_their_trends(firm, manager_client):
    html = manager_client.get(reverse("reports:dashboard"), SPRING).content.decode()
    assert "Billable utilization" in html and "Time to invoice" in html and "Billing accuracy" in html
    assert "31.0 <small>days median</small>" in html  # 13, 29, 31, 31, 32, 32
    assert "52.6%" in html and "100.0%" in html  # USD after the dispute and the credit; EUR
    specs = chart_specs(html)
    assert set(specs) == {"utilization-trend", "tti-trend", "accuracy-trend"}
    assert specs["tti-trend"]["data"]["labels"] == ["Mar 2026", "Apr 2026"]
    assert specs["tti-trend"]["data"]["datasets"][0]["data"] == [22.0, 31.5]
    assert specs["accuracy-trend"]["data"]["datasets"] == [
        {**specs["accuracy-trend"]["data"]["datasets"][0], "label": "EUR", "data": [100.0, None]},
        {**specs["accuracy-trend"]["data"]["datasets"][1], "label": "USD", "data": [None, 52.6]},
    ]


def test_pages_without_invoices_say_so(manager_client, management):
    html = manager_client.get(reverse("reports:dashboard")).content.decode()
    assert "No invoiced time in this range" in html
    for page in ("time-to-invoice", "billing-accuracy"):
        html = manager_client.get(reverse(f"reports:{page}")).content.decode()
        assert "No invoiced time in this range" in html or "No invoices issued in this range" in html


def test_utilization_page_table_chart_and_drill_down(firm, manager_client):
    html = manager_client.get(reverse("reports:utilization"), MARCH).content.decode()
    assert re.search(r"Alice Adams</th>\s*<td>Consultant</td>\s*<td class=\"numeric\">176.00</td>", html)
    assert "13.1%" in html and "6.4%" in html
    spec = chart_specs(html)["utilization-chart"]
    assert spec["type"] == "bar" and "Alice Adams" in spec["data"]["labels"]
    assert 13.1 in spec["data"]["datasets"][0]["data"]
    # The billable hours of Alice link to exactly her billable entries of the range.
    [billable] = [
        url
        for url in links(html, "/reports/entries/")
        if f"member={firm.alice.id}" in url and "basis=billable" in url
    ]
    drill = manager_client.get(billable).content.decode()
    assert "3 entries" in drill and drill.count("acme-web<br>") == 3


def test_utilization_by_role_and_firm(firm, manager_client):
    html = manager_client.get(reverse("reports:utilization"), {**MARCH, "group_by": "role"}).content.decode()
    assert "Consultant" in html and "10.2%" in html
    html = manager_client.get(reverse("reports:utilization"), {**MARCH, "group_by": "firm"}).content.decode()
    assert chart_specs(html)["utilization-chart"]["type"] == "line"


def test_profitability_page(firm, manager_client):
    html = manager_client.get(reverse("reports:profitability"), MARCH).content.decode()
    assert "2,220.00 USD" in html and "9.5%" in html and "66.27/h" in html
    assert "cost in USD" in html  # Beta's margin cannot be computed across currencies
    spec = chart_specs(html)["margin-chart"]
    assert spec["data"]["labels"] == ["acme-web (USD)"] and spec["data"]["datasets"][0]["data"] == [9.5]
    html = manager_client.get(
        reverse("reports:profitability"), {**MARCH, "group_by": "client"}
    ).content.decode()
    assert "Acme" in html and "50.00 EUR" in html


def test_budgets_page_shows_burn_against_time(firm, manager_client):
    html = manager_client.get(reverse("reports:budgets"), MARCH).content.decode()
    assert "acme-web" in html and "34.5%" in html
    spec = chart_specs(html)["burn-chart"]
    acme, budget = spec["data"]["datasets"]
    assert spec["data"]["labels"] == ["23 Feb", "02 Mar", "09 Mar", "16 Mar", "23 Mar", "30 Mar"]
    assert (acme["label"], acme["data"]) == ("acme-web", [1.0, 22.0, 33.0, 33.0, 33.0, 34.5])
    assert budget["label"] == "Budget" and budget["data"] == [100] * 6


def test_time_to_invoice_page(firm, manager_client):
    html = manager_client.get(reverse("reports:time-to-invoice"), SPRING).content.decode()
    assert "April 2026" in html and "31.5" in html and "29.2" in html
    spec = chart_specs(html)["tti-chart"]
    assert spec["data"]["datasets"][0]["data"] == [0, 1, 1, 4, 0, 0, 0]
    [april] = [url for url in links(html, "/reports/entries/") if "start=2026-04-01" in url]
    assert "4 entries" in manager_client.get(april).content.decode()
    html = manager_client.get(
        reverse("reports:time-to-invoice"), {**SPRING, "group_by": "client"}
    ).content.decode()
    assert "Acme" in html and "Beta" in html


def test_billing_accuracy_page(firm, manager_client):
    html = manager_client.get(reverse("reports:billing-accuracy"), SPRING).content.decode()
    assert "52.6%" in html and "840.00" in html and "240.00" in html
    assert chart_specs(html)["accuracy-chart"]["type"] == "line"
    html = manager_client.get(
        reverse("reports:billing-accuracy"), {**SPRING, "group_by": "client"}
    ).content.decode()
    assert "Acme" in html and "52.6%" in html


def test_wip_page_links_each_age_bucket_to_its_entries(firm, manager_client):
    html = manager_client.get(
        reverse("reports:wip"), {"start": "2026-01-01", "end": "2026-03-31"}
    ).content.decode()
    assert "Acme" in html and "Beta" in html
    spec = chart_specs(html)["wip-chart"]
    assert [dataset["label"] for dataset in spec["data"]["datasets"]] == [
        "0-30 days",
        "31-60 days",
        "61-90 days",
        "90+ days",
    ]
    bucket_links = [url for url in links(html, "/reports/entries/") if "age=" in url]
    assert bucket_links
    for url in bucket_links:
        assert manager_client.get(url).status_code == 200


def test_bad_filters_get_a_clear_400(firm, manager_client):
    response = manager_client.get(
        reverse("reports:utilization"), {"start": "2026-03-31", "end": "2026-03-01"}
    )
    assert response.status_code == 400 and b"The range cannot end before it starts." in response.content
    response = manager_client.get(reverse("reports:profitability"), {"client": "999999"})
    assert response.status_code == 400 and b"Select a valid choice" in response.content
    response = manager_client.get(reverse("reports:utilization"), {"group_by": "planet"})
    assert response.status_code == 400
    response = manager_client.get(reverse("reports:entries"), {"basis": "gossip"})
    assert response.status_code == 400 and b"Unknown basis" in response.content
    response = manager_client.get(reverse("reports:entries"), {"basis": "unbilled", "age": "forever"})
    assert response.status_code == 400 and b"Age" in response.content
    response = manager_client.get(reverse("reports:wip"), {"start": "yesterday"})
    assert response.status_code == 400 and b"Enter a valid date." in response.content


def read_csv(response) -> list[list[str]]:
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.mark.parametrize(
    ("page", "params", "header", "first"),
    [
        ("utilization", MARCH, "billable_utilization_percent", ["Alice Adams", "Consultant"]),
        ("profitability", MARCH, "margin_percent", ["acme-web", "Acme web", "Acme", "USD"]),
        ("budgets", MARCH, "percent_used", ["acme-web"]),
        ("time-to-invoice", SPRING, "p90_days", ["2026-03-01", "March 2026", "2", "22.0", "22.0", "29.2"]),
        ("billing-accuracy", SPRING, "accuracy_percent", ["2026-03-01", "March 2026", "EUR", "1", "600.00"]),
        ("wip", {"start": "2026-01-01", "end": "2026-03-31"}, "on_drafts", ["Acme", "USD"]),
    ],
)
def test_every_report_downloads_as_csv(firm, manager_client, page, params, header, first):
    response = manager_client.get(reverse(f"reports:{page}"), {**params, "download": "csv"})
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    rows = read_csv(response)
    assert header in rows[0]
    assert all(value in rows[1] for value in first), rows[1]


def test_the_entries_csv_lists_the_entries_behind_a_figure(firm, manager_client):
    response = manager_client.get(
        reverse("reports:entries"), {**MARCH, "basis": "logged", "member": firm.bob.id, "download": "csv"}
    )
    rows = read_csv(response)
    assert rows[0][:3] == ["id", "work_date", "member"]
    assert [(row[1], row[7]) for row in rows[1:]] == [
        ("2026-03-02", "360"),
        ("2026-03-05", "60"),
        ("2026-03-30", "90"),
    ]
    assert rows[1][14] == firm.acme_invoice.number


def test_a_member_filter_on_the_entries_page_is_validated(firm, manager_client):
    stranger = TeamMemberFactory(name="Zed")
    html = manager_client.get(reverse("reports:entries"), {**MARCH, "member": stranger.id}).content.decode()
    assert "0 entries" in html


def test_report_pages_carry_chart_js_from_this_project(firm, manager_client):
    html = manager_client.get(reverse("reports:budgets"), MARCH).content.decode()
    assert "/static/vendor/chartjs/chart.umd.min.js" in html and "/static/reports/charts.js" in html
    assert "cdn" not in html.lower()
    assert manager_client.get("/static/vendor/chartjs/chart.umd.min.js").status_code == 200


def test_dates_default_to_the_current_month_and_the_two_before(manager_client):
    from django.utils import timezone

    start, end = default_range(timezone.localdate())
    html = manager_client.get(reverse("reports:utilization")).content.decode()
    assert f'value="{start.isoformat()}"' in html and f'value="{end.isoformat()}"' in html
