from __future__ import annotations

from decimal import Decimal

import pytest

from shop.discounts import Discount, parse_code


@pytest.mark.parametrize(
    ("raw", "percent", "amount", "free_shipping"),
    [
        ("SAVE10", "10", "0", False),
        ("  save25 ", "25", "0", False),
        ("FLAT5", "0", "5", False),
        ("flat 7.50", "0", "7.50", False),
        ("FreeShip", "0", "0", True),
    ],
    ids=["percent", "percent-messy", "flat", "flat-cents", "free-shipping"],
)
def test_parse_valid_codes(raw: str, percent: str, amount: str, free_shipping: bool) -> None:
    discount = parse_code(raw)
    assert discount.percent == Decimal(percent)
    assert discount.amount == Decimal(amount)
    assert discount.free_shipping is free_shipping


@pytest.mark.parametrize("raw", ["", "SAVE100", "SAVE0", "HALFOFF"])
def test_parse_invalid_codes(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_code(raw)


def test_percent_discount_applies() -> None:
    assert parse_code("SAVE10").apply(Decimal("50.00")) == Decimal("45.00")


def test_flat_discount_never_goes_negative() -> None:
    assert Discount("FLAT20", amount=Decimal(20)).apply(Decimal("12.00")) == Decimal("0.00")
