from __future__ import annotations

import time
from decimal import Decimal

import pytest

from shop import Cart, Inventory, OutOfStock, parse_code


def test_empty_cart(cart: Cart) -> None:
    assert cart.count == 0
    assert cart.total() == Decimal("0.00")


def test_add_reserves_stock(cart: Cart, inventory: Inventory) -> None:
    cart.add("melon", "3.50", 2)
    assert inventory.available("melon") == 0
    with pytest.raises(OutOfStock):
        cart.add("melon", "3.50")


def test_adding_twice_merges_lines(cart: Cart) -> None:
    cart.add("apple", "0.40", 2)
    cart.add("apple", "0.40", 3)
    assert len(cart.items) == 1
    assert cart.count == 5


def test_remove_releases_stock(cart: Cart, inventory: Inventory) -> None:
    cart.add("pear", "0.75", 5)
    cart.remove("pear")
    assert inventory.available("pear") == 5
    assert cart.count == 0


class TestTotals:
    def test_small_order_pays_shipping(self, cart: Cart) -> None:
        cart.add("apple", "0.40", 2)
        assert cart.total() == Decimal("0.80") + Decimal("4.95")

    def test_large_order_ships_free(self, cart: Cart) -> None:
        cart.add("bulk-rice", "1.00", 60)
        assert cart.shipping() == Decimal("0.00")
        assert cart.total() == Decimal("54.00")

    def test_tax_is_added(self, taxed_cart: Cart) -> None:
        taxed_cart.add("melon", "25.00", 2)
        assert taxed_cart.total() == Decimal("60.00")

    @pytest.mark.parametrize(
        ("code", "total"),
        [("SAVE10", "8.55"), ("FLAT1", "7.95"), ("FREESHIP", "4.00")],
    )
    def test_discount_codes(self, cart: Cart, code: str, total: str) -> None:
        cart.add("pear", "1.00", 4)
        cart.apply_discount(parse_code(code))
        assert cart.total() == Decimal(total)


def test_checkout_ships_and_empties(cart: Cart, inventory: Inventory) -> None:
    cart.add("apple", "0.40", 10)
    assert cart.checkout() == Decimal("3.60") + Decimal("4.95")
    assert cart.count == 0
    assert inventory.available("apple") == 0


@pytest.mark.slow
def test_checkout_with_payment_gateway(cart: Cart) -> None:
    """Stands in for a slow end-to-end checkout."""
    time.sleep(0.25)
    cart.add("pear", "2.00", 5)
    cart.apply_discount(parse_code("SAVE50"))
    assert cart.checkout() == Decimal("5.00") + Decimal("4.95")


@pytest.mark.slow
def test_abandoned_cart_expiry(cart: Cart, inventory: Inventory) -> None:
    time.sleep(0.15)
    cart.add("melon", "3.00", 2)
    cart.remove("melon")
    assert inventory.available("melon") == 2
