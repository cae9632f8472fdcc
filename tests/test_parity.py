"""Parity: every test's outcome under ``aqe run -w 2`` equals its outcome under plain pytest.

The fixture projects live in ``tests/fixtures/`` (not collected by this suite: the
repo's ``norecursedirs`` skips ``fixtures``); the demo in ``examples/demo/``. Each run
happens once per session and is shared by the tests below.

Comparing the two tools alone would pass if both were broken in the same way (or if
the outcome recorder were), so ``test_expected_outcomes`` and ``test_expected_counts``
also pin what pytest's protocol must produce for the tricky cases.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from pathlib import Path

import pytest

try:
    from parity import AqeRun, PytestRun, run_aqe, run_pytest
except ImportError:  # tests/ turned into a package
    from tests.parity import AqeRun, PytestRun, run_aqe, run_pytest

#: Every test here starts processes (see conftest: the fast loop is -m "not e2e").
pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent
PROJECTS = {
    "features": HERE / "fixtures" / "features",
    "selection": HERE / "fixtures" / "selection",
    "collect_error": HERE / "fixtures" / "collect_error",
    "empty": HERE / "fixtures" / "empty",
    "process_state": HERE / "fixtures" / "process_state",
    "demo": HERE.parent / "examples" / "demo",
}


@functools.cache
def _pytest_run(project: str, args: tuple[str, ...]) -> PytestRun:
    return run_pytest(PROJECTS[project], args)


@functools.cache
def _aqe_run(project: str, args: tuple[str, ...]) -> AqeRun:
    return run_aqe(PROJECTS[project], args, workers=2)


def pytest_run(project: str, args: tuple[str, ...] = ()) -> PytestRun:
    """Plain pytest's run of ``project``, once per session."""
    return _pytest_run(project, tuple(args))


def aqe_run(project: str, args: tuple[str, ...] = ()) -> AqeRun:
    """``aqe run -w 2``'s run of ``project``, once per session."""
    return _aqe_run(project, tuple(args))


def outcomes_diff(expected: dict[str, str], actual: dict[str, str]) -> str:
    lines = [
        f"  only under pytest: {nodeid} ({expected[nodeid]})"
        for nodeid in expected.keys() - actual.keys()
    ]
    lines += [
        f"  only under aqe:    {nodeid} ({actual[nodeid]})"
        for nodeid in actual.keys() - expected.keys()
    ]
    lines += [
        f"  {nodeid}: pytest {expected[nodeid]}, aqe {actual[nodeid]}"
        for nodeid in expected.keys() & actual.keys()
        if expected[nodeid] != actual[nodeid]
    ]  # fmt: skip
    return "\n".join(sorted(lines))


def case(project: str, *args: str, id: str) -> object:
    return pytest.param(project, args, id=id)


CASES = [
    case("features", id="features"),
    case("features", "-k", "param or greeting", id="features-k"),
    case("features", "-m", "smoke", id="features-m"),
    case("features", "pkg", id="features-directory"),
    case(
        "features",
        "test_unittest_style.py::TestUnit",
        "doclib.py",
        id="features-class-and-doctests",
    ),
    case("selection", id="selection"),
    case("selection", "-k", "cart and not slow", id="selection-k"),
    case("selection", "-m", "db and not slow", id="selection-m"),
    case("selection", "-m", "slow", id="selection-m-passing-only"),
    case(
        "selection",
        "--deselect",
        "tests/test_cart.py::test_cart_known_bug",
        "--deselect",
        "tests/test_cart.py::test_total[one-item]",
        id="selection-deselect",
    ),
    case("selection", "tests/test_users.py::TestUsers::test_rename", id="selection-nodeid"),
    case("selection", "tests/test_cart.py::test_total[two-items]", id="selection-param-nodeid"),
    case("selection", "tests/db", id="selection-directory"),
    case("selection", "tests/db", "tests/test_users.py::test_create_user", id="selection-paths"),
    case("selection", "tests/test_users.py", "-k", "rename", id="selection-path-and-k"),
    case("selection", "-k", "no_such_test", id="selection-nothing-selected"),
    case("collect_error", "--continue-on-collection-errors", id="collect-error-continue"),
    case("empty", id="empty"),
    case("process_state", id="process-state"),
    case("demo", id="demo"),
]


@pytest.mark.parametrize(("project", "args"), CASES)
def test_same_outcomes_as_pytest(project: str, args: tuple[str, ...]) -> None:
    expected = pytest_run(project, args)
    actual = aqe_run(project, args)
    report = actual.require_report()
    assert report["schema"] == "aqe-run-report", actual.describe()
    assert report["version"] == 1

    attempts = Counter((test["nodeid"], test.get("attempt", 1)) for test in report["tests"])
    run_twice = sorted(f"{nodeid} (attempt {n})" for (nodeid, n), k in attempts.items() if k > 1)
    assert not run_twice, f"tests reported twice for one attempt: {run_twice}"

    diff = outcomes_diff(expected.outcomes, actual.outcomes)
    assert actual.outcomes == expected.outcomes, f"outcomes differ:\n{diff}\n{actual.describe()}"
    assert actual.exit_code == expected.exit_code, actual.describe()


@pytest.mark.parametrize(
    ("project", "args", "exit_code", "count"),
    [
        ("empty", (), 5, 0),
        ("selection", ("-k", "no_such_test"), 5, 0),
        ("selection", ("-m", "slow"), 0, 3),
        ("selection", (), 1, 19),
        ("features", ("pkg",), 1, 8),
        ("demo", (), 1, 50),
        ("process_state", (), 0, 60),
    ],
    ids=[
        "empty",
        "nothing-selected",
        "all-pass",
        "selection",
        "features-directory",
        "demo",
        "process-state",
    ],
)
def test_pytest_baseline(project: str, args: tuple[str, ...], exit_code: int, count: int) -> None:
    """Sanity of the reference side, so parity cannot pass on two empty runs."""
    run = pytest_run(project, args)
    assert (run.exit_code, len(run.outcomes)) == (exit_code, count), run.output


def test_empty_project_exits_5() -> None:
    run = aqe_run("empty")
    assert run.exit_code == 5, run.describe()
    assert run.require_report()["tests"] == []


def _names_broken_file(report: dict[str, object]) -> bool:
    errors = report["collection_errors"]
    assert isinstance(errors, list)
    for error in errors:
        location = error.get("location", error) if isinstance(error, dict) else error
        if "test_broken.py" in json.dumps(location):
            return True
    return False


def test_collection_error() -> None:
    """Pytest stops at a collection error (exit 2) and runs nothing. aqe reports
    the broken file and still runs the healthy files, like pytest's
    --continue-on-collection-errors: same outcomes, and exit 1 (failures, since
    nothing was interrupted)."""
    expected = pytest_run("collect_error")
    assert expected.exit_code == 2 and expected.collection_errors == ["test_broken.py"]
    continued = pytest_run("collect_error", ("--continue-on-collection-errors",))
    healthy = continued.outcomes
    assert len(healthy) == 5

    actual = aqe_run("collect_error")
    report = actual.require_report()
    assert actual.exit_code == continued.exit_code == 1, actual.describe()
    assert _names_broken_file(report), report["collection_errors"]
    assert actual.outcomes == healthy, outcomes_diff(healthy, actual.outcomes)


def test_collection_error_continue() -> None:
    report = aqe_run("collect_error", ("--continue-on-collection-errors",)).require_report()
    assert _names_broken_file(report), report["collection_errors"]


EXPECTED = {
    "test_basic.py::test_passes": "passed",
    "test_basic.py::test_deliberately_failing_assertion": "failed",
    "test_basic.py::test_sys_exit_is_a_failure": "failed",
    "test_basic.py::test_double[three-wrong]": "failed",
    "test_basic.py::test_tricky_ids[caf\\xe9]": "passed",
    "test_basic.py::test_param_marks[xfail-param]": "xfailed",
    "test_basic.py::test_dynamic_param[dyn3]": "passed",
    "test_fixtures.py::test_fixture_setup_error": "error",
    "test_fixtures.py::test_fixture_teardown_error": "error",
    "test_fixtures.py::test_fails_and_teardown_error": "error",
    "test_fixtures.py::test_module_fixture_error_b": "error",
    "test_fixtures.py::test_xfail_with_setup_error": "xfailed",
    "test_fixtures.py::test_skip_from_fixture": "skipped",
    "test_fixtures.py::test_dependent_teardown_order": "passed",
    "test_fixtures.py::test_module_param_b[m2]": "passed",
    "test_marks.py::test_skip_mark": "skipped",
    "test_marks.py::test_skipif_true": "skipped",
    "test_marks.py::test_skipif_false": "passed",
    "test_marks.py::test_xfail_fails": "xfailed",
    "test_marks.py::test_xfail_passes": "xpassed",
    "test_marks.py::test_xfail_strict_fails": "xfailed",
    "test_marks.py::test_xfail_strict_passes": "failed",
    "test_marks.py::test_xfail_wrong_exception": "failed",
    "test_marks.py::test_xfail_not_run": "xfailed",
    "test_marks.py::test_xfail_imperative": "xfailed",
    "test_marks.py::test_warning_as_error_from_ini": "failed",
    "test_marks.py::test_warning_as_error_from_mark": "failed",
    "test_marks.py::test_emits_warning": "passed",
    "test_builtins.py::test_capfd": "passed",
    "test_builtins.py::test_current_test_env": "passed",
    "test_unittest_style.py::TestUnit::test_lifecycle": "passed",
    "test_unittest_style.py::TestUnit::test_expected_failure": "xfailed",
    "test_unittest_style.py::TestUnit::test_unexpected_success": "failed",
    "test_unittest_style.py::TestUnitBrokenSetUp::test_never_runs": "failed",
    "test_unittest_style.py::TestUnitBrokenSetUpClass::test_never_runs": "error",
    "test_xunit.py::TestXunitClass::test_two": "passed",
    "doclib.py::doclib.add": "passed",
    "doclib.py::doclib.buggy_mul": "failed",
    "pkg/sub/test_sub.py::test_inherits_pkg_override": "passed",
}

#: Outcome counts of the whole features project (one outcome per test).
FEATURES_COUNTS = {"passed": 79, "failed": 15, "error": 6, "skipped": 7, "xfailed": 8, "xpassed": 1}


@pytest.mark.parametrize("tool", ["pytest", "aqe"])
def test_expected_outcomes(tool: str) -> None:
    run = pytest_run("features") if tool == "pytest" else aqe_run("features")
    if isinstance(run, AqeRun):
        run.require_report()
    actual = {nodeid: run.outcomes.get(nodeid, "missing") for nodeid in EXPECTED}
    assert actual == EXPECTED, outcomes_diff(EXPECTED, actual)


@pytest.mark.parametrize("tool", ["pytest", "aqe"])
def test_expected_counts(tool: str) -> None:
    run = pytest_run("features") if tool == "pytest" else aqe_run("features")
    if isinstance(run, AqeRun):
        run.require_report()
    assert dict(Counter(run.outcomes.values())) == FEATURES_COUNTS
    assert run.exit_code == 1


@pytest.mark.parametrize("tool", ["pytest", "aqe"])
def test_demo_has_exactly_one_deliberate_failure(tool: str) -> None:
    run = pytest_run("demo") if tool == "pytest" else aqe_run("demo")
    if isinstance(run, AqeRun):
        run.require_report()
    failing = sorted(nodeid for nodeid, outcome in run.outcomes.items() if outcome != "passed")
    assert failing == ["tests/test_pricing.py::test_deliberately_failing_rounding_bug"]
