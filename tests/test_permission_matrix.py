"""Who may do what, route by route: every API endpoint, portal page and admin page, as every role.

The routes come from the URL resolver itself: a new named route under /api/, the portal, billing,
reports or /admin/ that is neither in the matrix nor exempt (with a reason) fails
`test_every_route_is_in_the_matrix_or_exempt`.

Roles (tests/conftest.py's people, one dataset for the whole module):
- anonymous: nobody signed in. The API answers 401; pages send to the login page (302).
- staff: Sam, who logged the time the routes act on (his entries, his approval request).
- other_staff: Olive, a staff member acting on Sam's things: his entries do not exist for her (404).
- other_pm: Pete, manager of another project than Sam's: Sam's entries and requests do not exist for him.
- approver, finance, management: the access roles of PRODUCT.md.

What each role may do follows API.md and PRODUCT.md ("A team member sees only their own entries; a project
manager sees their projects; finance and management see everything"; only finance changes terms, runs
billing and issues invoices; management reads). Where the documents are silent the matrix states what
the app does now, and the comment at the route says so:
- A refused method is checked for permission first: DRF answers 403 to a role that may not write at all
  and 405 to one that may write but not with that method; the admin answers 403 before it looks the
  object up.
- The portal's own-entry pages are only for the entry's member, finance included (404 for everyone else):
  finance corrects entries through the API or the admin.
- Reading roles, task types, projects and members needs only a sign-in (staff need them to log time); a
  member who may not see the firm's people sees only themselves in members/.

Each refused write (401/403/404/405/400, or a redirect to the login page) is also checked to have
changed nothing: every row of the firm's tables is the same as before the request.
"""

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import connection, transaction
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ, Schedule, Task
from djmoney.money import Money
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from approvals.models import ApprovalEvent, ApprovalRequest, ApprovalStatus
from billing.invoicing import billing_run_create
from billing.lifecycle import invoice_finalize
from billing.models import (
    Allocation,
    BillingRun,
    ClientMessage,
    ContractCharge,
    InvoiceEvent,
    InvoiceSequence,
    LineDispute,
)
from clients.models import FeeMilestone
from integrations.models import ExternalRef, InboundRecord, SyncCursor, SyncRun, WebhookEvent
from projects.models import BudgetAlert, EntryStatus, ProjectBudget
from tests.billing_helpers import MARCH, approved_time
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
from tests.routes import named_routes

ROLES = ("anonymous", "staff", "other_staff", "other_pm", "approver", "finance", "management")
SIGNED_IN = ROLES[1:]
WRITES = ("POST", "PUT", "PATCH", "DELETE")
LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"

# The apps whose data a refused write must leave alone (plus the users and their tokens).
WATCHED_APPS = ("clients", "projects", "approvals", "billing", "integrations", "authtoken", "django_q")


# --- The dataset -------------------------------------------------------------------------------------------


@dataclass
class Firm:
    users: dict = field(default_factory=dict)
    tokens: dict = field(default_factory=dict)
    sessions: dict = field(default_factory=dict)
    ids: dict = field(default_factory=dict)
    before: str = ""


def _person(name: str, roles: list[str], **kwargs):
    user = UserFactory(username=f"{name}@firm.test", roles=roles)
    return TeamMemberFactory(user=user, email=user.email, name=name.title(), **kwargs)


def _build() -> Firm:
    firm = Firm()
    consultant = RoleFactory(code="consultant")
    people = {
        "staff": _person("sam", ["staff"], role=consultant),
        "other_staff": _person("olive", ["staff"], role=consultant),
        "other_pm": _person("pete", ["staff", "project_manager"], role=consultant),
        "approver": _person("avery", ["staff", "approver"], role=consultant),
        "finance": _person("fran", ["staff", "finance"], role=consultant),
        "management": _person("morgan", ["staff", "management"], role=consultant),
    }
    sams_manager = _person("mia", ["staff", "project_manager"], role=consultant)
    sam = people["staff"]
    for role, member in people.items():
        firm.users[role] = member.user
        firm.tokens[role] = Token.objects.create(user=member.user).key
        browser = Client()
        browser.force_login(member.user)  # once: each test reuses the session
        firm.sessions[role] = browser.cookies[settings.SESSION_COOKIE_NAME].value

    dev = TaskTypeFactory(code="dev", name="Development")
    acme = ClientFactory(code="acme", name="Acme", invoice_emails=["ap@acme.test"])
    contact = ContactFactory(client=acme, receives_invoices=True)
    contract = ContractFactory(client=acme, number="C-1")
    rate = RateFactory(contract=contract, hourly_rate=Money("120.00", "USD"))
    milestone = FeeMilestone.objects.create(contract=contract, name="Kick-off", amount=Money("500.00", "USD"),
                                            due_date=dt.date(2026, 6, 1))
    sams_project = ProjectFactory(contract=contract, code="acme-web", manager=sams_manager,
                                  budget_hours=Decimal("100"))
    ProjectFactory(contract=contract, code="acme-app", manager=people["other_pm"])

    # Sam's time: billed in March on Acme's draft, one April entry still editable, one held for approval.
    approved_time(sam, sams_project, dev, [(dt.date(2026, 3, 2), 60), (dt.date(2026, 3, 3), 90)], "billed")
    run = billing_run_create(period_start=MARCH[0], period_end=MARCH[1], client=acme)
    [draft] = run.invoices
    [editable] = approved_time(sam, sams_project, dev, [(dt.date(2026, 4, 1), 30)], "open")
    held_entry = TimeEntryFactory(member=sam, project=sams_project, task_type=dev, work_date=dt.date(2026, 4, 2),
                                  minutes=600, status=EntryStatus.PENDING, billable_minutes=600,
                                  amount=Money("1200.00", "USD"))
    held = ApprovalRequest.objects.create(time_entry=held_entry, status=ApprovalStatus.PENDING,
                                          reasons=["amount_over_limit"], reason_messages=["Over the limit."],
                                          requested_at=timezone.now(), policy=approval_policy())
    event = ApprovalEvent.objects.create(request=held, actor=sams_manager.user, action="commented",
                                         status_before="pending")

    # Globex: an issued invoice of Sam's time, for the actions that need one.
    globex = ClientFactory(code="globex", name="Globex", invoice_emails=["ap@globex.test"])
    globex_project = ProjectFactory(contract=ContractFactory(client=globex, number="C-2"), code="globex-app",
                                    manager=sams_manager)
    RateFactory(contract=globex_project.contract, hourly_rate=Money("100.00", "USD"))
    [issued_entry] = approved_time(sam, globex_project, dev, [(dt.date(2026, 3, 4), 60)], "issued")
    [issued] = billing_run_create(period_start=MARCH[0], period_end=MARCH[1], client=globex).invoices
    issued = invoice_finalize(invoice=issued, issue_date=dt.date(2026, 4, 1))

    line = draft.lines.order_by("position").first()
    dispute = LineDispute.objects.create(line=issued.lines.first(), comment="Too long")
    charge = ContractCharge.objects.create(contract=contract, kind="milestone", period_start=MARCH[0],
                                           milestone=milestone, line=line)
    message = ClientMessage.objects.create(kind="invoice_preview", client=acme, invoice=draft, to=["ap@acme.test"],
                                           subject="Preview")
    budget = ProjectBudget.objects.get_or_create(project=sams_project, defaults={"currency": "USD"})[0]
    alert = BudgetAlert.objects.create(project=sams_project, kind="threshold", threshold=50, message="Half used")

    now = timezone.now()
    cursor = SyncCursor.objects.create(provider="toggl", stream="time_entries")
    sync_run = SyncRun.objects.create(provider="toggl", stream="time_entries", started_at=now)
    ref = ExternalRef.objects.create(provider="toggl", kind="member", external_id="42", local_id=sam.pk)
    inbound = InboundRecord.objects.create(provider="toggl", external_id="7", payload={}, last_attempt_at=now)
    webhook = WebhookEvent.objects.create(provider="toggl", event_id="e-1", payload={})
    schedule = Schedule.objects.create(func="billing.tasks.sweep", name="sweep")
    success = Task.objects.create(id="s1", name="done", func="math.floor", started=now, stopped=now, success=True)
    failure = Task.objects.create(id="f1", name="failed", func="math.floor", started=now, stopped=now,
                                  success=False)
    queued = OrmQ.objects.create(key="billable", payload="x", lock=now)

    firm.ids = {
        "role": consultant.pk, "member": sam.pk, "task_type": dev.pk, "client": acme.pk, "contact": contact.pk,
        "contract": contract.pk, "rate": rate.pk, "project": sams_project.pk, "entry": editable.pk,
        "approval": held.pk, "draft": draft.pk, "issued": issued.pk, "run": run.run.pk, "issued_entry": issued_entry.pk, "dispute": dispute.pk,
        # One row of every model the admin shows, keyed by "app.model".
        "clients.client": acme.pk, "clients.contact": contact.pk, "clients.contract": contract.pk,
        "clients.feemilestone": milestone.pk, "projects.role": consultant.pk, "projects.teammember": sam.pk,
        "projects.tasktype": dev.pk, "projects.project": sams_project.pk, "projects.timeentry": editable.pk,
        "projects.projectbudget": budget.pk, "projects.budgetalert": alert.pk,
        "approvals.approvalpolicy": approval_policy().pk, "approvals.approvalrequest": held.pk,
        "approvals.approvalevent": event.pk, "billing.rate": rate.pk,
        "billing.billingrun": BillingRun.objects.earliest("pk").pk, "billing.invoice": draft.pk,
        "billing.invoiceline": line.pk, "billing.allocation": Allocation.objects.filter(line=line).first().pk,
        "billing.contractcharge": charge.pk, "billing.invoicesequence": InvoiceSequence.objects.first().pk,
        "billing.linedispute": dispute.pk, "billing.clientmessage": message.pk,
        "billing.invoiceevent": InvoiceEvent.objects.filter(invoice=draft).first().pk,
        "integrations.syncrun": sync_run.pk, "integrations.synccursor": cursor.pk,
        "integrations.externalref": ref.pk, "integrations.inboundrecord": inbound.pk,
        "integrations.webhookevent": webhook.pk, "auth.group": Group.objects.get(name="staff").pk,
        "auth.user": sam.user.pk, "authtoken.tokenproxy": sam.user.pk, "django_q.schedule": schedule.pk,
        "django_q.success": success.pk, "django_q.failure": failure.pk, "django_q.ormq": queued.pk,
    }
    return firm


def _watched_tables() -> list[str]:
    models = [model for model in apps.get_models(include_auto_created=True)
              if model._meta.app_label in WATCHED_APPS and not model._meta.proxy]
    return sorted({model._meta.db_table for model in models})


def snapshot() -> str:
    """A checksum of every row of the watched tables, and of the users (their last login aside).

    Raw SQL: it runs after every refused write, some 1,500 times.
    """
    digest = hashlib.sha256()
    quote = connection.ops.quote_name
    user_table = get_user_model()._meta.db_table
    queries = [f"SELECT * FROM {quote(table)} ORDER BY 1" for table in _watched_tables()]
    queries += [f"SELECT id, username, password, is_staff, is_superuser, is_active FROM {quote(user_table)} "
                "ORDER BY 1",
                f"SELECT * FROM {quote(get_user_model().groups.through._meta.db_table)} ORDER BY 1"]
    with connection.cursor() as cursor:
        for query in queries:
            cursor.execute(query)
            digest.update(repr(cursor.fetchall()).encode())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def firm(django_db_setup, django_db_blocker, tmp_path_factory):
    """Built once, inside a transaction rolled back at the end; each test runs in a savepoint inside it."""
    quiet = override_settings(MEDIA_ROOT=tmp_path_factory.mktemp("media"),
                              EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
    with quiet, django_db_blocker.unblock(), transaction.atomic():
        built = _build()
        built.before = snapshot()
        yield built
        transaction.set_rollback(True)


@pytest.fixture(autouse=True)
def _isolated():
    """In place of the repository's per-test settings (made once for the module, in `firm`): 3,000 cases."""
    cache.clear()


# --- The matrix --------------------------------------------------------------------------------------------


def roles(default: int, **overrides: int) -> dict[str, int]:
    """The answer of each signed-in role: `default`, except where named."""
    unknown = set(overrides) - set(SIGNED_IN)
    assert not unknown, unknown
    return {role: overrides.get(role, default) for role in SIGNED_IN}


@dataclass
class Route:
    name: str  # the resolver's name, with its namespace
    target: str | None = None  # key in Firm.ids of the object in the URL
    methods: dict = field(default_factory=dict)  # method -> {role: status}
    bodies: dict = field(default_factory=dict)  # method -> body
    extra: str = ""  # a query string


FINANCE_ONLY = roles(403, finance=200)
READERS = roles(403, finance=200, management=200)
EVERYONE = roles(200)

# Writes of a resource only finance may change (API): finance gets `ok`, everyone else 403.
def finance_writes(post=201, put=200, patch=200, delete=204) -> dict:
    return {"POST": roles(403, finance=post), "PUT": roles(403, finance=put), "PATCH": roles(403, finance=patch),
            "DELETE": roles(403, finance=delete)}


def list_and_detail(resource: str, target: str, read_list: dict, read_detail: dict, create: dict,
                    write_detail: dict, bodies: dict) -> list[Route]:
    """A router resource: GET and POST on the list, GET/PUT/PATCH/DELETE on the detail."""
    return [
        Route(f"{resource}-list", None, {"GET": read_list, "POST": create["POST"],
                                         **{m: create[m] for m in ("PUT", "PATCH", "DELETE") if m in create}},
              bodies),
        Route(f"{resource}-detail", target, {"GET": read_detail, **write_detail}, bodies),
    ]


def _api_routes() -> list[Route]:
    routes = [Route("api-root", None, {"GET": EVERYONE})]

    # Roles, task types, projects: every signed-in user reads (staff log time against them); finance writes.
    # A write to the list other than POST, by finance, is a 405 (it passes the permission check first).
    list_405 = {m: roles(403, finance=405) for m in ("PUT", "PATCH", "DELETE")}
    detail_post_405 = {"POST": roles(403, finance=405)}
    role_body = {"POST": {"code": "partner", "name": "Partner", "default_cost_rate": "90.00"},
                 "PUT": {"code": "consultant", "name": "Senior consultant", "default_cost_rate": "70.00"},
                 "PATCH": {"name": "Senior consultant"}}
    writes = finance_writes(delete=400)  # the role still has members: refused, nothing deleted
    routes += list_and_detail("role", "role", EVERYONE, EVERYONE, {"POST": writes["POST"], **list_405},
                              {**detail_post_405, **{m: writes[m] for m in ("PUT", "PATCH", "DELETE")}}, role_body)

    task_body = {"POST": {"code": "review", "name": "Review", "billable": True},
                 "PUT": {"code": "dev", "name": "Development work", "billable": True},
                 "PATCH": {"name": "Development work"}}
    writes = finance_writes(delete=400)  # entries use it
    routes += list_and_detail("tasktype", "task_type", EVERYONE, EVERYONE, {"POST": writes["POST"], **list_405},
                              {**detail_post_405, **{m: writes[m] for m in ("PUT", "PATCH", "DELETE")}}, task_body)

    # Members: the list is everyone's (others see only themselves); Sam's row exists for those who see the
    # firm's people (approver, finance, management) and for Sam himself.
    member_body = {"POST": {"email": "nina@firm.test", "name": "Nina New", "role": "{role}"},
                   "PUT": {"email": "sam@firm.test", "name": "Sam Staff", "role": "{role}"},
                   "PATCH": {"name": "Samuel"}}
    writes = finance_writes(delete=400)  # Sam has time: refused
    routes += list_and_detail("teammember", "member", EVERYONE, roles(200, other_staff=404, other_pm=404),
                              {"POST": writes["POST"], **list_405},
                              {**detail_post_405, **{m: writes[m] for m in ("PUT", "PATCH", "DELETE")}},
                              member_body)

    # Clients, contacts, contracts, rates: reading needs the model's view permission.
    client_body = {"POST": {"code": "initech", "name": "Initech", "currency": "USD"},
                   "PUT": {"code": "acme", "name": "Acme Corp", "currency": "USD"}, "PATCH": {"name": "Acme Corp"}}
    writes = finance_writes(delete=400)  # contracts refer to it
    # Management may read but not write: 403 on every write.
    readers_with_approver = roles(403, approver=200, finance=200, management=200)
    routes += list_and_detail("client", "client", readers_with_approver, readers_with_approver,
                              {"POST": writes["POST"], **list_405},
                              {**detail_post_405, **{m: writes[m] for m in ("PUT", "PATCH", "DELETE")}}, client_body)

    contact_body = {"POST": {"client": "{client}", "name": "Ann", "email": "ann@acme.test"},
                    "PUT": {"client": "{client}", "name": "Ann", "email": "ann@acme.test"}, "PATCH": {"name": "Ann"}}
    writes = finance_writes()
    routes += list_and_detail("contact", "contact", READERS, READERS, {"POST": writes["POST"], **list_405},
                              {**detail_post_405, **{m: writes[m] for m in ("PUT", "PATCH", "DELETE")}}, contact_body)

    contract_body = {"POST": {"client": "{client}", "number": "C-9", "billing_type": "time_and_materials",
                              "currency": "USD", "start_date": "2026-01-01"},
                     "PUT": {"client": "{client}", "number": "C-1", "billing_type": "time_and_materials",
                             "currency": "USD", "start_date": "2026-01-01"},
                     "PATCH": {"auto_approve_max_minutes": 480}}
    writes = finance_writes(delete=400)  # projects and invoices use it
    routes += list_and_detail("contract", "contract", READERS, READERS, {"POST": writes["POST"], **list_405},
                              {**detail_post_405, **{m: writes[m] for m in ("PUT", "PATCH", "DELETE")}},
                              contract_body)

    rate_body = {"POST": {"contract": "{contract}", "role": "{role}", "hourly_rate": "150.00",
                          "effective_from": "2026-01-01"},
                 "PUT": {"contract": "{contract}", "hourly_rate": "125.00", "effective_from": "2026-01-01"},
                 "PATCH": {"hourly_rate": "125.00"}}
    writes = finance_writes()
    routes += list_and_detail("rate", "rate", READERS, READERS, {"POST": writes["POST"], **list_405},
                              {**detail_post_405, **{m: writes[m] for m in ("PUT", "PATCH", "DELETE")}}, rate_body)

    project_body = {"POST": {"contract": "{contract}", "code": "acme-ops", "name": "Acme ops",
                             "start_date": "2026-01-01"},
                    "PUT": {"contract": "{contract}", "code": "acme-web", "name": "Acme web",
                            "start_date": "2026-01-01"},
                    "PATCH": {"name": "Acme web"}}
    writes = finance_writes(delete=400)  # it has time
    routes += list_and_detail("project", "project", EVERYONE, EVERYONE, {"POST": writes["POST"], **list_405},
                              {**detail_post_405, **{m: writes[m] for m in ("PUT", "PATCH", "DELETE")}},
                              project_body)
    # The budget: finance, management and the project's own manager (Pete manages another one: 403).
    routes.append(Route("project-budget", "project",
                        {"GET": READERS, **{m: roles(403, finance=405) for m in WRITES}}))

    # Time entries: everyone logs their own; Sam's entry is Sam's, his manager's (not Pete) and the
    # all-seeing roles'; only finance changes someone else's. Posting for Sam is refused (400) but to Sam
    # himself and finance.
    entry_body = {"POST": {"member": "{sam}", "project": "{project}", "task_type": "{task_type}",
                           "work_date": "2026-04-03", "minutes": 45, "external_id": "matrix-1"},
                  "PUT": {"project": "{project}", "task_type": "{task_type}", "work_date": "2026-04-01",
                          "minutes": 40},
                  "PATCH": {"minutes": 40}}
    hidden_from = {"other_staff": 404, "other_pm": 404}
    routes += [
        Route("timeentry-list", None, {"GET": EVERYONE, "POST": roles(400, staff=201, finance=201),
                                       **{m: roles(405) for m in ("PUT", "PATCH", "DELETE")}}, entry_body),
        Route("timeentry-detail", "entry", {
            "GET": roles(200, **hidden_from), "POST": roles(405),
            "PUT": roles(403, staff=200, finance=200, **hidden_from),
            "PATCH": roles(403, staff=200, finance=200, **hidden_from),
            "DELETE": roles(403, staff=204, finance=204, **hidden_from)}, entry_body),
    ]

    # Approvals: the queue is for those who decide or oversee; Sam's request is not in Pete's queue.
    # Management reads but does not decide (403). Nobody edits a request (405 to those with the model's
    # permission for the method, 403 to the others).
    queue = roles(403, other_pm=200, approver=200, finance=200, management=200)
    decide = roles(403, other_pm=404, approver=200, finance=200)
    bulk = roles(403, other_pm=200, approver=200, finance=200)  # Pete's answer lists the id as refused
    decision_bodies = {"POST": {"note": "Checked", "reason": "Not agreed", "ids": ["{approval}"]}}
    routes += [
        Route("approvalrequest-list", None, {"GET": queue, "POST": roles(403, finance=405),
                                             "PUT": roles(403, other_pm=405, approver=405, finance=405),
                                             "PATCH": roles(403, other_pm=405, approver=405, finance=405),
                                             "DELETE": roles(403, finance=405)}),
        Route("approvalrequest-detail", "approval", {
            "GET": roles(403, other_pm=404, approver=200, finance=200, management=200),
            "POST": roles(403, finance=405),
            "PUT": roles(403, other_pm=405, approver=405, finance=405),
            "PATCH": roles(403, other_pm=405, approver=405, finance=405),
            "DELETE": roles(403, finance=405)}),
        Route("approvalrequest-approve", "approval", {"POST": decide}, decision_bodies),
        Route("approvalrequest-reject", "approval", {"POST": decide}, decision_bodies),
        Route("approvalrequest-bulk-approve", None, {"POST": bulk}, decision_bodies),
        Route("approvalrequest-bulk-reject", None, {"POST": bulk}, decision_bodies),
    ]

    # Invoices: finance and management read; finance acts. PUT, PATCH and POST on the list are 405 to readers.
    not_allowed = roles(403, finance=405, management=405)
    fin_acts = roles(403, finance=200)
    routes += [
        Route("invoice-list", None, {"GET": READERS, "POST": not_allowed, "PUT": not_allowed,
                                     "PATCH": not_allowed, "DELETE": not_allowed}),
        Route("invoice-detail", "draft", {"GET": READERS, "POST": not_allowed, "PUT": not_allowed,
                                          "PATCH": not_allowed, "DELETE": roles(403, finance=204)}),
        Route("invoice-pdf", "draft", {"GET": READERS}),
        Route("invoice-send-preview", "draft", {"POST": fin_acts}),
        Route("invoice-finalize", "draft", {"POST": fin_acts}, {"POST": {"issue_date": "2026-04-02"}}),
        Route("invoice-send", "issued", {"POST": fin_acts}),
        Route("invoice-mark-paid", "issued", {"POST": fin_acts}, {"POST": {"paid_on": "2026-04-10"}}),
        Route("invoice-void", "issued", {"POST": fin_acts}, {"POST": {"reason": "Wrong client"}}),
        Route("invoice-credit-notes", "issued", {"POST": roles(403, finance=201)},
              {"POST": {"allocations": [{"time_entry": "{issued_entry}"}], "release": True,
                        "reason": "Goodwill"}}),
        Route("billingrun-list", None, {"GET": READERS, "POST": roles(403, finance=201)},
              {"POST": {"period_start": "2026-04-01", "period_end": "2026-04-30"}}),
        Route("billingrun-detail", "run", {"GET": READERS}),
    ]

    # Reports: finance and management (view_reports).
    for report in ("utilization", "profitability", "budgets", "time-to-invoice", "billing-accuracy", "wip"):
        routes.append(Route(f"reports-api:{report}", None, {"GET": READERS, "POST": not_allowed},
                            extra="?start=2026-03-01&end=2026-03-31"))
    return routes


def _page_routes() -> list[Route]:
    """The portal, billing and report pages (session sign-in; anonymous goes to the login page)."""
    entry_form = {"project": "{project}", "task_type": "{task_type}", "work_date": "2026-04-01",
                  "duration": "0:40", "description": "Edited", "billable": "on"}
    own = roles(404, staff=200)  # Sam's entry, in the portal: only Sam (finance included: 404)
    fin_posts = roles(403, finance=302)
    return [
        Route("portal:home", None, {"GET": EVERYONE}),
        Route("portal:timesheet", None, {"GET": EVERYONE}),
        Route("portal:my-time", None, {"GET": EVERYONE}),
        # Budgets: finance, management, and a project manager for their own projects (Pete has one).
        Route("portal:projects", None, {"GET": roles(403, other_pm=200, finance=200, management=200)}),
        Route("portal:entry-new", None, {"GET": EVERYONE, "POST": roles(302)},
              {"POST": {**entry_form, "work_date": "2026-04-06"}}),
        Route("portal:entry-edit", "entry", {"GET": own, "POST": roles(404, staff=302)}, {"POST": entry_form}),
        Route("portal:entry-delete", "entry", {"GET": own, "POST": roles(404, staff=302)}),
        Route("billing:import-time", None, {"GET": FINANCE_ONLY, "POST": roles(403, finance=200)}),
        Route("billing:invoice-list", None, {"GET": READERS}),
        # POST-only actions: the permission is checked before the method (403, then 405).
        Route("billing:billing-run", None, {"GET": roles(403, finance=405), "POST": fin_posts},
              {"POST": {"period_start": "2026-04-01", "period_end": "2026-04-30"}}),
        Route("billing:invoice-detail", "draft", {"GET": READERS}),
        Route("billing:invoice-pdf", "draft", {"GET": READERS}),
        Route("billing:invoice-preview", "draft", {"GET": roles(403, finance=405), "POST": fin_posts}),
        Route("billing:invoice-regenerate", "draft", {"GET": roles(403, finance=405), "POST": fin_posts}),
        Route("billing:invoice-delete", "draft", {"GET": FINANCE_ONLY, "POST": fin_posts}),
        Route("billing:dispute-resolve", "dispute", {"GET": roles(403, finance=405), "POST": fin_posts},
              {"POST": {"dispute-{dispute}-resolution": "Agreed with the client", "dispute-{dispute}-outcome":
                        "dismiss"}}),
        Route("billing:invoice-finalize", "draft", {"GET": roles(403, finance=405), "POST": fin_posts}),
        Route("billing:invoice-send", "issued", {"GET": roles(403, finance=405), "POST": fin_posts}),
        Route("billing:invoice-paid", "issued", {"GET": roles(403, finance=405), "POST": fin_posts},
              {"POST": {"paid_on": "2026-04-10"}}),
        Route("billing:invoice-void", "issued", {"GET": FINANCE_ONLY, "POST": fin_posts},
              {"POST": {"reason": "Wrong client"}}),
        Route("billing:invoice-credit", "issued", {"GET": FINANCE_ONLY, "POST": roles(403, finance=200)}),
        *[Route(f"reports:{page}", None, {"GET": READERS}, extra="?start=2026-03-01&end=2026-03-31")
          for page in ("dashboard", "utilization", "profitability", "budgets", "time-to-invoice",
                       "billing-accuracy", "wip", "entries")],
    ]


# Admin: what each role may do with each model ("v"iew, "a"dd, "c"hange, "d"elete), from the access-role
# migrations and the model admins (computed rows and records are never added or changed there). A role not
# named may do nothing; the integrations, users, tokens and task queue are the superuser's.
ADMIN_ACCESS = {
    "clients.client": {"approver": "v", "finance": "vacd", "management": "v"},
    "clients.contact": {"finance": "vacd", "management": "v"},
    "clients.contract": {"finance": "vacd", "management": "v"},
    "clients.feemilestone": {"finance": "vacd", "management": "v"},
    "projects.role": {"finance": "vacd", "management": "v"},
    "projects.teammember": {"approver": "v", "finance": "vacd", "management": "v"},
    "projects.tasktype": {"other_pm": "v", "approver": "v", "finance": "vacd", "management": "v"},
    "projects.project": {"other_pm": "v", "approver": "v", "finance": "vacd", "management": "v"},
    "projects.timeentry": {"other_pm": "v", "approver": "v", "finance": "vd", "management": "v"},
    "projects.projectbudget": {"other_pm": "v", "finance": "v", "management": "v"},
    "projects.budgetalert": {"other_pm": "v", "finance": "v", "management": "v"},
    # The active policy is never deleted (the admin refuses finance too).
    "approvals.approvalpolicy": {"finance": "vac", "management": "v"},
    "approvals.approvalrequest": {"other_pm": "v", "approver": "v", "finance": "v", "management": "v"},
    "approvals.approvalevent": {"other_pm": "v", "approver": "v", "finance": "v", "management": "v"},
    "billing.rate": {"finance": "vacd", "management": "v"},
    "billing.billingrun": {"finance": "va", "management": "v"},
    "billing.invoice": {"finance": "vd", "management": "v"},
    "billing.invoiceline": {"finance": "v", "management": "v"},
    "billing.allocation": {"finance": "v", "management": "v"},
    "billing.contractcharge": {"finance": "v", "management": "v"},
    "billing.invoicesequence": {"finance": "v", "management": "v"},
    "billing.linedispute": {"finance": "v", "management": "v"},
    "billing.clientmessage": {"finance": "v", "management": "v"},
    "billing.invoiceevent": {"finance": "v", "management": "v"},
    "integrations.syncrun": {}, "integrations.synccursor": {}, "integrations.externalref": {},
    "integrations.inboundrecord": {}, "integrations.webhookevent": {},
    "auth.group": {}, "auth.user": {}, "authtoken.tokenproxy": {},
    "django_q.schedule": {}, "django_q.success": {}, "django_q.failure": {}, "django_q.ormq": {},
}
# Rows outside a role's list (Sam's, on a project Pete does not manage; budgets are not the approver's):
# the admin answers as if they did not exist (a redirect to the index) wherever it looks the row up before
# checking the permission (history always; change and delete once the permission is there).
ADMIN_HIDDEN = {("projects.timeentry", "other_pm"), ("approvals.approvalrequest", "other_pm"),
                ("approvals.approvalevent", "other_pm"), ("projects.projectbudget", "other_pm"),
                ("projects.budgetalert", "other_pm"), ("projects.projectbudget", "approver"),
                ("projects.budgetalert", "approver")}
# Rows other rows still need: deleting them shows the admin's "cannot delete" page (200), nothing deleted.
ADMIN_IN_USE = {"clients.client", "clients.contract", "clients.feemilestone", "projects.role",
                "projects.teammember", "projects.tasktype", "projects.project"}
ADMIN_USERS = ("other_pm", "approver", "finance", "management")  # is_staff: the admin opens for them


def _admin_answer(access: str, hidden: bool, in_use: bool, view: str, method: str) -> int:
    may = lambda letters: any(letter in access for letter in letters)  # noqa: E731
    if view == "changelist":
        return 200 if may("vc") else 403
    if view == "add":
        return 200 if may("a") else 403  # an empty form comes back with its errors
    if view == "history":
        return 302 if hidden else (200 if may("vc") else 403)
    if view == "change":
        if method == "POST":
            return (302 if hidden else 200) if may("c") else 403
        return (302 if hidden else 200) if may("vc") else 403
    if view == "delete":
        if not may("d"):
            return 403
        if hidden:
            return 302
        return 302 if method == "POST" and not in_use else 200
    raise AssertionError(view)


def _admin_routes() -> list[Route]:
    routes = [
        Route("admin:index", None, {"GET": roles(200, staff=302, other_staff=302)}),
        Route("admin:password_change", None, {"GET": roles(200, staff=302, other_staff=302)}),
        Route("admin:password_change_done", None, {"GET": roles(200, staff=302, other_staff=302)}),
    ]
    for label, grants in ADMIN_ACCESS.items():
        app_label, model_name = label.split(".")
        for view in ("changelist", "add", "change", "delete", "history"):
            methods = {}
            # The list and the history only show; POSTs go to the add, change and delete pages.
            for method in ("GET",) if view in ("changelist", "history") else ("GET", "POST"):
                answers = {role: _admin_answer(grants.get(role, ""), (label, role) in ADMIN_HIDDEN,
                                               label in ADMIN_IN_USE, view, method)
                           for role in ADMIN_USERS}
                methods[method] = {"staff": 302, "other_staff": 302, **answers}
            bodies = {"POST": {"post": "yes"}} if view == "delete" else {}
            routes.append(Route(f"admin:{app_label}_{model_name}_{view}",
                                None if view in ("changelist", "add") else label, methods, bodies))
    # An app's page lists what the role may see; an app with nothing for them is a 404.
    app_pages = {"clients": ("approver", "finance", "management"),
                 "projects": ("other_pm", "approver", "finance", "management"),
                 "approvals": ("other_pm", "approver", "finance", "management"),
                 "billing": ("finance", "management"), "integrations": (), "auth": (), "authtoken": (),
                 "django_q": ()}
    for app_label, readers in app_pages.items():
        answers = {role: 200 if role in readers else 404 for role in ADMIN_USERS}
        routes.append(Route("admin:app_list", f"app:{app_label}",
                            {"GET": {"staff": 302, "other_staff": 302, **answers}}))
    # The queue's decisions (POST only): those who decide, on requests in their queue.
    decide = {"staff": 302, "other_staff": 302, "other_pm": 302, "approver": 302, "finance": 302,
              "management": 403}
    routes += [
        Route("admin:approvals_approvalrequest_approve", "approval", {"POST": decide}, {"POST": {"note": "ok"}}),
        Route("admin:approvals_approvalrequest_reject", "approval", {"POST": decide}, {"POST": {"reason": "no"}}),
        Route("admin:billing_invoice_pdf", "billing.invoice",
              {"GET": {**roles(403, finance=200, management=200), "staff": 302, "other_staff": 302}}),
        Route("admin:integrations_status", None, {"GET": {**roles(403), "staff": 302, "other_staff": 302}}),
        Route("admin:integrations_sync_now", "sync:toggl/time_entries",
              {"POST": {**roles(403), "staff": 302, "other_staff": 302}}),
    ]
    return routes


# Named routes outside the matrix, each with its reason.
EXEMPT = {
    "schema": "the OpenAPI schema: public documentation, no data (drf-spectacular)",
    "api-docs": "the interactive docs page: public documentation, no data",
    "webhooks:toggl": "signed by Toggl, no user: tests/test_integrations_webhooks.py",
    "webhooks:monday": "secret in the URL, no user: tests/test_integrations_webhooks.py",
    "billing:client-review": "the signed, expiring client link: tests/test_client_review.py",
    "admin:login": "the sign-in page itself: throttling in tests/test_security.py",
    "admin:logout": "signs out whoever calls it",
    "admin:jsi18n": "the admin's JavaScript translations, no data",
    "admin:autocomplete": "serves only models with search fields to users who may view them (Django's check)",
    "admin:view_on_site": "a redirect to a model's get_absolute_url; none of ours defines one",
    "admin:auth_user_password_change": "the superuser's (auth.user is the superuser's, covered above)",
}
ALL_ROUTES = [*_api_routes(), *_page_routes(), *_admin_routes()]
ACCOUNT_PAGES = ("login", "logout", "password_change", "password_change_done", "password_reset",
                 "password_reset_done", "password_reset_confirm", "password_reset_complete")




def test_every_route_is_in_the_matrix_or_exempt():
    covered = {route.name for route in ALL_ROUTES}
    # Django's own sign-in pages (throttling and CSRF: test_security.py) are not part of the firm's data.
    missing = sorted(name for name in named_routes()
                     if name not in covered and name not in EXEMPT and name not in ACCOUNT_PAGES)
    assert not missing, f"Routes with no entry in the permission matrix: {missing}"
    unknown = sorted(covered - set(named_routes()))
    assert not unknown, f"Matrix entries for routes that no longer exist: {unknown}"
    # Every model the admin shows has its row in ADMIN_ACCESS.
    shown = {model._meta.label_lower for model in admin.site._registry}
    assert shown == set(ADMIN_ACCESS), shown ^ set(ADMIN_ACCESS)


# --- Running it --------------------------------------------------------------------------------------------


def _cases():
    for route in ALL_ROUTES:
        for method in route.methods:
            for role in ROLES:
                suffix = f"[{route.target}]" if route.name == "admin:app_list" else ""
                yield pytest.param(route, method, role, id=f"{route.name}{suffix}-{method}-{role}")


def _url(route: Route, firm: Firm) -> str:
    target = route.target
    if target is None:
        args = []
    elif target.startswith("app:"):
        return reverse("admin:app_list", args=[target.removeprefix("app:")])
    elif target.startswith("sync:"):
        return reverse(route.name, args=target.removeprefix("sync:").split("/"))
    else:
        args = [firm.ids[target]]
    return reverse(route.name, args=args) + route.extra


def _fill(value, firm: Firm):
    """Bodies name the dataset's objects as "{key}"."""
    ids = {**firm.ids, "sam": firm.ids["member"]}
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return ids[value[1:-1]]
    if isinstance(value, dict):
        return {key.format(**ids): _fill(item, firm) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, firm) for item in value]
    return value


def _is_api(route: Route) -> bool:
    return not route.name.startswith(("portal:", "billing:", "reports:", "admin:"))


def _anonymous_answer(route: Route) -> int:
    return 401 if _is_api(route) else 302


def _request(route: Route, method: str, role: str, firm: Firm):
    url = _url(route, firm)
    body = _fill(route.bodies.get(method, {}), firm)
    if _is_api(route):
        client = APIClient()
        if role != "anonymous":
            client.credentials(HTTP_AUTHORIZATION=f"Token {firm.tokens[role]}")
        return getattr(client, method.lower())(url, body, format="json")
    client = Client()
    if role != "anonymous":
        client.cookies[settings.SESSION_COOKIE_NAME] = firm.sessions[role]
    if method == "GET":
        return client.get(url)
    return client.generic(method, url, data=_form_encoded(body), content_type="application/x-www-form-urlencoded")


def _form_encoded(body: dict) -> str:
    from urllib.parse import urlencode

    return urlencode(body, doseq=True)


REFUSED = {400, 401, 403, 404, 405}


@pytest.mark.parametrize(("route", "method", "role"), list(_cases()))
def test_permission_matrix(firm, db, route, method, role):
    expected = _anonymous_answer(route) if role == "anonymous" else route.methods[method][role]

    response = _request(route, method, role, firm)

    assert response.status_code == expected, getattr(response, "data", None) or response.content[:300]
    if response.status_code == 302 and role == "anonymous" or (
            response.status_code == 302 and route.name.startswith("admin:") and role in ("staff", "other_staff")):
        # Sent to sign in, with the page to come back to.
        login = ADMIN_LOGIN if route.name.startswith("admin:") else LOGIN
        assert response["Location"].startswith(login), response["Location"]
        refused = True
    else:
        # The admin's "cannot delete" page answers a confirmed delete of a row still in use.
        cannot_delete = route.name.endswith("_delete") and method == "POST" and response.status_code == 200
        refused = response.status_code in REFUSED or cannot_delete
    if method != "GET" and refused:
        assert snapshot() == firm.before, "a refused write changed the database"


def test_the_checksum_sees_any_change(firm, db):
    # The refused-write check is only as good as this: a changed field, a new row, a deleted row.
    from clients.models import Client as FirmClient

    FirmClient.objects.filter(pk=firm.ids["client"]).update(name="Acme Renamed")
    assert snapshot() != firm.before
    FirmClient.objects.filter(pk=firm.ids["client"]).update(name="Acme")
    assert snapshot() == firm.before
    Group.objects.get(name="finance").user_set.add(firm.users["staff"])
    assert snapshot() != firm.before
