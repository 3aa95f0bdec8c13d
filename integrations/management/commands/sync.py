"""`python manage.py sync <provider> [--stream name]`: one run now, with progress lines and a summary."""

from django.core.management.base import BaseCommand, CommandError

from integrations.models import RunStatus
from integrations.providers import providers_with_streams, streams_of
from integrations.runs import NotConfigured, StreamBusy, run_stream


class Command(BaseCommand):
    help = "Sync one provider now (the schedules do the same in the background)."

    def add_arguments(self, parser):
        parser.add_argument("provider", choices=providers_with_streams())
        parser.add_argument("--stream", help="one of the provider's streams (default: its first)")

    def handle(self, *args, provider, stream=None, **options):
        if stream and stream not in {s.name for s in streams_of(provider)}:
            raise CommandError(f"{provider} has no stream {stream!r}.")
        self.stdout.write(f"Syncing {provider}...")
        try:
            run = run_stream(provider=provider, stream=stream, trigger="command",
                             progress=lambda message: self.stdout.write(f"  {message}"))
        except (NotConfigured, StreamBusy) as refused:
            raise CommandError(str(refused)) from None
        errors = [line for line in run.errors.splitlines() if line.strip()]
        summary = (f"{run.get_status_display()}: {run.created} created, {run.updated} updated, "
                   f"{run.unchanged} unchanged, {run.deleted} deleted, {run.conflicts} conflicts, "
                   f"{run.quarantined} quarantined, {run.skipped} skipped (running), {run.retries} retries, "
                   f"{len(errors)} errors.")
        for line in errors:
            self.stdout.write(self.style.WARNING(f"  ! {line}"))
        if run.status == RunStatus.FAILED:
            raise CommandError(summary)
        self.stdout.write(self.style.SUCCESS(summary))
