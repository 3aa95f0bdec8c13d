"""The file formats the import reads, and what each needs from the header."""

from collections.abc import Callable
from dataclasses import dataclass

from django.db import models

from billing.csv_import import harvest, native, toggl
from billing.csv_import.parsing import ParsedEntry
from billing.csv_import.reading import Row, column_key
from projects.models import EntrySource


class ImportFormat(models.TextChoices):
    NATIVE = "native", "Billable CSV (email, project, task_type, work_date, minutes...)"
    TOGGL = "toggl", "Toggl Track detailed export"
    HARVEST = "harvest", "Harvest detailed time export"


@dataclass(frozen=True)
class FileFormat:
    name: str
    label: str
    source: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    parse: Callable[[list[Row]], list[ParsedEntry]]

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.required, *self.optional)

    def missing(self, header: list[str]) -> list[str]:
        present = {column_key(cell) for cell in header}
        return [name for name in self.required if column_key(name) not in present]


FORMATS = {
    ImportFormat.NATIVE: FileFormat(ImportFormat.NATIVE, "Billable CSV", EntrySource.CSV,
                                    native.REQUIRED, native.OPTIONAL, native.parse),
    ImportFormat.TOGGL: FileFormat(ImportFormat.TOGGL, "Toggl Track detailed export", EntrySource.TOGGL,
                                   toggl.REQUIRED, toggl.OPTIONAL, toggl.parse),
    ImportFormat.HARVEST: FileFormat(ImportFormat.HARVEST, "Harvest time export", EntrySource.HARVEST,
                                     harvest.REQUIRED, harvest.OPTIONAL, harvest.parse),
}
