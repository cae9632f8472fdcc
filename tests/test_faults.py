"""Faults aqe must turn into recorded, attributed results: hangs, stuck C code, deadlocks.

Runs the fault-injection project in ``tests/fixtures/faults`` through real workers
and real signals; every test of it must end up with the right outcome while the
rest of the run goes on.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

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


_SLOW_PROJECT = {
    "pyproject.toml": "[tool.pytest.ini_options]\n",
    "conftest.py": """
import os
from pathlib import Path

import pytest

@pytest.fixture(autouse=True)
def _pids(request):
    # Every process that runs a test leaves its pid, to check none survives aqe.
    Path(os.environ["PIDS_DIR"], str(os.getpid())).touch()
    name = request.node.nodeid.replace("/", "_").replace("::", "@")
    Path(os.environ["PIDS_DIR"], "started-" + name).touch()
    yield
""",
    **{
        f"test_slow{i}.py": "".join(
            f"import time\n\ndef test_{j}():\n    time.sleep(1.0)\n\n"
            if j == 0
            else f"def test_{j}():\n    time.sleep(1.0)\n\n"
            for j in range(6)
        )
        for i in range(2)
    },
}


def _start(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], Path, Path]:
    project = tmp_path / "project"
    for name, body in _SLOW_PROJECT.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(body)
    pids = tmp_path / "pids"
    pids.mkdir()
    report = tmp_path / "report.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "aqe", "run", "-w", "2", "--json", str(report), *args],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "CI": "true", "PIDS_DIR": str(pids)},
    )
    return proc, pids, report


def _wait_for(condition: Any, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _worker_pids(pids: Path) -> list[int]:
    return [int(p.name) for p in pids.iterdir() if p.name.isdigit()]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_first_signal_lets_running_tests_finish_and_keeps_every_result(
    tmp_path: Path, signum: int
) -> None:
    proc, pids, report = _start(tmp_path)
    _wait_for(lambda: len(list(pids.glob("started-*"))) >= 3)
    started = {p.name.removeprefix("started-").replace("@", "::") for p in pids.glob("started-*")}
    proc.send_signal(signum)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, output
    assert f"{signal.Signals(signum).name} received" in output
    assert "Traceback" not in output
    data = json.loads(report.read_text())
    finished = {t["nodeid"] for t in data["tests"]}
    # The tests running at the signal finished and were kept; at most the two that
    # may have started while the signal was on its way came after them.
    assert started <= finished and len(finished) <= len(started) + 2, (started, finished)
    assert {t["outcome"] for t in data["tests"]} == {"passed"}
    assert 3 <= len(data["tests"]) < 12
    assert not [pid for pid in _worker_pids(pids) if _alive(pid)]


def test_second_signal_kills_the_workers_at_once_and_still_writes_reports(
    tmp_path: Path,
) -> None:
    proc, pids, report = _start(tmp_path, "--history", str(tmp_path / "history.db"))
    _wait_for(lambda: len(list(pids.glob("started-*"))) >= 3)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=10)
    assert proc.returncode == 2, output
    assert "Traceback" not in output
    data = json.loads(report.read_text())
    assert not [pid for pid in _worker_pids(pids) if _alive(pid)]
    with sqlite3.connect(tmp_path / "history.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = db.execute("SELECT count(*) FROM results").fetchone()[0]
    assert stored == len(data["tests"]) >= 1
