"""Candidate inputs for each parameter, as source expressions.

Type hints come first (``Literal``, ``Enum``, ``Optional``, unions, dataclasses,
``TypedDict``, collections, defaults); without hints the parameter's default, its name,
``isinstance`` checks, comparisons and method calls in the body say what it takes. The
module's own constants, the strings its regexes match, and values compared against in
the body are what reach deep branches, so they come before generic values.
"""

from __future__ import annotations

import ast
import collections.abc
import dataclasses
import enum
import functools
import inspect
import itertools
import re
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ._regex import matching_strings
from ._values import requalified, to_source

_GENERIC: dict[type, list[str]] = {
    str: [
        "'hello world'",
        "''",
        "'a'",
        "'Hello_World-2'",
        "'  padded  '",
        "'123'",
        "'x' * 60",
        "'ünïcödé'",
        "'CamelCase'",
        "'a.b,c;d'",
        "'\\n'",
        "'-3.75'",
        "'nan'",
        "'inf'",
        "'1e5'",
    ],
    int: ["0", "1", "-1", "2", "10", "1000", "-42", "1234567", "999999999", "10 ** 12", "1024"],
    float: [
        "0.0",
        "1.5",
        "-2.25",
        "1000000.0",
        "0.001",
        "1e+21",
        "float('inf')",
        "float('nan')",
        "-float('inf')",
    ],
    bool: ["True", "False"],
    bytes: ["b''", "b'abc'", "b'\\x00\\xff'"],
    type(None): ["None"],
    complex: [],
}
_NUMERIC_TEXT = ["'nan'", "'-3.75'", "'1e5'", "'inf'"]
_NAME_HINTS: list[tuple[re.Pattern[str], Any]] = [
    (
        re.compile(
            r"(^|_)(n|num|count|size|width|length|len|index|idx|limit|level|depth|"
            r"precision|digits|ndigits|indent|max|min|start|stop|step|pos|offset)($|_)"
        ),
        int,
    ),
    # Run-together names: ``maxsize``, ``maxlen``, ``bufsize``, ``ttl``, ``timeout``.
    (
        re.compile(r"^(max|min)[a-z]+$|^[a-z]*(size|count|len|limit|timeout|ttl|interval|delay)$"),
        int,
    ),
    (
        re.compile(
            r"(^|_)(s|st|str|string|text|txt|word|name|line|sep|prefix|suffix|char|"
            r"pattern|fmt|format|title|label|msg|message|value_str|path|url|token)($|_)"
        ),
        str,
    ),
    (
        re.compile(r"(^|_)(items|seq|sequence|values|iterable|lst|list|elements|args|parts)($|_)"),
        list,
    ),
    (re.compile(r"(^|_)(flag|is|has|use|enable|strict|keep|allow)($|_)"), bool),
    (
        re.compile(
            r"^(keyfunc|func|function|fn|f|pred|predicate|callback|cb|transform|mapper|"
            r"reducer|cmp|hook|handler|getter|selector|condition)$|(^|_)(func|fn|pred)$"
        ),
        collections.abc.Callable[[typing.Any], typing.Any],
    ),
    (
        re.compile(r"(^|_)(factory|default_factory|constructor|maker|timer|clock)$"),
        collections.abc.Callable[[], typing.Any],
    ),
    # ``getsizeof``, ``getkey``: a getter of one value.
    (re.compile(r"^get[a-z]+$"), collections.abc.Callable[[typing.Any], typing.Any]),
    (
        re.compile(r"^(iterables|seqs|sequences|lists|rows|matrix|groups|nested|pairs)$"),
        list[list[int]],
    ),
    (re.compile(r"(^|_)(mapping|dict|dct|mapper_dict|table|lookup|kwargs_dict)$"), dict[str, int]),
    (re.compile(r"(^|_)(iterator|iterable|it|iter)$"), collections.abc.Iterable[int]),
]
#: Callables a parameter that takes one is given, by how many arguments it is called with:
#: builtins, ``operator`` functions, small lambdas and constructors (factories).
_CALLABLES: dict[int, list[str]] = {
    # A counter's ``__next__`` is a clock that moves on each call: timers, id makers.
    0: ["list", "itertools.count().__next__", "int", "dict", "lambda: None", "lambda: 'x'", "set"],
    1: [
        "str",
        "len",
        "bool",
        "lambda x: x",
        "abs",
        "str.lower",
        "lambda x: not x",
        "lambda x: x * 2",
        "operator.itemgetter(0)",
        "type",
        "lambda x: None",
    ],
    2: [
        "operator.add",
        "max",
        "lambda a, b: a",
        "operator.eq",
        "operator.lt",
        "min",
        "lambda a, b: (a, b)",
        "operator.mul",
    ],
}
_BY_ARG: dict[type, list[str]] = {
    str: ["str.lower", "str.upper", "len", "str.strip", "lambda s: s[::-1]", "str.isdigit"],
    int: ["abs", "lambda n: n + 1", "lambda n: n % 2 == 0", "bool", "str", "lambda n: -n"],
    float: ["abs", "round", "lambda x: x * 2", "int", "str"],
}
_UNTYPED_LISTS = [
    "[3, 1, 2]",
    "[1, 1, 2, 3, 3]",
    "['b', 'a', 'b']",
    "[(1, 'a'), (2, 'b')]",
    "[[1, 2], [3]]",
    "[0, -1.5, 2]",
]
_ITERABLE_EXTRAS = ["iter([0, 1, 2])", "range(4)", "(x for x in [3, 1, 2])", "'abc'"]

_STR_METHODS = {name for name in dir(str) if not name.startswith("_")} - {"index", "count"}


@dataclass
class Domain:
    """Ordered candidate sources for one parameter, and what its values are."""

    candidates: list[str] = field(default_factory=list)
    kinds: set[type] = field(default_factory=set)

    def add(self, sources: typing.Iterable[str]) -> None:
        for source in sources:
            if source not in self.candidates:
                self.candidates.append(source)


@dataclass
class ModuleFacts:
    """What the whole module offers as inputs: constants, regex matches, instance pools."""

    namespace: dict[str, Any]
    strings: list[str] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)
    regex_strings: list[str] = field(default_factory=list)
    pools: dict[type, list[str]] = field(default_factory=dict)


def module_facts(tree: ast.Module, namespace: dict[str, Any]) -> ModuleFacts:
    facts = ModuleFacts(namespace=namespace)
    strings: list[str] = []
    numbers: list[str] = []
    patterns: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, str) and 0 < len(value) <= 60 and "\n" not in value:
                strings.append(value)
                if _looks_like_regex(value):
                    patterns.append(value)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                numbers.append(repr(value))
        elif isinstance(node, ast.Call) and _is_re_call(node) and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                patterns.append(first.value)
    for value in namespace.values():
        if isinstance(value, re.Pattern):
            patterns.append(value.pattern if isinstance(value.pattern, str) else "")
    facts.strings = [repr(s) for s in dict.fromkeys(strings)][:200]
    facts.numbers = list(dict.fromkeys(numbers))[:60]
    regex_strings: list[str] = []
    for pattern in dict.fromkeys(p for p in patterns if p):
        regex_strings.extend(matching_strings(pattern, count=4))
    facts.regex_strings = [repr(s) for s in dict.fromkeys(regex_strings) if len(s) <= 80][:300]
    return facts


#: Items of one module-level table read for inputs, at most.
MAX_TABLE_ITEMS = 400


def table_strings(tables: typing.Iterable[Any]) -> list[str]:
    """Inputs that reach each row of the module's own tables (rule lists, word sets,
    mappings): a string each of its regexes matches, and its plain words. A function that
    loops over a table of rules is exercised row by row, so a fault in any row shows."""
    out: list[str] = []
    for table in tables:
        if not isinstance(table, (list, tuple, set, frozenset, dict)) or not table:
            continue
        if len(table) > MAX_TABLE_ITEMS:
            continue
        items = list(table.items()) if isinstance(table, dict) else list(table)
        if isinstance(table, (set, frozenset)):
            items = sorted(items, key=repr)
        for item in items:
            fields = item if isinstance(item, tuple) else (item,)
            text = next((f for f in fields if isinstance(f, str)), None)
            if text is None or len(text) > 60 or "\n" in text:
                continue
            if _looks_like_regex(text):
                found = matching_strings(text, count=1)
                if found and len(found[0]) <= 60:
                    out.append(repr(found[0]))
            else:
                out.append(repr(text))
    return list(dict.fromkeys(out))


def _looks_like_regex(value: str) -> bool:
    if not any(ch in value for ch in "\\[]()^$*+?|"):
        return False
    try:
        re.compile(value)
    except re.error:
        return False
    return True


def _is_re_call(node: ast.Call) -> bool:
    func = node.func
    return (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id == "re"
        and func.attr in {"compile", "match", "search", "fullmatch", "sub", "split", "findall"}
    )


def type_aliases(
    tree: ast.Module, namespace: dict[str, Any], package: str | None = None
) -> dict[str, Any]:
    """Names the module defines or imports only for type checkers (``if TYPE_CHECKING:``)."""
    scope = {**vars(typing), **namespace}
    aliases: dict[str, Any] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            for stmt in node.body + node.orelse:
                if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                    for name, value in _typing_imports(stmt, package):
                        if name not in namespace:
                            aliases[name] = scope[name] = value
                    continue
                target = value = None
                if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                    target, value = stmt.targets[0], stmt.value
                elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                    target, value = stmt.target, stmt.value
                if not isinstance(target, ast.Name) or target.id in namespace or value is None:
                    continue
                try:
                    alias = eval(ast.unparse(value), dict(scope))
                    if isinstance(alias, str):
                        alias = eval(alias, dict(scope))
                except Exception:
                    continue
                aliases[target.id] = alias
                scope[target.id] = alias
    return aliases


def _typing_imports(
    stmt: ast.Import | ast.ImportFrom, package: str | None
) -> list[tuple[str, Any]]:
    import importlib

    found: list[tuple[str, Any]] = []
    try:
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                module = importlib.import_module(alias.name)
                found.append(((alias.asname or alias.name).split(".")[0], module))
            return found
        base = "." * stmt.level + (stmt.module or "")
        module = importlib.import_module(base, package if stmt.level else None)
        for alias in stmt.names:
            if hasattr(module, alias.name):
                found.append((alias.asname or alias.name, getattr(module, alias.name)))
    except Exception:
        return found
    return found


def hints_of(func: Any, namespace: dict[str, Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func, globalns=namespace)
    except Exception:
        hints = {}
        for name, raw in getattr(func, "__annotations__", {}).items():
            if isinstance(raw, str):
                try:
                    raw = eval(raw, dict(namespace))
                except Exception:
                    continue
            hints[name] = raw
        return hints


def domain_for(
    param: inspect.Parameter,
    hint: Any,
    body: ast.AST | None,
    facts: ModuleFacts,
) -> Domain:
    domain = Domain()
    if param.default is not inspect.Parameter.empty:
        default = to_source(param.default, facts.namespace)
        if default is not None:
            domain.add([default])
    body_values = _body_constants(body, param.name)
    if hint is not None and hint is not inspect.Parameter.empty and hint is not typing.Any:
        _from_hint(domain, hint, facts, 0)
    else:
        # Interleave the inferred kinds so each has early candidates.
        subdomains = []
        for kind in _inferred_kinds(param, body):
            sub = Domain()
            _from_hint(sub, kind, facts, 0)
            subdomains.append(sub)
            domain.kinds |= sub.kinds
        for batch in itertools.zip_longest(*(sub.candidates for sub in subdomains)):
            domain.add([src for src in batch if src is not None])
    # Classes the body checks with isinstance (a date, a timedelta, the module's own
    # class): their values reach the branches a builtin kind cannot.
    checked: list[str] = []
    for cls in _isinstance_classes(body, param.name, facts.namespace):
        sub = Domain()
        _from_hint(sub, cls, facts, 1)
        checked += [src for src in sub.candidates[:6] if src not in checked]
    if checked:
        # Right after the first value: the body says these are what it handles.
        head = domain.candidates[:1]
        domain.candidates = (
            head
            + [c for c in checked if c not in head]
            + [c for c in domain.candidates[1:] if c not in checked]
        )
    # A parameter named after a class the module binds (``weekday``, ``timezone``) takes
    # its instances: the module's own (``MO``, ``UTC``), then through the constructor.
    domain.add(_named_instances(param.name, facts))
    # Values the body compares this parameter against reach its branches.
    fitting = [src for src in body_values if _fits(src, domain.kinds)]
    head = domain.candidates[:1]
    domain.candidates = (
        head
        + [s for s in fitting if s not in head]
        + [s for s in domain.candidates[1:] if s not in fitting]
    )
    return domain


def _named_instances(name: str, facts: ModuleFacts) -> list[str]:
    """Public module globals that are instances of a class named like the parameter, and
    those of them that are callable called with a small count (``MO(-1)``, ``MO(2)``)."""
    wanted = name.lower().replace("_", "")
    classes = [
        value
        for value in facts.namespace.values()
        if isinstance(value, type)
        and value.__module__ not in ("builtins", "typing")
        and value.__name__.lower().replace("_", "") == wanted
    ]
    if not classes:
        return []
    found: list[str] = []
    for key, value in facts.namespace.items():
        if key.startswith("_") or type(value) not in classes or len(found) >= 8:
            continue
        found.append(key)
        if callable(value) and len(found) <= 2:
            for count in ("-1", "2"):
                try:
                    made = eval(f"{key}({count})", dict(facts.namespace))
                except Exception:
                    continue
                if type(made) is type(value):
                    found.append(f"{key}({count})")
    for cls in classes:
        sub = Domain()
        _from_hint(sub, cls, facts, 1)
        found += [src for src in sub.candidates[:3] if src not in found]
    return found


def _fits(source: str, kinds: set[type]) -> bool:
    if not kinds or object in kinds:
        return True
    try:
        value = ast.literal_eval(source)
    except Exception:
        return False
    return any(isinstance(value, kind) for kind in kinds if isinstance(kind, type))


def _from_hint(domain: Domain, hint: Any, facts: ModuleFacts, depth: int) -> None:
    if depth > 5:
        return
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is None or hint is type(None):
        domain.kinds.add(type(None))
        domain.add(["None"])
        return
    if origin is typing.Literal:
        for value in args:
            source = to_source(value, facts.namespace)
            if source is not None:
                domain.add([source])
                domain.kinds.add(type(value))
        return
    if origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        members = [arg for arg in args if arg is not type(None)]
        subdomains = []
        for member in members:
            sub = Domain()
            _from_hint(sub, member, facts, depth + 1)
            subdomains.append(sub)
            domain.kinds |= sub.kinds
        for batch in itertools.zip_longest(*(sub.candidates for sub in subdomains)):
            domain.add([src for src in batch if src is not None])
        if type(None) in args:
            domain.kinds.add(type(None))
            domain.add(["None"])
        return
    if origin is typing.Annotated:
        _from_hint(domain, args[0], facts, depth + 1)
        return
    if hint is typing.Any or hint is object:
        for kind in (str, int, type(None), list):
            _from_hint(domain, kind, facts, depth + 1)
        domain.kinds.add(object)
        return
    if isinstance(hint, typing.TypeVar):
        bound = hint.__bound__ or (hint.__constraints__[0] if hint.__constraints__ else int)
        _from_hint(domain, bound, facts, depth + 1)
        return
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        domain.kinds.add(hint)
        name = hint.__name__
        if facts.namespace.get(name) is hint:
            domain.add([f"{name}.{member.name}" for member in typing.cast(Any, hint)])
        return
    if isinstance(hint, type) and hint in facts.pools:
        domain.kinds.add(hint)
        domain.add(facts.pools[hint][:12])
        return
    if _is_typeddict(hint):
        domain.kinds.add(dict)
        domain.add(_typeddict_sources(hint, facts, depth))
        return
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        domain.kinds.add(hint)
        if facts.namespace.get(hint.__name__) is hint:
            domain.add(_constructor_sources(typing.cast(type, hint), facts, depth))
        return
    container = origin or hint
    if container in (
        list,
        collections.abc.Sequence,
        collections.abc.Iterable,
        collections.abc.Collection,
        collections.abc.MutableSequence,
        collections.abc.Iterator,
        list,
    ):
        domain.kinds.update({list, tuple})
        _collection(domain, args[0] if args else str, facts, depth, "[{}]")
        if not args and depth < 2:
            # Items of no stated type: numbers out of order, repeats, pairs and nests
            # reach what lists of one string cannot (sorting, counting, unpacking).
            domain.add(_UNTYPED_LISTS)
        if container in (collections.abc.Iterable, collections.abc.Iterator) and depth < 2:
            domain.add(_ITERABLE_EXTRAS if container is collections.abc.Iterable else [])
            domain.add(["iter([0, 1, 2])", "iter([])"])
        return
    if container in (set, frozenset, collections.abc.Set, collections.abc.MutableSet):
        domain.kinds.update({set, frozenset})
        item = Domain()
        _from_hint(item, args[0] if args else str, facts, depth + 1)
        firsts = item.candidates[:3]
        domain.add(["set()"] + ([f"{{{firsts[0]}}}"] if firsts else []))
        return
    if container is tuple:
        domain.kinds.add(tuple)
        if len(args) == 2 and args[1] is Ellipsis:
            _collection(domain, args[0], facts, depth, "({},)")
        elif args:
            parts = []
            for arg in args:
                sub = Domain()
                _from_hint(sub, arg, facts, depth + 1)
                parts.append(sub.candidates[:3] or ["None"])
            for index in range(3):
                row = [p[min(index, len(p) - 1)] for p in parts]
                domain.add(["(" + ", ".join(row) + ("," if len(row) == 1 else "") + ")"])
        else:
            domain.add(["()", "(1, 2)"])
        return
    if container in (dict, collections.abc.Mapping, collections.abc.MutableMapping):
        domain.kinds.add(dict)
        keys, values = Domain(), Domain()
        _from_hint(keys, args[0] if args else str, facts, depth + 1)
        _from_hint(values, args[1] if len(args) > 1 else int, facts, depth + 1)
        domain.add(["{}"])
        pairs = list(itertools.product(keys.candidates[:3], values.candidates[:5]))
        for key, value in sorted(pairs, key=lambda kv: -len(kv[1]))[:8]:
            domain.add([f"{{{key}: {value}}}"])
        if len(keys.candidates) > 1 and values.candidates:
            first, second = keys.candidates[:2]
            domain.add([f"{{{first}: {values.candidates[-1]}, {second}: {values.candidates[0]}}}"])
        return
    if container in (collections.abc.Callable,) or origin is collections.abc.Callable:
        domain.kinds.add(object)
        domain.add(_callables(args, facts))
        return
    if isinstance(hint, type):
        _scalar(domain, hint, facts)


_KNOWN: dict[str, tuple[type, list[str]]] = {
    "SupportsIndex": (int, ["0", "1", "-1", "2"]),
    "SupportsInt": (int, ["0", "1", "-1", "7"]),
    "SupportsFloat": (float, ["0.0", "1.5", "-2.0"]),
    "slice": (slice, ["slice(0, 2)", "slice(1, None)", "slice(None, None, -1)"]),
    "date": (object, ["datetime.date(2024, 2, 29)", "datetime.date(1970, 1, 1)"]),
    "datetime": (
        object,
        [
            "datetime.datetime(2024, 2, 29, 12, 30, 5)",
            "datetime.datetime(1999, 12, 31, 23, 59, 59)",
        ],
    ),
    "timedelta": (
        object,
        [
            "datetime.timedelta(0)",
            "datetime.timedelta(days=1, seconds=5)",
            "datetime.timedelta(seconds=-90)",
        ],
    ),
    "Decimal": (object, ["Decimal('1.5')", "Decimal('-0.001')", "Decimal('12345.678')"]),
    "Fraction": (object, ["Fraction(1, 3)", "Fraction(-7, 2)"]),
}


def _scalar(domain: Domain, kind: type, facts: ModuleFacts) -> None:
    known = _KNOWN.get(kind.__name__)
    if known is not None and kind.__module__ in (
        "typing",
        "builtins",
        "datetime",
        "decimal",
        "fractions",
        "collections.abc",
    ):
        domain.kinds.add(known[0] if known[0] is not object else kind)
        domain.add([requalified(src, facts.namespace) for src in known[1]])
        return
    domain.kinds.add(kind)
    if getattr(kind, "_is_protocol", False):
        domain.add(_GENERIC[int][:3] + _GENERIC[str][:3])
        return
    if kind is bool:
        domain.add(_GENERIC[bool])
    elif issubclass(kind, str):
        domain.add(_GENERIC[str][:3])
        domain.add(_NUMERIC_TEXT)  # parsers of numbers branch on these
        domain.add(facts.regex_strings[:40])
        domain.add(facts.strings[:60])
        domain.add(_GENERIC[str][3:])
    elif issubclass(kind, int):
        domain.add(_GENERIC[int][:4])
        domain.add([n for n in facts.numbers if "." not in n and "e" not in n][:20])
        domain.add(_GENERIC[int][4:])
    elif issubclass(kind, float):
        domain.add(_GENERIC[float][:3] + _GENERIC[int][1:4] + ["999999999", "1234567"])
        domain.add(facts.numbers[:20])
        domain.add(_GENERIC[float][3:])
    elif kind in _GENERIC:
        domain.add(_GENERIC[kind])
    elif kind in facts.pools:
        domain.add(facts.pools[kind][:12])
    elif facts.namespace.get(kind.__name__) is kind:
        domain.add(_constructor_sources(kind, facts, 1))


def _callables(args: tuple[Any, ...], facts: ModuleFacts) -> list[str]:
    """Callables of the arity ``Callable[[...], R]`` asks for (one argument when unsaid):
    by the argument's type first, then general ones, then the module's own functions of
    that arity."""
    arity = len(args[0]) if args and isinstance(args[0], (list, tuple)) else 1
    first = args[0][0] if args and isinstance(args[0], (list, tuple)) and args[0] else None
    out = list(_BY_ARG.get(first, [])) if isinstance(first, type) else []
    out += _CALLABLES.get(arity) or _projections(arity)
    out += _module_functions(facts, arity)
    return list(dict.fromkeys(out))


def _projections(arity: int) -> list[str]:
    """Functions of ``arity`` arguments that return one of them (the last one moved on
    by one too: a time plus a step)."""
    names = [f"a{i}" for i in range(arity)]
    head = ", ".join(names)
    out = [f"lambda {head}: {name}" for name in reversed(names)]
    return [f"lambda {head}: {names[-1]} + 1", *out, "lambda *args: len(args)"]


def _module_functions(facts: ModuleFacts, arity: int) -> list[str]:
    found = []
    for name, value in facts.namespace.items():
        if name.startswith("_") or not inspect.isfunction(value):
            continue
        if getattr(value, "__module__", None) != facts.namespace.get("__name__"):
            continue
        if required_positional(value) == arity:
            found.append(name)
    return found[:4]


def _collection(domain: Domain, item_hint: Any, facts: ModuleFacts, depth: int, shape: str) -> None:
    item = Domain()
    _from_hint(item, item_hint, facts, depth + 1)
    values = item.candidates[:4]
    empty = "[]" if shape.startswith("[") else "()"
    domain.add([empty])
    if values:
        domain.add([shape.format(values[0]) if shape.startswith("[") else f"({values[0]},)"])
    if len(values) >= 3:
        inner = ", ".join(values[:3])
        domain.add([f"[{inner}]" if shape.startswith("[") else f"({inner})"])


def _is_typeddict(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, dict) and hasattr(hint, "__total__")


def _typeddict_sources(hint: Any, facts: ModuleFacts, depth: int) -> list[str]:
    hints = hints_of(hint, facts.namespace)
    parts = []
    for name, field_hint in hints.items():
        sub = Domain()
        _from_hint(sub, field_hint, facts, depth + 1)
        if sub.candidates:
            parts.append((name, sub.candidates))
    sources = []
    for index in range(2):
        items = [f"{name!r}: {cands[min(index, len(cands) - 1)]}" for name, cands in parts]
        sources.append("{" + ", ".join(items) + "}")
    return sources


def _constructor_sources(cls: type, facts: ModuleFacts, depth: int) -> list[str]:
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return []
    hints = hints_of(cls.__init__, facts.namespace)  # type: ignore[misc]
    columns = []
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        sub = Domain()
        if param.default is not inspect.Parameter.empty:
            default = to_source(param.default, facts.namespace)
            if default is not None:
                sub.add([default])
        _from_hint(sub, hints.get(param.name, str), facts, depth + 1)
        if param.default is inspect.Parameter.empty and not sub.candidates:
            return []
        columns.append((param.name, sub.candidates[:6] or ["None"]))
    sources = []
    for index in range(5):
        args = ", ".join(f"{name}={cands[min(index, len(cands) - 1)]}" for name, cands in columns)
        sources.append(f"{cls.__name__}({args})")
    return list(dict.fromkeys(sources))


def _inferred_kinds(param: inspect.Parameter, body: ast.AST | None) -> list[Any]:
    kinds: list[Any] = []
    arity = _arity(param.default) if _is_function(param.default) else None
    if arity is not None:
        # ``timer=time.monotonic``, ``key=hashkey``: other functions of that arity.
        kinds.append(collections.abc.Callable[[typing.Any] * arity, typing.Any])
    elif _is_function(param.default):
        pass  # a builtin without a signature: the name or the body says the arity
    elif param.default is not inspect.Parameter.empty and param.default is not None:
        kinds.append(type(param.default))
    elif param.default is None:
        kinds.append(type(None))
    kinds.extend(_body_kinds(body, param.name))
    for pattern, kind in _NAME_HINTS:
        if pattern.search(param.name.lower()):
            kinds.append(kind)
    if param.kind is param.VAR_POSITIONAL:
        kinds.append(str)
    if not [k for k in kinds if k is not type(None)]:
        kinds.extend([str, int, list])
    seen: list[Any] = []
    callable_seen = False
    for kind in kinds:
        is_callable = typing.get_origin(kind) is collections.abc.Callable
        if is_callable and callable_seen:
            continue  # the body's call says the arity; the name does not
        callable_seen = callable_seen or is_callable
        if kind not in seen:
            seen.append(kind)
    return seen


def _is_function(value: Any) -> bool:
    return isinstance(
        value, (types.FunctionType, types.BuiltinFunctionType, types.MethodType, functools.partial)
    )


def _required(params: Iterable[inspect.Parameter]) -> int:
    return sum(
        1
        for p in params
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    )


def required_positional(func: Any) -> int | None:
    """Positional parameters without a default (None when the signature is unknown)."""
    try:
        return _required(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return None


def _arity(func: Any) -> int | None:
    """Positional parameters a function needs (None when its signature is unknown);
    one for a function of ``*args``."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 1
    return _required(params)


_ISINSTANCE_NAMES = {
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "bytes": bytes,
    "list": list,
    "tuple": tuple,
    "dict": dict,
    "set": set,
}


def _body_kinds(body: ast.AST | None, name: str) -> list[Any]:
    if body is None:
        return []
    kinds: list[Any] = []
    for node in ast.walk(body):
        if isinstance(node, ast.Call) and _is_name(node.func, name):
            arity = len(node.args) if not any(isinstance(a, ast.Starred) for a in node.args) else 1
            kinds.append(collections.abc.Callable[[typing.Any] * arity, typing.Any])
            continue
        if (
            isinstance(node, ast.keyword)
            and node.arg in ("key", "default_factory")
            and _is_name(node.value, name)
        ):
            kinds.append(collections.abc.Callable[[typing.Any], typing.Any])
            continue
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if (
                node.func.id == "isinstance"
                and len(node.args) == 2
                and _is_name(node.args[0], name)
            ):
                target = node.args[1]
                names = target.elts if isinstance(target, ast.Tuple) else [target]
                for item in names:
                    if isinstance(item, ast.Name) and item.id in _ISINSTANCE_NAMES:
                        kinds.append(_ISINSTANCE_NAMES[item.id])
            elif node.func.id in ("len", "sorted") and node.args and _is_name(node.args[0], name):
                kinds.append(list)
            elif (
                node.func.id in ("iter", "next", "zip", "enumerate", "map", "filter", "islice")
                and node.args
                and any(_is_name(a, name) for a in node.args)
            ):
                kinds.append(collections.abc.Iterable[int])
            elif (
                node.func.id in ("range", "abs", "round")
                and node.args
                and _is_name(node.args[0], name)
            ):
                kinds.append(int)
        elif isinstance(node, ast.Attribute) and _is_name(node.value, name):
            if node.attr in _STR_METHODS:
                kinds.append(str)
            elif node.attr in {"append", "extend", "pop", "insert"}:
                kinds.append(list)
            elif node.attr in {"items", "keys", "values", "get"}:
                kinds.append(dict)
        elif isinstance(node, ast.BinOp) and (
            _is_name(node.left, name) or _is_name(node.right, name)
        ):
            other = node.right if _is_name(node.left, name) else node.left
            if isinstance(other, ast.Constant) and isinstance(other.value, (int, float, str)):
                kinds.append(type(other.value))
        elif isinstance(node, ast.For) and _is_name(node.iter, name):
            kinds.append(list)
    return kinds


def _isinstance_classes(body: ast.AST | None, name: str, namespace: dict[str, Any]) -> list[type]:
    """Non-builtin classes in ``isinstance(name, ...)`` checks, resolved in the module."""
    if body is None:
        return []
    found: list[type] = []
    for node in ast.walk(body):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "isinstance"
            and len(node.args) == 2
            and _is_name(node.args[0], name)
        ):
            continue
        target = node.args[1]
        for item in target.elts if isinstance(target, ast.Tuple) else [target]:
            try:
                resolved = eval(ast.unparse(item), dict(namespace))
            except Exception:
                continue
            # A name bound to a tuple of classes (``six.integer_types``) counts as its items,
            # builtins too: no other check in the body says the parameter takes them.
            if isinstance(resolved, tuple):
                found.extend(c for c in resolved if isinstance(c, type) and c not in found)
            elif isinstance(resolved, type) and resolved.__module__ != "builtins":
                if resolved not in found:
                    found.append(resolved)
    return found[:4]


def _body_constants(body: ast.AST | None, name: str) -> list[str]:
    """Constants the body compares ``name`` with, and their neighbours."""
    if body is None:
        return []
    found: list[str] = []
    for node in ast.walk(body):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if not any(_is_name(side, name) or _mentions(side, name) for side in sides):
                continue
            for side in sides:
                for const in _constants(side):
                    found.extend(_neighbours(const))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if _is_name(node.func.value, name) and node.func.attr in {
                "startswith",
                "endswith",
                "split",
                "replace",
                "find",
                "strip",
                "lstrip",
                "rstrip",
            }:
                for arg in node.args:
                    for const in _constants(arg):
                        if isinstance(const, str):
                            found.extend([repr(const), repr(const + "x"), repr("x" + const)])
    return list(dict.fromkeys(found))


def _constants(node: ast.AST) -> list[Any]:
    if isinstance(node, ast.Constant) and not isinstance(node.value, (bytes, type(Ellipsis))):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [elt.value for elt in node.elts if isinstance(elt, ast.Constant)]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _constants(node.operand)
        return [-v for v in inner if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return []


def _neighbours(value: Any) -> list[str]:
    if isinstance(value, bool) or value is None:
        return [repr(value)]
    if isinstance(value, int):
        return [repr(value), repr(value - 1), repr(value + 1)]
    if isinstance(value, float):
        return [repr(value), repr(value - 0.5), repr(value + 0.5)]
    if isinstance(value, str) and len(value) <= 60:
        return [repr(value)]
    return []


def _is_name(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _mentions(node: ast.AST, name: str) -> bool:
    return any(_is_name(sub, name) for sub in ast.walk(node))
