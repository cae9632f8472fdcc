from __future__ import annotations

from decimal import Decimal

import pytest

from shop import Cart, Inventory


@pytest.fixture
def inventory() -> Inventory:
    return Inventory({"apple": 10, "pear": 5, "melon": 2, "bulk-rice": 500})


@pytest.fixture
def cart(inventory: Inventory) -> Cart:
    return Cart(inventory)


@pytest.fixture
def taxed_cart(inventory: Inventory) -> Cart:
    return Cart(inventory, tax_percent=Decimal(20))
