"""Scale-out: two django-q2 clusters (`manage.py qcluster`) on two "machines" share one Redis broker and one
PostgreSQL database, and every queued task runs exactly once with its result recorded.

Nothing here uses the pytest test database or the test process's django-q2 configuration: `Conf` reads
`settings.Q_CLUSTER` when django_q is imported, and in tests that is the synchronous ORM set-up. So every
Django process of this test is a subprocess with its own environment (DATABASE_URL, REDIS_URL, the shared
DJANGO_SECRET_KEY that signs task packages), exactly as separate worker machines would be started:

1. create a fresh PostgreSQL database and `manage.py migrate` it;
2. seed it (`manage.py shell`): two clients billed monthly with approved time in four months, and four
   contracts whose rate went up after their time was rated;
3. start two `manage.py qcluster` processes (two workers each) against it and a Redis db of our own;
4. enqueue (`manage.py shell`) N pipeline tasks (reprocess one contract each), N billing tasks (bill every
   client for one month each) and N sync tasks;
5. wait for the N*3 results, stop the clusters, and read back (`manage.py shell`) each task's result row and
   the domain effects: each month billed once per client, each entry allocated once, each contract re-rated.

Skipped (outside CI only) when Redis or PostgreSQL is not reachable; the database and the Redis db are
removed afterwards.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_DSN = os.environ.get("BILLABLE_SCALE_OUT_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_SERVER_URL = PG_ADMIN_DSN.rsplit("/", 1)[0]
REDIS_SERVER_URL = os.environ.get("BILLABLE_SCALE_OUT_REDIS", "redis://127.0.0.1:6379")
# A Redis db of its own, so flushing it afterwards touches nobody else's queue or cache.
REDIS_DB = int(os.environ.get("BILLABLE_SCALE_OUT_REDIS_DB", "13"))
CLUSTERS = 2
WORKERS_PER_CLUSTER = 2
N = 4
# Generous for a loaded 2-core CI machine; a normal run needs a few seconds.
RESULT_TIMEOUT_SECONDS = 90
MONTHS = ["2026-01", "2026-02", "2026-03", "2026-04"][:N]

pytestmark = pytest.mark.scale_out

# The seed: run inside `manage.py shell`, so settings come from the subprocess's environment.
SEED = r"""
import datetime as dt, json
from decimal import Decimal
from djmoney.money import Money
from billing.models import Rate
from billing.pipeline import TimeEntryInput, ingest
from projects.models import EntrySource, EntryStatus, TimeEntry
from tests.factories import ClientFactory, ContractFactory, ProjectFactory, RateFactory, TaskTypeFactory
from tests.factories import TeamMemberFactory

months = MONTHS_PLACEHOLDER
member = TeamMemberFactory(name="Scale Staff")
dev = TaskTypeFactory(code="dev", name="Development")
inputs = []
for code in ("bill-a", "bill-b"):
    project = ProjectFactory(contract=ContractFactory(client=ClientFactory(code=code, name=code)), code=code)
    RateFactory(contract=project.contract, hourly_rate=Money("100.00", "USD"))
    for month in months:
        for day, minutes in ((10, 120), (11, 60)):
            inputs.append(TimeEntryInput(member_id=member.id, project_id=project.id, task_type_id=dev.id,
                                         work_date=dt.date.fromisoformat(f"{month}-{day:02d}"), minutes=minutes,
                                         external_id=f"{code}-{month}-{day}"))
contracts = []
for n in range(len(months)):
    project = ProjectFactory(contract=ContractFactory(client=ClientFactory(code=f"rate-{n}", name=f"rate-{n}")),
                             code=f"rate-{n}")
    RateFactory(contract=project.contract, hourly_rate=Money("100.00", "USD"))
    contracts.append(project.contract_id)
    for day in (2, 3, 4):
        # June: outside every billed month, so billing and re-rating never touch the same entries.
        inputs.append(TimeEntryInput(member_id=member.id, project_id=project.id, task_type_id=dev.id,
                                     work_date=dt.date(2026, 6, day), minutes=60, external_id=f"rate-{n}-{day}"))
result = ingest(inputs, EntrySource.API)
assert not result.rejected, [r.errors for r in result.rejected]
assert set(TimeEntry.objects.values_list("status", flat=True)) == {EntryStatus.APPROVED}
# The rate goes up after the time was rated; a queued reprocess must bring the amounts to 150.00 each.
Rate.objects.filter(contract_id__in=contracts).update(hourly_rate=Decimal("150.00"))
print(json.dumps({"contracts": contracts, "entries": TimeEntry.objects.count()}))
"""

ENQUEUE = r"""
import datetime as dt, json
from django_q.conf import Conf
from django_q.tasks import async_task
assert not Conf.SYNC and Conf.REDIS, "the subprocess must queue to Redis, not run tasks in-process"
plan = json.loads(PLAN_PLACEHOLDER)
ids = {"pipeline": [], "billing": [], "sync": []}
for contract_id in plan["contracts"]:
    ids["pipeline"].append(async_task("billing.pipeline.reprocess_contracts", contract_ids=[contract_id],
                                      task_name=f"reprocess contract {contract_id}"))
for month in plan["months"]:
    # Run "on the 1st of the next month": every monthly client is billed for `month`.
    first = dt.date.fromisoformat(month + "-01")
    next_first = (first + dt.timedelta(days=32)).replace(day=1)
    ids["billing"].append(async_task("billing.tasks.bill_clients_at_period_end", next_first.isoformat(),
                                     task_name=f"bill {month}"))
for n in range(len(plan["months"])):
    ids["sync"].append(async_task(plan["sync_func"], task_name=f"sync {n}"))
print(json.dumps(ids))
"""

REPORT = r"""
import json
from django.db.models import Count
from django_q.models import Task
from billing.models import Allocation, BillingRun, Invoice
from projects.models import EntryStatus, TimeEntry
ids = json.loads(IDS_PLACEHOLDER)
tasks = {t.id: t for t in Task.objects.filter(id__in=ids)}
print(json.dumps({
    "tasks": {i: {"success": t.success, "attempts": t.attempt_count, "result": str(t.result), "func": t.func}
              for i, t in tasks.items()},
    "task_rows": Task.objects.filter(id__in=ids).count(),
    "invoices": sorted([row["client__code"], row["period_start"].isoformat(), row["n"]] for row in
                       Invoice.objects.values("client__code", "period_start").annotate(n=Count("id"))),
    "runs": sorted([row["client__code"], row["period_start"].isoformat(), row["n"]] for row in
                   BillingRun.objects.filter(client__code__startswith="bill-")
                   .values("client__code", "period_start").annotate(n=Count("id"))),
    "live_allocations_per_entry": sorted(set(
        Allocation.objects.filter(is_live=True).values("time_entry").annotate(n=Count("id"))
        .values_list("n", flat=True))),
    "billed_entries": TimeEntry.objects.filter(project__code__startswith="bill-").count(),
    "invoiced_entries": TimeEntry.objects.filter(status=EntryStatus.INVOICED).count(),
    "rerated": sorted({str(e.amount.amount) for e in TimeEntry.objects.filter(project__code__startswith="rate-")}),
    "rerated_statuses": sorted(set(TimeEntry.objects.filter(project__code__startswith="rate-")
                                   .values_list("status", flat=True))),
}))
"""


def _reachable_or_skip() -> None:
    """Skip (outside CI) with the reason when the broker or the database server is not there."""
    import psycopg
    import redis

    problems = []
    try:
        redis.Redis.from_url(REDIS_SERVER_URL, socket_connect_timeout=3).ping()
    except Exception as error:  # noqa: BLE001 - any failure means "no Redis here"
        problems.append(f"Redis at {REDIS_SERVER_URL} is not reachable ({error})")
    try:
        psycopg.connect(PG_ADMIN_DSN, connect_timeout=3).close()
    except Exception as error:  # noqa: BLE001
        problems.append(f"PostgreSQL at {PG_ADMIN_DSN} is not reachable ({error})")
    if problems:
        reason = "; ".join(problems)
        if os.environ.get("CI"):
            pytest.fail(f"The scale-out test must run in CI: {reason}.")
        pytest.skip(f"Scale-out test needs a local Redis and PostgreSQL: {reason}.")


def _admin_sql(*statements: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def _sync_func() -> str:
    """A connector sync when the integrations app has one (it skips quietly with no provider configured)."""
    tasks = ROOT / "integrations" / "tasks.py"
    if tasks.exists() and "def sync_toggl(" in tasks.read_text():
        return "integrations.tasks.sync_toggl"
    return "billing.tasks.weekly_client_summaries"


@pytest.fixture
def scale_out_env(tmp_path):
    """A migrated database and a clean Redis db; the environment each "machine" is started with."""
    _reachable_or_skip()
    import redis

    database = f"billable_e2e_scale_{os.getpid()}"
    redis_url = f"{REDIS_SERVER_URL}/{REDIS_DB}"
    broker = redis.Redis.from_url(redis_url)
    broker.flushdb()
    _admin_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)', f'CREATE DATABASE "{database}"',
               # A throwaway database: skip waiting for each commit to reach the disk (migrations get faster).
               f'ALTER DATABASE "{database}" SET synchronous_commit = off')
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("PYTEST", "DJANGO_"))},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"{PG_SERVER_URL}/{database}",
        "REDIS_URL": redis_url,
        # Every web and worker process must share the key: it signs the task packages.
        "DJANGO_SECRET_KEY": "scale-out-test-key-shared-by-every-process",
        "Q_WORKERS": str(WORKERS_PER_CLUSTER),
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    try:
        _manage(env, "migrate", "--noinput", timeout=180)
        yield env
    finally:
        broker.flushdb()
        _admin_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _manage(env: dict, *args: str, timeout: float = 120) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, f"manage.py {args[0]} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _shell(env: dict, code: str) -> dict:
    """Run code in `manage.py shell` and return the JSON its last printed line holds."""
    out = _manage(env, "shell", "--no-startup", "-c", code)
    return json.loads(out.strip().splitlines()[-1])


def _start_cluster(env: dict, log: Path) -> subprocess.Popen:
    # A session of its own: the cluster's sentinel, pusher, monitor and workers are stopped together.
    with log.open("wb") as output:
        return subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=output,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _stop_clusters(processes: list[subprocess.Popen]) -> None:
    """SIGTERM to each cluster's main process, which stops its own workers in a few seconds (signalling the
    whole group at once kept clusters alive past 20 s); whatever is left of a group after that is killed."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # the group is gone: everything stopped cleanly
        process.wait(timeout=10)


def _finished_count(env: dict, ids: list[str]) -> int:
    import psycopg

    with psycopg.connect(env["DATABASE_URL"]) as conn:
        return conn.execute("SELECT count(*) FROM django_q_task WHERE id = ANY(%s)", [ids]).fetchone()[0]


def _logs(paths: list[Path]) -> str:
    return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}" for path in paths)


def test_two_clusters_run_every_queued_task_exactly_once(scale_out_env, tmp_path):
    env = scale_out_env
    seeded = _shell(env, SEED.replace("MONTHS_PLACEHOLDER", repr(MONTHS)))
    assert seeded["entries"] == 2 * len(MONTHS) * 2 + N * 3

    logs = [tmp_path / f"qcluster-{n}.log" for n in range(CLUSTERS)]
    clusters = [_start_cluster(env, log) for log in logs]
    try:
        plan = {"contracts": seeded["contracts"], "months": MONTHS, "sync_func": _sync_func()}
        ids = _shell(env, ENQUEUE.replace("PLAN_PLACEHOLDER", repr(json.dumps(plan))))
        all_ids = [task_id for group in ids.values() for task_id in group]
        assert len(set(all_ids)) == 3 * N

        deadline = time.monotonic() + RESULT_TIMEOUT_SECONDS
        while _finished_count(env, all_ids) < len(all_ids):
            assert time.monotonic() < deadline, f"Not every task finished in time.\n{_logs(logs)}"
            assert all(c.poll() is None for c in clusters), f"A cluster stopped.\n{_logs(logs)}"
            time.sleep(0.5)
        # Both "machines" stayed up the whole time, competing for the same queue.
        assert all(c.poll() is None for c in clusters), _logs(logs)
        # Give a duplicate delivery, if there were one, the time to show up as a second attempt.
        time.sleep(1.5)
    finally:
        _stop_clusters(clusters)

    report = _shell(env, REPORT.replace("IDS_PLACEHOLDER", repr(json.dumps(all_ids))))

    # Every task id has one result row: succeeded, on its first and only attempt.
    assert report["task_rows"] == 3 * N
    tasks = report["tasks"]
    assert set(tasks) == set(all_ids)
    failed = {i: t for i, t in tasks.items() if not t["success"] or t["attempts"] != 1}
    assert not failed, f"{failed}\n{_logs(logs)}"
    assert {tasks[i]["func"] for i in ids["pipeline"]} == {"billing.pipeline.reprocess_contracts"}
    assert [tasks[i]["result"] for i in ids["pipeline"]] == ["3"] * N
    assert all(tasks[i]["result"].endswith(", 2 draft invoices") for i in ids["billing"]), tasks
    if plan["sync_func"] == "integrations.tasks.sync_toggl":
        # No Toggl token in the workers' environment: each sync is a recorded, quiet skip.
        assert all(tasks[i]["result"].startswith("skipped:") for i in ids["sync"]), tasks

    # Billing: each client billed once per month (one run, one draft), every entry allocated once.
    expected = sorted([code, f"{month}-01", 1] for code in ("bill-a", "bill-b") for month in MONTHS)
    assert report["invoices"] == expected
    assert report["runs"] == expected
    assert report["live_allocations_per_entry"] == [1]
    assert report["invoiced_entries"] == report["billed_entries"] == 2 * len(MONTHS) * 2

    # Pipeline: every re-rated entry is at the new rate (1 h x 150.00) and still approved.
    assert report["rerated"] == ["150.00"]
    assert report["rerated_statuses"] == ["approved"]
