"""Salesforce in: the terms connector against the fake org over real HTTP on loopback."""

import datetime as dt
from types import SimpleNamespace

import pytest
from djmoney.money import Money

from billing.invoicing import billing_run_create
from billing.models import Rate
from clients.models import BillingType, Client, Contract, ContractStatus
from integrations.fakes import LoopbackServer
from integrations.fakes.salesforce import FakeSalesforce
from integrations.models import ExternalRef, InboundRecord, RecordStatus, RunStatus, SyncCursor, SyncRun
from integrations.runs import run_stream
from projects.models import EntryStatus, TimeEntry
from tests.billing_helpers import approved_time
from tests.factories import ClientFactory, ProjectFactory, RoleFactory, TaskTypeFactory

pytestmark = pytest.mark.django_db

JAN = dt.date(2026, 1, 1)


@pytest.fixture
def fake_salesforce(fast_retries):
    fake = FakeSalesforce()
    with LoopbackServer(fake) as server:
        fast_retries.SALESFORCE_BASE_URL = server.url
        fast_retries.SALESFORCE_CLIENT_ID = fake.client_id
        fast_retries.SALESFORCE_CLIENT_SECRET = fake.client_secret
        yield fake


@pytest.fixture
def org(db, fake_salesforce):
    """Two accounts (Globex already a client here), a contract each, a rate card on Acme's."""
    fake = fake_salesforce
    senior = RoleFactory(code="senior", name="Senior Consultant")
    dev = TaskTypeFactory(code="dev", name="Development", is_default=True)
    globex_client = ClientFactory(code="globex", name="Globex Corporation")
    acme = fake.add_account("Acme Ltd", AccountNumber="ACME", CurrencyIsoCode="EUR", Type="Customer")
    globex = fake.add_account("Globex Corporation", AccountNumber="GLOBEX", CurrencyIsoCode="USD",
                              Type="Customer")
    acme_contract = fake.add_contract(acme, start=JAN, ContractTerm=12, Billing_Type__c="Time and Materials",
                                      Billing_Cap__c=50000)
    globex_contract = fake.add_contract(globex, start=dt.date(2026, 2, 1), Billing_Type__c="T&M")
    card, lines = fake.add_rate_card(acme_contract, effective_from=JAN, lines=[
        {"Role__c": "Senior Consultant", "Hourly_Rate__c": 180},
        {"Task_Type__c": "DEV", "Hourly_Rate__c": 150},
        {"Hourly_Rate__c": 120.5},
    ])
    return SimpleNamespace(senior=senior, dev=dev, globex_client=globex_client, acme=acme, globex=globex,
                           acme_contract=acme_contract, globex_contract=globex_contract, card=card,
                           lines=lines)


def _sync() -> SyncRun:
    return run_stream(provider="salesforce", stream="terms", trigger="test")


def _contract(fake, record_id) -> Contract:
    return Contract.objects.get(number=fake.get("Contract", record_id)["ContractNumber"])


def _queries(fake) -> list[str]:
    return [r.query["q"][0] for r in fake.requests if r.path.endswith("/queryAll")]


def _quarantined() -> dict[str, str]:
    return {r.external_id: r.reason for r in InboundRecord.objects.filter(provider="salesforce",
                                                                          status=RecordStatus.QUARANTINED)}


def test_first_sync_logs_in_and_takes_accounts_contracts_and_rate_cards(org, fake_salesforce):
    run = _sync()

    assert run.status == RunStatus.SUCCEEDED, run.errors
    # Acme's client, both contracts and the card are new; Globex was matched to the client we had.
    assert (run.created, run.updated, run.unchanged, run.quarantined) == (4, 0, 1, 0)
    acme = Client.objects.get(code="acme")
    assert (acme.name, acme.currency) == ("Acme Ltd", "EUR")
    assert ExternalRef.objects.get(provider="salesforce", kind="client", external_id=org.globex).local_id == \
        org.globex_client.id
    contract = _contract(fake_salesforce, org.acme_contract)
    assert (contract.client, contract.currency, contract.start_date, contract.end_date) == (
        acme, "EUR", JAN, dt.date(2026, 12, 31))
    assert (contract.billing_type, contract.status, contract.cap_amount) == (
        BillingType.TIME_AND_MATERIALS, ContractStatus.ACTIVE, Money("50000", "EUR"))
    assert _contract(fake_salesforce, org.globex_contract).client == org.globex_client
    rates = {(r.role_id, r.task_type_id): r for r in Rate.objects.filter(contract=contract)}
    assert {key: rate.hourly_rate for key, rate in rates.items()} == {
        (org.senior.id, None): Money("180", "EUR"), (None, org.dev.id): Money("150", "EUR"),
        (None, None): Money("120.50", "EUR")}
    assert all((r.effective_from, r.effective_to) == (JAN, None) for r in rates.values())
    # Client credentials against the My Domain host, then the bearer token on every data call.
    login = fake_salesforce.requests[0]
    assert (login.method, login.path, login.query) == ("POST", "/services/oauth2/token",
                                                        {"grant_type": ["client_credentials"]})
    # The key and secret travel in the Authorization header, never in the URL.
    assert login.basic_auth() == (fake_salesforce.client_id, fake_salesforce.client_secret)
    assert all(r.header("Authorization").startswith("Bearer 00D") for r in fake_salesforce.requests[1:])
    first = _queries(fake_salesforce)[0]
    assert first.startswith("SELECT Id, SystemModstamp, IsDeleted, Name, AccountNumber, CurrencyIsoCode "
                            "FROM Account")
    assert "WHERE" not in first and first.endswith("ORDER BY SystemModstamp, Id")
    assert set(SyncCursor.objects.get(provider="salesforce").position) == {
        "accounts", "contracts", "rate_cards", "rate_lines"}


def test_paging_follows_next_records_url_to_the_end(db, fake_salesforce):
    fake_salesforce.batch_size = 2
    for number in range(5):
        fake_salesforce.add_account(f"Client {number}", AccountNumber=f"C{number}")

    run = _sync()

    assert run.status == RunStatus.SUCCEEDED and run.created == 5
    assert Client.objects.count() == 5
    more = [r.path for r in fake_salesforce.requests if "/query/" in r.path]
    assert len(more) == 2 and all(path.startswith("/services/data/v59.0/query/01g") for path in more)
    assert fake_salesforce.requests[1].header("Sforce-Query-Options") == "batchSize=2000"


def test_a_later_sync_reads_only_what_changed_since(org, fake_salesforce):
    _sync()
    fake_salesforce.advance(hours=1)
    _sync()  # nothing changed: an empty read of each object
    fake_salesforce.update("Account", org.acme, Name="Acme Limited")
    fake_salesforce.update("Contract", org.acme_contract, ContractTerm=6)
    before = len(fake_salesforce.requests)

    run = _sync()

    assert (run.created, run.updated, run.unchanged) == (0, 2, 0)
    assert Client.objects.get(code="acme").name == "Acme Limited"
    assert _contract(fake_salesforce, org.acme_contract).end_date == dt.date(2026, 6, 30)
    # From the org's clock at the previous read, less two minutes for rows committed late.
    queries = [r.query["q"][0] for r in fake_salesforce.requests[before:] if r.path.endswith("/queryAll")]
    assert "WHERE SystemModstamp > 2026-03-02T09:58:" in queries[0]
    answers = [r for r in fake_salesforce.requests[before:] if r.path.endswith("/queryAll")]
    assert len(answers) == 4  # accounts, contracts, rate cards, changed lines


def test_changed_terms_and_rates_rerate_the_entries_not_yet_invoiced(
        org, fake_salesforce, staff_member, settings, django_capture_on_commit_callbacks):
    settings.SALESFORCE_CONTRACT_FIELDS = "rounding_increment=Rounding_Increment__c"
    with django_capture_on_commit_callbacks(execute=True):
        _sync()
    contract = _contract(fake_salesforce, org.acme_contract)
    project = ProjectFactory(contract=contract, client=contract.client, code="acme-web")
    invoiced, *open_ = approved_time(staff_member, project, org.dev,
                                     [(dt.date(2026, 3, 2), 60), (dt.date(2026, 4, 1), 60),
                                      (dt.date(2026, 4, 2), 50)])
    assert [e.amount for e in (invoiced, *open_)] == [Money("150.00", "EUR"), Money("150.00", "EUR"),
                                                      Money("125.00", "EUR")]
    billing_run_create(period_start=dt.date(2026, 3, 1), period_end=dt.date(2026, 3, 31))

    fake_salesforce.update("Rate_Card_Line__c", org.lines[1], Hourly_Rate__c=210)
    fake_salesforce.update("Contract", org.acme_contract, Rounding_Increment__c=30)
    with django_capture_on_commit_callbacks(execute=True):
        run = _sync()

    assert run.status == RunStatus.SUCCEEDED, run.errors
    assert Rate.objects.get(contract=contract, task_type=org.dev).hourly_rate == Money("210", "EUR")
    entries = {e.id: e for e in TimeEntry.objects.filter(project=project)}
    # Invoiced time keeps what it was billed at; open time is rated again at the new rate.
    assert (entries[invoiced.id].status, entries[invoiced.id].amount) == (EntryStatus.INVOICED,
                                                                          Money("150.00", "EUR"))
    # Rounded up to 30 minutes now: 60 stays 60, 50 becomes 60.
    assert [entries[e.id].amount for e in open_] == [Money("210.00", "EUR"), Money("210.00", "EUR")]


def test_rounding_is_a_term_only_when_its_field_is_configured(org, fake_salesforce, settings):
    settings.SALESFORCE_CONTRACT_FIELDS = ("rounding_increment=Rounding_Increment__c,"
                                           "rounding_mode=Rounding_Mode__c")
    fake_salesforce.update("Contract", org.acme_contract, Rounding_Increment__c=15,
                           Rounding_Mode__c="Nearest")

    _sync()

    contract = _contract(fake_salesforce, org.acme_contract)
    assert (contract.rounding_increment, contract.rounding_mode) == (15, "nearest")


def test_a_changed_or_removed_line_is_found_though_its_card_did_not_change(org, fake_salesforce):
    _sync()
    contract = _contract(fake_salesforce, org.acme_contract)
    fake_salesforce.advance(hours=1)
    card_stamp = fake_salesforce.get("Rate_Card__c", org.card)["SystemModstamp"]
    fake_salesforce.update("Rate_Card_Line__c", org.lines[0], Hourly_Rate__c=190)
    fake_salesforce.delete("Rate_Card_Line__c", org.lines[2])
    assert fake_salesforce.get("Rate_Card__c", org.card)["SystemModstamp"] == card_stamp

    run = _sync()

    assert run.status == RunStatus.SUCCEEDED and run.updated == 1
    rates = sorted(r.hourly_rate for r in Rate.objects.filter(contract=contract))
    assert rates == [Money("150", "EUR"), Money("190", "EUR")]
    assert not ExternalRef.objects.filter(kind="rate", external_id=org.lines[2]).exists()


def test_a_deleted_rate_card_removes_its_rates_and_a_deleted_contract_is_kept(org, fake_salesforce):
    _sync()
    contract = _contract(fake_salesforce, org.acme_contract)
    fake_salesforce.delete("Rate_Card__c", org.card)
    fake_salesforce.delete("Contract", org.globex_contract)

    run = _sync()

    assert run.deleted == 3 and not Rate.objects.filter(contract=contract).exists()
    assert "was deleted in Salesforce; it is kept in Billable" in run.errors
    assert _contract(fake_salesforce, org.globex_contract)


def test_an_expired_session_is_renewed_once_and_the_read_goes_on(db, fake_salesforce):
    fake_salesforce.batch_size = 2
    for number in range(5):
        fake_salesforce.add_account(f"Client {number}")
    fake_salesforce.expire_token(after=1)  # the session dies after the first page

    run = _sync()

    assert run.status == RunStatus.SUCCEEDED and run.created == 5
    assert fake_salesforce.logins == 2
    # Logged in, first page, then the session is gone: log in again and ask for the same page.
    assert [(r.path.rsplit("/", 1)[-1][:8], r.status) for r in fake_salesforce.requests[:5]] == [
        ("token", 200), ("queryAll", 200), (fake_salesforce.requests[2].path.rsplit("/", 1)[-1][:8], 401),
        ("token", 200), (fake_salesforce.requests[2].path.rsplit("/", 1)[-1][:8], 200)]
    assert fake_salesforce.requests[4].path == fake_salesforce.requests[2].path


def test_the_request_limit_server_errors_and_slow_answers_are_retried(org, fake_salesforce, settings):
    settings.INTEGRATIONS_TIMEOUT_SECONDS = 0.3
    fake_salesforce.exhaust_limit(2)
    fake_salesforce.fail_next(1, status=503)
    fake_salesforce.slow_next(1, seconds=1.0)

    run = _sync()

    assert run.status == RunStatus.SUCCEEDED and run.retries == 4 and run.created == 4
    # The login is retried like any call; a slow answer is given up on after the timeout and asked again.
    assert [r.status for r in fake_salesforce.requests[:3]] == [403, 403, 503]
    assert [r.path for r in fake_salesforce.requests[3:5]] == ["/services/oauth2/token"] * 2


def test_a_spent_request_limit_ends_the_run_for_a_later_one(org, fake_salesforce, settings):
    settings.INTEGRATIONS_MAX_ATTEMPTS = 2
    fake_salesforce.exhaust_limit(5)

    run = _sync()

    assert run.status == RunStatus.FAILED and "REQUEST_LIMIT_EXCEEDED" in run.errors
    assert not Client.objects.filter(code="acme").exists()


def test_refused_credentials_fail_the_run_with_what_to_check(org, fake_salesforce, settings):
    settings.SALESFORCE_CLIENT_SECRET = "wrong"

    run = _sync()

    assert run.status == RunStatus.FAILED
    assert "invalid_client" in run.errors and "SALESFORCE_CLIENT_SECRET" in run.errors
    assert len(fake_salesforce.requests) == 1


def test_an_unknown_field_name_fails_with_salesforces_own_message(org, fake_salesforce, settings):
    settings.SALESFORCE_ACCOUNT_FIELDS = "code=Client_Code__c"

    run = _sync()

    assert run.status == RunStatus.FAILED and "INVALID_FIELD" in run.errors
    assert "No such column 'Client_Code__c' on entity 'Account'" in run.errors


def test_object_and_field_names_follow_the_settings(db, fake_salesforce, settings):
    fake_salesforce.add_field("Account", "Client_Code__c")
    settings.SALESFORCE_ACCOUNT_FIELDS = "code=Client_Code__c,currency="
    settings.SALESFORCE_RATE_OBJECT = ""
    settings.SALESFORCE_ACCOUNT_FILTER = "Type = 'Customer'"
    fake_salesforce.add_account("Initech", Client_Code__c="INI-7", AccountNumber="IGNORED", Type="Customer")
    fake_salesforce.add_account("Prospect Co", Type="Prospect")

    run = _sync()

    assert run.status == RunStatus.SUCCEEDED, run.errors
    client = Client.objects.get()
    assert (client.code, client.name, client.currency) == ("ini-7", "Initech", "USD")
    [accounts, contracts] = _queries(fake_salesforce)
    assert "Client_Code__c" in accounts and "CurrencyIsoCode" not in accounts
    assert accounts.endswith("WHERE (Type = 'Customer') ORDER BY SystemModstamp, Id")
    assert "Rate_Card" not in contracts


def test_malformed_and_unmappable_records_are_quarantined_while_the_rest_lands(org, fake_salesforce,
                                                                               settings):
    settings.SALESFORCE_ACCOUNT_FILTER = "Type = 'Customer'"
    fake_salesforce.corrupt(org.globex_contract, StartDate="someday")
    stranger = fake_salesforce.add_account("Filtered Out", Type="Prospect")
    orphan = fake_salesforce.add_contract(stranger, start=JAN)
    odd_card, _ = fake_salesforce.add_rate_card(org.acme_contract, effective_from=dt.date(2027, 1, 1), lines=[
        {"Role__c": "Wizard", "Hourly_Rate__c": 300},
        {"Member_Email__c": "nobody@firm.test", "Hourly_Rate__c": -5}])

    run = _sync()

    assert run.status == RunStatus.PARTIAL and run.quarantined == 3, run.errors
    reasons = _quarantined()
    assert "StartDate 'someday' is not a date" in reasons[org.globex_contract]
    assert f"Its account {stranger} is not synced as a client" in reasons[orphan]
    assert "role 'Wizard' matches no role by code or name" in reasons[odd_card]
    assert "Hourly_Rate__c -5 must be a number of zero or more" in reasons[odd_card]
    # The rest landed: Acme, its contract and its first card.
    assert Rate.objects.filter(contract=_contract(fake_salesforce, org.acme_contract)).count() == 3
    # The raw record is kept whole, lines included.
    card = InboundRecord.objects.get(external_id=odd_card)
    assert card.kind == "rate_card" and card.payload["Rate_Card_Lines__r"]["totalSize"] == 2


def test_a_currency_we_do_not_bill_in_is_quarantined(db, fake_salesforce):
    account = fake_salesforce.add_account("Yen Corp", CurrencyIsoCode="JPY")

    run = _sync()

    assert run.quarantined == 1 and not Client.objects.exists()
    assert "CurrencyIsoCode 'JPY' is not one of our currencies" in _quarantined()[account]


def test_a_waiting_contract_lands_once_its_account_is_synced(org, fake_salesforce, settings):
    settings.SALESFORCE_ACCOUNT_FILTER = "Type = 'Customer'"
    prospect = fake_salesforce.add_account("Soon Customer", Type="Prospect")
    waiting = fake_salesforce.add_contract(prospect, start=JAN)
    assert _sync().quarantined == 1

    fake_salesforce.update("Account", prospect, Type="Customer")
    run = _sync()

    assert (run.created, run.quarantined) == (2, 0)
    record = InboundRecord.objects.get(external_id=waiting)
    assert record.status == RecordStatus.PROCESSED and record.attempts == 1
    assert _contract(fake_salesforce, waiting).client.name == "Soon Customer"


def test_an_overlapping_rate_card_is_refused_whole(org, fake_salesforce):
    _sync()
    clash, _ = fake_salesforce.add_rate_card(org.acme_contract, effective_from=dt.date(2026, 6, 1), lines=[
        {"Hourly_Rate__c": 99}, {"Role__c": "senior", "Hourly_Rate__c": 200}])

    run = _sync()

    assert run.quarantined == 1
    assert "overlaps the rate €120.50 from 2026-01-01 for the same contract default" in _quarantined()[clash]
    assert Rate.objects.filter(contract=_contract(fake_salesforce, org.acme_contract)).count() == 3


def test_a_contract_number_we_have_is_linked_not_duplicated(org, fake_salesforce):
    client = ClientFactory(code="acme", name="Acme Ltd", currency="EUR")
    number = fake_salesforce.get("Contract", org.acme_contract)["ContractNumber"]
    ours = Contract.objects.create(client=client, number=number, start_date=JAN, currency="EUR")

    _sync()

    assert Contract.objects.filter(number=number).count() == 1
    assert ExternalRef.objects.get(kind="contract", external_id=org.acme_contract).local_id == ours.id


def test_with_a_third_of_the_calls_failing_a_run_to_completion_lands_every_record_once(db, fake_salesforce,
                                                                                       settings):
    # Three tries a call: some runs stop half-way and the next carries on from their cursor.
    settings.INTEGRATIONS_MAX_ATTEMPTS = 3
    RoleFactory(code="senior", name="Senior Consultant")
    fake_salesforce.batch_size = 2
    for number in range(12):
        account = fake_salesforce.add_account(f"Client {number}", AccountNumber=f"C-{number}")
        contract = fake_salesforce.add_contract(account, start=JAN)
        fake_salesforce.add_rate_card(contract, effective_from=JAN, lines=[
            {"Role__c": "senior", "Hourly_Rate__c": 100 + number}, {"Hourly_Rate__c": 90}])
    fake_salesforce.fail_randomly(1 / 3, seed=5)

    runs = []
    while not runs or runs[-1].status != RunStatus.SUCCEEDED:
        assert len(runs) < 15, [r.errors for r in runs]
        runs.append(_sync())

    assert Client.objects.count() == 12 and Contract.objects.count() == 12 and Rate.objects.count() == 24
    assert sum(r.created for r in runs) == 36
    assert ExternalRef.objects.filter(provider="salesforce").count() == 48
    assert len(runs) > 1 and sum(r.retries for r in runs) > 5
    assert {r.status for r in fake_salesforce.requests} >= {200, 403, 500}


def test_a_page_costs_the_same_queries_for_3_records_as_for_12(db, fake_salesforce):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    RoleFactory(code="senior", name="Senior Consultant")
    TaskTypeFactory(code="dev", name="Development")

    def queries_to_land(count: int) -> int:
        for number in range(count):
            account = fake_salesforce.add_account(f"Client {count}-{number}", CurrencyIsoCode="USD")
            contract = fake_salesforce.add_contract(account, start=JAN, Billing_Cap__c=1000 + number)
            fake_salesforce.add_rate_card(contract, effective_from=JAN, lines=[
                {"Role__c": "senior", "Hourly_Rate__c": 100}, {"Task_Type__c": "dev", "Hourly_Rate__c": 90}])
        fake_salesforce.advance(hours=1)
        with CaptureQueriesContext(connection) as captured:
            run = _sync()
        assert run.status == RunStatus.SUCCEEDED and run.created == 3 * count, run.errors
        return len(captured)

    queries_to_land(1)  # the first run reads everything; the next ones only their new records
    assert queries_to_land(3) == queries_to_land(12)
