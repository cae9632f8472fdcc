"""``aqe detect-flaky`` and ``aqe run --repeat-new`` on a project with known faults."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import aqe_process

#: Every test here starts processes (see conftest: the fast loop is -m "not e2e").
pytestmark = pytest.mark.e2e

FILES = {
    "pyproject.toml": '[tool.pytest.ini_options]\npythonpath = ["."]\n',
    "state.py": "LEFT = set()\nREADY = set()\n",
    "tests/test_a.py": """\
import os
from pathlib import Path

import state


def test_polluter():
    state.LEFT.add("user")


def test_alternating():
    # Fails on every other execution, whatever ran before: flaky, not order-bound.
    marks = Path(os.environ["DETECT_STATE"])
    with marks.open("a+") as stream:
        stream.write(".")
        stream.seek(0)
        count = len(stream.read())
    assert count % 2


def test_stable_a():
    pass
""",
    "tests/test_b.py": """\
import state


def test_victim():
    assert "user" not in state.LEFT


def test_setter():
    state.READY.add("config")


def test_stable_b():
    pass
""",
    "tests/test_c.py": """\
import state


def test_brittle():
    assert "config" in state.READY


def test_stable_c():
    pass
""",
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _aqe(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return aqe_process(
        *args, cwd=root, env={"DETECT_STATE": str(root.parent / "marks")}, timeout=300
    )


def test_detect_flaky_names_victim_and_polluter_flaky_and_brittle(project: Path) -> None:
    result = _aqe(project, "detect-flaky", "--runs", "8", "--seed", "3", "--json")
    assert result.returncode == 1, result.stderr  # something is not stable
    report = json.loads(result.stdout)
    assert report["schema"] == "aqe-detect-flaky" and report["runs"] == 8
    verdicts = {t["nodeid"].split("::")[1]: t for t in report["tests"]}
    assert verdicts["test_victim"]["verdict"] == "order-dependent"
    assert verdicts["test_victim"]["polluter"] == "tests/test_a.py::test_polluter"
    assert verdicts["test_victim"]["alone"] == "PPP"
    assert verdicts["test_alternating"]["verdict"] == "flaky"
    assert verdicts["test_brittle"]["verdict"] == "brittle"
    assert verdicts["test_brittle"]["alone"] == "FFF"
    stable = {name for name, t in verdicts.items() if t["verdict"] == "stable"}
    assert stable == {
        "test_polluter", "test_setter", "test_stable_a", "test_stable_b", "test_stable_c"
    }  # fmt: skip
    assert report["reruns"] > 0 and report["executions"] == 8 * 8 + report["reruns"]
    # Seeded: the same seed gives the same rounds.
    again = json.loads(_aqe(project, "detect-flaky", "--runs", "8", "--seed", "3", "--json").stdout)
    assert (
        verdicts["test_victim"]["rounds"]
        == {t["nodeid"].split("::")[1]: t for t in again["tests"]}["test_victim"]["rounds"]
    )


def test_repeat_new_judges_only_tests_the_history_has_not_seen(project: Path) -> None:
    first = _aqe(project, "run", "-w", "1", "-k", "stable or victim or polluter")
    assert first.returncode in (0, 1)
    (project / "tests" / "test_d.py").write_text(
        "import state\n\ndef test_new_victim():\n    assert not state.LEFT\n"
    )
    result = _aqe(project, "run", "-w", "1", "--repeat-new", "6", "-k", "not alternating")
    assert "running the run's 8 tests 6 more times" in result.stdout, result.stdout
    assert "to judge its 3 new tests" in result.stdout
    assert "order-dependent" in result.stdout and "test_new_victim" in result.stdout
    assert result.returncode == 1
    nothing = _aqe(project, "run", "-w", "1", "--repeat-new", "2", "-k", "stable")
    assert "no new tests in this run" in nothing.stdout
    assert nothing.returncode == 0


def test_detect_flaky_with_nothing_selected_says_so(project: Path) -> None:
    result = _aqe(project, "detect-flaky", "-k", "no_such_test")
    assert result.returncode == 5 and "no tests to judge" in result.stderr


def test_a_victim_that_fails_in_pytests_order_is_found_with_the_default_seed(
    tmp_path: Path,
) -> None:
    # Two tests on two workers are never dealt to one process by a shuffle: only
    # pytest's own order (the first round, one process) runs the polluter first.
    root = tmp_path / "order"
    shutil.copytree(Path(__file__).parent / "fixtures" / "knowledge_order", root)
    result = _aqe(root, "detect-flaky", "--runs", "3", "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    verdicts = {t["nodeid"]: t for t in json.loads(result.stdout)["tests"]}
    victim = verdicts["test_pair.py::test_victim"]
    assert victim["verdict"] == "order-dependent" and victim["alone"] == "PPP"
    assert victim["polluter"] == "test_pair.py::test_polluter"
    assert victim["rounds"][0] == "F"  # round 1 is pytest's order
    assert verdicts["test_pair.py::test_polluter"]["verdict"] == "stable"
