"""Writing chosen fields of many rows at once, in one statement where the database allows it.

Django's `bulk_update` writes one `CASE WHEN id = … THEN …` per row and field: for a batch of a thousand
entries and a dozen rated fields, building and planning that statement costs seconds. PostgreSQL can
instead join the table to the new values passed as one array per column (`UPDATE … FROM unnest(…)`):
a constant-size statement whatever the number of rows. Other databases keep `bulk_update`.

New rows go in the same way (`INSERT … SELECT FROM unnest(…)`, as Django's own `bulk_create` does for
simple fields), without the per-value preparation of every field that costs `bulk_create` most of its time.
"""

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model
from django.db.models.fields import AutoFieldMixin
from django.utils import timezone


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


def create_all(objs: list[Model]) -> list[Model]:
    """Insert these new objects (all of one model, with no primary key yet) and give them their ids."""
    if not objs:
        return objs
    model = type(objs[0])
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "postgresql":
        return model._default_manager.bulk_create(objs, batch_size=FALLBACK_BATCH)
    opts = model._meta
    fields = [field for field in opts.concrete_fields if not field.primary_key]
    with connection.cursor() as cursor:
        cursor.execute(f"{_insert(objs, fields, connection)} RETURNING {connection.ops.quote_name(opts.pk.column)}",
                       [_column(objs, field, connection) for field in fields])
        ids = [row[0] for row in cursor.fetchall()]
    # Rows come back in the order of the arrays (Django's UNNEST inserts rely on it too).
    for obj, pk in zip(objs, ids, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = DEFAULT_DB_ALIAS
    return objs


def upsert_all(objs: list[Model], unique_fields: list[str]) -> None:
    """Insert these objects, or update every other field of the rows that have their `unique_fields`."""
    if not objs:
        return
    model = type(objs[0])
    opts = model._meta
    fields = [field for field in opts.concrete_fields if not isinstance(field, AutoFieldMixin)]
    unique = [opts.get_field(name) for name in unique_fields]
    others = [field for field in fields if field not in unique]
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(objs, batch_size=FALLBACK_BATCH, update_conflicts=True,
                                           unique_fields=unique_fields, update_fields=[f.name for f in others])
        return
    quote = connection.ops.quote_name
    conflict = ", ".join(quote(field.column) for field in unique)
    assignments = ", ".join(f"{quote(field.column)} = EXCLUDED.{quote(field.column)}" for field in others)
    with connection.cursor() as cursor:
        cursor.execute(f"{_insert(objs, fields, connection)} ON CONFLICT ({conflict}) DO UPDATE SET {assignments}",
                       [_column(objs, field, connection) for field in fields])


def _insert(objs: list[Model], fields, connection) -> str:
    """`INSERT … SELECT FROM unnest(…)` of these fields, one array parameter per field."""
    # What `pre_save` does for these fields, once for the batch instead of once per row and field.
    now = timezone.now()
    for field in fields:
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            for obj in objs:
                setattr(obj, field.attname, now)
    quote = connection.ops.quote_name
    names = ", ".join(quote(field.column) for field in fields)
    unnest = ", ".join(f"%s::{field.db_type(connection).split('(')[0]}[]" for field in fields)
    return f"INSERT INTO {quote(objs[0]._meta.db_table)} ({names}) SELECT * FROM unnest({unnest})"


def _column(objs: list[Model], field, connection) -> list:
    kind = field.get_internal_type()
    if kind == "DecimalField":
        # A money field keeps its amount (or a Money made from it on reading) in the instance's dict:
        # read it there rather than through the field, which builds a Money for every value.
        return [_amount(obj, field.attname) for obj in objs]
    values = [getattr(obj, field.attname) for obj in objs]
    if kind in PLAIN_TYPES:
        return values
    if kind == "DateTimeField" and all(value is None or getattr(value, "tzinfo", None) is not None
                                       for value in values):
        # Aware datetimes go as they are; a naive one needs Django's conversion (and warning).
        return values
    return [field.get_db_prep_save(value, connection) for value in values]


def _amount(obj: Model, attname: str):
    # A deferred field is not in the dict: reading it through the field loads it.
    value = obj.__dict__[attname] if attname in obj.__dict__ else getattr(obj, attname)
    return getattr(value, "amount", value)
