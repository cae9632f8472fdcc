"""JUnit XML fidelity: aqe's ``--junit-xml`` against pytest's own ``--junitxml``.

Both run on ``tests/fixtures/junit_project`` (every feature pytest's junitxml
writer has) and their files are compared element by element: per testcase the
attributes, properties, outcome element and captured output; for the suite its
name, properties and counts. aqe may add only its extras (``worker``, ``attempt``,
``tier`` properties, a ``type`` on failures, Surefire rerun children).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from conftest import run_python

FIXTURE = Path(__file__).parent / "fixtures" / "junit_project"
AQE_PROPERTIES = {"worker", "attempt", "tier", "quarantined"}
UMASK = 0o027


def _project(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURE, tmp_path / "proj"))


def _run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_python("-m", *args, cwd=project, preexec_fn=lambda: os.umask(UMASK))


def _pytest(project: Path, xml: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _run(
        project,
        "pytest",
        "-p",
        "no:cacheprovider",
        "--continue-on-collection-errors",
        f"--junitxml={xml}",
        *args,
    )


def _aqe(project: Path, *args: str, history: bool = False) -> subprocess.CompletedProcess[str]:
    return _run(project, "aqe", "run", *(() if history else ("--no-history",)), "-w", "2", *args)


def _text(element: ET.Element) -> str:
    # Reprs of objects name their addresses, which differ from run to run.
    return re.sub(r"0x[0-9a-f]+", "0x?", element.text or "")


def _case(case: ET.Element) -> dict[str, Any]:
    children = []
    for child in case:
        if child.tag == "properties" or child.tag.startswith(("flaky", "rerun")):
            continue
        kind = None if child.tag in ("failure", "error") else child.get("type")  # aqe's extra
        children.append((child.tag, kind, child.get("message"), _text(child)))
    return {
        "attrs": {k: v for k, v in case.attrib.items() if k != "time"},
        "properties": [
            (p.get("name"), p.get("value"))
            for p in case.findall("properties/property")
            if p.get("name") not in AQE_PROPERTIES
        ],
        "children": children,
    }


def _parse(path: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    head: dict[str, Any] = {
        k: suite.get(k) for k in ("name", "tests", "failures", "errors", "skipped")
    }
    head["properties"] = [(p.get("name"), p.get("value")) for p in suite.findall("properties/")]
    cases = {f"{c.get('classname')}::{c.get('name')}": _case(c) for c in suite.iter("testcase")}
    return head, cases


@pytest.mark.e2e
@pytest.mark.parametrize(
    "option",
    [
        ["-o", "junit_family=xunit1", "--junitprefix=pre"],
        ["-o", "junit_family=xunit2", "-o", "junit_log_passing_tests=false"],
    ],
    ids=["xunit1", "xunit2"],
)
def test_aqe_junit_xml_matches_pytests_own(tmp_path: Path, option: list[str]) -> None:
    project = _project(tmp_path)
    theirs, ours, report = tmp_path / "pytest.xml", tmp_path / "aqe.xml", tmp_path / "aqe.json"
    plain = _pytest(project, theirs, *option)
    run = _aqe(
        project, "--junit-xml", str(ours), "--json", str(report), "--", *option, history=True
    )
    assert (plain.returncode, run.returncode) == (1, 1), plain.stdout + run.stdout + run.stderr

    their_suite, their_cases = _parse(theirs)
    our_suite, our_cases = _parse(ours)
    assert our_suite == their_suite
    assert sorted(our_cases) == sorted(their_cases)
    for key, case in their_cases.items():
        assert our_cases[key] == case, key

    # The collection-level skips (a module, importorskip, a conftest) count everywhere.
    assert "5 skipped" in plain.stdout and "5 skipped" in run.stdout, run.stdout
    assert json.loads(report.read_text())["outcomes"]["skipped"] == 5
    assert "5 skipped" in _run(project, "aqe", "history", "-n", "1").stdout
    status = json.loads(_run(project, "aqe", "status", "--json").stdout)
    assert status["last_run"]["outcomes"]["skipped"] == 5
    # Written as pytest writes it: 0666 less the umask, not private to its writer.
    assert ours.stat().st_mode & 0o777 == theirs.stat().st_mode & 0o777 == 0o640
    assert report.stat().st_mode & 0o777 == 0o640


@pytest.mark.e2e
def test_pytests_junitxml_under_aqe_agrees_on_quarantine_and_reruns(tmp_path: Path) -> None:
    project = _project(tmp_path)
    quarantine = project / ".aqe" / "quarantine.toml"
    quarantine.parent.mkdir()
    quarantine.write_text('[[test]]\nid = "test_outcomes.py::test_fail_with_output"\n')
    theirs, ours = tmp_path / "pytest.xml", tmp_path / "aqe.xml"
    run = _aqe(project, "--retries", "1", "--junit-xml", str(ours), "--", f"--junitxml={theirs}")
    assert run.returncode == 1, run.stdout + run.stderr

    their_suite, their_cases = _parse(theirs)
    our_suite, our_cases = _parse(ours)
    assert our_suite == their_suite
    assert sorted(our_cases) == sorted(their_cases)
    for key, case in their_cases.items():
        assert our_cases[key] == case, key
    # A failure aqe ran again and a quarantined one are never written as passes.
    quarantined = our_cases["test_outcomes::test_fail_with_output"]["children"]
    assert [(tag, kind) for tag, kind, *_ in quarantined][:1] == [("skipped", "aqe.quarantined")]
    retried = our_cases["test_outcomes.TestGroup::test_param[2]"]["children"]
    assert retried[0][0] == "failure"


@pytest.mark.e2e
def test_junit_xml_without_pytests_junitxml_plugin(tmp_path: Path) -> None:
    project = tmp_path / "plain"
    project.mkdir()
    (project / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    (project / "test_one.py").write_text("def test_one():\n    pass\n")
    ours = tmp_path / "aqe.xml"
    run = _aqe(project, "--junit-xml", str(ours), "--", "-p", "no:junitxml")
    assert run.returncode == 0, run.stdout + run.stderr
    _, cases = _parse(ours)
    assert list(cases) == ["test_one::test_one"]


def test_junit_duration_report_call_counts_only_the_call() -> None:
    from aqe._model import JunitOptions, RunRecord, TestResult
    from aqe._reporting.junit import build_junit_tree

    phases = {"setup": 1.0, "call": 0.25, "teardown": 2.0}
    result = TestResult("t.py::test_a", "t.py", 3, "passed", phases, worker=0)
    times = []
    for report in ("total", "call"):
        run = RunRecord("r", 0.0, ["aqe"], "/p", 1, results=[result])
        run.junit = JunitOptions(duration_report=report)
        case = build_junit_tree(run).find("testsuite/testcase")
        assert case is not None
        times.append(case.get("time"))
    assert times == ["3.250", "0.250"]
