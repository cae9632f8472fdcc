"""JUnit XML report, in the dialect pytest, Jenkins and GitLab already agree on.

CI systems render test results from JUnit XML, so aqe writes the same shape as
``pytest --junitxml`` (classname/name mangling, ``<failure>``/``<error>``/``<skipped>``
children, per-testcase ``<properties>``) and existing dashboards keep working when a
suite moves to aqe. Only the stdlib ``ElementTree`` is used; characters XML 1.0
forbids are shown as pytest shows them (``#x1B``) so one stray escape code in a
test's output cannot make the whole file unparseable.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path

from aqe._model import FAILING_OUTCOMES, JunitOptions, RunRecord, TestResult
from aqe._reporting.json_report import atomic_write_bytes

__all__ = [
    "mangle_nodeid",
    "sanitize_xml_text",
    "shorten_message",
    "suite_properties",
    "write_junit_xml",
]

# Everything outside the XML 1.0 Char production (C0 controls except tab/LF/CR, lone
# surrogates, U+FFFE and U+FFFF), and DEL, which pytest's junitxml escapes too.
_ILLEGAL_XML = re.compile("[^\t\n\r\u0020-\u007e\u0080-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

#: pytest's budget for the ``message`` attribute of ``<failure>`` and ``<error>``.
_MESSAGE_BUDGET = 500


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"#x{code:02X}" if code <= 0xFF else f"#x{code:04X}"


def sanitize_xml_text(text: str) -> str:
    """Show characters XML 1.0 cannot hold as pytest's junitxml does (``#x1B``), so an
    escape code in a test's output cannot make the file unparseable, and reads the same."""
    return _ILLEGAL_XML.sub(_visible, text)


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


def shorten_message(message: str, budget: int = _MESSAGE_BUDGET) -> str:
    """A ``message`` attribute as pytest's junitxml cuts it: whole lines while they
    fit the budget (a first line alone past it is cut), then a note saying so."""
    lines = message.splitlines() or [""]
    kept: list[str] = []
    used = 0
    for line in lines:
        if kept and used + len(line) + 1 > budget:
            break
        kept.append(line)
        used += len(line) + 1
    text = "\n".join(kept)
    cut_first = len(text) > budget
    if cut_first:
        text = text[:budget] + "..."
    left = len(lines) - len(kept)
    if not left and not cut_first:
        return message
    note = f"+{left} more line{'s' if left > 1 else ''}" if left else "truncated"
    return f"{text}\n[{note}; full report in element text]"


def _outcome_element(case: ET.Element, result: TestResult) -> None:
    """Append the ``<failure>``/``<error>``/``<skipped>`` child for ``result``, if any,
    with pytest's messages (aqe adds ``type``, the exception's class, where known)."""
    reason = result.message or result.error_type or ""
    detail = result.traceback or result.message or ""
    type_attr = {"type": result.error_type} if result.error_type else {}
    if result.quarantined and result.outcome in FAILING_OUTCOMES:
        # Quarantined: it failed, but must not fail a CI that reads this file.
        message = f"quarantined test {result.outcome}: {reason}" if reason else "quarantined"
        _sub(case, "skipped", detail, type="aqe.quarantined", message=message)
    elif result.outcome in ("failed", "crashed", "timeout"):
        message = shorten_message(reason or result.outcome)
        _sub(case, "failure", detail, message=message, **type_attr)
    elif result.outcome == "error":
        when = "teardown" if result.when == "teardown" else "setup"
        message = f'failed on {when} with "{reason}"'
        _sub(case, "error", detail, message=shorten_message(message), **type_attr)
    elif result.outcome == "skipped" and result.when == "collect":
        _sub(case, "skipped", result.traceback, message="collection skipped")
    elif result.outcome == "skipped":
        reason = (result.message or "").removeprefix("Skipped: ")
        _sub(case, "skipped", result.traceback, type="pytest.skip", message=reason)
    elif result.outcome == "xfailed":
        reason = (result.message or "").removeprefix("reason: ")
        _sub(case, "skipped", type="pytest.xfail", message=reason)
    # "passed" and (non-strict) "xpassed" have no child: they count as passed.


def _output_writes(result: TestResult, options: JunitOptions) -> int:
    """How many times pytest's junitxml writes a test's captured output.

    It writes at the report of a skip, and at teardown unless
    ``junit_log_passing_tests`` is off and the teardown passed (a failed call is
    then written at once instead); so a skipped test's output appears twice.
    """
    if options.logging == "no" or result.when == "collect":
        return 0
    quiet = not options.log_passing_tests
    if result.outcome == "skipped":
        return 1 if quiet else 2
    if result.outcome in ("failed", "crashed", "timeout"):
        return 1
    if result.outcome == "error" and result.when == "teardown":
        return 1
    return 0 if quiet else 1


def _block(title: str, text: str) -> str:
    return f"{title.center(80, '-')}\n{text}\n"


def _output_elements(case: ET.Element, result: TestResult, options: JunitOptions) -> None:
    """Captured output as ``junit_logging`` asks: log and stdout in ``<system-out>``,
    stderr in ``<system-err>``, each under pytest's header line."""
    mode = options.logging
    for _ in range(_output_writes(result, options)):
        out = _block(" Captured Log ", result.log) if mode in ("log", "all") else ""
        if mode in ("system-out", "out-err", "all"):
            out += _block(" Captured Out ", result.stdout)
        if out:
            _sub(case, "system-out", out)
        if mode in ("system-err", "out-err", "all"):
            _sub(case, "system-err", _block(" Captured Err ", result.stderr))


def _testcase(suite: ET.Element, attempts: Sequence[TestResult], options: JunitOptions) -> None:
    """One ``<testcase>`` for all attempts of one node id.

    The last attempt decides the outcome. Each earlier failed attempt becomes a
    Maven Surefire child (``flakyFailure``/``flakyError`` when the test finally
    passed, ``rerunFailure``/``rerunError`` when it kept failing), so CI tools that
    read Surefire reports see the retries. Attributes follow ``junit_family``:
    xunit1 adds ``file``, ``line`` (0-based, as pytest writes it) and those from
    ``record_xml_attribute``; xunit2 has only ``classname`` and ``name``.
    """
    final = attempts[-1]
    classname, name = mangle_nodeid(final.nodeid)
    if options.prefix:
        classname = f"{options.prefix}.{classname}" if classname else options.prefix
    attrib = {"classname": classname, "name": name}
    if options.family == "xunit1":
        attrib["file"] = final.file
        if final.line is not None:
            attrib["line"] = str(final.line - 1)
        attrib.update(final.xml_attributes)
    else:
        attrib.update((k, v) for k, v in final.xml_attributes if k in ("classname", "name"))
    seconds = (
        final.duration
        if options.duration_report == "total"
        else final.phases.get(options.duration_report, 0.0)
    )
    attrib["time"] = _seconds(seconds)
    case = _sub(suite, "testcase", **attrib)
    properties = _sub(case, "properties")
    for key, value in final.properties:
        _sub(properties, "property", name=key, value=value)
    _sub(properties, "property", name="worker", value=str(final.worker))
    _sub(properties, "property", name="attempt", value=str(final.attempt))
    _sub(properties, "property", name="tier", value=final.tier)
    if final.quarantined:
        _sub(properties, "property", name="quarantined", value="true")
    _outcome_element(case, final)
    for earlier in attempts[:-1]:
        _retry_element(case, earlier, passed=final.outcome not in FAILING_OUTCOMES)
    _output_elements(case, final, options)


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


def _collection_error(
    suite: ET.Element, location: str, traceback: str, options: JunitOptions
) -> None:
    classname, name = mangle_nodeid(location)
    if options.prefix:
        classname = f"{options.prefix}.{classname}" if classname else options.prefix
    attrib = {"classname": classname, "name": name}
    if options.family == "xunit1":
        attrib["file"] = location.split("::")[0]
    case = _sub(suite, "testcase", **attrib, time=_seconds(0.0))
    _sub(case, "error", traceback, message="collection failure")


def suite_properties(results: Iterable[TestResult]) -> list[tuple[str, str]]:
    """``record_testsuite_property`` pairs in the order recorded. A pair recorded
    again is kept once: every worker sets up session fixtures of its own."""
    seen: dict[tuple[str, str], None] = {}
    for result in results:
        seen.update(dict.fromkeys(result.suite_properties))
    return list(seen)


def _suite_time(run: RunRecord) -> float:
    if run.end is not None:
        return run.end - run.start
    stops = [result.stop for result in run.results if result.stop > 0]
    if stops:
        return max(stops) - run.start
    return sum(result.duration for result in run.results)


def build_junit_tree(run: RunRecord, suite_name: str | None = None) -> ET.Element:
    """Return the ``<testsuites>`` root element for ``run``.

    The suite is named ``suite_name``, else the run's ``junit_suite_name``, else ``aqe``.
    """
    options = run.junit
    root = ET.Element("testsuites")
    suite = _sub(root, "testsuite", name=suite_name or options.suite_name or "aqe")
    for location, traceback in run.collection_errors:
        _collection_error(suite, location, traceback, options)
    for attempts in _group_attempts(run.results).values():
        _testcase(suite, attempts, options)

    # Count from the elements just built so the totals can never disagree with them.
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    for attr, tag in (("failures", "failure"), ("errors", "error"), ("skipped", "skipped")):
        suite.set(attr, str(sum(1 for case in cases if case.find(tag) is not None)))
    suite.set("time", _seconds(_suite_time(run)))
    started = datetime.fromtimestamp(run.start, timezone.utc)
    suite.set("timestamp", started.isoformat(timespec="seconds"))
    suite.set("hostname", sanitize_xml_text(socket.gethostname()))
    recorded = suite_properties(run.results)
    if run.deselected:  # left out by --affected/--changed: named, never silently absent
        recorded = [*recorded, ("aqe.deselected", str(len(run.deselected)))]
        recorded += [
            ("aqe.deselected.test", f"{n}: {why}") for n, why in sorted(run.deselected.items())
        ]
    if recorded:
        properties = ET.Element("properties")
        for key, value in recorded:
            _sub(properties, "property", name=key, value=value)
        suite.insert(0, properties)
    return root


def write_junit_xml(run: RunRecord, path: Path, suite_name: str | None = None) -> None:
    """Write ``run`` as JUnit XML to ``path`` atomically, creating parent directories."""
    root = build_junit_tree(run, suite_name)
    ET.indent(root)
    data = ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
    atomic_write_bytes(path, data, what="JUnit XML report")


class JunitReporter:
    """``--junit-xml PATH``, as the ``junit`` reporter (``aqe.reporters``)."""

    name = "junit"

    def write(self, run: RunRecord, destination: Path | None) -> None:
        if destination is None:
            raise ValueError("the junit reporter needs a file to write")
        write_junit_xml(run, destination)
