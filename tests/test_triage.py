"""Failures grouped by cause, and similar past failures: fingerprints and commands."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest
from conftest import aqe_process

from aqe._knowledge._commands import group_failures
from aqe._knowledge._triage import blame, frames, normalize, signature

RAISED_INSIDE = """\
def test_total():
>       assert shop.total([1, "2"]) == 3

tests/test_shop.py:5: 
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ 

self = <shop.Register object at 0x7f3a2c1d0e50>, items = [1, '2']

    def __call__(self, items):
>       return self.func(items)

shop/register.py:12: 
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ 

items = [1, '2']

    def total(items):
>       return sum(items)
E       TypeError: unsupported operand type(s) for +: 'int' and 'str'

shop/core.py:30: TypeError
"""

ASSERTED_IN_TEST = """\
def test_discount():
        helper = lambda x: x
        price = shop.discount(100, 0.1)
>       assert helper(price) == 90
E       assert 89 == 90

tests/test_shop.py:12: AssertionError
"""


def test_frames_are_read_from_pytest_long_tracebacks() -> None:
    found = frames(RAISED_INSIDE)
    assert [(f.path, f.function) for f in found] == [
        ("tests/test_shop.py", "test_total"),
        ("shop/register.py", "__call__"),
        ("shop/core.py", "total"),
    ]


def test_an_exception_in_the_projects_code_is_blamed_on_the_frame_that_raised_it() -> None:
    # The outermost project frame is a __call__ wrapper: the function that raised is to blame.
    assert blame(frames(RAISED_INSIDE)) == ("total", "shop/core.py::total")


RAISED_IN_HELPER = """\
def test_checkout():
>       shop.checkout([1, "2"])

tests/test_shop.py:9: 
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ 

    def checkout(items):
>       return _price(items) * 2

shop/core.py:40: 
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ 

    def _price(items):
>       return int(items[1]) / 0
E       ZeroDivisionError: division by zero

shop/core.py:44: ZeroDivisionError
"""


def test_the_deepest_project_frame_is_blamed_not_its_public_caller() -> None:
    assert blame(frames(RAISED_IN_HELPER)) == ("_price", "shop/core.py::_price")
    raised = signature({"traceback": RAISED_IN_HELPER, "error_type": "ZeroDivisionError"})
    assert raised.cause == "shop/core.py::_price"
    # A library frame under it is not the project's: the project frame that called it is.
    in_library = RAISED_IN_HELPER.replace(
        "shop/core.py:44: ZeroDivisionError",
        "shop/core.py:44: \n\n    def loads(s):\n>       raise ZeroDivisionError\n"
        "E       ZeroDivisionError\n\n/usr/lib/python3.11/json/__init__.py:346: "
        "ZeroDivisionError",
    )
    assert blame(frames(in_library)) == ("_price", "shop/core.py::_price")


def test_same_named_wrappers_in_two_files_are_two_causes() -> None:
    # A frame named like plumbing (__init__, wrapper) says nothing without its file.
    one = RAISED_IN_HELPER.replace("_price", "__init__")
    other = one.replace("shop/core.py", "shop/orders.py")
    first = signature({"traceback": one, "error_type": "ZeroDivisionError"})
    second = signature({"traceback": other, "error_type": "ZeroDivisionError"})
    assert first.key != second.key


def test_an_assertion_is_blamed_on_the_project_call_not_on_the_tests_own_helpers() -> None:
    assert blame(frames(ASSERTED_IN_TEST)) == ("discount", "discount()")
    known = frozenset({"discount"})
    assert blame(frames(ASSERTED_IN_TEST), known) == ("discount", "discount()")
    assert blame(frames(ASSERTED_IN_TEST), frozenset({"other"})) is None


def test_one_bug_seen_as_an_exception_and_as_an_assertion_is_one_cause() -> None:
    raised = signature({"traceback": RAISED_INSIDE, "error_type": "TypeError"})
    asserted = signature(
        {
            "traceback": ASSERTED_IN_TEST.replace("discount", "total"),
            "error_type": "AssertionError",
        }
    )
    assert raised.key == asserted.key
    assert raised.cause == "shop/core.py::total" and asserted.cause == "total()"
    other = signature({"traceback": ASSERTED_IN_TEST, "error_type": "AssertionError"})
    assert other.key != raised.key


def _asserted(nodeid: str, function: str) -> dict[str, str]:
    return {
        "nodeid": nodeid,
        "outcome": "failed",
        "error_type": "AssertionError",
        "traceback": ASSERTED_IN_TEST.replace("discount", function),
    }


def test_one_shared_past_run_never_merges_two_causes_two_do() -> None:
    # t1 and t2 fail on different functions. Starting to fail in one run together is a
    # coincidence as often as a cause (one commit, two bugs): they stay apart.
    entries = [_asserted("t1", "alpha"), _asserted("t2", "beta"), _asserted("t3", "gamma")]
    once = group_failures(entries, None, [{"t1", "t2"}, {"t3", "x"}])
    assert sorted(sorted(g.tests) for g in once) == [["t1"], ["t2"], ["t3"]]
    # Broken together, fixed, and broken together again: one cause.
    twice = group_failures(entries, None, [{"t1", "t2", "x"}, {"t3"}, {"t1", "t2"}])
    assert sorted(sorted(g.tests) for g in twice) == [["t1", "t2"], ["t3"]]
    (merged,) = [g for g in twice if len(g.tests) == 2]
    assert merged.also in (("beta()",), ("alpha()",))


def test_one_past_run_joins_a_raising_frame_with_an_assertion_on_its_caller() -> None:
    # _price raised under checkout(); another test asserts on what checkout() returned.
    # One call path and one past run: one bug.
    raised = {
        "nodeid": "t1",
        "outcome": "failed",
        "error_type": "ZeroDivisionError",
        "traceback": RAISED_IN_HELPER,
    }
    sibling = {**raised, "nodeid": "t3", "traceback": RAISED_IN_HELPER.replace("_price", "_tax")}
    groups = group_failures([raised, _asserted("t2", "checkout")], None, [{"t1", "t2"}])
    assert [sorted(g.tests) for g in groups] == [["t1", "t2"]]
    assert groups[0].also in (("checkout()",), ("shop/core.py::_price",))
    # With a sibling exception under checkout() too, the assertion could be either bug.
    groups = group_failures(
        [raised, _asserted("t2", "checkout"), sibling], None, [{"t1", "t2", "t3"}]
    )
    assert sorted(sorted(g.tests) for g in groups) == [["t1"], ["t2"], ["t3"]]
    assert all(set(g.to_json()) <= {"key", "cause", "count", "error_types", "tests", "example",
                                    "also"} for g in groups)  # fmt: skip


def test_one_past_run_joins_assertions_on_a_function_and_on_its_caller_in_the_source(
    tmp_path: Path,
) -> None:
    # No traceback enters the project: only its source says checkout() calls subtotal().
    (tmp_path / "shop.py").write_text(
        "def checkout(items):\n    return round(_fee(subtotal(items)), 2)\n\n\n"
        "def _fee(amount):\n    return amount * 1.1\n\n\n"
        "def subtotal(items):\n    return sum(items)\n\n\n"
        "def label(name):\n    return name.title()\n"
    )
    entries = [_asserted("t1", "checkout"), _asserted("t2", "subtotal"), _asserted("t3", "label")]
    groups = group_failures(entries, str(tmp_path), [{"t1", "t2", "t3"}])
    assert sorted(sorted(g.tests) for g in groups) == [["t1", "t2"], ["t3"]]
    # Without a past run in which they broke together, the source alone joins nothing.
    alone = group_failures(entries, str(tmp_path), [{"t1"}, {"t2"}])
    assert sorted(sorted(g.tests) for g in alone) == [["t1"], ["t2"], ["t3"]]
    # subtotal()'s cause split in two by its past runs: checkout() calls one function,
    # not two unrelated ones, so it is no reason for doubt.
    parts = [*entries[:2], _asserted("t4", "subtotal")]
    joined = group_failures(parts, str(tmp_path), [{"t1", "t2"}, {"t1", "t4"}])
    assert [sorted(g.tests) for g in joined] == [["t1", "t2", "t4"]]
    # A class calls what its methods call.
    with (tmp_path / "shop.py").open("a") as stream:
        stream.write(
            "\n\nclass Cart:\n    def total(self):\n        return subtotal(self.items)\n\n"
            "    def __repr__(self):\n        return ', '.join(self.items)\n\n\n"
            "def join(a, b):\n    return a + b\n"
        )
    cart = [entries[1], _asserted("t5", "Cart"), _asserted("t6", "join")]
    grouped = group_failures(cart, str(tmp_path), [{"t2", "t5", "t6"}])
    # A method of a string (", ".join) is not the project's join().
    assert sorted(sorted(g.tests) for g in grouped) == [["t2", "t5"], ["t6"]]


def test_an_exception_and_an_unrelated_assertion_of_one_past_run_stay_apart() -> None:
    raised = {
        "nodeid": "t1",
        "outcome": "failed",
        "error_type": "ZeroDivisionError",
        "traceback": RAISED_IN_HELPER,
    }
    groups = group_failures([raised, _asserted("t2", "label")], None, [{"t1", "t2"}])
    assert sorted(g.cause for g in groups) == ["label()", "shop/core.py::_price"]


def test_a_group_splits_only_where_every_test_broke_in_one_known_past_run() -> None:
    entries = [_asserted(n, "alpha") for n in ("t1", "t2", "t3")]
    split = group_failures(entries, None, [{"t1", "t2"}, {"t3"}])
    assert sorted(sorted(g.tests) for g in split) == [["t1", "t2"], ["t3"]]
    assert len({g.key for g in split}) == 2
    # t3 never broke before: no evidence that the group holds two causes.
    kept = group_failures(entries, None, [{"t1", "x"}, {"t2", "y"}])
    assert [sorted(g.tests) for g in kept] == [["t1", "t2", "t3"]]


def test_messages_are_normalized_for_display_and_search() -> None:
    text = normalize("KeyError 'user_42' at 0x7f00aa in /tmp/pytest-3/x/y.json after 1.5 s")
    assert text == "KeyError <str> at <hex> in <path> after <n> s"


# -- the commands -------------------------------------------------------------------

LIBRARY = """\
def total(items):
    return sum(items)


def discount(price, rate):
    return round(price * (1 - rate))


def label(name):
    return name.title()
"""

TESTS = """\
import shop


def test_total():
    assert shop.total([1, 2]) == 3


def test_total_empty():
    assert shop.total([]) == 0


def test_discount():
    price = shop.discount(100, 0.1)
    assert price == 90


def test_discount_half():
    assert shop.discount(10, 0.5) == 5


def test_label():
    assert shop.label("ada lovelace") == "Ada Lovelace"
"""


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "tests").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\npythonpath = ['.']\n")
    (root / "shop.py").write_text(LIBRARY)
    (root / "tests" / "test_shop.py").write_text(TESTS)
    return root


def _aqe(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return aqe_process(*args, cwd=root, timeout=60)


def _break(root: Path, old: str, new: str) -> None:
    path = root / "shop.py"
    path.write_text(path.read_text().replace(old, new))


def _clusters(root: Path) -> list[list[str]]:
    report = json.loads(_aqe(root, "failures", "--json").stdout)
    assert report["schema"] == "aqe-failures"
    return sorted(sorted(n.split("::")[1] for n in g["tests"]) for g in report["clusters"])


@pytest.mark.e2e
def test_failures_group_by_cause_and_similar_finds_the_past_failure(tmp_path: Path) -> None:
    root = _project(tmp_path)
    assert _aqe(root, "failures").returncode == 4  # no history yet: one clear line
    _break(root, "return sum(items)", "return sum(items) + 1")
    _break(root, "round(price * (1 - rate))", "round(price * (1 + rate))")
    assert _aqe(root, "run", "-w", "1").returncode == 1
    assert _clusters(root) == [
        ["test_discount", "test_discount_half"],
        ["test_total", "test_total_empty"],
    ]
    text = _aqe(root, "failures").stdout
    assert "4 failures in 2 causes" in text and "discount()" in text

    # The same bug again, in a later run: its past failure is the nearest.
    assert _aqe(root, "run", "-w", "1").returncode == 1
    similar = _aqe(root, "failures", "similar", "tests/test_shop.py::test_total", "--json")
    assert similar.returncode == 0, similar.stderr
    found = json.loads(similar.stdout)["similar"]
    assert found[0]["nodeid"] == "tests/test_shop.py::test_total"
    assert found[0]["same_cause"] is True
    assert found[0]["run_id"] != json.loads(similar.stdout)["run_id"]
    passed = _aqe(root, "failures", "similar", "tests/test_shop.py::test_label")
    assert passed.returncode == 4 and "did not fail" in passed.stderr


@pytest.mark.e2e
def test_two_bugs_of_one_commit_are_two_causes_each_blamed_where_it_raised(
    tmp_path: Path,
) -> None:
    root = _project(tmp_path)
    assert _aqe(root, "run", "-w", "1").returncode == 0
    # One change breaks label() (a wrong value) and total() (an exception raised in a
    # helper it calls): they start failing in one run, for two reasons.
    _break(root, "return name.title()", "return name")
    _break(
        root,
        "return sum(items)",
        "return _add(items)\n\n\ndef _add(items):\n    raise TypeError('no items')",
    )
    assert _aqe(root, "run", "-w", "1").returncode == 1
    assert _aqe(root, "run", "-w", "1").returncode == 1
    report = json.loads(_aqe(root, "failures", "--json").stdout)
    causes = {g["cause"]: sorted(n.split("::")[1] for n in g["tests"]) for g in report["clusters"]}
    assert causes == {
        "shop.py::_add": ["test_total", "test_total_empty"],
        "label()": ["test_label"],
    }


@pytest.mark.e2e
def test_unrelated_breaks_in_separate_runs_stay_apart(tmp_path: Path) -> None:
    root = _project(tmp_path)
    assert _aqe(root, "run", "-w", "1").returncode == 0
    _break(root, "return name.title()", "return name")
    assert _aqe(root, "run", "-w", "1").returncode == 1
    _break(root, "return sum(items)", "return sum(items) + 1")
    assert _aqe(root, "run", "-w", "1").returncode == 1
    assert _clusters(root) == [["test_label"], ["test_total", "test_total_empty"]]


@pytest.mark.e2e
def test_similar_without_an_index_entry_for_other_runs_says_so(tmp_path: Path) -> None:
    root = _project(tmp_path)
    (root / "tests" / "test_shop.py").write_text(
        TESTS
        + textwrap.dedent(
            """
            def test_new():
                assert shop.label("x") == "y"
            """
        )
    )
    assert _aqe(root, "run", "-w", "1").returncode == 1
    text = _aqe(root, "failures", "similar", "tests/test_shop.py::test_new").stdout
    assert "no similar failure in other runs" in text


@pytest.mark.e2e
def test_one_cause_by_fingerprint_splits_where_its_tests_broke_apart_before(
    tmp_path: Path,
) -> None:
    # Two bugs behind one function: every failure is an assertion on gross(). Each bug
    # broke its own tests in a past run, alone: now they are two causes, not one.
    root = _project(tmp_path)
    (root / "pricing.py").write_text(
        "def gross(amount, member=False):\n"
        "    return _member(amount) if member else _standard(amount)\n\n\n"
        "def _member(amount):\n    return amount * 0.5\n\n\n"
        "def _standard(amount):\n    return amount * 1.0\n"
    )
    (root / "tests" / "test_pricing.py").write_text(
        "import pricing\n\n\n"
        "def test_member_ten():\n    assert pricing.gross(10, member=True) == 5\n\n\n"
        "def test_member_two():\n    assert pricing.gross(2, member=True) == 1\n\n\n"
        "def test_standard_ten():\n    assert pricing.gross(10) == 10\n\n\n"
        "def test_standard_two():\n    assert pricing.gross(2) == 2\n"
    )
    path = root / "pricing.py"
    pristine = path.read_text()
    # Each version a different size: a stale .pyc can never stand in for a newer source.
    member_bug = pristine.replace("amount * 0.5", "amount * 0.625")
    standard_bug = pristine.replace("amount * 1.0", "amount * 1.25")
    for text in (pristine, member_bug, pristine, standard_bug, pristine):
        path.write_text(text)
        _aqe(root, "run", "-w", "1", "--", "-p", "no:cacheprovider")
    path.write_text(member_bug.replace("amount * 1.0", "amount * 1.25"))
    assert _aqe(root, "run", "-w", "1").returncode == 1
    gross = [g for g in _clusters(root) if g[0].startswith(("test_member", "test_standard"))]
    assert gross == [
        ["test_member_ten", "test_member_two"],
        ["test_standard_ten", "test_standard_two"],
    ]
