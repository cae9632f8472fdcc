"""The checks every written test makes, on responses built by hand."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from aqe._apigen._contract import Checks, Contract, differing_fields, gone_problems

ITEM = {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}
SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "paths": {
        "/items/{id}": {
            "get": {
                "responses": {
                    "200": {
                        "description": "ok",
                        "headers": {"X-Rate": {"required": True, "schema": {"type": "string"}}},
                        "content": {"application/json": {"schema": ITEM}},
                    },
                    "404": {"description": "missing"},
                    "4XX": {"description": "client error"},
                }
            },
            "delete": {"responses": {"204": {"description": "gone"}}},
        }
    },
}
CONTRACT = Contract(SPEC)
GET = "GET /items/{id}"


def _response(status: int, body: Any = None, **headers: str) -> httpx.Response:
    request = httpx.Request("GET", "http://api.test/items/1")
    if body is None:
        return httpx.Response(status, headers=headers, request=request)
    return httpx.Response(status, json=body, headers=headers, request=request)


def test_a_response_keeping_the_contract_has_no_problems() -> None:
    assert CONTRACT.problems(_response(200, {"id": 1}, **{"X-Rate": "5"}), GET, "success") == []
    assert CONTRACT.problems(_response(404), GET, "success") == []  # the server's state
    assert CONTRACT.problems(_response(418), GET, "rejected") == []  # 4XX documents it


@pytest.mark.parametrize(
    ("response", "expect", "problem"),
    [
        (_response(200, {"id": "x"}, **{"X-Rate": "5"}), "any", "body does not match its schema"),
        (_response(200, {"id": 1}), "any", "required header X-Rate missing"),
        (_response(500), "any", "server error 500"),
        (_response(201), "any", "status 201 is not documented"),
        (_response(422), "success", "a valid request was answered 422, not a 2xx"),
        (_response(200, {"id": 1}, **{"X-Rate": "5"}), "rejected", "answered 200, not a 4xx"),
        (_response(404), "2xx", "answered 404, not a 2xx"),
    ],
)
def test_each_broken_promise_is_named(response: httpx.Response, expect: str, problem: str) -> None:
    assert any(problem in found for found in CONTRACT.problems(response, GET, expect))


def test_an_undocumented_content_type_is_named() -> None:
    response = httpx.Response(
        200,
        text="id=1",
        headers={"content-type": "text/plain", "X-Rate": "5"},
        request=httpx.Request("GET", "http://api.test/items/1"),
    )
    assert CONTRACT.problems(response, GET, "any") == [
        "content type 'text/plain' is not documented (application/json)"
    ]


def test_gone_wants_404_or_410_and_read_back_compares_the_fields_sent() -> None:
    assert gone_problems(CONTRACT, _response(404), GET) == []
    assert gone_problems(CONTRACT, _response(200, {"id": 1}), GET) == [
        f"still there after the delete: {GET} answered 200"
    ]
    assert differing_fields({"a": 1.0, "b": "x"}, {"a": 1, "b": "y", "id": 3}) == [
        "b: sent 'x', read back 'y'"
    ]


def test_the_check_fixture_fills_placeholders_and_fails_with_the_exchange() -> None:
    check = Checks(CONTRACT)
    assert check.fill(("/items/{id}", {"json": {"ref": "{id}"}}), id=7) == (
        "/items/7",
        {"json": {"ref": 7}},
    )
    with pytest.raises(AssertionError, match=r"server error 500[\s\S]*GET http://api.test"):
        check(_response(500), GET)
