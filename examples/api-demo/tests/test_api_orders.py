"""Contract tests for the 'orders' operations of Inventory API 1.0.0.

Written by `aqe generate api` from openapi.yaml; regenerate with:

    aqe generate api openapi.yaml --app app:app --out tests

Every call is checked by the `check` fixture (conftest.py): a documented status, a
body valid against its schema, the declared content type and headers, never a 5xx.
"""


import pytest


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param("/orders", {"json": {"item_id": 1, "quantity": 1}}, id="required only"),
        pytest.param(
            "/orders",
            {"json": {"item_id": 1, "quantity": 100}},
            id="quantity at maximum 100",
        ),
    ],
)
def test_create_order_accepts(api, check, url, options):
    """POST /orders: valid requests get a 2xx (or a documented 404, 409...), never a 400/422."""
    check(api.request("POST", url, **options), "POST /orders")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param("/orders", {"json": {"quantity": 1}}, id="item_id missing"),
        pytest.param("/orders", {"json": {"item_id": 1}}, id="quantity missing"),
        pytest.param(
            "/orders",
            {"json": {"item_id": {"unexpected": "object"}, "quantity": 1}},
            id="item_id wrong type (an object)",
        ),
        pytest.param(
            "/orders",
            {"json": {"item_id": 0, "quantity": 1}},
            id="item_id below minimum 1",
        ),
        pytest.param(
            "/orders",
            {"json": {"item_id": 1, "quantity": {"unexpected": "object"}}},
            id="quantity wrong type (an object)",
        ),
        pytest.param(
            "/orders",
            {"json": {"item_id": 1, "quantity": 0}},
            id="quantity below minimum 1",
        ),
        pytest.param(
            "/orders",
            {"json": {"item_id": 1, "quantity": 101}},
            id="quantity above maximum 100",
        ),
        pytest.param(
            "/orders",
            {"headers": {"Content-Type": "application/json"}, "content": b'{"unclosed": '},
            id="malformed JSON",
        ),
        pytest.param(
            "/orders",
            {"headers": {"Content-Type": "text/plain"}, "content": b'plain text, not JSON'},
            id="wrong content type (text/plain)",
        ),
        pytest.param(
            "/orders",
            {"headers": {"Content-Type": "application/json"}, "content": b''},
            id="empty body",
        ),
    ],
)
def test_create_order_rejects(api, check, url, options):
    """POST /orders: invalid requests get a 4xx, never a 2xx or a 5xx."""
    check(api.request("POST", url, **options), "POST /orders", expect="rejected")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param("/orders", {"json": {"item_id": 1, "quantity": 1}}, id="no credential"),
        pytest.param(
            "/orders",
            {
                "json": {"item_id": 1, "quantity": 1},
                "headers": {"X-API-Key": "wrong-credential"},
            },
            id="wrong credential",
        ),
    ],
)
def test_create_order_credentials(anonymous, check, url, options):
    """POST /orders: without a valid credential the call is refused with a 4xx."""
    check(anonymous.request("POST", url, **options), "POST /orders", expect="rejected")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param("/orders/1", {}, id="required only"),
    ],
)
def test_get_order_accepts(api, check, url, options):
    """GET /orders/{order_id}: valid requests get a 2xx (or a documented 404, 409...), never a 400/422."""
    check(api.request("GET", url, **options), "GET /orders/{order_id}")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param("/orders/not-a-number", {}, id="order_id wrong type (not a number)"),
        pytest.param("/orders/0", {}, id="order_id below minimum 1"),
    ],
)
def test_get_order_rejects(api, check, url, options):
    """GET /orders/{order_id}: invalid requests get a 4xx, never a 2xx or a 5xx."""
    check(api.request("GET", url, **options), "GET /orders/{order_id}", expect="rejected")


def test_orders_lifecycle(api, check):
    """Create, read back: POST /orders then /orders/{order_id}."""
    item_body = {
                    "name": "hammer",
                    "price": 1.0,
                    "quantity": 1,
                    "category": "tools",
                    "tags": ["tags-1"],
                }
    item = api.post("/items", json=item_body)
    check(item, "POST /items", expect="2xx")
    item_id = item.json()["id"]
    created = api.post("/orders", json={"item_id": item_id, "quantity": 1})
    check(created, "POST /orders", expect="2xx")
    order_id = created.json()["id"]
    read = api.get(f"/orders/{order_id}")
    check(read, "GET /orders/{order_id}", expect="2xx")
    check.read_back({"item_id": item_id, "quantity": 1}, read)
