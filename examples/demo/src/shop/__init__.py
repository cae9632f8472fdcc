"""A toy shop: prices, a cart, an inventory and discount codes."""

from shop.cart import Cart, LineItem
from shop.discounts import Discount, parse_code
from shop.inventory import Inventory, OutOfStock
from shop.pricing import apply_tax, bulk_unit_price, to_money

__all__ = [
    "Cart",
    "Discount",
    "Inventory",
    "LineItem",
    "OutOfStock",
    "apply_tax",
    "bulk_unit_price",
    "parse_code",
    "to_money",
]
