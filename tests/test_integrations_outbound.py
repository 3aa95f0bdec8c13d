"""Outbound pushes against their fakes over real HTTP on loopback: Harvest invoices, Kantata budgets,
HubSpot emails, Salesforce account figures. Each is pulled from what billing recorded and never makes a
duplicate, also when the answer to a create is lost after the provider acted."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from djmoney.money import Money

from billing.client_messages import send_client_message
from billing.credit_notes import CreditRequest, credit_note_create
from billing.invoicing import billing_run_create
from billing.lifecycle import invoice_finalize, invoice_mark_paid
from billing.models import ClientMessage, Invoice, InvoiceStatus, MessageKind
from integrations.fakes import LoopbackServer
from integrations.fakes.harvest import FakeHarvest
from integrations.fakes.hubspot import FakeHubSpot
from integrations.fakes.kantata import FakeKantata
from integrations.fakes.salesforce import FakeSalesforce
from integrations.harvest.push import STREAM as HARVEST_INVOICES
from integrations.hubspot import push as hubspot_push
from integrations.hubspot.push import STREAM as HUBSPOT_MESSAGES
from integrations.kantata.push import STREAM as KANTATA_BUDGETS
from integrations.models import ExternalRef, RunStatus, SyncCursor, SyncRun
from integrations.runs import run_stream
from integrations.salesforce.push import STREAM as SALESFORCE_ACCOUNTS
from projects.models import Project
from tests.billing_helpers import MARCH, approved_time
from tests.factories import (
    ClientFactory,
    ContactFactory,
    ContractFactory,
    ProjectFactory,
    RateFactory,
    TaskTypeFactory,
)

pytestmark = pytest.mark.django_db

ISSUED_ON = dt.date(2026, 4, 1)


def _run(stream) -> SyncRun:
    return run_stream(provider=stream.provider, stream=stream.name, trigger="test")


def _run_to_completion(stream, limit: int = 12) -> list[SyncRun]:
    runs: list[SyncRun] = []
    while not runs or runs[-1].status != RunStatus.SUCCEEDED:
        assert len(runs) < limit, [run.errors for run in runs]
        runs.append(_run(stream))
    return runs


@pytest.fixture
def fake_harvest(fast_retries):
    fake = FakeHarvest()
    with LoopbackServer(fake) as server:
        fast_retries.HARVEST_BASE_URL = server.url
        fast_retries.HARVEST_API_TOKEN = fake.token
        fast_retries.HARVEST_ACCOUNT_ID = fake.account_id
        yield fake


def _issued(staff_member, *, clients: int = 1, minutes=(60, 90, 50),
            issued_on: dt.date = ISSUED_ON) -> list[Invoice]:
    """One finalized March invoice per client: entries at 120.00/h, 10 % tax."""
    dev = TaskTypeFactory(code="dev", name="Development")
    for number in range(clients):
        client = ClientFactory(code=f"acme-{number}", name=f"Acme {number}", tax_rate=Decimal("10.00"),
                               payment_terms_days=14)
        project = ProjectFactory(contract=ContractFactory(client=client, number=f"C-{number}"),
                                 code=f"acme-web-{number}")
        RateFactory(contract=project.contract, hourly_rate=Money("120.00", "USD"))
        approved_time(staff_member, project, dev,
                      [(dt.date(2026, 3, 2 + day), m) for day, m in enumerate(minutes)], prefix=f"c{number}")
    drafts = billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices
    return [invoice_finalize(invoice=draft, issue_date=issued_on)
            for draft in sorted(drafts, key=lambda i: i.id)]


def _harvest_ref(invoice: Invoice) -> ExternalRef:
    return ExternalRef.objects.get(provider="harvest", kind="invoice", local_id=invoice.id)


# --- Harvest ---------------------------------------------------------------------------------------------

def test_harvest_gets_each_issued_invoice_with_our_lines_number_and_total(staff_member, fake_harvest):
    [invoice] = _issued(staff_member)

    run = _run(HARVEST_INVOICES)

    assert run.status == RunStatus.SUCCEEDED, run.errors
    assert (run.created, run.unchanged) == (1, 0)
    [remote] = fake_harvest.invoices.values()
    assert (remote["number"], remote["currency"], remote["issue_date"], remote["due_date"]) == (
        invoice.number, "USD", "2026-04-01", "2026-04-15")
    # 200 minutes at 120.00/h = 400.00, tax 10 %: Harvest's own arithmetic lands on our total.
    assert Decimal(str(remote["amount"])) == invoice.total == Decimal("440.00")
    assert remote["tax"] == 10.0 and all(item["taxed"] for item in remote["line_items"])
    [ours] = invoice.lines.all()
    [item] = remote["line_items"]
    assert (item["kind"], item["quantity"], item["unit_price"]) == ("Service", 1.0, 400.0)
    assert item["description"] == f"{ours.description} (3.33 h at 120.00/h)"
    # Created as a draft, then marked sent without emailing anyone.
    assert remote["state"] == "open" and fake_harvest.messages[0]["event_type"] == "send"
    ref = _harvest_ref(invoice)
    assert (ref.external_id, ref.details["state"]) == (str(remote["id"]), "open")
    # The client was created in Harvest by name and linked.
    client_ref = ExternalRef.objects.get(provider="harvest", kind="client", local_id=invoice.client_id)
    assert fake_harvest.clients[int(client_ref.external_id)]["name"] == "Acme 0"
    # Every request named us, the account and the token.
    assert all(r.header("Harvest-Account-Id") == fake_harvest.account_id and
               r.header("User-Agent").startswith("Billable (") for r in fake_harvest.requests)


def test_harvest_push_runs_again_without_creating_anything(staff_member, fake_harvest):
    _issued(staff_member, clients=2)
    _run(HARVEST_INVOICES)
    requests_before = len(fake_harvest.requests)

    run = _run(HARVEST_INVOICES)

    assert (run.status, run.created, run.unchanged) == (RunStatus.SUCCEEDED, 0, 0)
    assert len(fake_harvest.invoices) == 2 and len(fake_harvest.clients) == 2
    # Nothing pending: no call at all.
    assert len(fake_harvest.requests) == requests_before


def test_harvest_waits_for_the_invoice_to_be_issued_and_matches_an_existing_client(staff_member,
                                                                                   fake_harvest):
    [invoice] = _issued(staff_member)
    existing = fake_harvest.add_client("ACME 0")
    ClientFactory(code="later", name="Later")
    Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.DRAFT)

    assert _run(HARVEST_INVOICES).created == 0
    Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.SENT)
    assert _run(HARVEST_INVOICES).created == 1

    [remote] = fake_harvest.invoices.values()
    assert remote["client"]["id"] == existing and len(fake_harvest.clients) == 1


def test_a_lost_answer_after_harvest_created_the_invoice_does_not_create_a_second(staff_member, fake_harvest,
                                                                                   settings):
    settings.INTEGRATIONS_TIMEOUT_SECONDS = 0.5
    [invoice] = _issued(staff_member)
    fake_harvest.add_client("Acme 0")
    # Harvest creates the invoice, but the answer comes after the client gave up waiting.
    fake_harvest.lose_next_answers(1, delay=1.0)

    run = _run(HARVEST_INVOICES)

    assert run.status == RunStatus.SUCCEEDED, run.errors
    assert len(fake_harvest.invoices_numbered(invoice.number)) == 1
    assert fake_harvest.lost_answers == 1 and run.retries == 1
    # Found again by its number among the client's invoices of that day, and linked.
    assert (run.created, run.unchanged) == (0, 1)
    assert _harvest_ref(invoice).external_id == str(fake_harvest.invoices_numbered(invoice.number)[0]["id"])
    posts = [r.path for r in fake_harvest.requests if r.method == "POST"]
    assert posts == ["/v2/invoices", f"/v2/invoices/{_harvest_ref(invoice).external_id}/messages"]


def test_a_lost_answer_ends_the_run_then_the_next_run_links_instead_of_creating(staff_member, fake_harvest,
                                                                                 settings):
    settings.INTEGRATIONS_MAX_ATTEMPTS = 1
    [invoice] = _issued(staff_member)
    fake_harvest.lose_next_answers(2)  # the client, then the invoice

    runs = _run_to_completion(HARVEST_INVOICES)

    assert [run.status for run in runs] == [RunStatus.FAILED, RunStatus.FAILED, RunStatus.SUCCEEDED]
    assert "502" in runs[0].errors
    assert len(fake_harvest.clients) == 1 and len(fake_harvest.invoices_numbered(invoice.number)) == 1
    assert _harvest_ref(invoice).details["state"] == "open"


def test_harvest_rate_limits_are_honoured_and_a_refused_invoice_is_reported(staff_member, fake_harvest):
    first, second = _issued(staff_member, clients=2)
    fake_harvest.fail_next(1, status=429, headers={"Retry-After": "2"})
    fake_harvest.add_client("Acme 1")
    fake_harvest.invoices[999] = {**dict.fromkeys(("client", "issue_date", "state")), "id": 999,
                                  "client": {"id": 1}, "number": second.number}

    run = _run(HARVEST_INVOICES)

    assert run.status == RunStatus.PARTIAL and run.created == 1 and run.retries == 1
    assert fake_harvest.requests[0].status == 429
    assert f"Invoice {second.number} was not created in Harvest" in run.errors
    assert "not for this client" in run.errors
    assert _harvest_ref(first) and not ExternalRef.objects.filter(kind="invoice", local_id=second.id).exists()


def test_a_refused_harvest_token_fails_the_run_without_retrying(staff_member, fake_harvest):
    _issued(staff_member)
    fake_harvest.expire_token()

    run = _run(HARVEST_INVOICES)

    assert run.status == RunStatus.FAILED and "HARVEST_API_TOKEN" in run.errors
    assert len(fake_harvest.requests) == 1 and not fake_harvest.invoices


def test_with_a_third_of_harvest_calls_failing_every_invoice_lands_once(staff_member, fake_harvest):
    invoices = _issued(staff_member, clients=8)
    fake_harvest.fail_randomly(1 / 3, seed=7)
    fake_harvest.lose_randomly(1 / 3, seed=8)

    runs = _run_to_completion(HARVEST_INVOICES)

    assert sorted(i["number"] for i in fake_harvest.invoices.values()) == sorted(i.number for i in invoices)
    assert len(fake_harvest.clients) == 8 and fake_harvest.lost_answers > 0
    assert all(i["state"] == "open" for i in fake_harvest.invoices.values())
    assert ExternalRef.objects.filter(provider="harvest", kind="invoice").count() == 8
    assert sum(run.retries for run in runs) > 3


def test_harvest_paging_follows_links_next_to_the_end(staff_member, fake_harvest, monkeypatch):
    monkeypatch.setattr("integrations.harvest.client.PER_PAGE", 2)
    [invoice] = _issued(staff_member)
    client = fake_harvest.add_client("Acme 0")
    for n in range(5):
        fake_harvest.add_client(f"Someone {n}")
    for n in range(5):
        fake_harvest.invoices[900 + n] = {"id": 900 + n, "client": {"id": client}, "number": f"OLD-{n}",
                                          "issue_date": "2026-04-01", "state": "open"}
    fake_harvest.lose_next_answers(1)

    run = _run(HARVEST_INVOICES)

    assert run.status == RunStatus.SUCCEEDED and len(fake_harvest.invoices_numbered(invoice.number)) == 1
    lists = [r for r in fake_harvest.requests if r.method == "GET" and r.path == "/v2/invoices"]
    # Cursor pages: the first asks with filters, the rest only follow the cursor.
    assert lists[0].query["client_id"] == [str(client)] and "cursor" in lists[1].query
    # Six Harvest clients, two a page: three numbered pages, read once for the run.
    client_pages = [r.query.get("page", ["1"])[0] for r in fake_harvest.requests if r.path == "/v2/clients"]
    assert client_pages == ["1", "2", "3"]


# --- Kantata ---------------------------------------------------------------------------------------------

@pytest.fixture
def fake_kantata(fast_retries):
    fake = FakeKantata()
    with LoopbackServer(fake) as server:
        fast_retries.KANTATA_BASE_URL = server.url
        fast_retries.KANTATA_API_TOKEN = fake.token
        yield fake


def _budgeted(staff_member, number: int = 0, *, minutes=(120, 60)) -> Project:
    """A project with a 10,000.50 budget and 100 hours, and some approved time at 150.00/h."""
    project = ProjectFactory(code=f"web-{number}", name=f"Website {number}", budget_hours=Decimal("100"),
                             budget_amount=Money("10000.50", "USD"), end_date=dt.date(2026, 12, 31))
    RateFactory(contract=project.contract)
    approved_time(staff_member, project, TaskTypeFactory(code="dev", name="Development"),
                  [(dt.date(2026, 3, 2 + day), m) for day, m in enumerate(minutes)], prefix=f"p{number}")
    return project


def _kantata_ref(project) -> ExternalRef:
    return ExternalRef.objects.get(provider="kantata", kind="project", local_id=project.id)


def test_kantata_gets_each_budgeted_project_on_a_workspace_with_our_figures(staff_member, fake_kantata,
                                                                            settings):
    used, percent, run_out = (fake_kantata.add_custom_field(name, kind) for name, kind in (
        ("Billable used", "currency"), ("Billable % used", "number"), ("Billable run-out", "date")))
    settings.KANTATA_FIGURE_FIELDS = f"amount_used={used},percent_used={percent},forecast_run_out={run_out}"
    project = _budgeted(staff_member)
    ProjectFactory(code="unbudgeted")

    run = _run(KANTATA_BUDGETS)

    assert run.status == RunStatus.SUCCEEDED, run.errors
    assert run.created == 1 and len(fake_kantata.workspaces) == 1
    [workspace] = fake_kantata.workspaces.values()
    # The budget in whole currency units, as Kantata takes it (10,000.50 rounds to 10,001).
    shown = (workspace["title"], workspace["budgeted"], workspace["price_in_cents"], workspace["currency"])
    assert shown == ("Website 0", True, 1_000_100, "USD")
    assert (workspace["start_date"], workspace["due_date"]) == ("2026-01-01", "2026-12-31")
    budget = project.budget
    assert workspace["custom_field_values"] == {
        used: "[45000, USD]", percent: float(budget.percent_used),
        run_out: budget.forecast_run_out.isoformat() if budget.forecast_run_out else None}
    assert _kantata_ref(project).external_id == workspace["id"]
    assert fake_kantata.requests[-1].json["workspace"]["creator_role"] == "maven"


def test_kantata_sends_only_what_changed(staff_member, fake_kantata):
    project = _budgeted(staff_member)
    _run(KANTATA_BUDGETS)
    calls = len(fake_kantata.requests)

    quiet = _run(KANTATA_BUDGETS)
    assert (quiet.unchanged, len(fake_kantata.requests)) == (1, calls)

    Project.objects.filter(pk=project.pk).update(budget_amount=Decimal("20000"))
    run = _run(KANTATA_BUDGETS)

    assert run.updated == 1 and fake_kantata.requests[-1].method == "PUT"
    assert next(iter(fake_kantata.workspaces.values()))["price_in_cents"] == 2_000_000


def test_an_existing_workspace_is_found_by_title_even_archived(staff_member, fake_kantata):
    project = _budgeted(staff_member)
    theirs = fake_kantata.add_workspace("Website 0", archived=True)
    fake_kantata.add_workspace("Website 0 (old)")

    run = _run(KANTATA_BUDGETS)

    assert (run.created, run.updated) == (0, 1) and len(fake_kantata.workspaces) == 2
    assert _kantata_ref(project).external_id == theirs
    assert fake_kantata.workspaces[theirs]["price_in_cents"] == 1_000_100


def test_two_workspaces_with_the_title_are_reported_not_guessed(staff_member, fake_kantata):
    _budgeted(staff_member)
    fake_kantata.add_workspace("Website 0")
    fake_kantata.add_workspace("website 0")

    run = _run(KANTATA_BUDGETS)

    assert run.status == RunStatus.PARTIAL and "2 workspaces are titled 'Website 0'" in run.errors
    assert len(fake_kantata.workspaces) == 2


def test_a_lost_answer_after_kantata_made_the_workspace_does_not_make_a_second(staff_member, fake_kantata):
    project = _budgeted(staff_member)
    fake_kantata.lose_next_answers(1)

    run = _run(KANTATA_BUDGETS)

    assert run.status == RunStatus.SUCCEEDED, run.errors
    assert len(fake_kantata.titled("Website 0")) == 1 and fake_kantata.lost_answers == 1
    # Found by its title and linked; the figures were sent with the create.
    assert _kantata_ref(project).external_id == fake_kantata.titled("Website 0")[0]["id"]
    assert [r.method for r in fake_kantata.requests] == ["GET", "POST", "GET", "PUT"]


def test_a_workspace_deleted_in_kantata_is_made_again(staff_member, fake_kantata):
    project = _budgeted(staff_member)
    _run(KANTATA_BUDGETS)
    fake_kantata.delete_workspace(_kantata_ref(project).external_id)
    Project.objects.filter(pk=project.pk).update(budget_amount=Decimal("12000"))

    run = _run(KANTATA_BUDGETS)

    assert run.created == 1 and len(fake_kantata.workspaces) == 1
    assert _kantata_ref(project).external_id == next(iter(fake_kantata.workspaces))


def test_kantata_429_without_headers_is_backed_off_and_a_revoked_token_stops_the_run(staff_member,
                                                                                     fake_kantata):
    _budgeted(staff_member)
    fake_kantata.fail_next(2, status=429, body={"errors": [{"type": "system", "message": "Too many"}]})
    assert _run(KANTATA_BUDGETS).retries == 2 and len(fake_kantata.workspaces) == 1

    fake_kantata.expire_token()
    Project.objects.update(budget_amount=Decimal("5000"))
    run = _run(KANTATA_BUDGETS)
    assert run.status == RunStatus.FAILED and "KANTATA_API_TOKEN" in run.errors


def test_the_budget_push_costs_the_same_queries_for_3_projects_as_for_12(staff_member, fake_kantata):
    def queries_of_a_quiet_run() -> int:
        _run(KANTATA_BUDGETS)
        with CaptureQueriesContext(connection) as captured:
            _run(KANTATA_BUDGETS)
        return len(captured)

    for number in range(3):
        _budgeted(staff_member, number)
    few = queries_of_a_quiet_run()
    for number in range(3, 12):
        _budgeted(staff_member, number)

    assert queries_of_a_quiet_run() == few


def test_with_a_third_of_kantata_calls_failing_every_project_has_one_workspace(staff_member, fake_kantata):
    projects = [_budgeted(staff_member, number) for number in range(8)]
    fake_kantata.fail_randomly(1 / 3, seed=3)
    fake_kantata.lose_randomly(1 / 3, seed=4)

    _run_to_completion(KANTATA_BUDGETS)

    assert sorted(w["title"] for w in fake_kantata.workspaces.values()) == sorted(p.name for p in projects)
    assert fake_kantata.lost_answers > 0
    assert all(w["price_in_cents"] == 1_000_100 for w in fake_kantata.workspaces.values())


# --- HubSpot ---------------------------------------------------------------------------------------------

@pytest.fixture
def fake_hubspot(fast_retries, monkeypatch):
    # The fake's search is up to date at once; HubSpot's lags, hence the settle time in production.
    monkeypatch.setattr(hubspot_push, "SEARCH_SETTLE", dt.timedelta(0))
    fake = FakeHubSpot()
    with LoopbackServer(fake) as server:
        fast_retries.HUBSPOT_BASE_URL = server.url
        fast_retries.HUBSPOT_API_TOKEN = fake.token
        fast_retries.HUBSPOT_TRANSACTIONAL_EMAIL_ID = ""
        yield fake


def _messages(count: int = 1, *, to=("cfo@acme.test", "ap@acme.test")) -> list[ClientMessage]:
    client = ClientFactory(code="acme", name="Acme")
    ContactFactory(client=client, name="Carla Fo", email="cfo@acme.test")
    return [send_client_message(client=client, kind=MessageKind.WEEKLY_SUMMARY, to=list(to),
                                subject=f"Your week {number}", body=f"Hours of week {number}")
            for number in range(count)]


def test_every_client_message_is_logged_on_its_contacts_in_hubspot(db, fake_hubspot):
    known = fake_hubspot.add_contact("AP@acme.test")
    message, failed = _messages(2)
    ClientMessage.objects.filter(pk=failed.pk).update(status="failed")

    run = _run(HUBSPOT_MESSAGES)

    assert run.status == RunStatus.SUCCEEDED, run.errors
    assert run.created == 2 and len(fake_hubspot.emails) == 2
    # The contact we lacked was created with our contact's name; the one HubSpot had was reused.
    assert len(fake_hubspot.contacts) == 2
    cfo = next(c for c in fake_hubspot.contacts.values() if c["properties"]["email"] == "cfo@acme.test")
    assert (cfo["properties"]["firstname"], cfo["properties"]["lastname"]) == ("Carla", "Fo")
    logged = fake_hubspot.emails_of(known)
    assert len(logged) == 2 and all(cfo["id"] in email["contact_ids"] for email in logged)
    first = next(e for e in logged if e["properties"]["hs_email_subject"] == "Your week 0")
    properties = first["properties"]
    assert (properties["hs_email_direction"], properties["hs_email_status"], properties["hs_email_text"]) == (
        "EMAIL", "SENT", "Hours of week 0")
    headers = json.loads(properties["hs_email_headers"])
    assert [to["email"] for to in headers["to"]] == ["cfo@acme.test", "ap@acme.test"]
    assert headers["messageId"] == f"<billable-message-{message.id}@billable.localhost>"
    assert next(e for e in logged if e is not first)["properties"]["hs_email_status"] == "FAILED"
    assert ExternalRef.objects.get(kind="email", local_id=message.id).external_id == first["id"]
    # Nothing left: the next run asks HubSpot nothing.
    calls = len(fake_hubspot.requests)
    assert _run(HUBSPOT_MESSAGES).created == 0 and len(fake_hubspot.requests) == calls


def test_a_lost_answer_after_hubspot_logged_the_email_is_found_not_logged_again(db, fake_hubspot,
                                                                               monkeypatch):
    monkeypatch.setattr(hubspot_push, "SEARCH_SETTLE", dt.timedelta(minutes=1))
    [message] = _messages(1)
    fake_hubspot.lose_next_answers(3)  # the two contacts (asked again: 409 names them), then the email

    first = _run(HUBSPOT_MESSAGES)

    assert first.status == RunStatus.PARTIAL and "looked up at the next run" in first.errors
    assert len(fake_hubspot.emails) == 1 and len(fake_hubspot.contacts) == 2
    # At once, HubSpot's search may not show it yet: the message waits.
    waiting = _run(HUBSPOT_MESSAGES)
    assert (waiting.skipped, waiting.created, len(fake_hubspot.emails)) == (1, 0, 1)

    monkeypatch.setattr(hubspot_push, "SEARCH_SETTLE", dt.timedelta(0))
    found = _run(HUBSPOT_MESSAGES)

    assert (found.status, found.created, found.unchanged) == (RunStatus.SUCCEEDED, 0, 1)
    assert len(fake_hubspot.emails) == 1
    [email_id] = fake_hubspot.emails
    assert ExternalRef.objects.get(kind="email", local_id=message.id).external_id == email_id


def test_a_run_killed_between_logging_and_storing_leaves_a_lookup_not_a_second_email(db, fake_hubspot,
                                                                                   monkeypatch):
    [message] = _messages(1)
    real_store = hubspot_push._store

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the worker dies right after HubSpot logged the email

    monkeypatch.setattr(hubspot_push, "_store", killed)
    with pytest.raises(KeyboardInterrupt):
        _run(HUBSPOT_MESSAGES)
    assert len(fake_hubspot.emails) == 1 and not ExternalRef.objects.filter(kind="email").exists()
    SyncCursor.objects.update(leased_until=timezone.now() - dt.timedelta(seconds=1))  # its lease runs out
    monkeypatch.setattr(hubspot_push, "_store", real_store)

    run = _run(HUBSPOT_MESSAGES)

    assert (run.status, run.created, run.unchanged) == (RunStatus.SUCCEEDED, 0, 1)
    assert len(fake_hubspot.emails) == 1
    assert ExternalRef.objects.get(kind="email").local_id == message.id


def test_hubspot_rate_limits_wait_out_the_ten_seconds_but_not_the_day(db, fake_hubspot, settings):
    _messages(1)
    fake_hubspot.limit_next(1)
    assert _run(HUBSPOT_MESSAGES).retries == 1 and len(fake_hubspot.emails) == 1

    settings.INTEGRATIONS_MAX_WAIT_SECONDS = 3600
    send_client_message(client=ClientMessage.objects.get().client, kind=MessageKind.INVOICE,
                        to=["cfo@acme.test"], subject="Invoice", body="")
    fake_hubspot.limit_next(1, policy="DAILY")
    run = _run(HUBSPOT_MESSAGES)
    assert run.status == RunStatus.FAILED and "DAILY" in run.errors and "left for the next run" in run.errors


def test_with_the_transactional_email_set_recent_messages_are_sent_through_hubspot(db, fake_hubspot,
                                                                                  settings):
    settings.HUBSPOT_TRANSACTIONAL_EMAIL_ID = fake_hubspot.add_transactional_email()
    old, recent = _messages(2, to=("cfo@acme.test", "nobody@acme.invalid"))
    ClientMessage.objects.filter(pk=old.pk).update(sent_at=timezone.now() - dt.timedelta(days=3))
    fake_hubspot.lose_next_answers(1)  # the first send: asked again with the same sendId

    run = _run(HUBSPOT_MESSAGES)

    assert run.status == RunStatus.SUCCEEDED, run.errors
    sends = list(fake_hubspot.sends.values())
    assert sorted((s["to"], s["sendId"]) for s in sends) == [
        ("cfo@acme.test", f"billable-message-{recent.id}-0"),
        ("nobody@acme.invalid", f"billable-message-{recent.id}-1")]
    assert sends[0]["customProperties"]["subject"] == "Your week 1"
    # The old message is only logged: switching sending on never mails the past.
    assert [e["properties"]["hs_email_subject"] for e in fake_hubspot.emails.values()] == ["Your week 0"]
    assert ExternalRef.objects.filter(kind="send", local_id=recent.id).count() == 2

    later = _run(HUBSPOT_MESSAGES)  # the statuses are polled until HubSpot has finished

    assert ("did not deliver 'Your week 1 → nobody@acme.invalid' to nobody@acme.invalid: "
            "INVALID_TO_ADDRESS") in later.errors
    assert {ref.details["status"] for ref in ExternalRef.objects.filter(kind="send")} == {"COMPLETE"}
    assert len(fake_hubspot.sends) == 2


def test_with_a_third_of_hubspot_calls_failing_every_message_is_logged_once(db, fake_hubspot):
    messages = _messages(10)
    fake_hubspot.fail_randomly(1 / 3, seed=5)
    fake_hubspot.lose_randomly(1 / 3, seed=6)

    _run_to_completion(HUBSPOT_MESSAGES, limit=20)

    keys = sorted(json.loads(e["properties"]["hs_email_headers"])["messageId"]
                  for e in fake_hubspot.emails.values())
    assert keys == sorted(f"<billable-message-{m.id}@billable.localhost>" for m in messages)
    assert len(fake_hubspot.contacts) == 2 and fake_hubspot.lost_answers > 0


# --- Salesforce accounts ---------------------------------------------------------------------------------

@pytest.fixture
def fake_salesforce(fast_retries):
    fake = FakeSalesforce()
    with LoopbackServer(fake) as server:
        fast_retries.SALESFORCE_BASE_URL = server.url
        fast_retries.SALESFORCE_CLIENT_ID = fake.client_id
        fast_retries.SALESFORCE_CLIENT_SECRET = fake.client_secret
        yield fake


def _account_of(client, fake) -> str:
    account = fake.add_account(client.name)
    ExternalRef.objects.create(provider="salesforce", kind="client", external_id=account, local_id=client.id,
                               label=client.name)
    return account


def test_salesforce_accounts_show_last_invoice_billed_this_year_and_outstanding(staff_member,
                                                                               fake_salesforce):
    today = timezone.localdate()
    first, second = _issued(staff_member, clients=2, issued_on=today)
    accounts = [_account_of(invoice.client, fake_salesforce) for invoice in (first, second)]
    invoice_mark_paid(invoice=second)
    entry_id = first.lines.get().allocations.order_by("id").first().time_entry_id
    credit_note_create(invoice=first, parts=[CreditRequest(time_entry_id=entry_id, minutes=60)], release=True)

    run = _run(SALESFORCE_ACCOUNTS)

    assert run.status == RunStatus.SUCCEEDED and run.updated == 2, run.errors
    acme = fake_salesforce.get("Account", accounts[0])
    # 440.00 issued less the credit of an hour (120.00 + 10 % tax) = 308.00, all still unpaid.
    assert (acme["Last_Invoice_Number__c"], acme["Last_Invoice_Date__c"]) == (first.number, today.isoformat())
    assert (acme["Billed_YTD__c"], acme["Outstanding_Balance__c"]) == (308.0, 308.0)
    paid = fake_salesforce.get("Account", accounts[1])
    assert (paid["Billed_YTD__c"], paid["Outstanding_Balance__c"]) == (440.0, 0.0)
    [patch] = [r for r in fake_salesforce.requests if r.method == "PATCH"]
    assert patch.path == "/services/data/v59.0/composite/sobjects" and patch.json["allOrNone"] is False
    # Unchanged figures are not sent again.
    assert _run(SALESFORCE_ACCOUNTS).unchanged == 2
    assert len([r for r in fake_salesforce.requests if r.method == "PATCH"]) == 1


def test_a_deleted_account_is_reported_and_the_others_updated(staff_member, fake_salesforce, settings):
    settings.SALESFORCE_ACCOUNT_FIELDS = "last_invoice_date=,outstanding="
    first, second = _issued(staff_member, clients=2)
    gone, kept = (_account_of(invoice.client, fake_salesforce) for invoice in (first, second))
    fake_salesforce.delete("Account", gone)

    run = _run(SALESFORCE_ACCOUNTS)

    assert run.status == RunStatus.PARTIAL and run.updated == 1
    assert "was not updated in Salesforce: ENTITY_IS_DELETED" in run.errors
    [patch] = [r for r in fake_salesforce.requests if r.method == "PATCH"]
    assert set(patch.json["records"][1]) == {"attributes", "id", "Last_Invoice_Number__c", "Billed_YTD__c"}
    assert fake_salesforce.get("Account", kept)["Last_Invoice_Number__c"] == second.number


def test_a_contact_deleted_in_hubspot_is_made_again_for_the_next_message(db, fake_hubspot):
    _messages(1, to=("cfo@acme.test",))
    _run(HUBSPOT_MESSAGES)
    [gone] = fake_hubspot.contacts
    fake_hubspot.archive(gone)
    client = ClientMessage.objects.get().client
    send_client_message(client=client, kind=MessageKind.INVOICE, to=["cfo@acme.test"], subject="Invoice", body="")

    run = _run(HUBSPOT_MESSAGES)

    assert run.status == RunStatus.SUCCEEDED and run.created == 1
    [fresh] = [c for c in fake_hubspot.contacts if c != gone]
    assert [e["properties"]["hs_email_subject"] for e in fake_hubspot.emails_of(fresh)] == ["Invoice"]
