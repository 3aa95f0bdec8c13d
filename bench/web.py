"""Web: the approval queue, the time-entry API list and the invoice lists under load.

100,000 entries are in the database (six months: invoiced through April with issued invoices, the rest
approved, pending or rejected, every one with its approval request). gunicorn serves the project on
loopback with the production settings (DEBUG off); wrk (Debian's package) runs 8 connections for 20
seconds against each page, after a short warm-up, and reports requests per second and the p50 and p95
latencies. Without wrk, bench/loadgen.py stands in (threads; a lower bound).

Baseline: the cheapest authenticated request through the same stack: the task-type list of the API (ten
rows), under the same load. Queries per request are counted in-process for one request of each page;
peak memory is the largest resident size a gunicorn worker reached during the page's run.
"""

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.context import Context
from bench.generator import HISTORY_TABLES, OPERATOR_EMAIL, insert_history
from bench.harness import BenchResult, Check, Measurement, counting_queries, peak_rss_mb, vacuum_analyze

NAME = "web"
DEFAULT_ENTRIES = 100_000
CONNECTIONS = int(os.environ.get("BENCH_WEB_CONNECTIONS", "8"))
SECONDS = float(os.environ.get("BENCH_WEB_SECONDS", "20"))
WARM_UP_SECONDS = 3
WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", str(2 * (os.cpu_count() or 1) + 1)))
TARGET_P95_MS = 150.0
BENCH_DIR = Path(__file__).resolve().parent

# (label, path, authentication): "session" signs in through the admin's cookie, "token" the API's header.
PAGES = [
    ("approval queue (admin)", "/admin/approvals/approvalrequest/", "session"),
    ("time-entry API list", "/api/v1/time-entries/", "token"),
    ("invoice list (finance)", "/billing/invoices/", "session"),
    ("invoice list (admin)", "/admin/billing/invoice/", "session"),
]
BASELINE = ("baseline: task-type API list", "/api/v1/task-types/", "token")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _credentials() -> tuple[str, str]:
    from django.contrib.auth import get_user_model
    from django.test import Client
    from rest_framework.authtoken.models import Token

    operator = get_user_model().objects.get(username=OPERATOR_EMAIL)
    browser = Client()
    browser.force_login(operator)
    token, _ = Token.objects.get_or_create(user=operator)
    return browser.cookies["sessionid"].value, token.key


def _headers(kind: str, session: str, token: str) -> dict[str, str]:
    return {"Cookie": f"sessionid={session}"} if kind == "session" else {"Authorization": f"Token {token}"}


def _queries_per_request(path: str, headers: dict[str, str]) -> tuple[int, int]:
    """One request in-process, counted; returns (status, queries)."""
    from django.test import Client

    client = Client()
    if "Cookie" in headers:
        client.cookies["sessionid"] = headers["Cookie"].split("=", 1)[1]
        extra = {}
    else:
        extra = {"HTTP_AUTHORIZATION": headers["Authorization"]}
    counter, wrapper = counting_queries()
    with wrapper:
        response = client.get(path, **extra)
    return response.status_code, counter.count


class Server:
    """gunicorn on loopback with the bench settings and database; stopped by its own pid."""

    def __init__(self, context: Context):
        self.port = _free_port()
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings", "DATABASE_URL": context.url()}
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        self.process = subprocess.Popen(
            [gunicorn, "config.wsgi:application", "--workers", str(WORKERS), "--bind", f"127.0.0.1:{self.port}",
             "--log-level", "warning", "--timeout", "120"],
            cwd=BENCH_DIR.parent, env=env)
        self.base = f"http://127.0.0.1:{self.port}"

    def wait_until_up(self, path: str, headers: dict[str, str]) -> int:
        deadline = time.monotonic() + 60
        while True:
            try:
                request = urllib.request.Request(self.base + path, headers=headers)
                with urllib.request.urlopen(request, timeout=30) as response:
                    return response.status
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.5)

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []

    def reset_peaks(self) -> None:
        for pid in self.workers():
            with open(f"/proc/{pid}/clear_refs", "w") as clear_refs:
                clear_refs.write("5")

    def peak_worker_mb(self) -> float:
        return round(max((peak_rss_mb(pid) for pid in self.workers()), default=0.0), 1)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _load(url: str, headers: dict[str, str], seconds: float) -> dict:
    wrk = shutil.which("wrk")
    if wrk is None:
        from bench.loadgen import run_load

        return {**run_load(url, headers=headers, connections=CONNECTIONS, seconds=seconds), "tool": "python"}
    command = [wrk, "-t", "2", "-c", str(CONNECTIONS), "-d", f"{seconds:g}s", "--timeout", "10s",
               "-s", str(BENCH_DIR / "wrk_report.lua")]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("BENCH_JSON "))
    return {**json.loads(line.removeprefix("BENCH_JSON ")), "tool": "wrk"}


def _measure(server: Server, label: str, path: str, headers: dict[str, str], queries: int) -> Measurement:
    _load(server.base + path, headers, WARM_UP_SECONDS)
    # Requests the warm-up left queued would otherwise be answered inside the measured run.
    time.sleep(2)
    server.reset_peaks()
    figures = _load(server.base + path, headers, SECONDS)
    seconds = figures["duration_us"] / 1e6
    p50, p95 = figures["p50_us"] / 1000, figures["p95_us"] / 1000
    return Measurement(label=f"{label}: p50 {p50:.0f} ms, p95 {p95:.0f} ms", seconds=seconds,
                       rows=figures["requests"], queries=queries, peak_mb=server.peak_worker_mb(),
                       extra={**figures, "path": path, "p50_ms": round(p50, 1), "p95_ms": round(p95, 1),
                              "requests_per_second": round(figures["requests"] / seconds, 1)})


def run(context: Context) -> BenchResult:
    from django.db import connections

    entries = context.scaled(DEFAULT_ENTRIES)
    result = BenchResult(NAME)
    context.log(f"web: writing {entries:,} entries with invoices and approval requests")
    history = insert_history(tag="web", entries=entries, start=dt.date(2025, 1, 1), end=dt.date(2025, 6, 30),
                             invoiced_before=dt.date(2025, 5, 1), paid_before=dt.date(2025, 4, 1), approvals=True,
                             pending_every=20, rejected_every=50)
    session, token = _credentials()
    counts = {}
    for _label, path, kind in [*PAGES, BASELINE]:
        status, queries = _queries_per_request(path, _headers(kind, session, token))
        if status != 200:
            raise RuntimeError(f"{path} answered {status} to the bench operator")
        counts[path] = queries
    connections.close_all()
    vacuum_analyze(context.url(), HISTORY_TABLES)

    server = Server(context)
    try:
        server.wait_until_up(BASELINE[1], _headers("token", session, token))
        for label, path, kind in [*PAGES, BASELINE]:
            context.log(f"web: {label} for {SECONDS:g}s, {CONNECTIONS} connections, {WORKERS} gunicorn workers")
            result.measurements.append(_measure(server, label, path, _headers(kind, session, token), counts[path]))
    finally:
        server.stop()

    baseline = result.measurements[-1]
    for (label, _, _), page in zip(PAGES, result.measurements, strict=False):
        errors = page.extra["non_2xx_3xx"] + page.extra["connect_errors"] + page.extra["timeouts"]
        # Timed-out requests are missing from wrk's latencies: a run with any cannot meet the target.
        answered = page.rows > 0 and not errors
        result.checks.append(Check(f"{label}: p95 latency", page.extra["p95_ms"] if page.rows else None,
                                   f"< {TARGET_P95_MS:g} ms", answered and page.extra["p95_ms"] < TARGET_P95_MS,
                                   unit=" ms", note=f"baseline p95 {baseline.extra['p95_ms']} ms"))
        if errors:
            result.notes.append(f"{label}: {errors} failed or timed-out requests (wrk timeout 10 s)")
    tool = baseline.extra["tool"]
    result.notes += [
        f"{entries:,} entries, {history.approval_requests:,} approval requests, {history.invoices:,} issued invoices; "
        f"load by {tool}, {CONNECTIONS} connections for {SECONDS:g}s per page, gunicorn with {WORKERS} sync "
        "workers; peak MB is the largest gunicorn worker's resident size",
        "p95 relative to the baseline request: " + ", ".join(
            f"{label} {page.extra['p95_ms'] / baseline.extra['p95_ms']:.1f}x"
            for (label, _, _), page in zip(PAGES, result.measurements, strict=False))
        if baseline.extra["p95_ms"] else "the baseline answered nothing",
    ]
    return result
