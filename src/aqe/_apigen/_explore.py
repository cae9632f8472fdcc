"""``--explore``: a Hypothesis search over each operation's inputs, within the budget.

Requests are drawn from the schemas (``_from_schema``); a server error, an
undocumented status or a body that breaks its schema fails the search, Hypothesis shrinks
the request to its smallest form, and that request is written as a plain case. Only
failures that give the same verdict when sent twice more are kept.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import httpx

from ._cases import Builder, Case
from ._contract import Contract
from ._probe import send_case
from ._spec import Operation
from ._values import _FORMATS, deref

#: Examples per operation at most; the budget usually ends the search first.
MAX_EXAMPLES = 60


def _from_schema(contract: Contract, schema: Any, depth: int = 0) -> Any:
    """A Hypothesis strategy of values ``schema`` accepts, for the shapes APIs use.

    hypothesis-jsonschema would do this, but its releases lag Hypothesis' internals;
    values drawn here are filtered through jsonschema where a shape is only approximated.
    """
    from hypothesis import strategies as st

    schema = deref(contract, schema)
    if depth > 6:
        return st.just(None) if "null" in (schema.get("type") or []) else st.nothing()
    if "const" in schema:
        return st.just(schema["const"])
    if schema.get("enum"):
        return st.sampled_from(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return st.one_of([_from_schema(contract, s, depth + 1) for s in schema[key]])
    kinds = schema.get("type")
    if isinstance(kinds, list):
        return st.one_of([_from_schema(contract, {**schema, "type": k}, depth) for k in kinds])
    kind = kinds or (
        "object" if "properties" in schema else "array" if "items" in schema else "string"
    )
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        if kind == "integer":
            return st.integers(
                None
                if low is None
                else int(low)
                + (1 if "exclusiveMinimum" in schema and "minimum" not in schema else 0),
                None
                if high is None
                else int(high)
                - (1 if "exclusiveMaximum" in schema and "maximum" not in schema else 0),
            )
        return st.floats(
            low,
            high,
            allow_nan=False,
            allow_infinity=False,
            exclude_min="exclusiveMinimum" in schema and "minimum" not in schema,
            exclude_max="exclusiveMaximum" in schema and "maximum" not in schema,
        )
    if kind == "string":
        if isinstance(schema.get("pattern"), str):
            return st.from_regex(schema["pattern"], fullmatch=False)
        if schema.get("format") in _FORMATS:
            return st.just(_FORMATS[schema["format"]])
        return st.text(
            min_size=int(schema.get("minLength", 0)),
            max_size=min(int(schema.get("maxLength", 40)), 40),
        )
    if kind == "array":
        return st.lists(
            _from_schema(contract, schema.get("items", {}), depth + 1),
            min_size=int(schema.get("minItems", 0)),
            max_size=min(int(schema.get("maxItems", 4)), 4),
        )
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    return st.fixed_dictionaries(
        {k: _from_schema(contract, v, depth + 1) for k, v in props.items() if k in required},
        optional={
            k: _from_schema(contract, v, depth + 1) for k, v in props.items() if k not in required
        },
    )


def _valid(contract: Contract, pointer: str) -> Any:
    return lambda value: not contract.errors(value, pointer)


def _strategy(contract: Contract, builder: Builder, op: Operation) -> Any:
    from hypothesis import strategies as st

    query: dict[str, Any] = {}
    optional: dict[str, Any] = {}
    path: dict[str, Any] = {}
    owned = {
        param
        for path, (_c, param) in builder.owners.items()
        if op.path == path or op.path.startswith(path + "/")
    }
    for param in op.parameters:
        if param.where not in ("query", "path") or (param.where == "path" and param.name in owned):
            continue  # an owned id comes from a resource the case's setup makes
        drawn = _from_schema(contract, param.schema)
        if param.pointer:
            drawn = drawn.filter(_valid(contract, param.pointer))
        if param.where == "path":
            # Path segments must be non-empty to reach the operation at all.
            path[param.name] = drawn.filter(lambda v: str(v) != "" and "/" not in str(v))
        elif param.required:
            query[param.name] = drawn
        else:
            optional[param.name] = drawn
    parts: dict[str, Any] = {
        "query": st.fixed_dictionaries(query, optional=optional),
        "path": st.fixed_dictionaries(path),
    }
    if op.body is not None:
        parts["body"] = _from_schema(contract, op.body[1]).filter(_valid(contract, op.body[2]))
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
    (case,) = builder.attach(op, [Case(op.name, "explored", f"found {index}", url, options, "any")])
    return case


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


def _label(problem: str) -> str:
    """A failure's kind without its values: ``body does not match its schema: price``."""
    parts = problem.split(": ")
    return ": ".join(parts[:2]) if parts[0].startswith("body") else parts[0]


def explore(
    clients: dict[bool, httpx.Client],
    contract: Contract,
    builder: Builder,
    ops: list[Operation],
    budget: float,
    seed: int,
    skipped: list[str],
    known: dict[str, set[tuple[str, str]]] | None = None,
) -> list[tuple[Operation, list[Case]]]:
    """Per operation, the minimal failing requests found (one per kind of failure); an
    operation the search could not draw requests for is named in ``skipped``."""
    known = known or {}
    deadline = time.monotonic() + budget
    share = budget / max(len(ops), 1)
    found: list[tuple[Operation, list[Case]]] = []
    for op in ops:
        if time.monotonic() >= deadline:
            break
        stop_at = min(time.monotonic() + share, deadline)
        try:
            strategy = _strategy(contract, builder, op)
            failures = _search(clients, contract, builder, op, strategy, stop_at, seed)
        except Exception as exc:  # a schema it cannot draw from, a request httpx refuses
            skipped.append(f"{op.name}: {type(exc).__name__}: {str(exc)[:100]}")
            continue
        cases: list[Case] = []
        for drawn in failures.values():
            case = _case(builder, op, drawn, len(cases) + 1)
            first = send_case(clients, contract, case)
            second = send_case(clients, contract, case)
            if (
                first.problems
                and first.verdict == second.verdict
                and (case.url, repr(case.options)) not in known.get(op.name, set())
            ):
                cases.append(replace(case, label=_label(first.problems[0])))
        if cases:
            found.append((op, cases))
    return found
