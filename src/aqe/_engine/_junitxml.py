"""What pytest's junitxml plugin keeps inside one process, carried across aqe's.

``record_xml_attribute`` and ``record_testsuite_property`` write into the ``LogXML``
object of the process a test runs in (found under pytest's ``xml_key``). Under aqe
that is a worker, whose copy is never written, and without ``--junitxml`` there is
none at all. Each worker therefore puts a :class:`Recorder` where those fixtures
look; what a test records rides on its reports to the coordinator, into aqe's own
report (``TestResult`` fields, see ``_convert``) and, through :class:`Bridge`, into
pytest's ``LogXML`` there when the user asked for ``--junitxml`` too. The bridge
also shows that ``LogXML`` aqe's own outcomes (a quarantined failure, a failed
attempt that runs again), which it would otherwise write as passes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Generator
from typing import Any

import pytest

from .._compat import TestReport
from .._model import JunitOptions

__all__ = ["ATTRIBUTES", "SUITE_PROPERTIES", "Bridge", "install_recorder", "junit_options"]

#: Report attributes a worker stamps: the test's XML attributes so far, and the
#: suite properties recorded since the previous report (lists of name/value pairs).
ATTRIBUTES = "aqe_xml_attributes"
SUITE_PROPERTIES = "aqe_suite_properties"


def junit_options(config: pytest.Config) -> JunitOptions:
    """The run's ``junit_*`` ini options, for aqe's own JUnit XML; pytest's defaults
    when its junitxml plugin is off (``-p no:junitxml``: the options do not exist)."""
    try:
        suite_name = str(config.getini("junit_suite_name"))
    except ValueError:
        return JunitOptions()
    family = str(config.getini("junit_family"))
    return JunitOptions(
        suite_name=None if suite_name == "pytest" else suite_name,
        family="xunit1" if family == "legacy" else family,
        logging=str(config.getini("junit_logging")),
        log_passing_tests=bool(config.getini("junit_log_passing_tests")),
        duration_report=str(config.getini("junit_duration_report")),
        prefix=getattr(config.option, "junitprefix", None),
    )


class _Case:
    def __init__(self) -> None:
        self.attributes: dict[str, str] = {}

    def add_attribute(self, name: object, value: object) -> None:
        self.attributes[str(name)] = str(value)


class Recorder:
    """Stands in for pytest's ``LogXML`` in a worker: keeps what the fixtures record
    and stamps it on the test's reports as they are made."""

    def __init__(self, family: str) -> None:
        #: pytest's fixtures warn that xunit2 has no place for their output; a worker
        #: warns only when pytest's own ``--junitxml`` is on, as plain pytest does.
        self.family = family
        self.cases: dict[str, _Case] = {}
        self.suite: list[tuple[str, str]] = []
        self.stamped = 0

    def node_reporter(self, node: object) -> _Case:
        return self.cases.setdefault(str(getattr(node, "nodeid", node)), _Case())

    def add_global_property(self, name: object, value: object) -> None:
        __tracebackhide__ = True
        if not isinstance(name, str):
            kind = type(name).__name__
            raise TypeError(f"name parameter needs to be a string, but {kind} given")
        self.suite.append((name, str(value)))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: TestReport) -> None:
        case = self.cases.get(report.nodeid)
        if case is not None and case.attributes:
            setattr(report, ATTRIBUTES, list(case.attributes.items()))
        if len(self.suite) > self.stamped:
            setattr(report, SUITE_PROPERTIES, self.suite[self.stamped :])
            self.stamped = len(self.suite)
        if report.when == "teardown":
            self.cases.pop(report.nodeid, None)


def install_recorder(config: pytest.Config) -> None:
    """In a worker: make the recorder what pytest's junitxml fixtures find."""
    from .._compat import xml_key

    logxml = config.stash.get(xml_key, None)
    recorder = Recorder(str(getattr(logxml, "family", "xunit1")))
    stash: Any = config.stash  # the recorder is a duck-typed stand-in for LogXML
    stash[xml_key] = recorder
    config.pluginmanager.register(recorder, "aqe-junit-recorder")


class Bridge:
    """In the coordinator, next to pytest's ``LogXML``: hands it what workers recorded
    and makes it agree with aqe's report on outcomes pytest does not know."""

    def __init__(self, logxml: Any) -> None:
        self.logxml = logxml
        self.rerun: set[str] = set()

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_logreport(self, report: TestReport) -> Generator[None, object, object]:
        xml = self.logxml
        for name, value in getattr(report, ATTRIBUTES, ()):
            xml.node_reporter(report).add_attribute(name, value)
        for name, value in getattr(report, SUITE_PROPERTIES, ()):
            if (name, value) not in xml.global_properties:  # each worker has its session
                xml.add_global_property(name, value)
        outcome = getattr(report, "outcome", None)
        if outcome == "rerun":
            self.rerun.add(report.nodeid)
        reporter = xml.node_reporter(report) if report.nodeid in self.rerun else None
        result = yield
        if outcome == "quarantined":
            # Written as aqe writes it: failed, but not failing whoever reads the file.
            case = xml.node_reporter(report)
            case.record_testreport(report)
            node = ET.Element("skipped", type="aqe.quarantined", message=_quarantined(report))
            node.text = report.longreprtext
            case.append(node)
        if report.when == "teardown" and reporter is not None:
            # A failed attempt that runs again is no testcase of its own (aqe's report
            # keeps it as a rerun child of the test's one testcase).
            self.rerun.discard(report.nodeid)
            if reporter in xml.node_reporters_ordered:
                xml.node_reporters_ordered.remove(reporter)
        return result

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.rerun.discard(nodeid)


def _quarantined(report: TestReport) -> str:
    """The message aqe's own report gives a quarantined failure."""
    outcome = getattr(report, "aqe_outcome", None)  # crashed, timeout: aqe's own reports
    lines = report.longreprtext.strip().splitlines() or [""]
    crash = getattr(report.longrepr, "reprcrash", None)
    reason = crash.message if crash is not None else lines[0 if outcome else -1]
    outcome = outcome or ("failed" if report.when == "call" else "error")
    return f"quarantined test {outcome}: {reason}" if reason else "quarantined"
