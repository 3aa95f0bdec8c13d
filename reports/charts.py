"""Chart.js configurations for the report pages, built from selector rows (the browser draws them).

Each function returns {"type", "data", "options", "unit"}: static/reports/charts.js reads it from a
json_script element, uses `unit` to label axes and tooltips, and passes the rest to Chart.js.
"""

from decimal import Decimal

# Colour-blind-friendly palette (Okabe-Ito), repeated when there are more series.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def _number(value) -> float | None:
    return None if value is None else float(value)


def _colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _bar(
    labels, datasets, unit: str, *, horizontal: bool = False, stacked: bool = False, title: str = ""
) -> dict:
    scale = {"beginAtZero": True, "stacked": stacked}
    return {
        "type": "bar",
        "unit": unit,
        "data": {"labels": labels, "datasets": datasets},
        "options": {
            "indexAxis": "y" if horizontal else "x",
            "responsive": True,
            "maintainAspectRatio": False,
            "scales": {"x": {**scale, "stacked": stacked}, "y": {**scale}},
            "plugins": {"title": {"display": bool(title), "text": title}, "legend": {"position": "bottom"}},
        },
    }


def _line(labels, datasets, unit: str, *, title: str = "", suggested_max: float | None = None) -> dict:
    y = {"beginAtZero": True}
    if suggested_max is not None:
        y["suggestedMax"] = suggested_max
    return {
        "type": "line",
        "unit": unit,
        "data": {"labels": labels, "datasets": datasets},
        "options": {
            "responsive": True,
            "maintainAspectRatio": False,
            "spanGaps": True,
            "scales": {"y": y},
            "plugins": {"title": {"display": bool(title), "text": title}, "legend": {"position": "bottom"}},
        },
    }


def utilization_chart(rows, group_by: str) -> dict:
    """Billable utilization per member or role."""
    labels = [row.name for row in rows]
    return _bar(
        labels,
        [
            {
                "label": "Billable utilization %",
                "data": [_number(row.billable_utilization) for row in rows],
                "backgroundColor": _colour(0),
            },
        ],
        "%",
        horizontal=True,
        title=f"Billable utilization by {group_by}",
    )


def utilization_trend(months) -> dict:
    return _line(
        [f"{month.month:%b %Y}" for month in months],
        [
            {
                "label": "Billable utilization %",
                "data": [_number(m.billable_utilization) for m in months],
                "borderColor": _colour(0),
                "backgroundColor": _colour(0),
                "tension": 0.2,
            },
        ],
        "%",
        title="Billable utilization by month",
    )


def margin_chart(rows, group_by: str) -> dict:
    """Margin % per project (or client); rows without a margin (cost in another currency) are left out."""
    shown = [row for row in rows if row.margin_percent is not None]
    return _bar(
        [f"{row.code or row.name} ({row.currency})" for row in shown],
        [
            {
                "label": "Margin %",
                "data": [_number(row.margin_percent) for row in shown],
                "backgroundColor": [_colour(2) if row.margin_percent >= 0 else _colour(3) for row in shown],
            },
        ],
        "%",
        horizontal=True,
        title=f"Margin by {group_by}",
    )


def burn_chart(rows, burn) -> dict:
    """Percent of budget used at the end of each week, one line per project with a budget, and 100 %."""
    weeks = sorted({point.week for points in burn.values() for point in points})
    labels = [f"{week:%d %b}" for week in weeks]
    datasets = []
    for index, row in enumerate(row for row in rows if row.project.id in burn):
        by_week = {point.week: point.percent_used for point in burn[row.project.id]}
        if all(value is None for value in by_week.values()):
            continue
        datasets.append(
            {
                "label": row.project.code,
                "data": [_number(by_week.get(week)) for week in weeks],
                "borderColor": _colour(index),
                "backgroundColor": _colour(index),
                "tension": 0.2,
                "pointRadius": 2,
            }
        )
    if datasets:
        datasets.append(
            {
                "label": "Budget",
                "data": [100] * len(weeks),
                "borderColor": "#c62828",
                "borderDash": [6, 4],
                "pointRadius": 0,
                "fill": False,
            }
        )
    return _line(labels, datasets, "%", title="Budget used by week (percent of budget)", suggested_max=110)


def time_to_invoice_chart(bars) -> dict:
    return _bar(
        [bar.label for bar in bars],
        [
            {
                "label": "Invoiced entries",
                "data": [bar.entries for bar in bars],
                "backgroundColor": _colour(0),
            },
        ],
        " entries",
        title="Days from work to invoice",
    )


def time_to_invoice_trend(months) -> dict:
    labels = [f"{row.key:%b %Y}" for row in months]
    return _line(
        labels,
        [
            {
                "label": "Median days",
                "data": [_number(row.median_days) for row in months],
                "borderColor": _colour(0),
                "backgroundColor": _colour(0),
                "tension": 0.2,
            },
            {
                "label": "90th percentile",
                "data": [_number(row.p90_days) for row in months],
                "borderColor": _colour(1),
                "backgroundColor": _colour(1),
                "tension": 0.2,
            },
        ],
        " days",
        title="Days to invoice by month of finalization",
    )


def accuracy_trend(rows) -> dict:
    months = sorted({row.key for row in rows})
    currencies = sorted({row.currency for row in rows})
    found = {(row.key, row.currency): row.accuracy for row in rows}
    return _line(
        [f"{month:%b %Y}" for month in months],
        [
            {
                "label": f"{currency}",
                "data": [_number(found.get((month, currency))) for month in months],
                "borderColor": _colour(index),
                "backgroundColor": _colour(index),
                "tension": 0.2,
            }
            for index, currency in enumerate(currencies)
        ],
        "%",
        title="Billing accuracy by month of issue",
        suggested_max=100,
    )


def wip_chart(rows, labels) -> dict:
    """Unbilled hours by age bucket, stacked per client: hours, because amounts in different currencies
    do not belong on one axis (the table has the amounts)."""
    return _bar(
        [f"{row.name} ({row.currency})" for row in rows],
        [
            {
                "label": f"{label} days",
                "data": [_number(row.buckets[index].hours) for row in rows],
                "backgroundColor": _colour(index),
            }
            for index, label in enumerate(labels)
        ],
        " h",
        horizontal=True,
        stacked=True,
        title="Unbilled hours by age of the work",
    )


def has_data(chart: dict) -> bool:
    return any(
        value not in (None, 0, Decimal(0))
        for dataset in chart["data"]["datasets"]
        for value in dataset["data"]
    )
