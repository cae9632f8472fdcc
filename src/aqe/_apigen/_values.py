"""Values from schemas: one valid value, the boundaries, and values each schema refuses.

Deterministic (no randomness): the same description always gives the same cases. Every
candidate is checked against its schema with jsonschema before it is used, so a "valid"
value is valid and an "invalid" one is refused by the schema, whatever the schema's shape.
"""

from __future__ import annotations

import re
from typing import Any

from .._generate._regex import matching_strings
from ._contract import Contract

_FORMATS: dict[str, Any] = {
    "date": "2024-01-31",
    "date-time": "2024-01-31T12:00:00Z",
    "time": "12:00:00Z",
    "email": "user@example.com",
    "uuid": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "uri": "https://example.com/a",
    "url": "https://example.com/a",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "byte": "aGVsbG8=",
    "password": "s3cret-Pa55",
}
MAX_DEPTH = 6


def deref(contract: Contract, schema: Any, depth: int = 0) -> dict[str, Any]:
    """``schema`` with its top-level ``$ref``s followed and ``allOf`` merged."""
    schema = contract.resolve(schema)
    if not isinstance(schema, dict):
        return {}
    if "allOf" in schema and depth < MAX_DEPTH:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            part = deref(contract, part, depth + 1)
            for key, value in part.items():
                if key == "properties":
                    merged["properties"] = {**merged.get("properties", {}), **value}
                elif key == "required":
                    merged["required"] = [*merged.get("required", []), *value]
                else:
                    merged.setdefault(key, value)
        return merged
    return schema


def types(schema: dict[str, Any]) -> list[str]:
    kind = schema.get("type")
    if isinstance(kind, list):
        return [k for k in kind if k != "null"] or ["null"]
    if isinstance(kind, str):
        return [kind]
    if "properties" in schema:
        return ["object"]
    if "items" in schema:
        return ["array"]
    return []


def _branch(contract: Contract, schema: dict[str, Any], depth: int) -> dict[str, Any] | None:
    """The first non-null branch of an ``anyOf``/``oneOf``."""
    for key in ("oneOf", "anyOf"):
        for option in schema.get(key) or []:
            option = deref(contract, option, depth + 1)
            if types(option) != ["null"] and option.get("const", 0) is not None:
                return option
    return None


def valid(
    contract: Contract, schema: Any, name: str = "", full: bool = False, depth: int = 0
) -> Any:
    """One plain valid value: the example, default or first enum value, else built by type.

    ``full`` fills optional properties too (the "all fields" case).
    """
    schema = deref(contract, schema, depth)
    for key in ("example", "default"):
        if key in schema and schema[key] is not None:
            return schema[key]
    if isinstance(schema.get("examples"), list) and schema["examples"]:
        return schema["examples"][0]
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return next((v for v in schema["enum"] if v is not None), schema["enum"][0])
    branch = _branch(contract, schema, depth)
    if branch is not None:
        return valid(contract, branch, name, full, depth + 1)
    kind = (types(schema) or ["string"])[0]
    if depth > MAX_DEPTH:
        return None if kind == "null" else {} if kind == "object" else [] if kind == "array" else 1
    if kind == "object":
        props = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        return {
            key: valid(contract, sub, key, full, depth + 1)
            for key, sub in props.items()
            if key in required or (full and not deref(contract, sub, depth + 1).get("readOnly"))
        }
    if kind == "array":
        count = max(int(schema.get("minItems", 1 if full else 0)), 0)
        if count == 0 and not full:
            return []
        item = valid(contract, schema.get("items", {}), name, full, depth + 1)
        if schema.get("uniqueItems") and count > 1:
            rest = [valid_nth(contract, schema.get("items", {}), n) for n in range(1, count)]
            return [item, *rest]
        return [item] * max(count, 1)
    if kind in ("integer", "number"):
        return _number(schema, kind)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string(schema, name)


def valid_nth(contract: Contract, schema: Any, n: int) -> Any:
    base = valid(contract, schema)
    if isinstance(base, str):
        return f"{base}{n}"
    if isinstance(base, int) and not isinstance(base, bool):
        return base + n
    return base


def _number(schema: dict[str, Any], kind: str) -> int | float:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    value: float = 1
    if isinstance(low, (int, float)) and not isinstance(low, bool):
        value = low + (1 if "exclusiveMinimum" in schema and "minimum" not in schema else 0)
        if value < 1 and (not isinstance(high, (int, float)) or high >= 1):
            value = 1 if value <= 1 else value
    if isinstance(high, (int, float)) and not isinstance(high, bool) and value > high:
        value = high - (1 if "exclusiveMaximum" in schema and "maximum" not in schema else 0)
    step = schema.get("multipleOf")
    if isinstance(step, (int, float)) and step > 0:
        value = (value // step + (1 if value % step else 0)) * step
    return int(value) if kind == "integer" else float(value)


def _string(schema: dict[str, Any], name: str) -> str:
    low = int(schema.get("minLength", 0))
    high = schema.get("maxLength")
    if isinstance(schema.get("pattern"), str):
        for candidate in matching_strings(schema["pattern"], count=6):
            if low <= len(candidate) and (high is None or len(candidate) <= high):
                return candidate
    if schema.get("format") in _FORMATS:
        return str(_FORMATS[schema["format"]])
    word = re.sub(r"[^a-z0-9]", "", name.lower())[:12] or "text"
    word = f"{word}-1"
    if len(word) < low:
        word = word + "x" * (low - len(word))
    if isinstance(high, int) and len(word) > high:
        word = word[:high]
    return word


def boundaries(contract: Contract, schema: Any) -> list[tuple[str, Any]]:
    """(label, value) at each declared edge: min/max, lengths, every enum value (a few)."""
    schema = deref(contract, schema)
    branch = _branch(contract, schema, 0)
    if branch is not None and not types(schema):
        schema = branch
    found: list[tuple[str, Any]] = []
    if schema.get("enum") and len(schema["enum"]) > 1:
        found += [(f"= {v!r}", v) for v in schema["enum"][1:4] if v is not None]
    kind = (types(schema) or [""])[0]
    if kind in ("integer", "number"):
        for key, label in (("minimum", "at minimum"), ("maximum", "at maximum")):
            value = schema.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = int(value) if kind == "integer" else value
                found.append((f"{label} {value}", value))
    if kind == "string" and "pattern" not in schema and "format" not in schema:
        low, high = schema.get("minLength"), schema.get("maxLength")
        if isinstance(low, int) and low > 0:
            found.append((f"at minLength {low}", "a" * low))
        if isinstance(high, int) and high < 10_000:
            found.append((f"at maxLength {high}", "a" * high))
    if kind == "array":
        high = schema.get("maxItems")
        if isinstance(high, int) and 0 < high <= 50:
            items = [valid_nth(contract, schema.get("items", {}), n) for n in range(high)]
            found.append((f"{high} items (maxItems)", items))
    return found


def invalid(contract: Contract, schema: Any) -> list[tuple[str, Any]]:
    """(label, value) the schema refuses: wrong type, beyond each bound, off the pattern or enum.

    A value may still be valid (another ``anyOf`` branch takes it): callers check.
    """
    schema = deref(contract, schema)
    branch = _branch(contract, schema, 0)
    if branch is not None and not types(schema):
        schema = branch
    found: list[tuple[str, Any]] = []
    kind = (types(schema) or [""])[0]
    if kind in ("string", "integer", "number", "boolean"):
        found.append(("wrong type (an object)", {"unexpected": "object"}))
    if kind in ("integer", "number"):
        # Lenient parsers take true for 1; the schema does not.
        found.append(("wrong type (a boolean)", True))
    elif kind in ("object", "array"):
        found.append(("wrong type (a string)", "not-an-" + kind))
    if kind in ("integer", "number"):
        for key, sign in (
            ("minimum", -1),
            ("maximum", 1),
            ("exclusiveMinimum", 0),
            ("exclusiveMaximum", 0),
        ):
            value = schema.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                side = "below" if "inimum" in key else "above"
                value = int(value) if kind == "integer" else value
                out = value + sign if sign else value
                found.append((f"{side} {key} {value}", int(out) if kind == "integer" else out))
    if kind == "string":
        low, high = schema.get("minLength"), schema.get("maxLength")
        if isinstance(low, int) and low > 0:
            found.append((f"shorter than minLength {low}", "a" * (low - 1)))
        if isinstance(high, int) and high < 10_000:
            found.append((f"longer than maxLength {high}", "a" * (high + 1)))
        if isinstance(schema.get("pattern"), str):
            found.append(("off pattern", "\u00a7 not matching \u00a7"))
    if schema.get("enum"):
        found.append(("unknown enum value", "not-a-listed-value"))
    if kind == "array":
        high = schema.get("maxItems")
        if isinstance(high, int) and high < 50:
            items = [valid_nth(contract, schema.get("items", {}), n) for n in range(high + 1)]
            found.append((f"more than maxItems {high}", items))
    return found


def as_query(kind: str, label: str, value: Any) -> tuple[str, Any] | None:
    """An invalid value as a query/path/header string, when it stays invalid as text."""
    if isinstance(value, dict):
        if kind in ("integer", "number"):
            return "wrong type (not a number)", "not-a-number"
        if kind == "boolean":
            return "wrong type (not a boolean)", "not-a-boolean"
        return None
    if isinstance(value, list):
        return None
    return label, value
