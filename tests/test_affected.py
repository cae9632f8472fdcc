"""aqe run --record-deps, --affected, --changed and --explain on a real git project,
run by the real aqe (end to end: git and aqe are processes)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import HANG_GUARD, MakeProject, RunAqe, StartAqe

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
    reports = ["--json", "r.json", "--junit-xml", "r.xml"]
    done = run_aqe("run", "-w", "2", "--affected", "--explain", *reports, cwd=project)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "aqe: test: tests/test_ops.py::test_sub: src/calc/ops.py::sub changed" in out
    assert "aqe: left out: tests/test_ops.py::test_add: no recorded dependency changed" in out
    assert "1 failed, 3 deselected" in out  # never silently absent
    # ... nor in the reports: each left-out test named, with why
    report = json.loads((project / "r.json").read_text(encoding="utf-8"))
    assert [t["nodeid"] for t in report["tests"]] == ["tests/test_ops.py::test_sub"]
    assert {d["nodeid"]: d["reason"] for d in report["deselected"]} == {
        "tests/test_ops.py::test_add": "no recorded dependency changed",
        "tests/test_fmt.py::test_show": "no recorded dependency changed",
        "tests/test_data.py::test_reads_data": "no recorded dependency changed",
    }
    suite = ET.parse(project / "r.xml").getroot().find("testsuite")
    assert suite is not None
    named = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert named["aqe.deselected"] == "3"
    values = [
        p.get("value") for p in suite.iter("property") if p.get("name") == "aqe.deselected.test"
    ]
    assert "tests/test_ops.py::test_add: no recorded dependency changed" in values


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


def _processes_in(directory: Path) -> list[int]:
    """Processes whose working directory is ``directory`` (or under it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cwd = os.readlink(entry / "cwd")
            except OSError:
                continue
            if cwd == str(directory) or cwd.startswith(f"{directory}/"):
                found.append(int(entry.name))
    return found


def test_watch_runs_what_a_save_affects_and_ctrl_c_leaves_nothing(
    project: Path, start_aqe: StartAqe
) -> None:
    pytest.importorskip("watchfiles")
    watcher = start_aqe("watch", "--debounce", "50", cwd=project)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in watcher.stdout or ()])
    reader.start()

    def wait_for(text: str) -> list[str]:
        seen: list[str] = []
        while True:
            try:
                line = lines.get(timeout=HANG_GUARD)
            except queue.Empty:
                raise AssertionError(f"no {text!r} in {seen}") from None
            seen.append(line)
            if text in line:
                return seen

    try:
        wait_for("nothing to run")  # the first round: nothing changed since the map
        _edit(project, "src/calc/ops.py", "return a - b", "return a + b")
        seen = wait_for(" deselected in ")
        assert any("aqe: changed: src/calc/ops.py" in line for line in seen), seen
        assert "1 failed, 3 deselected" in seen[-1]
        _edit(project, "src/calc/fmt.py", 'f"={value}"', 'f"= {value}"')
        wait_for("--affected since")  # the next round has started its run
        watcher.send_signal(signal.SIGINT)
        assert watcher.wait(timeout=HANG_GUARD) == 2
    finally:
        if watcher.poll() is None:
            watcher.kill()
        watcher.wait()
        reader.join(timeout=HANG_GUARD)
        for pipe in (watcher.stdout, watcher.stderr):
            if pipe is not None:
                pipe.close()
    assert _processes_in(project) == []


@pytest.mark.postgres
def test_the_map_round_trips_through_postgres_as_through_sqlite(tmp_path: Path) -> None:
    from pg_cluster import cluster

    from aqe._affected import _mapstore
    from aqe._store import HistoryStore, open_history

    deps = _mapstore.TestDeps({"src/a.py": ("h1", ("f", "<module>"))}, {"d.txt": "h2"})
    with cluster() as pg:
        database = pg.create_database("affected_map")
        with open_history(database) as store, HistoryStore(tmp_path / "h.db") as lite:
            for each in (store, lite):
                _mapstore.save(each, "r1", 1.0, {"t.py::x": deps}, {"h1": '{"f": "1"}'}, {})
                _mapstore.save(each, "r2", 2.0, {"t.py::x": deps}, {"h1": '{"f": "1"}'}, {"a": "b"})
            for each in (store, lite):
                loaded = _mapstore.load(each)
                assert loaded.tests["t.py::x"].to_json() == deps.to_json()
                assert loaded.watched == {"a": "b"}
                assert _mapstore.shapes(each, {"h1"}) == {"h1": {"f": "1"}}
