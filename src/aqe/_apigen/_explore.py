"""``--explore``: a Hypothesis search over each operation's inputs, within the budget.

Requests are drawn from the schemas (hypothesis-jsonschema); a server error, an
undocumented status or a body that breaks its schema fails the search, Hypothesis shrinks
the request to its smallest form, and that request is written as a plain case. Only
failures that give the same verdict when sent twice more are kept.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from ._cases import Builder, Case
from ._contract import Contract
from ._probe import send_case
from ._spec import Operation
from ._values import deref

#: Examples per operation at most; the budget usually ends the search first.
MAX_EXAMPLES = 60


def _inline(contract: Contract, schema: Any, depth: int = 0) -> Any:
    """``schema`` with its ``$ref``s replaced by what they name (recursion cut at depth 8)."""
    if isinstance(schema, list):
        return [_inline(contract, item, depth) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        if depth > 8:
            return {}
        return _inline(contract, contract.resolve(schema), depth + 1)
    return {
        key: (
            _inline(contract, value, depth)
            if key not in ("example", "examples", "default", "enum", "const")
            else value
        )
        for key, value in schema.items()
        if key not in ("discriminator", "xml", "externalDocs", "readOnly", "writeOnly")
    }


def _strategy(contract: Contract, builder: Builder, op: Operation) -> Any:
    from hypothesis import strategies as st
    from hypothesis_jsonschema import from_schema

    query_props = {}
    required = []
    path_props = {}
    for param in op.parameters:
        if param.where not in ("query", "path"):
            continue
        schema = _inline(contract, param.schema)
        if param.where == "path":
            # Path segments must be non-empty and printable to reach the operation at all.
            if deref(contract, schema).get("type") == "string":
                schema = {
                    **schema,
                    "minLength": 1,
                    "pattern": schema.get("pattern", "^[A-Za-z0-9_-]+$"),
                }
            path_props[param.name] = schema
        else:
            query_props[param.name] = schema
            if param.required:
                required.append(param.name)
    parts: dict[str, Any] = {
        "query": from_schema(
            {
                "type": "object",
                "properties": query_props,
                "required": required,
                "additionalProperties": False,
            }
        ),
        "path": from_schema(
            {
                "type": "object",
                "properties": path_props,
                "required": list(path_props),
                "additionalProperties": False,
            }
        ),
    }
    if op.body is not None:
        parts["body"] = from_schema(_inline(contract, op.body[1]))
    return st.fixed_dictionaries(parts)


def _case(builder: Builder, op: Operation, drawn: dict[str, Any], index: int) -> Case:
    values = {}
    by_name = {(p.name, p.where): p for p in op.parameters}
    for where in ("query", "path"):
        for name, value in drawn[where].items():
            values[by_name[(name, where)]] = value
    for param, value in builder.param_values(op, full=False).items():
        values.setdefault(param, value)
    url, options = builder.request(op, values, drawn.get("body", ...))
    return Case(op.name, "explored", f"found {index}", url, options, "any")


def _search(
    clients: dict[bool, httpx.Client],
    contract: Contract,
    builder: Builder,
    op: Operation,
    strategy: Any,
    stop_at: float,
    seed: int,
) -> dict[str, dict[str, Any]]:
    """Kind of failure -> the last (so the shrunk) input that failed that way."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as fix_seed

    failures: dict[str, dict[str, Any]] = {}

    @fix_seed(seed)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(strategy)
    def search(drawn: dict[str, Any]) -> None:
        if time.monotonic() > stop_at and not failures:
            return
        outcome = send_case(clients, contract, _case(builder, op, drawn, 0))
        if outcome.problems:
            failures[outcome.problems[0].split(" ", 2)[0]] = drawn
            raise AssertionError(outcome.problems[0])

    try:
        search()
    except Exception:
        pass
    return failures


def explore(
    clients: dict[bool, httpx.Client],
    contract: Contract,
    builder: Builder,
    ops: list[Operation],
    budget: float,
    seed: int,
) -> list[tuple[Operation, list[Case]]]:
    """Per operation, the minimal failing requests found (one per kind of failure)."""
    deadline = time.monotonic() + budget
    share = budget / max(len(ops), 1)
    found: list[tuple[Operation, list[Case]]] = []
    for op in ops:
        if time.monotonic() >= deadline:
            break
        try:
            strategy = _strategy(contract, builder, op)
        except Exception:  # a schema hypothesis-jsonschema cannot draw from
            continue
        stop_at = min(time.monotonic() + share, deadline)
        failures = _search(clients, contract, builder, op, strategy, stop_at, seed)
        cases: list[Case] = []
        for drawn in failures.values():
            case = _case(builder, op, drawn, len(cases) + 1)
            first = send_case(clients, contract, case)
            second = send_case(clients, contract, case)
            if first.problems and first.verdict == second.verdict:
                label = first.problems[0][:60]
                cases.append(Case(case.op, case.kind, label, case.url, case.options, case.expect))
        if cases:
            found.append((op, cases))
    return found
