"""Faults aqe must turn into recorded, attributed results: hangs, stuck C code, deadlocks.

Runs the fault-injection project in ``tests/fixtures/faults`` through real workers
and real signals; every test of it must end up with the right outcome while the
rest of the run goes on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

FAULTS = Path(__file__).parent / "fixtures" / "faults"


def _aqe(tmp_path: Path, *args: str) -> tuple[int, str, dict[str, Any]]:
    report = tmp_path / "report.json"
    scratch = tmp_path / "tmp"
    scratch.mkdir(exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "aqe", "run", "--no-history", "--json", str(report), *args],
        cwd=FAULTS,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CI": "true", "TMPDIR": str(scratch)},
    )
    data = json.loads(report.read_text()) if report.exists() else {}
    return result.returncode, result.stdout + result.stderr, data


def _by_id(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {test["nodeid"]: test for test in data["tests"]}


def test_hanging_tests_are_stopped_with_their_stacks_and_the_rest_still_run(
    tmp_path: Path,
) -> None:
    code, output, data = _aqe(tmp_path, "-w", "2", "--timeout", "1")
    tests = _by_id(data)
    assert code == 1, output
    hung = {
        "test_hangs.py::test_sleeps_forever": "time.sleep",
        "test_hangs.py::test_spins_in_c_holding_the_gil": "re.match with the GIL held",
        "test_hangs.py::test_deadlocks_two_threads": "two threads",
        "test_hangs.py::test_own_marker_is_shorter_than_the_run_limit": "marker",
    }
    for nodeid in hung:
        test = tests.pop(nodeid)
        assert test["outcome"] == "timeout", (nodeid, output)
        assert test["error_type"] == "Timeout"
        assert test["message"].startswith("Timeout: still running after")
        name = nodeid.split("::")[1]
        # faulthandler's stacks show where the test was stuck, without pytest's frames.
        assert f"in {name}" in test["traceback"], test["traceback"]
        assert "pluggy" not in test["traceback"]
    everything = _by_id(data)
    marker = everything["test_hangs.py::test_own_marker_is_shorter_than_the_run_limit"]
    assert "after 0.5s" in marker["message"]
    deadlock = everything["test_hangs.py::test_deadlocks_two_threads"]["traceback"]
    assert deadlock.count("hread 0x") == 2 and "in grab" in deadlock  # both threads
    assert tests.pop("test_fine.py::test_fails")["outcome"] == "failed"
    # The marker's 0 lifts the run's limit; everything else ran and passed.
    assert {t["outcome"] for t in tests.values()} == {"passed"}, output
    assert len(tests) == 12
    assert "4 timeout" in output and "TIMEOUT" not in output  # T letters, named in the line
    assert not list((tmp_path / "tmp").iterdir()), "stacks files were left behind"


def test_a_run_timeout_ends_the_run_and_keeps_what_finished(tmp_path: Path) -> None:
    code, output, data = _aqe(
        tmp_path, "-w", "2", "--timeout", "60", "--run-timeout", "2", "--junit-xml",
        str(tmp_path / "junit.xml"),
    )  # fmt: skip
    assert code == 2, output
    assert "run timeout of 2s reached" in output
    tests = _by_id(data)
    assert tests["test_fine.py::test_fails"]["outcome"] == "failed"
    assert sum(t["outcome"] == "passed" for t in tests.values()) >= 10
    assert "test_hangs.py::test_sleeps_forever" not in tests  # stopped, not blamed
    assert (tmp_path / "junit.xml").exists()
