"""Faults aqe must turn into recorded, attributed results: hangs, stuck C code, deadlocks.

Runs the fault-injection project in ``tests/fixtures/faults`` through real workers
and real signals; every test of it must end up with the right outcome while the
rest of the run goes on.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from conftest import HANG_GUARD

#: Every test here starts processes (see conftest: the fast loop is -m "not e2e").
pytestmark = pytest.mark.e2e

FAULTS = Path(__file__).parent / "fixtures" / "faults"


def _aqe(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[int, str, dict[str, Any]]:
    report = tmp_path / "report.json"
    scratch = tmp_path / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "aqe", "run", "--no-history", "--json", str(report), *args],
        cwd=FAULTS,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        env={
            **os.environ,
            "CI": "true",
            "TMPDIR": str(scratch),
            "FAULTS_STATE": str(state),
            **(env or {}),
        },
    )
    data = json.loads(report.read_text()) if report.exists() else {}
    return result.returncode, result.stdout + result.stderr, data


def _by_id(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {test["nodeid"]: test for test in data["tests"]}


def test_hanging_tests_are_stopped_with_their_stacks_and_the_rest_still_run(
    tmp_path: Path,
) -> None:
    code, output, data = _aqe(
        tmp_path, "-w", "2", "--timeout", "1", "--isolate-on", "off", "test_hangs.py",
        "test_fine.py",
    )  # fmt: skip
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


def test_exits_in_fixtures_raising_teardowns_and_order_dependence_match_pytest(
    tmp_path: Path,
) -> None:
    code, output, data = _aqe(tmp_path, "-w", "2", "test_exits.py")
    assert code == 1, output
    assert {t["nodeid"].split("::")[1]: (t["outcome"], t["error_type"]) for t in data["tests"]} == {
        "test_uses_a_fixture_that_exits": ("error", "SystemExit"),
        # pytest's own verdict on the second user of a module fixture that exited.
        "test_also_uses_it": ("error", "AssertionError"),
        "test_passes_but_its_teardown_raises": ("error", "RuntimeError"),
        "test_pollutes": ("passed", None),
        "test_fails_after_the_one_before": ("failed", "AssertionError"),
        "test_after_them": ("passed", None),
    }
    plain = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_exits.py"],
        cwd=FAULTS, capture_output=True, text=True, timeout=HANG_GUARD,
    )  # fmt: skip

    def summary(text: str) -> set[str]:
        # What failed and how, without the message (each cut to its terminal's width).
        return {
            line.split(" - ")[0] + " - " + line.split(" - ")[1].split(":")[0]
            for line in text.splitlines()
            if line.startswith(("FAILED ", "ERROR "))
        }

    assert summary(output) == summary(plain.stdout) and len(summary(output)) == 4


def test_a_run_timeout_ends_the_run_and_keeps_what_finished(tmp_path: Path) -> None:
    # How long test_fine.py takes on this machine now, start-up included: the run's
    # limit is thrice that (at least 2 s), so its tests finish before it however
    # loaded the machine is, and the hangs next to them never do.
    code, output, data = _aqe(tmp_path / "fine", "-w", "2", "test_fine.py")
    assert code == 1, output
    limit = round(max(2.0, 3 * data["run"]["duration"]), 1)
    code, output, data = _aqe(
        tmp_path, "-w", "2", "--timeout", "60", "--run-timeout", f"{limit:g}", "--junit-xml",
        str(tmp_path / "junit.xml"), "test_hangs.py", "test_fine.py",
    )  # fmt: skip
    assert code == 2, output
    assert f"run timeout of {limit:g}s reached" in output
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


def _wait_for(condition: Any, seconds: float = HANG_GUARD) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def _catches_sigint(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    return False


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
    output, _ = proc.communicate(timeout=HANG_GUARD)
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
    output, _ = proc.communicate(timeout=HANG_GUARD)
    assert proc.returncode == 2, output
    assert "Traceback" not in output
    data = json.loads(report.read_text())
    assert not [pid for pid in _worker_pids(pids) if _alive(pid)]
    with sqlite3.connect(tmp_path / "history.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = db.execute("SELECT count(*) FROM results").fetchone()[0]
    assert stored == len(data["tests"]) >= 1


def _pids_per_test(output: str) -> list[int]:
    return [int(line.split("=")[1]) for line in output.splitlines() if line.startswith("pid=")]


def test_workers_are_replaced_after_n_tests_and_nothing_is_lost(tmp_path: Path) -> None:
    args = ("--max-tests-per-worker", "3", "test_memory.py", "test_fine.py", "-s")
    code, output, data = _aqe(tmp_path, "-w", "2", *args)
    assert code == 1, output  # test_fine.py::test_fails
    assert len({t["nodeid"] for t in data["tests"]}) == len(data["tests"]) == 9 + 11
    pids = _pids_per_test(output)
    assert len(pids) == 9
    assert max(pids.count(pid) for pid in pids) <= 3 and len(set(pids)) >= 3, pids


def test_a_worker_past_its_memory_limit_is_replaced_before_its_next_test(
    tmp_path: Path,
) -> None:
    # A limit 40 MB above a worker's size at the start is crossed after about five
    # of the 8 MB tests, so the nine of them need at least two processes.
    baseline = _aqe_worker_rss(tmp_path)
    limit = baseline + 40
    code, output, data = _aqe(
        tmp_path, "-w", "1", "--max-worker-memory", f"{limit:.0f}", "test_memory.py", "-s"
    )
    assert code == 0, output
    assert {t["outcome"] for t in data["tests"]} == {"passed"} and len(data["tests"]) == 9
    pids = _pids_per_test(output)
    assert 2 <= len(set(pids)) <= 5, (baseline, pids)
    assert "alone took a fresh worker" not in output


def test_a_test_that_alone_breaks_the_memory_limit_is_named(tmp_path: Path) -> None:
    limit = _aqe_worker_rss(tmp_path) + 100
    code, output, data = _aqe(
        tmp_path, "-w", "1", "--max-worker-memory", f"{limit:.0f}", "test_hog.py", "-s"
    )
    assert code == 0 and len(data["tests"]) == 2, output
    first, second = _pids_per_test(output)
    assert first != second  # the test after it ran in a fresh worker
    assert "test_hog.py::test_holds_200_mb alone took a fresh worker past the memory limit" in (
        output
    )


def _aqe_memory_isolated(
    tmp_path: Path, headroom_mb: float, file: str
) -> tuple[int, str, dict[str, Any]]:
    """One worker whose limit is ``headroom_mb`` above a fresh worker's size, with
    memory among the reasons to isolate."""
    limit = _aqe_worker_rss(tmp_path) + headroom_mb
    return _aqe(
        tmp_path, "-w", "1", "--max-worker-memory", f"{limit:.0f}",
        "--isolate-on", "crash,timeout,memory", file,
    )  # fmt: skip


def test_isolate_on_memory_clears_tests_that_only_crossed_the_limit_among_others(
    tmp_path: Path,
) -> None:
    # Each test keeps 8 MB; a worker crosses the limit after about five of them. The
    # test that crosses it runs again alone on a fresh fork, stays under, and keeps
    # its pass: it is not to blame and not flaky.
    code, output, data = _aqe_memory_isolated(tmp_path, 40, "test_memory.py")
    assert code == 0, output
    runs = _attempts(data, "test_memory.py")
    assert len(runs) == 9 and {r[-1]["outcome"] for r in runs.values()} == {"passed"}
    probed = {name: r for name, r in runs.items() if len(r) > 1}
    assert probed, output
    for attempts in probed.values():
        assert [(a["tier"], a["outcome"]) for a in attempts] == [
            ("hot", "passed"),
            ("warm", "passed"),
        ]
        assert attempts[0]["error_type"] == "MemoryLimit"
        assert "--max-worker-memory" in attempts[0]["message"]
    name = next(iter(probed))
    assert f"test_memory.py::{name} went past the memory limit only among other tests" in output


def test_isolate_on_memory_makes_a_test_that_needs_too_much_alone_crashed(
    tmp_path: Path,
) -> None:
    code, output, data = _aqe_memory_isolated(tmp_path, 100, "test_hog.py")
    limit = float(data["run"]["command"][data["run"]["command"].index("--max-worker-memory") + 1])
    assert code == 1, output
    runs = _attempts(data, "test_hog.py")
    hog = runs["test_holds_200_mb"]
    assert [(a["tier"], a["outcome"]) for a in hog] == [
        ("hot", "passed"), ("warm", "passed"), ("cold", "crashed"),
    ]  # fmt: skip
    assert hog[-1]["error_type"] == "MemoryLimit"
    # Every tier's figure is named, each above the limit.
    figures = [float(x) for x in re.findall(r"(\d+) MB (?:hot|warm|cold)", hog[-1]["message"])]
    assert len(figures) == 3 and min(figures) > limit, hog[-1]["message"]
    assert [a["outcome"] for a in runs["test_small_after_it"]] == ["passed"]


def test_isolate_on_memory_needs_a_memory_limit(tmp_path: Path) -> None:
    code, output, _ = _aqe(tmp_path, "--isolate-on", "memory", "test_hog.py")
    assert code == 4
    assert output.strip().splitlines()[-1] == (
        "aqe: error: --isolate-on memory needs a limit to isolate on: set --max-worker-memory"
    )


def _aqe_worker_rss(tmp_path: Path) -> float:
    """Resident MB of a worker right after its first (tiny) test."""
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    (probe / "test_probe.py").write_text(
        "from aqe._engine._limits import resident_mb\n"
        "def test_rss():\n    print(f'rss={resident_mb()}')\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "aqe", "run", "--no-history", "-w", "1", "-s"],
        cwd=probe, capture_output=True, text=True, timeout=HANG_GUARD,
    )  # fmt: skip
    line = next(x for x in result.stdout.splitlines() if x.startswith("rss="))
    return float(line.split("=")[1])


def test_a_workers_last_test_runs_while_another_worker_is_still_collecting(
    tmp_path: Path,
) -> None:
    # The worker with the quick file has one test left while the other worker spends
    # two seconds importing its file: the test must run now, not wait (and time out).
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    (project / "test_quick.py").write_text("def test_quick():\n    pass\n")
    (project / "test_slow_import.py").write_text(
        "import time\ntime.sleep(2)\n\ndef test_after_import():\n    pass\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "aqe", "run", "--no-history", "-w", "2", "--timeout", "1"],
        cwd=project, capture_output=True, text=True, timeout=HANG_GUARD,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def _attempts(data: dict[str, Any], file: str) -> dict[str, list[dict[str, Any]]]:
    attempts: dict[str, list[dict[str, Any]]] = {}
    for test in data["tests"]:
        if test["file"] != file:
            continue
        attempts.setdefault(test["nodeid"].split("::")[1], []).append(test)
    for runs in attempts.values():
        runs.sort(key=lambda t: t["attempt"])
    return attempts


def test_retries_turn_passing_reruns_into_flaky_and_keep_every_attempt(
    tmp_path: Path,
) -> None:
    junit = tmp_path / "junit.xml"
    code, output, data = _aqe(
        tmp_path, "-w", "2", "--retries", "2", "--junit-xml", str(junit),
        "test_flaky.py", "test_fine.py", "-k", "not three_times",
        env={"AQE_RETRY_BUDGET": "1"},
    )  # fmt: skip
    assert code == 1, output  # test_always_fails stays failed
    runs = _attempts(data, "test_flaky.py")
    outcomes = {name: [t["outcome"] for t in tests] for name, tests in runs.items()}
    assert outcomes == {
        "test_fails_once_then_passes": ["failed", "flaky"],
        "test_connection_refused_once": ["failed", "flaky"],
        "test_always_fails": ["failed", "failed", "failed"],
        "test_own_marker_retries_once": ["failed", "flaky"],
        "test_worker_dies_once": ["crashed", "flaky"],
    }, output
    once = runs["test_fails_once_then_passes"]
    assert once[0]["worker"] != once[1]["worker"]  # retried on the other worker
    refused = runs["test_connection_refused_once"]
    assert refused[1]["start"] - refused[0]["stop"] >= 0.3  # backoff for a transient error
    assert data["outcomes"]["flaky"] == 4 and data["outcomes"]["failed"] == 2
    assert "4 flaky" in output and "2 failed" in output and "8 rerun" in output
    root = ET.parse(junit).getroot()
    cases = {case.get("name"): case for case in root.iter("testcase")}
    assert [c.tag for c in cases["test_fails_once_then_passes"]].count("flakyFailure") == 1
    always = [c.tag for c in cases["test_always_fails"]]
    assert always.count("failure") == 1 and always.count("rerunFailure") == 2


def test_fail_on_flaky_and_retry_filters(tmp_path: Path) -> None:
    code, output, _ = _aqe(
        tmp_path, "--retries", "1", "--fail-on-flaky", "test_flaky.py", "-k", "once_then"
    )
    assert code == 1 and "1 flaky" in output, output
    code, output, data = _aqe(
        tmp_path / "b", "--retries", "1", "--retry-except", "Connection",
        "test_flaky.py", "-k", "refused",
    )  # fmt: skip
    assert code == 1 and [t["outcome"] for t in data["tests"]] == ["failed"], output


def test_the_retry_budget_keeps_a_broken_build_red(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    (project / "test_broken.py").write_text(
        "import pytest\n\n@pytest.mark.parametrize('n', range(40))\n"
        "def test_broken(n):\n    assert False\n"
    )
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "aqe", "run", "--no-history", "--retries", "3",
         "--json", str(report)],
        cwd=project, capture_output=True, text=True, timeout=HANG_GUARD,
    )  # fmt: skip
    data = json.loads(report.read_text())
    assert result.returncode == 1
    # 5% of 40 tests: two retries in all, not 120.
    assert len(data["tests"]) == 42, result.stdout
    assert "retry budget" in result.stdout + result.stderr


@pytest.mark.parametrize("delay", [0.03, 0.15, 0.4])
def test_ctrl_c_at_start_up_is_one_line_and_exit_2(tmp_path: Path, delay: float) -> None:
    # Early: while aqe imports, configures pytest or forks; never a traceback.
    proc, pids, _ = _start(tmp_path)
    # Counted from the moment the interpreter catches SIGINT: before that, Ctrl-C
    # kills any Python program (a loaded CI machine once took 0.4 s to get there).
    _wait_for(lambda: _catches_sigint(proc.pid))
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=HANG_GUARD)
    assert proc.returncode == 2, output
    assert "Traceback" not in output, output
    time.sleep(0.1)
    assert not [pid for pid in _worker_pids(pids) if _alive(pid)]


@pytest.mark.parametrize(
    "conftest",
    [
        # dataclasses and namedtuples build their methods with exec(str); a Ctrl-C
        # landing there made CPython end aqe with SIGINT after aqe had handled it:
        # exit -2 and no output.
        "exec('signal.raise_signal(signal.SIGINT)')",
        # Code that swallows the KeyboardInterrupt must not make aqe run on.
        "try:\n    signal.raise_signal(signal.SIGINT)\nexcept BaseException:\n    pass",
    ],
    ids=["inside-exec", "swallowed"],
)
def test_ctrl_c_while_conftest_loads_stops_the_run_with_exit_2(
    tmp_path: Path, conftest: str
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "conftest.py").write_text(f"import signal\n{conftest}\n")
    (project / "test_one.py").write_text(
        "import pathlib\ndef test_one():\n    pathlib.Path('ran').touch()\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "aqe", "run", "--no-history", "-w", "1"],
        cwd=project, capture_output=True, text=True, timeout=HANG_GUARD,
        env={**os.environ, "CI": "true"},
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output, output
    assert "interrupted" in output or "SIGINT received" in output, output
    assert not (project / "ran").exists()


def test_a_crash_or_hang_runs_again_alone_on_a_fresh_fork_then_a_fresh_interpreter(
    tmp_path: Path,
) -> None:
    junit = tmp_path / "junit.xml"
    code, output, data = _aqe(
        tmp_path, "-w", "2", "--timeout", "1", "--junit-xml", str(junit),
        "test_flaky.py", "test_hangs.py", "-k", "dies_once or sleeps_forever or quick",
    )  # fmt: skip
    assert code == 1, output
    runs = _attempts(data, "test_flaky.py") | _attempts(data, "test_hangs.py")
    tiers = {name: [(t["tier"], t["outcome"]) for t in tests] for name, tests in runs.items()}
    assert tiers == {
        # Crashed among others, passed alone: flaky, and said so.
        "test_worker_dies_once": [("hot", "crashed"), ("warm", "flaky")],
        # Hangs everywhere: its outcome stays timeout after all three tiers.
        "test_sleeps_forever": tiers["test_sleeps_forever"],
        "test_quick_after_the_hangs": [("hot", "passed")],
    }, output
    # The warm and cold attempts of a hang run side by side: either may end first.
    hang = tiers["test_sleeps_forever"]
    assert hang[0] == ("hot", "timeout")
    assert sorted(hang[1:]) == [("cold", "timeout"), ("warm", "timeout")], output
    # At once: an attempt saw the other's process alive as it started (each notes
    # the other live workers; the hot one was gone before either began). Process
    # facts, not timestamps: a loaded machine may start the cold test after the
    # warm one timed out, and they still ran side by side.
    seen = {
        int(note.name.removeprefix("hang-")): set(json.loads(note.read_text()))
        for note in (tmp_path / "state").glob("hang-*")
    }
    assert len(seen) == 3 and any(seen.keys() & others for others in seen.values()), seen
    cold = next(t for t in runs["test_sleeps_forever"] if t["tier"] == "cold")
    assert "in test_sleeps_forever" in cold["traceback"]  # a fresh interpreter's stacks too
    assert "test_worker_dies_once passed only alone (warm tier)" in output
    assert "aqe: tiers: hot 3 tests, 2 failed, 2 sent on, median " in output
    assert "; warm 2 tests, 1 failed, 1 sent on, median " in output
    assert {tier: fig["tests"] for tier, fig in data["tiers"].items()} == {
        "hot": 3, "warm": 2, "cold": 1
    }  # fmt: skip
    assert data["tiers"]["warm"]["fallbacks"] == 1
    root = ET.parse(junit).getroot()
    case = next(c for c in root.iter("testcase") if c.get("name") == "test_sleeps_forever")
    last = runs["test_sleeps_forever"][-1]["tier"]
    assert {p.get("name"): p.get("value") for p in case.iter("property")}["tier"] == last
    assert [c.tag for c in case].count("rerunFailure") == 2


def test_a_hang_that_passes_alone_stops_its_twin_on_the_other_tier(tmp_path: Path) -> None:
    code, output, data = _aqe(tmp_path, "--timeout", "1", "test_hangs_once.py")
    assert code == 0, output
    attempts = [(t["tier"], t["outcome"]) for t in data["tests"]]
    # The first alone attempt to pass is the verdict; the other is stopped unrecorded.
    assert attempts[0] == ("hot", "timeout") and len(attempts) == 2, attempts
    assert attempts[1] in {("warm", "flaky"), ("cold", "flaky")}
    assert "passed only alone" in output


def test_isolate_on_off_keeps_the_first_verdict(tmp_path: Path) -> None:
    code, output, data = _aqe(
        tmp_path, "--isolate-on", "off", "test_flaky.py", "-k", "dies_once"
    )  # fmt: skip
    assert code == 1, output
    assert [(t["tier"], t["outcome"]) for t in data["tests"]] == [("hot", "crashed")]
