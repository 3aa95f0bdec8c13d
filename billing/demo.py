"""The demo firm: clients, contracts, rate cards, people, projects and weeks of logged time.

`seed_demo_firm` is safe to run again: reference data is looked up by its natural key and only
created when missing, and time goes through `billing.pipeline.ingest` with deterministic external
ids, so a second run on the same day finds every entry unchanged. Dates are relative to today:
the time covers the weekdays of the last `weeks` full weeks, ending last week.
"""

import datetime as dt
import math
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Model
from django.utils import timezone
from djmoney.money import Money

from approvals.models import ApprovalPolicy
from billing.demo_invoices import seed_demo_invoices
from billing.models import Rate
from billing.pipeline import TimeEntryInput, ingest
from clients.models import (
    BillingPeriod,
    BillingType,
    CapPeriod,
    Client,
    Consolidation,
    Contact,
    Contract,
    FeeMilestone,
    FixedFeeSchedule,
    LineGrouping,
    RoundingMode,
)
from projects.access import APPROVER, FINANCE, MANAGEMENT, PROJECT_MANAGER, STAFF, grant_access_roles
from projects.demo_logins import DEMO_PASSWORD, DEMO_USERS
from projects.models import EntrySource, Project, ProjectStatus, Role, TaskType, TeamMember, TimeEntry

DEFAULT_WEEKS = 12
# Entries go through the pipeline in batches about this big.
BATCH_SIZE = 1000
SOURCE = EntrySource.API
SEED = "billable-demo"
DOMAIN = "demo.billable.test"
LOGINS = dict(DEMO_USERS)

# Rates are set in dollars and converted (rounded to 5) for contracts in other currencies.
FX_FROM_USD = {"USD": Decimal("1"), "EUR": Decimal("0.92"), "GBP": Decimal("0.79")}


def price(usd: int, currency: str) -> Money:
    amount = Decimal(usd) * FX_FROM_USD[currency]
    return Money((amount / 5).quantize(Decimal("1")) * 5, currency)


# --- People -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RoleSpec:
    code: str
    name: str
    cost_usd: int
    list_rate_usd: int
    # The task types people in this role mostly log, most frequent first.
    tasks: tuple[str, ...]


ROLES = [
    RoleSpec("partner", "Partner", 140, 290, ("consulting", "workshop", "project-management")),
    RoleSpec("senior-consultant", "Senior Consultant", 95, 210,
             ("consulting", "project-management", "analysis", "workshop")),
    RoleSpec("consultant", "Consultant", 70, 160, ("consulting", "analysis", "development")),
    RoleSpec("designer", "Designer", 65, 150, ("design", "design", "workshop")),
    RoleSpec("analyst", "Analyst", 50, 125, ("analysis", "development", "analysis")),
]
ROLE_BY_CODE = {role.code: role for role in ROLES}


@dataclass(frozen=True)
class MemberSpec:
    key: str
    name: str
    role: str
    access: tuple[str, ...] = (STAFF,)
    # Which demo login (projects.demo_logins) this member is, if any.
    login: str | None = None
    capacity: int = 40
    time_zone: str = "America/New_York"

    @property
    def username(self) -> str:
        return LOGINS[self.login] if self.login else f"{self.key}@{DOMAIN}"


PM = (STAFF, PROJECT_MANAGER)
MEMBERS = [
    MemberSpec("morgan.moore", "Morgan Moore", "partner", (STAFF, MANAGEMENT), login="management"),
    MemberSpec("avery.appleton", "Avery Appleton", "partner", (STAFF, APPROVER), login="approver"),
    MemberSpec("helen.okafor", "Helen Okafor", "partner", PM),
    MemberSpec("priya.pillai", "Priya Pillai", "senior-consultant", PM, login="project_manager"),
    MemberSpec("daniel.weiss", "Daniel Weiss", "senior-consultant", PM),
    MemberSpec("lucia.fernandez", "Lucía Fernández", "senior-consultant", PM, time_zone="Europe/Madrid"),
    MemberSpec("grace.liu", "Grace Liu", "senior-consultant", PM),
    MemberSpec("oliver.grant", "Oliver Grant", "senior-consultant", PM, time_zone="Europe/London"),
    MemberSpec("tom.becker", "Tom Becker", "senior-consultant", time_zone="Europe/Berlin"),
    MemberSpec("sam.stafford", "Sam Stafford", "consultant", login="staff"),
    MemberSpec("nina.petrova", "Nina Petrova", "consultant"),
    MemberSpec("marcus.reed", "Marcus Reed", "consultant"),
    MemberSpec("aisha.khan", "Aisha Khan", "consultant"),
    MemberSpec("jonas.lindqvist", "Jonas Lindqvist", "consultant", time_zone="Europe/Berlin"),
    MemberSpec("chloe.martin", "Chloe Martin", "consultant", time_zone="Europe/Paris"),
    MemberSpec("ravi.menon", "Ravi Menon", "consultant"),
    MemberSpec("elena.rossi", "Elena Rossi", "designer", time_zone="Europe/Paris"),
    MemberSpec("kai.nakamura", "Kai Nakamura", "designer"),
    MemberSpec("zoe.clarke", "Zoe Clarke", "designer", capacity=32, time_zone="Europe/London"),
    MemberSpec("mateo.silva", "Mateo Silva", "designer"),
    MemberSpec("fran.fischer", "Fran Fischer", "analyst", (STAFF, FINANCE), login="finance"),
    MemberSpec("ada.admin", "Ada Admin", "analyst", login="superuser", capacity=32),
    MemberSpec("ben.howard", "Ben Howard", "analyst"),
    MemberSpec("leah.cohen", "Leah Cohen", "analyst"),
    MemberSpec("victor.dubois", "Victor Dubois", "analyst", time_zone="Europe/Paris"),
]

# code, name, billable, is_default
TASK_TYPES = [
    ("consulting", "Consulting", True, True),
    ("development", "Development", True, False),
    ("design", "Design", True, False),
    ("analysis", "Analysis", True, False),
    ("project-management", "Project management", True, False),
    ("workshop", "Workshop", True, False),
    ("internal-meeting", "Internal meeting", False, False),
    ("training", "Training", False, False),
    ("business-development", "Business development", False, False),
    ("administration", "Administration", False, False),
]

DESCRIPTIONS = {
    "consulting": ["Stakeholder interviews", "Steering committee preparation", "Recommendations deck",
                   "Weekly client check-in", "Process mapping session", "Follow-up on open decisions"],
    "development": ["API integration", "Fixes from user acceptance testing", "Data pipeline work", "Code review",
                    "Release preparation and notes", "Test automation"],
    "design": ["Wireframes", "UI mock-ups", "Design system components", "Usability test synthesis",
               "Concept iterations after feedback"],
    "analysis": ["Data cleansing", "Model calibration", "KPI analysis", "Requirements analysis",
                 "Cost-benefit model", "Findings write-up"],
    "project-management": ["Status report", "Sprint planning", "Risk log update", "Budget review with client",
                           "Resource planning"],
    "workshop": ["Discovery workshop", "Prioritisation workshop", "Workshop preparation"],
    "internal-meeting": ["Team stand-up", "Internal review", "Delivery sync"],
    "training": ["Security awareness training", "Certification study", "Lunch and learn"],
    "business-development": ["Proposal writing", "Pitch preparation", "Account planning"],
    "administration": ["Month-end close", "Expense reports", "Invoice follow-up", "Systems administration"],
}


# --- Clients, contracts, projects -----------------------------------------------------------

@dataclass(frozen=True)
class DemoCalendar:
    """Every demo date, derived from today and the number of weeks of time."""

    today: dt.date
    weeks: int

    @property
    def first_monday(self) -> dt.date:
        this_monday = self.today - dt.timedelta(days=self.today.weekday())
        return this_monday - dt.timedelta(weeks=self.weeks)

    @property
    def workdays(self) -> list[dt.date]:
        days = (self.first_monday + dt.timedelta(days=n) for n in range(self.weeks * 7))
        return [day for day in days if day.weekday() < 5]

    @property
    def contracts_start(self) -> dt.date:
        return (self.first_monday - dt.timedelta(days=60)).replace(day=1)

    def window(self, fraction: float) -> dt.date:
        """The Monday about `fraction` of the way through the weeks of time."""
        return self.first_monday + dt.timedelta(weeks=round(self.weeks * fraction))

    def year_after(self, day: dt.date) -> dt.date:
        return day.replace(year=day.year + 1) - dt.timedelta(days=1)


def client_specs() -> list[dict]:
    return [
        {"code": "northwind", "name": "Northwind Logistics", "currency": "USD",
         "invoice_emails": ["ap@northwind-logistics.example"], "address": "400 Harbor Blvd\nOakland, CA 94607",
         "contacts": [("Dana Brooks", "dana.brooks@northwind-logistics.example", True, False),
                      ("Accounts Payable", "ap@northwind-logistics.example", False, True)]},
        {"code": "contoso", "name": "Contoso Retail", "currency": "USD", "billing_period": BillingPeriod.WEEKLY,
         "line_grouping": LineGrouping.PROJECT, "payment_terms_days": 14,
         "invoice_emails": ["invoices@contoso-retail.example"],
         "contacts": [("Jordan Lee", "jordan.lee@contoso-retail.example", True, True)]},
        {"code": "acme-health", "name": "Acme Health Systems", "currency": "USD",
         "billing_period": BillingPeriod.SEMIMONTHLY, "consolidation": Consolidation.CONTRACT,
         "line_grouping": LineGrouping.MEMBER, "payment_terms_days": 45, "include_time_detail": True,
         "invoice_emails": ["finance@acme-health.example", "pmo@acme-health.example"],
         "contacts": [("Dr. Rachel Stone", "rachel.stone@acme-health.example", True, False),
                      ("PMO", "pmo@acme-health.example", True, True),
                      ("Finance", "finance@acme-health.example", False, True)]},
        {"code": "helios", "name": "Helios Energie GmbH", "currency": "EUR", "tax_rate": Decimal("19.00"),
         "consolidation": Consolidation.PROJECT, "line_grouping": LineGrouping.PROJECT,
         "invoice_emails": ["rechnungen@helios-energie.example"], "address": "Energieallee 7\n10115 Berlin",
         "contacts": [("Katrin Vogel", "katrin.vogel@helios-energie.example", True, False),
                      ("Buchhaltung", "rechnungen@helios-energie.example", False, True)]},
        {"code": "lumiere", "name": "Maison Lumière SA", "currency": "EUR", "tax_rate": Decimal("20.00"),
         "invoice_emails": ["compta@maison-lumiere.example"],
         "contacts": [("Camille Laurent", "camille.laurent@maison-lumiere.example", False, True)]},
        {"code": "bramble", "name": "Bramble & Co", "currency": "GBP", "tax_rate": Decimal("20.00"),
         "line_grouping": LineGrouping.DETAILED, "invoice_emails": ["accounts@bramble.example"],
         "contacts": [("Harriet Bloom", "harriet.bloom@bramble.example", True, True)]},
        {"code": "internal", "name": "Our firm (internal)", "currency": "USD",
         "contacts": []},
    ]


def contract_specs(calendar: DemoCalendar) -> list[dict]:
    start = calendar.contracts_start
    return [
        {"number": "C-1000", "client": "internal", "billing_type": BillingType.NON_BILLABLE, "currency": "USD"},
        {"number": "C-1001", "client": "northwind", "billing_type": BillingType.TIME_AND_MATERIALS,
         "currency": "USD", "rounding_increment": 6, "rounding_mode": RoundingMode.UP},
        {"number": "C-1002", "client": "contoso", "billing_type": BillingType.TIME_AND_MATERIALS,
         "currency": "USD", "rounding_increment": 15, "rounding_mode": RoundingMode.NEAREST},
        {"number": "C-1003", "client": "acme-health", "billing_type": BillingType.TIME_AND_MATERIALS,
         "currency": "USD", "rounding_increment": 15, "rounding_mode": RoundingMode.UP,
         "cap_hours": Decimal("950.00"), "cap_amount": Money("110000.00", "USD"), "cap_period": CapPeriod.MONTH,
         "monthly_spend_limit": Money("90000.00", "USD"), "auto_approve_max_amount": Money("1500.00", "USD")},
        {"number": "C-1004", "client": "helios", "billing_type": BillingType.FIXED_FEE, "currency": "EUR",
         "fixed_fee_amount": Money("96000.00", "EUR"), "fixed_fee_schedule": FixedFeeSchedule.INSTALLMENTS,
         "end_date": calendar.year_after(start)},
        {"number": "C-1005", "client": "helios", "billing_type": BillingType.TIME_AND_MATERIALS,
         "currency": "EUR", "rounding_increment": 15, "rounding_mode": RoundingMode.UP},
        {"number": "C-1006", "client": "lumiere", "billing_type": BillingType.FIXED_FEE, "currency": "EUR",
         "fixed_fee_schedule": FixedFeeSchedule.MILESTONES, "end_date": calendar.year_after(start),
         "milestones": [
             ("Discovery", 12000, start + dt.timedelta(days=30), start + dt.timedelta(days=28)),
             ("Brand concepts", 18000, calendar.window(1 / 3), calendar.window(1 / 3)),
             ("Website build", 30000, calendar.today + dt.timedelta(weeks=6), None),
             ("Launch", 10000, calendar.today + dt.timedelta(weeks=12), None),
         ]},
        {"number": "C-1007", "client": "bramble", "billing_type": BillingType.RETAINER, "currency": "GBP",
         "retainer_amount": Money("18000.00", "GBP"), "retainer_hours": Decimal("120.00"),
         "auto_finalize": True},
    ]


@dataclass(frozen=True)
class ProjectSpec:
    code: str
    name: str
    contract: str
    manager: str | None
    team: tuple[str, ...]
    billable: bool = True
    # None: the contract's start; else a fraction of the way through the weeks of time.
    starts_at: float | None = None
    ends_at: float | None = None
    status: str = ProjectStatus.ACTIVE
    # Budget as a multiple of the hours the demo logs; near 1 means "nearly used up".
    budget_factor: float | None = 2.0
    with_amount_budget: bool = False
    alert_thresholds: tuple[int, ...] = (50, 75, 90, 100)


PROJECTS = [
    ProjectSpec("int-ops", "Firm operations", "C-1000", "helen.okafor", (), billable=False, budget_factor=None),
    ProjectSpec("int-learning", "Training and learning", "C-1000", "helen.okafor", (), billable=False),
    ProjectSpec("int-bizdev", "Business development", "C-1000", "helen.okafor", (), billable=False,
                budget_factor=None),
    ProjectSpec("nwl-routing", "Route optimisation", "C-1001", "helen.okafor",
                ("helen.okafor", "morgan.moore", "tom.becker", "nina.petrova", "marcus.reed", "ben.howard"),
                with_amount_budget=True),
    ProjectSpec("nwl-dashboard", "Operations dashboard", "C-1001", "daniel.weiss",
                ("daniel.weiss", "kai.nakamura", "leah.cohen", "marcus.reed"), budget_factor=1.25,
                with_amount_budget=True),
    ProjectSpec("ctso-pos", "Point-of-sale modernisation", "C-1002", "grace.liu",
                ("grace.liu", "jonas.lindqvist", "chloe.martin", "zoe.clarke")),
    ProjectSpec("ctso-loyalty", "Loyalty analytics", "C-1002", "grace.liu",
                ("grace.liu", "leah.cohen", "victor.dubois", "ravi.menon"), starts_at=0.5, budget_factor=4.0),
    ProjectSpec("acme-portal", "Patient portal", "C-1003", "priya.pillai",
                ("priya.pillai", "avery.appleton", "sam.stafford", "aisha.khan", "elena.rossi", "ravi.menon"),
                with_amount_budget=True),
    ProjectSpec("acme-audit", "Security audit", "C-1003", "priya.pillai",
                ("oliver.grant", "sam.stafford", "victor.dubois"), budget_factor=1.08,
                alert_thresholds=(50, 80, 100)),
    ProjectSpec("hel-grid", "Grid analytics platform", "C-1004", "lucia.fernandez",
                ("lucia.fernandez", "jonas.lindqvist", "nina.petrova", "ben.howard")),
    ProjectSpec("hel-support", "Platform support", "C-1005", "priya.pillai",
                ("lucia.fernandez", "chloe.martin", "aisha.khan")),
    ProjectSpec("lum-brand", "Brand refresh", "C-1006", "daniel.weiss",
                ("elena.rossi", "mateo.silva", "kai.nakamura"), ends_at=1 / 3, status=ProjectStatus.COMPLETED,
                budget_factor=1.15),
    ProjectSpec("lum-site", "Website relaunch", "C-1006", "daniel.weiss",
                ("mateo.silva", "zoe.clarke", "tom.becker")),
    ProjectSpec("brm-advisory", "Advisory retainer", "C-1007", "oliver.grant",
                ("avery.appleton", "oliver.grant", "morgan.moore")),
    ProjectSpec("brm-data", "Data strategy", "C-1007", "oliver.grant",
                ("oliver.grant", "victor.dubois", "leah.cohen"), budget_factor=1.03,
                alert_thresholds=(75, 90, 100)),
]

# The rate card every time-billing contract starts from (USD, converted for others).
DEFAULT_RATE_USD = 170
TASK_RATES_USD = {"development": 175}
ROLE_TASK_RATES_USD = {("partner", "workshop"): 320}
# Contract number -> extras: member rates, project-scoped default rates, a role's price increase.
RATE_EXTRAS = {
    "C-1001": {"members": {"tom.becker": 225}, "increase": ("consultant", 0.5, 175)},
    "C-1003": {"projects": {"acme-audit": 245}},
    "C-1005": {"members": {"lucia.fernandez": 205}},
}


def project_dates(spec: ProjectSpec, contract: dict, calendar: DemoCalendar) -> tuple[dt.date, dt.date | None]:
    start = calendar.contracts_start if spec.starts_at is None else calendar.window(spec.starts_at)
    if spec.ends_at is not None:
        # Ends on the Friday before that Monday.
        return start, calendar.window(spec.ends_at) - dt.timedelta(days=3)
    return start, contract.get("end_date")


# --- Time ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlannedEntry:
    member: str
    project: str
    task_type: str
    work_date: dt.date
    minutes: int
    description: str
    billable: bool
    external_id: str


def _split(rng: random.Random, minutes: int, parts: int) -> list[int]:
    """Split a day's client time into parts of at least an hour, on 5-minute steps."""
    parts = max(1, min(parts, minutes // 60))
    spare = minutes - 60 * parts
    weights = [rng.random() + 0.2 for _ in range(parts)]
    pieces = [60 + int(spare * weight / sum(weights)) // 5 * 5 for weight in weights]
    pieces[0] += minutes - sum(pieces)
    return pieces


Span = tuple[dt.date, dt.date | None]


def project_spans(calendar: DemoCalendar) -> dict[str, Span]:
    """The days each demo project takes time: as stored if it exists (an earlier run may have used
    other dates), else as it will be created."""
    contracts = {spec["number"]: spec for spec in contract_specs(calendar)}
    spans = {spec.code: project_dates(spec, contracts[spec.contract], calendar) for spec in PROJECTS}
    stored = Project.objects.filter(code__in=spans).select_related("contract")
    for project in stored:
        ends = [day for day in (project.end_date, project.contract.end_date) if day is not None]
        spans[project.code] = (max(project.start_date, project.contract.start_date), min(ends, default=None))
    return spans


def _internal_work(rng: random.Random, member: MemberSpec, projects: list[str]) -> tuple[str, str]:
    """(project, task type) of the day's non-billable time."""
    if not projects:
        # Nobody to bill today: finance and admin keep the firm running, the others sell and learn.
        if member.role == "analyst":
            return "int-ops", "administration"
        task = rng.choice(["business-development", "training", "internal-meeting"])
        return {"business-development": "int-bizdev", "training": "int-learning"}.get(task, "int-ops"), task
    if rng.random() < 0.5:
        # The team's stand-up, logged on the client project but never billed.
        return rng.choice(projects), "internal-meeting"
    if member.role == "partner":
        return "int-bizdev", "business-development"
    return rng.choice([("int-ops", "internal-meeting"), ("int-learning", "training")])


def _plan_day(member: MemberSpec, day: dt.date, projects: list[str]) -> list[PlannedEntry]:
    # One generator per member and day: the same day always gets the same entries, whatever the window.
    rng = random.Random(f"{SEED}:{member.key}:{day.isoformat()}")
    if rng.random() < 0.04:
        return []  # a day off
    total = rng.randrange(360, 545, 15) * member.capacity // 40
    if rng.random() < 0.04:
        total = rng.randrange(600, 700, 15)  # a long day before a deadline

    # (project, task type, minutes, billable flag)
    work: list[tuple[str, str, int, bool]] = []
    internal = 0
    if not projects or rng.random() < 0.35:
        internal = total if not projects else rng.choice([30, 45, 60, 90])
        work.append((*_internal_work(rng, member, projects), internal, True))
    if projects and total - internal >= 60:
        todays = rng.sample(projects, k=min(len(projects), rng.choice([1, 1, 2, 2, 3])))
        for project, minutes in zip(todays, _split(rng, total - internal, len(todays)), strict=False):
            # Odd minutes as people really log them, so contract rounding has work to do.
            minutes += rng.choice([0, 0, 0, 0, 2, 7, -3, -8])
            work.append((project, rng.choice(ROLE_BY_CODE[member.role].tasks), minutes, rng.random() > 0.02))

    planned = []
    for number, (project, task, minutes, billable) in enumerate(work, start=1):
        description = rng.choice(DESCRIPTIONS[task]) + ("" if billable else " (rework, not billed)")
        planned.append(PlannedEntry(
            member=member.key, project=project, task_type=task, work_date=day, minutes=minutes,
            description=description, billable=billable, external_id=f"demo-{member.key}-{day:%Y%m%d}-{number}",
        ))
    return planned


def plan_time(calendar: DemoCalendar, spans: dict[str, Span]) -> list[PlannedEntry]:
    """Every entry the demo logs, member by member and day by day."""
    assignments: dict[str, list[str]] = defaultdict(list)
    for spec in PROJECTS:
        for key in spec.team:
            assignments[key].append(spec.code)
    planned = []
    for member in MEMBERS:
        for day in calendar.workdays:
            projects = [code for code in assignments[member.key]
                        if spans[code][0] <= day and (spans[code][1] is None or day <= spans[code][1])]
            planned.extend(_plan_day(member, day, projects))
    return planned


# --- Seeding ---------------------------------------------------------------------------------

@dataclass
class DemoSummary:
    clients: int = 0
    contracts: int = 0
    members: int = 0
    projects: int = 0
    entries: int = 0
    entries_created: int = 0
    entries_unchanged: int = 0
    invoices: int = 0


def database_is_empty() -> bool:
    """`demo --if-empty` seeds only a database with no clients and no time yet."""
    return not Client.objects.exists() and not TimeEntry.objects.exists()


def _ensure(model: type[Model], lookup: dict, values: dict) -> Model:
    """The row with this natural key, created (and validated like a form would) if missing."""
    existing = model._default_manager.filter(**lookup).first()
    if existing is not None:
        return existing
    row = model(**lookup, **values)
    row.full_clean()
    row.save()
    return row


def _seed_people() -> tuple[dict[str, Role], dict[str, TeamMember], dict[str, TaskType]]:
    roles = {spec.code: _ensure(Role, {"code": spec.code},
                                {"name": spec.name, "default_cost_rate": Money(spec.cost_usd, "USD")})
             for spec in ROLES}
    has_default = TaskType.objects.filter(is_default=True).exists()
    task_types = {code: _ensure(TaskType, {"code": code},
                                {"name": name, "billable": billable, "is_default": is_default and not has_default})
                  for code, name, billable, is_default in TASK_TYPES}

    User = get_user_model()
    members = {}
    for spec in MEMBERS:
        first, _, last = spec.name.partition(" ")
        user = User.objects.filter(username=spec.username).first()
        if user is None:
            user = User(username=spec.username, email=spec.username, first_name=first, last_name=last,
                        is_superuser=spec.login == "superuser")
            # Hashing is slow on purpose: only the printed logins get a password.
            if spec.login:
                user.set_password(DEMO_PASSWORD)
            else:
                user.set_unusable_password()
            user.save()
        grant_access_roles(user, spec.access)
        members[spec.key] = _ensure(TeamMember, {"email": spec.username}, {
            "user": user, "name": spec.name, "role": roles[spec.role],
            "weekly_capacity_hours": Decimal(spec.capacity), "time_zone": spec.time_zone,
        })
    return roles, members, task_types


def _seed_clients(calendar: DemoCalendar) -> dict[str, Contract]:
    clients = {}
    for spec in client_specs():
        values = {key: value for key, value in spec.items() if key not in ("code", "contacts")}
        client = clients[spec["code"]] = _ensure(Client, {"code": spec["code"]}, values)
        for name, email, weekly, invoices in spec["contacts"]:
            _ensure(Contact, {"client": client, "email": email},
                    {"name": name, "receives_weekly_summary": weekly, "receives_invoices": invoices})
    contracts = {}
    for spec in contract_specs(calendar):
        values = {key: value for key, value in spec.items() if key not in ("number", "client", "milestones")}
        values.setdefault("start_date", calendar.contracts_start)
        contract = contracts[spec["number"]] = _ensure(
            Contract, {"number": spec["number"]}, {"client": clients[spec["client"]], **values}
        )
        for name, amount, due, completed in spec.get("milestones", []):
            _ensure(FeeMilestone, {"contract": contract, "name": name},
                    {"amount": Money(amount, contract.currency), "due_date": due, "completed_on": completed})
    return contracts


def _budget_hours(spec: ProjectSpec, planned_minutes: int) -> Decimal | None:
    if spec.budget_factor is None:
        return None
    hours = planned_minutes / 60 * spec.budget_factor
    # Round generous budgets to 50 hours like people do; tight ones stay tight.
    step = 1 if spec.budget_factor < 1.5 else 50
    return Decimal(max(step, math.ceil(hours / step) * step))


def _seed_projects(calendar: DemoCalendar, contracts: dict[str, Contract], members: dict[str, TeamMember],
                   planned: list[PlannedEntry]) -> dict[str, Project]:
    contract_terms = {spec["number"]: spec for spec in contract_specs(calendar)}
    planned_minutes: dict[str, int] = defaultdict(int)
    for entry in planned:
        planned_minutes[entry.project] += entry.minutes
    projects = {}
    for spec in PROJECTS:
        contract = contracts[spec.contract]
        start, end = project_dates(spec, contract_terms[spec.contract], calendar)
        budget_hours = _budget_hours(spec, planned_minutes[spec.code])
        budget_amount = None
        if spec.with_amount_budget and budget_hours:
            # Priced at the senior consultants' list rate: a blended rate, as a proposal would use.
            budget_amount = Money(budget_hours * price(ROLE_BY_CODE["senior-consultant"].list_rate_usd,
                                                       contract.currency).amount, contract.currency)
        projects[spec.code] = _ensure(Project, {"code": spec.code}, {
            "name": spec.name, "client_id": contract.client_id, "contract": contract,
            "manager": members[spec.manager] if spec.manager else None, "billable": spec.billable,
            "start_date": start, "end_date": end, "status": spec.status, "budget_hours": budget_hours,
            "budget_amount": budget_amount, "alert_thresholds": list(spec.alert_thresholds),
        })
    return projects


def _seed_rates(calendar: DemoCalendar, contracts: dict[str, Contract], roles: dict[str, Role],
                members: dict[str, TeamMember], task_types: dict[str, TaskType],
                projects: dict[str, Project]) -> None:
    for contract in contracts.values():
        if not contract.bills_time:
            continue
        currency, start = contract.currency, contract.start_date
        extras = RATE_EXTRAS.get(contract.number, {})
        # (role, member, task type, project, rate in USD, from, to)
        card = [(None, None, None, None, DEFAULT_RATE_USD, start, None)]
        increase = extras.get("increase")
        for spec in ROLES:
            if increase and increase[0] == spec.code:
                change = calendar.window(increase[1])
                card.append((spec.code, None, None, None, spec.list_rate_usd, start, change - dt.timedelta(days=1)))
                card.append((spec.code, None, None, None, increase[2], change, None))
            else:
                card.append((spec.code, None, None, None, spec.list_rate_usd, start, None))
        for task, usd in TASK_RATES_USD.items():
            card.append((None, None, task, None, usd, start, None))
        for (role, task), usd in ROLE_TASK_RATES_USD.items():
            card.append((role, None, task, None, usd, start, None))
        for member, usd in extras.get("members", {}).items():
            card.append((None, member, None, None, usd, start, None))
        for project, usd in extras.get("projects", {}).items():
            card.append((None, None, None, project, usd, start, None))
        for role, member, task, project, usd, effective_from, effective_to in card:
            _ensure(Rate, {
                "contract": contract, "role": roles.get(role), "member": members.get(member),
                "task_type": task_types.get(task), "project": projects.get(project),
                "effective_from": effective_from,
            }, {"hourly_rate": price(usd, currency), "effective_to": effective_to})


def _ingest_time(planned: list[PlannedEntry], members: dict[str, TeamMember], projects: dict[str, Project],
                 task_types: dict[str, TaskType], progress: Callable[[str], None], summary: DemoSummary) -> None:
    by_week: dict[dt.date, list[PlannedEntry]] = defaultdict(list)
    for entry in planned:
        by_week[entry.work_date - dt.timedelta(days=entry.work_date.weekday())].append(entry)

    batch: list[PlannedEntry] = []
    weeks_in_batch: list[dt.date] = []
    mondays = sorted(by_week)
    for monday in mondays:
        batch.extend(by_week[monday])
        weeks_in_batch.append(monday)
        if len(batch) < BATCH_SIZE and monday != mondays[-1]:
            continue
        inputs = [TimeEntryInput(
            member_id=members[entry.member].id, project_id=projects[entry.project].id,
            task_type_id=task_types[entry.task_type].id, work_date=entry.work_date, minutes=entry.minutes,
            description=entry.description, billable=entry.billable, external_id=entry.external_id,
        ) for entry in batch]
        result = ingest(inputs, SOURCE)
        if result.rejected:
            # Demo data is ours: a refused entry is a bug in this module, not something to skip.
            first = result.rejected[0]
            raise RuntimeError(f"The pipeline refused {len(result.rejected)} demo entries, e.g. "
                               f"{batch[first.index].external_id}: {first.summary()}")
        summary.entries_created += len(result.created)
        summary.entries_unchanged += len(result.unchanged)
        weeks = (f"week of {weeks_in_batch[0]}" if len(weeks_in_batch) == 1
                 else f"weeks of {weeks_in_batch[0]} to {weeks_in_batch[-1]}")
        progress(f"  {weeks}: {len(inputs)} entries ({result.summary()})")
        batch, weeks_in_batch = [], []


def seed_demo_firm(
    *,
    weeks: int = DEFAULT_WEEKS,
    today: dt.date | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> DemoSummary:
    """Create (or complete) the demo firm, with `weeks` weeks of time ending last week."""
    if weeks < 1:
        raise ValueError("The demo needs at least one week of time.")
    calendar = DemoCalendar(today=today or timezone.localdate(), weeks=weeks)
    planned = plan_time(calendar, project_spans(calendar))
    progress("Seeding clients, contracts, rate cards, people and projects...")
    with transaction.atomic():
        # The demo firm auto-approves entries up to 2,500.00, so a day at a senior rate is not held,
        # while long days, capped contracts and spend limits still fill the approval queue.
        ApprovalPolicy.objects.update_or_create(
            is_active=True, defaults={"name": "Firm default", "auto_approve_max_amount": Decimal("2500.00")})
        roles, members, task_types = _seed_people()
        contracts = _seed_clients(calendar)
        projects = _seed_projects(calendar, contracts, members, planned)
        _seed_rates(calendar, contracts, roles, members, task_types, projects)

    progress(f"Logging {len(planned)} time entries from {calendar.first_monday} through last week...")
    summary = DemoSummary()
    _ingest_time(planned, members, projects, task_types, progress, summary)

    progress("Billing past months: invoices, payments, a dispute and a credit note...")
    summary.invoices = seed_demo_invoices(first_day=calendar.first_monday, today=calendar.today, progress=progress)

    summary.clients = Client.objects.count()
    summary.contracts = Contract.objects.count()
    summary.members = TeamMember.objects.count()
    summary.projects = Project.objects.count()
    summary.entries = TimeEntry.objects.count()
    return summary
