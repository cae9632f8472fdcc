"""Values from schemas: valid ones validate, invalid ones do not, boundaries sit on edges."""

from __future__ import annotations

from typing import Any

import pytest

from aqe._apigen._contract import Contract
from aqe._apigen._values import boundaries, invalid, valid

SCHEMAS: dict[str, Any] = {
    "Code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{2}$"},
    "Size": {"type": "integer", "minimum": 10, "maximum": 20, "multipleOf": 5},
    "Ratio": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
    "Name": {"type": "string", "minLength": 3, "maxLength": 5},
    "Mail": {"type": "string", "format": "email"},
    "Kind": {"type": "string", "enum": ["a", "b", "c"]},
    "MaybeKind": {"anyOf": [{"$ref": "#/components/schemas/Kind"}, {"type": "null"}]},
    "Tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2, "uniqueItems": True},
    "Pet": {
        "allOf": [
            {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
            {"properties": {"age": {"type": "integer", "minimum": 0}}},
        ]
    },
}
CONTRACT = Contract({"openapi": "3.1.0", "components": {"schemas": SCHEMAS}})


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _errors(value: Any, name: str) -> list[str]:
    return CONTRACT.errors(value, f"#/components/schemas/{name}")


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_a_valid_value_is_valid(name: str) -> None:
    assert _errors(valid(CONTRACT, _ref(name)), name) == []
    assert _errors(valid(CONTRACT, _ref(name), full=True), name) == []


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_boundaries_are_valid_and_invalid_values_are_not(name: str) -> None:
    for label, value in boundaries(CONTRACT, _ref(name)):
        assert _errors(value, name) == [], label
    for label, value in invalid(CONTRACT, _ref(name)):
        assert _errors(value, name) != [], label


def test_boundaries_and_invalid_values_say_which_edge() -> None:
    assert [label for label, _ in boundaries(CONTRACT, _ref("Name"))] == [
        "at minLength 3",
        "at maxLength 5",
    ]
    assert dict(invalid(CONTRACT, _ref("Size")))["above maximum 20"] == 21
    assert "unknown enum value" in dict(invalid(CONTRACT, _ref("MaybeKind")))


def test_all_fields_fills_optional_properties_of_merged_all_of() -> None:
    assert valid(CONTRACT, _ref("Pet")) == {"name": "name-1"}
    assert valid(CONTRACT, _ref("Pet"), full=True) == {"name": "name-1", "age": 1}
