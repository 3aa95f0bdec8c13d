from django.core.management.base import BaseCommand

from config.schedules import schedules, sync_schedules


class Command(BaseCommand):
    help = "Create or update every django-q2 schedule defined in config/schedules.py."

    def handle(self, *args, **options):
        created, updated = sync_schedules()
        for definition in schedules():
            self.stdout.write(f"  {definition['name']}: {definition['func']}")
        self.stdout.write(self.style.SUCCESS(f"Schedules: {created} created, {updated} updated."))
