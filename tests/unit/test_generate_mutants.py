"""aqe generate's mutation pieces: the AST mutator, in-search mutant replays, public views."""

from __future__ import annotations

import ast
import collections
import inspect
import textwrap
import types
from typing import Any

from aqe._generate._killers import detects, function_of, mutant_codes, select
from aqe._generate._model import Case
from aqe._generate._mutate import list_mutants, mutated_tree, sample
from aqe._generate._probe import observe
from aqe._generate._render import case_id
from aqe._generate._views import apply_view, best_view, views

SOURCE = textwrap.dedent(
    '''
    """Docstring: never mutated."""
    __all__ = ["clamp"]

    def clamp(x: int, low: int = 0, high: int = 10) -> int:
        """Also a docstring."""
        if x < low:
            return low
        if x > high and not False:
            return high
        return x + 0
    '''
)


def _namespace(source: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(compile(source, "<clamp>", "exec"), namespace)
    return namespace


def test_mutants_cover_each_operator_and_leave_docstrings_and_all_alone() -> None:
    found = list_mutants(SOURCE)
    kinds = collections.Counter(m.operator for m in found)
    assert set(kinds) == {"arith", "compare", "boolean", "constant", "return"}
    assert not any("Docstring" in m.description or "clamp'" in m.description for m in found)
    # every mutant compiles and differs from the original
    original = ast.dump(ast.parse(SOURCE))
    for mutant in found:
        tree = mutated_tree(SOURCE, mutant.index)
        compile(tree, "<m>", "exec")
        assert ast.dump(tree) != original, mutant


def test_mutant_lines_are_their_statements_first_lines() -> None:
    lines = {m.line for m in list_mutants(SOURCE)}
    assert lines <= {5, 7, 8, 9, 10, 11}  # def line (defaults), if/return lines


def test_sample_is_stable_and_bounded() -> None:
    assert sample(5, None) == [0, 1, 2, 3, 4]
    assert sample(100, 10, seed=3) == sample(100, 10, seed=3)
    assert len(sample(100, 10)) == 10


def _clamp_case(args: list[str], expected: str) -> Case:
    return Case(
        target="clamp",
        form="call",
        params=["x"],
        args=args,
        keywords=[False],
        outcome="returns",
        expected=expected,
    )


def test_a_spare_case_that_detects_a_surviving_mutant_is_selected() -> None:
    namespace = _namespace(SOURCE)
    func = namespace["clamp"]
    node = next(n for n in ast.parse(SOURCE).body if isinstance(n, ast.FunctionDef))
    codes = mutant_codes(node, func, "<clamp>")
    assert codes
    kept = [_clamp_case(["5"], "5")]
    # x == low: only this input tells `<` from `<=`... and `x > high` from `>=` at 10
    spares = [_clamp_case(["5"], "5"), _clamp_case(["10"], "10"), _clamp_case(["-3"], "0")]
    chosen, detected, total = select(func, codes, kept, spares, observe, namespace, lambda: False)
    assert chosen and all(c.args != ["5"] for c in chosen)
    assert 0 < detected <= total == len(codes)
    assert func.__code__.co_name == "clamp" and func(-3) == 0  # the original is back


def test_a_replay_that_hangs_is_no_detection() -> None:
    source = "def spin(n):\n    while n < 0:\n        pass\n    return n\n"
    namespace = _namespace(source)
    func = namespace["spin"]
    index = next(m.index for m in list_mutants(source) if m.description == "< -> <=")
    tree = mutated_tree(source, index)
    code = next(c for c in compile(tree, "<spin>", "exec").co_consts if hasattr(c, "co_code"))
    case = Case("spin", "call", ["n"], ["0"], [False], "returns", expected="0")
    assert not detects(func, code, case, observe, namespace)  # n <= 0 spins on 0
    assert func(0) == 0  # the original code is back


def test_function_of_unwraps_and_refuses_other_files() -> None:
    assert function_of(len, None, "/x.py") is None
    namespace = _namespace("def f():\n    return 1\n")
    assert function_of(namespace["f"], None, "/elsewhere.py") is None


class Box:
    def __init__(self) -> None:
        self.size = 3
        self._secret = [1]

    @property
    def label(self) -> str:
        return "box"


class Bag(collections.abc.Mapping[str, int]):
    def __init__(self) -> None:
        self._data = {"a": 1}

    def __getitem__(self, key: str) -> int:
        return self._data[key]

    def __iter__(self) -> Any:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def test_views_are_public_only() -> None:
    view, source = best_view(Box(), {}) or ("", "")
    assert view == "attrgetter('size', 'label')({})" and source == "(3, 'box')"
    assert "_secret" not in str(views(Box(), {}))
    assert best_view(Bag(), {}) == ("dict({})", "{'a': 1}")
    assert apply_view("dict({})", Bag()) == {"a": 1}


def test_a_returned_function_is_observed_through_its_calls() -> None:
    view = best_view(str.upper, {})
    assert view is not None
    assert view[0].startswith("list(map({}, ")
    assert apply_view(view[0], str.upper) == eval(view[1])
    assert best_view(lambda: None, {}) is None  # takes no probe: nothing to observe


def test_ids_escape_instead_of_mangling() -> None:
    case = _clamp_case(["'ünï'"], "0")
    assert case_id(case) == "\\xfcn\\xef"
    assert case_id(_clamp_case(["'?'"], "0")) == "?"
    assert case_id(_clamp_case(["[1]"], "0")) == "(1)"


def test_signature_of_mutated_code_keeps_defaults() -> None:
    namespace = _namespace(SOURCE)
    func: types.FunctionType = namespace["clamp"]
    assert list(inspect.signature(func).parameters) == ["x", "low", "high"]
