"""Receipt lines and coupon codes. No tests yet: `aqe generate shop.receipts` writes them."""

from __future__ import annotations

import re
from decimal import Decimal
from enum import Enum
from typing import Literal

COUPON = re.compile(r"(SAVE|SHIP)-(\d{2})-([A-Z]{3})")


class Currency(Enum):
    EUR = "€"
    USD = "$"
    GBP = "£"


class BadCoupon(ValueError):
    """A coupon code that does not follow the printed format."""


def parse_coupon(code: str) -> tuple[str, int, str]:
    """Split ``SAVE-10-ABC`` into kind, value and batch.

    >>> parse_coupon("SHIP-05-XYZ")
    ('SHIP', 5, 'XYZ')
    """
    match = COUPON.fullmatch(code.strip().upper())
    if match is None:
        raise BadCoupon(f"coupon {code!r} is not like SAVE-10-ABC")
    kind, value, batch = match.groups()
    if kind == "SAVE" and int(value) > 50:
        raise BadCoupon(f"coupon {code!r} saves more than 50%")
    return kind, int(value), batch


def format_coupon(kind: str, value: int, batch: str) -> str:
    return f"{kind}-{value:02d}-{batch}"


def money(amount: Decimal, currency: Currency = Currency.EUR,
          style: Literal["symbol", "code"] = "symbol") -> str:
    rounded = amount.quantize(Decimal("0.01"))
    if rounded < 0:
        return "-" + money(-rounded, currency, style)
    if style == "code":
        return f"{rounded} {currency.name}"
    if currency is Currency.EUR:
        return f"{rounded} {currency.value}"
    return f"{currency.value}{rounded}"


def receipt_line(name: str, quantity: int, unit: Decimal, width: int = 32) -> str:
    if quantity < 1:
        raise ValueError("quantity must be at least 1")
    if width < 12:
        raise ValueError(f"width {width} is too narrow for a receipt")
    label = name if quantity == 1 else f"{quantity} x {name}"
    price = money(unit * quantity)
    room = width - len(price) - 1
    if len(label) > room:
        label = label[: max(room - 1, 0)] + "…"
    return f"{label:<{room}} {price}"
