"""examples/api-demo/app.py with seeded bugs, for benchmarks/api_contract.py.

``SEEDED_BUGS`` (comma-separated names, or "all") turns bugs on; none is on by default, and
then this app answers as the demo does. Both tools read examples/api-demo/openapi.yaml,
the correct app's description, and nothing here.
"""

from __future__ import annotations

import os
from enum import Enum
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, BeforeValidator, Field, ValidationError

app = FastAPI(title="Inventory API", version="1.0.0")
_ON = set(os.environ.get("SEEDED_BUGS", "").split(","))


def bug(name: str) -> bool:
    return name in _ON or "all" in _ON

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
    # max_length: one short of the documented 50; validation: no lower bound on the price.
    name: str = Field(min_length=1, max_length=49 if bug("max_length") else 50)
    price: Real = Field(le=10000) if bug("validation") else Field(gt=0, le=10000)
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
def health() -> Any:
    if bug("content_type"):
        return PlainTextResponse('{"status": "ok"}')
    return Health(status="ok")


@app.get("/stats", tags=["meta"], operation_id="stats")
def stats() -> Any:
    total = sum(item.price * item.quantity for item in _items.values())
    if bug("schema"):
        return JSONResponse({"count": len(_items), "total_value": f"{total:.2f}"})
    return Stats(count=len(_items), total_value=round(total, 2))


@app.get("/items", tags=["items"], operation_id="list_items")
def list_items(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
    category: Annotated[str | None, Query()] = None,
) -> list[Item]:
    if category is not None:
        if bug("enum500"):
            wanted = {c.value: c for c in Category}[category]  # KeyError: 500 on an unknown one
        else:
            try:
                wanted = Category(category)
            except ValueError:
                error = {"type": "enum", "loc": ("query", "category"), "msg": "unknown category",
                         "input": category}
                raise RequestValidationError([error]) from None
        category = wanted
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
def create_item(body: ItemIn) -> Any:
    if bug("optional500"):
        body.tags[0].strip()  # an optional field taken as always there
    item = Item(id=_next["item"], **body.model_dump())
    _next["item"] += 1
    _items[item.id] = item
    return item


def _shown(item: Item) -> Item:
    if bug("readback"):
        return item.model_copy(update={"name": item.name.upper()})
    return item


@app.get("/items/{item_id}", tags=["items"], operation_id="get_item", responses=_NOT_FOUND)
def get_item(item_id: Annotated[int, Path(ge=1)]) -> Item:
    return _shown(_item(item_id))


@app.put(
    "/items/{item_id}",
    tags=["items"],
    operation_id="update_item",
    responses={**_UNAUTHORIZED, **_NOT_FOUND},
    dependencies=[Depends(require_key)],
)
def update_item(item_id: Annotated[int, Path(ge=1)], body: ItemIn) -> Any:
    if bug("undocumented") and item_id not in _items:
        return JSONResponse({"detail": "bad id"}, status_code=400)
    _item(item_id)
    updated = Item(id=item_id, **body.model_dump())
    if not bug("update_lost"):
        _items[item_id] = updated
    return updated


@app.delete(
    "/items/{item_id}",
    tags=["items"],
    operation_id="delete_item",
    status_code=204,
    responses={**_UNAUTHORIZED, **_NOT_FOUND},
    dependencies=[] if bug("auth") else [Depends(require_key)],
)
def delete_item(item_id: Annotated[int, Path(ge=1)]) -> Response:
    _item(item_id)
    if not bug("delete"):
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
    if bug("edge500"):
        discount = [1.0, 1.0, 0.98, 0.97, 0.96, 0.95, 0.94, 0.93, 0.92, 0.91][quantity // 10]
        quantity_price = item.price * quantity * discount
    else:
        quantity_price = item.price * quantity
    total = round(quantity_price * _RATES[currency], 2)
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
async def create_order(request: Request) -> Any:
    try:
        body = OrderIn.model_validate(await request.json())
    except ValueError as exc:
        if bug("malformed500") and not isinstance(exc, ValidationError):
            raise  # the body's JSON error escapes as a 500
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body",),
                                       "msg": str(exc)[:100], "input": None}]) from None
    item = _item(body.item_id)
    if item.quantity < body.quantity:
        raise HTTPException(status_code=409, detail="not enough stock")
    total = round(item.price * body.quantity, 2)
    order = Order(id=_next["order"], total=total, **body.model_dump())
    _next["order"] += 1
    _orders[order.id] = order
    _items[item.id] = item.model_copy(update={"quantity": item.quantity - body.quantity})
    if bug("wrong_status"):
        return JSONResponse(order.model_dump(), status_code=200)
    return JSONResponse(order.model_dump(), status_code=201)


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
