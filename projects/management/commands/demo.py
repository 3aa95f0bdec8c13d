"""Seed the demo firm (billing/demo.py) and print its logins; safe to run again."""

from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings

from billing.demo import DEFAULT_WEEKS, database_is_empty, seed_demo_firm
from projects.demo_logins import demo_logins


class Command(BaseCommand):
    help = "Seed a believable demo firm: clients, contracts, rates, people, projects and weeks of time."

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true",
                            help="Do nothing if the database already has clients or time entries.")
        parser.add_argument("--weeks", type=int, default=DEFAULT_WEEKS,
                            help=f"Weeks of time to log, ending last week (default {DEFAULT_WEEKS}).")

    def handle(self, *args, if_empty: bool, weeks: int, **options):
        if weeks < 1:
            raise CommandError("--weeks must be at least 1.")
        if if_empty and not database_is_empty():
            self.stdout.write("The database already has data: no demo seeded.")
            return
        # Seeding raises budget alerts; their emails would bury the progress lines, so they stay in memory.
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
            summary = seed_demo_firm(weeks=weeks, progress=self.stdout.write)
        self.stdout.write(self.style.SUCCESS(
            f"Demo firm ready: {summary.clients} clients, {summary.contracts} contracts, "
            f"{summary.members} team members, {summary.projects} projects, {summary.entries} time entries "
            f"({summary.entries_created} new this run), {summary.invoices} invoices made this run."
        ))
        self.stdout.write("Logins (password in brackets):")
        for role, username, password in demo_logins():
            self.stdout.write(f"  {role:<16} {username}  ({password})")
