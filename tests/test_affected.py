"""aqe run --record-deps, --affected, --changed and --explain on a real git project,
run by the real aqe (end to end: git and aqe are processes)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import MakeProject, RunAqe

pytestmark = pytest.mark.e2e

FILES = {
    "src/calc/__init__.py": "",
    "src/calc/ops.py": """\
        SCALE = 1

        def add(a, b):
            return (a + b) * SCALE

        def sub(a, b):
            return a - b
        """,
    "src/calc/fmt.py": """\
        def show(value):
            return f"={value}"
        """,
    "tests/test_ops.py": """\
        from calc.ops import add, sub

        def test_add():
            assert add(1, 2) == 3

        def test_sub():
            assert sub(3, 2) == 1
        """,
    "tests/test_fmt.py": """\
        from calc.fmt import show

        def test_show():
            assert show(1) == "=1"
        """,
    "tests/test_data.py": """\
        from pathlib import Path

        def test_reads_data():
            assert Path(__file__).with_name("data.txt").read_text() == "ok"
        """,
    "tests/data.txt": "ok",
}
PYPROJECT = '[tool.pytest.ini_options]\npythonpath = ["src"]\n'


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@t", "-c", "user.name=t", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def project(make_project: MakeProject, run_aqe: RunAqe) -> Path:
    root = make_project(FILES, pyproject=PYPROJECT)
    (root / ".gitignore").write_text(".aqe/\n", encoding="utf-8")
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "first")
    done = run_aqe("run", "-w", "2", "--record-deps", cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    return root


def _edit(root: Path, relpath: str, old: str, new: str) -> None:
    path = root / relpath
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_a_function_edit_selects_the_tests_that_ran_it(project: Path, run_aqe: RunAqe) -> None:
    _edit(project, "src/calc/ops.py", "return a - b", "return a + b")
    done = run_aqe("run", "-w", "2", "--affected", "--explain", cwd=project)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "aqe: test: tests/test_ops.py::test_sub: src/calc/ops.py::sub changed" in out
    assert "aqe: left out: tests/test_ops.py::test_add: no recorded dependency changed" in out
    assert "1 failed, 3 deselected" in out  # never silently absent


def test_import_time_code_reaches_every_importer(project: Path, run_aqe: RunAqe) -> None:
    _edit(project, "src/calc/ops.py", "SCALE = 1", "SCALE = 2")
    done = run_aqe("run", "-w", "2", "--affected", "--explain", cwd=project)
    assert "module-level code of src/calc/ops.py changed" in done.stdout
    assert "1 failed, 1 passed, 2 deselected" in done.stdout, done.stdout + done.stderr


def test_nothing_changed_runs_nothing(project: Path, run_aqe: RunAqe) -> None:
    done = run_aqe("run", "--affected", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "nothing to run; 4 tests deselected" in done.stdout


def test_data_files_new_tests_and_configuration_widen(project: Path, run_aqe: RunAqe) -> None:
    (project / "tests/data.txt").write_text("changed", encoding="utf-8")
    (project / "tests/test_new.py").write_text("def test_new():\n    pass\n", encoding="utf-8")
    done = run_aqe("run", "--affected", "--explain", cwd=project)
    out = done.stdout
    assert "tests/test_data.py::test_reads_data: data file tests/data.txt changed" in out
    assert "aqe: file: tests/test_new.py: new test file" in out
    assert "1 failed, 1 passed, 3 deselected" in out, out + done.stderr
    _edit(project, "pyproject.toml", "[tool.pytest.ini_options]", "[tool.pytest.ini_options]\n")
    done = run_aqe("run", "--affected", cwd=project)
    assert "every test runs: configuration changed: pyproject.toml" in done.stdout


def test_changed_follows_the_import_graph_without_a_map(project: Path, run_aqe: RunAqe) -> None:
    _edit(project, "src/calc/fmt.py", 'f"={value}"', 'f"= {value}"')
    done = run_aqe("run", "--changed", "--explain", cwd=project)
    out = done.stdout
    assert "aqe: file: tests/test_fmt.py: imports src/calc/fmt.py (changed)" in out
    assert "1 failed, 3 deselected" in out, out + done.stderr
