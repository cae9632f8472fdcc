"""The replay into pytest: the only code of the coordinator that calls pytest's hooks.

Every report a worker sends goes through pytest's own reporting hooks here, so
``--junitxml``, the terminal summary, ``--lf`` bookkeeping and third-party
reporting plugins see every result exactly as in a serial run. Tests that have no
report of their own (a worker died under them, a dependency failed) get one made
here. How a verdict shows in the reports (``rerun``, ``quarantined``, ``flaky``)
is decided in one place, ``mark``.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import pytest

from .._compat import CollectErrorRepr, CollectReport, TestReport
from .._messages import Collected, TestFinished, WarningRecorded
from .._model import RunRecord
from .._verdicts import AwaitTwin, Final, Isolate, Retry, Verdict
from ._junitxml import Bridge, junit_options
from ._worker import COLLECT_ERROR_REPR

Location = tuple[str, int | None, str]


class Replay:
    def __init__(self, session: pytest.Session) -> None:
        self.session = session
        self.config = session.config
        self.hook = session.config.hook
        #: Files whose collection was skipped (pytest counts each skip once).
        self.collect_skips: set[str] = set()
        self._deselected: set[str] = set()
        self._collect_warnings: set[tuple[str, str, str, int]] = set()
        #: Warning classes workers named that this process has not imported.
        self._stand_ins: dict[str, type[Warning]] = {}
        #: The per-test hooks, without implementations that do nothing here.
        self._callers: tuple[Any, Any, Any] | None = None

    def junit_setup(self, run: RunRecord) -> None:
        """aqe's JUnit XML takes the run's ``junit_*`` options; pytest's own
        ``--junitxml``, if on, gets what workers recorded (see ``_junitxml``)."""
        from .._compat import xml_key

        run.junit = junit_options(self.config)
        logxml = self.config.stash.get(xml_key, None)
        if logxml is not None:
            self.config.pluginmanager.register(Bridge(logxml), "aqe-junit-bridge")

    # -- collection ------------------------------------------------------------

    def collected(self, message: Collected) -> list[CollectReport]:
        """Replay a batch's failed and skipped collect reports, and its deselected
        tests (each once, however often a file is collected); returns the reports
        to record."""
        kept: list[CollectReport] = []
        for data in message.reports:
            report = self.hook.pytest_report_from_serializable(config=self.config, data=data)
            if report.__dict__.pop(COLLECT_ERROR_REPR, False) and isinstance(report.longrepr, str):
                report.longrepr = CollectErrorRepr(report.longrepr)
            if report.skipped and report.nodeid in self.collect_skips:
                continue  # the file collected again: pytest counts its skip once
            self.hook.pytest_collectreport(report=report)
            kept.append(report)
        unseen = [n for n in message.deselected if n not in self._deselected]
        if unseen:
            self._deselected.update(unseen)
            self.hook.pytest_deselected(items=[_Deselected(n) for n in unseen])
        return kept

    @property
    def deselected(self) -> int:
        return len(self._deselected)

    def collection_error(self, nodeid: str, text: str) -> None:
        self.hook.pytest_collectreport(report=CollectReport(nodeid, "failed", text, []))

    # -- tests -----------------------------------------------------------------

    def reports(self, message: TestFinished) -> list[TestReport]:
        return [
            self.hook.pytest_report_from_serializable(config=self.config, data=data)
            if isinstance(data, dict)
            else data
            for data in message.reports
        ]

    def test(self, nodeid: str, location: Location, reports: Iterable[TestReport]) -> None:
        if self._callers is None:
            self._callers = replay_callers(self.config)
        logstart, logreport, logfinish = self._callers
        if logstart is not None:
            logstart(nodeid=nodeid, location=location)
        for report in reports:
            logreport(report=report)
        if logfinish is not None:
            logfinish(nodeid=nodeid, location=location)

    def skip(self, nodeid: str, reason: str) -> None:
        """A test skipped without running (a dependency did not pass)."""
        file = nodeid.split("::", 1)[0]
        location = (file, None, nodeid.split("::", 1)[-1])
        report = TestReport(
            nodeid=nodeid,
            location=location,
            keywords={},
            outcome="skipped",
            longrepr=(file, 0, f"Skipped: {reason}"),
            when="setup",
        )
        self.test(nodeid, location, [report])

    def no_report(
        self, nodeid: str, text: str, seconds: float, outcome: str, verdict: Verdict
    ) -> None:
        """A test that has no reports of its own (its worker died, or it never ran):
        pytest's hooks see a failed call; ``aqe_outcome`` says what it was."""
        file = nodeid.split("::", 1)[0]
        report = TestReport(
            nodeid=nodeid,
            location=(file, None, nodeid),
            keywords={},
            outcome="failed",
            longrepr=text,
            when="call",
            duration=seconds,
            aqe_outcome=outcome,
        )
        mark([report], verdict)
        self.test(nodeid, report.location, [report])

    # -- warnings and notes -------------------------------------------------------

    def warning(self, message: WarningRecorded) -> None:
        if message.when == "collect":
            # Every worker imports what the test modules import (see _preimport),
            # so one import-time warning can arrive once per worker; pytest shows it once.
            key = (message.category, message.message, message.filename, message.lineno)
            if key in self._collect_warnings:
                return
            self._collect_warnings.add(key)
        category = self._warning_class(message.category)
        try:
            instance = category(message.message)
        except Exception:  # a class whose constructor wants more than a message
            category = self._warning_class(message.category, stand_in=True)
            instance = category(message.message)
        warning = warnings.WarningMessage(
            message=instance,
            category=category,
            filename=message.filename,
            lineno=message.lineno,
        )
        self.hook.pytest_warning_recorded.call_historic(
            kwargs={
                "warning_message": warning,
                "when": message.when,
                "nodeid": message.nodeid,
                "location": None,
            }
        )

    def _warning_class(self, name: str, stand_in: bool = False) -> type[Warning]:
        """The class a worker named (``module:qualname``): the real one when this
        process has imported it, else a stand-in of that name, which is all the
        summary shows (the worker has already applied the warning filters)."""
        module, _, qualname = name.rpartition(":")
        found: Any = None if stand_in else sys.modules.get(module or "builtins")
        for part in qualname.split("."):
            found = getattr(found, part, None)
        if isinstance(found, type) and issubclass(found, Warning):
            return found
        cached = self._stand_ins.get(name)
        if cached is None:
            short = qualname.rsplit(".", 1)[-1] or "UserWarning"
            cached = type(short, (UserWarning,), {"__module__": module, "__qualname__": qualname})
            self._stand_ins[name] = cached
        return cached

    def note(self, text: str) -> None:
        """A line for the user, on the terminal (above the live view)."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            getattr(reporter, "note", reporter.write_line)(text)

    # -- the session -----------------------------------------------------------

    def stop_reason(self) -> str | None:
        """pytest's session counted the replayed failures: ``-x``/``--maxfail``'s
        "stopping after N failures" once reached, else None."""
        if not (self.session.shouldfail or self.session.shouldstop):
            return None
        return str(self.session.shouldfail or "")

    def stopped_at(self, reason: str) -> None:
        """Failures of tests that were already running count, but the message
        stays pytest's: where the run stopped."""
        self.session.shouldfail = reason


def replay_callers(config: pytest.Config) -> tuple[Any, Any, Any]:
    """``pytest_runtest_logstart``, ``logreport`` and ``logfinish`` as the replay
    calls them, thousands of times a second: without the implementations that do
    nothing in this process (None for a hook left with none). Those are an empty
    method (aqe's terminal reporter's logstart), and pytest's logging plugin while
    live logging is off: it only tells its null handler which phase runs, and no
    test runs here. Every other plugin sees every call, as in a serial run."""
    from .._compat import LiveLoggingNullHandler

    pm = config.pluginmanager
    logging_plugin = pm.get_plugin("logging-plugin")
    idle = isinstance(getattr(logging_plugin, "log_cli_handler", None), LiveLoggingNullHandler)
    callers = []
    for name in ("pytest_runtest_logstart", "pytest_runtest_logreport", "pytest_runtest_logfinish"):
        impls = getattr(pm.hook, name).get_hookimpls()
        remove = [
            impl.plugin
            for impl in impls
            if (idle and impl.plugin is logging_plugin) or _does_nothing(impl.function)
        ]
        caller = pm.subset_hook_caller(name, remove)
        keep = len(impls) > len(remove) or name == "pytest_runtest_logreport"
        callers.append(caller if keep else None)
    start, report, finish = callers
    return start, report, finish


def _does_nothing(function: Any) -> bool:
    """A method whose body is ``return None`` (or a docstring, or ``pass``)."""
    code = getattr(function, "__code__", None)
    return code is not None and code.co_code == _NOTHING.co_code and not code.co_names


def _nothing(*args: Any, **kwargs: Any) -> None:
    return None


_NOTHING = _nothing.__code__


def mark(reports: Sequence[TestReport], verdict: Verdict) -> None:
    """Show the verdict in the reports pytest's hooks see: an attempt that runs
    again is a ``rerun`` (pytest-rerunfailures' word), not a failure; a
    quarantined failure is ``quarantined``; a pass after failures is flaky."""
    match verdict:
        case AwaitTwin() | Retry():
            again = [report for report in reports if report.failed]
        case Isolate():  # this attempt stands only if it stays under alone
            again = [report for report in reports if report.failed or report.when == "call"]
        case Final(outcome="flaky"):
            for report in reports:
                setattr(report, "aqe_outcome", "flaky")  # noqa: B010 - pytest reports take extra attributes
            return
        case Final(quarantined=True):
            for report in reports:
                if report.failed:
                    report.outcome = "quarantined"  # type: ignore[assignment]  # recorded, not a failure
            return
        case Final():
            return
    for report in again:
        report.outcome = "rerun"  # type: ignore[assignment]  # not a failure (yet): it runs again


class _Deselected:
    """Stands in for an item deselected in a worker, for the terminal's counts."""

    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid
