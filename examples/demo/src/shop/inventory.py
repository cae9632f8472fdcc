"""Stock levels with reservations."""

from __future__ import annotations


class OutOfStock(Exception):
    def __init__(self, sku: str, wanted: int, available: int) -> None:
        super().__init__(f"{sku}: wanted {wanted}, only {available} available")
        self.sku = sku
        self.wanted = wanted
        self.available = available


class Inventory:
    def __init__(self, stock: dict[str, int] | None = None) -> None:
        self._stock: dict[str, int] = dict(stock or {})
        self._reserved: dict[str, int] = {}

    def restock(self, sku: str, quantity: int) -> None:
        if quantity <= 0:
            raise ValueError("restock quantity must be positive")
        self._stock[sku] = self._stock.get(sku, 0) + quantity

    def available(self, sku: str) -> int:
        return self._stock.get(sku, 0) - self._reserved.get(sku, 0)

    def reserve(self, sku: str, quantity: int) -> None:
        available = self.available(sku)
        if quantity > available:
            raise OutOfStock(sku, quantity, available)
        self._reserved[sku] = self._reserved.get(sku, 0) + quantity

    def release(self, sku: str, quantity: int) -> None:
        reserved = self._reserved.get(sku, 0)
        if quantity > reserved:
            raise ValueError(f"{sku}: cannot release {quantity}, only {reserved} reserved")
        self._reserved[sku] = reserved - quantity

    def commit(self, sku: str) -> int:
        """Ship everything reserved for ``sku``; returns how many items left."""
        shipped = self._reserved.pop(sku, 0)
        self._stock[sku] = self._stock.get(sku, 0) - shipped
        return shipped
