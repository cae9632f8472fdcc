from __future__ import annotations

import time

import pytest

from shop.inventory import Inventory, OutOfStock


class TestReservations:
    def test_reserve_reduces_availability(self, inventory: Inventory) -> None:
        inventory.reserve("apple", 3)
        assert inventory.available("apple") == 7

    def test_cannot_reserve_more_than_available(self, inventory: Inventory) -> None:
        with pytest.raises(OutOfStock) as excinfo:
            inventory.reserve("melon", 3)
        assert (excinfo.value.wanted, excinfo.value.available) == (3, 2)

    def test_release_returns_stock(self, inventory: Inventory) -> None:
        inventory.reserve("pear", 5)
        inventory.release("pear", 2)
        assert inventory.available("pear") == 2

    def test_cannot_release_unreserved(self, inventory: Inventory) -> None:
        with pytest.raises(ValueError, match="only 0 reserved"):
            inventory.release("pear", 1)

    def test_commit_ships_reserved(self, inventory: Inventory) -> None:
        inventory.reserve("apple", 4)
        assert inventory.commit("apple") == 4
        assert inventory.available("apple") == 6


def test_unknown_sku_has_no_stock(inventory: Inventory) -> None:
    assert inventory.available("durian") == 0


@pytest.mark.parametrize("quantity", [0, -1])
def test_restock_rejects_non_positive(inventory: Inventory, quantity: int) -> None:
    with pytest.raises(ValueError):
        inventory.restock("apple", quantity)


@pytest.mark.slow
def test_warehouse_sync(inventory: Inventory) -> None:
    """Stands in for a slow integration test against a warehouse API."""
    time.sleep(0.3)
    inventory.restock("melon", 8)
    assert inventory.available("melon") == 10


@pytest.mark.slow
def test_nightly_recount() -> None:
    time.sleep(0.2)
    inventory = Inventory()
    for _ in range(100):
        inventory.restock("bolt", 1)
    assert inventory.available("bolt") == 100
