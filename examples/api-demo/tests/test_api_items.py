"""Contract tests for the 'items' operations of Inventory API 1.0.0.

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


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param("/items", {}, id="required only"),
        pytest.param(
            "/items",
            {"params": {"limit": 20, "offset": 0, "category": "tools"}},
            id="all fields",
        ),
        pytest.param("/items", {"params": {"limit": 1}}, id="limit at minimum 1"),
        pytest.param("/items", {"params": {"limit": 100}}, id="limit at maximum 100"),
        pytest.param("/items", {"params": {"offset": 0}}, id="offset at minimum 0"),
        pytest.param("/items", {"params": {"category": "garden"}}, id="category = 'garden'"),
        pytest.param("/items", {"params": {"category": "kitchen"}}, id="category = 'kitchen'"),
    ],
)
def test_list_items_accepts(api, check, url, options):
    """GET /items: valid requests get a 2xx (or a documented 404, 409...), never a 400/422."""
    response = api.request("GET", url, **options)
    check(response, "GET /items")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param(
            "/items",
            {"params": {"limit": "not-a-number"}},
            id="limit wrong type (not a number)",
        ),
        pytest.param(
            "/items",
            {"params": {"limit": "true"}},
            id="limit wrong type (a boolean)",
        ),
        pytest.param("/items", {"params": {"limit": 0}}, id="limit below minimum 1"),
        pytest.param("/items", {"params": {"limit": 101}}, id="limit above maximum 100"),
        pytest.param(
            "/items",
            {"params": {"offset": "not-a-number"}},
            id="offset wrong type (not a number)",
        ),
        pytest.param(
            "/items",
            {"params": {"offset": "true"}},
            id="offset wrong type (a boolean)",
        ),
        pytest.param("/items", {"params": {"offset": -1}}, id="offset below minimum 0"),
        pytest.param(
            "/items",
            {"params": {"category": "not-a-listed-value"}},
            id="category unknown enum value",
        ),
    ],
)
def test_list_items_rejects(api, check, url, options):
    """GET /items: invalid requests get a 4xx, never a 2xx or a 5xx."""
    response = api.request("GET", url, **options)
    check(response, "GET /items", expect="rejected")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param(
            "/items",
            {"json": {"name": "hammer", "price": 1.0, "quantity": 1, "category": "tools"}},
            id="required only",
        ),
        pytest.param(
            "/items",
            {
                "json": {
                    "name": "hammer",
                    "price": 1.0,
                    "quantity": 1,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="all fields",
        ),
        pytest.param(
            "/items",
            {
                "json": {
                    "name": "a",
                    "price": 1.0,
                    "quantity": 1,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="name at minLength 1",
        ),
        pytest.param(
            "/items",
            {
                "json": {
                    "name": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                    "price": 1.0,
                    "quantity": 1,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="name at maxLength 50",
        ),
        pytest.param(
            "/items",
            {
                "json": {
                    "name": "hammer",
                    "price": 10000.0,
                    "quantity": 1,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="price at maximum 10000.0",
        ),
        pytest.param(
            "/items",
            {
                "json": {
                    "name": "hammer",
                    "price": 1.0,
                    "quantity": 0,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="quantity at minimum 0",
        ),
        pytest.param(
            "/items",
            {
                "json": {
                    "name": "hammer",
                    "price": 1.0,
                    "quantity": 1000,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="quantity at maximum 1000",
        ),
        pytest.param(
            "/items",
            {
                "json": {
                    "name": "hammer",
                    "price": 1.0,
                    "quantity": 1,
                    "category": "garden",
                    "tags": ["tags-1"],
                },
            },
            id="category = 'garden'",
        ),
        pytest.param(
            "/items",
            {
                "json": {
                    "name": "hammer",
                    "price": 1.0,
                    "quantity": 1,
                    "category": "kitchen",
                    "tags": ["tags-1"],
                },
            },
            id="category = 'kitchen'",
        ),
        pytest.param(
            "/items",
            {
                "json": {
                    "name": "hammer",
                    "price": 1.0,
                    "quantity": 1,
                    "category": "tools",
                    "tags": ["text-10", "text-11", "text-12", "text-13", "text-14"],
                },
            },
            id="tags 5 items (maxItems)",
        ),
    ],
)
def test_create_item_accepts(api, check, url, options):
    """POST /items: valid requests get a 2xx (or a documented 404, 409...), never a 400/422."""
    response = api.request("POST", url, **options)
    check(response, "POST /items")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param(
            "/items",
            {"json": {"price": 1.0, "quantity": 1, "category": "tools", "tags": ["tags-1"]}},
            id="name missing",
        ),
        pytest.param(
            "/items",
            {"json": {"name": "hammer", "quantity": 1, "category": "tools", "tags": ["tags-1"]}},
            id="price missing",
        ),
        pytest.param(
            "/items",
            {"json": {"name": "hammer", "price": 1.0, "category": "tools", "tags": ["tags-1"]}},
            id="quantity missing",
        ),
        pytest.param(
            "/items",
            {"json": {"name": "hammer", "price": 1.0, "quantity": 1, "tags": ["tags-1"]}},
            id="category missing",
        ),
        pytest.param(
            "/items",
            {
                "json": {
                    "name": {"unexpected": "object"},
                    "price": 1.0,
                    "quantity": 1,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="name wrong type (an object)",
        ),
        pytest.param(
            "/items",
            {
                "json": {
                    "name": "",
                    "price": 1.0,
                    "quantity": 1,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="name shorter than minLength 1",
        ),
        pytest.param(
            "/items",
            {
                "json": {
                    "name": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                    "price": 1.0,
                    "quantity": 1,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="name longer than maxLength 50",
        ),
        pytest.param(
            "/items",
            {
                "json": {
                    "name": "hammer",
                    "price": {"unexpected": "object"},
                    "quantity": 1,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="price wrong type (an object)",
        ),
        pytest.param(
            "/items",
            {
                "json": {
                    "name": "hammer",
                    "price": True,
                    "quantity": 1,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="price wrong type (a boolean)",
        ),
        pytest.param(
            "/items",
            {
                "json": {
                    "name": "hammer",
                    "price": 10001.0,
                    "quantity": 1,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="price above maximum 10000.0",
        ),
        pytest.param(
            "/items",
            {
                "json": {
                    "name": "hammer",
                    "price": 0.0,
                    "quantity": 1,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="price below exclusiveMinimum 0.0",
        ),
        pytest.param(
            "/items",
            {
                "json": {
                    "name": "hammer",
                    "price": 1.0,
                    "quantity": {"unexpected": "object"},
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="quantity wrong type (an object)",
        ),
        pytest.param(
            "/items",
            {
                "json": {
                    "name": "hammer",
                    "price": 1.0,
                    "quantity": True,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="quantity wrong type (a boolean)",
        ),
        pytest.param(
            "/items",
            {
                "json": {
                    "name": "hammer",
                    "price": 1.0,
                    "quantity": -1,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="quantity below minimum 0",
        ),
        pytest.param(
            "/items",
            {
                "json": {
                    "name": "hammer",
                    "price": 1.0,
                    "quantity": 1001,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="quantity above maximum 1000",
        ),
        pytest.param(
            "/items",
            {
                "json": {
                    "name": "hammer",
                    "price": 1.0,
                    "quantity": 1,
                    "category": {"unexpected": "object"},
                    "tags": ["tags-1"],
                },
            },
            id="category wrong type (an object)",
        ),
        pytest.param(
            "/items",
            {
                "json": {
                    "name": "hammer",
                    "price": 1.0,
                    "quantity": 1,
                    "category": "not-a-listed-value",
                    "tags": ["tags-1"],
                },
            },
            id="category unknown enum value",
        ),
        pytest.param(
            "/items",
            {
                "json": {
                    "name": "hammer",
                    "price": 1.0,
                    "quantity": 1,
                    "category": "tools",
                    "tags": "not-an-array",
                },
            },
            id="tags wrong type (a string)",
        ),
    ],
)
def test_create_item_rejects(api, check, url, options):
    """POST /items: invalid requests get a 4xx, never a 2xx or a 5xx."""
    response = api.request("POST", url, **options)
    check(response, "POST /items", expect="rejected")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param(
            "/items",
            {
                "json": {
                    "name": "hammer",
                    "price": 1.0,
                    "quantity": 1,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="no credential",
        ),
        pytest.param(
            "/items",
            {
                "json": {
                    "name": "hammer",
                    "price": 1.0,
                    "quantity": 1,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
                "headers": {"X-API-Key": "wrong-credential"},
            },
            id="wrong credential",
        ),
    ],
)
def test_create_item_credentials(anonymous, check, url, options):
    """POST /items: without a valid credential the call is refused with a 4xx."""
    response = anonymous.request("POST", url, **options)
    check(response, "POST /items", expect="rejected")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param("/items/{item_id}", {}, id="required only"),
    ],
)
def test_get_item_accepts(api, check, item_id, url, options):
    """
    GET /items/{item_id}: valid requests get a 2xx (or a documented 404, 409...), never a
    400/422.
    """
    url, options = check.fill((url, options), item_id=item_id)
    response = api.request("GET", url, **options)
    check(response, "GET /items/{item_id}")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param("/items/999999", {}, id="an id that names nothing"),
    ],
)
def test_get_item_unknown_id(api, check, url, options):
    """
    GET /items/{item_id}: an id that names nothing gets a documented answer (a 404), never a
    5xx.
    """
    response = api.request("GET", url, **options)
    check(response, "GET /items/{item_id}")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param("/items/not-a-number", {}, id="item_id wrong type (not a number)"),
        pytest.param("/items/true", {}, id="item_id wrong type (a boolean)"),
        pytest.param("/items/0", {}, id="item_id below minimum 1"),
    ],
)
def test_get_item_rejects(api, check, url, options):
    """GET /items/{item_id}: invalid requests get a 4xx, never a 2xx or a 5xx."""
    response = api.request("GET", url, **options)
    check(response, "GET /items/{item_id}", expect="rejected")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param(
            "/items/{item_id}",
            {"json": {"name": "hammer", "price": 1.0, "quantity": 1, "category": "tools"}},
            id="required only",
        ),
        pytest.param(
            "/items/{item_id}",
            {
                "json": {
                    "name": "hammer",
                    "price": 1.0,
                    "quantity": 1,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="all fields",
        ),
        pytest.param(
            "/items/{item_id}",
            {
                "json": {
                    "name": "a",
                    "price": 1.0,
                    "quantity": 1,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="name at minLength 1",
        ),
        pytest.param(
            "/items/{item_id}",
            {
                "json": {
                    "name": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                    "price": 1.0,
                    "quantity": 1,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="name at maxLength 50",
        ),
        pytest.param(
            "/items/{item_id}",
            {
                "json": {
                    "name": "hammer",
                    "price": 10000.0,
                    "quantity": 1,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="price at maximum 10000.0",
        ),
        pytest.param(
            "/items/{item_id}",
            {
                "json": {
                    "name": "hammer",
                    "price": 1.0,
                    "quantity": 0,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="quantity at minimum 0",
        ),
        pytest.param(
            "/items/{item_id}",
            {
                "json": {
                    "name": "hammer",
                    "price": 1.0,
                    "quantity": 1000,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="quantity at maximum 1000",
        ),
        pytest.param(
            "/items/{item_id}",
            {
                "json": {
                    "name": "hammer",
                    "price": 1.0,
                    "quantity": 1,
                    "category": "garden",
                    "tags": ["tags-1"],
                },
            },
            id="category = 'garden'",
        ),
        pytest.param(
            "/items/{item_id}",
            {
                "json": {
                    "name": "hammer",
                    "price": 1.0,
                    "quantity": 1,
                    "category": "kitchen",
                    "tags": ["tags-1"],
                },
            },
            id="category = 'kitchen'",
        ),
        pytest.param(
            "/items/{item_id}",
            {
                "json": {
                    "name": "hammer",
                    "price": 1.0,
                    "quantity": 1,
                    "category": "tools",
                    "tags": ["text-10", "text-11", "text-12", "text-13", "text-14"],
                },
            },
            id="tags 5 items (maxItems)",
        ),
    ],
)
def test_update_item_accepts(api, check, item_id, url, options):
    """
    PUT /items/{item_id}: valid requests get a 2xx (or a documented 404, 409...), never a
    400/422.
    """
    url, options = check.fill((url, options), item_id=item_id)
    response = api.request("PUT", url, **options)
    check(response, "PUT /items/{item_id}")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param(
            "/items/999999",
            {"json": {"name": "hammer", "price": 1.0, "quantity": 1, "category": "tools"}},
            id="an id that names nothing",
        ),
    ],
)
def test_update_item_unknown_id(api, check, url, options):
    """
    PUT /items/{item_id}: an id that names nothing gets a documented answer (a 404), never a
    5xx.
    """
    response = api.request("PUT", url, **options)
    check(response, "PUT /items/{item_id}")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param(
            "/items/not-a-number",
            {"json": {"name": "hammer", "price": 1.0, "quantity": 1, "category": "tools"}},
            id="item_id wrong type (not a number)",
        ),
        pytest.param(
            "/items/true",
            {"json": {"name": "hammer", "price": 1.0, "quantity": 1, "category": "tools"}},
            id="item_id wrong type (a boolean)",
        ),
        pytest.param(
            "/items/0",
            {"json": {"name": "hammer", "price": 1.0, "quantity": 1, "category": "tools"}},
            id="item_id below minimum 1",
        ),
    ],
)
def test_update_item_rejects_bad_ids(api, check, url, options):
    """PUT /items/{item_id}: invalid requests get a 4xx, never a 2xx or a 5xx."""
    response = api.request("PUT", url, **options)
    check(response, "PUT /items/{item_id}", expect="rejected")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param(
            "/items/{item_id}",
            {"json": {"price": 1.0, "quantity": 1, "category": "tools", "tags": ["tags-1"]}},
            id="name missing",
        ),
        pytest.param(
            "/items/{item_id}",
            {"json": {"name": "hammer", "quantity": 1, "category": "tools", "tags": ["tags-1"]}},
            id="price missing",
        ),
        pytest.param(
            "/items/{item_id}",
            {"json": {"name": "hammer", "price": 1.0, "category": "tools", "tags": ["tags-1"]}},
            id="quantity missing",
        ),
        pytest.param(
            "/items/{item_id}",
            {"json": {"name": "hammer", "price": 1.0, "quantity": 1, "tags": ["tags-1"]}},
            id="category missing",
        ),
        pytest.param(
            "/items/{item_id}",
            {
                "json": {
                    "name": {"unexpected": "object"},
                    "price": 1.0,
                    "quantity": 1,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="name wrong type (an object)",
        ),
        pytest.param(
            "/items/{item_id}",
            {
                "json": {
                    "name": "",
                    "price": 1.0,
                    "quantity": 1,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="name shorter than minLength 1",
        ),
        pytest.param(
            "/items/{item_id}",
            {
                "json": {
                    "name": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                    "price": 1.0,
                    "quantity": 1,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="name longer than maxLength 50",
        ),
        pytest.param(
            "/items/{item_id}",
            {
                "json": {
                    "name": "hammer",
                    "price": {"unexpected": "object"},
                    "quantity": 1,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="price wrong type (an object)",
        ),
        pytest.param(
            "/items/{item_id}",
            {
                "json": {
                    "name": "hammer",
                    "price": True,
                    "quantity": 1,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="price wrong type (a boolean)",
        ),
        pytest.param(
            "/items/{item_id}",
            {
                "json": {
                    "name": "hammer",
                    "price": 10001.0,
                    "quantity": 1,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="price above maximum 10000.0",
        ),
        pytest.param(
            "/items/{item_id}",
            {
                "json": {
                    "name": "hammer",
                    "price": 0.0,
                    "quantity": 1,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="price below exclusiveMinimum 0.0",
        ),
        pytest.param(
            "/items/{item_id}",
            {
                "json": {
                    "name": "hammer",
                    "price": 1.0,
                    "quantity": {"unexpected": "object"},
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="quantity wrong type (an object)",
        ),
        pytest.param(
            "/items/{item_id}",
            {
                "json": {
                    "name": "hammer",
                    "price": 1.0,
                    "quantity": True,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="quantity wrong type (a boolean)",
        ),
        pytest.param(
            "/items/{item_id}",
            {
                "json": {
                    "name": "hammer",
                    "price": 1.0,
                    "quantity": -1,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="quantity below minimum 0",
        ),
        pytest.param(
            "/items/{item_id}",
            {
                "json": {
                    "name": "hammer",
                    "price": 1.0,
                    "quantity": 1001,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="quantity above maximum 1000",
        ),
    ],
)
def test_update_item_rejects(api, check, item_id, url, options):
    """PUT /items/{item_id}: invalid requests get a 4xx, never a 2xx or a 5xx."""
    url, options = check.fill((url, options), item_id=item_id)
    response = api.request("PUT", url, **options)
    check(response, "PUT /items/{item_id}", expect="rejected")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param(
            "/items/{item_id}",
            {
                "json": {
                    "name": "hammer",
                    "price": 1.0,
                    "quantity": 1,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
            },
            id="no credential",
        ),
        pytest.param(
            "/items/{item_id}",
            {
                "json": {
                    "name": "hammer",
                    "price": 1.0,
                    "quantity": 1,
                    "category": "tools",
                    "tags": ["tags-1"],
                },
                "headers": {"X-API-Key": "wrong-credential"},
            },
            id="wrong credential",
        ),
    ],
)
def test_update_item_credentials(anonymous, check, item_id, url, options):
    """PUT /items/{item_id}: without a valid credential the call is refused with a 4xx."""
    url, options = check.fill((url, options), item_id=item_id)
    response = anonymous.request("PUT", url, **options)
    check(response, "PUT /items/{item_id}", expect="rejected")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param("/items/{item_id}", {}, id="required only"),
    ],
)
def test_delete_item_accepts(api, check, item_id, url, options):
    """
    DELETE /items/{item_id}: valid requests get a 2xx (or a documented 404, 409...), never a
    400/422.
    """
    url, options = check.fill((url, options), item_id=item_id)
    response = api.request("DELETE", url, **options)
    check(response, "DELETE /items/{item_id}")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param("/items/999999", {}, id="an id that names nothing"),
    ],
)
def test_delete_item_unknown_id(api, check, url, options):
    """
    DELETE /items/{item_id}: an id that names nothing gets a documented answer (a 404),
    never a 5xx.
    """
    response = api.request("DELETE", url, **options)
    check(response, "DELETE /items/{item_id}")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param("/items/not-a-number", {}, id="item_id wrong type (not a number)"),
        pytest.param("/items/true", {}, id="item_id wrong type (a boolean)"),
        pytest.param("/items/0", {}, id="item_id below minimum 1"),
    ],
)
def test_delete_item_rejects(api, check, url, options):
    """DELETE /items/{item_id}: invalid requests get a 4xx, never a 2xx or a 5xx."""
    response = api.request("DELETE", url, **options)
    check(response, "DELETE /items/{item_id}", expect="rejected")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param("/items/{item_id}", {}, id="no credential"),
        pytest.param(
            "/items/{item_id}",
            {"headers": {"X-API-Key": "wrong-credential"}},
            id="wrong credential",
        ),
    ],
)
def test_delete_item_credentials(anonymous, check, item_id, url, options):
    """DELETE /items/{item_id}: without a valid credential the call is refused with a 4xx."""
    url, options = check.fill((url, options), item_id=item_id)
    response = anonymous.request("DELETE", url, **options)
    check(response, "DELETE /items/{item_id}", expect="rejected")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param("/items/{item_id}/quote", {}, id="required only"),
        pytest.param(
            "/items/{item_id}/quote",
            {"params": {"quantity": 1, "currency": "EUR"}},
            id="all fields",
        ),
        pytest.param(
            "/items/{item_id}/quote",
            {"params": {"quantity": 1}},
            id="quantity at minimum 1",
        ),
        pytest.param(
            "/items/{item_id}/quote",
            {"params": {"quantity": 100}},
            id="quantity at maximum 100",
        ),
    ],
)
def test_quote_item_accepts(api, check, item_id, url, options):
    """
    GET /items/{item_id}/quote: valid requests get a 2xx (or a documented 404, 409...),
    never a 400/422.
    """
    url, options = check.fill((url, options), item_id=item_id)
    response = api.request("GET", url, **options)
    check(response, "GET /items/{item_id}/quote")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param("/items/999999/quote", {}, id="an id that names nothing"),
    ],
)
def test_quote_item_unknown_id(api, check, url, options):
    """
    GET /items/{item_id}/quote: an id that names nothing gets a documented answer (a 404),
    never a 5xx.
    """
    response = api.request("GET", url, **options)
    check(response, "GET /items/{item_id}/quote")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param("/items/not-a-number/quote", {}, id="item_id wrong type (not a number)"),
        pytest.param("/items/true/quote", {}, id="item_id wrong type (a boolean)"),
        pytest.param("/items/0/quote", {}, id="item_id below minimum 1"),
    ],
)
def test_quote_item_rejects_bad_ids(api, check, url, options):
    """GET /items/{item_id}/quote: invalid requests get a 4xx, never a 2xx or a 5xx."""
    response = api.request("GET", url, **options)
    check(response, "GET /items/{item_id}/quote", expect="rejected")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param(
            "/items/{item_id}/quote",
            {"params": {"quantity": "not-a-number"}},
            id="quantity wrong type (not a number)",
        ),
        pytest.param(
            "/items/{item_id}/quote",
            {"params": {"quantity": "true"}},
            id="quantity wrong type (a boolean)",
        ),
        pytest.param(
            "/items/{item_id}/quote",
            {"params": {"quantity": 0}},
            id="quantity below minimum 1",
        ),
        pytest.param(
            "/items/{item_id}/quote",
            {"params": {"quantity": 101}},
            id="quantity above maximum 100",
        ),
        pytest.param(
            "/items/{item_id}/quote",
            {"params": {"currency": "§ not matching §"}},
            id="currency off pattern",
        ),
    ],
)
def test_quote_item_rejects(api, check, item_id, url, options):
    """GET /items/{item_id}/quote: invalid requests get a 4xx, never a 2xx or a 5xx."""
    url, options = check.fill((url, options), item_id=item_id)
    response = api.request("GET", url, **options)
    check(response, "GET /items/{item_id}/quote", expect="rejected")


def test_link_create_item_getitem(api, check):
    """The 'GetItem' link of POST /items (201) leads to GET /items/{item_id}."""
    source_body = {
        "name": "hammer",
        "price": 1.0,
        "quantity": 1,
        "category": "tools",
        "tags": ["tags-1"],
    }
    source = api.post("/items", json=source_body)
    check(source, "POST /items", expect="2xx")
    item_id = source.json()["id"]
    target = api.get(f"/items/{item_id}")
    check(target, "GET /items/{item_id}", expect="2xx")


def test_items_lifecycle(api, check):
    """
    Create, read back, update, read back, delete, then 404: POST /items then
    /items/{item_id}.
    """
    created_body = {
        "name": "hammer",
        "price": 1.0,
        "quantity": 1,
        "category": "tools",
        "tags": ["tags-1"],
    }
    created = api.post("/items", json=created_body)
    check(created, "POST /items", expect="2xx")
    item_id = created.json()["id"]
    read = api.get(f"/items/{item_id}")
    check(read, "GET /items/{item_id}", expect="2xx")
    check.read_back(created_body, read)
    updated_body = {
        "name": "hammeb",
        "price": 2.0,
        "quantity": 2,
        "category": "tools",
        "tags": ["tags-1"],
    }
    updated = api.put(f"/items/{item_id}", json=updated_body)
    check(updated, "PUT /items/{item_id}", expect="2xx")
    reread = api.get(f"/items/{item_id}")
    check(reread, "GET /items/{item_id}", expect="2xx")
    check.read_back(updated_body, reread)
    deleted = api.delete(f"/items/{item_id}")
    check(deleted, "DELETE /items/{item_id}", expect="2xx")
    gone = api.get(f"/items/{item_id}")
    check.gone(gone, "GET /items/{item_id}")
