"""pytest's phase reports -> one TestResult, from real ``pytest.TestReport`` objects."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from _pytest._code import ExceptionInfo

from aqe._engine._convert import result_from_reports

NODEID = "tests/test_x.py::test_a"
LOCATION = ("tests/test_x.py", 9, "test_a")
When = Literal["setup", "call", "teardown"]


def _report(
    when: When,
    outcome: Literal["passed", "failed", "skipped"] = "passed",
    longrepr: Any = None,
    duration: float = 0.01,
    **extra: Any,
) -> pytest.TestReport:
    return pytest.TestReport(
        NODEID, LOCATION, {}, outcome, longrepr, when, duration=duration, **extra
    )


def _raised(error: BaseException) -> Any:
    try:
        raise error
    except BaseException as caught:
        return ExceptionInfo.from_exception(caught).getrepr()


def _phases(**call: Any) -> list[pytest.TestReport]:
    return [_report("setup"), _report("call", **call), _report("teardown")]


def test_a_pass_keeps_phases_location_and_times() -> None:
    result = result_from_reports(_phases(), worker=2, start=10.0, stop=11.0)
    assert (result.outcome, result.worker, result.when, result.error_type) == (
        "passed",
        2,
        None,
        None,
    )
    assert (result.nodeid, result.file, result.line) == (NODEID, "tests/test_x.py", 10)
    assert result.phases == {"setup": 0.01, "call": 0.01, "teardown": 0.01}
    assert (result.start, result.stop) == (10.0, 11.0)


def test_a_failed_call_names_the_error_type_and_message() -> None:
    reports = _phases(outcome="failed", longrepr=_raised(ValueError("bad value")))
    result = result_from_reports(reports, 0, 0.0, 1.0)
    assert (result.outcome, result.when) == ("failed", "call")
    assert (result.error_type, result.message) == ("ValueError", "ValueError: bad value")
    assert result.traceback is not None and "bad value" in result.traceback


def test_a_failed_setup_or_teardown_is_an_error_and_wins_over_the_call() -> None:
    reports = [
        _report("setup"),
        _report("call", "failed", _raised(AssertionError("x"))),
        _report("teardown", "failed", _raised(RuntimeError("teardown broke"))),
    ]
    result = result_from_reports(reports, 0, 0.0, 1.0)
    assert (result.outcome, result.when, result.error_type) == ("error", "teardown", "RuntimeError")


def test_a_skip_keeps_its_reason_and_location() -> None:
    reports = [_report("setup", "skipped", ("tests/test_x.py", 3, "Skipped: no db"))]
    result = result_from_reports(reports, 0, 0.0, 1.0)
    assert (result.outcome, result.when, result.message) == ("skipped", "setup", "Skipped: no db")
    assert result.traceback == "tests/test_x.py:3: no db"


def test_xfail_and_xpass() -> None:
    xfailed = _phases(outcome="skipped", longrepr=("f", 1, "reason"), wasxfail="known bug")
    assert result_from_reports(xfailed, 0, 0.0, 1.0).outcome == "xfailed"
    assert result_from_reports(xfailed, 0, 0.0, 1.0).message == "known bug"
    xpassed = _phases(wasxfail="")
    assert result_from_reports(xpassed, 0, 0.0, 1.0).outcome == "xpassed"


def test_phase_times_stay_within_the_tests_wall_time() -> None:
    reports = [_report("call", duration=1.6e9)]  # a frozen clock's idea of a second
    assert result_from_reports(reports, 0, 5.0, 5.5).phases == {"call": 0.5}


def test_output_and_user_properties_come_from_the_last_report() -> None:
    last = pytest.TestReport(
        NODEID,
        LOCATION,
        {},
        "passed",
        None,
        "teardown",
        sections=[("Captured stdout call", "hello\n"), ("Captured stderr call", "oops\n")],
        user_properties=[("size", 3)],
    )
    result = result_from_reports([_report("setup"), _report("call"), last], 0, 0.0, 1.0)
    assert (result.stdout, result.stderr) == ("hello\n", "oops\n")
    assert result.properties == (("size", "3"),)
