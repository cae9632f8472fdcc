"""JUnit XML report, in the dialect pytest, Jenkins and GitLab already agree on.

CI systems render test results from JUnit XML, so aqe writes the same shape as
``pytest --junitxml`` (classname/name mangling, ``<failure>``/``<error>``/``<skipped>``
children, per-testcase ``<properties>``) and existing dashboards keep working when a
suite moves to aqe. Only the stdlib ``ElementTree`` is used; text is stripped of
characters XML 1.0 forbids so one stray escape code in a test's output cannot make
the whole file unparseable.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path

from aqe._model import FAILING_OUTCOMES, RunRecord, TestResult
from aqe._reporting.json_report import atomic_write_bytes

__all__ = ["mangle_nodeid", "sanitize_xml_text", "write_junit_xml"]

# Everything outside the XML 1.0 Char production: C0 controls except tab/LF/CR,
# lone surrogates, U+FFFE and U+FFFF.
_ILLEGAL_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

_LOG_HEADER = "----------------------------- Captured log ------------------------------"


def sanitize_xml_text(text: str) -> str:
    """Drop characters that XML 1.0 cannot represent, even as character references."""
    return _ILLEGAL_XML.sub("", text)


def mangle_nodeid(nodeid: str) -> tuple[str, str]:
    """Split a node id into JUnit ``(classname, name)`` exactly as pytest's junitxml does.

    ``tests/test_a.py::TestX::test_y[1]`` becomes ``("tests.test_a.TestX", "test_y[1]")``.
    Parameters are split off first so ``::`` or ``/`` inside them stays in the name.
    """
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    module = names[0].replace("/", ".")
    names[0] = module[: -len(".py")] if module.endswith(".py") else module
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    element = ET.SubElement(
        parent, tag, {key: sanitize_xml_text(value) for key, value in attrib.items()}
    )
    if text:
        element.text = sanitize_xml_text(text)
    return element


def _group_attempts(results: Iterable[TestResult]) -> dict[str, list[TestResult]]:
    """Attempts per node id, node ids in first-seen order, attempts in attempt order."""
    groups: dict[str, list[TestResult]] = {}
    for result in results:
        groups.setdefault(result.nodeid, []).append(result)
    for attempts in groups.values():
        attempts.sort(key=lambda result: result.attempt)  # stable: ties keep arrival order
    return groups


def _outcome_element(case: ET.Element, result: TestResult) -> None:
    """Append the ``<failure>``/``<error>``/``<skipped>`` child for ``result``, if any."""
    reason = result.message or result.error_type or ""
    detail = result.traceback or result.message or ""
    type_attr = {"type": result.error_type} if result.error_type else {}
    if result.quarantined and result.outcome in FAILING_OUTCOMES:
        # Quarantined: it failed, but must not fail a CI that reads this file.
        message = f"quarantined test {result.outcome}: {reason}" if reason else "quarantined"
        _sub(case, "skipped", detail, type="aqe.quarantined", message=message)
    elif result.outcome in ("failed", "crashed", "timeout"):
        _sub(case, "failure", detail, message=reason or result.outcome, **type_attr)
    elif result.outcome == "error":
        when = result.when or "setup"
        message = f'failed on {when} with "{reason}"' if reason else f"failed on {when}"
        _sub(case, "error", detail, message=message, **type_attr)
    elif result.outcome == "skipped":
        _sub(case, "skipped", result.traceback, type="pytest.skip", message=result.message or "")
    elif result.outcome == "xfailed":
        message = f"xfail: {result.message}" if result.message else "xfail"
        _sub(case, "skipped", result.traceback, type="pytest.xfail", message=message)
    # "passed" and (non-strict) "xpassed" have no child: they count as passed.


def _output_elements(case: ET.Element, result: TestResult) -> None:
    """Captured output, only for failing tests (as pytest does by default)."""
    if result.outcome not in FAILING_OUTCOMES:
        return
    stdout = result.stdout
    if result.log:
        stdout = f"{stdout.rstrip()}\n{_LOG_HEADER}\n{result.log}" if stdout else result.log
    if stdout:
        _sub(case, "system-out", stdout)
    if result.stderr:
        _sub(case, "system-err", result.stderr)


def _testcase(suite: ET.Element, attempts: Sequence[TestResult]) -> None:
    """One ``<testcase>`` for all attempts of one node id.

    The last attempt decides the outcome. Each earlier failed attempt becomes a
    Maven Surefire child (``flakyFailure``/``flakyError`` when the test finally
    passed, ``rerunFailure``/``rerunError`` when it kept failing), so CI tools that
    read Surefire reports see the retries.
    """
    final = attempts[-1]
    classname, name = mangle_nodeid(final.nodeid)
    attrib = {"classname": classname, "name": name, "file": final.file}
    if final.line is not None:
        attrib["line"] = str(final.line)
    attrib["time"] = _seconds(final.duration)
    case = _sub(suite, "testcase", **attrib)
    properties = _sub(case, "properties")
    _sub(properties, "property", name="worker", value=str(final.worker))
    _sub(properties, "property", name="attempt", value=str(final.attempt))
    _sub(properties, "property", name="tier", value=final.tier)
    if final.quarantined:
        _sub(properties, "property", name="quarantined", value="true")
    _outcome_element(case, final)
    for earlier in attempts[:-1]:
        _retry_element(case, earlier, passed=final.outcome not in FAILING_OUTCOMES)
    _output_elements(case, final)


def _retry_element(case: ET.Element, attempt: TestResult, passed: bool) -> None:
    if attempt.outcome not in FAILING_OUTCOMES:
        return
    kind = "Error" if attempt.outcome == "error" else "Failure"
    tag = ("flaky" if passed else "rerun") + kind
    attrib = {"message": attempt.message or attempt.outcome}
    if attempt.error_type:
        attrib["type"] = attempt.error_type
    element = _sub(case, tag, **attrib)
    _sub(element, "stackTrace", attempt.traceback or attempt.message or "")
    if attempt.stdout:
        _sub(element, "system-out", attempt.stdout)
    if attempt.stderr:
        _sub(element, "system-err", attempt.stderr)


def _collection_error(suite: ET.Element, location: str, traceback: str) -> None:
    classname, name = mangle_nodeid(location)
    case = _sub(
        suite,
        "testcase",
        classname=classname,
        name=name,
        file=location.split("::")[0],
        time=_seconds(0.0),
    )
    _sub(case, "error", traceback, message="collection failure")


def _suite_time(run: RunRecord) -> float:
    if run.end is not None:
        return run.end - run.start
    stops = [result.stop for result in run.results if result.stop > 0]
    if stops:
        return max(stops) - run.start
    return sum(result.duration for result in run.results)


def build_junit_tree(run: RunRecord, suite_name: str = "aqe") -> ET.Element:
    """Return the ``<testsuites>`` root element for ``run``."""
    root = ET.Element("testsuites")
    suite = _sub(root, "testsuite", name=suite_name)
    for location, traceback in run.collection_errors:
        _collection_error(suite, location, traceback)
    for attempts in _group_attempts(run.results).values():
        _testcase(suite, attempts)

    # Count from the elements just built so the totals can never disagree with them.
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    for attr, tag in (("failures", "failure"), ("errors", "error"), ("skipped", "skipped")):
        suite.set(attr, str(sum(1 for case in cases if case.find(tag) is not None)))
    suite.set("time", _seconds(_suite_time(run)))
    started = datetime.fromtimestamp(run.start, timezone.utc)
    suite.set("timestamp", started.isoformat(timespec="seconds"))
    suite.set("hostname", sanitize_xml_text(socket.gethostname()))
    return root


def write_junit_xml(run: RunRecord, path: Path, suite_name: str = "aqe") -> None:
    """Write ``run`` as JUnit XML to ``path`` atomically, creating parent directories."""
    root = build_junit_tree(run, suite_name)
    ET.indent(root)
    data = ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
    atomic_write_bytes(path, data, what="JUnit XML report")
