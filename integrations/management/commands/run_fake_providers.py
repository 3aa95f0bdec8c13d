"""`python manage.py run_fake_providers`: the six fake providers on loopback, for demos.

Seeds Toggl and monday from this database (users with the members' emails, projects and boards named like
ours, plus one stranger and one unknown project, who land in the quarantine) and Salesforce with our
clients as accounts; the fakes of the pushes (Kantata, HubSpot, Harvest) start empty. It prints the
environment to point Billable at them, then logs every request they answer. With --activity N the fakes keep changing: every
N seconds an entry is added, edited or deleted, so each sync has something to do.
"""

import random
import signal
import time
from datetime import UTC, datetime, timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from clients.models import Client
from integrations.fakes import (
    FakeHarvest,
    FakeHubSpot,
    FakeKantata,
    FakeMonday,
    FakeSalesforce,
    FakeToggl,
    LoopbackServer,
)
from projects.models import Project, ProjectStatus, TeamMember


class Command(BaseCommand):
    help = ("Serve fake Toggl Track, monday.com, Salesforce, Kantata, HubSpot and Harvest APIs on 127.0.0.1 "
            "until interrupted.")

    def add_arguments(self, parser):
        parser.add_argument("--toggl-port", type=int, default=8101)
        parser.add_argument("--monday-port", type=int, default=8102)
        parser.add_argument("--salesforce-port", type=int, default=8103)
        parser.add_argument("--kantata-port", type=int, default=8104)
        parser.add_argument("--hubspot-port", type=int, default=8105)
        parser.add_argument("--harvest-port", type=int, default=8106)
        parser.add_argument("--days", type=int, default=10, help="days of seeded history")
        parser.add_argument("--seed", type=int, default=1, help="random seed of the seeded data")
        parser.add_argument("--activity", type=float, default=0, help="seconds between changes (0: none)")
        parser.add_argument("--fail-ratio", type=float, default=0, help="share of requests that fail (429/5xx)")
        parser.add_argument("--webhook-secret", default="demo-toggl-webhook-secret")
        parser.add_argument("--toggl-webhook-url", default="",
                            help="also deliver each Toggl change as a signed webhook to this URL, e.g. "
                                 "http://127.0.0.1:8000/api/v1/webhooks/toggl/")

    def handle(self, *args, toggl_port, monday_port, salesforce_port, kantata_port, hubspot_port, harvest_port,
               days, seed, activity, fail_ratio, webhook_secret, toggl_webhook_url, **options):
        rng = random.Random(seed)
        toggl, monday = FakeToggl(webhook_secret=webhook_secret), FakeMonday()
        board_ids = self._seed(toggl, monday, rng, days)
        salesforce, kantata, hubspot, harvest = FakeSalesforce(), FakeKantata(), FakeHubSpot(), FakeHarvest()
        # Salesforce knows our clients as accounts (matched by number); the pushes start from empty fakes.
        for client in Client.objects.filter(is_active=True).order_by("id")[:20]:
            salesforce.add_account(client.name, AccountNumber=client.code, CurrencyIsoCode=client.currency)
        fakes = (toggl, monday, salesforce, kantata, hubspot, harvest)
        if fail_ratio:
            for fake in fakes:
                fake.fail_randomly(fail_ratio, seed=seed)
        ports = (toggl_port, monday_port, salesforce_port, kantata_port, hubspot_port, harvest_port)
        servers = [LoopbackServer(fake, port=port).start() for fake, port in zip(fakes, ports, strict=True)]
        self.stdout.write(self.style.SUCCESS("Fake providers are running. Point Billable at them with:"))
        for line in (f"TOGGL_BASE_URL={servers[0].url}", f"TOGGL_API_TOKEN={toggl.token}",
                     f"TOGGL_WORKSPACE_ID={toggl.workspace_id}", f"TOGGL_WEBHOOK_SECRET={webhook_secret}",
                     f"MONDAY_BASE_URL={servers[1].url}", f"MONDAY_API_TOKEN={monday.token}",
                     f"MONDAY_BOARD_IDS={','.join(board_ids)}",
                     f"SALESFORCE_BASE_URL={servers[2].url}", f"SALESFORCE_CLIENT_ID={salesforce.client_id}",
                     f"SALESFORCE_CLIENT_SECRET={salesforce.client_secret}",
                     f"KANTATA_BASE_URL={servers[3].url}", f"KANTATA_API_TOKEN={kantata.token}",
                     f"HUBSPOT_BASE_URL={servers[4].url}", f"HUBSPOT_API_TOKEN={hubspot.token}",
                     f"HARVEST_BASE_URL={servers[5].url}", f"HARVEST_API_TOKEN={harvest.token}",
                     f"HARVEST_ACCOUNT_ID={harvest.account_id}"):
            self.stdout.write(f"  export {line}")
        self.stdout.write("Then run `python manage.py sync toggl` (or monday, salesforce, kantata, hubspot, "
                          "harvest), or leave it to the schedules.\n"
                          "Press Ctrl-C to stop.")
        stopping = []
        signal.signal(signal.SIGTERM, lambda *a: stopping.append(True))
        logged = dict.fromkeys(fakes, 0)
        next_change = time.monotonic() + activity if activity else None
        try:
            while not stopping:
                time.sleep(0.5)
                for fake in fakes:
                    for request in fake.requests[logged[fake]:]:
                        self.stdout.write(f"{timezone.localtime():%H:%M:%S} {fake.name:<10} {request.method} "
                                          f"{request.path} -> {request.status}")
                    logged[fake] = len(fake.requests)
                if next_change and time.monotonic() >= next_change:
                    self.stdout.write(f"  change: {self._change(toggl, monday, rng, toggl_webhook_url)}")
                    next_change = time.monotonic() + activity
        except KeyboardInterrupt:
            pass
        finally:
            for server in servers:
                server.stop()
            self.stdout.write("Stopped.")

    def _seed(self, toggl: FakeToggl, monday: FakeMonday, rng: random.Random, days: int) -> list[str]:
        members = list(TeamMember.objects.filter(is_active=True).order_by("id")[:8])
        projects = list(Project.objects.filter(status=ProjectStatus.ACTIVE).order_by("id")[:4])
        today = timezone.localdate()
        toggl_users = [toggl.add_user(m.email, m.name) for m in members]
        toggl_users.append(toggl.add_user("contractor@elsewhere.test", "Unknown Contractor"))
        toggl_projects = [toggl.add_project(p.name) for p in projects] + [toggl.add_project("Not in Billable")]
        monday_users = [monday.add_user(m.email, m.name) for m in members]
        boards = [monday.add_board(p.code) for p in projects]
        for offset in range(days, 0, -1):
            day = today - timedelta(days=offset)
            if day.weekday() >= 5:
                continue
            for user in toggl_users:
                start = datetime(day.year, day.month, day.day, 9, tzinfo=UTC) + timedelta(minutes=rng.randrange(0, 240))
                toggl.add_entry(user_id=user, project_id=rng.choice(toggl_projects), start=start,
                                seconds=rng.randrange(30, 240) * 60, description=rng.choice(
                                    ["Workshop", "Analysis", "Build", "Review", "Calls"]))
        if toggl_users:
            toggl.add_entry(user_id=toggl_users[0], project_id=toggl_projects[0], description="Running timer",
                            start=datetime.now(UTC) - timedelta(minutes=20), seconds=None)
        for board in boards:
            for number in range(3):
                people = [rng.choice(monday_users)] if monday_users else []
                item = monday.add_item(board, f"Task {number + 1}", people=people)
                for offset in range(min(days, 5), 0, -1):
                    start = datetime.now(UTC).replace(hour=13, minute=0, second=0, microsecond=0) - timedelta(
                        days=offset)
                    monday.add_session(item, user_id=people[0] if people else "0", started_at=start,
                                       ended_at=start + timedelta(minutes=rng.randrange(15, 120)))
        return boards

    def _change(self, toggl: FakeToggl, monday: FakeMonday, rng: random.Random, webhook_url: str) -> str:
        live = [e for e in toggl.entries.values() if not e["server_deleted_at"] and e["stop"] is not None]
        choice = rng.random()
        items = [item for item in monday.items.values() if item["state"] == "active" and item["people"]]
        if choice < 0.25 and items:
            item = rng.choice(items)
            start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
            session = monday.add_session(item["id"], user_id=item["people"][0], started_at=start,
                                         ended_at=start + timedelta(minutes=rng.randrange(10, 50)))
            return f"monday session {item['id']}:{session} added"
        if choice < 0.5 or not live:
            user = rng.choice(list(toggl.users))
            entry = toggl.add_entry(user_id=user, project_id=rng.choice(list(toggl.projects)),
                                    start=datetime.now(UTC) - timedelta(hours=2), seconds=rng.randrange(15, 90) * 60,
                                    description="Fresh work")
            return f"toggl entry {entry['id']} added" + self._deliver(toggl, webhook_url, "created", entry)
        entry = rng.choice(live)
        if choice < 0.8:
            toggl.edit_entry(entry["id"], seconds=entry["duration"] + 15 * 60)
            return (f"toggl entry {entry['id']} lengthened by 15 minutes"
                    + self._deliver(toggl, webhook_url, "updated", entry))
        toggl.delete_entry(entry["id"])
        return f"toggl entry {entry['id']} deleted" + self._deliver(toggl, webhook_url, "deleted", entry)

    @staticmethod
    def _deliver(toggl: FakeToggl, url: str, action: str, entry: dict) -> str:
        if not url:
            return ""
        try:
            status, _ = toggl.deliver(url, toggl.event(action, entry["id"]))
        except OSError as error:
            return f" (webhook not delivered: {error})"
        return f" (webhook {action}: {status})"
