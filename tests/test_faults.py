"""Fault injection: billing runs that fail half-way, workers killed mid-sync, a database that refuses for a moment.

1. A billing run that fails at any point of saving leaves nothing behind, and running it again gives
   exactly the invoices of a clean run on the same data (compared line by line, entry by entry).
2. A worker killed between recording and rating (in the pipeline, in the sweeper, or in a Toggl sync page)
   loses nothing and duplicates nothing: the sweeper or the next run finishes every entry exactly once.
3. A task whose database refuses it for a moment is retried by django-q2 (the cluster's own worker,
   monitor and ORM broker, with the project's Q_CLUSTER settings), and the retry completes the work once.
"""

import datetime as dt
import queue
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from multiprocessing import Value
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import OrmQ, Task
from django_q.monitor import monitor
from django_q.tasks import async_task
from django_q.worker import worker
from djmoney.money import Money

from approvals.models import ApprovalRequest, ApprovalStatus
from approvals.services import approval_requests_decide
from billing import invoicing, pipeline
from billing.invoicing import billing_run_create
from billing.models import Allocation, BillingRun, ContractCharge, Invoice, InvoiceEvent, InvoiceLine
from billing.pipeline import TimeEntryInput, ingest, sweep_unprocessed
from clients.models import BillingType, Consolidation, LineGrouping
from integrations.models import RunStatus, SyncCursor, SyncRun
from integrations.runs import run_stream
from integrations.toggl.sync import sync_time_entries
from projects.models import EntrySource, EntryStatus, ProjectBudget, TimeEntry
from tests.factories import (
    ClientFactory,
    ContractFactory,
    ProjectFactory,
    RateFactory,
    TaskTypeFactory,
    TeamMemberFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

MARCH_1, MARCH_31 = dt.date(2026, 3, 1), dt.date(2026, 3, 31)


class Killed(BaseException):
    """The worker process dies: like SIGKILL, nothing after this point runs (not an Exception on purpose)."""


# -- A firm whose March billing makes several invoices of every kind --------------------------------------

@pytest.fixture
def firm(approver):
    """Three clients: consolidated time with tax, a capped contract per project, a retainer with overage."""
    dev = TaskTypeFactory(code="dev", name="Development")
    design = TaskTypeFactory(code="design", name="Design")
    ana, ben = TeamMemberFactory(name="Ana"), TeamMemberFactory(name="Ben")

    acme = ClientFactory(code="acme", name="Acme", tax_rate=Decimal("20.00"), line_grouping=LineGrouping.MEMBER)
    acme_web = ProjectFactory(contract=ContractFactory(client=acme, number="C-1"), code="acme-web")
    acme_app = ProjectFactory(contract=ContractFactory(client=acme, number="C-2"), code="acme-app")
    RateFactory(contract=acme_web.contract, hourly_rate=Money("150.00", "USD"))
    RateFactory(contract=acme_app.contract, hourly_rate=Money("99.99", "USD"))

    bolt = ClientFactory(code="bolt", name="Bolt", consolidation=Consolidation.PROJECT,
                         line_grouping=LineGrouping.DETAILED, tax_rate=Decimal("7.50"))
    capped = ContractFactory(client=bolt, number="C-3", cap_hours=Decimal("3.00"), rounding_increment=15)
    bolt_one = ProjectFactory(contract=capped, code="bolt-one")
    bolt_two = ProjectFactory(contract=capped, code="bolt-two")
    RateFactory(contract=capped, hourly_rate=Money("120.00", "USD"))

    corp = ClientFactory(code="corp", name="Corp", consolidation=Consolidation.CONTRACT)
    retainer = ContractFactory(client=corp, number="C-4", billing_type=BillingType.RETAINER,
                               retainer_hours=Decimal("2.00"), retainer_amount=Money("500.00", "USD"))
    corp_ops = ProjectFactory(contract=retainer, code="corp-ops")
    RateFactory(contract=retainer, hourly_rate=Money("180.00", "USD"))

    rows = [(ana, acme_web, dev, 2, 95), (ben, acme_web, design, 3, 40), (ana, acme_app, dev, 4, 61),
            (ana, bolt_one, dev, 5, 70), (ben, bolt_two, dev, 6, 80), (ana, bolt_one, design, 9, 50),
            (ben, corp_ops, dev, 10, 90), (ana, corp_ops, dev, 11, 75), (ben, acme_web, dev, 12, 33)]
    result = ingest([TimeEntryInput(member_id=member.id, project_id=project.id, task_type_id=task.id,
                                    work_date=dt.date(2026, 3, day), minutes=minutes, external_id=f"f-{n}")
                     for n, (member, project, task, day, minutes) in enumerate(rows)], EntrySource.API)
    assert not result.rejected
    # Over-cap time is held for review; the approver lets it through so the invoice shows the write-down.
    held = ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING).values_list("id", flat=True)
    approval_requests_decide(request_ids=list(held), user=approver.user, approve=True)
    assert set(TimeEntry.objects.values_list("status", flat=True)) == {EntryStatus.APPROVED}
    return SimpleNamespace(clients=[acme, bolt, corp], members=[ana, ben], dev=dev)


def invoices_as_data() -> list:
    """Every invoice with its lines, allocations and charges, without ids or timestamps."""
    invoices = (Invoice.objects.select_related("client", "contract", "project")
                .prefetch_related("lines__allocations", "lines__charge"))
    rows = []
    for invoice in invoices:
        lines = []
        for line in invoice.lines.all():
            charge = getattr(line, "charge", None)
            lines.append((
                line.position, line.kind, line.description, str(line.quantity), str(line.unit_rate),
                str(line.amount), line.minutes,
                sorted((a.time_entry.external_id, a.minutes, str(a.amount), a.covered_minutes, a.over_cap_minutes,
                        a.is_live) for a in line.allocations.select_related("time_entry")),
                (charge.kind, str(charge.period_start)) if charge else None,
            ))
        rows.append((invoice.client.code, invoice.contract.number if invoice.contract else "",
                     invoice.project.code if invoice.project else "", invoice.currency, str(invoice.period_start),
                     str(invoice.period_end), invoice.status, str(invoice.subtotal), str(invoice.tax),
                     str(invoice.total), sorted(lines)))
    return sorted(rows)


def billing_state() -> dict:
    return {
        "invoices": invoices_as_data(),
        "entries": sorted(TimeEntry.objects.values_list("external_id", "status")),
        "runs": BillingRun.objects.count(),
        "charges": ContractCharge.objects.count(),
        "events": InvoiceEvent.objects.count(),
    }


def clean_run_of_march() -> dict:
    """What a billing run of March makes from the current data, rolled back afterwards."""
    with transaction.atomic():
        billing_run_create(period_start=MARCH_1, period_end=MARCH_31)
        state = billing_state()
        transaction.set_rollback(True)
    return state


# -- 1. A billing run that fails half-way ------------------------------------------------------------------

def _raise(*args, **kwargs):
    raise OperationalError("server closed the connection unexpectedly")


def refuse_statement(fragment: str):
    """A database execute wrapper that fails the first statement containing `fragment`."""
    state = {"refused": 0}

    def wrapper(execute, sql, params, many, context):
        if fragment in sql and not state["refused"]:
            state["refused"] += 1
            raise OperationalError(f"server closed the connection unexpectedly ({fragment})")
        return execute(sql, params, many, context)

    wrapper.state = state
    return wrapper


FAILURE_POINTS = {
    # After the draft invoices are inserted: their lines fail.
    "lines": lambda m: m.setattr(InvoiceLine.objects, "bulk_create", _raise),
    # After invoices and lines: tying entries to lines fails.
    "allocations": lambda m: m.setattr(invoicing._Writer, "_insert_allocations", _raise),
    # After the allocations: the retainer fee's charge fails.
    "fee charges": lambda m: m.setattr(ContractCharge.objects, "bulk_create", _raise),
    # After everything is billed: the audit events fail.
    "audit events": lambda m: m.setattr(InvoiceEvent.objects, "bulk_create", _raise),
}


@pytest.mark.parametrize("point", FAILURE_POINTS)
def test_a_billing_run_failing_half_way_leaves_nothing_and_a_rerun_equals_a_clean_run(firm, monkeypatch, point):
    clean = clean_run_of_march()
    assert len(clean["invoices"]) >= 4 and clean["charges"] == 1
    before = billing_state()

    with monkeypatch.context() as patched:
        FAILURE_POINTS[point](patched)
        with pytest.raises(OperationalError):
            billing_run_create(period_start=MARCH_1, period_end=MARCH_31)

    # Nothing of the failed run remains: no run, invoice, line, allocation, charge or event; entries approved.
    assert billing_state() == before
    assert not InvoiceLine.objects.exists() and not Allocation.objects.exists()
    billing_run_create(period_start=MARCH_1, period_end=MARCH_31)
    assert billing_state() == clean


def test_a_billing_run_whose_database_drops_mid_save_leaves_nothing_and_a_rerun_equals_a_clean_run(firm):
    clean = clean_run_of_march()
    before = billing_state()
    # The statement that marks the billed entries invoiced fails: invoices, lines and allocations exist by then.
    refusal = refuse_statement('UPDATE "projects_timeentry"')
    with connection.execute_wrapper(refusal), pytest.raises(OperationalError):
        billing_run_create(period_start=MARCH_1, period_end=MARCH_31)
    assert refusal.state["refused"] == 1
    assert billing_state() == before
    billing_run_create(period_start=MARCH_1, period_end=MARCH_31)
    assert billing_state() == clean


def test_a_client_by_client_billing_task_failing_on_the_second_client_finishes_on_the_retry(firm, monkeypatch):
    """bill_clients_at_period_end bills each client in its own transaction: a retry bills only what is left."""
    from billing.tasks import bill_clients_at_period_end

    clean = clean_run_of_march()
    real, calls = billing_run_create, []

    def fails_for_the_second_client(**kwargs):
        calls.append(kwargs["client"].code)
        if len(calls) == 2:
            raise OperationalError("could not connect to server: Connection refused")
        return real(**kwargs)

    with monkeypatch.context() as patched:
        patched.setattr("billing.tasks.billing_run_create", fails_for_the_second_client)
        with pytest.raises(OperationalError):
            bill_clients_at_period_end(today="2026-04-01")
    assert len({row[0] for row in invoices_as_data()}) == 1  # the first client's invoices committed

    assert bill_clients_at_period_end(today="2026-04-01").startswith("3 clients billed")
    assert invoices_as_data() == clean["invoices"]
    assert sorted(TimeEntry.objects.values_list("external_id", "status")) == clean["entries"]


# -- 2. A worker killed during a sync ----------------------------------------------------------------------

def inputs_for(firm, count: int, prefix: str = "k") -> list[TimeEntryInput]:
    project = ProjectFactory(code=f"{prefix}-web")
    RateFactory(contract=project.contract, hourly_rate=Money("120.00", "USD"))
    return [TimeEntryInput(member_id=firm.members[n % 2].id, project_id=project.id, task_type_id=firm.dev.id,
                           work_date=dt.date(2026, 3, 2 + n), minutes=30 + n, external_id=f"{prefix}-{n}")
            for n in range(count)]


def age_recorded_entries() -> None:
    """Entries left recorded become old enough for the sweeper (it leaves fresh ones to the pipeline)."""
    TimeEntry.objects.filter(status=EntryStatus.RECORDED).update(updated_at=timezone.now() - timedelta(minutes=10))


def processed_ids(monkeypatch) -> Counter:
    """Count, per entry id, how often the pipeline's steps 2-4 run for it."""
    real, seen = pipeline.process_entries, Counter()

    def counting(entries):
        seen.update(entry.id for entry in entries)
        return real(entries)

    monkeypatch.setattr(pipeline, "process_entries", counting)
    return seen


def assert_all_processed_once(entries_count: int) -> None:
    assert TimeEntry.objects.count() == entries_count
    assert not TimeEntry.objects.filter(status=EntryStatus.RECORDED).exists()
    assert not TimeEntry.objects.filter(rated_at__isnull=True).exists()
    # One approval decision per entry, and each entry's minutes counted once in its budget.
    assert ApprovalRequest.objects.count() == entries_count
    for budget in ProjectBudget.objects.all():
        minutes = sum(TimeEntry.objects.filter(project=budget.project_id).values_list("minutes", flat=True))
        assert budget.minutes_used == minutes


def test_killed_between_recording_and_rating_the_sweeper_finishes_each_entry_once(firm, monkeypatch):
    before = TimeEntry.objects.count()
    inputs = inputs_for(firm, 5)

    def killed(entries):
        raise Killed

    with monkeypatch.context() as patched:
        patched.setattr(pipeline, "process_entries", killed)
        with pytest.raises(Killed):
            ingest(inputs, EntrySource.API)
    assert TimeEntry.objects.filter(status=EntryStatus.RECORDED).count() == 5

    # The source delivers the same batch again: nothing is duplicated (same external ids, same facts).
    again = ingest(inputs, EntrySource.API)
    assert (len(again.created), len(again.updated), len(again.unchanged)) == (0, 0, 5)
    assert TimeEntry.objects.count() == before + 5

    seen = processed_ids(monkeypatch)
    age_recorded_entries()
    assert sweep_unprocessed() == 5
    assert sweep_unprocessed() == 0
    assert sorted(seen.values()) == [1] * 5
    assert_all_processed_once(before + 5)


def test_a_sweeper_killed_inside_a_batch_keeps_what_it_committed_and_the_next_finishes(firm, monkeypatch):
    before = TimeEntry.objects.count()
    with monkeypatch.context() as patched:
        patched.setattr(pipeline, "process_entries", lambda entries: None)  # recorded only
        ingest(inputs_for(firm, 7), EntrySource.API)
    age_recorded_entries()
    monkeypatch.setattr(pipeline, "SWEEP_BATCH", 3)
    real_route, routed = pipeline.route_entries, []

    def killed_in_the_second_batch(entries):
        routed.append([e.id for e in entries])
        if len(routed) == 2:
            raise Killed  # the batch is rated, not yet routed: its transaction dies with the worker
        return real_route(entries)

    with monkeypatch.context() as patched:
        patched.setattr(pipeline, "route_entries", killed_in_the_second_batch)
        with pytest.raises(Killed):
            sweep_unprocessed()
    # The first batch committed; the second rolled back whole (not even its rating stayed).
    recorded = TimeEntry.objects.filter(status=EntryStatus.RECORDED)
    assert recorded.count() == 4 and not recorded.filter(rated_at__isnull=False).exists()

    seen = processed_ids(monkeypatch)
    assert sweep_unprocessed() == 4
    assert sorted(seen.values()) == [1] * 4
    assert not set(seen) & set(routed[0])
    assert_all_processed_once(before + 7)


# A Toggl sync killed inside a page, after the pipeline recorded the page's entries but before it rated them.

def _toggl_member(email: str, name: str):
    user = UserFactory(username=email, roles=["staff"])
    return TeamMemberFactory(user=user, email=email, name=name)


def test_a_toggl_sync_killed_mid_page_loses_and_duplicates_nothing(db, fake_toggl, settings, monkeypatch):
    settings.TOGGL_BACKFILL_DAYS = 30
    project = ProjectFactory(code="web", name="Website Redesign")
    RateFactory(contract=project.contract)
    TaskTypeFactory(code="dev", name="Development", is_default=True)
    _toggl_member("ann@firm.test", "Ann Archer")
    toggl_ann = fake_toggl.add_user("ann@firm.test", "Ann Archer")
    toggl_project = fake_toggl.add_project("Website Redesign")
    today = dt.date.today()
    made = [fake_toggl.add_entry(user_id=toggl_ann, project_id=toggl_project, seconds=600 + 60 * n,
                                 start=datetime(today.year, today.month, today.day, 8, tzinfo=UTC)
                                 - timedelta(days=2 + n % 3, hours=n))
            for n in range(8)]

    real, pages = pipeline.process_entries, []

    def killed_on_the_second_page(entries):
        pages.append(len(entries))
        if len(pages) == 2:
            raise Killed  # the page's entries are recorded (same transaction), not yet rated
        return real(entries)

    sync = lambda: run_stream(provider="toggl", trigger="test",  # noqa: E731
                              work=lambda ctx: sync_time_entries(ctx, page_size=3))
    with monkeypatch.context() as patched:
        patched.setattr(pipeline, "process_entries", killed_on_the_second_page)
        with pytest.raises(Killed):
            sync()
    toggl = TimeEntry.objects.filter(source=EntrySource.TOGGL)
    # The landed page is rated; the killed page rolled back whole, so nothing is left recorded.
    assert toggl.count() == 3 and not toggl.filter(status=EntryStatus.RECORDED).exists()
    assert SyncRun.objects.get().status == RunStatus.ABANDONED
    assert SyncCursor.objects.get(provider="toggl").leased_until is None

    seen = processed_ids(monkeypatch)
    run = sync()
    assert (run.status, run.created, run.unchanged) == (RunStatus.SUCCEEDED, 5, 3)
    assert sorted(toggl.values_list("external_id", flat=True)) == sorted(str(entry["id"]) for entry in made)
    assert not toggl.filter(rated_at__isnull=True).exists()
    assert all(count == 1 for count in seen.values()) and len(seen) == 5


# -- 3. The database refusing a connection for a moment: django-q2 retries the task ------------------------

def test_the_cluster_is_configured_to_retry_failed_tasks():
    # A failed task is not acknowledged, so the broker hands it out again after `retry` seconds, up to
    # `max_attempts` times; `retry` must exceed `timeout` or a slow task would run twice at once.
    assert settings.Q_CLUSTER.get("ack_failures", False) is False
    assert settings.Q_CLUSTER["max_attempts"] >= 2
    assert settings.Q_CLUSTER["retry"] > settings.Q_CLUSTER["timeout"]


class Cluster:
    """django-q2's own worker and monitor over the ORM broker, driven one task at a time in this process."""

    def __init__(self):
        self.broker = ORM(list_key="faults")

    def enqueue(self, func: str, **kwargs) -> str:
        return async_task(func, broker=self.broker, sync=False, **kwargs)

    def work_once(self, *, database_fault=None) -> int:
        """Pull what is due, run it in a worker, let the monitor save and acknowledge; returns tasks run.

        `database_fault` (an execute wrapper) applies while the task runs, not to the broker or monitor.
        """
        from django_q.signing import SignedPackage

        due = self.broker.dequeue() or []
        tasks, results = queue.Queue(), queue.Queue()
        for ack_id, payload in due:
            task = SignedPackage.loads(payload)
            task["ack_id"] = ack_id
            tasks.put(task)
        tasks.put("STOP")
        if database_fault is None:
            worker(tasks, results, Value("f", -1), timeout=None)
        else:
            with connection.execute_wrapper(database_fault):
                worker(tasks, results, Value("f", -1), timeout=None)
        results.put("STOP")
        monitor(results, broker=self.broker)
        return len(due)

    def retry_is_due(self) -> None:
        """The `retry` seconds pass: the unacknowledged task's lock lapses."""
        OrmQ.objects.filter(key=self.broker.list_key).update(lock=timezone.now() - timedelta(seconds=1))


def refuse_first_statements(count: int, fragment: str = ""):
    state = {"refused": 0}

    def wrapper(execute, sql, params, many, context):
        if fragment in sql and state["refused"] < count:
            state["refused"] += 1
            raise OperationalError("could not connect to server: Connection refused")
        return execute(sql, params, many, context)

    wrapper.state = state
    return wrapper


@pytest.mark.parametrize("fragment", ["", 'UPDATE "projects_timeentry"'], ids=["at its first query", "mid-batch"])
def test_a_sweep_task_refused_by_the_database_is_retried_and_finishes_the_work_once(firm, monkeypatch, fragment):
    before = TimeEntry.objects.count()
    with monkeypatch.context() as patched:
        patched.setattr(pipeline, "process_entries", lambda entries: None)
        ingest(inputs_for(firm, 4), EntrySource.API)
    age_recorded_entries()
    cluster = Cluster()
    task_id = cluster.enqueue("billing.tasks.sweep_unprocessed_entries")

    refusal = refuse_first_statements(1, fragment)
    assert cluster.work_once(database_fault=refusal) == 1
    assert refusal.state["refused"] == 1
    failed = Task.objects.get(id=task_id)
    assert (failed.success, failed.attempt_count) == (False, 1)
    assert "Connection refused" in failed.result
    # Not acknowledged: still queued, and nothing was half-done.
    assert OrmQ.objects.filter(key="faults").count() == 1
    assert TimeEntry.objects.filter(status=EntryStatus.RECORDED).count() == 4

    assert cluster.work_once() == 0  # not before the retry delay
    cluster.retry_is_due()
    seen = processed_ids(monkeypatch)
    assert cluster.work_once() == 1
    done = Task.objects.get(id=task_id)
    assert (done.success, done.attempt_count, done.result) == (True, 2, "4 entries processed")
    assert not OrmQ.objects.filter(key="faults").exists()
    assert sorted(seen.values()) == [1] * 4
    assert_all_processed_once(before + 4)


def test_a_billing_task_refused_mid_run_is_retried_and_bills_exactly_like_a_clean_run(firm):
    clean = clean_run_of_march()
    cluster = Cluster()
    task_id = cluster.enqueue("billing.tasks.bill_clients_at_period_end", today="2026-04-01")

    # The second client's allocations cannot be written: its run rolls back, the first client's stays.
    refusal = refuse_statement('INSERT INTO "billing_allocation"')
    first_client_done = {"n": 0}

    def after_the_first_client(execute, sql, params, many, context):
        if 'INSERT INTO "billing_allocation"' in sql:
            first_client_done["n"] += 1
            if first_client_done["n"] == 2:
                return refusal(execute, sql, params, many, context)
        return execute(sql, params, many, context)

    cluster.work_once(database_fault=after_the_first_client)
    assert Task.objects.get(id=task_id).success is False
    assert len({row[0] for row in invoices_as_data()}) == 1

    cluster.retry_is_due()
    cluster.work_once()
    done = Task.objects.get(id=task_id)
    assert (done.success, done.attempt_count) == (True, 2)
    assert invoices_as_data() == clean["invoices"]
    assert sorted(TimeEntry.objects.values_list("external_id", "status")) == clean["entries"]


def test_a_task_that_keeps_failing_stops_after_max_attempts(firm):
    cluster = Cluster()
    task_id = cluster.enqueue("billing.tasks.sweep_unprocessed_entries")
    for _ in range(Conf.MAX_ATTEMPTS):
        assert cluster.work_once(database_fault=refuse_first_statements(10**6)) == 1
        cluster.retry_is_due()
    failed = Task.objects.get(id=task_id)
    assert (failed.success, failed.attempt_count) == (False, Conf.MAX_ATTEMPTS)
    # Given up and acknowledged: an operator sees it among the failed tasks, the queue is not clogged.
    assert not OrmQ.objects.filter(key="faults").exists()
