"""Turn pytest's per-phase reports for one test into one ``TestResult``.

pytest reports a test as up to three phase reports; users, the store and agents
want one outcome per test. The rule: an error in setup or teardown makes the
outcome ``error``; otherwise the call decides (xfail/xpass included).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from .._compat import TestReport
from .._model import Outcome, TestResult, cap_text
from ._junitxml import ATTRIBUTES, SUITE_PROPERTIES

# "ValueError: bad", "mod.CustomError: x", "SystemExit: 3", "Failed: DID NOT RAISE"
_ERROR_TYPE = re.compile(r"^((?:[A-Za-z_]\w*\.)*[A-Z]\w*)(?::\s|:?$)")
# pytest's line for an exception group holding one exception:
# "ValueError('bad') [single exception in ExceptionGroup]"
_SINGLE_IN_GROUP = re.compile(
    r"^((?:[A-Za-z_]\w*\.)*[A-Z]\w*)\(.*\) \[single exception in \w+\]$", re.S
)


def result_from_reports(
    reports: Sequence[TestReport], worker: int, start: float, stop: float
) -> TestResult:
    outcome, when, failing, phases = _fold(reports, stop - start)
    error_type = message = traceback = None
    if failing is not None:
        error_type, message, traceback = _failure(failing, outcome)
    last = reports[-1]
    file, line, _ = last.location
    return TestResult(
        nodeid=last.nodeid,
        file=file,
        line=None if line is None else line + 1,
        outcome=outcome,
        phases=phases,
        worker=worker,
        when=when,
        error_type=error_type,
        message=message,
        traceback=traceback,
        stdout=cap_text(last.capstdout),
        stderr=cap_text(last.capstderr),
        log=cap_text(last.caplog),
        start=start,
        stop=stop,
        properties=_pairs(last.user_properties),
        xml_attributes=_pairs(
            next((getattr(r, ATTRIBUTES) for r in reversed(reports) if hasattr(r, ATTRIBUTES)), ())
        ),
        suite_properties=_pairs(
            pair for report in reports for pair in getattr(report, SUITE_PROPERTIES, ())
        ),
    )


def _fold(
    reports: Sequence[TestReport], wall: float
) -> tuple[Outcome, str | None, TestReport | None, dict[str, float]]:
    """(outcome, phase that decided it, the report that failed or skipped, seconds
    per phase)."""
    outcome: Outcome = "passed"
    when: str | None = None
    failing: TestReport | None = None
    phases: dict[str, float] = {}
    for report in reports:
        # A test that mocks the clock pytest times with (freezegun's class decorator)
        # gets phases of +-1.6e9 s; what aqe records stays within the test's own
        # wall time, so history, estimates and reports are not thrown off by them.
        phases[report.when] = min(max(report.duration, 0.0), wall) if wall > 0 else report.duration
        if report.failed:
            if report.when == "call":
                if outcome != "error":
                    outcome, when, failing = "failed", "call", report
            else:
                outcome, when, failing = "error", report.when, report
        elif report.skipped:
            if outcome in ("error", "failed"):
                continue
            if hasattr(report, "wasxfail"):
                outcome = "xfailed"
            else:
                outcome = "skipped"
            when, failing = report.when, report
        elif report.when == "call" and hasattr(report, "wasxfail") and outcome == "passed":
            outcome, when = "xpassed", "call"
    return outcome, when, failing, phases


def _failure(failing: TestReport, outcome: Outcome) -> tuple[str | None, str | None, str]:
    """(error type, message, traceback) of the report that failed or skipped."""
    error_type = None
    traceback = cap_text(failing.longreprtext)
    crash = getattr(failing.longrepr, "reprcrash", None)
    if crash is not None:
        message = crash.message
    elif isinstance(failing.longrepr, tuple) and len(failing.longrepr) == 3:
        message = str(failing.longrepr[2])  # skip reports: (path, line, reason)
    else:
        message = traceback.strip().splitlines()[-1] if traceback.strip() else None
    if report_skip := _skip_location(failing.longrepr):
        traceback = report_skip  # what pytest's junitxml writes for a skip
    if outcome in ("failed", "error") and message:
        match = _ERROR_TYPE.match(message) or _SINGLE_IN_GROUP.match(message)
        error_type = match.group(1) if match else None
        if outcome == "failed" and error_type is None and message.startswith("assert"):
            error_type = "AssertionError"
    elif outcome == "xfailed":
        message = getattr(failing, "wasxfail", None) or message
    message = cap_text(message, 4096) if message else message
    return error_type, message, traceback


def _pairs(pairs: Iterable[Any]) -> tuple[tuple[str, str], ...]:
    """Name/value pairs as text, as pytest's junitxml writes them (``str`` of each)."""
    return tuple((str(name), str(value)) for name, value in pairs)


def _skip_location(longrepr: object) -> str | None:
    """``path:line: reason`` for a skip's ``(path, line, "Skipped: reason")``."""
    if not isinstance(longrepr, (tuple, list)) or len(longrepr) != 3:
        return None
    path, line, reason = longrepr
    return f"{path}:{line}: {str(reason).removeprefix('Skipped: ')}"


#: Markers that are pytest's mechanics rather than a test's labels.
_MECHANICS = frozenset({"parametrize", "usefixtures", "filterwarnings"})


def marker_names(item: Any) -> tuple[str, ...]:
    """A collected test's markers (its own and inherited), for the reports' filters."""
    return tuple(sorted({m.name for m in item.iter_markers()} - _MECHANICS))
