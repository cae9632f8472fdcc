"""Inputs ``aqe generate`` tries for higher-order code, without a process: domains only."""

from __future__ import annotations

import ast
import collections.abc
import inspect
import textwrap
from typing import Any

from aqe._generate._domain import domain_for, hints_of, module_facts
from aqe._generate._properties import _built
from aqe._generate._values import stdlib_namespace, to_source

SOURCE = textwrap.dedent(
    """
    from collections.abc import Callable, Iterable
    from datetime import date, datetime, timezone, timedelta

    def apply(func: Callable[[str], int], text: str) -> int:
        return func(text)

    def combine(pred, a, b):
        if pred(a, b):
            return a
        return b

    def first(iterable):
        return next(iter(iterable), None)

    def total(values: Iterable[int]) -> int:
        return sum(values)

    def make(default_factory):
        return default_factory()

    def when(day: date) -> str:
        return day.isoformat()

    def helper(x):
        return x
    """
)


def _domain(name: str) -> tuple[list[Any], dict[str, Any]]:
    module: dict[str, Any] = {"__name__": "sample_inputs"}
    exec(compile(SOURCE, "sample_inputs.py", "exec", dont_inherit=True), module)
    namespace = {**stdlib_namespace(), **module}
    tree = ast.parse(SOURCE)
    facts = module_facts(tree, namespace)
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    func = namespace[name]
    param = next(iter(inspect.signature(func).parameters.values()))
    domain = domain_for(param, hints_of(func, namespace).get(param.name), node, facts)
    return [eval(src, dict(namespace)) for src in domain.candidates], namespace


def test_a_callable_hint_gets_callables_fitting_its_argument_type() -> None:
    values, _ = _domain("apply")
    assert str.lower in values and len in values
    assert all(callable(v) for v in values)


def test_a_parameter_called_with_two_arguments_gets_two_argument_callables() -> None:
    values, _ = _domain("combine")
    callables = [v for v in values if callable(v)]
    assert callables
    for func in callables[:6]:
        func(1, 2)  # each takes two arguments


def test_iterables_include_iterators_and_ranges() -> None:
    values, _ = _domain("first")
    assert any(isinstance(v, collections.abc.Iterator) for v in values)
    values, _ = _domain("total")
    assert any(isinstance(v, range) for v in values)


def test_a_factory_parameter_gets_zero_argument_constructors() -> None:
    values, _ = _domain("make")
    assert list in values and dict in values


def test_dates_are_written_with_the_names_the_module_binds() -> None:
    values, namespace = _domain("when")
    import datetime as dt

    assert values and all(isinstance(v, dt.date) for v in values)
    aware = dt.datetime(2024, 1, 2, 3, 4, tzinfo=dt.timezone(dt.timedelta(hours=-7)))
    source = to_source(aware, namespace)
    assert source is not None and not source.startswith("datetime.datetime")
    assert eval(source, dict(namespace)) == aware


def test_property_strategies_are_built_from_the_inputs_types_never_sampled() -> None:
    assert _built([3, 9])[-1] == "st.integers(min_value=3, max_value=9)"
    assert _built(["ab", "ba"]) == ["st.text(alphabet='ab', max_size=2)"]
    assert _built([[1], [2, 3]])[0].startswith("st.lists(st.integers(")
    assert not any("sampled_from" in s for s in _built([b"x", b"yz"]))
