import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from billing.invoicing import BillingConflict, billing_run_create
from clients.models import Client


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date: use YYYY-MM-DD.") from None


class Command(BaseCommand):
    help = "Turn a period's approved time, fees and retainers into draft invoices."

    def add_arguments(self, parser):
        parser.add_argument("--start", required=True, help="first day of the period, YYYY-MM-DD")
        parser.add_argument("--end", required=True, help="last day of the period, YYYY-MM-DD")
        parser.add_argument("--client", help="bill only the client with this code")

    def handle(self, *args, start, end, client=None, **options):
        start, end = _date(start), _date(end)
        if end < start:
            raise CommandError("--end is before --start.")
        chosen = None
        if client:
            chosen = Client.objects.filter(code=client).first()
            if chosen is None:
                raise CommandError(f"No client with code {client!r}.")
        self.stdout.write(f"Billing {start} to {end}{f' for {chosen.name}' if chosen else ''}...")
        try:
            result = billing_run_create(period_start=start, period_end=end, client=chosen)
        except BillingConflict as conflict:
            raise CommandError(str(conflict)) from None
        for invoice in result.invoices:
            self.stdout.write(f"  draft #{invoice.id} {invoice.client.name}: {invoice.lines.count()} lines, "
                              f"total {invoice.total:,.2f} {invoice.currency}")
        self.stdout.write(self.style.SUCCESS(
            f"Done: {result.run.invoices_created} draft invoices, {result.run.entries_billed} entries billed."))
