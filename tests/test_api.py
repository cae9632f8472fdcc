"""The public Python API: its surface, its cost at import, and what it returns.

The surface test is the guard: adding or removing a public name means editing
``PUBLIC`` here, ``__all__`` and ``docs/api.md`` in one change.
"""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from conftest import HANG_GUARD, MakeProject

import aqe
from aqe._procs import running

PUBLIC = [
    "AqeError",
    "Cause",
    "CollectionError",
    "FailureCauses",
    "FailureExample",
    "FlakyVerdict",
    "PastAttempt",
    "RunResult",
    "RunSummary",
    "TestAttempt",
    "__version__",
    "failure_causes",
    "flaky_tests",
    "history",
    "run",
    "test_history",
]

PROJECT = {
    "tests/test_shop.py": """
        import os
        from pathlib import Path

        def test_total():
            assert sum([1, 2]) == 3

        def test_discount():
            assert round(10 * 0.5) == 4, "half off"

        def test_retried():
            marker = Path(os.environ["API_TEST_MARK"])
            if not marker.exists():
                marker.write_text("failed once")
                raise ConnectionError("flaky network")
    """,
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The child sees the caller's environment: none of this run's AQE_/PYTEST_ ones."""
    for name in list(os.environ):
        if name.startswith(("AQE_", "PYTEST_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("API_TEST_MARK", str(tmp_path / "mark"))


# -- the surface (unit) ------------------------------------------------------------------


def test_all_is_the_public_surface_sorted_and_nothing_else() -> None:
    assert aqe.__all__ == PUBLIC, "update PUBLIC and docs/api.md with __all__"
    # A submodule imported elsewhere (``aqe.plugins``) is an attribute too, not a name.
    visible = {
        name
        for name in dir(aqe)
        if not name.startswith("_") and not isinstance(getattr(aqe, name), types.ModuleType)
    } - {"TYPE_CHECKING"}
    assert visible == set(PUBLIC) - {"__version__"}


@pytest.mark.parametrize("name", [n for n in PUBLIC if n != "__version__"])
def test_every_public_name_imports_and_says_what_it_is(name: str) -> None:
    value = getattr(aqe, name)
    assert inspect.getdoc(value), f"aqe.{name} has no docstring"
    namespace: dict[str, object] = {}
    exec(f"from aqe import {name}", namespace)
    assert namespace[name] is value


def test_docs_name_every_public_name() -> None:
    docs = (Path(__file__).parents[1] / "docs" / "api.md").read_text(encoding="utf-8")
    missing = [name for name in PUBLIC if f"`{name}" not in docs and f"aqe.{name}" not in docs]
    assert not missing, f"docs/api.md does not describe {missing}"


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = aqe.nothing  # type: ignore[attr-defined]


# -- typed results (unit) ----------------------------------------------------------------


def _entry(nodeid: str, outcome: str, attempt: int = 1, **more: object) -> dict[str, object]:
    return {
        "nodeid": nodeid, "file": "tests/test_x.py", "line": 3, "outcome": outcome,
        "duration": 0.25, "worker": 1, "attempt": attempt, "tier": "hot", "when": "call",
        "error_type": None, "message": None, "traceback": None, "stdout": "", "stderr": "",
        "log": "", "quarantined": False, **more,
    }  # fmt: skip


def test_a_json_report_reads_as_a_run_result() -> None:
    report = {
        "schema": "aqe-run-report",
        "version": 1,
        "run": {"run_id": "r1", "exit_code": 1, "duration": 2.5, "git_commit": "abc"},
        "outcomes": {"passed": 1, "failed": 1, "flaky": 1, "total": 3},
        "collection_errors": [{"location": "tests/test_y.py", "traceback": "E   ImportError"}],
        "tests": [
            _entry("t::a", "passed"),
            _entry("t::b", "failed", error_type="AssertionError", message="no"),
            _entry("t::c", "failed"),
            _entry("t::c", "flaky", attempt=2),
        ],
    }
    result = aqe.RunResult.from_report(report, output="out")
    assert (result.run_id, result.exit_code, result.ok, result.duration) == ("r1", 1, False, 2.5)
    assert result.outcomes == {"passed": 1, "failed": 1, "flaky": 1}
    assert [t.nodeid for t in result.attempts] == ["t::a", "t::b", "t::c", "t::c"]
    assert [(t.nodeid, t.outcome) for t in result.tests] == [
        ("t::a", "passed"), ("t::b", "failed"), ("t::c", "flaky"),
    ]  # fmt: skip
    (failure,) = result.failures
    assert (failure.nodeid, failure.error_type, failure.message) == ("t::b", "AssertionError", "no")
    assert result.collection_errors == (aqe.CollectionError("tests/test_y.py", "E   ImportError"),)
    assert result.json_report is None and result.output == "out"


def test_a_report_missing_fields_still_reads() -> None:
    result = aqe.RunResult.from_report({"tests": [{"nodeid": "t::a", "outcome": "passed"}]})
    assert result.exit_code == 3 and result.outcomes == {}
    assert result.tests[0].attempt == 1 and result.tests[0].line is None


# -- end to end: a child aqe run and the history ------------------------------------------


@pytest.mark.usefixtures("clean_env")
@pytest.mark.e2e
def test_run_then_read_history_flaky_and_causes(make_project: MakeProject) -> None:
    root = make_project(PROJECT)
    result = aqe.run(
        ["tests"], cwd=root, workers=1, retries=1, json_report="out/report.json",
        junit_xml="out/junit.xml", aqe_args=["--retry-except", "AssertionError"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert result.outcomes == {"passed": 1, "failed": 1, "flaky": 1}
    assert [t.nodeid for t in result.failures] == ["tests/test_shop.py::test_discount"]
    assert "half off" in (result.failures[0].message or "")
    assert result.json_report == root / "out" / "report.json" and result.json_report.exists()
    assert result.junit_xml == root / "out" / "junit.xml" and result.junit_xml.exists()
    retried = [t for t in result.attempts if t.nodeid.endswith("test_retried")]
    assert [t.outcome for t in retried] == ["failed", "flaky"]

    (past,) = aqe.history(cwd=root)
    assert past.run_id == result.run_id and past.exit_code == 1
    assert past.outcomes == result.outcomes
    (attempt,) = aqe.test_history("tests/test_shop.py::test_discount", cwd=root / "tests")
    assert (attempt.run_id, attempt.outcome) == (result.run_id, "failed")

    verdicts = {v.nodeid: v for v in aqe.flaky_tests(cwd=root)}
    assert verdicts["tests/test_shop.py::test_retried"].label == "flaky"
    assert 0 < verdicts["tests/test_shop.py::test_retried"].score < 1

    causes = aqe.failure_causes(cwd=root)
    assert causes.run_id == result.run_id and causes.failures == 1
    (cause,) = causes.causes
    assert cause.tests == ("tests/test_shop.py::test_discount",)
    assert cause.error_types == ("AssertionError",)
    assert "half off" in cause.example.message


@pytest.mark.usefixtures("clean_env")
@pytest.mark.e2e
def test_aqe_that_cannot_run_is_an_error_and_no_history_is_empty(
    make_project: MakeProject,
) -> None:
    root = make_project({"tests/test_a.py": "def test_a():\n    pass\n"})
    (root / "old.json").write_text('{"run": {"run_id": "earlier", "exit_code": 0}}')
    with pytest.raises(aqe.AqeError, match="does not exist") as caught:
        aqe.run(["tests/missing.py"], cwd=root, json_report="old.json")
    assert caught.value.exit_code == 4
    assert aqe.history(cwd=root) == [] and aqe.flaky_tests(cwd=root) == []
    assert aqe.test_history("tests/test_a.py::test_a", cwd=root) == []
    with pytest.raises(aqe.AqeError, match="no runs in the history"):
        aqe.failure_causes(cwd=root)
    assert not (root / ".aqe" / "history.db").exists()


@pytest.mark.e2e
def test_import_aqe_loads_no_pytest_click_or_sqlite() -> None:
    code = (
        "import sys, aqe\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pytest', '_pytest', 'click', 'sqlite3', '_sqlite3', 'rich', 'mcp')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


DRIVER = """
import sys, aqe
aqe.run(cwd=sys.argv[1], workers=1)
"""


@pytest.mark.usefixtures("clean_env")
@pytest.mark.e2e
def test_ctrl_c_in_the_caller_stops_the_run_and_its_workers(
    make_project: MakeProject, tmp_path: Path
) -> None:
    pid_file = tmp_path / "worker.pid"
    root = make_project(
        {
            "tests/test_hang.py": f"""
                import os, time

                def test_hang():
                    with open({str(pid_file)!r}, "w") as stream:
                        stream.write(str(os.getpid()))
                    time.sleep(600)
            """
        }
    )
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(root)], stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + HANG_GUARD
        while not pid_file.exists() or not pid_file.read_text():
            assert driver.poll() is None and time.monotonic() < deadline, "the test never started"
            time.sleep(0.05)
        worker = int(pid_file.read_text())
        driver.send_signal(signal.SIGINT)
        _, errors = driver.communicate(timeout=HANG_GUARD)
    finally:
        driver.kill()
    assert "KeyboardInterrupt" in errors
    deadline = time.monotonic() + HANG_GUARD
    while running(worker):
        assert time.monotonic() < deadline, "the worker outlived the caller's Ctrl-C"
        time.sleep(0.05)
