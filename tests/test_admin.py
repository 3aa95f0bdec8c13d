"""The Django admin: every page renders with a bounded number of queries, and it is no back door."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from djmoney.money import Money

from approvals.models import ApprovalEvent, ApprovalPolicy, ApprovalRequest
from billing.models import (
    Allocation,
    BillingRun,
    ClientMessage,
    ContractCharge,
    Invoice,
    InvoiceEvent,
    InvoiceLine,
    InvoiceSequence,
    LineDispute,
    Rate,
)
from clients.models import BillingType, Contract, FeeMilestone
from projects.models import BudgetAlert, EntryStatus, Project, ProjectBudget, TaskType, TimeEntry
from tests.factories import (
    ClientFactory,
    ContactFactory,
    ContractFactory,
    ProjectFactory,
    RateFactory,
    RoleFactory,
    TaskTypeFactory,
    TeamMemberFactory,
    TimeEntryFactory,
    UserFactory,
    approval_policy,
)

pytestmark = pytest.mark.django_db

OUR_APPS = {"clients", "projects", "approvals", "billing"}
# Rows the pipeline computes or decides: the admin shows them and never adds them.
# Billing runs are "added" by running billing (a form of its own, not a model form).
READ_ONLY_MODELS = {TimeEntry, ApprovalRequest, ApprovalEvent, ProjectBudget, BudgetAlert, Invoice,
                    InvoiceLine, Allocation, ContractCharge, InvoiceSequence, LineDispute, ClientMessage,
                    InvoiceEvent}


def _admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _populate(rows: int) -> None:
    """`rows` more of every model, each hanging off different parents, so an N+1 shows as more queries."""
    now = timezone.now()
    for n in range(rows):
        entry = TimeEntryFactory(project__manager=TeamMemberFactory(), billable=n % 2 == 0)
        contract = entry.project.contract
        ContactFactory(client=contract.client, receives_invoices=True)
        FeeMilestone.objects.create(contract=contract, name=f"Milestone {n}", amount=Money("500.00", "USD"),
                                    due_date=dt.date(2026, 4, 1))
        RateFactory(contract=contract, role=entry.member.role)
        RateFactory(contract=contract, member=entry.member, project=entry.project, task_type=entry.task_type)
        approval = ApprovalRequest.objects.create(time_entry=entry, requested_at=now, reasons=["amount_over_limit"],
                                                  decided_by=UserFactory(), policy=approval_policy())
        ApprovalEvent.objects.create(request=approval, actor=approval.decided_by, action="approved",
                                     status_before="pending")
        ApprovalPolicy.objects.create(name=f"Retired {n}", is_active=False)
        ProjectBudget.objects.create(project=entry.project, currency="USD", minutes_used=60, refreshed_at=now)
        BudgetAlert.objects.create(project=entry.project, kind="threshold", threshold=50, message="Half used")
        run = BillingRun.objects.create(period_start=dt.date(2026, 3, 1), period_end=dt.date(2026, 3, 31),
                                        client=contract.client, started_by=UserFactory())
        invoice = Invoice.objects.create(client=contract.client, contract=contract, currency="USD", billing_run=run,
                                         period_start=run.period_start, period_end=run.period_end)
        line = InvoiceLine.objects.create(invoice=invoice, position=1, kind="time", description="Time",
                                          quantity=Decimal("1.00"), unit_rate=Decimal("150.00"),
                                          amount=Decimal("150.00"), project=entry.project, contract=contract)
        fee = InvoiceLine.objects.create(invoice=invoice, position=2, kind="milestone", description="Fee",
                                         quantity=Decimal("1.00"), unit_rate=Decimal("500.00"),
                                         amount=Decimal("500.00"))
        Allocation.objects.create(time_entry=entry, line=line, minutes=60, amount=Decimal("150.00"))
        ContractCharge.objects.create(contract=contract, kind="milestone", period_start=run.period_start,
                                      milestone=contract.milestones.first(), line=fee)
        InvoiceSequence.objects.create(prefix=f"INV-{entry.pk}-", year=2026, last_number=n)
        LineDispute.objects.create(line=line, comment="Too many hours")
        ClientMessage.objects.create(kind="invoice_preview", client=contract.client, invoice=invoice,
                                     to=["ap@client.test"], subject="Preview")
        InvoiceEvent.objects.create(invoice=invoice, actor=run.started_by, action="created", status_after="draft")


def _our_model_admins():
    return [model for model in admin.site._registry if model._meta.app_label in OUR_APPS]


def _queries(client, url: str) -> int:
    # The content-type cache lives for the whole process: start each page from the same state.
    ContentType.objects.clear_cache()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(queries)


def test_every_model_of_ours_is_registered():
    from django.apps import apps

    ours = {model for app in OUR_APPS for model in apps.get_app_config(app).get_models()}
    assert ours <= set(admin.site._registry)


@pytest.mark.parametrize("model", list(admin.site._registry), ids=lambda model: model._meta.label)
def test_every_changelist_renders_for_a_superuser(admin_client, model):
    _populate(2)
    response = admin_client.get(_admin_url(model, "changelist"))
    assert response.status_code == 200


@pytest.mark.parametrize("model", list(admin.site._registry), ids=lambda model: model._meta.label)
def test_every_add_page_renders_unless_the_rows_are_computed(admin_client, admin_user, rf, model):
    if model._meta.app_label in OUR_APPS:
        addable = model not in READ_ONLY_MODELS
    else:
        request = rf.get("/")
        request.user = admin_user
        addable = admin.site._registry[model].has_add_permission(request)
    response = admin_client.get(_admin_url(model, "add"))
    assert response.status_code == (200 if addable else 403)


def test_changelists_and_add_pages_cost_the_same_queries_however_many_rows(admin_client):
    _populate(1)
    urls = [_admin_url(model, "changelist") for model in _our_model_admins()]
    urls += [_admin_url(model, "add") for model in _our_model_admins() if model not in READ_ONLY_MODELS]
    few = {url: _queries(admin_client, url) for url in urls}
    _populate(4)
    many = {url: _queries(admin_client, url) for url in urls}
    assert many == few
    # Session, user, counts, the page's rows, one per related-field filter and date hierarchy.
    assert max(few.values()) <= 20


def test_the_contract_page_loads_its_rate_card_in_the_same_queries_however_long_it_is(admin_client):
    contract = ContractFactory()
    for n in range(2):
        RateFactory(contract=contract, role=RoleFactory(), effective_from=dt.date(2026, 1, 1 + n))
    url = _admin_url(Contract, "change", contract.pk)
    few = _queries(admin_client, url)
    for n in range(6):
        RateFactory(contract=contract, member=TeamMemberFactory(), task_type=TaskTypeFactory(),
                    effective_from=dt.date(2026, 2, 1 + n))
    assert _queries(admin_client, url) == few


def test_an_invoice_shows_its_lines_in_the_same_queries_however_many_and_cannot_be_edited(admin_client):
    contract = ContractFactory()
    invoice = Invoice.objects.create(client=contract.client, currency="USD", period_start=dt.date(2026, 3, 1),
                                     period_end=dt.date(2026, 3, 31))

    def add_lines(first: int, count: int) -> None:
        for position in range(first, first + count):
            InvoiceLine.objects.create(invoice=invoice, position=position, kind="time", description=f"Line {position}",
                                       quantity=Decimal("1.00"), unit_rate=Decimal("100.00"),
                                       amount=Decimal("100.00"), project=ProjectFactory(contract=contract))

    add_lines(1, 2)
    url = _admin_url(Invoice, "change", invoice.pk)
    few = _queries(admin_client, url)
    add_lines(3, 8)
    assert _queries(admin_client, url) == few
    assert admin_client.post(url, {"status": "paid"}).status_code == 403
    invoice.refresh_from_db()
    assert invoice.status == "draft"


# --- Who sees what ----------------------------------------------------------------------------

def test_a_project_manager_sees_only_their_projects_entries_and_their_own(client, project_manager,
                                                                         staff_member):
    managed = ProjectFactory(manager=project_manager)
    elsewhere = ProjectFactory()
    on_my_project = TimeEntryFactory(member=staff_member, project=managed)
    my_own = TimeEntryFactory(member=project_manager, project=elsewhere)
    not_mine = TimeEntryFactory(member=staff_member, project=elsewhere)
    ApprovalRequest.objects.create(time_entry=on_my_project, requested_at=timezone.now())
    ApprovalRequest.objects.create(time_entry=not_mine, requested_at=timezone.now())
    client.force_login(project_manager.user)

    response = client.get(_admin_url(TimeEntry, "changelist"))
    assert response.status_code == 200
    assert set(response.context["cl"].result_list) == {on_my_project, my_own}
    assert client.get(_admin_url(TimeEntry, "change", not_mine.pk)).status_code == 302  # "does not exist"

    approvals = client.get(_admin_url(ApprovalRequest, "changelist"))
    assert [a.time_entry for a in approvals.context["cl"].result_list] == [on_my_project]


def test_finance_sees_every_entry(client, finance):
    entries = TimeEntryFactory.create_batch(3)
    client.force_login(finance.user)
    response = client.get(_admin_url(TimeEntry, "changelist"))
    assert set(response.context["cl"].result_list) == set(entries)


def test_staff_only_users_cannot_reach_the_admin(client, staff_member):
    client.force_login(staff_member.user)
    for url in (reverse("admin:index"), _admin_url(TimeEntry, "changelist"), _admin_url(Project, "changelist")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


def test_approvers_work_in_the_admin_but_without_budgets(client, approver):
    ProjectFactory(budget_hours=Decimal("100.00"))
    client.force_login(approver.user)
    assert client.get(reverse("admin:index")).status_code == 200
    response = client.get(_admin_url(Project, "changelist"))
    assert response.status_code == 200
    assert "budget_hours" not in response.context["cl"].list_display


def test_a_manager_sees_the_budget_of_their_own_project_only(client, project_manager):
    mine = ProjectFactory(manager=project_manager, budget_hours=Decimal("120.00"))
    theirs = ProjectFactory(budget_hours=Decimal("80.00"))
    client.force_login(project_manager.user)

    def shown_fields(project):
        adminform = client.get(_admin_url(Project, "change", project.pk)).context["adminform"]
        return {name for _, options in adminform.fieldsets for name in options["fields"]}

    assert "budget_hours" in shown_fields(mine)
    assert "budget_hours" not in shown_fields(theirs)


# --- Time entries are read-only ------------------------------------------------------------

def test_time_entries_cannot_be_added_or_changed_in_the_admin(client, finance):
    entry = TimeEntryFactory(minutes=60, description="As logged")
    client.force_login(finance.user)
    assert client.get(_admin_url(TimeEntry, "add")).status_code == 403
    response = client.post(_admin_url(TimeEntry, "change", entry.pk), {"minutes": 600, "description": "Edited"})
    assert response.status_code == 403
    entry.refresh_from_db()
    assert (entry.minutes, entry.description) == (60, "As logged")
    page = client.get(_admin_url(TimeEntry, "changelist"))
    assert "delete_selected" not in page.context["cl"].model_admin.get_actions(page.wsgi_request)


def test_an_editable_entry_is_deleted_through_the_service(client, finance):
    entry = TimeEntryFactory(status=EntryStatus.PENDING)
    client.force_login(finance.user)
    response = client.post(_admin_url(TimeEntry, "delete", entry.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not TimeEntry.objects.filter(pk=entry.pk).exists()


def test_an_invoiced_entry_cannot_be_deleted(client, finance):
    entry = TimeEntryFactory(status=EntryStatus.INVOICED)
    client.force_login(finance.user)
    assert client.post(_admin_url(TimeEntry, "delete", entry.pk), {"post": "yes"}).status_code == 403
    assert TimeEntry.objects.filter(pk=entry.pk).exists()


def test_a_race_to_delete_an_entry_that_just_got_invoiced_is_refused(rf, finance):
    entry = TimeEntryFactory(status=EntryStatus.PENDING)
    TimeEntry.objects.filter(pk=entry.pk).update(status=EntryStatus.INVOICED)
    request = rf.post("/")
    request.user = finance.user
    request._messages = type("Messages", (), {"add": lambda *args, **kwargs: None})()
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied, match="invoiced"):
        admin.site._registry[TimeEntry].delete_model(request, entry)
    assert TimeEntry.objects.filter(pk=entry.pk).exists()


def test_approval_request_fields_cannot_be_edited_decisions_go_through_the_queue(client, approver):
    # Deciding is tested in test_approval_queue.py; here, the change form itself refuses a post.
    request_ = ApprovalRequest.objects.create(time_entry=TimeEntryFactory(), requested_at=timezone.now())
    client.force_login(approver.user)
    response = client.post(_admin_url(ApprovalRequest, "change", request_.pk), {"status": "approved"})
    assert response.status_code == 403
    request_.refresh_from_db()
    assert request_.status == "pending"


# --- Forms refuse bad terms with field errors -------------------------------------------------

def _management(prefix: str, total: int, initial: int = 0) -> dict:
    return {f"{prefix}-TOTAL_FORMS": str(total), f"{prefix}-INITIAL_FORMS": str(initial),
            f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"}


def _contract_post(client_pk: int, rates: list[dict] = (), milestones: list[dict] = (), **terms) -> dict:
    data = {
        "number": "C-900", "client": client_pk, "billing_type": BillingType.TIME_AND_MATERIALS,
        "currency": "USD", "status": "active", "start_date": "2026-01-01", "end_date": "",
        "rounding_increment": "0", "rounding_mode": "up", "cap_hours": "", "cap_amount_0": "",
        "cap_amount_1": "USD", "cap_period": "contract", "monthly_spend_limit_0": "",
        "monthly_spend_limit_1": "USD", "auto_approve_max_amount_0": "", "auto_approve_max_amount_1": "USD",
        "auto_approve_max_minutes": "", "budget_review_percent": "", "fixed_fee_amount_0": "",
        "fixed_fee_amount_1": "USD", "fixed_fee_schedule": "installments", "retainer_amount_0": "",
        "retainer_amount_1": "USD", "retainer_hours": "", "review_window_days": "3",
        **_management("milestones", len(milestones)), **_management("rates", len(rates)),
    }
    for n, rate in enumerate(rates):
        values = {"project": "", "member": "", "role": "", "task_type": "", "hourly_rate_0": "150.00",
                  "hourly_rate_1": "USD", "effective_from": "2026-01-01", "effective_to": "", **rate}
        data.update({f"rates-{n}-{name}": value for name, value in values.items()})
    for n, milestone in enumerate(milestones):
        values = {"name": "Kick-off", "amount_0": "1000.00", "amount_1": "USD", "due_date": "", "completed_on": "",
                  **milestone}
        data.update({f"milestones-{n}-{name}": value for name, value in values.items()})
    data.update(terms)
    return data


def test_a_contract_and_its_rate_card_are_saved_together(admin_client):
    customer = ClientFactory()
    role = RoleFactory()
    response = admin_client.post(_admin_url(Contract, "add"), _contract_post(
        customer.pk,
        rates=[{"hourly_rate_0": "150.00"}, {"role": role.pk, "hourly_rate_0": "180.00"}],
        milestones=[{"name": "Discovery", "amount_0": "2500.00"}],
    ))
    assert response.status_code == 302, response.context and response.context["errors"]
    contract = Contract.objects.get(number="C-900")
    assert {(r.role_id, r.hourly_rate) for r in contract.rates.all()} == {
        (None, Money("150.00", "USD")), (role.pk, Money("180.00", "USD"))}
    assert contract.milestones.get().amount == Money("2500.00", "USD")


def test_overlapping_rates_at_the_same_level_are_refused(admin_client):
    customer = ClientFactory()
    response = admin_client.post(_admin_url(Contract, "add"), _contract_post(customer.pk, rates=[
        {"hourly_rate_0": "150.00", "effective_from": "2026-01-01"},
        {"hourly_rate_0": "160.00", "effective_from": "2026-03-01", "effective_to": "2026-06-30"},
    ]))
    assert response.status_code == 200
    errors = " ".join(response.context["inline_admin_formsets"][1].formset.non_form_errors())
    assert "Two rates overlap: contract default" in errors
    assert not Contract.objects.exists() and not Rate.objects.exists()


def test_consecutive_rates_and_rates_at_other_levels_are_fine(admin_client):
    customer = ClientFactory()
    role = RoleFactory()
    response = admin_client.post(_admin_url(Contract, "add"), _contract_post(customer.pk, rates=[
        {"hourly_rate_0": "150.00", "effective_from": "2026-01-01", "effective_to": "2026-02-28"},
        {"hourly_rate_0": "160.00", "effective_from": "2026-03-01"},
        {"role": role.pk, "hourly_rate_0": "170.00", "effective_from": "2026-01-01"},
    ]))
    assert response.status_code == 302
    assert Rate.objects.count() == 3


@pytest.mark.parametrize(("rates", "milestones", "terms", "field", "fragment"), [
    ([{"hourly_rate_1": "EUR"}], [], {}, "hourly_rate", "contract currency USD"),
    ([], [{"amount_1": "GBP"}], {}, "amount", "contract currency USD"),
    ([], [], {"billing_type": BillingType.RETAINER}, "retainer_amount", "monthly fee"),
    ([], [], {"cap_amount_0": "5000", "cap_amount_1": "EUR"}, "cap_amount", "contract currency USD"),
    ([], [], {"end_date": "2025-12-31"}, "end_date", "cannot end before it starts"),
    ([{"project": "other"}], [], {}, "project", "belongs to another contract"),
])
def test_bad_contract_terms_get_field_errors(admin_client, rates, milestones, terms, field, fragment):
    rates = [{**rate, "project": ProjectFactory().pk} if rate.get("project") == "other" else rate for rate in rates]
    response = admin_client.post(_admin_url(Contract, "add"),
                                 _contract_post(ClientFactory().pk, rates=rates, milestones=milestones, **terms))
    assert response.status_code == 200
    forms = [response.context["adminform"].form]
    forms += [form for inline in response.context["inline_admin_formsets"] for form in inline.formset.forms]
    messages = " ".join(" ".join(form.errors.get(field, [])) for form in forms)
    assert fragment in messages
    assert not Contract.objects.filter(number="C-900").exists()


def test_a_rate_added_on_its_own_is_checked_against_the_contracts_other_rates(admin_client):
    contract = ContractFactory()
    RateFactory(contract=contract, effective_from=dt.date(2026, 1, 1))
    data = {"contract": contract.pk, "project": "", "member": "", "role": "", "task_type": "",
            "hourly_rate_0": "190.00", "hourly_rate_1": "USD", "effective_from": "2026-05-01", "effective_to": ""}
    response = admin_client.post(_admin_url(Rate, "add"), data)
    assert response.status_code == 200
    assert "Two rates overlap" in " ".join(response.context["adminform"].form.non_field_errors())
    assert Rate.objects.count() == 1

    other_project = ProjectFactory()
    response = admin_client.post(_admin_url(Rate, "add"), {**data, "project": other_project.pk})
    assert "belongs to another contract" in " ".join(response.context["adminform"].form.errors["project"])

    role = RoleFactory()
    assert admin_client.post(_admin_url(Rate, "add"), {**data, "role": role.pk}).status_code == 302
    assert Rate.objects.filter(role=role, hourly_rate=Money("190.00", "USD")).exists()


def test_a_project_must_use_a_contract_of_its_client(admin_client):
    contract = ContractFactory()
    other_client = ClientFactory()
    response = admin_client.post(_admin_url(Project, "add"), {
        "code": "wrong-client", "name": "Wrong client", "client": other_client.pk, "contract": contract.pk,
        "status": "active", "billable": "on", "start_date": "2026-01-01", "end_date": "", "budget_hours": "",
        "budget_amount_0": "", "budget_amount_1": "USD", "alert_thresholds": "[50, 100]",
    })
    assert response.status_code == 200
    assert "another client" in " ".join(response.context["adminform"].form.errors["contract"])
    assert not Project.objects.exists()


def test_a_second_default_task_type_is_refused(admin_client):
    TaskTypeFactory(code="consulting", name="Consulting", is_default=True)
    response = admin_client.post(_admin_url(TaskType, "add"),
                                 {"name": "Support", "code": "support", "billable": "on", "is_default": "on"})
    assert response.status_code == 200
    assert "Consulting is the default" in " ".join(response.context["adminform"].form.errors["is_default"])


def test_a_second_active_approval_policy_is_refused_and_the_active_one_cannot_be_deleted(admin_client):
    policy = approval_policy()
    response = admin_client.post(_admin_url(ApprovalPolicy, "add"), {
        "name": "Stricter", "is_active": "on", "auto_approve_max_amount": "500.00",
        "auto_approve_max_minutes": "480", "budget_review_percent": "80",
    })
    assert response.status_code == 200
    assert "policy in force" in " ".join(response.context["adminform"].form.errors["is_active"])
    assert admin_client.post(_admin_url(ApprovalPolicy, "delete", policy.pk), {"post": "yes"}).status_code == 403
    assert ApprovalPolicy.objects.filter(pk=policy.pk).exists()


def test_team_members_show_their_access_roles(admin_client, project_manager):
    response = admin_client.get(_admin_url(type(project_manager), "changelist"))
    model_admin = response.context["cl"].model_admin
    row = next(m for m in response.context["cl"].result_list if m.pk == project_manager.pk)
    assert model_admin.access_roles(row) == "project_manager, staff"
    assert Group.objects.filter(name="project_manager").exists()
