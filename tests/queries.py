"""Query-count helpers: batch services must cost the same queries for 10 rows as for 500.

SQLite caps the parameters of one statement, so Django splits a bulk insert or update into chunks;
the tests count those chunks from the same limit instead of pretending they are not there.
"""

from django.db import connection


def split_bulk(captured) -> tuple[int, int, int]:
    """(other statements, bulk insert statements, bulk update statements)."""
    inserts = updates = 0
    for query in captured.captured_queries:
        sql = query["sql"]
        if sql.startswith("INSERT"):
            inserts += 1
        elif sql.startswith("UPDATE") and "CASE WHEN" in sql:
            updates += 1
    return len(captured.captured_queries) - inserts - updates, inserts, updates


def _chunks(size: int, per_statement: int, batch_size: int = 1000) -> int:
    per_statement = min(batch_size, per_statement) if per_statement else batch_size
    return -(-size // per_statement)


def insert_chunks(model, size: int) -> int:
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    return _chunks(size, connection.ops.bulk_batch_size(fields, [None] * size))


def update_chunks(model, field_names, size: int) -> int:
    fields = [model._meta.get_field(name) for name in field_names]
    return _chunks(size, connection.ops.bulk_batch_size(["pk", "pk", *fields], [None] * size))
