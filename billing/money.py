"""The one place money is rounded: half up to the currency's minor unit (2 places for our currencies)."""

from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def round_money(value: Decimal) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def amount_for(minutes: int, hourly_rate: Decimal) -> Decimal:
    """round_half_up(minutes x rate / 60, 2): the amount of an entry or of a line's summed minutes."""
    return round_money(Decimal(minutes) * Decimal(hourly_rate) / 60)


def minutes_affordable(left: Decimal, hourly_rate: Decimal) -> int:
    """The largest whole number of minutes whose amount fits in `left`: floor(left x 60 / rate)."""
    if hourly_rate <= 0:
        raise ValueError("A zero rate never exhausts an amount.")
    if left <= 0:
        return 0
    return int((Decimal(left) * 60 / Decimal(hourly_rate)).to_integral_value(rounding=ROUND_FLOOR))


def hours(minutes: int) -> Decimal:
    """Minutes as hours with two places (a line's quantity)."""
    return round_money(Decimal(minutes) / 60)
