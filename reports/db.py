"""Database expressions the reports need on PostgreSQL and SQLite alike.

PostgreSQL computes percentiles itself (`percentile_cont`). SQLite has no ordered-set aggregates, so
there the selectors read one ordered list of values per group in a single query and interpolate the same
way `percentile_cont` does (`percentile_cont` below); that is the documented fallback.
"""

import math
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.db.models import Aggregate, FloatField, Func, IntegerField


class DaysBetween(Func):
    """Whole days from the second date to the first (`later - earlier`), as an integer."""

    output_field = IntegerField()
    arity = 2

    def as_sql(self, compiler, connection, **extra_context):
        # PostgreSQL: date - date is an integer number of days.
        return super().as_sql(
            compiler, connection, template="(%(expressions)s)", arg_joiner=" - ", **extra_context
        )

    def as_sqlite(self, compiler, connection, **extra_context):
        return super().as_sql(
            compiler,
            connection,
            template="CAST(julianday(%(expressions)s) AS INTEGER)",
            arg_joiner=") - julianday(",
            **extra_context,
        )


class PercentileCont(Aggregate):
    """PostgreSQL's `percentile_cont(fraction) WITHIN GROUP (ORDER BY value)`: linear interpolation."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()
    allow_distinct = False

    def __init__(self, expression, fraction: float, **extra):
        if not 0 <= fraction <= 1:
            raise ValueError("A percentile is a fraction between 0 and 1.")
        super().__init__(expression, fraction=repr(float(fraction)), **extra)

    def as_sqlite(self, compiler, connection, **extra_context):
        raise NotImplementedError("SQLite has no percentile_cont; use the ordered-values fallback.")


def database_has_percentiles() -> bool:
    return connection.vendor == "postgresql"


def percentile_cont(ordered: Sequence[float], fraction: float) -> float | None:
    """What PostgreSQL's percentile_cont returns for these values, which must be sorted ascending."""
    if not ordered:
        return None
    position = fraction * (len(ordered) - 1)
    lower, upper = math.floor(position), math.ceil(position)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def one_place(value) -> Decimal | None:
    """A figure shown with one decimal place, rounded half up (percentages, days)."""
    if value is None:
        return None
    return Decimal(str(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
