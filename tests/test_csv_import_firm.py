"""The firm the CSV import tests import into, and helpers to write CSV files (no tests here).

Names match the files in tests/data/: Ada Lovelace and Grace Hopper; Acme Corp (EUR) with projects
Website Redesign (acme-web), Support (acme-support) and the archived Old Site (acme-old); Globex, Inc.
(USD) with Data Migration (glx-data); task types Development (dev), Design, Meeting and the default
General.
"""

import datetime as dt
from pathlib import Path
from types import SimpleNamespace

from projects.models import ProjectStatus
from tests.factories import (
    ClientFactory,
    ContractFactory,
    ProjectFactory,
    TaskTypeFactory,
    TeamMemberFactory,
    UserFactory,
)

DATA = Path(__file__).resolve().parent / "data"

TOGGL_HEADER = ("User,Email,Client,Project,Task,Description,Billable,Start date,Start time,End date,End time,"
                "Duration,Tags,Amount (EUR)")


def member(email: str, name: str):
    return TeamMemberFactory(user=UserFactory(username=email, roles=["staff"]), email=email, name=name)


def build_firm() -> SimpleNamespace:
    acme = ContractFactory(client=ClientFactory(code="acme", name="Acme Corp", currency="EUR"))
    globex = ContractFactory(client=ClientFactory(code="globex", name="Globex, Inc.", currency="USD"))
    return SimpleNamespace(
        ada=member("ada@firm.test", "Ada Lovelace"),
        grace=member("grace@firm.test", "Grace Hopper"),
        website=ProjectFactory(contract=acme, code="acme-web", name="Website Redesign"),
        support=ProjectFactory(contract=acme, code="acme-support", name="Support"),
        old_site=ProjectFactory(contract=acme, code="acme-old", name="Old Site", status=ProjectStatus.ARCHIVED),
        migration=ProjectFactory(contract=globex, code="glx-data", name="Data Migration",
                                 end_date=dt.date(2026, 12, 31)),
        development=TaskTypeFactory(code="dev", name="Development"),
        design=TaskTypeFactory(code="design", name="Design"),
        meeting=TaskTypeFactory(code="meeting", name="Meeting", billable=False),
        general=TaskTypeFactory(code="general", name="General", is_default=True),
    )


def toggl_rows(count: int, *, emails=("ada@firm.test", "grace@firm.test"),
               projects=("Website Redesign", "Support")) -> str:
    """A Toggl export of `count` distinct half-hour entries spread over 100 days."""
    lines = [TOGGL_HEADER]
    for i in range(count):
        day = dt.date(2026, 3, 1) + dt.timedelta(days=i % 100)
        start = dt.time(8 + (i // 100) % 10, 0)
        end = dt.time(start.hour, 30)
        lines.append(f"Someone,{emails[i % len(emails)]},Acme Corp,{projects[i % len(projects)]},Development,"
                     f"Entry {i},Yes,{day},{start},{day},{end},00:30:00,,60.00")
    return "\n".join(lines) + "\n"


def write(tmp_path: Path, text: str | bytes, name: str = "export.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path
