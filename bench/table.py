"""The printed table: every measurement, then every target with its measured value and whether it was met."""


def _number(value, places: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{places}f}"


def _seconds(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def machine_line(report: dict) -> str:
    machine = report.get("machine", {})
    return (f"{machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, {machine.get('memory_gb', '?')} GB; "
            f"PostgreSQL {machine.get('postgresql', '?')}; Python {machine.get('python', '?')}; "
            f"{machine.get('os', '')}; commit {machine.get('commit', '?')}")


def measurement_rows(report: dict) -> list[list[str]]:
    rows = []
    for bench in report["benchmarks"]:
        if bench.get("skipped"):
            rows.append([bench["name"], f"SKIPPED: {bench['skipped']}", "", "", "", "", ""])
            continue
        for m in bench["measurements"]:
            rows.append([bench["name"], m["label"], _number(m["rows"]), _seconds(m["seconds"]),
                         _number(m.get("rows_per_second")), _number(m.get("queries")),
                         _number(m.get("peak_mb"), 1)])
    return rows


def check_rows(report: dict) -> list[list[str]]:
    rows = []
    for bench in report["benchmarks"]:
        for check in bench.get("checks", []):
            result = {True: "met", False: "MISSED", None: "n/a"}[check["met"]]
            value = "-" if check["value"] is None else f"{check['value']:,.2f}{check['unit']}"
            rows.append([bench["name"], check["name"], value, check["target"], result])
    return rows


def _grid(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells):
        return "  ".join(str(cell).rjust(widths[i]) if i in right else str(cell).ljust(widths[i])
                         for i, cell in enumerate(cells)).rstrip()

    return [line(header), line(["-" * w for w in widths]), *[line(row) for row in rows]]


def render(report: dict) -> str:
    out = [f"Billable benchmarks, {report['run_at']} ({report['seconds']:.0f}s in all)", machine_line(report), ""]
    out += _grid(["benchmark", "measurement", "rows", "seconds", "rows/s", "queries", "peak MB"],
                 measurement_rows(report), right={2, 3, 4, 5, 6})
    out.append("")
    out += _grid(["benchmark", "target", "measured", "target", "result"], check_rows(report), right={2})
    notes = [(bench["name"], note) for bench in report["benchmarks"] for note in bench.get("notes", [])]
    if notes:
        out.append("")
        out += [f"{name}: {note}" for name, note in notes]
    return "\n".join(out)


def markdown(report: dict) -> str:
    """The same figures as Markdown tables, for the README's Performance section."""

    def table(header, rows):
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
        return lines

    out = table(["benchmark", "measurement", "rows", "seconds", "rows/s", "queries", "peak MB"],
                measurement_rows(report))
    out.append("")
    out += table(["benchmark", "target", "measured", "target", "result"], check_rows(report))
    return "\n".join(out)
