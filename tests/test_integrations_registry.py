"""The wiring of every connector: registry, settings, tasks, schedules, admin names, and the demo fakes."""

import io
import re
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from djmoney.money import Money

from config.schedules import schedules
from integrations import tasks
from integrations.checks import check_connections
from integrations.connections import connection_for, missing_settings
from integrations.harvest.push import STREAM as HARVEST_INVOICES
from integrations.hubspot.push import STREAM as HUBSPOT_MESSAGES
from integrations.kantata.push import STREAM as KANTATA_BUDGETS
from integrations.management.commands import run_fake_providers
from integrations.models import ExternalRef, MatchedBy, Provider, RunStatus, SyncRun
from integrations.providers import STREAMS, load, providers_with_streams, stream_of, streams_of
from integrations.salesforce.push import STREAM as SALESFORCE_ACCOUNTS
from integrations.salesforce.sync import STREAM as SALESFORCE_TERMS
from tests.factories import ClientFactory, ContractFactory, RateFactory

pytestmark = pytest.mark.django_db

UNSET = ("SALESFORCE_BASE_URL", "SALESFORCE_CLIENT_ID", "SALESFORCE_CLIENT_SECRET", "KANTATA_API_TOKEN",
         "HUBSPOT_API_TOKEN", "HARVEST_API_TOKEN", "HARVEST_ACCOUNT_ID")


@pytest.fixture
def unconfigured(settings):
    for name in UNSET:
        setattr(settings, name, "")
    return settings


def test_every_provider_has_its_streams_and_every_function_loads():
    assert providers_with_streams() == [p.value for p in Provider]
    assert [s.name for s in streams_of(Provider.SALESFORCE)] == ["terms", "account_updates"]
    # The provider's first stream is the one the admin's quarantine retry and `sync salesforce` take.
    assert stream_of(Provider.SALESFORCE) is SALESFORCE_TERMS and SALESFORCE_TERMS.retry
    for stream in STREAMS:
        for path in (stream.sync, stream.retry, stream.webhook):
            assert path is None or callable(load(path)), path
    # The modules' STREAM is the registry's entry, not a second definition.
    assert {SALESFORCE_ACCOUNTS, KANTATA_BUDGETS, HUBSPOT_MESSAGES, HARVEST_INVOICES} <= set(STREAMS)


def test_salesforce_is_enabled_by_its_client_secret_and_reads_its_options(settings):
    settings.SALESFORCE_CLIENT_SECRET, settings.SALESFORCE_CLIENT_ID = "shh", "key"
    settings.SALESFORCE_RATE_OBJECT, settings.HARVEST_ACCOUNT_ID = "", "4242"

    conn = connection_for(Provider.SALESFORCE)

    assert conn.enabled and conn.token == "shh"
    assert (conn.option("client_id"), conn.option("rate_object"), conn.option("api_version")) == ("key", "", "59.0")
    assert connection_for(Provider.HARVEST).option("account_id") == "4242"


def test_an_enabled_provider_missing_a_setting_fails_the_system_check(unconfigured):
    unconfigured.SALESFORCE_CLIENT_SECRET = "shh"
    unconfigured.HARVEST_API_TOKEN = "token"

    assert missing_settings(Provider.SALESFORCE) == ["SALESFORCE_BASE_URL", "SALESFORCE_CLIENT_ID"]
    warnings = [w for w in check_connections() if "salesforce" in w.msg or "harvest" in w.msg]
    assert [w.msg for w in warnings] == [
        "salesforce has SALESFORCE_CLIENT_SECRET set but SALESFORCE_BASE_URL is not set: its sync will fail.",
        "salesforce has SALESFORCE_CLIENT_SECRET set but SALESFORCE_CLIENT_ID is not set: its sync will fail.",
        "harvest has HARVEST_API_TOKEN set but HARVEST_ACCOUNT_ID is not set: its sync will fail."]


def test_the_sync_command_says_what_to_set_when_salesforce_is_not_configured(unconfigured):
    with pytest.raises(CommandError, match=re.escape(
            "Salesforce is not configured: set SALESFORCE_CLIENT_SECRET, with SALESFORCE_BASE_URL and "
            "SALESFORCE_CLIENT_ID.")):
        call_command("sync", "salesforce", stdout=io.StringIO())
    assert not SyncRun.objects.exists()


def test_each_connector_has_a_schedule_whose_task_skips_quietly_while_unconfigured(unconfigured):
    by_func = {s["func"]: s for s in schedules() if s["func"].startswith("integrations.tasks.")}

    assert set(by_func) == {f"integrations.tasks.{name}" for name in (
        "sync_toggl", "sync_monday", "sync_salesforce", "push_salesforce_accounts", "push_kantata_budgets",
        "push_hubspot_messages", "push_harvest_invoices")}
    assert by_func["integrations.tasks.push_hubspot_messages"]["minutes"] == 10
    outcomes = {name: getattr(tasks, name)() for name in (
        "sync_salesforce", "push_salesforce_accounts", "push_kantata_budgets", "push_hubspot_messages",
        "push_harvest_invoices")}
    assert outcomes["push_salesforce_accounts"].startswith(
        "skipped: Salesforce is not configured: set SALESFORCE_CLIENT_SECRET")
    assert outcomes["push_kantata_budgets"] == "skipped: Kantata is not configured: set KANTATA_API_TOKEN."
    assert outcomes["push_harvest_invoices"] == (
        "skipped: Harvest is not configured: set HARVEST_API_TOKEN, with HARVEST_ACCOUNT_ID.")
    assert all(outcome.startswith("skipped: ") for outcome in outcomes.values())
    assert not SyncRun.objects.exists()


def test_the_references_list_names_the_contract_and_rate_a_connector_linked(admin_client):
    contract = ContractFactory(number="C-0042")
    rate = RateFactory(contract=contract, hourly_rate=Money("150.00", contract.currency))
    ExternalRef.objects.create(provider="salesforce", kind="contract", external_id="800A", local_id=contract.id,
                               label="00000042")
    ExternalRef.objects.create(provider="salesforce", kind="rate", external_id="a0B", local_id=rate.id)

    response = admin_client.get(reverse("admin:integrations_externalref_changelist"))

    text = response.content.decode()
    assert response.status_code == 200
    names = re.findall(r'<td class="field-local_object">(.*?)</td>', text)
    # The rate's amount reads "150" or "150.00" depending on the database.
    assert names[0] == "C-0042" and re.fullmatch(rf"C-0042 · 150(\.00)? {contract.currency}/h", names[1]), names


def test_editing_a_connector_link_by_hand_keeps_what_it_maps_to(admin_client):
    contract = ContractFactory(number="C-0042")
    ref = ExternalRef.objects.create(provider="salesforce", kind="contract", external_id="800A",
                                     local_id=contract.id, matched_by=MatchedBy.CODE, label="old")

    response = admin_client.post(reverse("admin:integrations_externalref_change", args=[ref.pk]), {
        "provider": "salesforce", "kind": "contract", "external_id": "800A", "label": "Contract 00000042",
        "member": "", "project": "", "client": "", "task_type": ""})

    assert response.status_code == 302
    ref.refresh_from_db()
    assert (ref.label, ref.local_id, ref.matched_by) == ("Contract 00000042", contract.id, MatchedBy.CODE)


def test_the_demo_fakes_print_an_environment_that_syncs(settings, fast_retries, monkeypatch):
    """run_fake_providers on free ports: its printed exports point a real sync at the running fakes."""
    ClientFactory(code="acme", name="Acme Corp", currency="USD")
    ClientFactory(code="globex", name="Globex", currency="EUR")
    out = io.StringIO()
    runs: list[SyncRun] = []

    def first_tick(seconds):
        exports = dict(re.findall(r"export (\w+)=(\S*)", out.getvalue()))
        for name, value in exports.items():
            setattr(settings, name, value.split(",") if name == "MONDAY_BOARD_IDS" else value)
        runs.append(SyncRun.objects.get(pk=_sync_salesforce().pk))
        raise KeyboardInterrupt

    def _sync_salesforce():
        from integrations.runs import run_stream

        return run_stream(provider="salesforce", trigger="test")

    # One tick of the serving loop, and no process-wide SIGTERM handler left behind.
    monkeypatch.setattr(run_fake_providers, "time", SimpleNamespace(sleep=first_tick, monotonic=lambda: 0.0))
    monkeypatch.setattr(run_fake_providers.signal, "signal", lambda *args: None)

    call_command("run_fake_providers", *[f"--{p}-port=0" for p in (
        "toggl", "monday", "salesforce", "kantata", "hubspot", "harvest")], "--days=2", stdout=out)

    text = out.getvalue()
    for name in ("TOGGL_API_TOKEN", "MONDAY_BOARD_IDS", "SALESFORCE_CLIENT_SECRET", "KANTATA_API_TOKEN",
                 "HUBSPOT_API_TOKEN", "HARVEST_ACCOUNT_ID"):
        assert f"export {name}=" in text
    # Our two clients were seeded as accounts and matched back by their number: nothing new, nothing lost.
    [run] = runs
    assert run.status == RunStatus.SUCCEEDED, run.errors
    assert (run.created, run.unchanged, run.quarantined) == (0, 2, 0)
    assert ExternalRef.objects.filter(provider="salesforce", kind="client", local_id__isnull=False).count() == 2
    assert text.rstrip().endswith("Stopped.")
