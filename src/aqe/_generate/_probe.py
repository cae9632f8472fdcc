"""Replay the search's cases under other hash seeds, without pytest, to drop the unstable.

A value that comes out of a set of strings keeps its order under a random hash seed only
half the time for two items; the pytest verification runs catch most of these, and this
replay (``python -m aqe._generate._probe CASES OUT`` under a few more seeds, a fraction of
a second each) catches the rest before a file is ever written.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import signal
import sys
import types
from collections.abc import Iterator
from typing import Any

from ._explore import HEADROOM, cap_memory
from ._model import SELF, Case, from_json, state_parts
from ._values import stdlib_namespace, to_source
from ._views import apply_view


class _Timeout(BaseException):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Timeout


def observe(case: Case, namespace: dict[str, Any]) -> bool:
    """Whether the case does here what it did in the search."""
    local = dict(namespace)
    values = [eval(source, local) for source in case.args]
    for index, value in enumerate(values):
        local[f"_aqe_{index}"] = value
    for step in case.setup:
        exec(step.replace(SELF, "_aqe_0"), local)
    expr = case.call([f"_aqe_{i}" for i in range(len(values))], raw=True)
    try:
        result = eval(expr, local)
        if case.consume or (
            isinstance(result, (types.GeneratorType, Iterator))
            and not isinstance(result, (str, bytes, list, tuple, dict))
        ):
            result = list(result)
    except Exception as exc:
        if case.outcome != "raises" or type(exc).__name__ != (case.exc_type or "").split(".")[-1]:
            return False
        return case.match is None or re.search(re.escape(case.match), str(exc)) is not None
    if case.outcome == "raises":
        return False
    if case.view:
        result = apply_view(case.view, result)
    if to_source(result, namespace) != case.expected:
        return False
    for key, expected in case.state.items():
        column, kind, name = state_parts(key)
        index = case.params.index(column)
        value = local[f"_aqe_{index}"]
        if kind == "attr":
            value = getattr(value, name)
        elif kind == "view":
            value = apply_view(f"{name}({{}})", value)
        if to_source(value, namespace) != expected:
            return False
    return True


def _buildable(case: Any, namespace: dict[str, Any]) -> bool:
    """Whether the case's argument and expected-value sources evaluate here."""
    sources = [*case.args, *([case.expected] if case.expected else [])]
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    try:
        for source in sources:
            eval(source, dict(namespace))
    except BaseException:
        return False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return True


def main(argv: list[str]) -> int:
    request = json.loads(open(argv[0], encoding="utf-8").read())
    sys.path[:0] = request["paths"]
    signal.signal(signal.SIGALRM, _alarm)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    module = importlib.import_module(request["module"])
    cap_memory(HEADROOM)
    namespace = stdlib_namespace()
    namespace.update(vars(module))
    cases = [from_json(dict(data)) for data in request["cases"]]
    # First, before any call: the test file builds every argument at collection, so one
    # that cannot be built in a fresh process (it relied on state an earlier call left,
    # such as validators switched off) would stop the whole file from loading.
    unstable = [index for index, case in enumerate(cases) if not _buildable(case, namespace)]
    for index, case in enumerate(cases):
        assert isinstance(case, Case)
        if index in unstable:
            continue
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        try:
            same = observe(case, namespace)
        except BaseException:  # a case that cannot even be set up here
            same = False
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if not same:
            unstable.append(index)
    with open(argv[1], "w", encoding="utf-8") as out:
        json.dump(unstable, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
