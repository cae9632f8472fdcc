from __future__ import annotations

from decimal import Decimal

import pytest

from shop.pricing import apply_tax, bulk_unit_price, to_money


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2.675", "2.68"),
        ("2.665", "2.67"),
        ("0.005", "0.01"),
        ("10", "10.00"),
    ],
)
def test_to_money_rounds_half_up(raw: str, expected: str) -> None:
    assert to_money(raw) == Decimal(expected)


def test_to_money_rejects_floats() -> None:
    with pytest.raises(TypeError, match="not float"):
        to_money(2.675)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("net", "rate", "gross"),
    [("100.00", 20, "120.00"), ("9.99", 7, "10.69"), ("0.00", 19, "0.00"), ("5.00", 0, "5.00")],
    ids=["vat-20", "sales-7", "zero-net", "no-tax"],
)
def test_apply_tax(net: str, rate: int, gross: str) -> None:
    assert apply_tax(Decimal(net), rate) == Decimal(gross)


def test_negative_tax_rate_is_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        apply_tax(Decimal("10"), -5)


@pytest.mark.parametrize(
    ("quantity", "unit"),
    [(1, "2.00"), (9, "2.00"), (10, "1.80"), (100, "1.60")],
)
def test_bulk_tiers(quantity: int, unit: str) -> None:
    assert bulk_unit_price(Decimal("2.00"), quantity) == Decimal(unit)


def test_bulk_price_needs_a_quantity() -> None:
    with pytest.raises(ValueError):
        bulk_unit_price(Decimal("2.00"), 0)


def test_deliberately_failing_rounding_bug() -> None:
    """Fails on purpose, to show what a failure looks like in aqe's report.

    It rounds money with floats, which is exactly the bug ``to_money`` avoids:
    2.675 is stored as 2.67499999..., so ``round`` gives 2.67, not 2.68.
    """
    assert round(2.675, 2) == 2.68
