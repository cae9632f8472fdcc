"""Discount codes: ``SAVE<percent>``, ``FLAT<amount>`` and ``FREESHIP``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from shop.pricing import to_money

_CODE = re.compile(r"^(SAVE(?P<percent>\d{1,2})|FLAT(?P<amount>\d+(\.\d\d)?)|FREESHIP)$")


@dataclass(frozen=True)
class Discount:
    code: str
    percent: Decimal = Decimal(0)
    amount: Decimal = Decimal(0)
    free_shipping: bool = False

    def apply(self, subtotal: Decimal) -> Decimal:
        """The subtotal after this discount; never below zero."""
        reduced = subtotal * (1 - self.percent / 100) - self.amount
        return max(to_money(reduced), Decimal("0.00"))


def parse_code(raw: str) -> Discount:
    """Parse a code as a customer types it (any case, stray spaces)."""
    code = raw.strip().upper().replace(" ", "")
    match = _CODE.match(code)
    if match is None:
        raise ValueError(f"unknown discount code: {raw!r}")
    if match["percent"] is not None:
        percent = Decimal(match["percent"])
        if percent == 0:
            raise ValueError("SAVE0 is not a discount")
        return Discount(code, percent=percent)
    if match["amount"] is not None:
        return Discount(code, amount=Decimal(match["amount"]))
    return Discount(code, free_shipping=True)
