"""python manage.py import_time FILE --format native|toggl|harvest [--dry-run]"""

from django.core.management.base import BaseCommand, CommandError

from billing.csv_import import ImportFormat, import_time_csv


class Command(BaseCommand):
    help = ("Import time entries from a CSV file: a Toggl Track detailed export, a Harvest time export, or "
            "Billable's own format. Rows that cannot be imported are listed with their line numbers; "
            "all other rows are imported.")

    def add_arguments(self, parser):
        parser.add_argument("file", help="path of the CSV file")
        parser.add_argument("--format", dest="file_format", required=True, choices=ImportFormat.values,
                            help="which tool wrote the file")
        parser.add_argument("--dry-run", action="store_true", help="check and report, save nothing")

    def handle(self, *args, file, file_format, dry_run, **options):
        if dry_run:
            self.stdout.write("Dry run: the file is checked in full, nothing is saved.")
        report = import_time_csv(file=file, format=file_format, dry_run=dry_run, acting_user=None,
                                 progress=self.stdout.write)
        if report.file_error:
            raise CommandError(f"{file}: {report.file_error}")

        counts = [
            ("Rows read", report.rows_read),
            ("Would be created" if dry_run else "Created", report.created),
            ("Would be updated" if dry_run else "Updated", report.updated),
            ("Unchanged", report.unchanged),
            ("Conflicts (already invoiced, flagged for finance)", report.conflicts),
            ("Rejected", len(report.rejected)),
        ]
        for label, count in counts:
            self.stdout.write(f"{label}: {count}")
        for row in report.rejected:
            self.stdout.write(f"  line {row.line}: {row.reason}")
        style = self.style.WARNING if report.rejected else self.style.SUCCESS
        self.stdout.write(style(f"{'Dry run' if dry_run else 'Import'} done: {report.summary()}."))
