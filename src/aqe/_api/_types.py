"""The typed results of ``aqe.run`` and the history readers.

They are built from the JSON report (``docs/json-report.md``) and the history
store, never from live engine objects: a result holds plain values, compares by
value, and outlives the run that made it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

__all__ = ["CollectionError", "RunResult", "RunSummary", "TestAttempt"]

#: Outcomes that fail a run (unless the test is quarantined).
FAILING = frozenset({"failed", "error", "crashed", "timeout"})


@dataclass(frozen=True, slots=True)
class TestAttempt:
    """One attempt of one test in a run (a retried test has several)."""

    __test__ = False  # not a pytest test class

    nodeid: str
    #: passed, failed, error, skipped, xfailed, xpassed, flaky, crashed or timeout.
    outcome: str
    #: Seconds over its setup, call and teardown.
    duration: float
    attempt: int
    #: hot (a shared worker), warm (a fresh fork) or cold (a fresh interpreter).
    tier: str
    worker: int
    file: str
    line: int | None
    #: Phase it failed or was skipped in (setup, call, teardown), if any.
    when: str | None
    error_type: str | None
    message: str | None
    traceback: str | None
    stdout: str
    stderr: str
    log: str
    #: In the project's quarantine: its failure did not fail the run.
    quarantined: bool

    @property
    def failed(self) -> bool:
        """Whether this attempt's outcome is a failure (failed, error, crashed, timeout)."""
        return self.outcome in FAILING


@dataclass(frozen=True, slots=True)
class CollectionError:
    """A file or node pytest could not collect."""

    location: str
    traceback: str


@dataclass(frozen=True, slots=True)
class RunResult:
    """What one ``aqe.run`` did: every attempt, the final counts, the exit code."""

    run_id: str
    #: pytest's exit codes: 0 passed, 1 tests failed, 2 interrupted, 5 none collected.
    exit_code: int
    #: Tests per final outcome, none left out as zero (a test retried to a pass
    #: counts once, as ``flaky``).
    outcomes: Mapping[str, int]
    #: Every attempt, in the order they finished.
    attempts: tuple[TestAttempt, ...]
    collection_errors: tuple[CollectionError, ...]
    #: Seconds the run took, from the report.
    duration: float | None
    git_commit: str | None
    #: Report files the caller asked for (None when not asked).
    json_report: Path | None
    junit_xml: Path | None
    #: The child's terminal output (stdout and stderr), as ``aqe run -q`` prints it.
    output: str

    @property
    def ok(self) -> bool:
        """Whether the run passed (exit code 0)."""
        return self.exit_code == 0

    @property
    def tests(self) -> tuple[TestAttempt, ...]:
        """Each test's final attempt, in the order tests first finished."""
        last: dict[str, TestAttempt] = {}
        for attempt in self.attempts:
            last[attempt.nodeid] = attempt
        return tuple(last.values())

    @property
    def failures(self) -> tuple[TestAttempt, ...]:
        """Final attempts that failed (quarantined tests included, marked as such)."""
        return tuple(test for test in self.tests if test.failed)

    @classmethod
    def from_report(
        cls,
        report: Mapping[str, object],
        *,
        output: str = "",
        json_report: Path | None = None,
        junit_xml: Path | None = None,
    ) -> RunResult:
        """Read a JSON run report (``aqe run --json``, schema ``aqe-run-report`` 1)."""
        run = _mapping(report.get("run"))
        outcomes = {
            str(k): int(cast("int", v))
            for k, v in _mapping(report.get("outcomes")).items()
            if k != "total" and v
        }
        duration = run.get("duration")
        exit_code = run.get("exit_code")
        return cls(
            run_id=str(run.get("run_id", "")),
            exit_code=int(cast("int", exit_code)) if exit_code is not None else 3,
            outcomes=outcomes,
            attempts=tuple(_attempt(_mapping(e)) for e in _list(report.get("tests"))),
            collection_errors=tuple(
                CollectionError(str(e.get("location", "")), str(e.get("traceback") or ""))
                for e in map(_mapping, _list(report.get("collection_errors")))
            ),
            duration=float(cast("float", duration)) if duration is not None else None,
            git_commit=_str_or_none(run.get("git_commit")),
            json_report=json_report,
            junit_xml=junit_xml,
            output=output,
        )


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One past run from the history, newest first in ``aqe.history()``."""

    run_id: str
    #: Epoch seconds.
    start: float
    end: float | None
    exit_code: int | None
    #: Tests per final outcome.
    outcomes: Mapping[str, int]
    workers: int
    git_commit: str | None
    command: tuple[str, ...]

    @property
    def duration(self) -> float | None:
        """Seconds the run took; None for a run that never finished (killed)."""
        return None if self.end is None else self.end - self.start


def _attempt(entry: Mapping[str, object]) -> TestAttempt:
    line = entry.get("line")
    return TestAttempt(
        nodeid=str(entry.get("nodeid", "")),
        outcome=str(entry.get("outcome", "")),
        duration=float(cast("float", entry.get("duration") or 0.0)),
        attempt=int(cast("int", entry.get("attempt") or 1)),
        tier=str(entry.get("tier") or "hot"),
        worker=int(cast("int", entry.get("worker") or 0)),
        file=str(entry.get("file", "")),
        line=int(cast("int", line)) if line is not None else None,
        when=_str_or_none(entry.get("when")),
        error_type=_str_or_none(entry.get("error_type")),
        message=_str_or_none(entry.get("message")),
        traceback=_str_or_none(entry.get("traceback")),
        stdout=str(entry.get("stdout") or ""),
        stderr=str(entry.get("stderr") or ""),
        log=str(entry.get("log") or ""),
        quarantined=bool(entry.get("quarantined")),
    )


def _mapping(value: object) -> Mapping[str, object]:
    return cast("Mapping[str, object]", value) if isinstance(value, Mapping) else {}


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)
