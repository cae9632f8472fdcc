"""Strings that match a module's regular expressions.

A module that validates its input with a regex (a version pattern, an identifier rule)
hides most of its branches behind a match; random strings never get past it. Walking the
pattern's parse tree gives strings that do, in a few shapes (shortest, optional parts taken,
each alternative), deterministically.
"""

from __future__ import annotations

import random
import re
import string
import sys
from typing import Any

if sys.version_info >= (3, 11):
    import re._constants as sre_constants
    import re._parser as sre_parse
else:  # pragma: no cover - 3.10
    import sre_constants
    import sre_parse

_CATEGORY_CHARS = {
    sre_constants.CATEGORY_DIGIT: "0123456789",
    sre_constants.CATEGORY_NOT_DIGIT: "ab-_",
    sre_constants.CATEGORY_SPACE: " \t",
    sre_constants.CATEGORY_NOT_SPACE: "ab1_",
    sre_constants.CATEGORY_WORD: "ab_1",
    sre_constants.CATEGORY_NOT_WORD: " -.",
}


def matching_strings(pattern: str, flags: int = 0, count: int = 6, seed: int = 0) -> list[str]:
    """Up to ``count`` distinct strings that ``re.fullmatch``-ish match ``pattern``."""
    try:
        tree = sre_parse.parse(pattern, flags)
    except Exception:
        return []
    try:
        compiled = re.compile(pattern, flags)
    except re.error:
        return []
    rng = random.Random(seed)
    out: list[str] = []
    for mode in ("min", "typical", "max", "random", "random", "random", "random", "random"):
        try:
            text = _emit(tree, mode, rng, {}, 0)
        except _Unsupported:
            return out
        if text not in out and compiled.fullmatch(text):  # lookarounds are not generated
            out.append(text)
        if len(out) >= count:
            break
    return out


class _Unsupported(Exception):
    pass


def _emit(tree: Any, mode: str, rng: random.Random, groups: dict[int, str], depth: int) -> str:
    if depth > 30:
        raise _Unsupported
    parts: list[str] = []
    for op, arg in tree:
        parts.append(_node(op, arg, mode, rng, groups, depth + 1))
    return "".join(parts)


def _node(
    op: Any, arg: Any, mode: str, rng: random.Random, groups: dict[int, str], depth: int
) -> str:
    if op is sre_constants.LITERAL:
        return chr(arg)
    if op is sre_constants.NOT_LITERAL:
        return "a" if chr(arg) != "a" else "b"
    if op is sre_constants.ANY:
        return "x"
    if op is sre_constants.IN:
        return _charset(arg, mode, rng)
    if op in (
        sre_constants.MAX_REPEAT,
        sre_constants.MIN_REPEAT,
        getattr(sre_constants, "POSSESSIVE_REPEAT", None),
    ):
        low, high, sub = arg
        high = low + 3 if high is sre_constants.MAXREPEAT else high
        if mode == "min":
            times = low
        elif mode == "max":
            times = min(high, low + 3)
        elif mode == "typical":
            times = min(max(low, 1), high)
        else:
            times = rng.randint(low, min(high, low + 3))
        return "".join(_emit(sub, mode, rng, groups, depth) for _ in range(times))
    if op is sre_constants.SUBPATTERN:
        group, _add, _del, sub = arg
        text = _emit(sub, mode, rng, groups, depth)
        if group is not None:
            groups[group] = text
        return text
    if op is sre_constants.BRANCH:
        _, branches = arg
        if mode in ("min", "typical"):
            choice = branches[0]
        elif mode == "max":
            choice = branches[-1]
        else:
            choice = rng.choice(branches)
        return _emit(choice, mode, rng, groups, depth)
    if op is sre_constants.GROUPREF:
        return groups.get(arg, "")
    if op in (sre_constants.AT, sre_constants.ASSERT, sre_constants.ASSERT_NOT):
        return ""
    if op is sre_constants.GROUPREF_EXISTS:
        group, yes, no = arg
        return _emit(yes if group in groups else (no or []), mode, rng, groups, depth)
    raise _Unsupported


def _charset(items: Any, mode: str, rng: random.Random) -> str:
    choices: list[str] = []
    negate = False
    for op, arg in items:
        if op is sre_constants.NEGATE:
            negate = True
        elif op is sre_constants.LITERAL:
            choices.append(chr(arg))
        elif op is sre_constants.RANGE:
            low, high = arg
            choices.extend({chr(low), chr((low + high) // 2), chr(high)})
        elif op is sre_constants.CATEGORY:
            choices.extend(_CATEGORY_CHARS.get(arg, "a"))
    if negate:
        pool = [c for c in string.ascii_letters + string.digits + " -_." if c not in choices]
        choices = pool or ["~"]
    if not choices:
        return "a"
    choices = sorted(set(choices))
    if mode == "min":
        return choices[0]
    if mode == "max":
        return choices[-1]
    if mode == "typical":
        return choices[len(choices) // 2]
    return rng.choice(choices)
