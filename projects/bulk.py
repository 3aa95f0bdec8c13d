"""Writing chosen fields of many rows at once, in one statement where the database allows it.

Django's `bulk_update` writes one `CASE WHEN id = … THEN …` per row and field: for a batch of a thousand
entries and a dozen rated fields, building and planning that statement costs seconds. PostgreSQL can
instead join the table to the new values passed as one array per column (`UPDATE … FROM unnest(…)`):
a constant-size statement whatever the number of rows. Other databases keep `bulk_update`.
"""

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model


class Unwritten(list):
    """Objects whose `fields` were changed in memory and not yet written: the step that receives them
    writes those fields together with its own, so each row is updated once (every update of a row costs a
    new version of it and of its index entries)."""

    def __init__(self, objs, fields):
        super().__init__(objs)
        self.fields = list(fields)


# Rows per statement on other databases (SQLite's limit on variables is the binding one there).
FALLBACK_BATCH = 1000
# Fields whose Python values go to PostgreSQL as they are: no per-value preparation needed.
PLAIN_TYPES = {"AutoField", "BigAutoField", "IntegerField", "BigIntegerField", "PositiveIntegerField",
               "PositiveSmallIntegerField", "SmallIntegerField", "BooleanField", "CharField", "TextField",
               "DateField", "ForeignKey", "OneToOneField"}


def update_fields(objs: list[Model], fields: list[str]) -> None:
    """Write `fields` of these saved objects (all of one model) as they are in memory."""
    if not objs:
        return
    model = type(objs[0])
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "postgresql":
        model._default_manager.bulk_update(objs, fields, batch_size=FALLBACK_BATCH)
        return
    opts = model._meta
    pk = opts.pk
    # A money field's name covers its amount column; its currency column is a field of its own in `fields`.
    targets = [opts.get_field(name) for name in fields]
    columns = [pk, *targets]
    quote = connection.ops.quote_name
    table = quote(opts.db_table)
    assignments = ", ".join(f"{quote(field.column)} = new.{quote(field.column)}" for field in targets)
    # Array types without their length or precision (as Django's own UNNEST inserts): a cast to varchar(n)
    # or numeric(p, s) would truncate or round silently, where the column itself refuses a bad value.
    unnest = ", ".join(f"%s::{field.db_type(connection).split('(')[0]}[]" for field in columns)
    names = ", ".join(quote(field.column) for field in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {assignments} FROM unnest({unnest}) AS new ({names}) "
            f"WHERE {table}.{quote(pk.column)} = new.{quote(pk.column)}",
            [_column(objs, field, connection) for field in columns],
        )


def _column(objs: list[Model], field, connection) -> list:
    values = [getattr(obj, field.attname) for obj in objs]
    kind = field.get_internal_type()
    if kind in PLAIN_TYPES:
        return values
    if kind == "DecimalField":
        # A money field's value is Money (or None): its column holds the amount.
        return [getattr(value, "amount", value) for value in values]
    return [field.get_db_prep_save(value, connection) for value in values]
