"""Tests for the JUnit XML and JSON report writers, on real files."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from aqe._exceptions import UsageError
from aqe._model import OUTCOMES, JunitOptions, Outcome, RunRecord, TestResult
from aqe._reporting.json_report import SCHEMA_VERSION, build_json_report, write_json_report
from aqe._reporting.junit import mangle_nodeid, sanitize_xml_text, write_junit_xml

DOC = Path(__file__).resolve().parents[1] / "docs" / "json-report.md"
START = 1714564800.0


def result(nodeid: str, outcome: Outcome, **kwargs: Any) -> TestResult:
    kwargs.setdefault("phases", {"setup": 0.001, "call": 0.01, "teardown": 0.001})
    kwargs.setdefault("worker", 0)
    return TestResult(
        nodeid=nodeid,
        file=nodeid.split("::")[0],
        line=kwargs.pop("line", 10),
        outcome=outcome,
        **kwargs,
    )


def full_run() -> RunRecord:
    """A run with every outcome, a retried test and a collection error."""
    return RunRecord(
        run_id="run-1",
        start=START,
        end=START + 2.5,
        command=["aqe", "run", "tests"],
        root="/project",
        workers=2,
        git_commit="abc123",
        git_dirty=True,
        exit_code=1,
        tail_idle={1: 0.25, 0: 0.5},
        collection_errors=[("tests/test_broken.py", "ImportError: no module named nope")],
        # pytest's junit_family = xunit1, junit_logging = all, junit_log_passing_tests = false
        junit=JunitOptions(family="xunit1", logging="all", log_passing_tests=False),
        results=[
            result("tests/test_a.py::test_pass", "passed", start=START + 0.1, stop=START + 0.2),
            result(
                "tests/test_a.py::TestX::test_fail[1-::x]",
                "failed",
                worker=1,
                when="call",
                error_type="AssertionError",
                message="assert 1 == 2",
                traceback="def test_fail():\n>   assert 1 == 2\nE   assert 1 == 2",
                stdout="some output\n",
                stderr="some warning\n",
                log="INFO root:a.py:3 logged\n",
            ),
            result(
                "tests/test_a.py::test_setup_error",
                "error",
                phases={"setup": 0.002},
                when="setup",
                error_type="RuntimeError",
                message="fixture broke",
                traceback="E   RuntimeError: fixture broke",
                stdout="setup out\n",
            ),
            result(
                "tests/sub/test_b.py::test_skip",
                "skipped",
                phases={"setup": 0.0},
                when="setup",
                message="not on this platform",
                stdout="not shown for skipped tests",
            ),
            result("tests/sub/test_b.py::test_xfail", "xfailed", when="call", message="bug 12"),
            result("tests/sub/test_b.py::test_xpass", "xpassed"),
            result("tests/test_c.py::test_flaky", "failed", attempt=1, worker=0, message="boom"),
            result("tests/test_c.py::test_flaky", "passed", attempt=2, worker=1),
        ],
    )


def empty_run() -> RunRecord:
    """A run that was aborted before anything ran."""
    return RunRecord(run_id="run-2", start=START, command=["aqe"], root="/p", workers=4)


def parse_junit(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    return root


def check_structure(root: ET.Element) -> None:
    """The suite's counters agree with its testcases, and every case is well formed."""
    suites = root.findall("testsuite")
    assert len(suites) == 1
    suite = suites[0]
    for attr in ("name", "tests", "failures", "errors", "skipped", "time", "timestamp"):
        assert attr in suite.attrib, attr
    assert "hostname" in suite.attrib
    cases = suite.findall("testcase")
    assert int(suite.get("tests", "")) == len(cases)
    for attr, tag in (("failures", "failure"), ("errors", "error"), ("skipped", "skipped")):
        assert int(suite.get(attr, "")) == sum(case.find(tag) is not None for case in cases)
    float(suite.get("time", ""))
    datetime.fromisoformat(suite.get("timestamp", ""))
    for case in cases:
        assert {"classname", "name", "time"} <= set(case.attrib)
        float(case.get("time", ""))
        outcome_children = [c for c in case if c.tag in {"failure", "error", "skipped"}]
        assert len(outcome_children) <= 1


def cases_by_name(root: ET.Element) -> dict[str, ET.Element]:
    return {f"{case.get('classname')}::{case.get('name')}": case for case in root.iter("testcase")}


def properties(case: ET.Element) -> dict[str, str]:
    return {p.get("name", ""): p.get("value", "") for p in case.findall("properties/property")}


@pytest.mark.parametrize(
    ("nodeid", "expected"),
    [
        ("tests/test_a.py::TestX::test_y[1]", ("tests.test_a.TestX", "test_y[1]")),
        ("tests/test_a.py::test_y", ("tests.test_a", "test_y")),
        ("test_a.py::test_y[a::b/c]", ("test_a", "test_y[a::b/c]")),
        ("tests/test_a.py::TestX::TestInner::test_z", ("tests.test_a.TestX.TestInner", "test_z")),
        ("tests/test_broken.py", ("", "tests.test_broken")),
    ],
)
def test_mangle_nodeid_like_pytest(nodeid: str, expected: tuple[str, str]) -> None:
    assert mangle_nodeid(nodeid) == expected


def test_junit_counts_and_structure(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    write_junit_xml(full_run(), path, suite_name="mysuite")
    root = parse_junit(path)
    check_structure(root)
    suite = root.find("testsuite")
    assert suite is not None
    # 7 distinct node ids + 1 collection error; the flaky test appears once.
    assert suite.attrib["name"] == "mysuite"
    assert suite.attrib["tests"] == "8"
    assert suite.attrib["failures"] == "1"
    assert suite.attrib["errors"] == "2"
    assert suite.attrib["skipped"] == "2"
    assert suite.attrib["time"] == "2.500"
    assert datetime.fromisoformat(suite.attrib["timestamp"]) == datetime.fromtimestamp(
        START, timezone.utc
    )


def test_junit_testcase_elements(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    write_junit_xml(full_run(), path)
    cases = cases_by_name(parse_junit(path))

    passed = cases["tests.test_a::test_pass"]
    assert passed.attrib == {
        "classname": "tests.test_a",
        "name": "test_pass",
        "file": "tests/test_a.py",
        "line": "9",  # 0-based, as pytest writes it
        "time": "0.012",
    }
    assert [child.tag for child in passed] == ["properties"]
    assert properties(passed) == {"worker": "0", "attempt": "1", "tier": "hot"}

    failed = cases["tests.test_a.TestX::test_fail[1-::x]"]
    failure = failed.find("failure")
    assert failure is not None
    assert failure.attrib == {"message": "assert 1 == 2", "type": "AssertionError"}
    assert failure.text is not None and "E   assert 1 == 2" in failure.text
    assert properties(failed) == {"worker": "1", "attempt": "1", "tier": "hot"}
    log = " Captured Log ".center(80, "-")
    out = " Captured Out ".center(80, "-")
    err = " Captured Err ".center(80, "-")
    system_out = failed.findtext("system-out")
    assert system_out == f"{log}\nINFO root:a.py:3 logged\n\n{out}\nsome output\n\n"
    assert failed.findtext("system-err") == f"{err}\nsome warning\n\n"
    assert [child.tag for child in failed] == ["properties", "failure", "system-out", "system-err"]

    errored = cases["tests.test_a::test_setup_error"]
    error = errored.find("error")
    assert error is not None
    assert error.get("type") == "RuntimeError"
    assert error.get("message", "").startswith("failed on setup")
    assert "fixture broke" in error.get("message", "")
    # pytest writes a setup error's output at its passing teardown: not with these options.
    assert errored.find("system-out") is None

    skipped = cases["tests.sub.test_b::test_skip"].find("skipped")
    assert skipped is not None
    assert skipped.attrib == {"type": "pytest.skip", "message": "not on this platform"}
    # pytest writes a skip's output even with junit_log_passing_tests off.
    skip_out = cases["tests.sub.test_b::test_skip"].findtext("system-out")
    assert skip_out is not None and "not shown for skipped tests" in skip_out

    xfailed = cases["tests.sub.test_b::test_xfail"].find("skipped")
    assert xfailed is not None
    assert xfailed.attrib == {"type": "pytest.xfail", "message": "bug 12"}

    xpassed = cases["tests.sub.test_b::test_xpass"]
    assert [child.tag for child in xpassed] == ["properties"]


def test_junit_keeps_only_last_attempt(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    write_junit_xml(full_run(), path)
    root = parse_junit(path)
    flaky = [case for case in root.iter("testcase") if case.get("name") == "test_flaky"]
    assert len(flaky) == 1
    assert properties(flaky[0]) == {"worker": "1", "attempt": "2", "tier": "hot"}
    assert flaky[0].find("failure") is None


def test_junit_last_attempt_wins_regardless_of_arrival_order(tmp_path: Path) -> None:
    run = empty_run()
    run.results = [
        result("t.py::test_f", "passed", attempt=2),
        result("t.py::test_f", "failed", attempt=1),
    ]
    path = tmp_path / "junit.xml"
    write_junit_xml(run, path)
    (case,) = parse_junit(path).iter("testcase")
    assert properties(case)["attempt"] == "2"
    assert case.find("failure") is None


def test_junit_collection_error(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    write_junit_xml(full_run(), path)
    case = cases_by_name(parse_junit(path))["::tests.test_broken"]
    assert case.get("file") == "tests/test_broken.py"
    error = case.find("error")
    assert error is not None
    assert error.get("message") == "collection failure"
    assert error.text == "ImportError: no module named nope"


def test_junit_strips_illegal_xml_characters(tmp_path: Path) -> None:
    dirty = "a\x00b\x1b[31mred\x1b[0m\x0c\ufffe\ud800\ttab\nline\r"
    run = empty_run()
    run.results = [
        result(
            "tests/test_x.py::test_ctrl[\x01]",
            "failed",
            message=dirty,
            error_type="Bad\x02Error",
            traceback=dirty,
            stdout=dirty,
            stderr=dirty,
            log=dirty,
        )
    ]
    run.collection_errors = [("tests/test_y\x07.py", dirty)]
    path = tmp_path / "junit.xml"
    write_junit_xml(run, path)
    raw = path.read_bytes().decode("utf-8")
    root = parse_junit(path)
    check_structure(root)

    illegal = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
    texts: list[str] = []
    for element in root.iter():
        texts.extend(element.attrib.values())
        texts.append(element.text or "")
    assert texts
    for text in texts:
        assert not illegal.search(text), repr(text)
    assert "&#" not in raw.replace("&#10;", "").replace("&#13;", "").replace("&#09;", "")

    case = root.find("testsuite/testcase[@name='test_ctrl[#x01]']")
    assert case is not None
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("type") == "Bad#x02Error"
    assert failure.text is not None
    assert "a#x00b#x1B[31mred#x1B[0m#x0C#xFFFE#xD800" in failure.text  # as pytest shows them
    assert "\ttab\nline" in failure.text


def test_sanitize_keeps_legal_text() -> None:
    text = "tab\tnewline\ncr\r ascii \u00e9\u4e2d\U0001f600"
    assert sanitize_xml_text(text) == text
    assert sanitize_xml_text("\x00\x08\x0b\x0c\x1f\x7f") == "#x00#x08#x0B#x0C#x1F#x7F"


@pytest.mark.parametrize("make_run", [empty_run, full_run])
def test_reports_written_for_aborted_or_empty_runs(tmp_path: Path, make_run: Any) -> None:
    run: RunRecord = make_run()
    run.end = None
    run.exit_code = None
    junit = tmp_path / "deep" / "dir" / "junit.xml"
    report = tmp_path / "other" / "report.json"
    write_junit_xml(run, junit)
    write_json_report(run, report)
    check_structure(parse_junit(junit))
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["run"]["end"] is None
    assert data["run"]["end_epoch"] is None
    assert data["run"]["duration"] is None
    assert data["run"]["exit_code"] is None
    assert data["summary"]["total"] == len(run.results)


def test_empty_run_junit_is_zero(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    write_junit_xml(empty_run(), path)
    suite = parse_junit(path).find("testsuite")
    assert suite is not None
    assert [suite.get(a) for a in ("tests", "failures", "errors", "skipped", "time")] == [
        "0",
        "0",
        "0",
        "0",
        "0.000",
    ]
    assert len(suite) == 0


def test_writes_are_atomic_replacements(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    report = tmp_path / "report.json"
    junit.write_text("old", encoding="utf-8")
    report.write_text("old", encoding="utf-8")
    write_junit_xml(full_run(), junit)
    write_json_report(full_run(), report)
    check_structure(parse_junit(junit))
    json.loads(report.read_text(encoding="utf-8"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junit.xml", "report.json"]


def test_unwritable_path_is_a_usage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(UsageError, match="JUnit XML report"):
        write_junit_xml(full_run(), blocker / "junit.xml")
    with pytest.raises(UsageError, match="JSON report"):
        write_json_report(full_run(), blocker / "report.json")


def test_json_round_trip(tmp_path: Path) -> None:
    run = full_run()
    path = tmp_path / "report.json"
    write_json_report(run, path)
    text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    assert data == build_json_report(run)
    assert text.startswith('{\n  "schema": "aqe-run-report",\n  "version": 1,')
    assert data["version"] == SCHEMA_VERSION == 1

    meta = data["run"]
    assert meta["start_epoch"] == START
    assert datetime.fromisoformat(meta["start"]) == datetime.fromtimestamp(START, timezone.utc)
    assert datetime.fromisoformat(meta["end"]).timestamp() == START + 2.5
    assert meta["duration"] == 2.5
    assert meta["command"] == ["aqe", "run", "tests"]
    assert meta["git_dirty"] is True
    assert list(meta["tail_idle"].items()) == [("0", 0.5), ("1", 0.25)]

    summary = data["summary"]
    assert list(summary) == [*OUTCOMES, "total"]
    assert summary == {
        "failed": 2,
        "passed": 2,
        "skipped": 1,
        "xfailed": 1,
        "xpassed": 1,
        "error": 1,
        "crashed": 0,
        "timeout": 0,
        "flaky": 0,
        "total": 8,
    }
    assert data["collection_errors"] == [
        {"location": "tests/test_broken.py", "traceback": "ImportError: no module named nope"}
    ]

    tests = data["tests"]
    assert [t["nodeid"] for t in tests] == [r.nodeid for r in run.results]
    for entry, res in zip(tests, run.results, strict=True):
        expected = res.to_dict()
        # JUnit-only fields stay out of the JSON report; properties are pairs.
        expected.pop("xml_attributes")
        expected.pop("suite_properties")
        expected["properties"] = [list(pair) for pair in res.properties]
        expected["start"] = res.start or None
        expected["stop"] = res.stop or None
        assert entry == expected
    assert tests[0]["start"] == START + 0.1
    assert tests[1]["start"] is None
    assert list(tests[0]["phases"]) == ["setup", "call", "teardown"]


def test_json_is_deterministic_and_unescaped(tmp_path: Path) -> None:
    run = full_run()
    run.results.append(result("tests/test_u.py::test_\u00e9", "passed", stdout="\u4e2d\ud800"))
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    write_json_report(run, first)
    write_json_report(run, second)
    assert first.read_bytes() == second.read_bytes()
    raw = first.read_text(encoding="utf-8")
    assert "test_\u00e9" in raw
    assert "\\u00e9" not in raw
    assert json.loads(raw)["tests"][-1]["stdout"] == "\u4e2d?"


def documented_fields() -> dict[str, list[str]]:
    """Field names per ``##`` section of docs/json-report.md, in table order."""
    sections: dict[str, list[str]] = {}
    current = ""
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            current = line[3:].strip().strip("`")
            sections[current] = []
        match = re.match(r"\| `([a-z_]+)` \|", line)
        if match and current:
            sections[current].append(match.group(1))
    return {name: fields for name, fields in sections.items() if fields}


def test_json_matches_documented_fields() -> None:
    data = build_json_report(full_run())
    doc = documented_fields()
    assert doc["Top level"] == list(data)
    assert doc["run"] == list(data["run"])
    assert doc["summary"] == list(data["summary"])
    assert doc["collection_errors[]"] == list(data["collection_errors"][0])
    optional = {"markers"}  # documented as present only when there is one
    for entry in data["tests"]:
        assert [f for f in doc["tests[]"] if f in entry or f not in optional] == list(entry)
    run = full_run()
    run.results.append(result("tests/test_m.py::test_m", "passed", markers=("slow",)))
    assert doc["tests[]"] == list(build_json_report(run)["tests"][-1])


def test_documented_example_matches_schema() -> None:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"```json\n(.*?)```", text, re.DOTALL)
    assert match is not None
    example = json.loads(match.group(1))
    data = build_json_report(full_run())
    assert list(example) == list(data)
    assert example["schema"] == data["schema"]
    assert example["version"] == SCHEMA_VERSION
    assert list(example["run"]) == list(data["run"])
    assert list(example["summary"]) == list(data["summary"])
    assert list(example["collection_errors"][0]) == list(data["collection_errors"][0])
    for entry in example["tests"]:
        assert list(entry) == list(data["tests"][0])
