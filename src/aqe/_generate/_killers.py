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


def detects(
    func: types.FunctionType,
    code: types.CodeType,
    case: Case,
    observe: Callable[[Case, dict[str, Any]], bool],
    namespace: dict[str, Any],
) -> bool:
    """Whether ``case`` fails with ``code`` swapped into ``func`` (a hang is no detection)."""
    original = func.__code__
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        func.__code__ = code
    except ValueError:
        signal.signal(signal.SIGALRM, previous)
        return False
    signal.setitimer(signal.ITIMER_REAL, REPLAY_SECONDS)
    try:
        return not observe(case, namespace)
    except BaseException:  # the replay itself broke (or hung): no detection
        return False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        func.__code__ = original
        signal.signal(signal.SIGALRM, previous)


def select(
    func: types.FunctionType,
    codes: list[types.CodeType],
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
