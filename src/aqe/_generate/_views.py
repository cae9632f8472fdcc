"""Public views of values that have no literal: what an oracle may assert instead.

A test that compares ``vars(obj)`` or ``obj._cache`` breaks on the first refactor that
renames a private field, though the behaviour is the same. When a value cannot be written
as source, the oracle goes through its public face instead: ``dict(x)`` for a mapping,
``list(x)`` for a sized container, or its public attributes and properties
(``attrgetter('a', 'b')(x)``). Underscore names are never part of a view.
"""

from __future__ import annotations

import collections.abc
import inspect
import operator
import types
from typing import Any

from ._values import to_source

#: At most this many public attributes make one ``attrgetter`` view.
MAX_ATTRS = 8
#: A view is a template over ``{}``, the call or value it looks at.
DICT_VIEW = "dict({})"
LIST_VIEW = "list({})"
LEN_VIEW = "len({})"


def apply_view(view: str, value: Any) -> Any:
    """The view's value for ``value`` (the template evaluated with ``value`` in it)."""
    if not view:
        return value
    return eval(view.format("_aqe_v"), {"attrgetter": operator.attrgetter, "_aqe_v": value})


def public_attributes(value: Any) -> list[str]:
    """Public instance attributes and public properties of ``value``'s class, by name."""
    names: list[str] = []
    with_dict = getattr(value, "__dict__", None)
    if isinstance(with_dict, dict):
        names += [n for n in with_dict if isinstance(n, str) and _public(n)]
    for cls in type(value).__mro__:
        if cls is object or cls.__module__ == "builtins":
            continue
        for name, raw in vars(cls).items():
            if _public(name) and isinstance(raw, property) and name not in names:
                names.append(name)
    slots = [s for c in type(value).__mro__ for s in getattr(c, "__slots__", ()) or ()]
    names += [s for s in slots if isinstance(s, str) and _public(s) and s not in names]
    return names


def _public(name: str) -> bool:
    return name.isidentifier() and not name.startswith("_")


#: Arguments a returned function is observed on: text that sorts differently as text and
#: as numbers, then numbers (a key function, a converter, a predicate).
PROBES: tuple[tuple[Any, ...], ...] = (
    ("a10", "a2", "A1", "b", "", "1.5"),
    (0, 3, -2, 10),
)


_FUNCTION_LIKE = {"partial", "_lru_cache_wrapper", "itemgetter", "attrgetter", "methodcaller"}


def _called_view(value: Any, namespace: dict[str, Any]) -> tuple[str, str] | None:
    """A returned function (a key, a converter, a decorator's result) is observed by what
    it returns: ``list(map(f, [...]))`` over the probe arguments it accepts."""
    for probes in PROBES:
        accepted = []
        results = []
        for probe in probes:
            try:
                result = value(probe)
            except Exception:
                continue
            source = to_source(result, namespace)
            if source is None:
                continue
            accepted.append(probe)
            results.append(source)
        if len(accepted) >= 2:
            args = to_source(accepted, namespace)
            return f"list(map({{}}, {args}))", "[" + ", ".join(results) + "]"
    return _decorated_view(value, namespace)


#: Functions a returned decorator is applied to before its result is observed.
FUNCTION_PROBES = ("str.upper", "abs", "len")


def _decorated_view(value: Any, namespace: dict[str, Any]) -> tuple[str, str] | None:
    """A returned decorator (a function that takes a function and returns one) is
    applied to a plain function, and the function it makes is observed on the probes."""
    for probe in FUNCTION_PROBES:
        try:
            made = value(eval(probe, {}))
        except Exception:
            continue
        if not callable(made) or isinstance(made, type) or made is value:
            continue
        for probes in PROBES:
            pairs = []
            for arg in probes:
                try:
                    result = made(arg)
                except Exception:
                    continue
                source = to_source(result, namespace)
                if source is not None:
                    pairs.append((arg, source))
            if len(pairs) >= 2:
                args = to_source([a for a, _ in pairs], namespace)
                results = "[" + ", ".join(s for _, s in pairs) + "]"
                return f"list(map({{}}({probe}), {args}))", results
    return None


def views(value: Any, namespace: dict[str, Any]) -> list[tuple[str, str]]:
    """(view, source of the viewed value) for every public view that can be written down,
    the most telling first: the whole mapping or list, then its public attributes."""
    if isinstance(value, (types.ModuleType, type, types.GeneratorType)):
        return []
    if inspect.isroutine(value) or type(value).__name__ in _FUNCTION_LIKE:
        called = _called_view(value, namespace)
        return [called] if called is not None else []
    out: list[tuple[str, str]] = []
    if isinstance(value, collections.abc.Mapping):
        source = _safe_source(lambda: dict(value), namespace)
        if source is not None:
            out.append((DICT_VIEW, source))
    elif (
        isinstance(value, collections.abc.Collection)
        and not isinstance(value, collections.abc.Iterator)
        and not isinstance(value, (str, bytes))
    ):
        source = _safe_source(lambda: list(value), namespace)
        if source is not None:
            out.append((LIST_VIEW, source))
        else:
            source = _safe_source(lambda: len(value), namespace)
            if source is not None:
                out.append((LEN_VIEW, source))
    attrs: list[tuple[str, str]] = []
    for name in public_attributes(value):
        try:
            raw = inspect.getattr_static(value, name)
        except AttributeError:
            continue
        if isinstance(raw, (types.FunctionType, staticmethod, classmethod)):
            continue
        source = _safe_source(lambda name=name: getattr(value, name), namespace)
        if source is not None:
            attrs.append((name, source))
        if len(attrs) >= MAX_ATTRS:
            break
    if len(attrs) == 1:
        out.append(("{}." + attrs[0][0], attrs[0][1]))
    elif attrs:
        names = ", ".join(repr(n) for n, _ in attrs)
        out.append((f"attrgetter({names})({{}})", "(" + ", ".join(s for _, s in attrs) + ")"))
    return out


def _safe_source(get: Any, namespace: dict[str, Any]) -> str | None:
    try:
        value = get()
    except Exception:
        return None
    if callable(value) and not isinstance(value, type):
        return None
    return to_source(value, namespace)


def best_view(value: Any, namespace: dict[str, Any]) -> tuple[str, str] | None:
    """The one view an oracle on a returned value uses, or None."""
    found = views(value, namespace)
    return found[0] if found else None
