"""Contract tests for the 'orders' operations of Inventory API 1.0.0.

Written by `aqe generate api` from openapi.yaml; regenerate with:

    aqe generate api openapi.yaml --app app:app --out tests

Every call is checked by the `check` fixture (conftest.py): a documented status, a
body valid against its schema, the declared content type and headers, never a 5xx.
"""

import pytest


@pytest.fixture
def item_id(api, check):
    """Made for the test with POST /items: the item_id it answers."""
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
    return item_id


@pytest.fixture
def order_id(api, check):
    """Made for the test with POST /orders: the order_id it answers."""
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
    order = api.post("/orders", json={"item_id": item_id, "quantity": 1})
    check(order, "POST /orders", expect="2xx")
    order_id = order.json()["id"]
    return order_id


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param(
            "/orders",
            {"json": {"item_id": "{item_id}", "quantity": 1}},
            id="required only",
        ),
        pytest.param(
            "/orders",
            {"json": {"item_id": "{item_id}", "quantity": 100}},
            id="quantity at maximum 100",
        ),
    ],
)
def test_create_order_accepts(api, check, item_id, url, options):
    """POST /orders: valid requests get a 2xx (or a documented 404, 409...), never a 400/422."""
    url, options = check.fill((url, options), item_id=item_id)
    response = api.request("POST", url, **options)
    check(response, "POST /orders")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param("/orders", {"json": {"quantity": 1}}, id="item_id missing"),
        pytest.param(
            "/orders",
            {"json": {"item_id": {"unexpected": "object"}, "quantity": 1}},
            id="item_id wrong type (an object)",
        ),
        pytest.param(
            "/orders",
            {"json": {"item_id": True, "quantity": 1}},
            id="item_id wrong type (a boolean)",
        ),
        pytest.param(
            "/orders",
            {"json": {"item_id": 0, "quantity": 1}},
            id="item_id below minimum 1",
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
def test_create_order_rejects_bad_ids(api, check, url, options):
    """POST /orders: invalid requests get a 4xx, never a 2xx or a 5xx."""
    response = api.request("POST", url, **options)
    check(response, "POST /orders", expect="rejected")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param("/orders", {"json": {"item_id": "{item_id}"}}, id="quantity missing"),
        pytest.param(
            "/orders",
            {"json": {"item_id": "{item_id}", "quantity": {"unexpected": "object"}}},
            id="quantity wrong type (an object)",
        ),
        pytest.param(
            "/orders",
            {"json": {"item_id": "{item_id}", "quantity": True}},
            id="quantity wrong type (a boolean)",
        ),
        pytest.param(
            "/orders",
            {"json": {"item_id": "{item_id}", "quantity": 0}},
            id="quantity below minimum 1",
        ),
        pytest.param(
            "/orders",
            {"json": {"item_id": "{item_id}", "quantity": 101}},
            id="quantity above maximum 100",
        ),
    ],
)
def test_create_order_rejects(api, check, item_id, url, options):
    """POST /orders: invalid requests get a 4xx, never a 2xx or a 5xx."""
    url, options = check.fill((url, options), item_id=item_id)
    response = api.request("POST", url, **options)
    check(response, "POST /orders", expect="rejected")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param(
            "/orders",
            {"json": {"item_id": "{item_id}", "quantity": 1}},
            id="no credential",
        ),
        pytest.param(
            "/orders",
            {
                "json": {"item_id": "{item_id}", "quantity": 1},
                "headers": {"X-API-Key": "wrong-credential"},
            },
            id="wrong credential",
        ),
    ],
)
def test_create_order_credentials(anonymous, check, item_id, url, options):
    """POST /orders: without a valid credential the call is refused with a 4xx."""
    url, options = check.fill((url, options), item_id=item_id)
    response = anonymous.request("POST", url, **options)
    check(response, "POST /orders", expect="rejected")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param("/orders/{order_id}", {}, id="required only"),
    ],
)
def test_get_order_accepts(api, check, item_id, order_id, url, options):
    """
    GET /orders/{order_id}: valid requests get a 2xx (or a documented 404, 409...), never a
    400/422.
    """
    url, options = check.fill((url, options), item_id=item_id, order_id=order_id)
    response = api.request("GET", url, **options)
    check(response, "GET /orders/{order_id}")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param("/orders/999999", {}, id="an id that names nothing"),
    ],
)
def test_get_order_unknown_id(api, check, url, options):
    """
    GET /orders/{order_id}: an id that names nothing gets a documented answer (a 404), never
    a 5xx.
    """
    response = api.request("GET", url, **options)
    check(response, "GET /orders/{order_id}")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param("/orders/not-a-number", {}, id="order_id wrong type (not a number)"),
        pytest.param("/orders/true", {}, id="order_id wrong type (a boolean)"),
        pytest.param("/orders/0", {}, id="order_id below minimum 1"),
    ],
)
def test_get_order_rejects(api, check, url, options):
    """GET /orders/{order_id}: invalid requests get a 4xx, never a 2xx or a 5xx."""
    response = api.request("GET", url, **options)
    check(response, "GET /orders/{order_id}", expect="rejected")


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
