"""CSV import of time: Toggl Track and Harvest exports as those tools write them, and our own format.

`import_time_csv` reads a file, matches its people, projects and task types to ours (one query per
table for the whole file), records the rows through `billing.pipeline.ingest`, and answers with an
`ImportReport`: counts, and every rejected row with its line number and reason. The management
command `import_time` and the finance upload page both call it.
"""

from billing.csv_import.formats import ImportFormat
from billing.csv_import.importer import ImportReport, RejectedRow, import_time_csv

__all__ = ["ImportFormat", "ImportReport", "RejectedRow", "import_time_csv"]
