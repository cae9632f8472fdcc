"""Properties that held: round trips, idempotence, ordering consistency.

A property is written only after it held on every input the search found and then on
Hypothesis's own inputs, over the widest strategy that found no counterexample (any text,
then plain ASCII words, then only the inputs where it was seen to hold). A property with a
counterexample on every strategy is dropped, never written as a failing or xfail test.
"""

from __future__ import annotations

import inspect
import itertools
import re
import signal
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ._domain import required_positional
from ._model import Property

if TYPE_CHECKING:
    from ._explore import Explorer

_PAIRS = [
    ("encode", "decode"),
    ("dumps", "loads"),
    ("dump", "load"),
    ("serialize", "deserialize"),
    ("to_", "from_"),
    ("format", "parse"),
    ("compress", "decompress"),
    ("escape", "unescape"),
    ("quote", "unquote"),
    ("zip", "unzip"),
    ("pluralize", "singularize"),
    ("wrap", "unwrap"),
    ("camelize", "underscore"),
    ("encrypt", "decrypt"),
]
_TEXT = "st.text(max_size=30)"
_WORDS = "st.text(alphabet=string.ascii_letters + string.digits + ' _-', max_size=30)"
_LOWER = "st.from_regex(r'[a-z][a-z0-9]{0,12}(_[a-z0-9]{1,8}){0,3}', fullmatch=True)"
_INTS = "st.integers(min_value=-(10**9), max_value=10**9)"
_EXAMPLES = 300  # the written test runs 100 other (derandomized) examples


def find_properties(explorer: Explorer) -> list[Property]:
    try:
        import hypothesis  # noqa: F401
    except ImportError:
        return []
    functions = _unary_functions(explorer)
    found: list[Property] = []
    found.extend(_round_trips(explorer, functions, _spreading_functions(explorer)))
    found.extend(_idempotent(explorer, functions, {n for p in found for n in p.targets}))
    found.extend(_orderings(explorer))
    found.extend(_length_bounds(explorer, functions))
    return found


def _unary_functions(explorer: Explorer) -> dict[str, tuple[Callable[..., Any], list[Any]]]:
    """Module functions callable with one argument, with the first-argument values tried."""
    out: dict[str, tuple[Callable[..., Any], list[Any]]] = {}
    for name, obj in vars(explorer.module).items():
        if not inspect.isfunction(obj) or obj.__module__ != explorer.module.__name__:
            continue
        if name.startswith("_"):
            continue
        try:
            params = list(inspect.signature(obj).parameters.values())
        except (TypeError, ValueError):
            continue
        if not params or params[0].kind not in (
            params[0].POSITIONAL_ONLY,
            params[0].POSITIONAL_OR_KEYWORD,
        ):
            continue
        if any(
            p.default is inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            for p in params[1:]
        ):
            continue
        out[name] = (obj, _inputs_for(explorer, name))
    return out


def _spreading_functions(explorer: Explorer) -> dict[str, Callable[..., Any]]:
    """Functions of several required positional arguments: ``format(*parse(x))``."""
    out: dict[str, Callable[..., Any]] = {}
    for name, obj in vars(explorer.module).items():
        if not inspect.isfunction(obj) or obj.__module__ != explorer.module.__name__:
            continue
        if (required_positional(obj) or 0) > 1:
            out[name] = obj
    return out


def _inputs_for(explorer: Explorer, name: str) -> list[Any]:
    values: list[Any] = []
    for source in explorer.tried_inputs.get(name, [])[:80]:
        try:
            values.append(eval(source, dict(explorer.namespace)))
        except Exception:
            continue
    return values


def _held(check: Callable[[Any], bool], inputs: list[Any]) -> list[Any]:
    """Inputs where the check held; None when it failed on any input that ran cleanly."""
    from ._explore import _CallTimeout

    held = []
    for value in inputs:
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        try:
            ok = check(value)
        except (_CallTimeout, Exception):
            continue
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if not ok:
            return []
        held.append(value)
    return held


def _strategies(sample: list[Any], namespace: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Strategies to try, widest first: the type's whole domain, then domains built from
    the inputs where the property held (their characters, their range, their lengths).
    Never a fixed list of the inputs: a property must hold beyond what the search saw."""
    import string

    from hypothesis import strategies as st

    if all(isinstance(v, str) for v in sample):
        yield _TEXT, st.text(max_size=30)
        yield _WORDS, st.text(alphabet=string.ascii_letters + string.digits + " _-", max_size=30)
        yield _LOWER, st.from_regex(r"[a-z][a-z0-9]{0,12}(_[a-z0-9]{1,8}){0,3}", fullmatch=True)
        for name, value in sorted(namespace.items()):
            if isinstance(value, re.Pattern) and isinstance(value.pattern, str):
                if name.isidentifier() and not name.startswith("__"):
                    yield (
                        f"st.from_regex({name}, fullmatch=True)",
                        st.from_regex(value, fullmatch=True),
                    )
    for text in _built(sample):
        try:
            strategy = eval(text, {"st": st, "string": string})
        except Exception:
            continue
        yield text, strategy


def _built(sample: list[Any], depth: int = 0) -> list[str]:
    """Strategy sources for values like ``sample``, widest first."""
    if not sample or depth > 2:
        return []
    kinds = {type(v) for v in sample}
    if kinds == {bool}:
        return ["st.booleans()"]
    if kinds == {int}:
        low, high = min(sample), max(sample)
        narrow = f"st.integers(min_value={low}, max_value={high})"
        return [
            _INTS,
            f"st.integers(min_value={min(low, 0)}, max_value={max(high, 0) * 2 + 10})",
        ] + ([narrow] if low < high else [])
    if kinds <= {int, float}:
        return [
            "st.floats(allow_nan=False, allow_infinity=False, width=32)",
            f"st.floats(min_value={float(min(sample))}, max_value={float(max(sample))})",
        ]
    if kinds == {str}:
        chars = "".join(sorted(set("".join(sample))))
        longest = max(len(v) for v in sample)
        if not chars:
            return []
        return [f"st.text(alphabet={chars!r}, max_size={max(longest, 1)})"]
    if kinds == {bytes}:
        return ["st.binary(max_size=30)", f"st.binary(max_size={max(len(v) for v in sample)})"]
    if kinds <= {list, tuple} and len(kinds) == 1:
        items = [item for v in sample for item in v]
        longest = max(len(v) for v in sample)
        wrap = (
            "st.lists({}, max_size={})"
            if kinds == {list}
            else "st.lists({}, max_size={}).map(tuple)"
        )
        return [wrap.format(inner, max(longest, 3)) for inner in _built(items, depth + 1)]
    return []


def _hypothesis_holds(check: Callable[..., bool], strategies: list[Any]) -> bool:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    @settings(
        phases=[Phase.explicit, Phase.generate],  # a counterexample is enough: no shrinking
        max_examples=_EXAMPLES,
        database=None,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.tuples(*strategies))
    def run(values: tuple[Any, ...]) -> None:
        assert _timed(check, *values)

    try:
        run()
    except Exception:
        return False
    return True


def _timed(check: Callable[..., bool], *values: Any) -> bool:
    """One check, at most half a second; an error or a hang counts as a counterexample."""
    from ._explore import _CallTimeout

    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        return bool(check(*values))
    except (_CallTimeout, Exception):
        return False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _verified(
    explorer: Explorer,
    check: Callable[[Any], bool],
    inputs: list[Any],
) -> tuple[str, int] | None:
    if time.process_time() > explorer.property_deadline:  # the search's clock
        return None
    held = _held(check, inputs)
    if len(held) < 4:
        return None
    for text, strategy in _strategies(held, explorer.namespace):
        if _hypothesis_holds(check, [strategy]):
            return text, len(held)
    return None


def _round_trips(
    explorer: Explorer,
    functions: dict[str, tuple[Callable[..., Any], list[Any]]],
    spreading: dict[str, Callable[..., Any]],
) -> list[Property]:
    found: list[Property] = []
    names = sorted(functions)
    pairs = [(a, b) for a, b in itertools.permutations(names, 2)]
    pairs += [(a, b) for a in names for b in sorted(spreading)]
    # decode(encode(x)) before encode(decode(x)): the first is what such a pair promises.
    pairs.sort(key=lambda pair: not any(left in pair[0] for left, _ in _PAIRS))
    for first, second in pairs:
        if not _paired(first, second) or any({first, second} == set(p.targets) for p in found):
            continue
        forward, inputs = functions[first]
        spread = second in spreading
        back = spreading[second] if spread else functions[second][0]
        star = "*" if spread else ""

        def undo(y: Any, g: Any = back, spread: bool = spread) -> Any:
            if spread and not isinstance(y, tuple):
                raise TypeError("not a tuple")
            return g(*y) if spread else g(y)

        def strong(x: Any, f: Any = forward) -> bool:
            return bool(undo(f(x)) == x)

        def weak(x: Any, f: Any = forward) -> bool:
            y = f(x)
            return bool(f(undo(y)) == y)

        result = _verified(explorer, strong, inputs)
        if result is not None:
            check = f"{second}({star}{first}(value)) == value"
            desc = f"{second} undoes {first}"
        else:
            result = _verified(explorer, weak, inputs)
            check = f"{first}({second}({star}{first}(value))) == {first}(value)"
            desc = f"{second} undoes {first} on {first}'s output"
        if result is None:
            continue
        strategy, examples = result
        found.append(
            Property(
                kind="round_trip",
                targets=[first, second],
                names=["value"],
                strategies=[strategy],
                check=check,
                description=desc,
                examples=examples,
            )
        )
    return found


def _paired(first: str, second: str) -> bool:
    for a, b in _PAIRS + [(b, a) for a, b in _PAIRS]:
        if a in first and first.replace(a, b, 1) == second:
            return True
    if "2" in first and "2" in second:
        left, _, right = first.partition("2")
        return second == f"{right}2{left}"
    return first == second.replace("un", "", 1) and second.startswith("un")


def _idempotent(
    explorer: Explorer, functions: dict[str, tuple[Callable[..., Any], list[Any]]], skip: set[str]
) -> list[Property]:
    found = []
    for name, (func, inputs) in sorted(functions.items()):
        if name in skip:
            continue
        changed = False
        for value in inputs[:40]:
            try:
                out = func(value)
            except Exception:
                continue
            if type(out) is not type(value) or not isinstance(out, (str, list, tuple, int)):
                changed = False
                break
            changed = changed or out != value
        if not changed:
            continue

        def check(x: Any, f: Any = func) -> bool:
            y = f(x)
            return bool(f(y) == y)

        text = f"{name}({name}(value)) == {name}(value)"
        prop = _one_argument(explorer, "idempotent", name, check, inputs, text, "is idempotent")
        if prop is not None:
            found.append(prop)
    return found


def _one_argument(
    explorer: Explorer,
    kind: str,
    name: str,
    check: Callable[[Any], bool],
    inputs: list[Any],
    text: str,
    words: str,
) -> Property | None:
    """A property of one function over one argument, if it is verified."""
    result = _verified(explorer, check, inputs)
    if result is None:
        return None
    strategy, examples = result
    return Property(
        kind=kind,
        targets=[name],
        names=["value"],
        strategies=[strategy],
        check=text,
        description=f"{name} {words}",
        examples=examples,
    )


def _length_bounds(
    explorer: Explorer, functions: dict[str, tuple[Callable[..., Any], list[Any]]]
) -> list[Property]:
    """``len(f(x)) <= len(x)`` (or ``>=``) for text and list functions where it is strict
    somewhere: a truncating, stripping or padding function states its contract."""
    found = []
    relations = [("<=", "never makes its input longer"), (">=", "never makes its input shorter")]
    for name, (func, inputs) in sorted(functions.items()):
        pairs: list[tuple[int, int]] = []
        for value in inputs[:60]:
            if not isinstance(value, (str, list, tuple)):
                continue
            try:
                out = func(value)
            except Exception:
                continue
            if not isinstance(out, type(value)):
                pairs = []
                break
            pairs.append((len(out), len(value)))
        if len(pairs) < 4:
            continue
        for op, words in relations:
            holds = all(a <= b if op == "<=" else a >= b for a, b in pairs)
            if not holds or all(a == b for a, b in pairs):
                continue

            def check(x: Any, f: Any = func, op: str = op) -> bool:
                y = f(x)
                return len(y) <= len(x) if op == "<=" else len(y) >= len(x)

            text = f"len({name}(value)) {op} len(value)"
            prop = _one_argument(explorer, "length_bound", name, check, inputs, text, words)
            if prop is None:
                continue
            found.append(prop)
            break
    return found


def _orderings(explorer: Explorer) -> list[Property]:
    from hypothesis import strategies as st

    found = []
    for cls, pool in explorer.facts.pools.items():
        if "__lt__" not in vars(cls) or len(pool) < 3:
            continue
        values = []
        for source in pool:
            try:
                values.append((source, eval(source, dict(explorer.namespace))))
            except Exception:
                continue

        def check(a: Any, b: Any) -> bool:
            return bool((a < b) == (b > a) and not (a < b and b < a) and ((a == b) <= (not a < b)))

        if len(values) < 3:
            continue
        try:
            if not all(_timed(check, a, b) for (_, a), (_, b) in itertools.product(values, values)):
                continue
        except Exception:
            continue
        objects = [v for _, v in values]
        if not _hypothesis_holds(check, [st.sampled_from(objects), st.sampled_from(objects)]):
            continue
        strategy = "st.sampled_from([" + ", ".join(s for s, _ in values) + "])"
        found.append(
            Property(
                kind="ordering",
                targets=[cls.__name__],
                names=["left", "right"],
                strategies=[strategy, strategy],
                check="(left < right) == (right > left) and not (left < right and right < left)",
                description=f"{cls.__name__} ordering is consistent",
                examples=len(values) ** 2,
            )
        )
    return found
