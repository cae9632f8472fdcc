"""Cases kept for the faults they catch, not for the lines they reach.

Coverage stops rewarding a call once its lines have run, yet a second call can be the only
one that notices ``<`` written as ``<=``. During the search, each target's own body is
mutated with the operators of ``_mutate`` (compiled in memory, swapped into the function's
``__code__`` for one replay at a time): a case the search found but did not keep is kept
when it detects a mutant that no kept case detects. Replays run with a short alarm; a
mutant that hangs or breaks the replay itself counts as not detected, so a case is never
kept for a fault it only "catches" by timing out.
"""

from __future__ import annotations

import ast
import copy
import inspect
import os
import signal
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._model import Case
from ._mutate import _Mutator

#: Replays of one case against one mutant stop after this long (the alarm of the search).
REPLAY_SECONDS = 0.2
MAX_MUTANTS = 80


def function_of(target_obj: Any, init: Any, path: str) -> types.FunctionType | None:
    """The plain function whose code a target runs, when it is written in ``path``."""
    func = init if init is not None else target_obj
    func = getattr(func, "__func__", func)
    try:
        func = inspect.unwrap(func)
    except ValueError:
        return None
    if not isinstance(func, types.FunctionType):
        return None
    if os.path.realpath(func.__code__.co_filename) != path:
        return None
    return func


def mutant_codes(node: ast.AST, func: types.FunctionType, path: str) -> list[types.CodeType]:
    """Code objects of ``func`` with one fault each (those that compile to a change)."""
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or func.__code__.co_freevars:
        return []
    plain = copy.deepcopy(node)
    plain.decorator_list = []
    count = _count(plain)
    codes: list[types.CodeType] = []
    original = _compiled(plain, path)
    if original is None:
        return []
    for index in range(min(count, MAX_MUTANTS * 2)):
        mutator = _Mutator(index)
        tree = mutator.visit(copy.deepcopy(plain))
        ast.fix_missing_locations(tree)
        code = _compiled(tree, path)
        if code is None or _same(code, original):
            continue
        codes.append(code)
        if len(codes) >= MAX_MUTANTS:
            break
    return codes


def _count(node: ast.AST) -> int:
    mutator = _Mutator()
    mutator.visit(copy.deepcopy(node))
    return mutator.count


def _compiled(node: ast.AST, path: str) -> types.CodeType | None:
    module = ast.Module(body=[node], type_ignores=[])  # type: ignore[list-item]
    try:
        code = compile(ast.fix_missing_locations(module), path, "exec")
    except (SyntaxError, ValueError, TypeError):
        return None
    name = getattr(node, "name", "")
    for const in code.co_consts:
        if isinstance(const, types.CodeType) and const.co_name == name:
            return const
    return None


def _same(a: types.CodeType, b: types.CodeType) -> bool:
    return a.co_code == b.co_code and a.co_consts == b.co_consts and a.co_names == b.co_names


class _Replay(BaseException):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Replay


@dataclass(frozen=True)
class DataMutant:
    """A module global the target reads (a table of rules, a set of words) with one item
    changed: the fault ``_mutate`` makes in a module-level constant, seen at run time."""

    name: str
    value: Any


#: Items of one global table that get a data mutant, at most (spread over the table).
MAX_DATA_ITEMS = 60
_DATA_ATOMS = (str, int, float)


def names_read(func: types.FunctionType) -> list[str]:
    """The global names ``func`` and the functions defined in it read, first use first."""
    names: list[str] = []
    stack = [func.__code__]
    while stack:
        code = stack.pop()
        names += [n for n in code.co_names if n not in names]
        stack += [c for c in code.co_consts if isinstance(c, types.CodeType)]
    return names


def data_mutants(func: types.FunctionType) -> list[DataMutant]:
    """One changed item per mutant, for the list, tuple, set and dict globals ``func``
    (and the functions defined in it) reads whose items are plain values or tuples of them."""
    names = names_read(func)
    out: list[DataMutant] = []
    for name in names:
        value = func.__globals__.get(name)
        if not isinstance(value, (list, tuple, set, frozenset, dict)) or len(value) > 2000:
            continue
        items = list(value.items()) if isinstance(value, dict) else list(value)
        if not items or not all(_plain(item) for item in items):
            continue
        step = max(1, len(items) // MAX_DATA_ITEMS)
        for index in range(0, len(items), step):
            for changed in _changed(items[index]):
                copied = list(items)
                copied[index] = changed
                out.append(DataMutant(name, _rebuilt(value, copied)))
    return out


def _plain(item: Any) -> bool:
    if isinstance(item, tuple):
        return 0 < len(item) <= 4 and all(type(x) in _DATA_ATOMS for x in item)
    return type(item) in _DATA_ATOMS


def _changed(item: Any) -> list[Any]:
    """The constant operator of ``_mutate`` on one item (each field of a tuple)."""
    if isinstance(item, tuple):
        out = []
        for position, field in enumerate(item):
            for changed in _changed(field):
                out.append((*item[:position], changed, *item[position + 1 :]))
        return out
    if isinstance(item, bool):
        return [not item]
    if isinstance(item, str):
        return [f"XX{item}XX"]
    if isinstance(item, (int, float)):
        return [item + 1]
    return []


def _rebuilt(original: Any, items: list[Any]) -> Any:
    if isinstance(original, dict):
        try:
            return type(original)(items)
        except Exception:
            return dict(items)
    try:
        return type(original)(items)
    except Exception:
        return list(items) if isinstance(original, list) else tuple(items)


def detects(
    func: types.FunctionType,
    code: types.CodeType | DataMutant,
    case: Case,
    observe: Callable[[Case, dict[str, Any]], bool],
    namespace: dict[str, Any],
) -> bool:
    """Whether ``case`` fails with ``code`` swapped into ``func`` (or the data mutant's
    value bound in its module's globals); a hang is no detection."""
    original = func.__code__
    table = func.__globals__
    saved = None
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        if isinstance(code, DataMutant):
            saved = table[code.name]
            table[code.name] = code.value
        else:
            func.__code__ = code
    except (ValueError, KeyError):
        signal.signal(signal.SIGALRM, previous)
        return False
    signal.setitimer(signal.ITIMER_REAL, REPLAY_SECONDS)
    try:
        return not observe(case, namespace)
    except BaseException:  # the replay itself broke (or hung): no detection
        return False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        if isinstance(code, DataMutant):
            table[code.name] = saved
        else:
            func.__code__ = original
        signal.signal(signal.SIGALRM, previous)


def select(
    func: types.FunctionType,
    codes: list[types.CodeType] | list[types.CodeType | DataMutant],
    kept: list[Case],
    spares: list[Case],
    observe: Callable[[Case, dict[str, Any]], bool],
    namespace: dict[str, Any],
    out_of_time: Callable[[], bool],
) -> tuple[list[Case], int, int]:
    """The spares that detect a mutant no kept case detects; and (detected, mutants)."""
    alive = list(range(len(codes)))
    for case in kept:
        if out_of_time():
            return [], len(codes) - len(alive), len(codes)
        alive = [i for i in alive if not detects(func, codes[i], case, observe, namespace)]
    chosen: list[Case] = []
    for case in spares:
        if not alive or out_of_time():
            break
        killed = [i for i in alive if detects(func, codes[i], case, observe, namespace)]
        if killed:
            chosen.append(case)
            alive = [i for i in alive if i not in killed]
    return chosen, len(codes) - len(alive), len(codes)
