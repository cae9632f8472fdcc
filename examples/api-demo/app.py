"""A small inventory API (FastAPI): the demo that ``aqe generate api`` writes a suite for.

State lives in memory, one store per process; ``openapi.yaml`` beside this file is its
description, exported with ``python app.py`` (the generator reads that file, not the app).
"""

from __future__ import annotations

import os
from enum import Enum
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Response, Security
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, BeforeValidator, Field

app = FastAPI(title="Inventory API", version="1.0.0")

_key = APIKeyHeader(name="X-API-Key", auto_error=False)


class Error(BaseModel):
    detail: str


def require_key(key: Annotated[str | None, Security(_key)]) -> None:
    """Writes need the key the server was started with (``DEMO_API_KEY``)."""
    if key is None or key != os.environ.get("DEMO_API_KEY", "demo-key"):
        raise HTTPException(status_code=401, detail="missing or wrong X-API-Key")


def _not_bool(value: object) -> object:
    """JSON Schema's integer and number exclude true/false; pydantic's lax mode takes them."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return value


Whole = Annotated[int, BeforeValidator(_not_bool)]
Real = Annotated[float, BeforeValidator(_not_bool)]


class Category(str, Enum):
    tools = "tools"
    garden = "garden"
    kitchen = "kitchen"


class ItemIn(BaseModel):
    name: str = Field(min_length=1, max_length=50, examples=["hammer"])
    price: Real = Field(gt=0, le=10000)
    quantity: Whole = Field(ge=0, le=1000)
    category: Category
    tags: list[str] = Field(default_factory=list, max_length=5)


class Item(ItemIn):
    id: int


class Stats(BaseModel):
    count: int
    total_value: float


class Quote(BaseModel):
    item_id: int
    quantity: int
    currency: str
    total: float


class OrderIn(BaseModel):
    item_id: Whole = Field(ge=1)
    quantity: Whole = Field(ge=1, le=100)


class Order(OrderIn):
    id: int
    total: float


class Health(BaseModel):
    status: str


_items: dict[int, Item] = {}
_orders: dict[int, Order] = {}
_next = {"item": 1, "order": 1}
_RATES = {"EUR": 1.0, "USD": 1.1, "GBP": 0.85}
_UNAUTHORIZED = {401: {"model": Error, "description": "Missing or wrong API key"}}
_NOT_FOUND = {404: {"model": Error, "description": "No such item"}}
_ITEM_LINKS = {
    "GetItem": {
        "operationId": "get_item",
        "parameters": {"item_id": "$response.body#/id"},
        "description": "The created item, read back",
    }
}


def _item(item_id: int) -> Item:
    if item_id not in _items:
        raise HTTPException(status_code=404, detail=f"item {item_id} not found")
    return _items[item_id]


@app.get("/health", tags=["meta"], operation_id="health")
def health() -> Health:
    return Health(status="ok")


@app.get("/stats", tags=["meta"], operation_id="stats")
def stats() -> Stats:
    total = sum(item.price * item.quantity for item in _items.values())
    return Stats(count=len(_items), total_value=round(total, 2))


@app.get("/items", tags=["items"], operation_id="list_items")
def list_items(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
    category: Category | None = None,
) -> list[Item]:
    chosen = [i for i in _items.values() if category is None or i.category == category]
    return chosen[offset : offset + limit]


@app.post(
    "/items",
    tags=["items"],
    operation_id="create_item",
    status_code=201,
    responses={**_UNAUTHORIZED, 201: {"links": _ITEM_LINKS}},
    dependencies=[Depends(require_key)],
)
def create_item(body: ItemIn) -> Item:
    item = Item(id=_next["item"], **body.model_dump())
    _next["item"] += 1
    _items[item.id] = item
    return item


@app.get("/items/{item_id}", tags=["items"], operation_id="get_item", responses=_NOT_FOUND)
def get_item(item_id: Annotated[int, Path(ge=1)]) -> Item:
    return _item(item_id)


@app.put(
    "/items/{item_id}",
    tags=["items"],
    operation_id="update_item",
    responses={**_UNAUTHORIZED, **_NOT_FOUND},
    dependencies=[Depends(require_key)],
)
def update_item(item_id: Annotated[int, Path(ge=1)], body: ItemIn) -> Item:
    _item(item_id)
    _items[item_id] = Item(id=item_id, **body.model_dump())
    return _items[item_id]


@app.delete(
    "/items/{item_id}",
    tags=["items"],
    operation_id="delete_item",
    status_code=204,
    responses={**_UNAUTHORIZED, **_NOT_FOUND},
    dependencies=[Depends(require_key)],
)
def delete_item(item_id: Annotated[int, Path(ge=1)]) -> Response:
    _item(item_id)
    del _items[item_id]
    return Response(status_code=204)


@app.get(
    "/items/{item_id}/quote", tags=["items"], operation_id="quote_item", responses=_NOT_FOUND
)
def quote_item(
    item_id: Annotated[int, Path(ge=1)],
    quantity: Annotated[int, Query(ge=1, le=100)] = 1,
    currency: Annotated[str, Query(pattern="^(EUR|USD|GBP)$")] = "EUR",
) -> Quote:
    item = _item(item_id)
    total = round(item.price * quantity * _RATES[currency], 2)
    return Quote(item_id=item_id, quantity=quantity, currency=currency, total=total)


@app.post(
    "/orders",
    tags=["orders"],
    operation_id="create_order",
    status_code=201,
    responses={
        **_NOT_FOUND,
        409: {"model": Error, "description": "Not enough stock"},
        **_UNAUTHORIZED,
    },
    dependencies=[Depends(require_key)],
)
def create_order(body: OrderIn) -> Order:
    item = _item(body.item_id)
    if item.quantity < body.quantity:
        raise HTTPException(status_code=409, detail="not enough stock")
    order = Order(id=_next["order"], total=round(item.price * body.quantity, 2), **body.model_dump())
    _next["order"] += 1
    _orders[order.id] = order
    _items[item.id] = item.model_copy(update={"quantity": item.quantity - body.quantity})
    return order


@app.get(
    "/orders/{order_id}",
    tags=["orders"],
    operation_id="get_order",
    responses={404: {"model": Error, "description": "No such order"}},
)
def get_order(order_id: Annotated[int, Path(ge=1)]) -> Order:
    if order_id not in _orders:
        raise HTTPException(status_code=404, detail=f"order {order_id} not found")
    return _orders[order_id]


if __name__ == "__main__":
    import json
    import pathlib

    import yaml

    spec = json.loads(json.dumps(app.openapi()))
    text = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
    pathlib.Path(__file__).with_name("openapi.yaml").write_text(text, encoding="utf-8")
