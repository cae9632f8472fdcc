"""Money arithmetic. Prices are Decimals rounded half-up to cents."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")

#: Unit price multiplier by minimum quantity, highest threshold first.
BULK_TIERS: tuple[tuple[int, Decimal], ...] = (
    (100, Decimal("0.80")),
    (10, Decimal("0.90")),
    (1, Decimal("1.00")),
)


def to_money(value: Decimal | int | str) -> Decimal:
    """Round to cents, half up (the way a shop rounds, not the way floats do)."""
    if isinstance(value, float):
        raise TypeError("use Decimal or str for money, not float")
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def apply_tax(net: Decimal, rate_percent: Decimal | int | str) -> Decimal:
    """Gross price for a net price and a tax rate in percent."""
    rate = Decimal(rate_percent)
    if rate < 0:
        raise ValueError(f"tax rate must not be negative, got {rate}")
    return to_money(net * (1 + rate / 100))


def bulk_unit_price(unit_price: Decimal, quantity: int) -> Decimal:
    """Unit price after the bulk discount for ``quantity`` items."""
    if quantity < 1:
        raise ValueError(f"quantity must be at least 1, got {quantity}")
    for threshold, factor in BULK_TIERS:
        if quantity >= threshold:
            return to_money(unit_price * factor)
    raise AssertionError("unreachable: the last tier starts at 1")
