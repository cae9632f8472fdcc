"""End to end: the engine with real forked and spawned workers on small projects."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

#: Every test here starts processes (see conftest: the fast loop is -m "not e2e").
pytestmark = pytest.mark.e2e

FEATURES = Path(__file__).parent / "fixtures" / "features"


def _project(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body))
    return root


def _aqe(
    project: Path, *args: str, env: dict[str, str] | None = None, history: Path | None = None
) -> tuple[int, str, dict[str, Any]]:
    # Outside the project, so runs against the shared fixture never leave files in the repo.
    report = Path(tempfile.mkdtemp(prefix="aqe-engine-")) / "report.json"
    store = ["--no-history"] if history is None else ["--history", str(history)]
    result = subprocess.run(
        [sys.executable, "-m", "aqe", "run", *store, "--json", str(report), *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CI": "true", **(env or {})},
    )
    data = json.loads(report.read_text()) if report.exists() else {}
    return result.returncode, result.stdout + result.stderr, data


def _outcomes(data: dict[str, Any]) -> dict[str, str]:
    return {test["nodeid"]: test["outcome"] for test in data["tests"]}


def test_a_test_that_kills_its_worker_is_blamed_and_the_rest_still_run(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        {
            "test_crash.py": """
                import os
                def test_before(): pass
                def test_dies(): os._exit(7)
                def test_after(): pass
            """,
            "test_other.py": "".join(f"def test_{i}(): pass\n" for i in range(10)),
        },
    )
    code, output, data = _aqe(project, "-w", "2")
    outcomes = _outcomes(data)
    assert code == 1, output
    assert outcomes.pop("test_crash.py::test_dies") == "crashed"
    assert set(outcomes.values()) == {"passed"} and len(outcomes) == 12
    crashed = next(t for t in data["tests"] if t["nodeid"] == "test_crash.py::test_dies")
    assert crashed["error_type"] == "WorkerCrashed"
    assert "exited with code 7 while running this test" in output


def test_results_held_to_send_together_survive_a_crash_and_blame_stays_exact(
    tmp_path: Path,
) -> None:
    """Fast tests' results leave a worker several at a time (``Limits.hold``); those
    it held when a test killed it come from its journal, so every test before the
    crash keeps its own outcome and the crash lands on the test that did it."""
    body = "import ctypes, os\n" + "".join(f"def test_{i:03}(): pass\n" for i in range(200))
    body += "def test_dies(): os._exit(9)\n"
    body += "".join(f"def test_{i:03}(): pass\n" for i in range(200, 300))
    body += "def test_segfaults(): ctypes.string_at(0)\n"
    body += "".join(f"def test_{i:03}(): pass\n" for i in range(300, 400))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    project = _project(tmp_path / "project", {"test_many.py": body})
    code, output, data = _aqe(
        project, "-w", "1", "--isolate-on", "off", env={"TMPDIR": str(scratch)}
    )
    assert code == 1, output
    outcomes = _outcomes(data)
    assert outcomes.pop("test_many.py::test_dies") == "crashed"
    assert outcomes.pop("test_many.py::test_segfaults") == "crashed"
    assert len(outcomes) == 400 and set(outcomes.values()) == {"passed"}, output
    assert "exited with code 9 while running this test" in output
    assert "was killed by signal 11 (SIGSEGV) while running this test" in output
    assert list(scratch.iterdir()) == []  # journals included


def test_a_segfault_is_named_with_its_signal(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        {
            "test_segv.py": """
                import ctypes
                def test_ok(): pass
                def test_segfaults(): ctypes.string_at(0)
            """,
        },
    )
    code, output, data = _aqe(project, "-w", "1")
    assert code == 1, output
    assert _outcomes(data) == {
        "test_segv.py::test_ok": "passed",
        "test_segv.py::test_segfaults": "crashed",
    }
    assert "was killed by signal 11 (SIGSEGV) while running this test" in output


def test_workers_die_with_a_killed_coordinator(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        {
            name: """
                import os, signal
                def test_blocks():
                    open(f"pid-{os.getpid()}", "w").close()
                    while True:
                        signal.pause()
            """
            for name in ("test_one.py", "test_two.py")
        },
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aqe",
            "run",
            "--no-history",
            "-w",
            "2",
            "--",
            "-p",
            "no:cacheprovider",
        ],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "CI": "true"},
    )
    try:
        # Until both tests run, or aqe ended without them; the deadline only guards
        # against a hang (its tests never end).
        deadline = time.monotonic() + 120
        while len(list(project.glob("pid-*"))) < 2 and proc.poll() is None:
            assert time.monotonic() < deadline, "aqe hung before its tests ran"
            time.sleep(0.05)
        pids = [int(p.name.split("-")[1]) for p in project.glob("pid-*")]
        assert len(pids) == 2, "the workers never started their tests"
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = [pid for pid in pids if _alive(pid)]
    for pid in survivors:  # never leave them behind, even when the check fails
        os.kill(pid, 9)
    assert not survivors, "workers outlived the coordinator"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_spawned_workers_give_the_same_outcomes_as_forked_ones() -> None:
    _, _, forked = _aqe(FEATURES, "-w", "2", env={"AQE_START_METHOD": "fork"})
    _, _, spawned = _aqe(FEATURES, "-w", "2", env={"AQE_START_METHOD": "spawn"})
    assert _outcomes(forked) and _outcomes(forked) == _outcomes(spawned)


def test_session_fixture_is_set_up_once_per_worker_not_per_test(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    project = _project(
        tmp_path / "p",
        {
            "conftest.py": f"""
                import os, pytest
                @pytest.fixture(scope="session", autouse=True)
                def once():
                    open(os.path.join({str(marks)!r}, str(os.getpid())), "a").write("setup\\n")
                    yield
                    open(os.path.join({str(marks)!r}, str(os.getpid())), "a").write("teardown\\n")
            """,
            **{
                f"test_{f}.py": "".join(f"def test_{i}(): pass\n" for i in range(5)) for f in "abcd"
            },
        },
    )
    code, output, data = _aqe(project, "-w", "2")
    assert code == 0, output
    assert len(data["tests"]) == 20
    per_worker = [p.read_text().splitlines() for p in marks.iterdir()]
    assert 1 <= len(per_worker) <= 2
    assert all(lines == ["setup", "teardown"] for lines in per_worker)


def test_never_more_workers_than_work(tmp_path: Path) -> None:
    project = _project(tmp_path, {"test_one.py": "def test_only(): pass\n"})
    code, _, data = _aqe(project, "-w", "4")
    assert code == 0
    assert data["run"]["workers"] == 1


def test_exitfirst_stops_scheduling_after_the_first_failure(tmp_path: Path) -> None:
    body = "import time\n" + "".join(
        f"def test_{i}():\n    time.sleep(0.02)\n    assert False\n" for i in range(40)
    )
    project = _project(tmp_path, {"test_fail.py": body})
    code, output, data = _aqe(project, "-w", "2", "-x")
    assert code == 1
    assert 1 <= len(data["tests"]) < 10, output


def test_last_failed_reruns_only_the_failures(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        {
            "test_a.py": "def test_ok(): pass\ndef test_bad(): assert False\n",
            "test_b.py": "def test_ok(): pass\n",
        },
    )
    first, _, _ = _aqe(project, "-w", "2")
    second, output, data = _aqe(project, "-w", "2", "--lf")
    assert (first, second) == (1, 1)
    assert _outcomes(data) == {"test_a.py::test_bad": "failed"}, output


def test_pytest_junitxml_plugin_sees_every_replayed_result(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        {f"test_{f}.py": "".join(f"def test_{i}(): pass\n" for i in range(6)) for f in "xyz"},
    )
    target = tmp_path / "pytest-junit.xml"
    code, output, _ = _aqe(project, "-w", "2", "--", f"--junitxml={target}")
    assert code == 0, output
    suite = ET.parse(target).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "18"


def test_report_attributes_reach_the_coordinators_plugins_even_when_unpicklable(
    tmp_path: Path,
) -> None:
    project = _project(
        tmp_path,
        {
            "conftest.py": """
                import pytest
                @pytest.hookimpl(wrapper=True)
                def pytest_runtest_makereport(item, call):
                    report = yield
                    report.extra_note = f"note for {item.name}"
                    return report
                def pytest_terminal_summary(terminalreporter):
                    for report in terminalreporter.stats.get("passed", []):
                        note = getattr(report, "extra_note", None)
                        terminalreporter.write_line(f"NOTE {report.nodeid}: {note}")
            """,
            "test_props.py": """
                def test_plain(record_property):
                    record_property("size", 3)
                def test_unpicklable(record_property):
                    record_property("callback", lambda: 1)
            """,
        },
    )
    target = tmp_path / "pytest-junit.xml"
    code, output, _ = _aqe(project, "-w", "1", "--", f"--junitxml={target}")
    assert code == 0, output
    cases = {c.get("name"): c for c in ET.parse(target).getroot().iter("testcase")}
    props = {
        name: {p.get("name"): p.get("value") for p in case.iter("property")}
        for name, case in cases.items()
    }
    assert props["test_plain"] == {"size": "3"}
    assert props["test_unpicklable"]["callback"].startswith("<function test_unpicklable.")
    for name in ("test_plain", "test_unpicklable"):
        assert f"NOTE test_props.py::{name}: note for {name}" in output


def test_a_test_a_plugin_runs_without_reports_is_not_blamed_for_anything(
    tmp_path: Path,
) -> None:
    project = _project(
        tmp_path,
        {
            "conftest.py": """
                def pytest_runtest_protocol(item, nextitem):
                    if item.name == "test_taken_over":
                        return True  # handled elsewhere: no reports at all
            """,
            "test_a.py": """
                def test_taken_over(): raise AssertionError("never runs")
                def test_after(): pass
            """,
        },
    )
    code, output, data = _aqe(project, "-w", "1")
    assert code == 0, output
    assert _outcomes(data) == {"test_a.py::test_after": "passed"}
    assert "WorkerCrashed" not in output and "1 passed" in output


def test_aqes_own_click_context_does_not_leak_into_tests(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        {
            "conftest.py": """
                import click
                assert click.get_current_context(silent=True) is None
            """,
            "test_ctx.py": """
                import click
                def test_no_click_context():
                    assert click.get_current_context(silent=True) is None
            """,
        },
    )
    code, output, data = _aqe(project, "-w", "1")
    assert code == 0, output
    assert _outcomes(data) == {"test_ctx.py::test_no_click_context": "passed"}


def test_imports_made_by_test_modules_another_worker_collects_are_still_made(
    tmp_path: Path,
) -> None:
    # pytest imports every test module before any test runs; tests lean on that.
    project = _project(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/sub.py": "X = 42\n",
            "test_a.py": """
                import pkg.sub
                def test_a(): assert pkg.sub.X == 42
            """,
            "test_b.py": """
                import pkg
                def test_b(): assert pkg.sub.X == 42
            """,
        },
    )
    code, output, data = _aqe(project, "-w", "2")
    assert code == 0, output
    assert set(_outcomes(data).values()) == {"passed"}
    assert {t["worker"] for t in data["tests"]} == {0, 1}  # the files were split


def test_import_time_warnings_obey_filterwarnings_and_show_once(tmp_path: Path) -> None:
    files = {
        "pyproject.toml": "[tool.pytest.ini_options]\nfilterwarnings = ['error::FutureWarning']\n",
        "old/__init__.py": "import warnings\nwarnings.warn('old is going away', FutureWarning)\n",
        "test_uses_old.py": "import old\ndef test_old(): pass\n",
        "test_other.py": "def test_other(): pass\n",
    }
    project = _project(tmp_path / "strict", files)
    (project / "pyproject.toml").write_text(files["pyproject.toml"])
    code, output, data = _aqe(project, "-w", "2")
    assert code == 1, output
    assert "ERROR collecting test_uses_old.py" in output
    assert _outcomes(data) == {"test_other.py::test_other": "passed"}

    lenient = _project(
        tmp_path / "lenient", {k: v for k, v in files.items() if k != "pyproject.toml"}
    )
    code, output, data = _aqe(lenient, "-w", "2")
    assert code == 0, output
    assert output.count("FutureWarning: old is going away") == 1, output
    assert "2 passed, 1 warning" in output


def test_a_file_that_kills_its_worker_while_collecting_is_named_and_the_rest_run(
    tmp_path: Path,
) -> None:
    files = {f"test_ok{i}.py": "def test_ok(): pass\n" for i in range(7)}
    files["test_killer.py"] = "import os\nos._exit(9)\n"
    project = _project(tmp_path, files)
    code, output, data = _aqe(project, "-w", "1")
    assert code == 1, output
    assert "exited with code 9 while collecting this file" in output
    assert "ERROR collecting test_killer.py" in output
    assert sorted(_outcomes(data)) == [f"test_ok{i}.py::test_ok" for i in range(7)]


def test_a_worker_error_in_every_collection_ends_the_run(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        {
            "conftest.py": """
                def pytest_collection_modifyitems(items):
                    if items:
                        raise RuntimeError("broken hook")
            """,
            **{f"test_{i}.py": "def test_x(): pass\n" for i in range(4)},
        },
    )
    code, output, _ = _aqe(project, "-w", "2")
    assert code == 1, output
    assert output.count("RuntimeError: broken hook") >= 1


def test_workers_that_die_before_doing_anything_are_not_replaced_forever(
    tmp_path: Path,
) -> None:
    project = _project(
        tmp_path,
        {
            "killer.py": "import os\nos._exit(4)\n",
            **{f"test_{i}.py": "import killer\ndef test_x(): pass\n" for i in range(3)},
        },
    )
    code, output, _ = _aqe(project, "-w", "2")
    assert code == 1, output
    assert "died before doing anything" in output
    assert "not collected: no worker was left to collect it" in output


def test_warnings_from_workers_reach_the_summary(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        {"test_w.py": "import warnings\ndef test_w():\n    warnings.warn('careful now')\n"},
    )
    code, output, _ = _aqe(project, "-w", "2")
    assert code == 0
    assert "warnings summary" in output and "careful now" in output
    # The summary ends with the workers' tail idle time, then pytest's closing line.
    lines = output.splitlines()
    assert lines[-2].startswith("aqe: tail idle (workers out of work while others finished) ")
    assert " 1 passed, 1 warning in " in lines[-1]


def test_a_broken_test_module_is_reported_as_pytest_reports_it(tmp_path: Path) -> None:
    """The short summary names the file alone, and aqe's import hook is not in the
    traceback (CI=true makes pytest print summary messages in full)."""
    project = _project(
        tmp_path,
        {
            "test_broken.py": "from os import no_such_name\n",
            "test_ok.py": "def test_ok(): pass\n",
        },
    )
    code, output, data = _aqe(project, "-w", "2")
    assert code == 1, output
    assert "ERROR test_broken.py\n" in output, output
    assert "ERROR test_broken.py - " not in output
    assert "_bytecode.py" not in output and "aqe/" not in output.split("ERRORS")[1]
    assert "cannot import name 'no_such_name'" in output
    assert any("no_such_name" in e["traceback"] for e in data["collection_errors"]), data


def test_a_test_that_mocks_pytests_clock_records_its_real_durations(tmp_path: Path) -> None:
    """freezegun's class decorator moves the clock pytest times phases with: pytest then
    reports setups of +1.6e9 s and teardowns of -1.6e9 s. aqe's records stay sane."""
    body = """
        import pytest

        @pytest.fixture
        def frozen_clock(monkeypatch):
            import _pytest.timing
            monkeypatch.setattr(_pytest.timing, "perf_counter", lambda: 1_600_000_000.0)
            yield

        def test_frozen(frozen_clock):
            pass
    """
    code, output, data = _aqe(_project(tmp_path, {"test_clock.py": body}), "-w", "1")
    assert code == 0, output
    (test,) = data["tests"]
    assert all(0.0 <= seconds < 60 for seconds in test["phases"].values()), test["phases"]
    assert 0.0 <= test["duration"] < 60


def test_error_types_of_exception_groups(tmp_path: Path) -> None:
    """pytest names a group of one by the exception inside it; the report does too."""
    body = """
        def test_group_of_one():
            raise ExceptionGroup("one thing", [KeyError("k")])

        def test_group_of_two():
            raise ExceptionGroup("two things", [ValueError("a"), TypeError("b")])
    """
    code, output, data = _aqe(_project(tmp_path, {"test_g.py": body}), "-w", "1")
    assert code == 1, output
    types = {t["nodeid"].split("::")[1]: t["error_type"] for t in data["tests"]}
    assert types == {"test_group_of_one": "KeyError", "test_group_of_two": "ExceptionGroup"}


def test_warnings_keep_their_category_as_pytest_shows_it(tmp_path: Path) -> None:
    """Each warning is shown as ``Category: message``, as plain pytest shows it: a
    category the coordinator has never imported (a test module's own class) too."""
    body = """
        import warnings
        import pytest

        class SlowPathWarning(UserWarning):
            pass

        def test_own_class():
            warnings.warn("took the slow path", SlowPathWarning)

        def test_builtin_class():
            warnings.warn("behaviour will change", FutureWarning)

        def test_pytests_class():
            warnings.warn(pytest.PytestExperimentalApiWarning("an experiment"))
    """
    project = _project(tmp_path, {"test_w.py": body})
    plain = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"],
        cwd=project, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    code, output, _ = _aqe(project, "-w", "2")
    assert code == 0, output
    for shown in (
        "SlowPathWarning: took the slow path",
        "FutureWarning: behaviour will change",
        "PytestExperimentalApiWarning: an experiment",
    ):
        assert shown in plain.stdout, plain.stdout  # what pytest itself prints
        assert shown in output, output
    assert "UserWarning" not in output


def test_no_worker_process_outlives_the_run(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        {f"test_{f}.py": "def test_a(): pass\ndef test_b(): pass\n" for f in "abc"},
    )
    code, _, _ = _aqe(project, "-w", "2")
    assert code == 0
    leftovers = subprocess.run(
        ["pgrep", "-f", f"aqe.*{project}"], capture_output=True, text=True
    ).stdout.split()
    assert leftovers == []


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_collection_error_in_one_file_does_not_stop_the_others(tmp_path: Path, method: str) -> None:
    project = _project(
        tmp_path,
        {"test_broken.py": "import no_such_module_here\n", "test_fine.py": "def test_ok(): pass\n"},
    )
    code, output, data = _aqe(project, "-w", "2", env={"AQE_START_METHOD": method})
    assert code == 1
    assert _outcomes(data) == {"test_fine.py::test_ok": "passed"}
    assert [e["location"] for e in data["collection_errors"]] == ["test_broken.py"]
    assert "no_such_module_here" in output


_ORDERED_UNITTEST = """
    import os
    import time
    import unittest
    from pathlib import Path

    MODE = {"fast": False}
    NOTES = Path(os.environ["ORDER_NOTES"])

    class Test01_Plain(unittest.TestCase):
        def runTest(self):
            self.assertFalse(MODE["fast"])

    class Test02_EnableFast(unittest.TestCase):
        def runTest(self):
            MODE["fast"] = True

    class Test03_WithFast(unittest.TestCase):
        def setUp(self):
            (NOTES / f"ran-{os.getpid()}").touch()

        def test_00_holds_its_worker(self):
            # A worker stuck in a test gives up what it has not been sent yet, if its
            # file may be cut: held until another process runs this class (a cut),
            # or for ORDER_HOLD seconds.
            started = time.monotonic()
            mine = f"ran-{os.getpid()}"
            while time.monotonic() - started < float(os.environ["ORDER_HOLD"]):
                if any(note.name != mine for note in NOTES.glob("ran-*")):
                    break
                time.sleep(0.01)
            (NOTES / "held").write_text(str(time.monotonic() - started))
            self.assertTrue(MODE["fast"])
    """ + "".join(
    f"""
        def test_{i:02}(self):
            self.assertTrue(MODE["fast"])
    """
    for i in range(1, 30)
)


def test_unittest_files_that_rely_on_their_order_are_never_cut(tmp_path: Path) -> None:
    # Like pyparsing's suite: one class switches a global mode for the classes after
    # it. Cut between workers, the tail runs without the switch and fails.
    project = _project(
        tmp_path / "project",
        {"test_ordered.py": _ORDERED_UNITTEST, "test_other.py": "def test_quick(): pass\n"},
    )
    hold = 60.0  # the control: only a guard against a hang, it ends with the cut
    for split in ("test", "auto", "file"):
        notes = tmp_path / split
        notes.mkdir()
        env = {"ORDER_NOTES": str(notes), "ORDER_HOLD": str(hold)}
        code, output, data = _aqe(project, "-w", "2", "--split", split, env=env)
        outcomes = _outcomes(data)
        assert len(outcomes) == 33, output
        failed = sorted(n for n, o in outcomes.items() if o != "passed")
        processes = len(list(notes.glob("ran-*")))
        if split == "test":
            # The control: proves the fixture really is order-bound and a cut was made
            # (a worker stuck in test_00 gives its queue up, whatever the load).
            assert code == 1 and failed and processes == 2, output
            assert {w for w in (t["worker"] for t in data["tests"])} == {0, 1}
            # The others hold their worker several times as long as a cut took here.
            hold = max(4 * float((notes / "held").read_text()), 1.0)
        else:
            assert code == 0 and not failed and processes == 1, output


_CLASSES_UNITTEST = """
    import os
    import time
    import unittest
    from pathlib import Path

    NOTES = Path(os.environ["ORDER_NOTES"])

    class Base(unittest.TestCase):
        __test__ = False

        @classmethod
        def setUpClass(cls):
            (NOTES / f"setup-{cls.__name__}-{os.getpid()}").touch()

        @classmethod
        def tearDownClass(cls):
            (NOTES / f"teardown-{cls.__name__}-{os.getpid()}").touch()

        def setUp(self):
            with (NOTES / f"order-{os.getpid()}").open("a") as out:
                out.write(f"{type(self).__name__}.{self._testMethodName}\\n")

    class TestHold(Base):
        __test__ = True

        def test_00_holds_its_worker(self):
            # Held until another process runs a test of this file (a cut), or for
            # ORDER_HOLD seconds: a worker stuck in a test gives up what it has not
            # been sent, here from the next class on.
            started = time.monotonic()
            mine = f"order-{os.getpid()}"
            while time.monotonic() - started < float(os.environ["ORDER_HOLD"]):
                if any(note.name != mine for note in NOTES.glob("order-*")):
                    break
                time.sleep(0.01)
    """ + "".join(
    f"""
    class Test{name}(Base):
        __test__ = True
    """
    + "".join(
        f"""
        def test_{i:02}(self):
            pass
    """
        for i in range(1, 8)
    )
    for name in "ABCD"
)


def test_a_unittest_file_is_cut_where_the_class_changes_and_classes_stay_whole(
    tmp_path: Path,
) -> None:
    project = _project(
        tmp_path / "project",
        {"test_classes.py": _CLASSES_UNITTEST, "test_other.py": "def test_quick(): pass\n"},
    )
    notes = tmp_path / "notes"
    notes.mkdir()
    env = {"ORDER_NOTES": str(notes), "ORDER_HOLD": "60"}
    code, output, data = _aqe(project, "-w", "2", env=env)
    assert code == 0, output
    outcomes = _outcomes(data)
    assert len(outcomes) == 30 and set(outcomes.values()) == {"passed"}, output
    pytest_order = ["TestHold.test_00_holds_its_worker"] + [
        f"Test{name}.test_{i:02}" for name in "ABCD" for i in range(1, 8)
    ]
    orders = {path.name: path.read_text().split() for path in notes.glob("order-*")}
    assert len(orders) == 2, (orders, output)  # the file was cut: two processes ran it
    owner: dict[str, str] = {}
    for name, ran in orders.items():
        classes = [test.split(".")[0] for test in ran]
        for cls in set(classes):
            # Each class's tests ran one after another, in pytest's order (the
            # classes themselves in the order they were stolen)...
            mine = [test for test in ran if test.startswith(cls + ".")]
            first = classes.index(cls)
            assert ran[first : first + len(mine)] == mine, ran
            assert mine == [test for test in pytest_order if test in mine], ran
            # ...and whole: each class ran in one process.
            assert owner.setdefault(cls, name) == name, (cls, orders)
    # setUpClass and tearDownClass ran once per class, in the process that ran it.
    for kind in ("setup", "teardown"):
        ran = sorted(path.name.split("-")[1] for path in notes.glob(f"{kind}-*"))
        assert ran == sorted(owner), (kind, ran)


def test_a_files_tests_run_in_order_and_its_module_fixture_is_set_up_once(
    tmp_path: Path,
) -> None:
    header = textwrap.dedent(
        """
        import pytest
        SETUPS = []

        @pytest.fixture(scope="module")
        def counter():
            SETUPS.append(1)
            return SETUPS
        """
    )
    counted = "".join(
        f"\ndef test_{name}_{i}(counter):\n    assert counter == [1]\n"
        for name in ("a", "b")
        for i in range(20)
    )
    files = {f"test_{name}.py": header + counted for name in ("one", "two", "three")}
    project = _project(tmp_path, files)
    for _ in range(2):  # the second run plans from history
        code, output, data = _aqe(project, "-w", "2", history=tmp_path / "h.db")
        assert code == 0, output
        # Per worker and file, tests ran in the file's order (files may come longest first).
        runs: dict[tuple[int, str], list[str]] = {}
        for test in sorted(data["tests"], key=lambda t: t["start"]):
            runs.setdefault((test["worker"], test["file"]), []).append(test["nodeid"])
        collected_order = [
            f"{f}::test_{n}_{i}" for f in sorted(files) for n in "ab" for i in range(20)
        ]
        for ran in runs.values():
            assert ran == sorted(ran, key=collected_order.index)


def test_tests_see_the_interpreter_as_plain_pytest_sets_it_up(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        {
            f"test_env{i}.py": """
                import signal
                import sys
                import xml.dom.minidom  # a library module nothing else imports

                def test_bytecode_as_the_user_asked():
                    assert sys.dont_write_bytecode is True
                    assert sys.pycache_prefix is None

                def test_ctrl_c_raises_keyboard_interrupt():
                    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

                def test_sigterm_ends_the_process():
                    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
            """
            for i in range(2)
        },
    )
    env = {"PYTHONDONTWRITEBYTECODE": "1"}
    for method in ("fork", "spawn"):
        code, output, data = _aqe(project, "-w", "2", env={**env, "AQE_START_METHOD": method})
        assert code == 0 and len(data["tests"]) == 6, output
    # aqe's own cache of the rewritten test modules, outside the source tree.
    cache = project / ".aqe" / "pycache"
    assert list(cache.rglob("test_env0*.pyc"))
    assert not list(project.rglob("__pycache__"))
    # Only those and the plugin modules pytest rewrites (installed ones, which it
    # would rewrite from source every run): a library keeps the bytecode it was
    # installed with (with a prefix set, Python would ignore it and compile the
    # library from source on a first run).
    cached = {Path("/", *pyc.relative_to(cache).parts[:-1]) for pyc in cache.rglob("*.pyc")}
    assert project in cached
    assert all(d == project or "site-packages" in d.parts for d in cached), cached
    assert not [pyc for pyc in cache.rglob("*.pyc") if "xml" in pyc.parts], cached


def test_tests_of_one_serial_group_never_overlap(tmp_path: Path) -> None:
    log = tmp_path / "intervals.txt"
    body = """
        import os
        import time
        import pytest

        def _run(name):
            start = time.time()
            time.sleep(0.15)
            with open(os.environ["INTERVALS"], "a") as out:
                out.write(f"{name} {start} {time.time()}\\n")

        @pytest.mark.serial(group="db")
        @pytest.mark.parametrize("n", range(3))
        def test_db(n):
            _run("db")

        @pytest.mark.parametrize("n", range(3))
        def test_free(n):
            _run("free")
    """
    project = _project(tmp_path / "p", {f"test_g{i}.py": body for i in range(4)})
    (project / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\naddopts = ["--strict-markers"]\n'
    )
    code, output, data = _aqe(project, "-w", "2", env={"INTERVALS": str(log)})
    assert code == 0 and len(data["tests"]) == 24, output
    spans = sorted(
        (float(a), float(b))
        for name, a, b in (line.split() for line in log.read_text().splitlines())
        if name == "db"
    )
    assert len(spans) == 12
    assert all(prev[1] <= nxt[0] for prev, nxt in itertools.pairwise(spans))
    # The rest still ran in parallel: on a worker the group never used. (Not on both:
    # which worker ends up with which free tests depends on the machine's speed.)
    workers = {
        name: {t["worker"] for t in data["tests"] if name in t["nodeid"]}
        for name in ("test_db", "test_free")
    }
    assert len(workers["test_db"]) == 1 and workers["test_free"] - workers["test_db"], workers


def test_retries_and_tier_reruns_of_a_serial_group_still_never_overlap(tmp_path: Path) -> None:
    # The group's first tests fail or crash once: their second attempts come while
    # the group's other tests are still queued or running on its worker.
    log, state = tmp_path / "intervals.txt", tmp_path / "state"
    state.mkdir()
    grouped = """
        import os
        import time
        from pathlib import Path
        import pytest

        def _run():
            start = time.time()
            time.sleep(0.15)
            with open(os.environ["INTERVALS"], "a") as out:
                out.write(f"{start} {time.time()}\\n")

        def _first_time(tag):
            marker = Path(os.environ["STATE"]) / tag
            if marker.exists():
                return False
            marker.touch()
            return True

        @pytest.mark.serial(group="db")
        def test_db_fails_once():
            _run()
            assert not _first_time("fails")

        @pytest.mark.serial(group="db")
        def test_db_crashes_once():
            _run()
            if _first_time("crashes"):
                os._exit(3)

        @pytest.mark.serial(group="db")
        @pytest.mark.parametrize("n", range(6))
        def test_db(n):
            _run()
    """
    free = """
        import time
        import pytest

        @pytest.mark.parametrize("n", range(8))
        def test_free(n):
            time.sleep(0.1)
    """
    project = _project(tmp_path / "p", {"test_db.py": grouped, "test_free.py": free})
    code, output, data = _aqe(
        project, "-w", "2", "--retries", "1",
        env={"INTERVALS": str(log), "STATE": str(state)},
    )  # fmt: skip
    assert code == 0, output
    attempts: dict[str, list[tuple[str, str]]] = {}
    for test in data["tests"]:
        attempts.setdefault(test["nodeid"].split("::")[1], []).append(
            (test.get("tier", "hot"), test["outcome"])
        )
    assert attempts["test_db_fails_once"] == [("hot", "failed"), ("hot", "flaky")]
    # Run again alone on a fresh fork, as any crashed test is, not back on the group's worker.
    assert attempts["test_db_crashes_once"] == [("hot", "crashed"), ("warm", "flaky")]
    spans = sorted(tuple(map(float, line.split())) for line in log.read_text().splitlines())
    assert len(spans) == 10
    assert all(prev[1] <= nxt[0] for prev, nxt in itertools.pairwise(spans)), spans


def test_a_test_with_a_failed_subtest_fails_as_under_pytest(tmp_path: Path) -> None:
    pytest.importorskip("_pytest.subtests")  # built into pytest >= 9
    project = _project(
        tmp_path,
        {
            "test_sub.py": """
                def test_with_subtests(subtests):
                    for i in range(3):
                        with subtests.test(i=i):
                            assert i != 1

                def test_plain():
                    pass
            """
        },
    )
    code, output, data = _aqe(project, "-w", "2")
    assert code == 1, output
    assert _outcomes(data) == {
        "test_sub.py::test_with_subtests": "failed",
        "test_sub.py::test_plain": "passed",
    }
    assert "contains 1 failed subtest" in output


def test_a_test_that_raises_past_pytest_is_blamed_with_what_it_raised(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        {
            # (a test's own KeyboardInterrupt stops the run, as in pytest: test_semantics)
            "conftest.py": """
                def pytest_runtest_makereport(item, call):
                    if item.name == "test_interrupts" and call.when == "call":
                        raise LookupError("escaped")
            """,
            "test_escape.py": """
                def test_interrupts():
                    pass

                def test_after():
                    pass
            """,
        },
    )
    code, output, data = _aqe(project, "-w", "1", "--isolate-on", "off")
    assert code == 1, output
    assert _outcomes(data) == {
        "test_escape.py::test_interrupts": "crashed",
        "test_escape.py::test_after": "passed",
    }
    assert "while running this test: LookupError: escaped" in output
    assert "failed internally" not in output


def test_a_test_runs_only_after_the_tests_it_depends_on_passed(tmp_path: Path) -> None:
    log = tmp_path / "order.txt"
    note = 'import os\n\ndef _note(name):\n    open(os.environ["ORDER"], "a").write(name + "\\n")\n'
    project = _project(
        tmp_path / "p",
        {
            "test_base.py": note
            + "import time\n\n"
            + "def test_setup_db():\n    time.sleep(0.3)\n    _note('setup_db')\n\n"
            + "def test_broken():\n    assert False\n",
            "test_users.py": note
            + "import pytest\n\n"
            + "@pytest.mark.depends(on=['test_base.py::test_setup_db'])\n"
            + "def test_users():\n    _note('users')\n\n"
            + "@pytest.mark.depends(on=['test_base.py::test_broken'])\n"
            + "def test_needs_broken():\n    _note('needs_broken')\n\n"
            + "@pytest.mark.depends(on=['test_users'])\n"
            + "def test_chain():\n    _note('chain')\n\n"
            + "@pytest.mark.depends(on=['test_missing'])\n"
            + "def test_needs_missing():\n    _note('needs_missing')\n",
        },
    )
    (project / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\naddopts = ["--strict-markers"]\n'
    )
    code, output, data = _aqe(project, "-w", "2", "--", "-rs", env={"ORDER": str(log)})
    assert code == 1, output
    outcomes = _outcomes(data)
    assert outcomes == {
        "test_base.py::test_setup_db": "passed",
        "test_base.py::test_broken": "failed",
        "test_users.py::test_users": "passed",
        "test_users.py::test_needs_broken": "skipped",
        "test_users.py::test_chain": "passed",
        "test_users.py::test_needs_missing": "skipped",
    }, output
    assert log.read_text().split() == ["setup_db", "users", "chain"]
    assert "depends on test_base.py::test_broken, which failed" in output
    assert "depends on test_users.py::test_missing, which did not run" in output


def test_a_dependency_cycle_is_a_usage_error_that_names_it(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        {
            "test_cycle.py": """
                import pytest

                @pytest.mark.depends(on=["test_b"])
                def test_a():
                    pass

                @pytest.mark.depends(on=["test_a"])
                def test_b():
                    pass

                def test_free():
                    pass
            """
        },
    )
    code, output, data = _aqe(project, "-w", "2")
    assert code == 4, output
    assert "dependency cycle: test_cycle.py::test_a -> test_cycle.py::test_b -> " in output
    assert _outcomes(data)["test_cycle.py::test_free"] == "passed"


def test_a_deselected_test_is_counted_once_when_its_file_is_collected_again(
    tmp_path: Path,
) -> None:
    # The crash makes a replacement worker (and the warm and cold tiers) collect the
    # file again; pytest counts each deselected test once, so must aqe's closing line.
    project = _project(
        tmp_path,
        {
            "test_mix.py": """
                import os
                def test_crashes(): os._exit(3)
                def test_left_out(): pass
                def test_after(): pass
            """
        },
    )
    code, output, _ = _aqe(project, "-w", "1", "-k", "not left_out")
    assert code == 1, output
    assert "1 crashed, 1 passed, 1 deselected" in output.splitlines()[-1], output


def test_a_crashed_or_hung_test_keeps_the_last_lines_it_wrote(tmp_path: Path) -> None:
    project = _project(
        tmp_path / "project",
        {
            "test_dies.py": """
                import os, sys, time

                def test_dies():
                    print("step 1 done")
                    print("step 2 done")
                    sys.stderr.write("about to fail hard\\n")
                    sys.stdout.flush(); sys.stderr.flush()
                    os._exit(3)

                def test_hangs():
                    print("waiting for the server")
                    sys.stdout.flush()
                    time.sleep(60)
            """
        },
    )
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    code, output, data = _aqe(
        project, "-w", "1", "--timeout", "1", "--isolate-on", "off", env={"TMPDIR": str(scratch)}
    )
    assert code == 1, output
    tests = {t["nodeid"].split("::")[1]: t for t in data["tests"]}
    assert tests["test_dies"]["outcome"] == "crashed"
    assert tests["test_dies"]["stdout"] == "step 1 done\nstep 2 done"
    assert tests["test_dies"]["stderr"] == "about to fail hard"
    assert "Last lines of its stdout:\nstep 1 done\nstep 2 done" in tests["test_dies"]["traceback"]
    assert tests["test_hangs"]["outcome"] == "timeout"
    assert tests["test_hangs"]["stdout"] == "waiting for the server"
    assert "Last lines of its stdout:\nwaiting for the server" in output
    assert list(scratch.iterdir()) == []  # the workers' files are gone with them


def test_files_of_workers_whose_coordinator_was_killed_are_swept(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (scratch / f"aqe-worker-stacks-{dead.pid}-abc.txt").write_text("")
    (scratch / f"aqe-worker-out-{os.getpid()}-abc").write_text("")  # alive: kept
    project = _project(tmp_path / "project", {"test_ok.py": "def test_ok(): pass\n"})
    code, output, _ = _aqe(project, "-w", "1", env={"TMPDIR": str(scratch)})
    assert code == 0, output
    assert [p.name for p in scratch.iterdir()] == [f"aqe-worker-out-{os.getpid()}-abc"]


def test_a_file_taken_late_by_a_worker_whose_test_purged_a_module_still_sees_the_first_import(
    tmp_path: Path,
) -> None:
    """Under pytest every test module is imported before any test runs. A worker that
    takes over a file late imports it late; if a test there deleted a library from
    sys.modules and imported it again (trio's ``test_trio_import``), the late module
    would see the second copy while the conftest holds the first."""
    project = _project(
        tmp_path,
        {
            "pyproject.toml": '[tool.pytest.ini_options]\npythonpath = ["."]\n',
            "statepkg/__init__.py": "TOKEN = object()\n",
            "conftest.py": """
                import pytest
                import statepkg

                @pytest.fixture
                def token():
                    return statepkg.TOKEN
            """,
            "test_a_purge.py": """
                import sys

                def test_purge():
                    for name in [n for n in sys.modules if n.split(".")[0] == "statepkg"]:
                        del sys.modules[name]
                    import statepkg  # a new module object, a new TOKEN
            """,
            "test_b_long.py": "import time\ndef test_long():\n    time.sleep(1.5)\n",
            "test_c_victim.py": """
                import time
                import pytest
                from statepkg import TOKEN

                @pytest.mark.parametrize("n", range(12))
                def test_victim(n, token):
                    time.sleep(0.1)
                    assert token is TOKEN
            """,
        },
    )
    code, output, data = _aqe(project, "-w", "2")
    assert code == 0, output
    assert set(_outcomes(data).values()) == {"passed"} and len(data["tests"]) == 14, output
    # The case happened: the purging worker was about to import the victim late.
    assert (
        "took statepkg out of sys.modules, so test_c_victim.py goes to a fresh worker" in output
    ), output


@pytest.mark.parametrize("how", ["passes", "crashes"])
def test_a_process_a_test_leaves_behind_does_not_keep_the_run_waiting(
    tmp_path: Path, how: str
) -> None:
    """A forked child inherits the worker's socket to aqe: when the worker ends (its
    work done, or killed), the socket stays open as long as the child lives. pytest
    does not wait for such a child, and neither may aqe: here it never ends by
    itself, so a run that waited for it would never end (``_aqe`` gives up)."""
    ending = "os._exit(7)" if how == "crashes" else "pass"
    child = tmp_path / "child-pid"
    project = _project(
        tmp_path / "project",
        {
            "test_fork.py": f"""
                import os, signal

                def test_leaves_a_child():
                    if os.fork() == 0:
                        open({str(child)!r}, "w").write(str(os.getpid()))
                        while True:
                            signal.pause()

                def test_then():
                    {ending}
            """,
            "test_more.py": "def test_a(): pass\ndef test_b(): pass\n",
        },
    )
    try:
        code, output, data = _aqe(project, "-w", "2")
    finally:
        if child.exists() and child.read_text() and _alive(int(child.read_text())):
            os.kill(int(child.read_text()), signal.SIGKILL)
    outcomes = _outcomes(data)
    assert outcomes.pop("test_fork.py::test_then") == ("crashed" if how == "crashes" else "passed")
    assert set(outcomes.values()) == {"passed"} and len(outcomes) == 3, output
    assert code == (1 if how == "crashes" else 0), output


def test_the_nextitem_a_worker_gives_pytest_is_an_item_or_none(tmp_path: Path) -> None:
    """Plugins read ``nextitem`` in their teardown hooks (SQLAlchemy's calls
    ``nextitem.getparent(pytest.Class)``): whatever aqe passes while it waits to
    learn the real next test must behave as an item."""
    project = _project(
        tmp_path,
        {
            "conftest.py": """
                import pytest

                @pytest.hookimpl(hookwrapper=True)
                def pytest_runtest_teardown(item, nextitem):
                    yield
                    if nextitem is not None:
                        assert isinstance(nextitem, pytest.Item)
                        nextitem.getparent(pytest.Class)
                        nextitem.listchain()
                        nextitem.nodeid
            """,
            "test_a.py": "class TestA:\n    def test_1(self): pass\n    def test_2(self): pass\n",
            "test_b.py": """
                import time, pytest

                @pytest.mark.parametrize("n", range(6))
                def test_slow(n):
                    time.sleep(0.3)
            """,
        },
    )
    code, output, data = _aqe(project, "-w", "2")
    assert code == 0, output
    assert set(_outcomes(data).values()) == {"passed"} and len(data["tests"]) == 8, output


def test_a_class_fixture_is_set_up_once_per_worker_even_when_aqe_is_slow_to_send_work(
    tmp_path: Path,
) -> None:
    """pytest tears a class fixture down when the next test is in another class. A
    worker waiting for its next test must not guess "none" because the coordinator is
    busy (a loaded machine; here a slow reporting hook in aqe's process)."""
    project = _project(
        tmp_path,
        {
            "conftest.py": """
                import os, time

                MAIN = os.getpid()

                def pytest_runtest_logreport(report):
                    if os.getpid() == MAIN and report.when == "call":
                        time.sleep(0.06)
            """,
            "test_class.py": """
                import pytest

                SETUPS = []

                @pytest.fixture(scope="class")
                def resource():
                    SETUPS.append(1)
                    yield

                @pytest.mark.usefixtures("resource")
                class TestOnce:
                    @pytest.mark.parametrize("n", range(12))
                    def test_set_up_once(self, n):
                        assert len(SETUPS) == 1
            """,
        },
    )
    code, output, data = _aqe(project, "-w", "2")
    assert code == 0, output
    assert set(_outcomes(data).values()) == {"passed"} and len(data["tests"]) == 12, output


@pytest.mark.parametrize("ignored", [True, False])
def test_tests_see_the_sigint_disposition_aqe_was_started_with(
    tmp_path: Path, ignored: bool
) -> None:
    """``nohup cmd &``, or ``cmd &`` in a script, starts a process with SIGINT ignored,
    and pytest's tests (and the processes they start) keep ignoring it; anyio's suite
    checks that a subprocess survives the SIGINT it raises. Otherwise a test sees
    Python's KeyboardInterrupt handler."""
    expected = "signal.SIG_IGN" if ignored else "signal.default_int_handler"
    project = _project(
        tmp_path,
        {
            "test_sigint.py": f"""
                import signal, subprocess, sys

                def test_disposition():
                    assert signal.getsignal(signal.SIGINT) is {expected}

                def test_a_child_process_inherits_it():
                    code = "import signal; signal.raise_signal(signal.SIGINT); print('alive')"
                    done = subprocess.run([sys.executable, "-c", code], capture_output=True)
                    assert (done.stdout.strip() == b"alive") is {ignored}
            """,
        },
    )
    for argv in (
        ["-m", "pytest", "-p", "no:cacheprovider"],
        ["-m", "aqe", "run", "-w", "2", "--no-history"],
    ):
        done = subprocess.run(
            [sys.executable, *argv],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "CI": "true"},
            preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignored else None,
        )
        assert done.returncode == 0, (argv, done.stdout + done.stderr)


def test_a_file_a_worker_is_asked_to_collect_again_keeps_all_its_tests(tmp_path: Path) -> None:
    """Collecting a module twice in one process runs its decorators' arguments only
    once: a one-shot iterator in a parametrize mark (rich's ``zip(...)``) yields
    nothing the second time. A worker that was handed back a file it had collected
    lost its tests, and the run passed without them."""
    pad = "# padding: aqe deals files to workers by size when it has no history\n" * 60
    project = _project(
        tmp_path,
        {
            "test_a_w.py": "import time\ntime.sleep(0.5)\n"
            "def test_w1():\n    time.sleep(0.1)\ndef test_w2():\n    time.sleep(0.1)\n" + pad,
            "test_b_s.py": "import time, pytest\n@pytest.mark.parametrize('i', range(4))\n"
            "def test_s(i):\n    time.sleep(0.75)\n" + pad[: len(pad) // 3],
            "test_c_x.py": "import time, pytest\n@pytest.mark.parametrize('i', range(20))\n"
            "def test_x(i):\n    time.sleep(0.05)\n",
            "test_d_zip.py": "import pytest\n"
            "@pytest.mark.parametrize('a,b', zip([1, 2, 3], [1, 2, 3]))\n"
            "def test_zip(a, b):\n    assert a == b\n",
        },
    )
    for _ in range(2):
        code, output, data = _aqe(project, "-w", "2")
        assert code == 0, output
        assert len(data["tests"]) == 29, sorted(_outcomes(data))


def test_tests_a_worker_does_not_find_where_it_was_sent_are_reported_not_dropped(
    tmp_path: Path,
) -> None:
    """Ids that differ from one process to the next (pytest-xdist refuses such a
    suite): a worker that takes over tests another worker collected does not find
    them. Each is reported as an error naming why; none may vanish."""
    project = _project(
        tmp_path,
        {
            "test_pid.py": """
                import os, time, pytest

                @pytest.mark.parametrize("i", range(20), ids=lambda i: f"{i}-{os.getpid()}")
                def test_slow(i):
                    time.sleep(0.1)
            """,
            "test_other.py": "def test_quick(): pass\n",
        },
    )
    code, output, data = _aqe(project, "-w", "2")
    lost = [t for t in data["tests"] if t.get("error_type") == "NotCollected"]
    assert lost, f"no test was taken over: the case did not occur\n{output}"
    assert code == 1, output
    final = _outcomes(data)  # the last attempt of each id
    assert len(final) == 21, sorted(final)
    assert set(final.values()) <= {"passed", "error"}, final  # no worker crashed over it
    assert all(t["outcome"] == "error" for t in lost)
    assert "did not find it there" in lost[0]["message"]
