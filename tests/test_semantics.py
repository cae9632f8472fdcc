"""pytest's run semantics under aqe: -x/--maxfail, a test's KeyboardInterrupt, order, caches.

Each case runs the fixture project under ``tests/fixtures/semantics/`` with plain pytest
and with ``aqe run`` and compares what they report; counts only, never timings.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

try:
    from parity import PytestRun, run_aqe, run_pytest
except ImportError:  # tests/ turned into a package
    from tests.parity import PytestRun, run_aqe, run_pytest

from aqe._config import load_config
from aqe._engine._plan import Estimate, Planner
from aqe._exceptions import ConfigError
from aqe._messages import Collect, RunTests, Shutdown

if TYPE_CHECKING:
    from conftest import MakeProject, RunAqe

SEMANTICS = Path(__file__).resolve().parent / "fixtures" / "semantics"
#: Keep the shared fixture projects free of pytest's cache directory.
NO_CACHE = ["-p", "no:cacheprovider"]


@functools.cache
def _pytest_run(project: str, *args: str) -> PytestRun:
    """Plain pytest on a fixture project (in place: it writes nothing there), once."""
    return run_pytest(SEMANTICS / project, [*args, *NO_CACHE])


def _copy(project: str, tmp_path: Path) -> Path:
    """A copy of a fixture project for aqe, which keeps a cache and history in it."""
    return Path(shutil.copytree(SEMANTICS / project, tmp_path / project))


# -- -x / --maxfail --------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("option", [["-x"], ["--maxfail", "2"]], ids=["x", "maxfail2"])
def test_maxfail_stops_where_pytest_stops(workers: int, option: list[str], tmp_path: Path) -> None:
    maxfail = 1 if option == ["-x"] else int(option[1])
    expected = _pytest_run("stops", *option)  # 60 fast tests, every fifth fails
    run = run_aqe(_copy("stops", tmp_path), [*option, *NO_CACHE], workers=workers)
    run.require_report()
    counts = Counter(run.outcomes.values())
    assert expected.exit_code == run.exit_code == 1, run.describe()
    # Each other worker may finish the one test it was running when the Nth failed.
    assert maxfail <= counts["failed"] <= maxfail + workers - 1, run.describe()
    assert f"stopping after {maxfail} failures" in run.output, run.describe()
    assert set(counts) == {"passed", "failed"}, run.describe()
    # Progress stays on one line: no warning from undoing a worker's own stop.
    assert "shouldfail cannot be unset" not in run.output, run.describe()
    if workers == 1:  # one worker runs what pytest runs, and not a test more
        assert run.outcomes == expected.outcomes, run.describe()
    else:
        assert len(run.outcomes) < 30, run.describe()


# -- a test raising KeyboardInterrupt ------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("workers", [1, 2])
def test_a_keyboard_interrupt_in_a_test_stops_the_run_like_pytest(
    workers: int, tmp_path: Path
) -> None:
    project = _copy("interrupt", tmp_path)
    interrupter = "test_b_interrupt.py::test_presses_ctrl_c"
    expected = _pytest_run("interrupt")
    history = tmp_path / "history.db"
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "aqe", "run", "-w", str(workers)]
    command += ["--history", str(history), "--json", str(report), "--", *NO_CACHE]
    proc = subprocess.run(
        command, cwd=project, capture_output=True, text=True, timeout=120, env=_env()
    )
    output = proc.stdout + proc.stderr
    assert expected.exit_code == proc.returncode == 2, output
    data = json.loads(report.read_text(encoding="utf-8"))
    outcomes = {test["nodeid"]: test["outcome"] for test in data["tests"]}
    # pytest logs no report for the interrupted call: the test is not counted.
    assert interrupter not in outcomes, output
    assert {test["tier"] for test in data["tests"]} == {"hot"}, output  # no tier re-runs
    assert set(outcomes.values()) == {"passed"}, output
    assert "test_b_interrupt.py::test_never_reached" not in outcomes, output
    assert f"aqe: {interrupter} raised KeyboardInterrupt: stopping" in output, output
    assert f"Interrupted: {interrupter} at " in output, output
    assert re.search(r"=+ \d+ passed in ", output), output  # pytest's summary line
    if workers == 1:
        pytest_ran = {n: o for n, o in expected.outcomes.items() if n != interrupter}
        assert outcomes == pytest_ran, output
    assert data["run"]["exit_code"] == 2, output
    listed = subprocess.run(
        [sys.executable, "-m", "aqe", "history", "--history", str(history)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
    )
    assert listed.returncode == 0, listed.stderr
    assert "exit 2" in listed.stdout and f"{len(outcomes)} passed" in listed.stdout, listed.stdout


# -- a test calling pytest.exit() ------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("workers", [1, 2])
def test_pytest_exit_in_a_test_ends_the_run_with_its_code_like_pytest(
    workers: int, tmp_path: Path
) -> None:
    project = _copy("exit", tmp_path)
    exiter = "test_b_exit.py::test_calls_pytest_exit"
    expected = _pytest_run("exit")
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "aqe", "run", "-w", str(workers), "--no-history"]
    command += ["--json", str(report), "--", *NO_CACHE]
    proc = subprocess.run(
        command, cwd=project, capture_output=True, text=True, timeout=120, env=_env()
    )
    output = proc.stdout + proc.stderr
    assert expected.exit_code == proc.returncode == 3, output  # pytest.exit's returncode
    banner = "_pytest.outcomes.Exit: enough of this suite"
    assert banner in expected.output and banner in output, output
    assert f"aqe: {exiter} called pytest.exit(): stopping" in output, output
    data = json.loads(report.read_text(encoding="utf-8"))
    outcomes = {test["nodeid"]: test["outcome"] for test in data["tests"]}
    assert exiter not in outcomes, output  # no report for the call, as in pytest
    assert {test["tier"] for test in data["tests"]} == {"hot"}, output  # not a crash
    assert set(outcomes.values()) == {"passed"}, output
    assert "test_b_exit.py::test_never_reached" not in outcomes, output
    if workers == 1:
        assert outcomes == {n: o for n, o in expected.outcomes.items() if n != exiter}, output
    assert data["run"]["exit_code"] == 3, output


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AQE_", "PYTEST_"))}
    env.update(CI="true", PYTHONDONTWRITEBYTECODE="1")
    return env


# -- order ----------------------------------------------------------------------------


def _drain(planner: Planner) -> list[str]:
    """Test ids in the order one worker is sent them; it collects one test ``t`` per file."""
    sent: list[str] = []
    for _ in range(100):
        messages = planner.next_messages(0)
        for message in messages:
            if isinstance(message, Collect):
                ids = [f"{planner.files[i]}::t" for i in message.files]
                planner.on_collected(0, message.files, ids)
            if isinstance(message, RunTests):
                sent.extend(message.nodeids)
        if any(isinstance(m, Shutdown) for m in messages):
            return sent
        for nodeid, _ in list(planner.workers[0].outstanding):
            planner.on_finished(0, nodeid, 0.01)
    raise AssertionError("never shut down")


@pytest.mark.parametrize(("order", "expected"), [("pytest", "abc"), ("duration", "cba")])
def test_order_pytest_keeps_pytests_file_order_whatever_the_history_says(
    order: str, expected: str
) -> None:
    files = ["a.py", "b.py", "c.py"]
    history = {
        f"{path}::t": Estimate(0.0, seconds) for path, seconds in zip(files, [1, 2, 3], strict=True)
    }
    deferred = Planner(files, [100] * 3, 1, history, {}, order=order)
    direct = Planner([], [], 1, history, {}, [(n, n.split("::")[0]) for n in history], order=order)
    for planner in (deferred, direct):
        assert _drain(planner) == [f"{name}.py::t" for name in expected]


@pytest.mark.e2e
def test_order_pytest_from_the_flag_or_the_environment_with_history(tmp_path: Path) -> None:
    project = _copy("order", tmp_path)  # test_b_reads.py needs test_a_sets.py run before it
    history = tmp_path / "history.db"
    command = [sys.executable, "-m", "aqe", "run", "-w", "1", "--history", str(history)]
    for extra, env in (["--order", "pytest"], {}), ([], {"AQE_ORDER": "pytest"}):
        proc = subprocess.run(
            [*command, *extra, "--", *NO_CACHE],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=120,
            env={**_env(), **env},
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "2 passed" in proc.stdout, proc.stdout


@pytest.mark.e2e
def test_a_bad_order_is_a_one_line_usage_error(tmp_path: Path) -> None:
    project = _copy("order", tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "aqe", "run", "--no-history", "--order", "random"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
    )
    assert proc.returncode == 4, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "aqe: error: option --order: expected 'duration' or 'pytest', got 'random'"
    ], proc.stderr


def test_order_comes_from_pyproject_then_the_environment(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.aqe]\norder = "pytest"\n', encoding="utf-8")
    assert load_config(tmp_path, {}, environ={}).order == "pytest"
    assert load_config(tmp_path, {}, environ={"AQE_ORDER": "duration"}).order == "duration"
    assert load_config(tmp_path / "nowhere", {}, environ={}).order == "duration"  # the default
    with pytest.raises(ConfigError, match="AQE_ORDER"):
        load_config(tmp_path, {}, environ={"AQE_ORDER": "random"})


# -- aqe's bytecode cache -------------------------------------------------------------


def test_an_edit_that_keeps_size_and_mtime_never_runs_stale_code(
    make_project: MakeProject, run_aqe: RunAqe
) -> None:
    """With bytecode off, aqe caches rewritten test modules in .aqe/pycache; pytest
    (before 9) checks such a cache by the source's size and mtime only."""
    root = make_project({"test_edit.py": "def test_value():\n    assert 1 + 1 == 2\n"})
    env = {"PYTHONDONTWRITEBYTECODE": "1"}
    first = run_aqe("run", "-w", "1", "--no-history", cwd=root, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert list((root / ".aqe" / "pycache").rglob("test_edit*.pyc")), "nothing was cached"
    source = root / "test_edit.py"
    before = source.stat()
    source.write_text("def test_value():\n    assert 1 + 1 == 3\n", encoding="utf-8")
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert source.stat().st_size == before.st_size
    second = run_aqe("run", "-w", "1", "--no-history", cwd=root, env=env)
    assert second.returncode == 1, second.stdout + second.stderr
    assert "assert (1 + 1) == 3" in second.stdout, second.stdout
