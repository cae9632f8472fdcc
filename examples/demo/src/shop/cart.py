"""A shopping cart that reserves stock as items are added."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from shop.discounts import Discount
from shop.inventory import Inventory
from shop.pricing import apply_tax, bulk_unit_price, to_money

SHIPPING = Decimal("4.95")
FREE_SHIPPING_FROM = Decimal("50.00")


@dataclass
class LineItem:
    sku: str
    unit_price: Decimal
    quantity: int

    @property
    def total(self) -> Decimal:
        return to_money(bulk_unit_price(self.unit_price, self.quantity) * self.quantity)


class Cart:
    def __init__(self, inventory: Inventory, tax_percent: Decimal | int = 0) -> None:
        self.inventory = inventory
        self.tax_percent = Decimal(tax_percent)
        self.items: dict[str, LineItem] = {}
        self.discount: Discount | None = None

    def add(self, sku: str, unit_price: Decimal | str, quantity: int = 1) -> None:
        if quantity < 1:
            raise ValueError("quantity must be at least 1")
        self.inventory.reserve(sku, quantity)
        if sku in self.items:
            self.items[sku].quantity += quantity
        else:
            self.items[sku] = LineItem(sku, to_money(unit_price), quantity)

    def remove(self, sku: str) -> None:
        item = self.items.pop(sku)
        self.inventory.release(sku, item.quantity)

    def apply_discount(self, discount: Discount) -> None:
        self.discount = discount

    @property
    def count(self) -> int:
        return sum(item.quantity for item in self.items.values())

    def subtotal(self) -> Decimal:
        return to_money(sum((item.total for item in self.items.values()), Decimal(0)))

    def shipping(self) -> Decimal:
        if not self.items:
            return Decimal("0.00")
        if self.discount is not None and self.discount.free_shipping:
            return Decimal("0.00")
        return Decimal("0.00") if self.subtotal() >= FREE_SHIPPING_FROM else SHIPPING

    def total(self) -> Decimal:
        subtotal = self.subtotal()
        if self.discount is not None:
            subtotal = self.discount.apply(subtotal)
        return apply_tax(subtotal, self.tax_percent) + self.shipping()

    def checkout(self) -> Decimal:
        """Charge the total and ship the reserved stock."""
        total = self.total()
        for sku in list(self.items):
            self.inventory.commit(sku)
        self.items.clear()
        self.discount = None
        return total
