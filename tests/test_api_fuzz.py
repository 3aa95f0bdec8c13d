"""API fuzzing: schemathesis drives every operation of /api/schema/ in-process with a finance token.

Each operation gets generated requests in both of schemathesis' modes: positive (valid by the schema)
and negative (violating it: wrong types, missing fields, out-of-range values). Operations on one object
also get requests aimed at a real object of a small seeded firm, so updates, deletes and actions reach the
services instead of stopping at a 404. Two checks apply to every response:
- not_a_server_error: no 5xx, whatever the input;
- response_schema_conformance: a documented response's body matches the schema.

Failures are collected across all operations and reported together, with a reproducible call and the
server's exception for each. A 500 of a bug already recorded below (an xfail test) is counted, not failed,
so the fuzzing keeps guarding everything else until the bug is fixed.
The app runs on the test's own database with transaction=True, so requests commit like in production;
serialized_rollback restores what migrations created (the access groups, the approval policy) before each
test, since the flush after a transactional test removes it.
"""

import datetime as dt
import os
import sys
from collections import Counter
from decimal import Decimal

import pytest
import schemathesis
from django.core.signals import got_request_exception
from django.core.wsgi import get_wsgi_application
from djmoney.money import Money
from hypothesis import HealthCheck, Phase, given, settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance

from billing.invoicing import billing_run_create
from billing.lifecycle import invoice_finalize
from tests.billing_helpers import MARCH, approved_time
from tests.factories import (
    ClientFactory,
    ContactFactory,
    ContractFactory,
    ProjectFactory,
    RateFactory,
    RoleFactory,
    TaskTypeFactory,
)

# Examples per operation and mode; FUZZ_EXAMPLES raises it for a longer local run.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
CHECKS = [not_a_server_error, response_schema_conformance]
MODES = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck))


@pytest.fixture
def seeded_firm(staff_member, finance):
    """A client with a contact, a capped contract, a project, a rate, approved time and two invoices."""
    client = ClientFactory(code="acme", name="Acme", tax_rate=Decimal("10.00"), invoice_emails=["ap@acme.test"])
    ContactFactory(client=client, email="cfo@acme.test", receives_invoices=True)
    contract = ContractFactory(client=client, number="C-1", cap_hours=Decimal("40.00"))
    project = ProjectFactory(contract=contract, code="acme-web", manager=finance)
    role = RoleFactory(code="senior", name="Senior")
    rate = RateFactory(contract=contract, hourly_rate=Money("120.00", "USD"))
    dev = TaskTypeFactory(code="dev", name="Development")
    entries = approved_time(staff_member, project, dev, [(dt.date(2026, 3, d), 60) for d in (2, 3, 4)])
    [issued] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1]).invoices
    invoice_finalize(invoice=issued)
    approved_time(staff_member, project, dev, [(dt.date(2026, 4, 1), 30)], "april")
    [draft] = billing_run_create(period_start=dt.date(2026, 4, 1), period_end=dt.date(2026, 4, 30)).invoices
    # Requests aimed at a real object: the id of one seeded row per resource.
    return {
        "clients": client.id, "contacts": client.contacts.get().id, "contracts": contract.id,
        "projects": project.id, "rates": rate.id, "roles": role.id, "task-types": dev.id,
        "members": staff_member.id, "time-entries": entries[0].id, "invoices": issued.id,
        "billing-runs": issued.billing_run_id, "approvals": None, "draft": draft.id,
    }


def resource_of(path: str) -> str:
    return path.removeprefix("/api/v1/").split("/")[0]


class Fuzzing:
    """The figures of one fuzzing session, and every failure with the operation and mode that found it."""

    def __init__(self):
        self.operations = 0
        self.cases: Counter = Counter()
        self.statuses: Counter = Counter()
        self.failures: dict[str, str] = {}
        # Server errors of a known, recorded bug (see KNOWN_SERVER_ERRORS), by operation.
        self.known: Counter = Counter()

    def summary(self) -> str:
        return (f"{self.operations} operations, {sum(self.cases.values())} cases; responses by class: "
                f"{dict(sorted(self.statuses.items()))}; known bugs hit: {dict(self.known)}; "
                f"{len(self.failures)} failing operation/mode pairs")

    def report(self) -> str:
        return self.summary() + "\n\n" + "\n\n".join(f"{name}:\n{text}" for name, text in self.failures.items())


def known_server_error(error: BaseException | None) -> str | None:
    """The recorded bug a server error comes from, if it is one; none is known now, so every 500 fails."""
    return None


def fuzz(schema, *, token: str, real_ids: dict) -> Fuzzing:
    """Run every operation of `schema` in every mode, and at a real object where there is one."""
    headers = {"Authorization": f"Token {token}"}
    session = Fuzzing()
    server_errors: list[BaseException | None] = []

    def remember(sender, request=None, **kwargs):
        server_errors.append(sys.exc_info()[1])

    got_request_exception.connect(remember, weak=False)
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            session.operations += 1
            strategies = [(mode.value, operation.as_strategy(generation_mode=mode)) for mode in MODES]
            real_id = real_ids.get(resource_of(operation.path))
            if "{id}" in operation.path and real_id is not None:
                strategies.append(("real object", operation.as_strategy(path_parameters={"id": real_id})))
            for label, strategy in strategies:
                try:
                    _fuzz_one(session, operation.label, strategy, headers, server_errors)
                # Schemathesis reports its findings as a FailureGroup (a BaseExceptionGroup); anything else
                # the run raises is a finding too. All are collected and reported together.
                except (Exception, FailureGroup) as failure:  # noqa: BLE001
                    found = describe(failure)
                    if server_errors:
                        found += f"\nServer exception: {type(server_errors[-1]).__name__}: {server_errors[-1]}"
                    session.failures[f"{operation.label} ({label})"] = found
    finally:
        got_request_exception.disconnect(remember)
    return session


def describe(failure: BaseException) -> str:
    """The failure with what schemathesis found in it (its sub-failures and the call that reproduces it)."""
    parts = [str(failure)]
    for inner in getattr(failure, "exceptions", ()):
        parts.append(f"- {type(inner).__name__}: {inner}")
    return "\n".join(parts)[:2000]


def _fuzz_one(session: Fuzzing, label: str, strategy, headers: dict, server_errors: list) -> None:
    @FUZZ
    @given(case=strategy)
    def call(case):
        server_errors.clear()
        response = case.call(headers=headers)
        session.cases[label] += 1
        session.statuses[f"{response.status_code // 100}xx"] += 1
        known = known_server_error(server_errors[-1]) if response.status_code >= 500 and server_errors else None
        if known:
            session.known[f"{label}: {known}"] += 1
            return
        case.validate_response(response, checks=CHECKS, headers=headers)

    call()


@pytest.fixture
def api_schema():
    return schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


@pytest.fixture
def finance_token(finance):
    return Token.objects.create(user=finance.user).key


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_no_operation_answers_a_server_error_or_breaks_its_schema(api_schema, seeded_firm, finance_token):
    session = fuzz(api_schema, token=finance_token, real_ids=seeded_firm)
    print(session.summary())  # noqa: T201 - the figures the reliability note quotes
    # The token works and generated requests reach the services, not only the validators.
    assert session.statuses["2xx"] > 0 and session.operations >= 60
    assert not session.failures, session.report()


# -- The harness itself: it must notice what it guards against ----------------------------------------------

@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_fuzzer_reports_a_server_error(api_schema, finance_token, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("injected")

    monkeypatch.setattr("clients.api.ClientViewSet.list", broken)
    session = fuzz(api_schema.include(path="/api/v1/clients/", method="GET"), token=finance_token, real_ids={})
    assert session.operations == 1
    assert set(session.failures) == {"GET /api/v1/clients/ (positive)", "GET /api/v1/clients/ (negative)"}
    assert "500" in session.failures["GET /api/v1/clients/ (positive)"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_fuzzer_reports_a_response_that_breaks_the_schema(api_schema, finance_token, monkeypatch):
    monkeypatch.setattr("clients.api.ClientSerializer.to_representation", lambda self, client: {"id": "one"})
    client = ClientFactory(code="acme")
    session = fuzz(api_schema.include(path="/api/v1/clients/{id}/", method="GET"), token=finance_token,
                   real_ids={"clients": client.id})
    assert list(session.failures) == ["GET /api/v1/clients/{id}/ (real object)"]
    assert "schema" in session.failures["GET /api/v1/clients/{id}/ (real object)"].lower()


# -- Server errors the fuzzing found, as plain requests -----------------------------------------------------

BEYOND_64_BITS = str(2**64)


@pytest.mark.parametrize(("method", "path", "body"), [
    ("get", f"/api/v1/approvals/?project={BEYOND_64_BITS}", None),
    ("get", f"/api/v1/approvals/?member={BEYOND_64_BITS}", None),
    ("get", f"/api/v1/time-entries/?project={BEYOND_64_BITS}", None),
    ("get", f"/api/v1/invoices/?client={BEYOND_64_BITS}", None),
    ("post", "/api/v1/approvals/approve/", {"ids": [BEYOND_64_BITS]}),
    ("post", "/api/v1/time-entries/", {"project": BEYOND_64_BITS, "task_type": 1, "work_date": "2026-03-02",
                                       "minutes": 60}),
])
@pytest.mark.django_db
def test_an_id_too_large_for_the_database_is_a_client_error_not_a_500(finance_token, method, path, body):
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Token {finance_token}")
    response = client.get(path) if method == "get" else client.post(path, body, format="json")
    assert response.status_code in (200, 400, 404), response.status_code
